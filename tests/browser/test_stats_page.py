"""The statistics page in Chromium: figures render, filters update them and the URL."""

from __future__ import annotations

import re

import pytest

from webapp import stats

pytestmark = pytest.mark.browser

FIGURE_NAMES = list(stats.FIGURES)


def _wait_for_figures(page, names, timeout=20_000):
    for name in names:
        slot = page.locator(f"#slot-{name}")
        slot.scroll_into_view_if_needed()
        page.wait_for_selector(f"#slot-{name} .js-plotly-plot", timeout=timeout)


def test_stats_page_renders_every_figure(live_server, page, screenshot):
    page.goto(f"{live_server.url}/stats")
    assert page.title().startswith("Statistiques")
    _wait_for_figures(page, FIGURE_NAMES)

    for name in FIGURE_NAMES:
        card = page.locator(f"#carte-{name}")
        assert card.locator(".plot-container").count() == 1, name
        assert card.locator(".insight").inner_text().startswith("À retenir")
        assert card.locator("summary", has_text="Voir les données").count() == 1
    screenshot(page, "stats-page")
    assert page.console_errors == []


def test_filter_change_updates_figures_and_url(live_server, page, screenshot):
    page.goto(f"{live_server.url}/stats")
    _wait_for_figures(page, ["altitude", "bands"])
    before = page.locator("#stats-kpis dd").first.inner_text()

    page.select_option("#filtre-type_batiment", "maison")
    page.wait_for_url(re.compile(r"/stats\?type_batiment=maison"))
    page.wait_for_function(
        "before => document.querySelector('#stats-kpis dd').innerText !== before",
        arg=before,
    )
    _wait_for_figures(page, FIGURE_NAMES)
    link = page.locator("#carte-bands .stats-download a").get_attribute("href")
    assert "type_batiment=maison" in link
    screenshot(page, "stats-page-maisons")
    assert page.console_errors == []

    page.reload()
    assert page.locator("#filtre-type_batiment").input_value() == "maison"


def test_commune_search_selects_and_goes_back(live_server, page):
    page.goto(f"{live_server.url}/stats")
    _wait_for_figures(page, ["altitude"])

    page.fill("#filtre-commune-q", "chamo")
    page.wait_for_selector("#commune-results input[value='74056']")
    page.click("#commune-results input[value='74056']")
    page.wait_for_url(re.compile(r"/stats\?commune=74056$"))
    page.wait_for_selector("#commune-selected input[value='74056']:checked")
    _wait_for_figures(page, ["bands", "timeline"])
    assert "Chamonix" in page.locator("#commune-selected").inner_text()

    page.click("#commune-selected input[value='74056']")
    page.wait_for_url(re.compile(r"/stats$"))
    page.go_back()
    page.wait_for_url(re.compile(r"commune=74056"))
    # htmx refetches the page (no history snapshot): wait for the swapped body.
    page.wait_for_selector("#commune-selected input[value='74056']:checked")
    _wait_for_figures(page, ["bands"])
    assert page.console_errors == []
