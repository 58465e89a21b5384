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


def post_fork(server, worker):
    """Let the worker ask this master for new workers when the data changes.

    Without it each worker would reload refreshed data into a private copy (on
    the 10x data ~600 MB per worker instead of ~300 MB shared, see bench_memory).
    """
    if not server.cfg.preload_app:
        return
    from webapp.store import MasterReload

    store = server.app.wsgi().extensions["store"]
    store.reload_requester = MasterReload(server.pid, store.volume)


def on_reload(arbiter):
    """Graceful reload (SIGHUP): new workers start before old ones stop.

    With preload_app the new workers are forked from this master, so the master
    first loads data and models refreshed since it started: the workers then share
    them copy-on-write instead of each reloading a private copy. A worker sends
    the SIGHUP itself when it notices a refresh (`post_fork`); an operator may too.
    """
    arbiter.log.info("reloading: new workers with the current code and data")
    if not arbiter.cfg.preload_app:
        return
    from webapp.store import MasterReload

    app = arbiter.app.wsgi()
    try:
        store = app.extensions["store"]
        store.check_for_update(0, wait_for_refresh=False)
        # The old workers still serving must not ask again for this data.
        if store.snapshot.stamp:
            MasterReload(arbiter.pid, store.volume).claim(store.snapshot.stamp)
        models = app.extensions.get("models")
        if models is not None:
            models.check_for_update(0)
    except Exception:
        # The new workers still load what changed themselves.
        arbiter.log.exception("reload of data and models in the master failed")
