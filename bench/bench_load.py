"""Load test: mixed traffic against gunicorn on 127.0.0.1, measured per traffic class.

The app runs under the Procfile's gunicorn setup (`gunicorn.conf.py`: workers from
the CPU count, preload, gthread) on the demo data, with trained models in a
temporary volume. For each level of concurrent users (10, 50 and 100 for 60 s by
default) three processes of simulated users (`bench/loadtest/users.py`: one
thread and one keep-alive connection per user) run side by side, one per traffic
class, so that each class gets its own latency distribution:

* pages: the five full HTML pages, some with filters in the query;
* fragments: statistics figures and KPIs, map fragments, communes table and
  suggestions, address suggestions, the prediction fragment;
* api: `/api/v1` predictions (label, consumption, heating consumption).

Users are split 20 / 50 / 30 % between the classes. Each user waits a think time
between two requests, 0.5 to 1.5 s by default (`--think 0`: back-to-back).
Reported per class: throughput, p50/p95/p99/max latency, error rate (transport
errors, timeouts and HTTP status >= 400), status counts, and gunicorn's own
per-request durations from its access log (parsed request to written response:
the gap with the client's figures is time spent waiting for a worker). Goal: no
errors and p99 <= 300 ms at 50 users for fragments and API calls, as the client
sees them.

Reference, same run and same server: back-to-back requests from 50 `wrk`
connections (`bench/loadtest/mixed.lua`) on the trivial JSON endpoint
`/api/v1/health`, then on the prediction API alone and the fragments alone;
throughput ratios against the health endpoint. (wrk is not used for the users:
with think times its `delay()` hook reported ~0.5 s tails on /api/v1/health that
gunicorn's access log and a Python client did not see.)

The reference needs `wrk` (Debian: `apt-get install -y wrk`; skipped with the
reason when absent); the bench installs nothing itself. Rate
limits are raised for the run (all traffic comes from 127.0.0.1, which the
per-IP limiter would otherwise stop within a second): this measures capacity.

    python -m bench.bench_load [--quick] [--users 10,50,100] [--duration 60]
                               [--think 500-1500] [--workers N]

gunicorn.conf.py reads WEB_CONCURRENCY and GUNICORN_THREADS as in production.
Environment equivalents (used by `python -m bench`): BENCH_QUICK=1,
BENCH_LOAD_USERS, BENCH_LOAD_DURATION, BENCH_LOAD_THINK_MS, BENCH_WORKERS,
BENCH_MODELS_DIR (a trained `models` folder to copy; by default the `models`
folder of $BENCH_VOLUME, $MOUNT_PATH, /volume or ./volume when one holds a trained
model, else the bench trains one first: `--fast` in quick mode).
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import math
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

from bench.loadtest.server import PROJECT_DIR
from bench.loadtest.server import GunicornServer
from bench.loadtest.server import configured
from bench.loadtest.users import run_users

logger = logging.getLogger("bench.load")

LUA_SCRIPT = Path(__file__).resolve().parent / "loadtest" / "mixed.lua"
USERS = (10, 50, 100)
DURATION = 60
THINK_MS = (500, 1500)
QUICK = {"users": (5, 20), "duration": 5, "reference": 3}
REFERENCE_CONNECTIONS = 50
REFERENCE_DURATION = 20
#: Share of the users in each traffic class.
MIX = {"pages": 0.2, "fragments": 0.5, "api": 0.3}
GOAL = {"users": 50, "p99_ms": 300.0, "classes": ("fragments", "api")}
#: A request slower than this counts as a timeout error.
TIMEOUT = "10s"
UNLIMITED = {
    "RATELIMIT_API": "1000000000/minute",
    "RATELIMIT_AJAX": "1000000000/minute",
}

STATS_FIGURES = (
    "altitude",
    "bands",
    "extra-cost",
    "labels-bands",
    "period-band",
    "labels-categories",
    "measured",
    "timeline",
)

#: Households of the prediction requests: the form's own field names.
HOUSEHOLDS = (
    {
        "surface_habitable_logement": "85",
        "annee_construction": "1972",
        "type_batiment": "maison",
        "type_energie_principale_chauffage": "Fioul domestique",
        "type_generateur_chauffage": "chaudière",
        "type_installation_chauffage": "individuel",
        "qualite_isolation_enveloppe": "insuffisante",
        "code_insee": "74010",
    },
    {
        "surface_habitable_logement": "48",
        "periode_construction": "1989-2000",
        "type_batiment": "appartement",
        "type_energie_principale_chauffage": "Électricité",
        "type_generateur_chauffage": "effet joule",
        "type_installation_chauffage": "individuel",
        "code_insee": "74056",
    },
    {
        "surface_habitable_logement": "120",
        "annee_construction": "2015",
        "type_batiment": "maison",
        "type_energie_principale_chauffage": "Électricité",
        "type_generateur_chauffage": "pompe à chaleur",
        "type_installation_chauffage": "individuel",
        "qualite_isolation_enveloppe": "bonne",
        "code_postal": "74400",
    },
    {
        "surface_habitable_logement": "65",
        "annee_construction": "1960",
        "type_batiment": "appartement",
        "type_energie_principale_chauffage": "Gaz naturel",
        "type_installation_chauffage": "collectif",
        "latitude": "45.9",
        "longitude": "6.13",
    },
)


# --------------------------------------------------------------------------- traffic


def traffic() -> dict[str, list[str]]:
    """The request paths of each traffic class."""
    filters = [
        {},
        {"type_batiment": "maison"},
        {"periode_construction": "1948-1974", "source": "existant"},
        {"type_energie_principale_chauffage": "Électricité"},
    ]
    stats = [
        f"/ajax/stats/{name}?{urlencode(f)}".rstrip("?")
        for name in STATS_FIGURES
        for f in filters[:2]
    ]
    stats += [f"/ajax/stats/kpis?{urlencode(f)}".rstrip("?") for f in filters]
    fragments = [
        *stats,
        "/ajax/map",
        "/ajax/map?indicateur=part_passoires",
        "/ajax/map?annee=2022&indicateur=conso_moyenne_mwh",
        "/ajax/communes/table",
        "/ajax/communes/table?tri=part_passoires",
        "/ajax/communes/suggest?q=ann",
        "/ajax/communes/74010",
        "/ajax/address/suggest?q=rue+de",
        "/ajax/stats/communes?q=cha",
        *(f"/ajax/predict?{urlencode(h)}" for h in HOUSEHOLDS),
    ]
    api = [
        f"/api/v1/{endpoint}?{urlencode(household)}"
        for endpoint in ("etiquette_dpe", "consommation", "consommation_chauffage")
        for household in HOUSEHOLDS
    ]
    pages = [
        "/",
        "/stats",
        "/stats?type_batiment=appartement",
        "/map",
        "/map?indicateur=part_passoires",
        "/predict",
        f"/predict?{urlencode(HOUSEHOLDS[0])}",
        "/context",
    ]
    return {"pages": pages, "fragments": fragments, "api": api}


def split_users(users: int) -> dict[str, int]:
    """Users per traffic class (at least one each), summing to `users`."""
    shares = {name: max(1, round(users * share)) for name, share in MIX.items()}
    shares["fragments"] += users - sum(shares.values())
    return shares


# --------------------------------------------------------------------------- wrk


def wrk_command(
    url: str, paths: Path, connections: int, seconds: int, think: tuple[int, int]
) -> list[str]:
    """The wrk command line of one traffic class."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk not found: install it (Debian: apt-get install -y wrk)")
    return [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{seconds}s",
        "--timeout",
        TIMEOUT,
        "--script",
        str(LUA_SCRIPT),
        url,
        "--",
        str(paths),
        str(think[0]),
        str(think[1]),
    ]


def parse_wrk(output: str) -> dict:
    """Return the WRK_JSON line of a wrk run, parsed."""
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line.removeprefix("WRK_JSON "))
    raise RuntimeError(f"no WRK_JSON line in wrk output:\n{output[-2000:]}")


def summarise(raw: dict, users: int) -> dict:
    """Throughput, latency percentiles (ms) and error rate of one wrk run."""
    errors = raw["errors"]
    requests = raw["requests"]
    failed = sum(errors.values())
    seconds = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    percentiles = {k: v / 1000 for k, v in latency["percentiles"].items()}
    return {
        "users": users,
        "requests": requests,
        "throughput_rps": round(requests / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentiles["50"], 1),
        "p95_ms": round(percentiles["95"], 1),
        "p99_ms": round(percentiles["99"], 1),
        "max_ms": round(latency["max"] / 1000, 1),
        "mean_ms": round(latency["mean"] / 1000, 1),
        "errors": failed,
        "error_rate": round(failed / max(requests + errors["connect"], 1), 4),
        "error_kinds": {k: v for k, v in errors.items() if v},
        "statuses": dict(sorted(raw["statuses"].items())),
    }


def run_classes(
    url: str,
    files: dict[str, Path],
    connections: dict[str, int],
    seconds: int,
    think: tuple[int, int],
) -> dict[str, dict]:
    """Run one wrk per class at the same time; return their summaries."""
    processes = {
        name: subprocess.Popen(
            wrk_command(url, files[name], count, seconds, think),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, count in connections.items()
    }
    results = {}
    for name, process in processes.items():
        try:
            output, _ = process.communicate(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise RuntimeError(f"wrk for {name} did not finish") from None
        results[name] = summarise(parse_wrk(output), connections[name])
    return results


#: An access-log line of gunicorn.conf.py: request line, status, size, duration.
ACCESS_LINE = re.compile(r'"GET (\S+) HTTP/1\.1" (\d{3}) \S+ (\d+)ms')


def class_of(path: str) -> str:
    """The traffic class of a request path."""
    if path.startswith("/ajax/"):
        return "fragments"
    if path.startswith("/api/"):
        return "api"
    return "pages"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of `values` (share in 0-1)."""
    ordered = sorted(values)
    rank = max(math.ceil(share * len(ordered)), 1)
    return float(ordered[rank - 1])


def add_server_times(classes: dict[str, dict], log: str) -> None:
    """Add gunicorn's own durations (access log, ms) to each class summary.

    They run from the parsed request to the written response: the difference with
    wrk's figures is time spent waiting for a worker (queueing, CPU contention).
    """
    durations: dict[str, list[float]] = {name: [] for name in classes}
    for match in ACCESS_LINE.finditer(log):
        name = class_of(match.group(1))
        if name in durations:
            durations[name].append(float(match.group(3)))
    for name, values in durations.items():
        if not values:
            continue
        classes[name]["server"] = {
            "requests_logged": len(values),
            "p50_ms": percentile(values, 0.50),
            "p95_ms": percentile(values, 0.95),
            "p99_ms": percentile(values, 0.99),
            "max_ms": max(values),
        }


def summarise_users(raw: dict, users: int) -> dict:
    """Throughput, latency percentiles (ms) and error rate of simulated users."""
    latencies = raw["latencies_ms"]
    requests = len(latencies)
    failed_status = sum(n for code, n in raw["statuses"].items() if int(code) >= 400)
    transport = sum(raw["errors"].values())
    attempts = requests + transport

    def pct(share: float) -> float | None:
        return round(percentile(latencies, share), 1) if latencies else None

    return {
        "users": users,
        "requests": requests,
        "throughput_rps": round(requests / raw["seconds"], 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(sum(latencies) / requests, 1) if requests else None,
        "errors": failed_status + transport,
        "error_rate": round((failed_status + transport) / max(attempts, 1), 4),
        "error_kinds": raw["errors"],
        "statuses": dict(sorted(raw["statuses"].items())),
    }


def run_user_classes(
    port: int,
    paths: dict[str, list[str]],
    users: dict[str, int],
    seconds: int,
    think: tuple[int, int],
) -> dict[str, dict]:
    """Run the users of each class in their own process, all at the same time."""
    # fork, not spawn: a child must not re-import a caller's unguarded __main__.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=len(users), mp_context=context) as pool:
        futures = {
            name: pool.submit(
                run_users, port, paths[name], count, seconds, think, 10.0, index
            )
            for index, (name, count) in enumerate(users.items())
        }
        return {
            name: summarise_users(future.result(timeout=seconds + 120), users[name])
            for name, future in futures.items()
        }


def total(classes: dict[str, dict]) -> dict:
    """Requests, throughput and errors of all classes together."""
    requests = sum(c["requests"] for c in classes.values())
    errors = sum(c["errors"] for c in classes.values())
    return {
        "users": sum(c["users"] for c in classes.values()),
        "requests": requests,
        "throughput_rps": round(sum(c["throughput_rps"] for c in classes.values()), 1),
        "errors": errors,
        "error_rate": round(errors / max(requests, 1), 4),
    }


# --------------------------------------------------------------------------- set-up


def existing_models() -> Path | None:
    """A trained `models` folder to reuse: BENCH_MODELS_DIR, else a known volume's.

    BENCH_VOLUME is the volume that bench_api also reads its models from.
    """
    given = os.environ.get("BENCH_MODELS_DIR")
    if given:
        return Path(given)
    volumes = [
        os.environ.get("BENCH_VOLUME"),
        os.environ.get("MOUNT_PATH"),
        "/volume",
        str(PROJECT_DIR / "volume"),
    ]
    for volume in filter(None, volumes):
        folder = Path(volume) / "models"
        if (folder / "current.json").is_file():
            return folder
    return None


#: Models trained by this process, by configuration, shared by the benchmarks.
_TRAINED: dict[bool, tuple[Path, dict]] = {}


def prepare_models(volume: Path, quick: bool) -> dict:
    """Put trained models in the volume: copied from an existing folder, or trained.

    Training the production configuration takes minutes (once per process: the
    load and memory benchmarks share it); `--quick` trains the small `--fast`
    configuration (fewer trees: faster predictions than the served models).
    """
    target = volume / "models"
    source = existing_models()
    if source is not None:
        shutil.copytree(source, target)
        return {"how": f"copied from {source}", "seconds": 0.0}
    if quick not in _TRAINED:
        _TRAINED[quick] = train_models(quick)
    folder, info = _TRAINED[quick]
    if (folder / "models").is_dir():
        shutil.copytree(folder / "models", target)
    return info


def train_models(quick: bool) -> tuple[Path, dict]:
    """Train models into a folder kept until the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="atlas-bench-models-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    command = [sys.executable, "-m", "ml.train", "--no-report"]
    if quick:
        command.append("--fast")
    env = {
        **os.environ,
        "MOUNT_PATH": str(folder),
        "PYTHONPATH": str(PROJECT_DIR),
        "TRAIN_IF_MISSING": "0",
    }
    started = time.perf_counter()
    done = subprocess.run(
        command,
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    seconds = round(time.perf_counter() - started, 1)
    how = "trained: " + " ".join(command[1:])
    if done.returncode != 0:
        logger.warning("model training failed (%s):\n%s", how, done.stderr[-2000:])
        return folder, {"how": how, "seconds": seconds, "failed": done.stderr[-500:]}
    return folder, {"how": how, "seconds": seconds}


def warm_up(server: GunicornServer, paths: dict[str, list[str]]) -> dict:
    """Request every path once per worker, one at a time.

    Returns the non-2xx answers seen and the slowest paths of the last round
    (service time without concurrency, a hint for where the time goes).
    """
    problems: dict[str, int] = {}
    timings: dict[str, float] = {}
    workers = max(len(server.worker_pids()), 1)
    for _ in range(workers):
        for name, group in paths.items():
            for path in group:
                headers = {"HX-Request": "true"} if name == "fragments" else {}
                started = time.perf_counter()
                status = server.get(path, headers=headers, timeout=60).status
                timings[path] = round((time.perf_counter() - started) * 1000, 1)
                if status >= 400:
                    problems[path] = status
    slowest = sorted(timings.items(), key=lambda item: -item[1])[:8]
    return {"errors": problems, "slowest_ms": dict(slowest)}


def check_goal(levels: list[dict]) -> dict:
    """Whether fragments and API calls had no errors and p99 <= 300 ms at 50 users."""
    level = next((lv for lv in levels if lv["users"] == GOAL["users"]), None)
    if level is None:
        return {"measured": False, "reason": f"no run at {GOAL['users']} users"}
    details = {
        name: {
            "p99_ms": level["classes"][name]["p99_ms"],
            "errors": level["classes"][name]["errors"],
        }
        for name in GOAL["classes"]
    }
    met = all(
        d["errors"] == 0 and d["p99_ms"] <= GOAL["p99_ms"] for d in details.values()
    )
    return {
        "measured": True,
        "users": GOAL["users"],
        "p99_ms_max": GOAL["p99_ms"],
        "classes": details,
        "met": met,
    }


def _options(quick, users, duration, think, workers) -> dict:
    env = os.environ
    if quick is None:
        quick = env.get("BENCH_QUICK", "") not in ("", "0")
    if users is None and env.get("BENCH_LOAD_USERS"):
        users = [int(u) for u in env["BENCH_LOAD_USERS"].split(",")]
    if duration is None and env.get("BENCH_LOAD_DURATION"):
        duration = int(env["BENCH_LOAD_DURATION"])
    if think is None and env.get("BENCH_LOAD_THINK_MS"):
        think = parse_think(env["BENCH_LOAD_THINK_MS"])
    if workers is None and env.get("BENCH_WORKERS"):
        workers = int(env["BENCH_WORKERS"])
    return {
        "quick": quick,
        "users": list(users or (QUICK["users"] if quick else USERS)),
        "duration": duration or (QUICK["duration"] if quick else DURATION),
        "reference_duration": QUICK["reference"] if quick else REFERENCE_DURATION,
        "think": think if think is not None else THINK_MS,
        "workers": workers,
    }


def parse_think(text: str) -> tuple[int, int]:
    """Parse a think time "500-1500" (ms, uniform) or "0"."""
    low, _, high = text.partition("-")
    return int(low), int(high or low)


# --------------------------------------------------------------------------- run


def run(quick=None, users=None, duration=None, think=None, workers=None) -> dict:
    """Run the load levels and the reference; return the figures."""
    options = _options(quick, users, duration, think, workers)
    paths = traffic()
    with tempfile.TemporaryDirectory(prefix="atlas-bench-load-") as folder:
        folder = Path(folder)
        files = {}
        for name, group in paths.items():
            files[name] = folder / f"{name}.txt"
            files[name].write_text("\n".join(group) + "\n", encoding="utf-8")
        (folder / "health.txt").write_text("/api/v1/health\n", encoding="utf-8")
        volume = folder / "volume"
        volume.mkdir()
        models = prepare_models(volume, options["quick"])

        server = GunicornServer(
            volume,
            workers=options["workers"],
            env=UNLIMITED,
            log_path=folder / "gunicorn.log",
        )
        with server:
            ready = server.get("/api/v1/ready").json()
            workers_running = len(server.worker_pids())
            logger.info(
                "gunicorn up with %d workers; ready: %s", workers_running, ready
            )
            warm = warm_up(server, paths)
            if warm["errors"]:
                logger.warning("non-2xx answers during warm-up: %s", warm["errors"])

            levels = []
            for count in options["users"]:
                logger.info("%d users for %d s", count, options["duration"])
                start = len(server.log())
                classes = run_user_classes(
                    server.port,
                    paths,
                    split_users(count),
                    options["duration"],
                    options["think"],
                )
                add_server_times(classes, server.log()[start:])
                levels.append(
                    {"users": count, "classes": classes, "total": total(classes)}
                )
                logger.info("%d users: %s", count, _brief(classes))

            reference = run_reference(server, files, folder, options)
            log_tail = server.log()[-3000:]

    return {
        "tool": _wrk_version(),
        "options": {**options, "think": list(options["think"])},
        "server": {
            "workers": workers_running,
            "threads_per_worker": configured("threads"),
            "config": "gunicorn.conf.py (Procfile), bound to 127.0.0.1",
            "ready": ready.get("checks"),
            "models": models,
        },
        "warm_up": warm,
        "levels": levels,
        "goal": check_goal(levels),
        "reference": reference,
        "server_log_tail": log_tail if any(_has_errors(lv) for lv in levels) else "",
    }


def run_reference(server, files, folder: Path, options: dict) -> dict:
    """Back-to-back throughput of /api/v1/health, the API and fragments alone."""
    seconds = options["reference_duration"]
    if shutil.which("wrk") is None:
        return {"skipped": "wrk not installed (Debian: apt-get install -y wrk)"}
    out = {}
    for name, path in (
        ("health", folder / "health.txt"),
        ("api", files["api"]),
        ("fragments", files["fragments"]),
    ):
        logger.info("reference: %s alone, %d connections", name, REFERENCE_CONNECTIONS)
        out[name] = run_classes(
            server.url,
            {name: path},
            {name: REFERENCE_CONNECTIONS},
            seconds,
            (0, 0),
        )[name]
    health = out["health"]["throughput_rps"] or 1.0
    out["ratios"] = {
        "api_over_health": round(out["api"]["throughput_rps"] / health, 3),
        "fragments_over_health": round(out["fragments"]["throughput_rps"] / health, 3),
    }
    out["connections"] = REFERENCE_CONNECTIONS
    out["duration_s"] = seconds
    return out


def _has_errors(level: dict) -> bool:
    return any(c["errors"] for c in level["classes"].values())


def _brief(classes: dict[str, dict]) -> str:
    return "; ".join(
        f"{n} {c['throughput_rps']} rps p99 {c['p99_ms']} ms err {c['errors']}"
        for n, c in classes.items()
    )


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "wrk (not installed)"
    done = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).splitlines()[0].strip()


def main(argv: list[str]) -> int:
    """Command line: run the load test and print the figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.bench_load")
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--users", help="comma-separated levels, e.g. 10,50,100")
    parser.add_argument("--duration", type=int, help="seconds per level")
    parser.add_argument("--think", help="think time in ms, e.g. 500-1500 or 0")
    parser.add_argument("--workers", type=int, help="gunicorn workers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    result = run(
        quick=True if args.quick else None,
        users=[int(u) for u in args.users.split(",")] if args.users else None,
        duration=args.duration,
        think=parse_think(args.think) if args.think else None,
        workers=args.workers,
    )
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
