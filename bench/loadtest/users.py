"""Simulated users: threads that each keep a connection, request, then think.

Each user cycles through the paths of its traffic class from a random starting
point on one keep-alive HTTP/1.1 connection and waits a think time drawn
uniformly between two bounds after each answer. Latency runs from sending the
request to reading the whole body. wrk measures back-to-back traffic well, but
with its `delay()` hook it reported ~0.5 s tails on `/api/v1/health` that
neither gunicorn's access log nor this client saw, hence this client for users.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter


def _user(
    port: int,
    paths: list[str],
    deadline: float,
    think: tuple[int, int],
    timeout: float,
    seed: int,
    out: dict,
) -> None:
    rng = random.Random(seed)
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    position = rng.randrange(len(paths))
    # Users start spread over one think time, not all at once.
    time.sleep(rng.uniform(0, think[1] / 1000))
    while time.monotonic() < deadline:
        path = paths[position % len(paths)]
        position += 1
        headers = {"HX-Request": "true"} if path.startswith("/ajax/") else {}
        started = time.perf_counter()
        try:
            connection.request("GET", path, headers=headers)
            answer = connection.getresponse()
            answer.read()
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[str(answer.status)] += 1
            if answer.will_close:
                connection.close()
        except TimeoutError:
            errors["timeout"] += 1
            connection.close()
        except (OSError, http.client.HTTPException) as exc:
            errors[exc.__class__.__name__] += 1
            connection.close()
        pause = rng.uniform(think[0], think[1]) / 1000
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    connection.close()
    out["latencies"] = latencies
    out["statuses"] = statuses
    out["errors"] = errors


def run_users(
    port: int,
    paths: list[str],
    users: int,
    seconds: float,
    think: tuple[int, int],
    timeout: float = 10.0,
    seed: int = 0,
) -> dict:
    """Run `users` users for `seconds`; return latencies (ms), statuses, errors."""
    started = time.monotonic()
    deadline = started + seconds
    results = [{} for _ in range(users)]
    threads = [
        threading.Thread(
            target=_user,
            args=(port, paths, deadline, think, timeout, seed * 1000 + i, results[i]),
            daemon=True,
        )
        for i in range(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 30)
    elapsed = time.monotonic() - started
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors: Counter = Counter()
    for result in results:
        latencies += result.get("latencies", [])
        statuses.update(result.get("statuses", {}))
        errors.update(result.get("errors", {}))
    return {
        "seconds": elapsed,
        "latencies_ms": latencies,
        "statuses": dict(statuses),
        "errors": dict(errors),
    }
