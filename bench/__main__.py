"""Run every benchmark of the project and write bench/results.json.

Each module `bench/bench_<name>.py` exposes `run() -> dict` returning its figures
(JSON-serialisable) and can also be run alone with `python -m bench.bench_<name>`.
`python -m bench [name ...]` runs all of them, or only those named.
"""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import platform
import sys
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

import bench

logger = logging.getLogger("bench")

RESULTS = Path(__file__).resolve().parent / "results.json"


def discover() -> list[str]:
    """Return the names of the benchmark modules, sorted."""
    return sorted(
        module.name
        for module in pkgutil.iter_modules(bench.__path__)
        if module.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    """Run the benchmarks named in argv (all by default) and save the results."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    wanted = [f"bench_{name.removeprefix('bench_')}" for name in argv]
    names = wanted or discover()

    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results = previous.get("benchmarks", {}) if wanted else {}
    failed = []
    for name in names:
        logger.info("running %s", name)
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            results[name.removeprefix("bench_")] = module.run()
        except Exception:
            logger.exception("%s failed", name)
            failed.append(name)
            continue
        logger.info("%s done in %.1f s", name, time.perf_counter() - started)

    payload = {
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
        "benchmarks": results,
    }
    RESULTS.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    logger.info("results written to %s", RESULTS)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
