"""Memory per gunicorn worker, on the demo data and on a 10x dataset.

The app runs under the Procfile's gunicorn setup (preload, workers from the CPU
count) with trained models in a temporary volume. After every page, fragment and
API path of the load test has been requested several times (so each worker holds
what serving builds), the memory of the master and of each worker is read from
`/proc/<pid>/smaps_rollup`: RSS, PSS (shared pages split between the processes
sharing them: the fair per-worker figure with copy-on-write) and USS (private
pages only: what one more worker costs). Goal: under 400 MB per worker (PSS) on
the 10x data, also after a refresh (skipped with `--quick`): the DPE dataset is
written to the volume as a refresh does, one request lets a worker notice it and
ask the master for a graceful reload (SIGHUP; the master loads the new data, then
forks new workers that share it), and the new workers are exercised and measured.

The 10x dataset is generated with `python -m webapp.demo --scale 10` into a
temporary folder used as INITIAL_DATA_PATH (the real communes file and the
manifest are copied next to it).

    python -m bench.bench_memory [--quick] [--scale 10] [--workers N]

`--quick` (or BENCH_QUICK=1) uses `--scale 2` and fewer warm-up rounds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_load import UNLIMITED
from bench.bench_load import prepare_models
from bench.bench_load import traffic
from bench.loadtest.server import PROJECT_DIR
from bench.loadtest.server import GunicornServer

logger = logging.getLogger("bench.memory")

INITIAL_DIR = PROJECT_DIR / "webapp" / "datasets"
GOAL_MB = 400.0
SCALE = 10
ROUNDS = 4
QUICK = {"scale": 2, "rounds": 1}


def smaps_rollup(pid: int) -> dict[str, float]:
    """RSS, PSS and USS of a process in MB (from /proc/<pid>/smaps_rollup)."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) >= 3 and parts[-1] == "kB":
                values[parts[0].rstrip(":")] = int(parts[1]) / 1024
    uss = values.get("Private_Clean", 0.0) + values.get("Private_Dirty", 0.0)
    return {
        "rss_mb": round(values.get("Rss", 0.0), 1),
        "pss_mb": round(values.get("Pss", 0.0), 1),
        "uss_mb": round(uss, 1),
        "swap_mb": round(values.get("Swap", 0.0), 1),
    }


def generate_dataset(folder: Path, scale: int) -> dict:
    """Write a demo dataset `scale` times the shipped one into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "webapp.demo",
            "--scale",
            str(scale),
            "--out-dir",
            str(folder),
        ],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    for name in ("communes-74.csv", "properties.json"):
        shutil.copy(INITIAL_DIR / name, folder / name)
    return {"scale": scale, "generated_in_s": round(time.perf_counter() - started, 1)}


def exercise(server: GunicornServer, rounds: int) -> int:
    """Request every load-test path `rounds` times per worker; return the count."""
    paths = traffic()
    workers = max(len(server.worker_pids()), 1)
    sent = 0
    for _ in range(rounds * workers):
        for name, group in paths.items():
            for path in group:
                headers = {"HX-Request": "true"} if name == "fragments" else {}
                server.get(path, headers=headers, timeout=120)
                sent += 1
    return sent


def simulate_refresh(volume: Path, initial: Path | None) -> int:
    """Write the DPE dataset to the volume as a refresh does; return its rows.

    Every worker then reloads the data on its next request (the manifest stamp
    changed): the frames it built after the fork are private, not shared.
    """
    from webapp import schema
    from webapp.store import INITIAL_DIR as SHIPPED
    from webapp.store import DataStore
    from webapp.store import read_dataset

    folder = initial or SHIPPED
    frame, _ = read_dataset("dpe", folder / "dpe-74.csv.gz")
    store = DataStore(volume, folder)
    store.write_dataset(
        "dpe", frame[list(schema.DPE_COLUMNS)], origin="api", reload=False
    )
    return len(frame)


def measure(name: str, volume: Path, initial: Path | None, options: dict) -> dict:
    """Start gunicorn on one dataset, exercise it, read the memory of each process."""
    env = {**UNLIMITED}
    if initial is not None:
        env["INITIAL_DATA_PATH"] = str(initial)
    log_path = volume.parent / f"gunicorn-{name}.log"
    started = time.perf_counter()
    with GunicornServer(
        volume, workers=options["workers"], env=env, log_path=log_path
    ) as server:
        boot = round(time.perf_counter() - started, 1)
        health = server.get("/api/v1/health").json()
        ready = server.get("/api/v1/ready").json().get("checks")
        before = {pid: smaps_rollup(pid) for pid in server.worker_pids()}
        requests = exercise(server, options["rounds"])
        master = smaps_rollup(server.master_pid)
        workers = [
            {"pid": pid, **smaps_rollup(pid), "idle_pss_mb": before[pid]["pss_mb"]}
            for pid in server.worker_pids()
            if pid in before
        ]
        refreshed = None
        if options["after_refresh"]:
            refreshed = after_refresh(server, volume, initial, options)
    pss = [w["pss_mb"] for w in workers]
    return {
        "dpe_rows": health["data"]["dpe"]["rows"],
        "enedis_rows": health["data"]["enedis"]["rows"],
        "ready": ready,
        "boot_s": boot,
        "requests_sent": requests,
        "master": master,
        "workers": workers,
        "max_worker_pss_mb": max(pss) if pss else None,
        "max_worker_uss_mb": max((w["uss_mb"] for w in workers), default=None),
        "max_worker_rss_mb": max((w["rss_mb"] for w in workers), default=None),
        "total_pss_mb": round(master["pss_mb"] + sum(pss), 1),
        "after_refresh": refreshed,
    }


def after_refresh(server, volume: Path, initial: Path | None, options: dict) -> dict:
    """Memory of the workers that took over after a refresh.

    A worker that notices the new manifest stamp asks the master for a graceful
    reload (`webapp.store.MasterReload`); the master loads the refreshed data
    before forking the new workers (gunicorn.conf.py `on_reload`).
    """
    old = set(server.worker_pids())
    start = len(server.log())
    rows = simulate_refresh(volume, initial)
    # Past DATA_RELOAD_CHECK_SECONDS every worker looks at the manifest again.
    time.sleep(2)
    server.get("/api/v1/health", timeout=120)
    server.wait_for_workers(len(old), timeout=600, exclude=old)
    deadline = time.monotonic() + 120
    while set(server.worker_pids()) & old and time.monotonic() < deadline:
        time.sleep(0.2)
    exercise(server, options["rounds"])
    log = server.log()[start:]
    master = smaps_rollup(server.master_pid)
    workers = [{"pid": pid, **smaps_rollup(pid)} for pid in server.worker_pids()]
    return {
        "dpe_rows_written": rows,
        "reload_requests_logged": log.count("asked the gunicorn master"),
        "private_reloads_logged": log.count("): reloading") - 1,
        "old_workers_left": len(set(server.worker_pids()) & old),
        "master": master,
        "workers": workers,
        "max_worker_pss_mb": max((w["pss_mb"] for w in workers), default=None),
        "max_worker_uss_mb": max((w["uss_mb"] for w in workers), default=None),
    }


def run(quick=None, scale=None, workers=None) -> dict:
    """Measure the workers' memory on the demo data and on the scaled dataset."""
    if quick is None:
        quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    if workers is None and os.environ.get("BENCH_WORKERS"):
        workers = int(os.environ["BENCH_WORKERS"])
    options = {
        "quick": quick,
        "scale": scale or (QUICK["scale"] if quick else SCALE),
        "rounds": QUICK["rounds"] if quick else ROUNDS,
        "workers": workers,
        "after_refresh": not quick,
    }
    with tempfile.TemporaryDirectory(prefix="atlas-bench-memory-") as folder:
        folder = Path(folder)
        models_volume = folder / "models-volume"
        models_volume.mkdir()
        models = prepare_models(models_volume, quick)

        results = {}
        for name, initial in (
            ("demo", None),
            (f"x{options['scale']}", folder / "scaled"),
        ):
            generated = None
            if initial is not None:
                generated = generate_dataset(initial, options["scale"])
            volume = folder / f"volume-{name}"
            volume.mkdir()
            if (models_volume / "models").is_dir():
                shutil.copytree(models_volume / "models", volume / "models")
            logger.info("measuring %s", name)
            results[name] = measure(name, volume, initial, options)
            if generated:
                results[name]["dataset"] = generated
            logger.info(
                "%s: %d DPE rows, max worker PSS %.0f MB (USS %.0f MB)",
                name,
                results[name]["dpe_rows"],
                results[name]["max_worker_pss_mb"],
                results[name]["max_worker_uss_mb"],
            )

    scaled = results[f"x{options['scale']}"]
    steady = scaled["max_worker_pss_mb"]
    refreshed = (scaled["after_refresh"] or {}).get("max_worker_pss_mb")
    worst = max(v for v in (steady, refreshed) if v is not None)
    return {
        "options": options,
        "models": models,
        "datasets": results,
        "goal": {
            "dataset": f"x{options['scale']}",
            "max_worker_pss_mb": steady,
            "max_worker_pss_after_refresh_mb": refreshed,
            "goal_mb": GOAL_MB,
            "met": worst < GOAL_MB and options["scale"] >= SCALE,
        },
    }


def main(argv: list[str]) -> int:
    """Command line: measure and print the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_memory")
    parser.add_argument("--quick", action="store_true", help="scale 2, one round")
    parser.add_argument("--scale", type=int, help="size of the big dataset")
    parser.add_argument("--workers", type=int, help="gunicorn workers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    result = run(
        quick=True if args.quick else None, scale=args.scale, workers=args.workers
    )
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
