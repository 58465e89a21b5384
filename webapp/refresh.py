"""The refresh job: fetch ADEME, Enedis and data.gouv, stage, then swap atomically.

One refresh runs at a time per volume (a file lock shared by the CLI and every
web worker). Each source is fetched into `<volume>/staging/<source>/` and written
to the store only when the whole source succeeded; on failure the data in service
stays untouched. The ADEME download saves its `next` cursor after every page, in
the staging folder and in the manifest, so an interrupted run resumes there.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import pandas as pd
from flask.cli import AppGroup

from webapp import schema
from webapp import store as store_module
from webapp.sources import ademe
from webapp.sources import datafair
from webapp.sources import datagouv
from webapp.sources import enedis
from webapp.sources.http import Client
from webapp.sources.http import HttpSettings
from webapp.sources.http import SourceError

logger = logging.getLogger(__name__)

#: Sources in the order a full refresh runs them (DPE enrichment reads communes).
SOURCES = ("communes", "ademe", "enedis")
#: Seconds between two writes of the shared progress file.
STATUS_INTERVAL = 0.5
#: Manifest key holding the per-source refresh state (cursor, last success).
MANIFEST_KEY = "refresh"


class RefreshBusy(Exception):
    """Another refresh holds the lock of this volume."""


@dataclass
class SourceResult:
    """What one source did: rows, changes, rejections, duration, failure reason."""

    source: str
    status: str = "pending"
    rows: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    duration: float = 0.0
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the source succeeded."""
        return self.status == "ok"


# --------------------------------------------------------------------------- lock


class RefreshLock:
    """An exclusive, non-blocking file lock in the volume (flock)."""

    def __init__(self, volume: Path):
        self.path = Path(volume) / store_module.REFRESH_LOCK
        self._handle = None

    def acquire(self) -> bool:
        """Take the lock; False when another holder has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return True

    def release(self) -> None:
        """Release the lock if held."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def is_held_elsewhere(self) -> bool:
        """True while some holder (any process or thread) has the lock."""
        if self._handle is not None:
            return True
        return self.path.exists() and store_module.lock_is_held(self.path)


# --------------------------------------------------------------------------- state


def _write_json(path: Path, payload: dict) -> None:
    data = json.dumps(payload, indent=1, ensure_ascii=False, default=str).encode()
    store_module.atomic_write_bytes(path, lambda handle: handle.write(data))


def _read_json(path: Path) -> dict | None:
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def save_refresh_state(store, source: str, state: dict) -> None:
    """Record a source's refresh state in the manifest, keeping its version stamp.

    The stamp is what tells the workers to reload; a cursor is not new data.
    """
    with store._lock:
        manifest = store.read_manifest()
        manifest.setdefault(MANIFEST_KEY, {})[source] = state
        payload = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        store_module.atomic_write_bytes(
            store.manifest_path, lambda handle: handle.write(payload)
        )


def refresh_state(store, source: str) -> dict:
    """Return the refresh state of one source from the manifest."""
    state = store.read_manifest().get(MANIFEST_KEY, {}).get(source)
    return state if isinstance(state, dict) else {}


class StatusFile:
    """Progress of the running refresh in `<volume>/refresh/status.json`.

    Every web worker reads it, whichever of them runs the job.
    """

    def __init__(self, volume: Path):
        self.path = Path(volume) / "refresh" / "status.json"
        self.state: dict = {}
        self._last_write = 0.0

    def read(self) -> dict | None:
        """Return the last written status, or None."""
        return _read_json(self.path)

    def begin(self, sources: Iterable[str], full: bool, origin: str) -> None:
        """Mark a refresh as running."""
        self.state = {
            "state": "running",
            "origin": origin,
            "pid": os.getpid(),
            "full": full,
            "started_at": store_module.now_iso(),
            "finished_at": None,
            "sources": {
                name: {"status": "pending", "label": name, "done": 0, "total": None}
                for name in sources
            },
            "message": "",
        }
        self._write(force=True)

    def start(self, source: str, label: str, total: int | None) -> None:
        entry = self.state.setdefault("sources", {}).setdefault(source, {})
        entry.update(status="running", label=label, done=0, total=total)
        entry.setdefault("started", time.time())
        self._write(force=True)

    def advance(self, source: str, done: int, total: int | None) -> None:
        entry = self.state.setdefault("sources", {}).setdefault(source, {})
        entry.update(done=done, total=total)
        elapsed = time.time() - entry.get("started", time.time())
        entry["rate"] = done / elapsed if elapsed > 0 else None
        self._write()

    def finish(self, result: SourceResult) -> None:
        entry = self.state.setdefault("sources", {}).setdefault(result.source, {})
        entry.update(status=result.status, result=asdict(result))
        self._write(force=True)

    def end(self, results: list[SourceResult], message: str = "") -> None:
        """Mark the refresh as finished."""
        failed = [r for r in results if not r.ok]
        self.state.update(
            state="failed" if failed or message else "done",
            finished_at=store_module.now_iso(),
            message=message or "; ".join(r.message for r in failed),
        )
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < STATUS_INTERVAL:
            return
        self._last_write = now
        try:
            _write_json(self.path, self.state)
        except OSError as exc:
            logger.warning("refresh status not written: %s", exc)


# --------------------------------------------------------------------------- job


Listener = Any


def _fetch_counts(before: pd.Series, after: pd.Series) -> dict[str, int]:
    old, new = set(before.dropna()), set(after.dropna())
    return {
        "added": len(new - old),
        "updated": len(new & old),
        "removed": len(old - new),
    }


def _keys(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    if frame is None or not len(frame):
        return pd.Series([], dtype="string")
    parts = frame[columns].astype("string").fillna("")
    return parts.agg("|".join, axis=1)


class RefreshJob:
    """Runs the refresh of some sources against one store."""

    def __init__(
        self,
        store,
        config: dict,
        listeners: Iterable[Listener] = (),
        settings: HttpSettings | None = None,
    ):
        self.store = store
        self.config = config
        self.listeners = list(listeners)
        self.settings = settings or HttpSettings.from_config(config)
        self.staging = Path(store.volume) / "staging"
        self.departement = str(config.get("REFRESH_DEPARTEMENT", "74"))

    # ------------------------------------------------------------ plumbing

    def _emit(self, method: str, *args) -> None:
        for listener in self.listeners:
            try:
                getattr(listener, method)(*args)
            except Exception:
                logger.exception("refresh listener %s.%s failed", listener, method)

    def _client(self, source: str) -> Client:
        return Client(source, self.settings)

    def run(self, sources: Iterable[str], full: bool = False) -> list[SourceResult]:
        """Refresh each source in turn; a failed source leaves its data in service."""
        results = []
        wrote = False
        for source in sources:
            runner = getattr(self, f"_run_{source}")
            result = SourceResult(source)
            started = time.perf_counter()
            try:
                runner(result, full)
                result.status = "ok"
                wrote = True
            except SourceError as exc:
                result.status = "failed"
                result.message = str(exc)
                logger.error("refresh failed: %s", exc)
            except (KeyboardInterrupt, SystemExit):
                result.status = "interrupted"
                result.message = f"{source}: interrupted"
                result.duration = time.perf_counter() - started
                self._emit("finish", result)
                raise
            except Exception as exc:
                logger.exception("refresh of %s failed unexpectedly", source)
                result.status = "failed"
                result.message = f"{source}: unexpected error: {exc}"
            result.duration = time.perf_counter() - started
            if not result.ok:
                self._discard_partial(source)
            self._record(result)
            self._emit("finish", result)
            results.append(result)
        if wrote:
            self.store.refreshed()
        return results

    def _discard_partial(self, source: str) -> None:
        """Free what a failed source downloaded, unless it resumes from it."""
        if source in RESUMABLE_SOURCES:
            return
        shutil.rmtree(self.staging / source, ignore_errors=True)

    def _record(self, result: SourceResult) -> None:
        try:
            self._save_state(result)
        except OSError as exc:
            # A full or failing volume must not turn a clean failure into a crash.
            logger.error("%s: refresh state not saved: %s", result.source, exc)

    def _save_state(self, result: SourceResult) -> None:
        state = refresh_state(self.store, result.source)
        if result.ok:
            state.update(
                last_success=result.details.get("started_at", store_module.now_iso()),
                last_status="ok",
                last_error=None,
                cursor=None,
            )
        else:
            state.update(last_status=result.status, last_error=result.message)
        state["last_run"] = store_module.now_iso()
        save_refresh_state(self.store, result.source, state)

    def _write(self, name: str, frame: pd.DataFrame, extra: dict) -> dict:
        return self.store.write_dataset(
            name, frame, origin="api", extra=extra, reload=False
        )

    # ------------------------------------------------------------ communes

    def _run_communes(self, result: SourceResult, full: bool) -> None:
        result.details["started_at"] = store_module.now_iso()
        folder = self._fresh_staging("communes")
        target = folder / "communes.csv"
        self._emit("start", "communes", "communes (data.gouv)", None)

        with self._client("communes") as client:
            url, notes = datagouv.download(
                client,
                self.config["DATAGOUV_API_URL"],
                self.config["COMMUNES_URL"],
                target,
            )
            raw = datagouv.read_table(client, target, url)
            frame, rejections = store_module.normalise_communes(raw)
            self._emit("advance", "communes", len(raw), len(raw))

            minimum = int(self.config.get("COMMUNES_MIN_ROWS", 30_000))
            if len(frame) < minimum:
                raise client.error(
                    f"only {len(frame)} communes (at least {minimum} expected)", url
                )
            local = int((frame["dep_code"] == self.departement).sum())
            if not local:
                raise client.error(f"no commune of département {self.departement}", url)

        before = self.store.communes
        result.rows = len(frame)
        result.rejected = dict(rejections)
        result.__dict__.update(_fetch_counts(before["code_insee"], frame["code_insee"]))
        result.details.update(url=url, notes=notes, departement_rows=local)
        self._write("communes", frame, {"url": url})
        shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------ ADEME

    def _ademe_plan(self, full: bool) -> dict:
        """Return the cursor state to continue, or a new one."""
        folder = self.staging / "ademe"
        saved = _read_json(folder / "cursor.json")
        max_age = timedelta(
            hours=float(self.config.get("REFRESH_CURSOR_MAX_AGE_HOURS", 168))
        )
        if saved and saved.get("departement") == self.departement:
            started = datetime.fromisoformat(saved["started_at"])
            fresh = datetime.now(UTC) - started < max_age
            if fresh and (saved.get("mode") == "full" or not full):
                logger.info(
                    "ademe: resuming the %s download started at %s",
                    saved["mode"],
                    saved["started_at"],
                )
                saved["resumed"] = True
                return saved
            logger.info("ademe: discarding the saved cursor of %s", saved["started_at"])

        last = refresh_state(self.store, "ademe").get("last_success")
        in_service = self.store.sources.get("dpe", {}).get("origin")
        incremental = bool(last) and not full and in_service == "api"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "mode": "incremental" if incremental else "full",
            "since": last[:10] if incremental else None,
            "departement": self.departement,
            "started_at": store_module.now_iso(),
            "resumed": False,
            "datasets": {
                dataset: {"next": None, "rows": 0, "total": None, "pages": 0}
                for dataset in ademe.DATASETS
            },
        }

    def _save_cursor(self, plan: dict) -> None:
        _write_json(self.staging / "ademe" / "cursor.json", plan)
        state = refresh_state(self.store, "ademe")
        state["cursor"] = {
            "mode": plan["mode"],
            "since": plan["since"],
            "started_at": plan["started_at"],
            "datasets": {
                dataset: {k: v[k] for k in ("next", "rows", "total", "done") if k in v}
                for dataset, v in plan["datasets"].items()
            },
        }
        save_refresh_state(self.store, "ademe", state)

    def _run_ademe(self, result: SourceResult, full: bool) -> None:
        plan = self._ademe_plan(full)
        result.details.update(
            started_at=plan["started_at"],
            mode=plan["mode"],
            since=plan["since"],
            resumed=plan["resumed"],
        )
        base_url = self.config["ADEME_API_URL"]
        page_size = int(self.config.get("ADEME_PAGE_SIZE", datafair.MAX_PAGE_SIZE))

        parts = []
        with self._client("ademe") as client:
            for dataset, cursor in plan["datasets"].items():
                folder = self.staging / "ademe" / dataset
                pages = read_staged_pages(folder, cursor)
                if not cursor.get("done"):
                    self._fetch_ademe_dataset(
                        client, base_url, dataset, cursor, plan, page_size, pages
                    )
                if pages:
                    frame = pd.concat(pages, ignore_index=True)
                    frame["source"] = ademe.DATASETS[dataset]
                    parts.append(frame)
                pages.clear()

        fetch_rejected: dict[str, int] = {}
        for cursor in plan["datasets"].values():
            datafair.merge_counts(fetch_rejected, cursor.get("rejected", {}))
        fetched = sum(len(part) for part in parts)
        if not parts:
            parts = [pd.DataFrame(columns=[*ademe.FIELDS, "source"])]
        changes, rejections = store_module.normalise_dpe(pd.concat(parts))
        del parts
        rejected = datafair.merge_counts(dict(fetch_rejected), rejections)

        current = self._current_dpe()
        if plan["mode"] == "incremental":
            frame, counts = ademe.merge(current, changes)
        else:
            if not len(changes):
                raise SourceError(
                    "ademe", f"no valid DPE fetched ({fetched} rows)", base_url
                )
            frame, counts = changes, ademe.compare(current, changes)

        result.rows = len(frame)
        result.rejected = rejected
        result.__dict__.update(counts)
        result.details["fetched"] = fetched
        self._write(
            "dpe",
            frame[list(schema.DPE_COLUMNS)],
            {"mode": plan["mode"], "since": plan["since"], "fetched": fetched},
        )
        shutil.rmtree(self.staging / "ademe", ignore_errors=True)

    def _fetch_ademe_dataset(
        self, client, base_url, dataset, cursor, plan, page_size, pages
    ) -> None:
        label = f"ademe {dataset}"
        self._emit("start", "ademe", label, cursor.get("total"))
        self._emit("advance", "ademe", cursor.get("rows", 0), cursor.get("total"))

        if not cursor.get("select"):
            page_format = self.config.get("ADEME_PAGE_FORMAT", "csv")
            if page_format not in ademe.PAGE_FORMATS:
                raise SourceError(
                    "ademe", f"ADEME_PAGE_FORMAT must be csv or json: {page_format!r}"
                )
            cursor.update(ademe.plan_dataset(client, base_url, dataset, page_format))
        # A cursor saved before CSV pages existed read JSON pages.
        cursor.setdefault("format", "json")
        cursor.setdefault("headers", None)
        params = ademe.first_params(
            self.departement, page_size, cursor["select"], plan["since"]
        )
        if cursor.get("total") is None and cursor.get("format") == "csv":
            # CSV pages carry no total: one `size=0` request gives it.
            cursor["total"] = ademe.count(client, base_url, dataset, params)
            self._emit("start", "ademe", label, cursor["total"])

        try:
            self._fetch_ademe_pages(
                client, base_url, dataset, cursor, plan, params, pages
            )
        except datafair.CsvHeaderMismatch as exc:
            url = ademe.dataset_url(base_url, dataset)
            if cursor.get("pages"):
                raise SourceError("ademe", f"schema change: {exc}", url) from None
            logger.warning("ademe %s: %s; reading JSON pages instead", dataset, exc)
            cursor.update(format="json", headers=None)
            self._fetch_ademe_pages(
                client, base_url, dataset, cursor, plan, params, pages
            )
        cursor["done"] = True
        self._save_cursor(plan)

    def _fetch_ademe_pages(
        self, client, base_url, dataset, cursor, plan, params, pages
    ) -> None:
        folder = self.staging / "ademe" / dataset
        fetched = ademe.iter_pages(
            client, base_url, dataset, params, cursor, resume_from=cursor.get("next")
        )
        extra: set[str] = set()
        for page in fetched:
            frame, bad, new = ademe.page_frame(page, cursor["select"])
            extra |= new
            number = cursor.get("pages", 0) + 1
            # The page is on disk before the cursor moves past it.
            stage_page(folder, number, page.body, cursor["format"])
            pages.append(frame)
            cursor["pages"] = number
            cursor["rows"] = cursor.get("rows", 0) + len(frame)
            cursor["rejected"] = datafair.merge_counts(cursor.get("rejected", {}), bad)
            if page.total is not None and cursor.get("total") is None:
                cursor["total"] = page.total
            cursor["next"] = page.next
            cursor["done"] = page.next is None
            self._save_cursor(plan)
            self._emit("advance", "ademe", cursor["rows"], cursor.get("total"))
        if extra:
            logger.info("ademe %s: new fields ignored: %s", dataset, sorted(extra))

    def _current_dpe(self) -> pd.DataFrame:
        columns = list(schema.DPE_COLUMNS)
        frame = self.store.dpe[columns].copy()
        for column in frame.columns:
            if isinstance(frame[column].dtype, pd.CategoricalDtype):
                frame[column] = frame[column].astype("string")
        return frame

    # ------------------------------------------------------------ Enedis

    def _run_enedis(self, result: SourceResult, full: bool) -> None:
        result.details["started_at"] = store_module.now_iso()
        page_size = int(self.config.get("ENEDIS_PAGE_SIZE", datafair.MAX_PAGE_SIZE))
        datafair_url = self.config["ENEDIS_API_URL"]
        ods_url = self.config["ENEDIS_ODS_URL"]

        def progress(label: str) -> Callable[[int, int | None], None]:
            def report(done: int, total: int | None) -> None:
                self._emit("advance", "enedis", done, total)

            return report

        with self._client("enedis") as client:
            self._emit("start", "enedis", f"enedis adresses {self.departement}", None)
            addresses = enedis.with_fallback(
                [
                    (
                        "data-fair",
                        lambda: enedis.datafair_addresses(
                            client,
                            datafair_url,
                            self.departement,
                            page_size,
                            progress("addresses"),
                        ),
                    ),
                    (
                        "ods",
                        lambda: enedis.ods_addresses(
                            client, ods_url, self.departement, progress("addresses")
                        ),
                    ),
                ]
            )
            self._emit("start", "enedis", "enedis communes (France)", None)
            sums = enedis.with_fallback(
                [
                    (
                        "data-fair",
                        lambda: enedis.datafair_commune_sums(
                            client, datafair_url, progress("communes")
                        ),
                    ),
                    (
                        "ods",
                        lambda: enedis.ods_commune_sums(
                            client, ods_url, progress("communes")
                        ),
                    ),
                ]
            )

        frame, rejections = store_module.normalise_enedis(addresses.frame)
        if not len(frame):
            raise SourceError(
                "enedis",
                f"no valid address row ({len(addresses.frame)} fetched)",
                addresses.url,
            )
        national, national_rejections = store_module.normalise_enedis_communes(
            sums.frame
        )
        if not len(national):
            raise SourceError("enedis", "no valid per-commune sum", sums.url)

        key = ["annee", "code_commune", "adresse", "code_iris"]
        counts = _fetch_counts(_keys(self.store.enedis, key), _keys(frame, key))
        result.rows = len(frame)
        result.rejected = datafair.merge_counts(dict(addresses.rejected), rejections)
        result.__dict__.update(counts)
        result.details.update(
            host=addresses.host,
            url=addresses.url,
            communes_host=sums.host,
            communes_rows=len(national),
            communes_rejected=datafair.merge_counts(
                dict(sums.rejected), national_rejections
            ),
        )
        self._write("enedis", frame, {"host": addresses.host, "url": addresses.url})
        self._write("enedis_communes", national, {"host": sums.host, "url": sums.url})

    # ------------------------------------------------------------ helpers

    def _fresh_staging(self, source: str) -> Path:
        folder = self.staging / source
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


#: Sources whose staged pages are kept after a failure, to resume from them.
RESUMABLE_SOURCES = frozenset({"ademe"})


def stage_page(folder: Path, number: int, body: bytes, page_format: str) -> None:
    """Save one page body as received, to rebuild it on resume.

    Written then renamed, without fsync: a page lost to a power cut is noticed
    by `read_staged_pages`, which downloads that dataset again.
    """
    path = folder / f"page-{number:05d}.{page_format}"
    partial = path.with_suffix(".part")
    partial.write_bytes(body)
    os.replace(partial, path)


def read_staged_pages(folder: Path, cursor: dict) -> list[pd.DataFrame]:
    """Return the pages saved by an interrupted run, as frames of its fields.

    Pages written after the last saved cursor are deleted: they are fetched again.
    """
    count = int(cursor.get("pages", 0))
    plan = {
        "select": cursor.get("select") or list(ademe.FIELDS),
        "format": cursor.get("format", "json"),
        "headers": cursor.get("headers"),
    }
    frames = []
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob("page-*.*")):
        number = int(path.stem.split("-")[1])
        if number > count or path.suffix != f".{plan['format']}":
            path.unlink()
            continue
        try:
            frames.append(ademe.staged_frame(path.read_bytes(), plan))
        except (ValueError, KeyError, datafair.CsvHeaderMismatch) as exc:
            logger.warning("%s: unreadable staged page (%s)", path, exc)
            break
    if len(frames) != count:
        logger.warning(
            "%s holds %d of %d saved pages: downloading it again",
            folder,
            len(frames),
            count,
        )
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        cursor.update(next=None, rows=0, total=None, pages=0, rejected={}, done=False)
        return []
    return frames


# --------------------------------------------------------------------------- runs


def parse_sources(value: str) -> list[str]:
    """Return the sources named by the --source option (or 'all')."""
    if value == "all":
        return list(SOURCES)
    if value not in SOURCES:
        raise ValueError(
            f"unknown source {value!r}: choose {', '.join(SOURCES)} or all"
        )
    return [value]


def run_locked(
    store,
    config: dict,
    sources: list[str],
    full: bool,
    listeners: Iterable[Listener] = (),
    origin: str = "cli",
    lock: RefreshLock | None = None,
) -> list[SourceResult]:
    """Run a refresh under the volume lock, recording progress for every worker.

    A caller that already holds `lock` passes it; it is released at the end.
    """
    if lock is None:
        lock = RefreshLock(store.volume)
        if not lock.acquire():
            raise RefreshBusy(_busy_message(store.volume))
    status = StatusFile(store.volume)
    status.begin(sources, full, origin)
    results: list[SourceResult] = []
    try:
        job = RefreshJob(store, config, [status, *listeners])
        results = job.run(sources, full)
        status.end(results)
        return results
    except BaseException as exc:
        status.end(results, message=f"interrupted ({exc.__class__.__name__})")
        raise
    finally:
        lock.release()


def _busy_message(volume: Path) -> str:
    pid = ""
    try:
        pid = (Path(volume) / store_module.REFRESH_LOCK).read_text().strip()
    except OSError:
        pass
    return "a refresh is already running" + (f" (pid {pid})" if pid else "")


def start_background(app, sources: list[str], full: bool = False) -> threading.Thread:
    """Start a refresh in a thread of this process; RefreshBusy if one runs."""
    store = app.extensions["store"]
    lock = RefreshLock(store.volume)
    if not lock.acquire():
        raise RefreshBusy(_busy_message(store.volume))
    StatusFile(store.volume).begin(sources, full, "web")

    def work() -> None:
        with app.app_context():
            try:
                run_locked(store, app.config, sources, full, origin="web", lock=lock)
            except Exception:
                logger.exception("background refresh failed")

    thread = threading.Thread(target=work, name="refresh", daemon=True)
    thread.start()
    return thread


def current_status(store) -> dict | None:
    """Return the refresh status; `running` is true only while the lock is held."""
    status = StatusFile(store.volume).read()
    if status is None:
        return None
    running = RefreshLock(store.volume).is_held_elsewhere()
    if status.get("state") == "running" and not running:
        status["state"] = "failed"
        status["message"] = status.get("message") or "interrupted"
    status["running"] = running and status.get("state") == "running"
    return status


# --------------------------------------------------------------------------- CLI


def _format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """A per-source progress line on the terminal: rows of total, rate, ETA.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) a line is
    printed every `every` seconds and when each step ends.
    """

    WIDTH = 24

    def __init__(
        self, stream=None, interactive: bool | None = None, every: float = 5.0
    ):
        self.stream = stream or sys.stdout
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.every = every
        self._label = ""
        self._started = time.monotonic()
        self._shown = 0.0
        self._last: tuple[int, int | None] | None = None
        self._pending = False
        self._open = False

    def start(self, source: str, label: str, total: int | None) -> None:
        self._flush()
        self._label = label
        self._started = time.monotonic()
        self._shown = 0.0
        self._last = None

    def advance(self, source: str, done: int, total: int | None) -> None:
        self._last = (done, total)
        self._pending = True
        now = time.monotonic()
        if self.interactive or now - self._shown >= self.every:
            self._show(now)

    def finish(self, result: SourceResult) -> None:
        self._flush()
        word = "done" if result.ok else result.status
        click.echo(
            f"{result.source:<10} {word} in {_format_duration(result.duration)}"
            f" ({result.rows:,} rows)",
            file=self.stream,
        )

    def render(self, done: int, total: int | None, elapsed: float) -> str:
        """Return the progress line of `done` rows of `total` after `elapsed` s."""
        rate = done / elapsed if elapsed > 0 else 0.0
        if total:
            filled = int(min(done / total, 1.0) * self.WIDTH)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            eta = (total - done) / rate if rate > 0 else None
            counts = f"{done:,} of {total:,} rows"
        else:
            bar = "." * self.WIDTH
            eta = None
            counts = f"{done:,} rows"
        return (
            f"{self._label:<30} [{bar}] {counts}  {rate:,.0f} rows/s"
            f"  ETA {_format_duration(eta)}"
        )

    def _show(self, now: float) -> None:
        self._shown = now
        self._pending = False
        line = self.render(*self._last, now - self._started)
        if self.interactive:
            click.echo("\r" + line, file=self.stream, nl=False)
            self._open = True
        else:
            click.echo(line, file=self.stream)

    def _flush(self) -> None:
        if self._pending and self._last is not None:
            self._show(time.monotonic())
        if self._open:
            click.echo("", file=self.stream)
            self._open = False


def summary_table(results: list[SourceResult]) -> str:
    """Return the summary table of a refresh (one row per source)."""
    header = (
        "source",
        "status",
        "rows",
        "added",
        "updated",
        "removed",
        "rejected",
        "duration",
    )
    lines = []
    for r in results:
        rejected = sum(r.rejected.values())
        lines.append(
            (
                r.source,
                r.status,
                f"{r.rows:,}",
                f"{r.added:,}",
                f"{r.updated:,}",
                f"{r.removed:,}",
                f"{rejected:,}",
                _format_duration(r.duration),
            )
        )
    widths = [
        max(len(str(x)) for x in column) for column in zip(header, *lines, strict=False)
    ]
    out = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for line in lines:
        out.append(
            "  ".join(str(v).ljust(w) for v, w in zip(line, widths, strict=True))
        )
    for r in results:
        for reason, count in sorted(r.rejected.items()):
            out.append(f"  {r.source}: {count:,} rejected: {reason}")
    return "\n".join(out)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


data_cli = AppGroup("data", help="Manage the datasets: refresh them from open data.")


@data_cli.command("refresh")
@click.option(
    "--source",
    type=click.Choice([*SOURCES, "all"]),
    default="all",
    show_default=True,
    help="Which source to refresh.",
)
@click.option("--full", is_flag=True, help="Download everything (no incremental).")
def refresh_command(source: str, full: bool) -> None:
    """Fetch the open data, show progress, then a summary; non-zero on failure."""
    from flask import current_app

    store = current_app.extensions["store"]
    bar = ProgressBar()
    # A stopped container sends SIGTERM: end like Ctrl-C, cursor saved.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = run_locked(
            store, current_app.config, parse_sources(source), full, [bar]
        )
    except RefreshBusy as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException(
            "interrupted: the next run resumes from the saved cursor"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)

    click.echo("")
    click.echo(summary_table(results))
    failed = [r for r in results if not r.ok]
    if failed:
        raise click.ClickException(" | ".join(r.message for r in failed))
    origins = {name: s["origin"] for name, s in store.sources.items()}
    click.echo("data in service: " + ", ".join(f"{n} {o}" for n, o in origins.items()))


def init_app(app) -> None:
    """Register the `flask data` commands, CSRF and the refresh template helpers."""
    from webapp import csrf

    csrf.init_app(app)
    app.cli.add_command(data_cli)

    def _status() -> dict | None:
        return current_status(app.extensions["store"])

    app.jinja_env.globals["refresh_status"] = _status

    @app.context_processor
    def _refresh_context() -> dict:
        return {"refresh_enabled": bool(app.config.get("REFRESH_TOKEN"))}
