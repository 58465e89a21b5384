"""The app under real gunicorn: configuration, health, access log, graceful reload."""

from __future__ import annotations

import os
import re
import runpy
import signal
import threading
import time
import uuid

import pandas as pd
import pytest
from gunicorn.config import Config

from bench.loadtest.server import GUNICORN_CONF
from bench.loadtest.server import GunicornServer
from webapp.store import DataStore

#: Limits high enough that the request loops below never meet them.
UNLIMITED = {"RATELIMIT_API": "1000000/minute", "RATELIMIT_AJAX": "1000000/minute"}


def load_settings(monkeypatch, **environ) -> dict:
    """Run gunicorn.conf.py under `environ` and return its settings."""
    for key in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "PORT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    namespace = runpy.run_path(str(GUNICORN_CONF))
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def test_config_preloads_and_sizes_workers_from_the_cpus(monkeypatch):
    settings = load_settings(monkeypatch)

    assert settings["preload_app"] is True
    assert settings["workers"] == os.cpu_count() + 1
    assert settings["accesslog"] == "-"
    assert settings["errorlog"] == "-"
    assert "%(M)s" in settings["access_log_format"]
    assert settings["bind"] == "0.0.0.0:8000"
    assert 0 < settings["graceful_timeout"] <= settings["timeout"]
    # gunicorn itself accepts every value (its validators raise otherwise).
    config = Config()
    for name, value in settings.items():
        if name in config.settings:
            config.set(name, value)
    assert config.workers == os.cpu_count() + 1
    assert config.preload_app is True


def test_config_reads_the_platform_environment(monkeypatch):
    settings = load_settings(
        monkeypatch, WEB_CONCURRENCY="5", PORT="9001", GUNICORN_TIMEOUT="45"
    )

    assert settings["workers"] == 5
    assert settings["bind"] == "0.0.0.0:9001"
    assert settings["timeout"] == 45


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn with two workers on the demo data and a temporary volume."""
    volume = tmp_path_factory.mktemp("serving") / "volume"
    with GunicornServer(volume, workers=2, env=UNLIMITED) as running:
        yield running


def test_health_and_readiness_under_gunicorn(server):
    health = server.get("/api/v1/health")
    ready = server.get("/api/v1/ready")

    assert health.status == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["data"]["dpe"]["origin"] == "demo"
    assert len(body["data"]["dpe"]["sha256"]) == 64
    assert health.headers["content-type"].startswith("application/json")
    assert "nonce-" in health.headers["content-security-policy"]
    assert health.headers["x-content-type-options"] == "nosniff"

    checks = ready.json()["checks"]
    assert checks["data"] is True
    # Ready only once data and models are both loaded; the status says which.
    assert ready.status == (200 if all(checks.values()) else 503)
    assert ready.json()["status"] == ("ready" if ready.status == 200 else "not_ready")


def wait_for_log(server: GunicornServer, pattern: str, timeout: float = 20.0):
    """Wait for a line of the server log matching `pattern`; return the match."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, server.log(), re.MULTILINE)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no log line matching {pattern!r}:\n{server.log()[-3000:]}")


def test_access_log_line_has_status_size_and_duration(server):
    probe = uuid.uuid4().hex
    answer = server.get(f"/stats?probe={probe}")
    assert answer.status == 200

    line = wait_for_log(
        server, rf'"GET /stats\?probe={probe} HTTP/1\.1" 200 (\d+) (\d+)ms'
    )
    assert int(line.group(1)) > 0
    # The app's own request line: method, path, status, duration in ms.
    wait_for_log(
        server, rf"webapp\.access: GET /stats\?probe={probe} 200 \d+(\.\d+)? ms"
    )


class Poller(threading.Thread):
    """Requests /api/v1/health in a loop, each on a new connection, counting."""

    def __init__(self, server: GunicornServer):
        super().__init__(daemon=True)
        self.server = server
        self.stopped = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                answer = self.server.get("/api/v1/health", timeout=30)
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            if answer.status == 200:
                self.ok += 1
            else:
                self.failures.append(f"HTTP {answer.status}")

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=60)


def test_sighup_reload_replaces_the_workers_without_dropping_requests(server):
    before = set(server.worker_pids())
    assert len(before) == 2
    poller = Poller(server)
    poller.start()
    try:
        while poller.ok < 5 and not poller.failures:
            time.sleep(0.05)

        os.kill(server.master_pid, signal.SIGHUP)

        new = server.wait_for_workers(2, timeout=90, exclude=before)
        deadline = time.monotonic() + 60
        while set(server.worker_pids()) & before and time.monotonic() < deadline:
            time.sleep(0.1)
        served_before = poller.ok
        while poller.ok < served_before + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()

    assert poller.failures == []
    assert poller.ok >= served_before + 10
    assert not set(server.worker_pids()) & before
    assert len(new) >= 2
    wait_for_log(server, r"reloading: new workers with the current code and data")
    assert server.process.poll() is None
    assert server.get("/api/v1/health").status == 200


def test_sighup_reloads_refreshed_data_in_the_master_before_forking(server):
    store = DataStore(server.volume)
    frame = pd.DataFrame(
        {
            "code_commune": ["74010", "74056"],
            "annee": [2023, 2023],
            "nombre_de_logements": [10, 20],
            "conso_total_mwh": [55.0, 80.0],
        }
    )
    # A refresh by another process: no request reaches the workers in between.
    store.write_dataset("enedis_communes", frame, origin="api", reload=False)
    old = set(server.worker_pids())
    start = len(server.log())

    os.kill(server.master_pid, signal.SIGHUP)
    server.wait_for_workers(2, timeout=90, exclude=old)

    log = wait_for_log_after(server, start, r"Booting worker with pid")
    after_hup = log[log.index("reloading: new workers") :]
    assert "data changed on the volume" in after_hup, after_hup[-3000:]
    # Loaded by the master, before the first new worker was forked.
    assert after_hup.index("data changed on the volume") < after_hup.index(
        "Booting worker with pid"
    )
    health = server.get("/api/v1/health").json()
    assert health["data"]["enedis_communes"]["rows"] == 2
    assert health["data"]["enedis_communes"]["origin"] == "api"


def test_a_refresh_makes_a_worker_ask_the_master_for_new_workers(server):
    store = DataStore(server.volume)
    frame = pd.DataFrame(
        {
            "code_commune": ["74010", "74056", "74081"],
            "annee": [2023, 2023, 2023],
            "nombre_de_logements": [10, 20, 30],
            "conso_total_mwh": [55.0, 80.0, 120.0],
        }
    )
    old = set(server.worker_pids())
    start = len(server.log())
    store.write_dataset("enedis_communes", frame, origin="api", reload=False)
    # Past DATA_RELOAD_CHECK_SECONDS, the next request notices the new stamp.
    time.sleep(1.2)

    assert server.get("/api/v1/health").status == 200
    server.wait_for_workers(2, timeout=90, exclude=old)
    deadline = time.monotonic() + 60
    while set(server.worker_pids()) & old and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(6):
        health = server.get("/api/v1/health").json()
        assert health["data"]["enedis_communes"]["rows"] == 3

    log = wait_for_log_after(server, start, r"Booting worker with pid")
    assert log.count("asked the gunicorn master") == 1, log[-3000:]
    # Loaded once, by the master; no worker built a private copy.
    assert log.count("): reloading") == 1, log[-3000:]
    assert not set(server.worker_pids()) & old


def wait_for_log_after(server, start: int, pattern: str, timeout: float = 30.0):
    """Wait until the log written after offset `start` matches; return that part."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        part = server.log()[start:]
        if re.search(pattern, part):
            return part
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the log:\n{server.log()[start:][-3000:]}")


def test_hsts_only_when_the_trusted_proxy_says_https(server):
    # gunicorn trusts X-Forwarded-Proto from FORWARDED_ALLOW_IPS (127.0.0.1 here).
    proxied = server.get("/api/v1/health", headers={"X-Forwarded-Proto": "https"})
    plain = server.get("/api/v1/health")

    assert proxied.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in plain.headers
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set in production"),
        ({"FLASK_DEBUG": "1"}, "debug mode must never be on in production"),
    ],
    ids=["no-secret-key", "debug"],
)
def test_unsafe_production_settings_refuse_to_boot(tmp_path, env, reason):
    server = GunicornServer(
        tmp_path / "volume",
        workers=1,
        env={"APP_ENV": "production", **env},
        start_timeout=120,
    )
    try:
        with pytest.raises(RuntimeError) as caught:
            server.start()
    finally:
        server.close()

    assert reason in str(caught.value)
