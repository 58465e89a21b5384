"""The /predict page, its fragments, the API documentation page and playground."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from tests.conftest import make_app
from tests.test_prediction import HOME
from tests.test_prediction import FakePredictor
from tests.test_prediction import FakeRegistry
from webapp import location as loc


@pytest.fixture(scope="module")
def page_app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("volume"))
    app.extensions["models"] = FakeRegistry(FakePredictor())
    return app


@pytest.fixture
def web(page_app):
    return page_app.test_client()


@pytest.fixture
def hx():
    return {"HX-Request": "true"}


def test_empty_form_page(web):
    response = web.get("/predict")

    assert response.status_code == 200
    html = response.text
    assert 'id="predict-form"' in html
    assert 'hx-get="/ajax/predict"' in html
    assert 'method="get"' in html
    assert "css/predict.css" in html
    assert 'href="/predict" aria-current="page"' in html
    for name in ("surface_habitable_logement", "code_insee", "adresse"):
        assert f'name="{name}"' in html
    assert "/ajax/predict/validate/surface_habitable_logement" in html
    assert "Annecy (74000)" in html


def test_submitted_page_shows_result_and_whatifs(web):
    response = web.get("/predict", query_string=HOME)

    assert response.status_code == 200
    html = response.text
    assert 'data-label="E"' in html
    assert "273&nbsp;kWh/m²/an" in html
    assert "Pour atteindre la classe\n      D" in html or "classe\n      D" in html
    assert "1er janvier 2034" in html
    assert "Isolation portée à « bonne »" in html
    assert 'data-key="combinaison"' in html
    # The values stay in the form (a permalink re-renders them).
    assert 'value="72"' in html
    assert '<option value="74010" selected>' in html


def test_permalink_round_trip(web, hx):
    fragment = web.get("/ajax/predict", query_string=HOME, headers=hx)
    link = fragment.headers["HX-Push-Url"]
    page = web.get(link)

    assert fragment.status_code == page.status_code == 200
    assert "<html" not in fragment.text and "<html" in page.text
    assert urlsplit(link).path == "/predict"
    assert {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()} == HOME
    assert 'data-label="E"' in fragment.text and 'data-label="E"' in page.text
    assert f'href="{link.replace("&", "&amp;")}"' in page.text


def test_invalid_submit_is_a_422_fragment_with_messages_beside_fields(web, hx):
    bad = {**HOME, "surface_habitable_logement": "2", "type_batiment": ""}
    response = web.get("/ajax/predict", query_string=bad, headers=hx)

    assert response.status_code == 422
    html = response.text
    assert "<html" not in html
    assert (
        '<span class="field-error" id="surface_habitable_logement-error" '
        'aria-live="polite">La surface doit être comprise entre 5 et 1 000 m².</span>'
    ) in html
    assert (
        'id="type_batiment-error" aria-live="polite">Ce champ est obligatoire.</span>'
    ) in html
    assert 'aria-invalid="true"' in html
    assert "corrigez les 2 champs" in html
    assert "HX-Push-Url" not in response.headers


def test_invalid_full_page_is_422(web):
    response = web.get("/predict", query_string={**HOME, "annee_construction": "1200"})

    assert response.status_code == 422
    assert "année doit être comprise entre 1600" in response.text


def test_no_model_answers_503_fragment_in_french(page_app, hx):
    previous = page_app.extensions.pop("models")
    try:
        client = page_app.test_client()
        fragment = client.get("/ajax/predict", query_string=HOME, headers=hx)
        page = client.get("/predict", query_string=HOME)
        empty = client.get("/predict")
    finally:
        page_app.extensions["models"] = previous

    assert fragment.status_code == page.status_code == 503
    assert "Service indisponible" in fragment.text
    assert "aucun modèle de prédiction" in fragment.text
    assert empty.status_code == 200


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("surface_habitable_logement", "3", "entre 5 et 1 000 m²"),
        ("surface_habitable_logement", "72,5", ""),
        ("annee_construction", "3000", "entre 1600 et"),
        ("type_batiment", "", "Ce champ est obligatoire."),
        ("type_energie_principale_chauffage", "charbon", "valeurs possibles"),
        ("code_insee", "12345", "Haute-Savoie"),
        ("altitude", "-5", "entre 0 et 4 810"),
        ("logement_traversant", "", ""),
    ],
)
def test_inline_validation_of_one_field(web, hx, field, value, expected):
    response = web.get(
        f"/ajax/predict/validate/{field}", query_string={field: value}, headers=hx
    )

    assert response.status_code == 200
    assert f'id="{field}-error"' in response.text
    message = response.text.split(">", 1)[1].rsplit("<", 1)[0]
    assert message == expected if not expected else expected in message


def test_inline_validation_of_an_unknown_field_is_404(web, hx):
    response = web.get("/ajax/predict/validate/nope?nope=1", headers=hx)

    assert response.status_code == 404
    assert 'class="fragment-error"' in response.text


def test_address_suggestions_fragment(web, hx):
    response = web.get("/ajax/address/suggest?q=annecy", headers=hx)

    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.count('class="suggestion-item"') >= 2
    assert "/ajax/address/pick?adresse=" in response.text
    nothing = web.get("/ajax/address/suggest?q=zzzzqq", headers=hx)
    assert "Aucune adresse ni commune trouvée" in nothing.text


def test_picking_an_address_fills_the_location_and_lists_known_dpe(page_app, web, hx):
    with page_app.app_context():
        index = loc.get_index()
        address = index.addresses.sort_values("dpe_count").iloc[-1]
        place = loc.resolve({"code_insee": address["code_insee_ban"]}, index)

    response = web.get(
        "/ajax/address/pick",
        query_string={
            "adresse": address["adresse_ban"],
            "code_insee": address["code_insee_ban"],
        },
        headers=hx,
    )

    html = response.text
    assert response.status_code == 200
    assert html.lstrip().startswith("<fieldset") or 'id="predict-location"' in html
    assert f'<option value="{place.code_insee}" selected>' in html
    assert f'<option value="{place.zone_climatique}" selected>' in html
    assert f'<option value="{place.classe_altitude}" selected>' in html
    assert f'value="{int(place.altitude)}"' in html
    assert "à cette adresse" in html
    assert "Je connais mon DPE" in html


def test_prefill_from_a_known_dpe(page_app, web, hx):
    with page_app.app_context():
        dpe = page_app.extensions["store"].dpe
        row = dpe[dpe["type_batiment"].isin(["maison", "appartement"])].iloc[0]

    response = web.get(f"/ajax/predict/prefill/{row['numero_dpe']}", headers=hx)

    html = response.text
    assert response.status_code == 200
    assert f"DPE n° {row['numero_dpe']}" in html
    assert f'<option value="{row["type_batiment"]}" selected>' in html
    assert f'<option value="{row["code_insee_ban"]}" selected>' in html
    assert 'data-label="' not in html
    missing = web.get("/ajax/predict/prefill/NOPE", headers=hx)
    assert missing.status_code == 404


def test_api_docs_page_lists_every_operation_with_examples(web):
    spec = web.get("/api/v1/openapi.json").json
    response = web.get("/api-documentation")

    html = response.text
    assert response.status_code == 200
    assert 'href="/api-documentation" aria-current="page"' in html
    for path, item in spec["paths"].items():
        for method in item:
            assert f"{method.upper()}</span>{path}" in html
    assert html.count("Exemple curl") == sum(len(i) for i in spec["paths"].values())
    assert "import requests" in html and "library(httr2)" in html
    assert "req_body_json(" in html and "requests.post(" in html
    assert 'hx-post="/ajax/api-playground"' in html
    assert "<script" not in html.split("</head>")[1]


def test_playground_calls_the_api_and_shows_status_and_json(web, hx):
    get = web.post(
        "/ajax/api-playground",
        data={
            "method": "GET",
            "path": "/api/v1/etiquette_dpe",
            "query": "surface_habitable_logement=72&type_batiment=maison"
            "&type_energie_principale_chauffage=GPL&annee_construction=1990"
            "&type_installation_chauffage=individuel&code_insee=74010",
        },
        headers=hx,
    )
    post = web.post(
        "/ajax/api-playground",
        data={"method": "POST", "path": "/api/v1/consommation", "body": "{}"},
        headers=hx,
    )

    assert get.status_code == post.status_code == 200
    assert 'data-status="200"' in get.text
    assert "&#34;etiquette_dpe&#34;:" in get.text
    assert 'data-status="400"' in post.text
    assert "surface_habitable_logement" in post.text


def test_playground_refuses_other_paths(web, hx):
    response = web.post(
        "/ajax/api-playground", data={"method": "GET", "path": "/admin"}, headers=hx
    )

    assert response.status_code == 400
    assert 'class="fragment-error"' in response.text
