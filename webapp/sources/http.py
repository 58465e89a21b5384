"""One HTTP session per source: timeouts, retries with backoff, pacing, validation.

Every failure ends as a `SourceError` whose text is one line naming the source
and the URL, so the refresh job can report it as it is.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from webapp import __version__

logger = logging.getLogger(__name__)

#: Statuses worth another try: rate limited or a server-side failure.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Data Fair and Opendatasoft allow 600 anonymous requests per 60 s; stay under.
DEFAULT_MIN_INTERVAL = 0.11
#: Characters of an error body quoted in a failure message.
QUOTE_CHARS = 120
#: Size of the chunks read from a streamed download.
CHUNK_BYTES = 1 << 20


class SourceError(Exception):
    """A source that failed: one line naming the source, the reason and the URL."""

    def __init__(self, source: str, reason: str, url: str | None = None):
        super().__init__(reason)
        self.source = source
        self.reason = " ".join(str(reason).split())
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.source}: {self.reason}{where}"


@dataclass
class HttpSettings:
    """Timeouts, retries and pace of one session (seconds)."""

    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    min_interval: float = DEFAULT_MIN_INTERVAL
    user_agent: str = f"AtlasEnergie74/{__version__} (+refresh job; python-requests)"
    #: Injected by tests so that backoff and pacing cost no real time.
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_config(cls, config: dict, **overrides: Any) -> HttpSettings:
        """Build the settings from the app configuration."""
        values = {
            "connect_timeout": float(config.get("HTTP_CONNECT_TIMEOUT", 5.0)),
            "read_timeout": float(config.get("HTTP_READ_TIMEOUT", 60.0)),
            "retries": int(config.get("HTTP_RETRIES", 3)),
            "backoff": float(config.get("HTTP_BACKOFF_SECONDS", 1.0)),
            "backoff_max": float(config.get("HTTP_BACKOFF_MAX_SECONDS", 30.0)),
            "min_interval": float(
                config.get("HTTP_MIN_INTERVAL_SECONDS", DEFAULT_MIN_INTERVAL)
            ),
        }
        values.update(overrides)
        return cls(**values)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Return the delay of a Retry-After header (seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _quote(response: requests.Response) -> str:
    try:
        text = response.text
    except (requests.RequestException, ValueError):
        return ""
    text = " ".join(text.split())
    return text[:QUOTE_CHARS] + ("…" if len(text) > QUOTE_CHARS else "")


def _is_html(response: requests.Response, head: bytes) -> bool:
    kind = response.headers.get("Content-Type", "").lower()
    start = head.lstrip()[:15].lower()
    return "html" in kind or start.startswith((b"<!doctype", b"<html"))


class Client:
    """A paced, retrying `requests.Session` for one source."""

    def __init__(self, source: str, settings: HttpSettings | None = None):
        self.source = source
        self.settings = settings or HttpSettings()
        self.session = requests.Session()
        self.session.headers["User-Agent"] = self.settings.user_agent
        self.requests_sent = 0
        self._last_request = 0.0
        self._pace_lock = threading.Lock()

    def close(self) -> None:
        """Close the connections of the session."""
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def error(self, reason: str, url: str | None) -> SourceError:
        """Return a SourceError of this client's source."""
        return SourceError(self.source, reason, url)

    # ------------------------------------------------------------ transport

    def _pace(self) -> None:
        # One request at a time per source, spaced to stay under the quota.
        with self._pace_lock:
            wait = self._last_request + self.settings.min_interval - time.monotonic()
            if wait > 0:
                self.settings.sleep(wait)
            self._last_request = time.monotonic()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = self.settings.backoff * (2**attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.settings.backoff_max)

    def request(
        self,
        url: str,
        params: dict | None = None,
        stream: bool = False,
        reader: Callable[[requests.Response], Any] | None = None,
    ) -> tuple[requests.Response, Any]:
        """GET `url`, retrying connection errors, 429 and 5xx; return (response, read).

        `reader(response)` consumes the body inside the retry loop, so a
        truncated stream is retried like a dropped connection.
        """
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        attempts = self.settings.retries + 1
        shown = url
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self._pace()
            retry_after = None
            try:
                response = self.session.get(
                    url, params=params, timeout=timeout, stream=stream
                )
                self.requests_sent += 1
                shown = response.url
                if response.status_code in RETRY_STATUSES:
                    retry_after = retry_after_seconds(
                        response.headers.get("Retry-After")
                    )
                    problem = f"HTTP {response.status_code}"
                    if last:
                        raise self.error(
                            f"{problem} after {attempts} attempts: {_quote(response)}",
                            shown,
                        )
                    response.close()
                elif response.status_code >= 400:
                    raise self.error(
                        f"HTTP {response.status_code}: {_quote(response)}", shown
                    )
                else:
                    read = reader(response) if reader else None
                    return response, read
            except requests.Timeout:
                problem = f"no answer within {self.settings.read_timeout:g} s"
                if last:
                    raise self.error(
                        f"timed out after {attempts} attempts", shown
                    ) from None
            except requests.exceptions.ChunkedEncodingError:
                problem = "truncated response"
                if last:
                    raise self.error(
                        f"truncated response after {attempts} attempts", shown
                    ) from None
            except requests.ConnectionError as exc:
                problem = f"connection failed ({exc.__class__.__name__})"
                if last:
                    raise self.error(
                        f"unreachable after {attempts} attempts", shown
                    ) from None
            except requests.RequestException as exc:
                raise self.error(f"request failed: {exc}", shown) from None

            delay = self._backoff(attempt, retry_after)
            logger.warning(
                "%s: %s on %s; retry %d/%d in %.2f s",
                self.source,
                problem,
                shown,
                attempt + 1,
                attempts - 1,
                delay,
            )
            self.settings.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------ bodies

    def get_json(
        self,
        url: str,
        params: dict | None = None,
        shape: type | tuple[type, ...] = dict,
        required: Iterable[str] = (),
    ) -> tuple[Any, str]:
        """GET a JSON document, check its type, shape and keys; return (doc, URL)."""
        document, shown, _ = self.get_json_body(url, params, shape, required)
        return document, shown

    def get_json_body(
        self,
        url: str,
        params: dict | None = None,
        shape: type | tuple[type, ...] = dict,
        required: Iterable[str] = (),
    ) -> tuple[Any, str, bytes]:
        """Like `get_json`, also returning the raw body (to stage it as received)."""
        response, body = self._get_body(url, params, "JSON")
        shown = response.url
        kind = response.headers.get("Content-Type", "").lower()
        if "json" not in kind:
            raise self.error(f"unexpected content type {kind or 'none'!r}", shown)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise self.error(f"invalid or truncated JSON ({exc.msg})", shown) from None
        if not isinstance(document, shape):
            raise self.error(f"unexpected JSON shape: {type(document).__name__}", shown)
        missing = [key for key in required if key not in document]
        if missing:
            raise self.error(f"JSON keys missing: {', '.join(missing)}", shown)
        return document, shown, body

    def get_csv_body(
        self, url: str, params: dict | None = None
    ) -> tuple[requests.Response, bytes]:
        """GET a CSV document; return the response (headers, type) and the body.

        The caller checks the content type: a server may ignore `format=csv`.
        """
        return self._get_body(url, params, "CSV")

    def _get_body(
        self, url: str, params: dict | None, expected: str
    ) -> tuple[requests.Response, bytes]:
        """GET a whole body, refusing an empty one or an HTML page."""

        def read(response: requests.Response) -> bytes:
            return response.content

        response, body = self.request(url, params, reader=read)
        if not body or not body.strip():
            raise self.error("empty response body", response.url)
        if _is_html(response, body[:64]):
            raise self.error(
                f"HTML page instead of {expected} (error or maintenance page)",
                response.url,
            )
        return response, body

    def download(self, url: str, target: Path, params: dict | None = None) -> str:
        """Stream a file to `target`, checking type and length; return the final URL."""

        def read(response: requests.Response) -> int:
            expected = response.headers.get("Content-Length")
            written = 0
            head = b""
            with open(target, "wb") as handle:
                for chunk in response.iter_content(CHUNK_BYTES):
                    if not head:
                        head = chunk[:64]
                        if _is_html(response, head):
                            raise self.error(
                                "HTML page instead of a data file", response.url
                            )
                    handle.write(chunk)
                    written += len(chunk)
            if (
                expected is not None
                and expected.isascii()
                and expected.isdigit()
                and written < int(expected)
            ):
                raise requests.exceptions.ChunkedEncodingError(
                    f"{written} of {expected} bytes"
                )
            return written

        target.parent.mkdir(parents=True, exist_ok=True)
        response, written = self.request(url, params, stream=True, reader=read)
        if not written:
            raise self.error("empty response body", response.url)
        return response.url
