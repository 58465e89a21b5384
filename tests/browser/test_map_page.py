"""The map page in Chromium: htmx swaps, permalinks, commune choice, errors."""

from __future__ import annotations

import re

import pytest

#: Map tiles are never fetched in tests: the page must work on a blank background.
TILES = re.compile(r"^https?://([a-z.]*\.)?tile\.openstreetmap\.org/")


def _unexpected(errors: list[str]) -> list[str]:
    """Console errors other than the refused tile requests."""
    return [
        e
        for e in errors
        if "tile.openstreetmap.org" not in e
        and "Failed to load resource" not in e
        and "Map error" not in e
    ]


@pytest.fixture
def map_page(page):
    """A page whose tile requests fail, as without network."""
    page.route(TILES, lambda route: route.abort())
    return page


def _wait_for_map(page) -> None:
    page.wait_for_function(
        "() => { const gd = document.getElementById('carte-communes');"
        " return gd && gd.data && gd._fullLayout && gd._fullLayout.map; }"
    )


def _settle(page) -> None:
    """Let MapLibre draw the points before a screenshot (no tile will come)."""
    page.wait_for_function(
        "() => document.getElementById('carte-communes')"
        "._fullLayout.map._subplot.map.isStyleLoaded()"
    )
    page.wait_for_timeout(800)


def _map_points(page) -> dict:
    """Points per legend name; _fullData holds the decoded typed arrays."""
    return page.evaluate(
        """() => {
          const counts = {};
          for (const t of document.getElementById('carte-communes')._fullData) {
            counts[t.name] = (counts[t.name] || 0) + t.lat.length;
          }
          return counts;
        }"""
    )


def _first_cells(page) -> list[str]:
    return (
        page.locator("#table-communes tbody tr").first.locator("td").all_inner_texts()
    )


def test_year_change_swaps_map_and_table_and_url(live_server, map_page, screenshot):
    page = map_page
    page.goto(f"{live_server.url}/map")
    _wait_for_map(page)
    assert "annee" not in page.url
    before = page.locator("#table-count").inner_text()

    page.select_option("#filtre-annee", "2020")
    page.wait_for_url(re.compile(r"/map\?annee=2020$"))
    page.wait_for_function(
        "() => document.querySelector('.map-region')"
        ".getAttribute('aria-label').includes('en 2020')"
    )
    _wait_for_map(page)
    assert _first_cells(page)[2] == "2020"
    assert page.locator("#table-count").inner_text() != before
    assert sum(_map_points(page).values()) > 50
    _settle(page)
    screenshot(page, "map-year-2020")
    assert _unexpected(page.console_errors) == []


def test_permalink_opens_the_same_state(live_server, map_page):
    page = map_page
    page.goto(
        f"{live_server.url}/map?annee=2021&indicateur=conso_moyenne_mwh"
        "&tri=nom_commune&ordre=asc&mode=points"
    )
    _wait_for_map(page)
    assert page.input_value("#filtre-annee") == "2021"
    assert page.input_value("#filtre-indicateur") == "conso_moyenne_mwh"
    names = page.locator("#table-communes tbody tr td:nth-child(2)").all_inner_texts()
    assert names[:3] == sorted(names[:3])
    title = page.evaluate(
        "() => document.getElementById('carte-communes')"
        "._fullLayout.coloraxis.colorbar.title.text"
    )
    assert "Consommation moyenne" in title
    assert _unexpected(page.console_errors) == []


def test_choosing_a_commune_shows_its_addresses(live_server, map_page, screenshot):
    page = map_page
    page.goto(f"{live_server.url}/map?annee=2023")
    _wait_for_map(page)

    page.fill("#filtre-commune", "Annecy (74010)")
    page.press("#filtre-commune", "Enter")
    page.wait_for_url(re.compile(r"commune=74010"))
    page.wait_for_function(
        "() => document.getElementById('carte-communes').data"
        ".some(t => (t.name || '').startsWith('Adresses Enedis'))"
    )
    points = _map_points(page)
    assert sum(n for name, n in points.items() if name.startswith("Adresses")) > 10
    # The hover of an address point names its geolocation precision and formats
    # its figures the French way (three significant digits for the total).
    hover = page.evaluate(
        """() => {
          const gd = document.getElementById('carte-communes');
          const i = gd.data.findIndex(t => (t.name || '').startsWith('Adresses'));
          Plotly.Fx.hover(gd, [{curveNumber: i, pointNumber: 0}], 'map');
          const label = gd.querySelector('.hoverlayer .hovertext');
          return label ? label.textContent : '';
        }"""
    )
    assert "Position : " in hover
    assert re.search(r"Consommation totale : [\d\u202f]+(,\d+)? MWh", hover)
    assert re.search(r"Moyenne par logement : \d+,\d\d MWh", hover)
    assert "Annecy" in page.locator("#commune-title").inner_text()
    page.wait_for_selector("#graphique-etiquettes .main-svg")
    zoom = page.evaluate(
        "() => document.getElementById('carte-communes')._fullLayout.map.zoom"
    )
    assert zoom >= 12
    _settle(page)
    screenshot(page, "map-commune-annecy")
    assert _unexpected(page.console_errors) == []


def test_clicking_a_point_chooses_its_commune(live_server, map_page):
    page = map_page
    page.goto(f"{live_server.url}/map?annee=2023")
    _wait_for_map(page)
    page.locator("#carte-communes").scroll_into_view_if_needed()
    # Screen position of Annecy's point, from the map's own projection.
    position = page.evaluate(
        """() => {
          const gd = document.getElementById('carte-communes');
          const trace = gd.data[0];
          const i = trace.text.findIndex(t => t.endsWith('(74010)'));
          const map = gd._fullLayout.map._subplot.map;
          const p = map.project([trace.lon[i], trace.lat[i]]);
          const box = map.getCanvas().getBoundingClientRect();
          return {x: box.left + p.x, y: box.top + p.y};
        }"""
    )
    # Plotly clicks the hovered point: hover first, as a user does.
    page.mouse.move(position["x"] - 5, position["y"] - 5)
    page.mouse.move(position["x"], position["y"])
    page.wait_for_timeout(300)
    # A press long enough for the map to see a click, not an instant synthetic one.
    page.mouse.down()
    page.wait_for_timeout(80)
    page.mouse.up()
    page.wait_for_url(re.compile(r"commune=74010"))
    page.wait_for_selector("#commune-title")
    assert "Annecy" in page.locator("#commune-title").inner_text()


def test_bad_range_shows_a_message_and_keeps_the_map(live_server, map_page):
    page = map_page
    page.goto(f"{live_server.url}/map")
    _wait_for_map(page)
    url = page.url

    page.fill("#filtre-densite_min", "beaucoup")
    page.press("#filtre-densite_min", "Tab")
    message = page.locator("#erreur-densite_min")
    message.wait_for(state="visible")
    assert "Saisissez un nombre" in message.inner_text()
    assert page.url == url
    assert page.locator("#carte-communes .main-svg").count() >= 1

    page.fill("#filtre-densite_min", "100")
    page.press("#filtre-densite_min", "Tab")
    page.wait_for_url(re.compile(r"densite_min=100"))
    assert page.locator("#erreur-densite_min").inner_text() == ""


def test_boosted_navigation_to_the_map_keeps_a_working_map(live_server, map_page):
    page = map_page
    page.goto(f"{live_server.url}/map?annee=2022&commune=74010")
    _wait_for_map(page)

    # The navigation link is boosted: htmx swaps the body, old figures included.
    page.click("nav[aria-label='Navigation principale'] >> text=Carte")
    page.wait_for_url(re.compile(r"/map$"))
    page.wait_for_function(
        "() => !document.getElementById('commune-title')"
        " && document.querySelector('#carte-communes.js-plotly-plot')"
    )
    position = page.evaluate(
        "() => getComputedStyle(document.querySelector('#carte-communes .main-svg'))"
        ".position"
    )
    assert position == "absolute"

    page.click("text=Réinitialiser")
    page.wait_for_url(re.compile(r"/map$"))
    _wait_for_map(page)
    assert _unexpected(page.console_errors) == []


def test_national_hover_shows_altitude_and_density_in_french(live_server, map_page):
    """The large-view hover (density in hovertext, 2-digit mean) as Plotly shows it."""
    import json

    import plotly

    from tests.test_maps import large_frame
    from webapp import maps

    frame = large_frame()
    frame.loc[0, ["conso_moyenne_mwh", "altitude", "densite"]] = [4.734, 1234, 8258]
    fig = maps.scatter_map(frame, "conso_total_mwh", 2023)
    figure = maps.compact_arrays(
        {
            "data": [trace.to_plotly_json() for trace in fig.data],
            "layout": fig.layout.to_plotly_json(),
        }
    )
    page = map_page
    script = f"{live_server.url}/static/vendor/plotly-{plotly.__version__}.min.js"
    page.set_content(
        f'<div id="g" style="height:400px"></div><script src="{script}"></script>'
    )
    page.wait_for_function("() => window.Plotly")
    # Not awaited: without tiles the promise rejects ("Map error."), as on the page.
    page.evaluate(
        "figure => { Plotly.newPlot(document.getElementById('g'), figure.data,"
        " figure.layout).catch(() => null); }",
        json.loads(json.dumps(figure)),
    )
    page.wait_for_function(
        "() => { const gd = document.getElementById('g');"
        " return gd._fullLayout && gd._fullLayout.map && gd.calcdata; }"
    )
    hover = page.evaluate(
        """index => {
          const gd = document.getElementById('g');
          Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: index}], 'map');
          const label = gd.querySelector('.hoverlayer .hovertext');
          return label ? label.textContent : '';
        }""",
        list(fig.data[0].text).index("C0 (00000)"),
    )
    assert "C0 (00000)" in hover
    assert "Moyenne par logement : 4,7 MWh" in hover
    assert "Altitude moyenne : 1\u202f230 m" in hover
    assert "Densité : 8\u202f300 hab./km²" in hover
    assert _unexpected(page.console_errors) == []
