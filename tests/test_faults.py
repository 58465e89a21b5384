"""Fault tests: bad upstreams, a full volume, killed workers, corrupt files.

Each fault must leave the app serving the data it had before, with the reason
logged or reported, and a later run must recover. The gunicorn tests start the
real server (2 workers, demo data, a temporary volume) on 127.0.0.1.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from bench.loadtest.server import GunicornServer
from bench.loadtest.server import free_port
from tests.conftest import make_app
from tests.fake_upstream import FakeUpstream
from tests.fake_upstream import demo_payloads  # noqa: F401
from tests.fake_upstream import upstream  # noqa: F401
from webapp import refresh
from webapp import store as store_module

ALL_SOURCES = list(refresh.SOURCES)
UNLIMITED = {"RATELIMIT_API": "1000000/minute", "RATELIMIT_AJAX": "1000000/minute"}
HX = {"HX-Request": "true"}
_NONCE = re.compile(r'nonce="[^"]*"')


# --------------------------------------------------------------------------- helpers


def served(client) -> dict:
    """What clients see of the data: versions from the API and a KPI fragment."""
    health = client.get("/api/v1/health")
    kpis = client.get("/ajax/stats/kpis", headers=HX)
    page = client.get("/stats")
    assert health.status_code == 200
    assert kpis.status_code == 200
    assert page.status_code == 200
    return {
        "data": health.get_json()["data"],
        # The nonce changes with every response; the figures must not.
        "kpis": _NONCE.sub("", kpis.get_data(as_text=True)),
    }


def manifest_datasets(volume: Path) -> dict:
    """The datasets section of the volume manifest (empty when absent)."""
    path = volume / store_module.MANIFEST_NAME
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("datasets", {})


def data_files(volume: Path) -> dict[str, str]:
    """sha256 of every file in the volume's data folder."""
    folder = volume / "data"
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def temporary_files(volume: Path) -> list[Path]:
    """Atomic-write temporary files left anywhere in the volume."""
    return [p for p in volume.rglob("*") if ".tmp-" in p.name]


def closed_port_config() -> dict:
    """Source URLs on a 127.0.0.1 port nothing listens on: connection refused."""
    base = f"http://127.0.0.1:{free_port()}"
    return {
        "ADEME_API_URL": f"{base}/ademe/data-fair/api/v1/datasets",
        "ENEDIS_API_URL": f"{base}/enedis/data-fair/api/v1/datasets",
        "ENEDIS_ODS_URL": f"{base}/enedis/api/explore/v2.1/catalog/datasets",
        "DATAGOUV_API_URL": f"{base}/datagouv/api/1",
        "COMMUNES_URL": f"{base}/static/communes.csv",
    }


def fast_http(**extra) -> dict:
    """HTTP settings that give up quickly (one retry, no backoff)."""
    return {
        "HTTP_CONNECT_TIMEOUT": 1.0,
        "HTTP_READ_TIMEOUT": 1.0,
        "HTTP_RETRIES": 1,
        "HTTP_BACKOFF_SECONDS": 0.0,
        "HTTP_BACKOFF_MAX_SECONDS": 0.0,
        "HTTP_MIN_INTERVAL_SECONDS": 0.0,
        **extra,
    }


def run_refresh(app, sources=None, **config) -> list[refresh.SourceResult]:
    """Run a refresh of `sources` (all by default) with extra config."""
    settings = {**app.config, **config}
    store = app.extensions["store"]
    with app.app_context():
        return refresh.run_locked(store, settings, sources or ALL_SOURCES, False)


# --------------------------------------------------------------------------- upstream


@pytest.fixture(scope="module")
def refreshed_volume(tmp_path_factory, demo_payloads):  # noqa: F811
    """A volume holding one successful refresh of every source (origin api)."""
    volume = tmp_path_factory.mktemp("refreshed") / "volume"
    volume.mkdir()
    server = FakeUpstream()
    server.set_ademe(demo_payloads["ademe"])
    server.set_enedis(demo_payloads["enedis"])
    server.communes = demo_payloads["communes"]
    server.start()
    try:
        app = make_app(volume, **server.config())
        results = run_refresh(app)
    finally:
        server.stop()
    assert all(r.ok for r in results), [r.message for r in results]
    assert {s["origin"] for s in app.extensions["store"].sources.values()} == {"api"}
    return volume


#: Per fault: how the ADEME failure message must begin.
UPSTREAM_FAULTS = {
    "down": "unreachable after 2 attempts",
    "slow": "timed out after 2 attempts",
    "html": "HTML page instead of JSON",
    "truncated_json": "invalid or truncated JSON",
    # The first ADEME request is /schema, whose answer is a list of fields.
    "wrong_shape": "schema field without a string 'key'",
    "empty": "empty response body",
    "500": "HTTP 500 after 2 attempts",
}


@pytest.mark.parametrize("fault", list(UPSTREAM_FAULTS))
def test_upstream_fault_fails_the_refresh_and_keeps_serving_previous_data(
    fault,
    refreshed_volume,
    tmp_path,
    upstream,  # noqa: F811
    caplog,
):
    volume = tmp_path / "volume"
    shutil.copytree(refreshed_volume, volume)
    config = upstream.config(**fast_http())
    if fault == "down":
        config.update(closed_port_config())
    elif fault == "slow":
        # Every answer comes after the read timeout.
        config["HTTP_READ_TIMEOUT"] = 0.3
        upstream.slow_seconds = 0.8
        upstream.fail("slow", "/", times=10**6)
    else:
        upstream.fail(fault, "/", times=10**6)
    app = make_app(volume, **config)
    client = app.test_client()
    before = served(client)
    files = data_files(volume)
    manifest = manifest_datasets(volume)
    assert {d["origin"] for d in before["data"].values()} == {"api"}

    results = run_refresh(app)

    assert [r.status for r in results] == ["failed"] * 3
    reasons = {r.source: r.message for r in results}
    assert reasons["ademe"].startswith("ademe: " + UPSTREAM_FAULTS[fault])
    assert reasons["enedis"].startswith("enedis: every host failed")
    assert reasons["communes"].startswith("communes: ")
    # The reasons are logged too, for whoever reads the server's output.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert UPSTREAM_FAULTS[fault] in logged
    assert served(client) == before
    assert data_files(volume) == files
    assert manifest_datasets(volume) == manifest
    assert temporary_files(volume) == []
    # A worker started now (e.g. a restart) serves the same data.
    assert served(make_app(volume, **config).test_client()) == before
    state = app.extensions["store"].read_manifest()["refresh"]
    assert state["ademe"]["last_status"] == "failed"
    assert state["ademe"]["last_error"] == reasons["ademe"]


def test_refresh_recovers_once_the_upstream_is_back(
    refreshed_volume,
    tmp_path,
    upstream,  # noqa: F811
):
    volume = tmp_path / "volume"
    shutil.copytree(refreshed_volume, volume)
    app = make_app(volume, **upstream.config(**fast_http()))
    upstream.fail("500", "/", times=10**6)
    assert not any(r.ok for r in run_refresh(app))

    upstream.faults.clear()
    results = run_refresh(app)

    assert all(r.ok for r in results), [r.message for r in results]
    state = app.extensions["store"].read_manifest()["refresh"]
    assert {s["last_status"] for s in state.values()} == {"ok"}


# --------------------------------------------------------------------------- full disk


class FullDisk:
    """A volume that can run out of space: a real tmpfs, or patched writes.

    The tmpfs is filled with a ballast file so that exactly `free` bytes remain.
    Without the right to mount, writes into the volume are patched to raise
    ENOSPC past a byte budget; `mode` tells which of the two ran.
    """

    def __init__(self, path: Path, size: str, monkeypatch):
        self.path = path
        self.monkeypatch = monkeypatch
        self.mode = "patched"
        self.reason = ""
        self.budget: int | None = None
        path.mkdir(parents=True, exist_ok=True)
        command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.reason = f"mount not possible: {exc}"
        else:
            if done.returncode == 0:
                self.mode = "tmpfs"
            else:
                self.reason = f"mount refused: {done.stderr.strip()}"
        if self.mode == "patched":
            self._patch()
        self.ballast = path / "ballast"

    # ------------------------------------------------------------ space

    def leave_free(self, free: int) -> None:
        """Fill the volume so that about `free` bytes remain writable."""
        if self.mode == "patched":
            self.budget = free
            return
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            chunk = b"\0" * 65536
            try:
                while os.write(fd, chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
            size = os.fstat(fd).st_size
            os.ftruncate(fd, max(size - free, 0))
        finally:
            os.close(fd)

    def release(self) -> None:
        """Give the space back."""
        self.budget = None
        if self.ballast.exists():
            self.ballast.unlink()

    def close(self) -> None:
        """Unmount the tmpfs (lazily if something still holds it)."""
        if self.mode != "tmpfs":
            return
        done = subprocess.run(["umount", str(self.path)], capture_output=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    # ------------------------------------------------------------ fallback

    def _patch(self) -> None:
        disk = self
        real_fdopen = os.fdopen

        class Limited:
            """A binary file whose writes spend the disk's byte budget."""

            def __init__(self, handle, refund: bool):
                self._handle = handle
                # atomic_write_bytes deletes its failed temp file: space comes back.
                self._refund = refund
                self._spent = 0

            def write(self, data):
                if disk.budget is not None:
                    if len(data) > disk.budget:
                        if self._refund:
                            disk.budget += self._spent
                        else:
                            disk.budget = 0
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    disk.budget -= len(data)
                self._spent += len(data)
                return self._handle.write(data)

            def __getattr__(self, name):
                return getattr(self._handle, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._handle.close()

        def fdopen(fd, *args, **kwargs):
            handle = real_fdopen(fd, *args, **kwargs)
            target = os.readlink(f"/proc/self/fd/{fd}")
            inside = target.startswith(str(disk.path.resolve()))
            return Limited(handle, True) if inside and "b" in str(args) else handle

        def open_in_volume(file, mode="r", *args, **kwargs):
            handle = open(file, mode, *args, **kwargs)
            inside = str(Path(file).resolve()).startswith(str(disk.path.resolve()))
            return Limited(handle, False) if inside and "w" in mode else handle

        from webapp.sources import http as http_module

        self.monkeypatch.setattr(store_module.os, "fdopen", fdopen)
        self.monkeypatch.setattr(http_module, "open", open_in_volume, raising=False)


@pytest.fixture
def full_disk(tmp_path, monkeypatch, record_property):
    """A 2 MB volume that the test fills at will (see FullDisk)."""
    disk = FullDisk(tmp_path / "volume", "2m", monkeypatch)
    record_property("enospc_path", disk.mode)
    # Shown with -rA / in the junit report: which of the two paths ran, and why.
    print(f"ENOSPC path: {disk.mode} {disk.reason}".strip())
    yield disk
    disk.close()


def test_write_dataset_on_a_full_volume_fails_cleanly(full_disk):
    app = make_app(full_disk.path)
    store = app.extensions["store"]
    big = store.enedis_communes.copy()
    store.write_dataset("enedis_communes", big.head(50), origin="api")
    target = store.data_dir / "enedis_communes.csv"
    previous = target.read_bytes()
    manifest = (full_disk.path / store_module.MANIFEST_NAME).read_bytes()
    client = app.test_client()
    before = served(client)
    full_disk.leave_free(len(previous) * 2 + 8192)

    with pytest.raises(OSError) as caught:
        store.write_dataset("enedis_communes", big, origin="api")

    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == previous
    assert (full_disk.path / store_module.MANIFEST_NAME).read_bytes() == manifest
    assert temporary_files(full_disk.path) == []
    assert served(client) == before
    store.reload()
    assert store.sources["enedis_communes"]["rows"] == 50
    assert store.sources["enedis_communes"]["loaded_from"] == "volume"

    full_disk.release()
    store.write_dataset("enedis_communes", big, origin="api")
    assert store.sources["enedis_communes"]["rows"] == len(big)


@pytest.mark.parametrize("where", ["staging", "dataset"])
def test_refresh_on_a_full_volume_fails_cleanly_and_keeps_the_data(
    where,
    full_disk,
    upstream,  # noqa: F811
):
    app = make_app(full_disk.path, **upstream.config(**fast_http()))
    assert run_refresh(app, ["communes"])[0].ok
    client = app.test_client()
    before = served(client)
    files = data_files(full_disk.path)
    manifest = manifest_datasets(full_disk.path)
    download = len(upstream.communes)
    # "staging": the download itself hits the limit; "dataset": the download fits
    # and the write of the new communes table (backup copy first) does not.
    full_disk.leave_free(download // 3 if where == "staging" else download + 20_000)

    result = run_refresh(app, ["communes"])[0]

    assert result.status == "failed"
    assert "No space left on device" in result.message
    assert served(client) == before
    assert data_files(full_disk.path) == files
    assert manifest_datasets(full_disk.path) == manifest
    assert temporary_files(full_disk.path) == []
    status = refresh.current_status(app.extensions["store"])
    assert status["state"] == "failed" and not status["running"]

    full_disk.release()
    assert run_refresh(app, ["communes"])[0].ok


# --------------------------------------------------------------------------- corrupt


def corrupt_dpe(volume: Path) -> bytes:
    """Put a truncated gzip (an interrupted copy) in service as the volume DPE."""
    whole = (store_module.INITIAL_DIR / "dpe-74.csv.gz").read_bytes()
    broken = whole[: len(whole) // 3]
    data = volume / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "dpe.csv").write_bytes(broken)
    manifest = {
        "datasets": {
            "dpe": {
                "updated_at": "2026-11-30T00:00:00+00:00",
                "origin": "api",
                "rows": 25_000,
                "sha256": hashlib.sha256(broken).hexdigest(),
                "schema_version": 1,
            }
        },
        "stamp": "corrupt",
    }
    (volume / store_module.MANIFEST_NAME).write_text(json.dumps(manifest))
    return broken


def initial_sha(name: str) -> str:
    return hashlib.sha256((store_module.INITIAL_DIR / name).read_bytes()).hexdigest()


def test_corrupt_volume_file_falls_back_with_a_logged_reason(volume, caplog):
    corrupt_dpe(volume)

    with caplog.at_level(logging.ERROR, logger="webapp.store"):
        app = make_app(volume)

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        "dpe:" in m and "dpe.csv not loaded: unreadable file" in m for m in errors
    ), errors
    client = app.test_client()
    data = served(client)["data"]
    assert data["dpe"]["sha256"] == initial_sha("dpe-74.csv.gz")
    assert data["dpe"]["origin"] == "demo"
    assert client.get("/map").status_code == 200


# --------------------------------------------------------------------------- gunicorn


def slow_app():
    """The app plus a route that sleeps, to kill a worker in mid-request.

    gunicorn loads it as `tests.test_faults:slow_app()`; the route writes the
    worker's pid to FAULTS_PID_FILE first so the test knows whom to kill.
    """
    from flask import request

    from webapp import create_app

    app = create_app()

    @app.get("/_faults/slow")
    def _slow():
        with open(os.environ["FAULTS_PID_FILE"], "w", encoding="utf-8") as handle:
            handle.write(str(os.getpid()))
        deadline = time.monotonic() + float(request.args.get("seconds", "60"))
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return "done"

    return app


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    """Poll `condition()` until it returns a true value; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def serves_everything(server: GunicornServer, rounds: int = 6) -> list[dict]:
    """Request health, a fragment and a page `rounds` times; all must be 200."""
    seen = []
    for _ in range(rounds):
        health = server.get("/api/v1/health")
        assert health.status == 200
        assert server.get("/ajax/stats/kpis", headers=HX).status == 200
        assert server.get("/stats").status == 200
        seen.append(health.json()["data"])
    return seen


def test_worker_killed_in_mid_request_the_others_keep_serving(tmp_path):
    pid_file = tmp_path / "slow.pid"
    env = {**UNLIMITED, "FAULTS_PID_FILE": str(pid_file)}
    with GunicornServer(
        tmp_path / "volume", workers=2, env=env, app="tests.test_faults:slow_app()"
    ) as server:
        outcome: dict = {}

        def slow_request():
            try:
                outcome["status"] = server.get("/_faults/slow?seconds=60", timeout=90)
            except (OSError, http.client.HTTPException) as exc:
                outcome["error"] = exc

        client = threading.Thread(target=slow_request, daemon=True)
        client.start()
        wait_for(pid_file.exists, 60, "the slow request")
        victim = int(wait_for(lambda: pid_file.read_text().strip(), 10, "its pid"))
        assert victim in server.worker_pids()

        os.kill(victim, signal.SIGKILL)
        client.join(timeout=60)

        # The request in flight on the killed worker is lost (a proxy would 502).
        assert not client.is_alive()
        assert "error" in outcome, outcome
        serves_everything(server)
        workers = server.wait_for_workers(2, timeout=90, exclude={victim})
        assert victim not in workers
        wait_for(lambda: f"pid:{victim}" in server.log(), 30, "the master's log line")
        # The same request, re-run, succeeds on the remaining or the new worker.
        again = server.get("/_faults/slow?seconds=0")
        assert again.status == 200 and again.text == "done"
        serves_everything(server)


class Browser:
    """A cookie-keeping client of the refresh form (session + CSRF token)."""

    def __init__(self, server: GunicornServer):
        self.server = server
        self.cookie = ""

    def page(self, path: str):
        answer = self.server.get(path, headers=self._headers())
        self._keep(answer)
        return answer

    def post(self, path: str, form: dict):
        headers = {
            **self._headers(),
            **HX,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        answer = self.server.request(
            "POST", path, body=urlencode(form).encode(), headers=headers
        )
        self._keep(answer)
        return answer

    def start_refresh(self, token: str, source: str):
        page = self.page("/context")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, "refresh form not on /context"
        form = {"csrf_token": found.group(1), "token": token, "source": source}
        return self.post("/ajax/refresh", form)

    def _headers(self) -> dict:
        return {"Cookie": self.cookie} if self.cookie else {}

    def _keep(self, answer) -> None:
        cookie = answer.headers.get("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]


def upstream_env(upstream, **extra) -> dict[str, str]:  # noqa: F811
    """The fake services' settings as environment variables for gunicorn."""
    settings = upstream.config(**extra)
    return {key: str(value) for key, value in settings.items()}


def test_worker_killed_in_mid_refresh_others_serve_and_a_rerun_recovers(
    tmp_path,
    upstream,  # noqa: F811
):
    release = threading.Event()
    # Hold the second page of the existing-DPE download until the worker is dead.
    upstream.block = (
        lambda r: "dpe03existant/lines" in r.path and "after" in r.args,
        release,
    )
    env = {
        **UNLIMITED,
        **upstream_env(upstream, HTTP_READ_TIMEOUT=60.0),
        "REFRESH_TOKEN": "fault-token",
        # Every request checks the manifest: the workers reload at once.
        "FLASK_DATA_RELOAD_CHECK_SECONDS": "0",
    }
    volume = tmp_path / "volume"
    with GunicornServer(volume, workers=2, env=env) as server:
        before = serves_everything(server, rounds=2)[0]
        browser = Browser(server)

        started = browser.start_refresh("fault-token", "ademe")
        assert started.status == 202, started.text
        assert upstream.reached.wait(60), "the refresh never reached the upstream"
        lock = volume / "refresh" / "lock"
        victim = int(wait_for(lambda: lock.read_text().strip(), 10, "the lock pid"))
        assert victim in server.worker_pids()

        os.kill(victim, signal.SIGKILL)
        upstream.block = None
        release.set()

        # The other worker serves the data of before; the refresh shows as failed.
        assert all(seen == before for seen in serves_everything(server))
        progress = browser.page("/ajax/refresh/progress")
        assert progress.status == 286
        assert "La mise à jour a échoué" in progress.text
        assert manifest_datasets(volume) == {}
        server.wait_for_workers(2, timeout=90, exclude={victim})

        upstream.log.clear()
        again = browser.start_refresh("fault-token", "ademe")
        assert again.status == 202, again.text
        wait_for(
            lambda: browser.page("/ajax/refresh/progress").status == 286,
            120,
            "the re-run to finish",
            interval=0.5,
        )

        done = browser.page("/ajax/refresh/progress")
        assert "Mise à jour terminée" in done.text, done.text
        # The re-run resumed from the cursor saved before the kill.
        first = upstream.requests_to("dpe03existant/lines")[0]
        assert "after" in first
        after = serves_everything(server)
        assert all(seen["dpe"]["origin"] == "api" for seen in after)
        assert all(seen["dpe"]["sha256"] == after[0]["dpe"]["sha256"] for seen in after)
        assert manifest_datasets(volume)["dpe"]["sha256"] == after[0]["dpe"]["sha256"]
        assert "resuming the full download" in server.log()


def test_corrupt_volume_file_under_gunicorn_falls_back_and_reloads(tmp_path):
    volume = tmp_path / "volume"
    corrupt_dpe(volume)
    env = {**UNLIMITED, "FLASK_DATA_RELOAD_CHECK_SECONDS": "0"}
    with GunicornServer(volume, workers=2, env=env) as server:
        log = server.log()
        assert re.search(r"ERROR webapp\.store: dpe: .*dpe\.csv not loaded: \w", log)
        seen = serves_everything(server)
        assert {s["dpe"]["sha256"] for s in seen} == {initial_sha("dpe-74.csv.gz")}

        # A good file with its backup, then the file goes bad while serving.
        store = store_module.DataStore(volume)
        dpe, _ = store_module.read_dataset(
            "dpe", store_module.INITIAL_DIR / "dpe-74.csv.gz"
        )
        # Rows of the shipped file are valid: each version keeps all its rows.
        backup_rows, rows = 400, 300
        store.write_dataset("dpe", dpe.head(backup_rows), origin="api", reload=False)
        store.write_dataset("dpe", dpe.head(rows), origin="api", reload=False)
        wait_for(
            lambda: all(s["dpe"]["rows"] == rows for s in serves_everything(server, 3)),
            30,
            "the workers to load the new DPE",
        )
        target = volume / "data" / "dpe.csv"
        target.write_bytes(b"\xff\xfe not a csv \x00\x01" * 50)
        store.update_manifest(lambda manifest: None)

        wait_for(
            lambda: all(
                s["dpe"]["rows"] == backup_rows for s in serves_everything(server, 3)
            ),
            30,
            "the fallback to the backup",
        )
        # Startup, then at least one worker's reload, logged the reason.
        assert server.log().count("dpe.csv not loaded: unreadable file") >= 2
        assert "previous version restored from" in server.log()
        assert list((volume / "data" / "quarantine").iterdir())
