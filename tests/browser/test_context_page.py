"""The context page in a real browser."""

from __future__ import annotations


def test_context_page_loads_htmx_plotly_and_demo_notice(live_server, page, screenshot):
    page.goto(f"{live_server.url}/context")
    page.wait_for_load_state("load")

    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("typeof window.Plotly") == "object"
    assert page.locator("#demo-notice").is_visible()
    assert "Données de démonstration" in page.locator("#demo-notice").inner_text()
    assert page.locator("main h1").inner_text() == "Atlas Énergie 74"
    assert page.locator("table").first.is_visible()
    screenshot(page, "context")
    assert page.console_errors == []
