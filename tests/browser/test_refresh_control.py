"""The refresh control in chromium: POST with CSRF, polling, 286, new summary."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests import fake_upstream
from tests.conftest import make_app

demo_payloads = fake_upstream.demo_payloads
upstream = fake_upstream.upstream

TOKEN = "browser-refresh-token"


@pytest.fixture
def refresh_server(tmp_path, upstream):
    """The app with web refresh enabled, served on 127.0.0.1, sources faked."""
    volume = tmp_path / "volume"
    volume.mkdir()
    app = make_app(volume, REFRESH_TOKEN=TOKEN, **upstream.config())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.app = app
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    thread.join(timeout=5)


def test_refresh_from_the_context_page(page, refresh_server, upstream, screenshot):
    event = threading.Event()
    upstream.block = (lambda r: "dpe02neuf/lines" in r.path, event)
    page.goto(f"{refresh_server.url}/context")
    assert "démonstration" in page.locator("#context-summary").inner_text()

    page.fill("#refresh-token", TOKEN)
    page.click("#refresh button[type=submit]")
    progress = page.locator("#refresh-progress")
    progress.wait_for()
    assert "Mise à jour en cours" in progress.inner_text()
    assert upstream.reached.wait(timeout=30)
    screenshot(page, "refresh-running")
    event.set()
    upstream.block = None

    page.wait_for_selector("text=Mise à jour terminée", timeout=30_000)
    summary = page.locator("#context-summary").inner_text()
    assert "API" in summary
    assert "démonstration" not in summary
    assert page.locator("#demo-notice").count() == 0
    # Polling stopped: the fragment no longer carries its trigger.
    assert page.locator("#refresh-progress[hx-trigger]").count() == 0
    screenshot(page, "refresh-done")
    assert page.console_errors == []
