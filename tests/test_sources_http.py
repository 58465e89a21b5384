"""The shared HTTP client: retries, backoff, Retry-After, pacing, validation."""

from __future__ import annotations

import email.utils
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from tests import fake_upstream
from webapp.sources.http import Client
from webapp.sources.http import HttpSettings
from webapp.sources.http import SourceError
from webapp.sources.http import retry_after_seconds

demo_payloads = fake_upstream.demo_payloads
upstream = fake_upstream.upstream


class Sleeps(list):
    """A sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(**settings) -> tuple[Client, Sleeps]:
    sleeps = Sleeps()
    values = {"backoff": 1.0, "min_interval": 0.0, "sleep": sleeps, **settings}
    return Client("ademe", HttpSettings(**values)), sleeps


def lines_url(server) -> str:
    return f"{server.config()['ADEME_API_URL']}/dpe03existant/lines"


def test_retry_after_as_seconds_or_http_date():
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    later = email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True)

    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(later, now=now) == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_429_waits_for_retry_after(upstream):
    upstream.retry_after = "7"
    upstream.fail("429", "/lines")
    http, sleeps = client(backoff=0.5, backoff_max=60)

    document, _ = http.get_json(lines_url(upstream), {"size": "1"})

    assert document["results"]
    assert sleeps == [7.0]


def test_retry_after_is_capped(upstream):
    upstream.retry_after = "3600"
    upstream.fail("429", "/lines")
    http, sleeps = client(backoff_max=30)

    http.get_json(lines_url(upstream), {"size": "1"})

    assert sleeps == [30]


def test_5xx_backs_off_exponentially_then_gives_up(upstream):
    upstream.fail("500", "/lines", times=10)
    http, sleeps = client(retries=3, backoff=1.0, backoff_max=100)

    with pytest.raises(SourceError) as caught:
        http.get_json(lines_url(upstream), {"size": "1"})

    assert sleeps == [1.0, 2.0, 4.0]
    message = str(caught.value)
    assert message.startswith("ademe: HTTP 500 after 4 attempts")
    assert message.endswith(f"({lines_url(upstream)}?size=1)")
    assert "\n" not in message


def test_a_4xx_is_not_retried(upstream):
    http, sleeps = client()

    with pytest.raises(SourceError) as caught:
        http.get_json(lines_url(upstream), {"size": "20000"})

    assert sleeps == []
    assert "HTTP 400" in str(caught.value)


def test_a_slow_answer_times_out_and_is_retried(upstream):
    upstream.slow_seconds = 0.5
    upstream.fail("slow", "/lines")
    http, sleeps = client(read_timeout=0.2, retries=1, backoff=0.0)

    document, _ = http.get_json(lines_url(upstream), {"size": "1"})

    assert document["results"]
    assert len(sleeps) == 1


def test_requests_are_paced(upstream):
    http, sleeps = client(min_interval=0.5)

    http.get_json(lines_url(upstream), {"size": "1"})
    http.get_json(lines_url(upstream), {"size": "1"})

    assert len(sleeps) == 1 and 0.3 < sleeps[0] <= 0.5


def test_default_pace_stays_under_the_quota():
    assert 60 / HttpSettings().min_interval < 600


def test_user_agent_names_the_app():
    assert Client("ademe").session.headers["User-Agent"].startswith("AtlasEnergie74/")


def test_wrong_content_type_is_refused(upstream):
    http, _ = client()

    with pytest.raises(SourceError) as caught:
        http.get_json(upstream.url + fake_upstream.STATIC_PREFIX + "x.csv")

    assert "unexpected content type 'text/csv'" in str(caught.value)


def test_truncated_download_is_retried_then_fails(upstream, tmp_path):
    upstream.fail("short_body", "/static/", times=5)
    http, sleeps = client(retries=2, backoff=0.0)
    url = upstream.url + fake_upstream.STATIC_PREFIX + "communes.csv"

    with pytest.raises(SourceError) as caught:
        http.download(url, tmp_path / "communes.csv")

    assert "truncated response after 3 attempts" in str(caught.value)
    assert len(sleeps) == 2


def test_html_download_is_refused(upstream, tmp_path):
    upstream.fail("html", "/static/")
    http, _ = client()
    url = upstream.url + fake_upstream.STATIC_PREFIX + "communes.csv"

    with pytest.raises(SourceError) as caught:
        http.download(url, tmp_path / "communes.csv")

    assert "HTML page instead of a data file" in str(caught.value)


def test_download_writes_the_whole_file(upstream, tmp_path):
    http, _ = client()
    target = tmp_path / "communes.csv"

    http.download(upstream.url + fake_upstream.STATIC_PREFIX + "c.csv", target)

    assert target.read_bytes() == upstream.communes
