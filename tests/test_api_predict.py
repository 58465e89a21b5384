"""The prediction API: single and batch endpoints, model card, every error code."""

from __future__ import annotations

import io
import json

import pytest

from tests.conftest import make_app
from tests.test_prediction import FakePredictor
from tests.test_prediction import FakeRegistry

#: A valid home as typed JSON.
HOME = {
    "surface_habitable_logement": 72,
    "annee_construction": 1968,
    "type_batiment": "appartement",
    "type_energie_principale_chauffage": "Gaz naturel",
    "type_installation_chauffage": "individuel",
    "qualite_isolation_enveloppe": "insuffisante",
    "code_insee": "74010",
}
SINGLE = ("/api/v1/etiquette_dpe", "/api/v1/consommation")


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("volume"))
    app.extensions["models"] = FakeRegistry(FakePredictor())
    return app


@pytest.fixture
def api(api_app):
    return api_app.test_client()


@pytest.fixture
def bare(client, app):
    """A client of an app without any model."""
    app.extensions.pop("models", None)
    return client


def test_label_by_query_string(api):
    response = api.get("/api/v1/etiquette_dpe", query_string=HOME)

    assert response.status_code == 200
    body = response.json
    assert body["etiquette_dpe"] == "E"
    assert set(body["probabilities"]) == set("ABCDEFG")
    assert body["passoire"] is False
    assert body["passoire_probability"] == pytest.approx(0.04)
    assert body["model_version"] == "fake-1"
    assert body["location"]["nom_commune"] == "Annecy"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_consumption_by_query_string(api):
    body = api.get("/api/v1/consommation", query_string=HOME).json

    # Gas 210 kWh/m²/an × 1.3 (poor insulation) on 72 m².
    assert body["conso_5_usages_par_m2_ep"] == pytest.approx(273.0)
    assert body["conso_5_usages_ep"] == pytest.approx(273.0 * 72)
    assert body["conso_5_usages_par_m2_ep_interval"] == pytest.approx([218.4, 327.6])
    assert body["cout_total_5_usages"] == pytest.approx(273.0 * 72 * 0.12)
    assert body["interval_level"] == 0.8


@pytest.mark.parametrize("path", SINGLE)
def test_query_json_and_form_inputs_agree(api, path):
    by_query = api.get(path, query_string=HOME).json
    by_json = api.post(path, json=HOME).json
    by_form = api.post(path, data={k: str(v) for k, v in HOME.items()}).json
    by_query_post = api.post(path, query_string=HOME).json

    assert by_query == by_json == by_form == by_query_post


def test_alias_answers_like_consommation(api):
    alias = api.get("/api/v1/consommation_chauffage", query_string=HOME)
    post = api.post("/api/v1/consommation_chauffage", json=HOME)

    assert alias.status_code == post.status_code == 200
    assert (
        alias.json
        == post.json
        == api.get("/api/v1/consommation", query_string=HOME).json
    )


@pytest.mark.parametrize(
    "location",
    [
        {"code_postal": "74000"},
        {"latitude": 45.9, "longitude": 6.12},
        {"zone_climatique": "H1c", "altitude": 450},
    ],
    ids=["postal", "coordinates", "explicit"],
)
def test_every_location_form_is_accepted(api, location):
    inputs = {k: v for k, v in HOME.items() if k != "code_insee"}
    response = api.post("/api/v1/etiquette_dpe", json={**inputs, **location})

    assert response.status_code == 200, response.json
    assert response.json["location"]["zone_climatique"] == "H1c"


def test_400_names_each_bad_field_with_allowed_values(api):
    bad = {
        **HOME,
        "surface_habitable_logement": 2,
        "type_batiment": "château",
        "code_insee": "75056",
    }
    del bad["type_energie_principale_chauffage"]
    response = api.post("/api/v1/etiquette_dpe", json=bad)

    assert response.status_code == 400
    error = response.json["error"]
    assert error["code"] == "bad_request"
    fields = error["fields"]
    assert set(fields) == {
        "surface_habitable_logement",
        "type_batiment",
        "type_energie_principale_chauffage",
        "code_insee",
    }
    assert "entre 5 et 1 000" in fields["surface_habitable_logement"]
    assert "maison, appartement" in fields["type_batiment"]
    assert "obligatoire" in fields["type_energie_principale_chauffage"]
    for name in fields:
        assert name in error["message"]


def test_400_includes_the_model_own_messages(api):
    response = api.get(
        "/api/v1/etiquette_dpe",
        query_string={**HOME, "surface_habitable_logement": 999},
    )

    assert response.status_code == 400
    assert response.json["error"]["fields"] == {
        "surface_habitable_logement": "refusée (test)"
    }


@pytest.mark.parametrize(
    ("data", "expected"),
    [("{not json", "JSON valide"), ("[1, 2]", "objet")],
    ids=["invalid", "not-an-object"],
)
def test_400_for_unusable_json(api, data, expected):
    response = api.post(
        "/api/v1/etiquette_dpe", data=data, content_type="application/json"
    )

    assert response.status_code == 400
    assert expected in response.json["error"]["message"]


def test_415_for_other_content_types(api):
    response = api.post(
        "/api/v1/consommation", data="surface=72", content_type="text/plain"
    )

    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"
    assert "application/json" in response.json["error"]["message"]


def test_413_for_a_body_over_64_kb_is_json(api):
    body = json.dumps({**HOME, "padding": "x" * (65 * 1024)})
    response = api.post(
        "/api/v1/etiquette_dpe", data=body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_405_and_404_are_json(api):
    wrong_method = api.delete("/api/v1/etiquette_dpe")
    batch_get = api.get("/api/v1/etiquette_dpe/batch")
    missing = api.get("/api/v1/nope")

    assert wrong_method.status_code == batch_get.status_code == 405
    assert wrong_method.json["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong_method.headers["Allow"]
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"


def test_500_is_json_without_a_trace(api_app):
    class Broken(FakePredictor):
        def predict(self, inputs):
            raise RuntimeError("secret internal detail")

    previous = api_app.extensions["models"]
    api_app.extensions["models"] = FakeRegistry(Broken())
    try:
        response = api_app.test_client().get("/api/v1/etiquette_dpe", query_string=HOME)
    finally:
        api_app.extensions["models"] = previous

    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/etiquette_dpe"),
        ("get", "/api/v1/consommation"),
        ("post", "/api/v1/consommation/batch"),
        ("get", "/api/v1/model"),
    ],
)
def test_503_without_model(bare, method, path):
    kwargs = {"json": [HOME]} if method == "post" else {"query_string": HOME}
    response = getattr(bare, method)(path, **kwargs)

    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
    assert "modèle" in response.json["error"]["message"]


def test_bad_inputs_get_400_even_without_model(bare):
    response = bare.get("/api/v1/etiquette_dpe", query_string={"type_batiment": "x"})

    assert response.status_code == 400
    assert "type_batiment" in response.json["error"]["fields"]


def test_cors_is_open_for_reads_only(api):
    preflight = api.options("/api/v1/etiquette_dpe")
    post = api.post("/api/v1/etiquette_dpe", json=HOME)
    health = api.get("/api/v1/health")

    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert health.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in post.headers


def test_model_card_is_503_while_the_registry_has_no_model(api_app):
    previous = api_app.extensions["models"]
    api_app.extensions["models"] = FakeRegistry(None)
    try:
        response = api_app.test_client().get("/api/v1/model")
    finally:
        api_app.extensions["models"] = previous

    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"


def test_model_card(api):
    response = api.get("/api/v1/model")

    assert response.status_code == 200
    assert response.json["version"] == "fake-1"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


# --------------------------------------------------------------------------- batch


def test_batch_keeps_order_and_reports_errors_per_row(api):
    rows = [
        HOME,
        {**HOME, "surface_habitable_logement": "abc"},
        {**HOME, "type_energie_principale_chauffage": "Électricité"},
        "not an object",
        {**HOME, "surface_habitable_logement": 999},
    ]
    response = api.post("/api/v1/etiquette_dpe/batch", json=rows)

    assert response.status_code == 200
    body = response.json
    assert body["count"] == 5 and body["errors"] == 3
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["ok"] for r in results] == [True, False, True, False, False]
    single = api.post("/api/v1/etiquette_dpe", json=HOME).json
    del single["inputs"]
    assert results[0] == {"index": 0, "ok": True, **single}
    assert "surface_habitable_logement" in results[1]["error"]["fields"]
    assert results[4]["error"]["fields"] == {
        "surface_habitable_logement": "refusée (test)"
    }


def test_batch_accepts_a_rows_object(api):
    response = api.post("/api/v1/consommation/batch", json={"rows": [HOME, HOME]})

    assert response.status_code == 200
    assert response.json["errors"] == 0
    assert response.json["results"][1]["conso_5_usages_par_m2_ep"] == 273.0


def _csv(rows: list[dict], sep: str = ",") -> str:
    header = list(rows[0])
    lines = [sep.join(header)] + [
        sep.join(str(row.get(k, "")) for k in header) for row in rows
    ]
    return "\n".join(lines) + "\n"


def test_batch_csv_body_and_upload_agree_with_json(api):
    rows = [HOME, {**HOME, "code_insee": "75056"}]
    by_json = api.post("/api/v1/consommation/batch", json=rows).json
    by_csv = api.post(
        "/api/v1/consommation/batch",
        data=_csv(rows, ";"),
        content_type="text/csv",
    ).json
    by_upload = api.post(
        "/api/v1/consommation/batch",
        data={"file": (io.BytesIO(_csv(rows).encode()), "logements.csv")},
        content_type="multipart/form-data",
    ).json

    assert by_json == by_csv == by_upload
    assert by_json["results"][1]["error"]["fields"]["code_insee"]


def test_batch_of_1000_rows_over_64_kb_is_accepted(api):
    rows = [{**HOME, "surface_habitable_logement": 20 + i % 300} for i in range(1000)]
    payload = json.dumps(rows)
    assert len(payload) > 64 * 1024

    response = api.post(
        "/api/v1/etiquette_dpe/batch", data=payload, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json["count"] == 1000 and response.json["errors"] == 0


@pytest.mark.parametrize(
    ("kwargs", "status", "expected"),
    [
        ({"json": [HOME] * 1001}, 400, "1000 au plus"),
        ({"json": []}, 400, "vide"),
        ({"json": {"a": 1}}, 400, "liste"),
        ({"data": "x", "content_type": "text/plain"}, 415, "text/csv"),
        (
            {"data": {"other": "x"}, "content_type": "multipart/form-data"},
            400,
            "file",
        ),
    ],
    ids=["too-many", "empty", "not-a-list", "content-type", "no-file"],
)
def test_batch_errors(api, kwargs, status, expected):
    response = api.post("/api/v1/etiquette_dpe/batch", **kwargs)

    assert response.status_code == status
    assert expected in response.json["error"]["message"]


def test_batch_body_over_the_batch_limit_is_413(api):
    payload = json.dumps([{**HOME, "pad": "x" * 2000}] * 600)
    response = api.post(
        "/api/v1/etiquette_dpe/batch", data=payload, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"
