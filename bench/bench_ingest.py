"""Ingestion of a 200,000-row ADEME payload against a bare `pandas.read_csv`.

The payload is the demo generator scaled up, cut into Data Fair pages of 10,000
rows, in both formats the refresh can read: CSV pages (`format=csv`, headers
that are field titles, mapped to keys through the schema; the default) and JSON
bodies (the fallback). The refresh path parses each page, stages its body,
then normalises, validates and stores the whole table through
`DataStore.write_dataset`: the code the refresh job runs, minus the network.
The reference reads the same rows from one CSV file with `pandas.read_csv`.
Each side runs in its own child process so that its peak memory is its own.
Goals (CSV pages, the default): at most 3 times the bare read, peak memory
under 1.5 GB. The JSON path is measured too, for information.

Run alone with ``python -m bench.bench_ingest [rows]`` (prints JSON), or with the
other benchmarks through ``python -m bench``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

ROWS = 200_000
PAGE_SIZE = 10_000
#: Goals of the issue.
MAX_RATIO = 3.0
MAX_PEAK_MB = 1536
#: Each side runs this many times; the fastest run counts (less noise).
REPEATS = 2


def _title(key: str) -> str:
    return key.replace("_", " ").strip().capitalize()


def schema_fields(keys) -> list[dict]:
    """The Data Fair schema of the payload: keys, original names and titles."""
    return [{"key": k, "x-originalName": k, "title": _title(k)} for k in keys]


def build_payload(folder: Path, rows: int = ROWS) -> dict:
    """Write the JSON and CSV pages and the equivalent CSV; describe them."""
    import pandas as pd

    from webapp import demo

    started = time.perf_counter()
    communes = demo.load_communes()
    frame = demo.generate_dpe(communes, n=rows)
    frame = frame.drop(columns="source")
    generated = time.perf_counter() - started

    records = json.loads(frame.to_json(orient="records", force_ascii=False))
    table = pd.DataFrame(records)
    titles = {key: _title(key) for key in table.columns}
    json_pages, csv_pages = [], []
    for number, start in enumerate(range(0, len(records), PAGE_SIZE)):
        chunk = records[start : start + PAGE_SIZE]
        body = {"results": chunk}
        if number == 0:
            body["total"] = len(records)
        if len(chunk) == PAGE_SIZE:
            body["next"] = f"https://example.invalid/lines?after={start + PAGE_SIZE}"
        path = folder / f"page-{number:03d}.json"
        path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        json_pages.append(str(path))
        path = folder / f"page-{number:03d}.csv"
        page = table.iloc[start : start + PAGE_SIZE].rename(columns=titles)
        page.to_csv(path, index=False)
        csv_pages.append(str(path))

    csv_path = folder / "dpe.csv"
    table.to_csv(csv_path, index=False)
    return {
        "rows": len(records),
        "columns": len(frame.columns),
        "json_pages": json_pages,
        "csv_pages": csv_pages,
        "csv": str(csv_path),
        "json_mb": round(sum(Path(p).stat().st_size for p in json_pages) / 2**20, 1),
        "csv_pages_mb": round(
            sum(Path(p).stat().st_size for p in csv_pages) / 2**20, 1
        ),
        "csv_mb": round(csv_path.stat().st_size / 2**20, 1),
        "generated_s": round(generated, 2),
    }


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM, reset by exec unlike maxrss)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare_read(csv_path: str, queue) -> None:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(csv_path, low_memory=False)
    seconds = time.perf_counter() - started
    queue.put({"seconds": seconds, "rows": len(frame), "peak_mb": _peak_mb()})


def _refresh_path(pages: list[str], page_format: str, volume: str, queue) -> None:
    import pandas as pd

    from webapp import refresh
    from webapp.sources import ademe
    from webapp.sources import datafair
    from webapp.store import DataStore
    from webapp.store import normalise_dpe

    store = DataStore(Path(volume))
    folder = Path(volume) / "staging" / "ademe" / "dpe03existant"
    folder.mkdir(parents=True, exist_ok=True)
    select = list(ademe.FIELDS)
    headers = datafair.csv_header_names(schema_fields(select), select)
    steps = {}

    # What the job does per page: parse, validate, stage the body, keep a frame.
    started = time.perf_counter()
    frames = []
    for number, page in enumerate(pages, start=1):
        body = Path(page).read_bytes()
        if page_format == "csv":
            frame = datafair.csv_page_frame(
                body, select, headers, numeric=ademe.NUMERIC_FIELDS
            )
        else:
            document = json.loads(body)
            frame, _, _ = datafair.page_frame(document["results"], select, body)
        refresh.stage_page(folder, number, body, page_format)
        frames.append(frame)
    steps["parse_validate_stage_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    frame = pd.concat(frames, ignore_index=True)
    frame["source"] = "existant"
    del frames
    normalised, rejections = normalise_dpe(frame)
    del frame
    steps["normalise_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    store.write_dataset("dpe", normalised, origin="api", reload=False)
    steps["store_s"] = time.perf_counter() - mark

    queue.put(
        {
            "seconds": time.perf_counter() - started,
            "rows": int(len(normalised)),
            "rejected": dict(rejections),
            "steps": {k: round(v, 3) for k, v in steps.items()},
            "peak_mb": _peak_mb(),
        }
    )


def _in_child(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    result = queue.get(timeout=900)
    process.join(timeout=60)
    if process.exitcode:
        raise RuntimeError(f"{target.__name__} exited with {process.exitcode}")
    return result


def run(rows: int = ROWS) -> dict:
    """Run both sides and return the figures (seconds, ratio, peak memory)."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        payload = build_payload(folder, rows)
        logger.info(
            "payload: %d rows, %d pages (%.1f MB CSV pages, %.1f MB JSON)",
            payload["rows"],
            len(payload["csv_pages"]),
            payload["csv_pages_mb"],
            payload["json_mb"],
        )
        runs: dict[str, list[dict]] = {"bare": [], "csv": [], "json": []}
        for attempt in range(REPEATS):
            runs["bare"].append(_in_child(_bare_read, payload["csv"]))
            for page_format in ("csv", "json"):
                volume = folder / f"volume-{page_format}-{attempt}"
                volume.mkdir()
                pages = payload[f"{page_format}_pages"]
                runs[page_format].append(
                    _in_child(_refresh_path, pages, page_format, str(volume))
                )

    bare = min(runs["bare"], key=lambda r: r["seconds"])
    ingest = min(runs["csv"], key=lambda r: r["seconds"])
    from_json = min(runs["json"], key=lambda r: r["seconds"])
    ratio = ingest["seconds"] / bare["seconds"]
    peak = max(r["peak_mb"] for r in runs["csv"] + runs["json"])
    result = {
        "rows": payload["rows"],
        "columns": payload["columns"],
        "pages": len(payload["csv_pages"]),
        "payload_csv_pages_mb": payload["csv_pages_mb"],
        "payload_json_mb": payload["json_mb"],
        "payload_csv_mb": payload["csv_mb"],
        "bare_read_csv_s": round(bare["seconds"], 3),
        "refresh_ingest_s": round(ingest["seconds"], 3),
        "ratio": round(ratio, 2),
        "ratio_goal": MAX_RATIO,
        "ratio_ok": ratio <= MAX_RATIO,
        "refresh_peak_mb": round(peak, 1),
        "bare_peak_mb": round(max(r["peak_mb"] for r in runs["bare"]), 1),
        "peak_goal_mb": MAX_PEAK_MB,
        "peak_ok": peak < MAX_PEAK_MB,
        "rows_stored": ingest["rows"],
        "rejected": ingest["rejected"],
        "steps": ingest["steps"],
        "json_pages_ingest_s": round(from_json["seconds"], 3),
        "json_pages_ratio": round(from_json["seconds"] / bare["seconds"], 2),
        "json_pages_steps": from_json["steps"],
        "json_rows_stored": from_json["rows"],
        "repeats": REPEATS,
        "load_average": round(os.getloadavg()[0], 2),
    }
    logger.info(
        "ingest %.2f s (CSV pages) vs read_csv %.2f s: %.2fx (goal %.0fx), "
        "peak %.0f MB; JSON pages %.2f s (%.2fx)",
        ingest["seconds"],
        bare["seconds"],
        ratio,
        MAX_RATIO,
        peak,
        from_json["seconds"],
        result["json_pages_ratio"],
    )
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    print(json.dumps(run(count), indent=2, ensure_ascii=False))
