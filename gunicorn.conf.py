"""gunicorn settings for Atlas Énergie 74 (used by the Procfile)."""

from __future__ import annotations

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"

# CPU-bound work (figures, predictions): about one worker per core, plus one.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))

# Load data and models once in the master; workers share them copy-on-write.
preload_app = True

timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# %(M)s is the request duration in milliseconds.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Behind a proxy that terminates TLS, trust its X-Forwarded-Proto for HSTS.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_reload(arbiter):
    """Graceful reload (SIGHUP): new workers start before old ones stop.

    With preload_app the new workers are forked from this master, so the master
    first loads data and models refreshed since it started: the workers then share
    them copy-on-write instead of each reloading a private copy on its first
    request (on the 10x data that copy costs ~400 MB per worker, see bench_memory).
    """
    arbiter.log.info("reloading: new workers with the current code and data")
    if not arbiter.cfg.preload_app:
        return
    app = arbiter.app.wsgi()
    try:
        app.extensions["store"].check_for_update(0)
        models = app.extensions.get("models")
        if models is not None:
            models.check_for_update(0)
    except Exception:
        # The new workers still load what changed themselves.
        arbiter.log.exception("reload of data and models in the master failed")
