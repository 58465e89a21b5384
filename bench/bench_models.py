"""Benchmark of the served models: one-row and 1,000-row latency, artifact sizes.

Goals (issue #3): one row at most 2 ms p50, 1,000 rows at most 100 ms, every
artifact at most 5 MB. Uses the models of the app's volume; when there are none
it trains them on the data in service into a temporary folder first (and says
so). Run alone with ``python -m bench.bench_models`` (prints JSON) or with all
benchmarks through ``python -m bench``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

from ml.train import latency_ms

logger = logging.getLogger(__name__)

GOAL_ONE_ROW_P50_MS = 2.0
GOAL_BATCH_1000_MS = 100.0
GOAL_ARTIFACT_MB = 5.0
ONE_ROW_CALLS = 1000
BATCH_CALLS = 20
BATCH_ROWS = 1000


def _timings(call, calls: int) -> dict:
    """Return p50/p99 in milliseconds, measured as the training report does."""
    measured = latency_ms(call, calls)
    return {
        "p50_ms": round(measured["p50"], 3),
        "p99_ms": round(measured["p99"], 3),
        "calls": calls,
    }


def _predictor(app):
    registry = app.extensions["models"]
    if registry.predictor is not None:
        return registry.predictor, "volume"

    from ml.registry import load_current
    from ml.registry import save
    from ml.train import TrainConfig
    from ml.train import train

    logger.info("no model on the volume (%s): training one", registry.problem)
    store = app.extensions["store"]
    started = time.perf_counter()
    result = train(store.dpe, store.communes, dict(store.sources["dpe"]), TrainConfig())
    folder = Path(tempfile.mkdtemp(prefix="bench-models-")) / "models"
    save(result.models, result.metadata, folder)
    logger.info("trained in %.1f s", time.perf_counter() - started)
    return load_current(folder), "trained for the benchmark"


def run() -> dict:
    """Measure the served predictor and return the figures with the goals."""
    from ml import features as F
    from ml.train import serving_rows
    from webapp import create_app

    app = create_app()
    predictor, origin = _predictor(app)
    dpe = app.extensions["store"].dpe
    rows = serving_rows(F.frame_features(dpe.tail(BATCH_ROWS)), BATCH_ROWS)
    one = rows[0]

    one_row = _timings(lambda: predictor.predict(one), ONE_ROW_CALLS)
    batch = _timings(lambda: predictor.predict_batch(rows), BATCH_CALLS)
    predictor.fast = False
    try:
        one_row_sklearn = _timings(lambda: predictor.predict(one), ONE_ROW_CALLS // 5)
    finally:
        predictor.fast = True
    sizes = {
        name: round(entry["bytes"] / 1e6, 3)
        for name, entry in predictor.metadata["artifacts"].items()
    }
    return {
        "load_average_1_5_15_min": [round(v, 2) for v in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "model_version": predictor.version,
        "models_from": origin,
        "training_data_origin": predictor.metadata["training_data"]["origin"],
        "compiled_trees": predictor.forest.n_trees,
        "fast_path": predictor.fast,
        "one_row": one_row,
        "one_row_without_compiled_trees": one_row_sklearn,
        "batch_1000_rows": batch,
        "artifact_mb": sizes,
        "goals": {
            "one_row_p50_ms<=2": one_row["p50_ms"] <= GOAL_ONE_ROW_P50_MS,
            "batch_1000_rows_p50_ms<=100": batch["p50_ms"] <= GOAL_BATCH_1000_MS,
            "every_artifact_mb<=5": max(sizes.values()) <= GOAL_ARTIFACT_MB,
        },
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    print(json.dumps(run(), indent=2, ensure_ascii=False))
