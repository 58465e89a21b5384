"""Ingestion of a 200,000-row ADEME payload against a bare `pandas.read_csv`.

The payload is the demo generator scaled up, cut into Data Fair pages of 10,000
rows (JSON bodies as the API sends them). The refresh path parses each page,
validates its rows, stages them, then normalises, validates and stores the whole
table through `DataStore.write_dataset`: the code the refresh job runs, minus the
network. The reference reads the same rows from one CSV file with
`pandas.read_csv`. Each side runs in its own child process so that its peak
memory (ru_maxrss) is its own. Goals: at most 3 times the bare read, peak memory
under 1.5 GB.

Run alone with ``python -m bench.bench_ingest [rows]`` (prints JSON), or with the
other benchmarks through ``python -m bench``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
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


def build_payload(folder: Path, rows: int = ROWS) -> dict:
    """Write the JSON pages and the equivalent CSV; return their description."""
    import pandas as pd

    from webapp import demo

    started = time.perf_counter()
    communes = demo.load_communes()
    frame = demo.generate_dpe(communes, n=rows)
    frame = frame.drop(columns="source")
    generated = time.perf_counter() - started

    records = json.loads(frame.to_json(orient="records", force_ascii=False))
    pages = []
    for number, start in enumerate(range(0, len(records), PAGE_SIZE)):
        chunk = records[start : start + PAGE_SIZE]
        body = {"results": chunk}
        if number == 0:
            body["total"] = len(records)
        if len(chunk) == PAGE_SIZE:
            body["next"] = f"https://example.invalid/lines?after={start + PAGE_SIZE}"
        path = folder / f"page-{number:03d}.json"
        path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        pages.append(str(path))

    csv_path = folder / "dpe.csv"
    pd.DataFrame(records).to_csv(csv_path, index=False)
    return {
        "rows": len(records),
        "columns": len(frame.columns),
        "pages": pages,
        "csv": str(csv_path),
        "json_mb": round(sum(Path(p).stat().st_size for p in pages) / 2**20, 1),
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


def _refresh_path(pages: list[str], volume: str, queue) -> None:
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
    steps = {}

    # What the job does per page: parse, validate, stage the body, keep a frame.
    started = time.perf_counter()
    frames = []
    for number, page in enumerate(pages, start=1):
        body = Path(page).read_bytes()
        document = json.loads(body)
        frame, _, _ = datafair.page_frame(document["results"], select, body)
        refresh.stage_page(folder, number, body)
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
            "payload: %d rows, %d pages (%.1f MB JSON, %.1f MB CSV)",
            payload["rows"],
            len(payload["pages"]),
            payload["json_mb"],
            payload["csv_mb"],
        )
        bare_runs, refresh_runs = [], []
        for attempt in range(REPEATS):
            bare_runs.append(_in_child(_bare_read, payload["csv"]))
            volume = folder / f"volume-{attempt}"
            volume.mkdir()
            refresh_runs.append(_in_child(_refresh_path, payload["pages"], str(volume)))

    bare = min(bare_runs, key=lambda r: r["seconds"])
    ingest = min(refresh_runs, key=lambda r: r["seconds"])
    ratio = ingest["seconds"] / bare["seconds"]
    peak = max(r["peak_mb"] for r in refresh_runs)
    result = {
        "rows": payload["rows"],
        "columns": payload["columns"],
        "pages": len(payload["pages"]),
        "payload_json_mb": payload["json_mb"],
        "payload_csv_mb": payload["csv_mb"],
        "bare_read_csv_s": round(bare["seconds"], 3),
        "refresh_ingest_s": round(ingest["seconds"], 3),
        "ratio": round(ratio, 2),
        "ratio_goal": MAX_RATIO,
        "ratio_ok": ratio <= MAX_RATIO,
        "refresh_peak_mb": round(peak, 1),
        "bare_peak_mb": round(max(r["peak_mb"] for r in bare_runs), 1),
        "peak_goal_mb": MAX_PEAK_MB,
        "peak_ok": peak < MAX_PEAK_MB,
        "rows_stored": ingest["rows"],
        "rejected": ingest["rejected"],
        "steps": ingest["steps"],
        "repeats": REPEATS,
    }
    logger.info(
        "ingest %.2f s vs read_csv %.2f s: %.2fx (goal %.0fx), peak %.0f MB",
        ingest["seconds"],
        bare["seconds"],
        ratio,
        MAX_RATIO,
        peak,
    )
    return result


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    print(json.dumps(run(count), indent=2, ensure_ascii=False))
