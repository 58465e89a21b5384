"""Start the app under real gunicorn on 127.0.0.1 for the load, memory and fault runs.

`GunicornServer` runs `gunicorn --config gunicorn.conf.py` (the Procfile's setup)
bound to a free local port with its own volume and environment, waits until the
workers answer, and always stops the whole process group at the end.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[2]
GUNICORN_CONF = PROJECT_DIR / "gunicorn.conf.py"
APP_SPEC = "webapp:create_app()"


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on (at the time asked)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configured(name: str):
    """A setting of gunicorn.conf.py as evaluated in the current environment."""
    return runpy.run_path(str(GUNICORN_CONF))[name]


def configured_workers() -> int:
    """The worker count that gunicorn.conf.py gives in the current environment."""
    return int(configured("workers"))


def children(pid: int) -> list[int]:
    """Return the pids of the direct children of `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


class Response:
    """Status, headers and body of one HTTP answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body)


class GunicornServer:
    """One gunicorn master with its workers, for the duration of a `with` block."""

    def __init__(
        self,
        volume: str | os.PathLike | None = None,
        workers: int | None = 2,
        env: dict[str, str] | None = None,
        app: str = APP_SPEC,
        log_path: str | os.PathLike | None = None,
        start_timeout: float = 180.0,
    ):
        self._tmp = None
        if volume is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="atlas-gunicorn-")
            volume = Path(self._tmp.name) / "volume"
        self.volume = Path(volume)
        # None: as many as the Procfile's configuration starts (CPU count + 1).
        self.workers = configured_workers() if workers is None else workers
        self.app = app
        self.extra_env = dict(env or {})
        self.start_timeout = start_timeout
        if log_path is None:
            base = Path(self._tmp.name) if self._tmp else self.volume.parent
            log_path = base / "gunicorn.log"
        self.log_path = Path(log_path)
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._log_handle = None

    # ------------------------------------------------------------ lifecycle

    def environment(self) -> dict[str, str]:
        """The environment of the gunicorn process."""
        env = dict(os.environ)
        env.update(
            {
                "MOUNT_PATH": str(self.volume),
                "SECRET_KEY": "gunicorn-test-secret",
                "PYTHONPATH": str(PROJECT_DIR),
                "PYTHONUNBUFFERED": "1",
                "TRAIN_IF_MISSING": "0",
            }
        )
        # A shell's WEB_CONCURRENCY must not change a run that sets its workers.
        env.pop("WEB_CONCURRENCY", None)
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        """The gunicorn command line (the Procfile's, bound to 127.0.0.1)."""
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(GUNICORN_CONF),
            "--bind",
            f"127.0.0.1:{self.port}",
            # gunicorn's control socket has one default path per user: several
            # servers started side by side (tests, benchmarks) would share it.
            "--no-control-socket",
            "--workers",
            str(self.workers),
            self.app,
        ]

    def start(self) -> GunicornServer:
        """Start gunicorn and wait until every worker can answer."""
        self.volume.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_handle = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_DIR,
            env=self.environment(),
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_until_serving(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until_serving(self, timeout: float) -> None:
        """Wait for the expected number of workers and a 200 from /api/v1/health."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.process.returncode}:\n{self.log()}"
                )
            if len(self.worker_pids()) >= self.workers:
                try:
                    if self.get("/api/v1/health", timeout=5).status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.2)
        raise TimeoutError(f"gunicorn not serving after {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop gunicorn gracefully (SIGTERM), then kill its process group."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("gunicorn did not stop in %s s: killing it", timeout)
        # Workers orphaned by a killed master are in the same process group.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        return self.process.returncode

    def close(self) -> None:
        """Stop gunicorn and remove the temporary folder, if one was made."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ inspection

    @property
    def url(self) -> str:
        """The base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def master_pid(self) -> int:
        """The pid of the gunicorn master."""
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The pids of the live workers."""
        return children(self.process.pid)

    def wait_for_workers(
        self, count: int, timeout: float = 60.0, exclude: set[int] = frozenset()
    ) -> list[int]:
        """Wait until `count` workers not in `exclude` run; return their pids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = [p for p in self.worker_pids() if p not in exclude]
            if len(pids) >= count:
                return pids
            time.sleep(0.1)
        raise TimeoutError(
            f"{count} workers not running after {timeout} s: {self.worker_pids()}"
        )

    def log(self) -> str:
        """Everything gunicorn and the app wrote so far."""
        if self._log_handle is not None:
            self._log_handle.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Response:
        """Send one request on a new connection and return the whole answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            answer = connection.getresponse()
            return Response(
                answer.status,
                {k.lower(): v for k, v in answer.getheaders()},
                answer.read(),
            )
        finally:
            connection.close()

    def get(self, path: str, headers: dict | None = None, timeout: float = 30.0):
        """GET `path` on a new connection."""
        return self.request("GET", path, headers=headers, timeout=timeout)
