"""Statistics filters, KPI and the /stats page and fragments."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
from werkzeug.datastructures import MultiDict

from tests.test_figures import make_dpe
from webapp import stats

CHOICES = stats.Choices(
    communes={"74010": "Annecy", "74056": "Chamonix-Mont-Blanc"},
    types_batiment=("appartement", "maison"),
    periodes=stats.PERIODES[:4],
    energies=("Électricité", "Gaz naturel"),
    sources=("existant", "neuf"),
    date_min=date(2024, 1, 1),
    date_max=date(2026, 6, 30),
)


# --------------------------------------------------------------------------- parsing


def test_parse_filters_defaults():
    filters = stats.parse_filters(MultiDict(), CHOICES)

    assert filters == stats.StatsFilters()
    assert filters.surface == 70 and filters.prix_kwh == stats.DEFAULT_PRICE_EUR_KWH
    assert filters.query() == []


def test_parse_filters_values_and_permalink_round_trip():
    args = MultiDict(
        [
            ("commune", "74010"),
            ("commune", "74056"),
            ("commune", "74010"),
            ("type_batiment", "maison"),
            ("source", "neuf"),
            ("date_debut", "2024-03-01"),
            ("date_fin", "2025-02-28"),
            ("surface", "85,5"),
            ("q", "ignored search text"),
        ]
    )

    filters = stats.parse_filters(args, CHOICES)

    assert filters.communes == ("74010", "74056")
    assert filters.type_batiment == "maison"
    assert filters.date_debut == date(2024, 3, 1)
    assert filters.surface == 85.5
    again = stats.parse_filters(MultiDict(filters.query()), CHOICES)
    assert again == filters


@pytest.mark.parametrize(
    ("args", "field", "fragment"),
    [
        ({"commune": "75056"}, "commune", "Commune inconnue"),
        ({"type_batiment": "château"}, "type_batiment", "Valeurs possibles"),
        ({"periode_construction": "1900"}, "periode_construction", "inconnu"),
        (
            {"type_energie_principale_chauffage": "Charbon"},
            "type_energie_principale_chauffage",
            "Électricité",
        ),
        ({"source": "ancien"}, "source", "existant, neuf"),
        ({"date_debut": "2025-13-01"}, "date_debut", "AAAA-MM-JJ"),
        ({"date_debut": "2025-06-01", "date_fin": "2025-01-01"}, "date_fin", "suivre"),
        ({"surface": "abc"}, "surface", "entre 10 et 500"),
        ({"surface": "5"}, "surface", "m²"),
        ({"prix_kwh": "nan"}, "prix_kwh", "€/kWh"),
    ],
    ids=[
        "commune",
        "type",
        "periode",
        "energie",
        "source",
        "date",
        "date-order",
        "surface-text",
        "surface-range",
        "price-nan",
    ],
)
def test_parse_filters_rejects_bad_values_in_french(args, field, fragment):
    with pytest.raises(stats.FilterError) as caught:
        stats.parse_filters(MultiDict(args), CHOICES)

    assert field in caught.value.fields
    assert fragment in caught.value.fields[field]


def test_choices_from_data():
    frame = make_dpe(50)
    communes = pd.DataFrame(
        {"code_insee": ["74056", "74010"], "nom_standard": ["Chamonix", "Annecy"]}
    )

    choices = stats.choices_from(frame, communes)

    assert list(choices.communes) == ["74010", "74056"]
    assert choices.periodes == tuple(
        p for p in stats.PERIODES if p in set(frame["periode_construction"])
    )
    assert choices.date_min == frame["date_etablissement_dpe"].min().date()


# --------------------------------------------------------------------------- filtering


def test_apply_filters_each_field():
    frame = make_dpe(400, seed=9)
    filters = stats.StatsFilters(
        communes=("74056",),
        type_batiment="maison",
        type_energie_principale_chauffage="Électricité",
        source="existant",
        date_debut=date(2024, 6, 1),
        date_fin=date(2025, 5, 31),
    )

    selected = stats.apply_filters(frame, filters)

    expected = frame[
        (frame["code_insee_ban"] == "74056")
        & (frame["type_batiment"] == "maison")
        & (frame["type_energie_principale_chauffage"] == "Électricité")
        & (frame["source"] == "existant")
        & (frame["date_etablissement_dpe"] >= "2024-06-01")
        & (frame["date_etablissement_dpe"] < "2025-06-01")
    ]
    assert 0 < len(selected) < len(frame)
    assert selected["numero_dpe"].tolist() == expected["numero_dpe"].tolist()


def test_filter_cache_returns_the_same_frame_and_tracks_the_source():
    cache = stats.FilterCache(size=2)
    frame = make_dpe(100)
    filters = stats.StatsFilters(type_batiment="maison")

    first = cache.get(frame, filters)
    second = cache.get(frame, filters)
    other = cache.get(frame.copy(), filters)

    assert first is second
    assert other is not first and other.equals(first)


def test_kpis():
    frame = make_dpe(4)
    frame["etiquette_dpe"] = ["A", "F", "G", "C"]
    frame["conso_5_usages_par_m2_ep"] = [100.0, 200.0, 300.0, 400.0]
    frame["surface_habitable_logement"] = [10.0, 20.0, 30.0, 1000.0]

    kpis = stats.kpis(frame)

    assert kpis.nombre_dpe == 4
    assert kpis.part_passoires == 0.5
    assert kpis.mediane_conso == 250.0
    assert kpis.mediane_surface == 25.0


def test_kpis_of_nothing():
    kpis = stats.kpis(make_dpe(3).iloc[0:0])

    assert kpis.nombre_dpe == 0
    assert pd.isna(kpis.part_passoires) and pd.isna(kpis.mediane_conso)


# --------------------------------------------------------------------------- views


def test_stats_page_renders_filters_and_lazy_slots(client):
    response = client.get("/stats")

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'aria-current="page">Statistiques' in body
    assert 'id="stats-filters"' in body and "hx-push-url" not in body
    for name in stats.FIGURES:
        assert f'id="slot-{name}"' in body
        assert f'hx-get="/ajax/stats/{name}"' in body
    assert body.count('hx-trigger="revealed"') == 6
    assert body.count('hx-trigger="load"') == 2
    assert "css/stats.css" in body


def test_stats_page_permalink_is_rendered_server_side(client):
    response = client.get("/stats?type_batiment=maison&surface=90")

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<option value="maison" selected>' in body
    assert 'value="90.0"' in body
    assert 'hx-get="/ajax/stats/bands?type_batiment=maison&amp;surface=90"' in body
    assert 'href="/stats?type_batiment=maison&amp;surface=90"' in body


def test_stats_page_bad_filter_is_a_400_page(client):
    response = client.get("/stats?source=ancien")

    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<html" in body and "Type de DPE inconnu" in body
    assert 'id="slot-altitude"' not in body


@pytest.mark.parametrize("name", list(stats.FIGURES))
def test_figure_fragment_has_figure_insight_table_and_csv(client, htmx_headers, name):
    response = client.get(f"/ajax/stats/{name}", headers=htmx_headers)

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and "<nav" not in body
    assert f'id="fig-{name}"' in body
    assert 'class="insight"' in body
    assert "<summary>Voir les données</summary>" in body
    assert f'href="/ajax/stats/{name}.csv"' in body


@pytest.mark.parametrize("name", list(stats.FIGURES))
def test_csv_equals_the_figure_data(app, client, name):
    query = "type_batiment=appartement"

    response = client.get(f"/ajax/stats/{name}.csv?{query}")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    downloaded = pd.read_csv(io.StringIO(response.get_data(as_text=True)))
    with app.test_request_context(f"/?{query}"):
        from flask import request

        store = app.extensions["store"]
        filters = stats.parse_filters(request.args, store.aggregates["stats_choices"])
        frame = stats.filtered(store.dpe, filters)
        context = stats.Context(
            filters=filters, enedis=store.aggregates["stats_enedis_per_dwelling"]
        )
        expected = stats.figure_result(name, frame, context).table
    assert list(downloaded.columns) == list(expected.columns)
    assert len(downloaded) == len(expected) > 0
    pd.testing.assert_frame_equal(
        downloaded,
        pd.read_csv(io.StringIO(expected.to_csv(index=False))),
        check_dtype=False,
    )


def test_filters_change_the_fragment(client, htmx_headers):
    everything = client.get("/ajax/stats/kpis", headers=htmx_headers)
    houses = client.get("/ajax/stats/kpis?type_batiment=maison", headers=htmx_headers)

    assert everything.status_code == houses.status_code == 200
    assert everything.get_data() != houses.get_data()
    assert houses.headers["HX-Push-Url"] == "/stats?type_batiment=maison"
    body = houses.get_data(as_text=True)
    assert body.count('hx-swap-oob="true"') == len(stats.FIGURES) + 3
    assert 'hx-get="/ajax/stats/timeline?type_batiment=maison"' in body
    assert "<html" not in body


@pytest.mark.parametrize(
    "path", ["/ajax/stats/kpis", "/ajax/stats/bands", "/ajax/stats/bands.csv"]
)
def test_bad_filters_give_a_400_fragment(client, htmx_headers, path):
    response = client.get(f"{path}?date_debut=hier", headers=htmx_headers)

    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<html" not in body
    assert 'class="fragment-error"' in body and "Date de début invalide" in body


def test_unknown_figure_is_a_404_fragment(client, htmx_headers):
    response = client.get("/ajax/stats/nope", headers=htmx_headers)

    assert response.status_code == 404
    assert "<html" not in response.get_data(as_text=True)


def test_empty_selection_says_so(client, htmx_headers):
    query = "date_debut=2021-07-01&date_fin=2021-07-01&source=neuf&type_batiment=maison"

    kpis = client.get(f"/ajax/stats/kpis?{query}", headers=htmx_headers)
    figure = client.get(f"/ajax/stats/bands?{query}", headers=htmx_headers)

    assert "Aucun DPE ne correspond à ces filtres" in kpis.get_data(as_text=True)
    body = figure.get_data(as_text=True)
    assert "Aucun DPE ne correspond à ces filtres" in body
    assert "fig-bands" not in body


def test_commune_search(client, htmx_headers):
    response = client.get(
        "/ajax/stats/communes?q=anne&commune=74012", headers=htmx_headers
    )

    body = response.get_data(as_text=True)
    assert 'value="74010"' in body
    assert 'value="74012"' not in body
    assert "<html" not in body


def test_insights_follow_the_data(client, htmx_headers):
    high = client.get("/ajax/stats/bands", headers=htmx_headers)
    valley_only = client.get("/ajax/stats/altitude?commune=74010", headers=htmx_headers)

    assert "entre 0 et 600" in high.get_data(as_text=True)
    assert "Pas assez de variation" in valley_only.get_data(as_text=True)
