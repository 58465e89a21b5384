"""JSON API of the communes: same filters as the map, pagination, errors."""

from __future__ import annotations

import pytest

from tests.conftest import make_app


@pytest.fixture(scope="module")
def api_client(tmp_path_factory):
    return make_app(tmp_path_factory.mktemp("api-volume")).test_client()


def test_list_is_paginated_and_filtered_like_the_map(api_client):
    response = api_client.get("/api/v1/communes?annee=2023&par_page=5&page=2")
    body = response.get_json()
    assert response.status_code == 200
    assert body["page"] == 2 and body["par_page"] == 5
    assert len(body["resultats"]) == 5
    assert body["pages"] == -(-body["count"] // 5)
    assert body["filtres"]["annee"] == 2023
    assert body["filtres"]["departement"] == ["74"]
    first = body["resultats"][0]
    assert first["annee"] == 2023 and first["code_departement"] == "74"
    totals = [row["conso_total_mwh"] for row in body["resultats"]]
    assert totals == sorted(totals, reverse=True)
    assert set(first) >= {
        "code_insee",
        "nom_commune",
        "nombre_de_logements",
        "conso_moyenne_mwh",
        "part_passoires",
        "etiquette_mediane",
        "latitude",
    }


def test_list_matches_the_table_rows(api_client):
    query = "annee=2022&tri=nom_commune&ordre=asc&densite_min=100"
    api = api_client.get(f"/api/v1/communes?{query}&par_page=1000").get_json()
    csv_lines = (
        api_client.get(f"/ajax/communes.csv?{query}")
        .get_data()
        .decode("utf-8-sig")
        .splitlines()[1:]
    )
    assert [row["code_insee"] for row in api["resultats"]] == [
        line.split(";")[0] for line in csv_lines
    ]
    assert all(row["densite"] >= 100 for row in api["resultats"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("annee=abc", "annee"),
        ("densite_min=x", "densite_min"),
        ("altitude_min=900&altitude_max=100", "altitude_max"),
        ("commune=Atlantide", "commune"),
        ("par_page=0", "par_page"),
        ("par_page=5000", "par_page"),
    ],
)
def test_bad_filters_are_json_errors_naming_the_field(api_client, query, field):
    response = api_client.get(f"/api/v1/communes?{query}")
    body = response.get_json()
    assert response.status_code == 400
    assert body["error"]["code"] == "bad_request"
    assert field in body["error"]["fields"]


def test_one_commune_has_its_years_mean_and_labels(api_client):
    response = api_client.get("/api/v1/communes/74010")
    body = response.get_json()
    assert response.status_code == 200
    assert body["nom_commune"] == "Annecy"
    years = [row["annee"] for row in body["annees"]]
    assert years == sorted(years) and len(years) >= 2
    assert body["moyenne_annuelle"]["annee"] is None
    assert set(body["etiquettes_dpe"]) == set("ABCDEFG")


def test_unknown_commune_is_a_json_404(api_client):
    response = api_client.get("/api/v1/communes/00000")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
