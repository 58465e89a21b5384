"""Map page and fragments on the demo data: permalinks, errors, table, CSV."""

from __future__ import annotations

import csv
import gzip
import html
import io
import re
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_app
from webapp import maps

HX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def map_app(tmp_path_factory):
    """One app on the demo data for the whole module (loading takes seconds)."""
    return make_app(tmp_path_factory.mktemp("map-volume"))


@pytest.fixture
def map_client(map_app):
    return map_app.test_client()


def _text(response) -> str:
    return response.get_data(as_text=True)


def _figure_json_part(body: str) -> str:
    """Return the figure call of the map fragment (data + layout + config)."""
    start = body.index("Plotly.newPlot", body.index('id="carte-communes"'))
    return body[start : body.index("</script>", start)]


def _table_cells(body: str) -> list[list[str]]:
    tbody = body[body.index("<tbody>") : body.index("</tbody>")]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", tbody, flags=re.S)
    return [
        [
            html.unescape(c.strip())
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in rows
    ]


# --------------------------------------------------------------------------- page


def test_home_and_map_render_the_map_server_side(map_client):
    for url in ("/", "/map"):
        response = map_client.get(url)
        body = _text(response)
        assert response.status_code == 200
        assert 'id="carte-communes"' in body
        assert 'id="table-communes"' in body
        assert "Haute-Savoie (74)" in body
        assert 'hx-push-url="true"' in body
        assert 'hx-trigger="input changed delay:300ms"' in body


def test_map_region_has_a_summary_label(map_client):
    body = _text(map_client.get("/map?annee=2023"))
    label = re.search(r'<section class="map-region" aria-label="([^"]+)"', body)
    assert label and "communes" in label.group(1) and "en 2023" in label.group(1)


def test_figure_scripts_carry_the_csp_nonce(map_client):
    response = map_client.get("/map?commune=74010")
    body = _text(response)
    policy = response.headers.get("Content-Security-Policy", "")
    nonce = re.search(r"'nonce-([^']+)'", policy)
    if nonce is None:
        pytest.skip("no CSP nonce in this app")
    inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", body)
    assert inline and all(f'nonce="{nonce.group(1)}"' in attrs for attrs in inline)


def test_permalink_renders_the_same_state_as_the_fragments(map_client):
    query = (
        "annee=2022&indicateur=conso_moyenne_mwh&densite_min=50"
        "&tri=nom_commune&ordre=asc"
    )
    fragment = map_client.get(f"/ajax/map?{query}", headers=HX)
    assert fragment.status_code == 200
    pushed = fragment.headers["HX-Push-Url"]
    assert urlsplit(pushed).path == "/map"
    assert dict(parse_qsl(urlsplit(pushed).query)) == dict(parse_qsl(query))

    page = map_client.get(pushed)
    assert page.status_code == 200
    page_body, fragment_body = _text(page), _text(fragment)
    assert _figure_json_part(page_body) == _figure_json_part(fragment_body)
    assert _table_cells(page_body) == _table_cells(fragment_body)
    # The form is filled with the state.
    assert '<option value="2022" selected>' in page_body
    assert 'value="conso_moyenne_mwh" selected' in page_body
    assert 'name="densite_min" type="text"' in page_body and 'value="50"' in page_body


def test_fragments_have_no_layout(map_client):
    for url in (
        "/ajax/map?annee=2023",
        "/ajax/communes/table?annee=2023",
        "/ajax/communes/74010",
        "/ajax/communes/suggest?q=ann",
        "/ajax/map?annee=abc",
    ):
        body = _text(map_client.get(url, headers=HX))
        assert "<html" not in body and "<body" not in body, url
        assert "site-header" not in body, url


def test_map_fragment_swaps_table_and_detail_out_of_band(map_client):
    body = _text(map_client.get("/ajax/map?annee=2023&commune=74010", headers=HX))
    assert '<section id="communes-table" hx-swap-oob="innerHTML">' in body
    assert '<aside id="commune-detail" hx-swap-oob="innerHTML">' in body
    assert 'id="graphique-etiquettes"' in body
    assert "Adresses Enedis" in body


def test_fragment_sizes_stay_small_for_haute_savoie(map_client):
    response = map_client.get(
        "/ajax/map?annee=2023", headers={**HX, "Accept-Encoding": "gzip"}
    )
    raw = gzip.decompress(response.get_data())
    assert len(raw) <= 80 * 1024


def test_heat_mode_renders_a_density_map(map_client):
    body = _text(map_client.get("/ajax/map?mode=chaleur", headers=HX))
    assert '"type":"densitymap"' in body


def test_dpe_metric_is_flagged_unavailable_elsewhere(map_client):
    body = _text(map_client.get("/ajax/map?indicateur=part_passoires", headers=HX))
    assert "Indicateur issu des DPE : disponible seulement" in body


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "slot", "words"),
    [
        ("densite_min=abc", "erreur-densite_min", "Saisissez un nombre"),
        ("altitude_max=1k", "erreur-altitude_max", "Saisissez un nombre"),
        ("annee=2031", "erreur-annee", "Année inconnue"),
        ("altitude_min=1500&altitude_max=200", "erreur-altitude_max", "inférieur"),
        ("commune=Atlantide", "erreur-commune", "Commune inconnue"),
        ("departement=99", "erreur-departement", "Département inconnu"),
        ("indicateur=x", "erreur-indicateur", "Indicateur inconnu"),
        ("mode=x", "erreur-mode", "Mode inconnu"),
        ("tri=x", "erreur-filtres", "tri inconnue"),
        ("page=-1", "erreur-filtres", "page invalide"),
    ],
)
def test_bad_filters_answer_400_next_to_the_control(map_client, query, slot, words):
    for endpoint in ("/ajax/map", "/ajax/communes/table", "/ajax/communes.csv"):
        response = map_client.get(f"{endpoint}?{query}", headers=HX)
        assert response.status_code == 400, endpoint
        assert response.headers["HX-Retarget"] == f"#{slot}"
        assert response.headers["HX-Reswap"] == "innerHTML"
        assert response.headers["HX-Push-Url"] == "false"
        body = _text(response)
        assert words in html.unescape(body.split("<span", 1)[0])
        assert "carte-communes" not in body


def test_bad_filters_fill_every_slot_and_clear_the_others(map_client):
    response = map_client.get("/ajax/map?annee=x&densite_max=y", headers=HX)
    body = html.unescape(_text(response))
    assert response.headers["HX-Retarget"] == "#erreur-annee"
    other = re.search(
        r'<span id="erreur-densite_max" hx-swap-oob="innerHTML">(.*?)</span>', body
    )
    assert other and "Saisissez un nombre" in other.group(1)
    empty = re.search(
        r'<span id="erreur-commune" hx-swap-oob="innerHTML">(.*?)</span>', body
    )
    assert empty and empty.group(1) == ""


def test_successful_fragment_clears_the_error_slots(map_client):
    body = _text(map_client.get("/ajax/map", headers=HX))
    assert '<span id="erreur-annee" hx-swap-oob="innerHTML"></span>' in body


def test_bad_permalink_renders_the_page_with_messages(map_client):
    response = map_client.get("/map?annee=1999&densite_min=beaucoup")
    body = html.unescape(_text(response))
    assert response.status_code == 400
    assert "Année inconnue : 1999" in body
    assert 'value="beaucoup"' in body
    assert 'id="carte-communes"' not in body


def test_unknown_commune_detail_is_a_404_fragment(map_client):
    response = map_client.get("/ajax/communes/00000", headers=HX)
    assert response.status_code == 404
    assert "Commune inconnue" in html.unescape(_text(response))


# --------------------------------------------------------------------------- table


def test_table_is_sorted_server_side_with_count_and_pages(map_client):
    response = map_client.get(
        "/ajax/communes/table?annee=2023&tri=nom_commune&ordre=asc", headers=HX
    )
    body = _text(response)
    cells = _table_cells(body)
    names = [row[1] for row in cells]
    assert len(cells) == maps.PAGE_SIZE
    assert names == sorted(names, key=maps.schema.fold)
    assert "page 1 sur" in body
    assert response.headers["HX-Push-Url"].startswith("/map?annee=2023&tri=nom_commune")
    header = re.search(r'aria-sort="ascending"[^>]*>\s*<a[^>]*data-sort="(\w+)"', body)
    assert header and header.group(1) == "nom_commune"


def test_sort_links_flip_the_order(map_client):
    body = _text(map_client.get("/ajax/communes/table?tri=conso_total_mwh", headers=HX))
    link = re.search(
        r'hx-get="([^"]+)"\s+hx-target="#communes-table"[^>]*\s+data-sort="conso_total_mwh"',
        body,
    )
    assert link and "ordre=asc" in html.unescape(link.group(1))


def test_csv_equals_the_table_rows_of_every_page(map_client):
    query = "annee=2023&tri=nom_commune&ordre=asc"
    response = map_client.get(f"/ajax/communes.csv?{query}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.mimetype == "text/csv"
    payload = response.get_data()
    assert payload.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(payload.decode("utf-8-sig")), delimiter=";"))
    header, rows = lines[0], lines[1:]

    table = []
    page = 1
    while True:
        body = _text(
            map_client.get(f"/ajax/communes/table?{query}&page={page}", headers=HX)
        )
        table += _table_cells(body)
        if "Page suivante" not in body:
            break
        page += 1
    columns = re.findall(r'data-sort="\w+">([^<]+)', body)
    assert header == [c.strip() for c in columns]
    assert len(rows) == len(table)
    for row, cells in zip(rows, table, strict=True):
        assert row[:3] == cells[:3]
        # Same numbers: the CSV has no thousands separator and a bare percent.
        shown = [c.replace("\u202f", "").replace("\u00a0%", "") for c in cells[3:]]
        assert [v or "–" for v in row[3:]] == shown


def test_suggestions_are_datalist_options(map_client):
    body = html.unescape(_text(map_client.get("/ajax/communes/suggest?q=annec")))
    assert '<option value="Annecy (74010)">' in body
    assert _text(map_client.get("/ajax/communes/suggest?q=")).strip() == ""


def test_commune_detail_shows_labels_and_geolocation(map_client):
    body = html.unescape(_text(map_client.get("/ajax/communes/74010?annee=2023")))
    assert "Annecy" in body and "(74010)" in body
    assert 'id="graphique-etiquettes"' in body
    assert "à l'adresse exacte (DPE)" in body


def test_context_page_reports_geolocation_rates(map_client):
    body = html.unescape(_text(map_client.get("/context")))
    assert "Localisation des adresses Enedis" in body
    assert "Adresse exacte (DPE)" in body and "Centre de la commune" in body
