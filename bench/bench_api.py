"""Benchmark of the prediction API: server time, batch time, gunicorn throughput.

Goals (issue 4): single prediction p50 <= 5 ms of server time, a batch of 1,000
rows <= 200 ms, and under gunicorn at least 10x the throughput of the original
application's model configuration (random forests of 100 trees, depth 20, one-hot
inputs) trained on the same data and served by the same endpoint code with the
same gunicorn settings, measured in the same run.

The models come from `BENCH_VOLUME` (a volume with `models/current.json`) when set,
else a model is trained into a temporary volume with the production settings
(without the comparison models). Run alone with `python -m bench.bench_api`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

logger = logging.getLogger("bench.api")

PROJECT_DIR = Path(__file__).resolve().parent.parent

#: Requests timed in-process for the single-prediction figure.
SINGLE_CALLS = 400
#: Repeats of the 1,000-row batch.
BATCH_REPEATS = 7
BATCH_ROWS = 1000
#: Seconds of load per server, client processes and connections per process.
LOAD_SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "8"))
CLIENT_PROCESSES = 2
CONNECTIONS_PER_PROCESS = 4
#: Seconds to wait for a gunicorn server to answer.
START_TIMEOUT = 180

#: Goals of the issue.
GOAL_SINGLE_P50_MS = 5.0
GOAL_BATCH_MS = 200.0
GOAL_SPEEDUP = 10.0

#: Settings of the original application's models (the baseline).
BASELINE_TREES = 100
BASELINE_DEPTH = 20

#: Homes sent by the benchmark (surfaces and communes vary per request).
ENERGIES = ("Gaz naturel", "Électricité", "Fioul domestique", "Bois – Bûches")
COMMUNES = ("74010", "74056", "74281", "74012", "74298")


def homes(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Return n plausible homes as the API receives them."""
    rng = np.random.default_rng(seed)
    return [
        {
            "surface_habitable_logement": int(rng.integers(20, 200)),
            "annee_construction": int(rng.integers(1900, 2024)),
            "type_batiment": ("maison", "appartement")[i % 2],
            "type_energie_principale_chauffage": ENERGIES[i % len(ENERGIES)],
            "type_installation_chauffage": "individuel",
            "qualite_isolation_enveloppe": ("insuffisante", "moyenne", "bonne")[i % 3],
            "code_insee": COMMUNES[i % len(COMMUNES)],
        }
        for i in range(n)
    ]


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 3),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }


# --------------------------------------------------------------------------- models


def model_volume(workdir: Path) -> tuple[Path, str]:
    """Return a volume holding a trained model, and where it came from."""
    given = os.environ.get("BENCH_VOLUME")
    if given:
        if not (Path(given) / "models" / "current.json").exists():
            raise SystemExit(f"BENCH_VOLUME={given} has no models/current.json")
        return Path(given), f"BENCH_VOLUME={given}"

    from ml.train import TrainConfig
    from ml.train import train_from_app
    from webapp import create_app

    volume = workdir / "volume"
    volume.mkdir()
    app = create_app({"TESTING": True, "MOUNT_PATH": str(volume)})
    started = time.perf_counter()
    # The served settings of production; comparison models and CV are skipped.
    train_from_app(app, TrainConfig(compare=False, cv_folds=0))
    elapsed = time.perf_counter() - started
    logger.info("trained the served model in %.0f s", elapsed)
    return (
        volume,
        f"trained now with TrainConfig(compare=False, cv_folds=0) in {elapsed:.0f} s",
    )


class BaselinePredictor:
    """The original application's models behind the model contract."""

    def __init__(self, classifier, regressor, version: str = "baseline-rf"):
        self.classifier = classifier
        self.regressor = regressor
        self.version = version

    def validate(self, inputs: dict) -> dict:
        return inputs

    def _outputs(self, rows: list[dict]) -> list[dict]:
        import pandas as pd

        from ml import features as F

        frame = pd.DataFrame(rows).reindex(columns=list(F.FEATURES))
        for name in F.CATEGORICAL:
            frame[name] = frame[name].astype(object)
        for name in F.NUMERIC:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        proba = self.classifier.predict_proba(frame)
        ep = self.regressor.predict(frame)
        classes = [str(c) for c in self.classifier.classes_]
        results = []
        for i, row in enumerate(rows):
            label = classes[int(np.argmax(proba[i]))]
            shares = dict(zip(classes, map(float, proba[i]), strict=True))
            passoire = shares.get("F", 0.0) + shares.get("G", 0.0)
            surface = float(row["surface_habitable_logement"])
            results.append(
                {
                    "etiquette_dpe": label,
                    "probabilities": shares,
                    "passoire": passoire >= 0.5,
                    "passoire_probability": passoire,
                    "passoire_threshold": 0.5,
                    "conso_5_usages_par_m2_ep": float(ep[i]),
                    "conso_5_usages_par_m2_ep_interval": [float(ep[i])] * 2,
                    "conso_5_usages_ep": float(ep[i]) * surface,
                    "conso_5_usages_ep_interval": [float(ep[i]) * surface] * 2,
                    "emission_ges_5_usages_par_m2": 0.0,
                    "etiquette_derivee": None,
                    "cout_total_5_usages": None,
                    "model_version": self.version,
                }
            )
        return results

    def predict(self, inputs: dict) -> dict:
        return self._outputs([inputs])[0]

    def predict_batch(self, rows: list[dict]) -> list[dict]:
        return self._outputs(rows)


class BaselineRegistry:
    """Registry shape around the baseline predictor."""

    def __init__(self, predictor: BaselinePredictor):
        self.predictor = predictor

    def versions(self) -> dict:
        return {"status": "ready", "model_version": self.predictor.version}

    def card(self) -> dict:
        return self.versions()


def train_baseline(volume: Path, target: Path) -> dict[str, Any]:
    """Train the baseline forests on the same DPE data and save them with joblib."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline

    from ml.train import TrainConfig
    from ml.train import category_lists
    from ml.train import onehot_prepare
    from ml.train import prepare_dataset
    from webapp import create_app

    app = create_app({"TESTING": True, "MOUNT_PATH": str(volume)})
    store = app.extensions["store"]
    data = prepare_dataset(store.dpe, TrainConfig())
    categories = category_lists(data.features)
    started = time.perf_counter()
    models = {}
    for name, estimator, target_name in (
        ("classifier", RandomForestClassifier, "etiquette_dpe"),
        ("regressor", RandomForestRegressor, "conso_5_usages_par_m2_ep"),
    ):
        y = data.targets[target_name]
        keep = y.notna().to_numpy()
        model = Pipeline(
            [
                ("prepare", onehot_prepare(categories, scale=False)),
                (
                    "model",
                    estimator(
                        n_estimators=BASELINE_TREES,
                        max_depth=BASELINE_DEPTH,
                        n_jobs=-1,
                        random_state=0,
                    ),
                ),
            ]
        )
        model.fit(
            data.features[keep],
            y[keep].astype(str) if name == "classifier" else y[keep],
        )
        # Served one request at a time, as the original application did.
        model.named_steps["model"].n_jobs = None
        models[name] = model
    joblib.dump(models, target)
    return {
        "rows": int(len(data.features)),
        "trees": BASELINE_TREES,
        "depth": BASELINE_DEPTH,
        "fit_seconds": round(time.perf_counter() - started, 1),
    }


def baseline_app():
    """Gunicorn factory: the app with the baseline models (BENCH_BASELINE file)."""
    import joblib

    from webapp import create_app

    app = create_app()
    models = joblib.load(os.environ["BENCH_BASELINE"])
    app.extensions["models"] = BaselineRegistry(
        BaselinePredictor(models["classifier"], models["regressor"])
    )
    return app


# --------------------------------------------------------------------------- timing


def in_process(volume: Path) -> dict[str, Any]:
    """Time single and batch predictions through the Flask stack, in-process."""
    from webapp import create_app

    app = create_app(
        {"TESTING": True, "MOUNT_PATH": str(volume), "RATELIMIT_ENABLED": False}
    )
    client = app.test_client()
    predictor = app.extensions["models"].predictor
    if predictor is None:
        raise SystemExit("no model loaded from the benchmark volume")

    sample = homes(SINGLE_CALLS, seed=1)
    for home in sample[:50]:
        client.get("/api/v1/etiquette_dpe", query_string=home)
    single = []
    for home in sample:
        started = time.perf_counter()
        response = client.get("/api/v1/etiquette_dpe", query_string=home)
        single.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.json

    rows = homes(BATCH_ROWS, seed=2)
    payload = json.dumps(rows)
    batch = []
    for _ in range(BATCH_REPEATS):
        started = time.perf_counter()
        response = client.post(
            "/api/v1/etiquette_dpe/batch", data=payload, content_type="application/json"
        )
        batch.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and response.json["errors"] == 0

    return {
        "model_version": predictor.version,
        "single_ms": _percentiles(single),
        "batch_1000_ms": _percentiles(batch),
        "batch_body_bytes": len(payload),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"gunicorn on port {port} did not answer in time")


def start_gunicorn(app_spec: str, volume: Path, extra_env: dict) -> tuple:
    """Start gunicorn with the project's settings on a free loopback port."""
    port = _free_port()
    env = {
        **os.environ,
        **extra_env,
        "MOUNT_PATH": str(volume),
        "SECRET_KEY": "bench-only",
        "PORT": str(port),
        "RATELIMIT_API": "100000000/minute",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(PROJECT_DIR / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--access-logfile",
        "/dev/null",
        app_spec,
    ]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port, process)
    except Exception:
        process.kill()
        raise
    return process, port


def _client_load(port: int, seconds: float, seed: int) -> tuple[int, int, list]:
    """Send requests on keep-alive connections for `seconds`; count answers."""
    queries = [
        "/api/v1/etiquette_dpe?" + urlencode(home) for home in homes(200, seed=seed)
    ]
    counts = {"ok": 0, "errors": 0}
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = offset
        while time.monotonic() < stop:
            started = time.perf_counter()
            try:
                conn.request("GET", queries[i % len(queries)])
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                counts["ok" if ok else "errors"] += 1
                latencies.append(elapsed)
            i += 1
        conn.close()

    threads = [
        threading.Thread(target=worker, args=(k * 37,))
        for k in range(CONNECTIONS_PER_PROCESS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["ok"], counts["errors"], latencies


def throughput(port: int, seconds: float = LOAD_SECONDS) -> dict[str, Any]:
    """Return requests per second answered 200 by a server under load."""
    _client_load(port, 1.0, seed=9)
    with ProcessPoolExecutor(CLIENT_PROCESSES) as pool:
        futures = [
            pool.submit(_client_load, port, seconds, seed)
            for seed in range(CLIENT_PROCESSES)
        ]
        results = [f.result() for f in futures]
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    latencies = [x for r in results for x in r[2]]
    return {
        "requests_per_second": round(ok / seconds, 1),
        "ok": ok,
        "errors": errors,
        "latency_ms": _percentiles(latencies) if latencies else None,
    }


def gunicorn_comparison(volume: Path, baseline_file: Path) -> dict[str, Any]:
    """Measure both servers, one after the other, with the same settings."""
    figures = {}
    for name, spec, env in (
        ("served", "webapp:create_app()", {}),
        (
            "baseline",
            "bench.bench_api:baseline_app()",
            {"BENCH_BASELINE": str(baseline_file)},
        ),
    ):
        process, port = start_gunicorn(spec, volume, env)
        try:
            figures[name] = throughput(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    served = figures["served"]["requests_per_second"]
    base = figures["baseline"]["requests_per_second"]
    figures["speedup"] = round(served / base, 1) if base else None
    return figures


def run() -> dict[str, Any]:
    """Run every measurement and return the figures with the goals."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        volume, origin = model_volume(workdir)
        timing = in_process(volume)
        baseline_file = workdir / "baseline.joblib"
        baseline = train_baseline(volume, baseline_file)
        load = gunicorn_comparison(volume, baseline_file)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    return {
        "model_origin": origin,
        **timing,
        "baseline": baseline,
        "gunicorn": {
            "settings": "gunicorn.conf.py (workers = CPU + 1, 2 threads), loopback",
            "client": f"{CLIENT_PROCESSES} processes x {CONNECTIONS_PER_PROCESS} "
            f"keep-alive connections, {LOAD_SECONDS:g} s per server, same machine",
            **load,
        },
        "goals": {
            "single_p50_ms": {
                "goal": GOAL_SINGLE_P50_MS,
                "met": timing["single_ms"]["p50"] <= GOAL_SINGLE_P50_MS,
            },
            "batch_1000_ms": {
                "goal": GOAL_BATCH_MS,
                "met": timing["batch_1000_ms"]["p50"] <= GOAL_BATCH_MS,
            },
            "speedup_vs_baseline": {
                "goal": GOAL_SPEEDUP,
                "met": (load["speedup"] or 0) >= GOAL_SPEEDUP,
            },
        },
    }


def main() -> int:
    """Print the figures as JSON on stdout (logs go to stderr)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    # The app logs to stdout; keep stdout for the JSON document alone.
    with contextlib.redirect_stdout(sys.stderr):
        figures = run()
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
