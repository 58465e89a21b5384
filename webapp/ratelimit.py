"""In-memory per-IP sliding-window rate limits for the API and the HTMX fragments.

Each audience has its own limit (`RATELIMIT_API`, `RATELIMIT_AJAX`, e.g.
"120/minute"). Counts live in the process: with several gunicorn workers each
worker counts on its own, so the effective limit is the configured one per worker.
Limits are off under TESTING unless `RATELIMIT_ENABLED` is set.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable

from flask import Blueprint
from flask import current_app
from flask import make_response
from flask import request

logger = logging.getLogger(__name__)

#: Seconds per period word of a limit string.
PERIODS = {
    "second": 1,
    "seconde": 1,
    "minute": 60,
    "hour": 3600,
    "heure": 3600,
    "day": 86400,
    "jour": 86400,
}

#: Defaults when the configuration gives none.
DEFAULT_LIMITS = {"RATELIMIT_API": "120/minute", "RATELIMIT_AJAX": "300/minute"}

#: Clients tracked before idle entries are swept.
SWEEP_EVERY = 1024

_LIMIT = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*([a-z]+?)s?\s*$")


def parse_limit(text: str) -> tuple[int, float]:
    """Return (requests, window seconds) of a limit like "120/minute" or "10/5 second".

    :raise ValueError: for an unreadable limit.
    """
    match = _LIMIT.match(str(text).lower())
    if not match or match.group(3) not in PERIODS:
        allowed = ", ".join(sorted(PERIODS))
        raise ValueError(
            f"Unreadable rate limit {text!r}; expected 'N/period' with period in "
            f"{allowed} (optionally 'N/K period')"
        )
    count = int(match.group(1))
    window = PERIODS[match.group(3)] * int(match.group(2) or 1)
    if count < 1:
        raise ValueError(f"Rate limit {text!r} must allow at least one request")
    return count, float(window)


class SlidingWindowLimiter:
    """Count the requests of each key over the last `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = None):
        self.limit = limit
        self.window = window
        self.clock = clock or time.monotonic
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._since_sweep = 0

    def hit(self, key: str) -> float | None:
        """Record a request; return None when allowed, else seconds to wait."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.0)
            hits.append(now)
            self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY:
                self._sweep(now)
            return None

    def _sweep(self, now: float) -> None:
        """Forget clients idle for a whole window, bounding memory."""
        self._since_sweep = 0
        idle = [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]
        for key in idle:
            del self._hits[key]


def _enabled(app) -> bool:
    setting = app.config.get("RATELIMIT_ENABLED")
    if setting is not None:
        return bool(setting)
    return not app.testing


def _limiter(app, config_key: str) -> SlidingWindowLimiter | None:
    """Return the app's limiter for one audience (created on first use)."""
    limiters = app.extensions.setdefault("ratelimit", {})
    if config_key not in limiters:
        text = app.config.get(config_key) or DEFAULT_LIMITS[config_key]
        limit, window = parse_limit(text)
        limiters[config_key] = SlidingWindowLimiter(limit, window)
        logger.info("rate limit %s: %d requests per %.0f s", config_key, limit, window)
    return limiters[config_key]


def client_key() -> str:
    """Return the client address the limits count by."""
    return request.remote_addr or "unknown"


def protect(bp: Blueprint, config_key: str, respond: Callable[[int, str], object]):
    """Limit every request of a blueprint; `respond(status, message)` shapes a 429."""

    @bp.before_request
    def _check_rate_limit():
        app = current_app._get_current_object()
        if not _enabled(app) or request.method == "OPTIONS":
            return None
        wait = _limiter(app, config_key).hit(client_key())
        if wait is None:
            return None
        retry_after = max(1, math.ceil(wait))
        logger.warning(
            "rate limit %s exceeded by %s on %s", config_key, client_key(), request.path
        )
        response = make_response(
            respond(
                429,
                f"Trop de requêtes en peu de temps : réessayez dans {retry_after} s.",
            )
        )
        response.headers["Retry-After"] = str(retry_after)
        return response

    return _check_rate_limit
