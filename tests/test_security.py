"""Security headers, CSP nonces and production safeguards."""

from __future__ import annotations

import re

import pytest

from tests.conftest import make_app
from webapp.security import with_nonce


def test_every_response_has_security_headers(client):
    for path in ("/context", "/api/v1/health", "/ajax/nope", "/nulle-part"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert re.search(r"script-src 'self' 'nonce-[\w-]{20,}'", csp)
        assert "unsafe-eval" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in headers


def test_nonce_is_fresh_per_request_and_given_to_htmx(client):
    first = client.get("/context")
    second = client.get("/context")

    nonce = re.search(r"'nonce-([\w-]+)'", first.headers["Content-Security-Policy"])[1]
    other = re.search(r"'nonce-([\w-]+)'", second.headers["Content-Security-Policy"])[1]
    assert nonce != other
    assert f'"inlineScriptNonce":"{nonce}"' in first.get_data(as_text=True)


def test_hsts_only_over_https(client):
    response = client.get("/context", base_url="https://localhost")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_with_nonce_marks_inline_scripts(app):
    with app.test_request_context("/"):
        html = with_nonce(
            '<div></div><script>go()</script><script nonce="x">b</script>'
        )
        from webapp.security import csp_nonce

        assert f'<script nonce="{csp_nonce()}">go()</script>' in html
        assert '<script nonce="x">b</script>' in html


def test_production_requires_a_secret_key(volume):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        make_app(volume, APP_ENV="production", SECRET_KEY=None)


def test_production_refuses_debug(volume):
    with pytest.raises(RuntimeError, match="debug"):
        make_app(volume, APP_ENV="production", DEBUG=True)


def test_request_log_line(client, caplog):
    with caplog.at_level("INFO", logger="webapp.access"):
        client.get("/api/v1/health?x=1")

    lines = [r.getMessage() for r in caplog.records if r.name == "webapp.access"]
    assert re.fullmatch(r"GET /api/v1/health\?x=1 200 \d+\.\d ms", lines[-1])
