"""Predictions with the session's small trained models (page, API, what-if grid)."""

from __future__ import annotations

import pytest

from tests.test_api_predict import HOME
from webapp import prediction
from webapp import rules


def test_api_with_the_trained_models(models_client):
    label = models_client.get("/api/v1/etiquette_dpe", query_string=HOME)
    consumption = models_client.post("/api/v1/consommation", json=HOME)
    card = models_client.get("/api/v1/model")

    assert label.status_code == consumption.status_code == card.status_code == 200
    body = label.json
    assert body["etiquette_dpe"] in rules.LABELS
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert body["model_version"] == card.json["model_version"]
    low, high = consumption.json["conso_5_usages_par_m2_ep_interval"]
    assert low <= consumption.json["conso_5_usages_par_m2_ep"] <= high


def test_batch_agrees_with_single_predictions(models_client):
    rows = [
        {**HOME, "surface_habitable_logement": 20 + 7 * i, "code_insee": code}
        for i, code in enumerate(["74010", "74056", "74281"] * 15)
    ]
    batch = models_client.post("/api/v1/consommation/batch", json=rows).json

    assert batch["errors"] == 0
    for row, result in zip(rows[:5], batch["results"][:5], strict=True):
        single = models_client.post("/api/v1/consommation", json=row).json
        assert result["conso_5_usages_par_m2_ep"] == pytest.approx(
            single["conso_5_usages_par_m2_ep"], abs=0.1
        )


def test_page_with_the_trained_models(models_client):
    response = models_client.get(
        "/predict",
        query_string={**HOME, "type_energie_principale_chauffage": "Électricité"},
    )

    assert response.status_code == 200
    assert 'id="result-label"' in response.text
    assert 'id="result-factor-2026"' in response.text
    assert response.text.count('data-key="') == len(prediction.SCENARIOS)


def test_whatif_grid_report_with_the_trained_models(models_app):
    with models_app.app_context():
        predictor = prediction.current_predictor()
        rows = prediction.whatif_grid(communes=("74010", "74056"))
        report = prediction.whatif_grid_report(predictor, rows)

        # Recount one scenario by hand.
        currents = predictor.predict_batch(rows)
        changed = [
            {
                **row,
                "type_generateur_chauffage": "pompe à chaleur",
                "type_energie_principale_chauffage": "Électricité",
            }
            for row in rows
        ]
        after = predictor.predict_batch(changed)

    worse = sum(
        rules.LABELS.index(new["etiquette_dpe"])
        > rules.LABELS.index(old["etiquette_dpe"])
        for old, new in zip(currents, after, strict=True)
    )
    assert report["homes"] == len(rows)
    assert report["scenarios"]["pompe_a_chaleur"]["worse_label"] == worse
    assert report["worse_label_total"] == sum(
        c["worse_label"] for c in report["scenarios"].values()
    )
    for counts in report["scenarios"].values():
        assert counts["cases"] == len(rows)
        assert (
            counts["better_label"] + counts["same_label"] + counts["worse_label"]
            == counts["cases"]
        )
