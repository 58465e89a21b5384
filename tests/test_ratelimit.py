"""Per-IP sliding-window rate limits of the API and the fragments."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from webapp import ratelimit


class Clock:
    """A settable clock."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("120/minute", (120, 60.0)),
        ("5 per second", (5, 1.0)),
        ("10/5 seconds", (10, 5.0)),
        ("1000/heure", (1000, 3600.0)),
        ("3/day", (3, 86400.0)),
    ],
)
def test_parse_limit(text, expected):
    assert ratelimit.parse_limit(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "10/fortnight", "0/minute", "-1/second"])
def test_parse_limit_rejects_unreadable_limits(text):
    with pytest.raises(ValueError) as caught:
        ratelimit.parse_limit(text)
    assert "N/period" in str(caught.value) or "at least one" in str(caught.value)


def test_sliding_window_allows_then_blocks_then_recovers():
    clock = Clock()
    limiter = ratelimit.SlidingWindowLimiter(3, 10.0, clock)

    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    clock.now += 4
    assert limiter.hit("a") == pytest.approx(6.0)
    # Another client has its own window.
    assert limiter.hit("b") is None
    clock.now += 6
    assert limiter.hit("a") is None


def test_idle_clients_are_swept():
    clock = Clock()
    limiter = ratelimit.SlidingWindowLimiter(1000, 1.0, clock)
    for i in range(ratelimit.SWEEP_EVERY - 1):
        limiter.hit(f"client-{i}")
    clock.now += 5
    limiter.hit("last")

    assert list(limiter._hits) == ["last"]


@pytest.fixture(scope="module")
def limited_app(tmp_path_factory):
    return make_app(
        tmp_path_factory.mktemp("volume"),
        RATELIMIT_ENABLED=True,
        RATELIMIT_API="3/minute",
        RATELIMIT_AJAX="2/minute",
    )


def test_api_answers_429_json_with_retry_after(limited_app):
    client = limited_app.test_client()
    environ = {"REMOTE_ADDR": "10.0.0.1"}
    statuses = [
        client.get("/api/v1/health", environ_base=environ).status_code for _ in range(3)
    ]
    response = client.get("/api/v1/health", environ_base=environ)

    assert statuses == [200, 200, 200]
    assert response.status_code == 429
    assert response.json["error"]["code"] == "too_many_requests"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # Another address is not limited.
    other = client.get("/api/v1/health", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200


def test_ajax_answers_429_fragment(limited_app):
    client = limited_app.test_client()
    environ = {"REMOTE_ADDR": "10.0.1.1"}
    headers = {"HX-Request": "true"}
    for _ in range(2):
        ok = client.get(
            "/ajax/address/suggest?q=annecy", headers=headers, environ_base=environ
        )
        assert ok.status_code == 200
    response = client.get(
        "/ajax/address/suggest?q=annecy", headers=headers, environ_base=environ
    )

    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert "Trop de requêtes" in response.text
    assert "<html" not in response.text


def test_limits_are_off_under_testing_by_default(client):
    statuses = {client.get("/api/v1/health").status_code for _ in range(150)}

    assert statuses == {200}
