"""Models: features without leakage, time split, training, persistence, inference."""

from __future__ import annotations

import json
import shutil
import threading
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ml import features as F
from ml import metrics as M
from ml import registry
from ml.predict import InputError
from ml.train import FAST_CONFIG
from ml.train import serving_rows
from ml.train import time_split
from ml.train import train
from webapp import rules

EXPECTED_FEATURES = (
    "type_batiment",
    "periode_construction",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage",
    "type_installation_chauffage",
    "qualite_isolation_enveloppe",
    "zone_climatique",
    "classe_altitude",
    "surface_habitable_logement",
    "annee_construction",
    "logement_traversant",
    "protection_solaire_exterieure",
    "altitude",
    "densite",
)

HOUSE = {
    "surface_habitable_logement": 110,
    "annee_construction": 1972,
    "type_batiment": "maison",
    "type_energie_principale_chauffage": "Fioul domestique",
    "type_generateur_chauffage": "chaudière",
    "type_installation_chauffage": "individuel",
    "qualite_isolation_enveloppe": "insuffisante",
    "logement_traversant": True,
    "protection_solaire_exterieure": False,
    "code_insee": "74010",
}


@pytest.fixture(scope="module")
def predictor(ml_training):
    """The predictor of the session's small models."""
    return ml_training.predictor


# --------------------------------------------------------------------------- features


def test_feature_list_is_exact_and_free_of_dpe_outputs(ml_training):
    assert F.FEATURES == EXPECTED_FEATURES
    assert not [name for name in F.FEATURES if F.is_leaky(name)]
    assert ml_training.metadata["features"]["order"] == list(EXPECTED_FEATURES)
    prepare = ml_training.models["classifier"].named_steps["prepare"]
    assert list(prepare.feature_names_in_) == list(EXPECTED_FEATURES)


def test_frame_features_drops_every_dpe_output(app):
    dpe = app.extensions["store"].dpe.head(50)
    leaky = [c for c in dpe.columns if F.is_leaky(c)]

    features = F.frame_features(dpe)

    assert {"conso_5_usages_par_m2_ep", "etiquette_ges", "cout_total_5_usages"} <= set(
        leaky
    )
    assert tuple(features.columns) == EXPECTED_FEATURES


@pytest.mark.parametrize(
    ("label", "family"),
    [
        ("PAC air/eau", "pompe à chaleur"),
        ("Pompe à chaleur géothermique", "pompe à chaleur"),
        ("Chaudière gaz à condensation 2001-2015", "chaudière"),
        ("Réseau de chaleur isolé", "réseau de chaleur"),
        ("Convecteur électrique NFC, NF** et NF***", "effet joule"),
        ("Panneau rayonnant électrique NFC, NF** et NF***", "effet joule"),
        ("Radiateur électrique à accumulation", "effet joule"),
        ("Poêle à granulés", "poêle ou insert"),
        ("Insert bois", "poêle ou insert"),
        ("Radiateur gaz à ventouse", "autre"),
        (None, None),
    ],
)
def test_generator_family(label, family):
    assert F.generator_family(label) == family


def test_harmonised_targets_apply_the_2026_electricity_factor():
    dpe = pd.DataFrame(
        {
            "conso_5_usages_par_m2_ep": [340.0, 340.0],
            "conso_5_usages_par_m2_ef": [147.8, 147.8],
            "emission_ges_5_usages_par_m2": [12.0, 12.0],
            "date_etablissement_dpe": pd.to_datetime(["2025-03-01", "2025-03-01"]),
            "etiquette_dpe": ["F", "B"],
            "surface_habitable_logement": [60.0, 60.0],
            "zone_climatique": ["H1c", "H1c"],
            "classe_altitude": ["400-800m", "400-800m"],
        }
    )

    targets = F.harmonised_targets(dpe)

    expected_ep = rules.project_ep_2026(340.0, 147.8)
    assert targets["conso_5_usages_par_m2_ep"].iloc[0] == pytest.approx(expected_ep)
    # The first row follows the rules: restated; the second does not: kept.
    assert targets["etiquette_dpe"].iloc[0] == rules.etiquette_dpe(
        expected_ep, 12.0, surface=60.0, zone_climatique="H1c"
    )
    assert targets["etiquette_dpe"].iloc[1] == "B"
    assert targets["consistent"].tolist() == [True, False]


# --------------------------------------------------------------------------- training


def test_time_split_holds_out_the_most_recent_months():
    dates = pd.Series(pd.date_range("2022-01-01", "2026-10-31", freq="7D"))

    test = time_split(dates, months=6)

    assert dates[test].min() >= pd.Timestamp("2026-05-01")
    assert dates[~test].max() < dates[test].min()
    assert 0.05 < test.mean() < 0.2


def test_time_split_falls_back_when_recent_months_are_too_few():
    dates = pd.Series(
        list(pd.date_range("2022-01-01", "2025-12-31", freq="D"))
        + [pd.Timestamp("2026-10-31")]
    )

    test = time_split(dates, months=1)

    assert 0.1 < test.mean() < 0.2
    assert dates[~test].max() < dates[test].min()


def test_training_is_deterministic_with_a_fixed_seed(app):
    store = app.extensions["store"]
    config = replace(
        FAST_CONFIG,
        max_rows=1200,
        max_iter=12,
        compare=False,
        cv_folds=0,
        latency_calls=2,
    )
    source = dict(store.sources["dpe"])

    first = train(store.dpe, store.communes, source, config)
    second = train(store.dpe, store.communes, source, config)

    rows = serving_rows(F.frame_features(store.dpe.head(40)), 40)
    a = first.predictor.predict_batch(rows)
    b = second.predictor.predict_batch(rows)
    keys = ("probabilities", "conso_5_usages_par_m2_ep_interval", "passoire")
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]
    assert first.metadata["metrics"] == second.metadata["metrics"]


def test_report_compares_served_models_with_both_baselines(ml_training):
    report = ml_training.report
    tests = report["classification"]["test"]

    assert {
        "hgb_calibre",
        "baseline_classe_majoritaire",
        "baseline_foret_aleatoire",
    } <= (set(tests))
    assert "baseline_foret_aleatoire" in report["regression"]["conso_ep"]["test"]
    for key in ("classifier/baseline_foret_aleatoire", "classifier/hgb_calibre"):
        assert report["performance"][key]["size_bytes"] > 0
        assert report["performance"][key]["latency_one_row_ms"]["p50"] > 0
    assert {g["goal"] for g in report["goals"]} >= {
        "passoire ROC-AUC",
        "label accuracy",
    }
    assert all(not g["applies"] for g in report["goals"])  # demo data


def test_threshold_for_recall_reaches_the_recall():
    rng = np.random.default_rng(0)
    labels = rng.choice(list(rules.LABELS), 500)
    probability = np.clip(
        np.isin(labels, rules.PASSOIRE_LABELS) * 0.4 + rng.random(500) * 0.6, 0, 1
    )

    threshold = M.threshold_for_recall(labels, probability, 0.85)

    assert M.passoire_metrics(labels, probability, threshold)["recall"] >= 0.85
    higher = M.passoire_metrics(labels, probability, threshold + 1e-9)["recall"]
    assert higher < 0.85


def test_conformal_offset_gives_the_nominal_coverage():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 1, 2000)

    offset = M.conformal_offset(y, np.full(2000, -0.5), np.full(2000, 0.5), 0.8)

    covered = M.interval_metrics(
        y, np.full(2000, -0.5 - offset), np.full(2000, 0.5 + offset)
    )
    assert covered["coverage"] == pytest.approx(0.8, abs=0.01)


# ------------------------------------------------------------------------ persistence


def _copy_models(ml_training, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(ml_training.folder, folder)
    version_dir = registry.read_current(folder)
    return folder, version_dir


def test_artifacts_round_trip_with_their_metadata(ml_training, tmp_path):
    folder, version_dir = _copy_models(ml_training, tmp_path)

    loaded = registry.load_current(folder)

    metadata = json.loads((version_dir / "metadata.json").read_text())
    assert set(metadata["artifacts"]) == set(ml_training.models)
    for entry in metadata["artifacts"].values():
        assert registry.sha256(version_dir / entry["file"]) == entry["sha256"]
    assert metadata["library_versions"]["scikit-learn"]
    assert metadata["training_data"]["sha256"]
    assert metadata["training_data"]["origin"] == "demo"
    assert metadata["features"]["categorical"]["type_batiment"] == [
        "appartement",
        "maison",
    ]
    assert loaded.predict(HOUSE) == ml_training.predictor.predict(HOUSE)


def test_a_library_version_mismatch_is_refused(ml_training, tmp_path):
    folder, version_dir = _copy_models(ml_training, tmp_path)
    path = version_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["library_versions"]["scikit-learn"] = "0.24.2"
    path.write_text(json.dumps(metadata))

    with pytest.raises(registry.ModelError) as error:
        registry.load_current(folder)

    assert "scikit-learn trained with 0.24.2" in str(error.value)
    models = registry.ModelRegistry(folder)
    models.reload()
    assert models.predictor is None
    assert models.versions()["status"] == "refused"


def test_a_tampered_artifact_is_refused(ml_training, tmp_path):
    folder, version_dir = _copy_models(ml_training, tmp_path)
    with open(version_dir / "classifier.joblib", "ab") as handle:
        handle.write(b"\0")

    with pytest.raises(registry.ModelError) as error:
        registry.load_current(folder)

    assert "sha256 of classifier.joblib" in str(error.value)


def test_paths_outside_the_models_folder_are_refused(ml_training, tmp_path):
    folder, version_dir = _copy_models(ml_training, tmp_path)
    outside = tmp_path / "elsewhere"
    shutil.copytree(version_dir, outside)
    (folder / "current.json").write_text(json.dumps({"version": "../elsewhere"}))

    with pytest.raises(registry.ModelError) as error:
        registry.load_current(folder)
    assert "outside the models folder" in str(error.value)

    (folder / "current.json").write_text(json.dumps({"version": version_dir.name}))
    path = version_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata["artifacts"]["classifier"]["file"] = "../../elsewhere/classifier.joblib"
    path.write_text(json.dumps(metadata))
    with pytest.raises(registry.ModelError) as error:
        registry.load_current(folder)
    assert "outside the models folder" in str(error.value)


def test_inconsistent_version_warning_is_an_error(ml_training, tmp_path, monkeypatch):
    from sklearn.exceptions import InconsistentVersionWarning

    folder, _ = _copy_models(ml_training, tmp_path)

    def load_with_warning(path):
        warnings.warn(
            InconsistentVersionWarning(
                estimator_name="Pipeline",
                current_sklearn_version="9.9",
                original_sklearn_version="0.1",
            ),
            stacklevel=1,
        )

    monkeypatch.setattr(registry.joblib, "load", load_with_warning)

    with pytest.raises(registry.ModelError) as error:
        registry.load_current(folder)
    assert "classifier.joblib" in str(error.value)


def test_no_model_folder_means_no_predictor(app):
    models = app.extensions["models"]

    assert models.predictor is None
    assert models.versions()["status"] == "missing"


# --------------------------------------------------------------------------- inference


def test_predict_returns_the_contract(predictor):
    result = predictor.predict(HOUSE)

    assert result["etiquette_dpe"] in rules.LABELS
    assert set(result["probabilities"]) == set(rules.LABELS)
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    passoire_p = result["probabilities"]["F"] + result["probabilities"]["G"]
    assert result["passoire_probability"] == pytest.approx(passoire_p, abs=1e-3)
    low, high = result["conso_5_usages_par_m2_ep_interval"]
    assert low <= result["conso_5_usages_par_m2_ep"] <= high
    assert result["conso_5_usages_ep"] == pytest.approx(
        result["conso_5_usages_par_m2_ep"] * 110, abs=10
    )
    assert result["etiquette_derivee"] in rules.LABELS
    assert result["cout_total_5_usages"] > 0
    assert result["commune"]["nom"] == "Annecy"
    assert result["model_version"] == predictor.version


def test_invalid_inputs_name_every_bad_field(predictor):
    bad = {
        "surface_habitable_logement": 2,
        "annee_construction": "vers 1900",
        "type_batiment": "château",
        "type_energie_principale_chauffage": "charbon de bois",
        "type_installation_chauffage": "",
        "qualite_isolation_enveloppe": "parfaite",
        "logement_traversant": "peut-être",
        "code_insee": "99999",
    }

    with pytest.raises(InputError) as error:
        predictor.validate(bad)

    fields = error.value.fields
    assert set(fields) == {
        "surface_habitable_logement",
        "annee_construction",
        "type_batiment",
        "type_energie_principale_chauffage",
        "type_installation_chauffage",
        "qualite_isolation_enveloppe",
        "logement_traversant",
        "code_insee",
    }
    assert "entre 5 et 1" in fields["surface_habitable_logement"]
    assert "« maison »" in fields["type_batiment"]
    assert "« appartement »" in fields["type_batiment"]
    assert "Gaz naturel" in fields["type_energie_principale_chauffage"]
    assert "je ne sais pas" in fields["qualite_isolation_enveloppe"]
    assert "Haute-Savoie" in fields["code_insee"]


def test_a_location_is_required(predictor):
    inputs = {k: v for k, v in HOUSE.items() if k != "code_insee"}

    with pytest.raises(InputError) as error:
        predictor.validate(inputs)

    assert "Localisation requise" in error.value.fields["code_insee"]


@pytest.mark.parametrize(
    "location",
    [
        {"code_insee": "74010"},
        {"code_postal": "74000"},
        {"latitude": 45.9, "longitude": 6.12},
        {"zone_climatique": "H1c", "altitude": 1450},
    ],
    ids=["insee", "postal", "point", "zone-altitude"],
)
def test_every_kind_of_location_gives_location_features(predictor, location):
    inputs = {k: v for k, v in HOUSE.items() if k != "code_insee"} | location

    features = predictor.validate(inputs)

    assert features["zone_climatique"] == "H1c"
    assert features["altitude"] is not None
    assert features["classe_altitude"] in rules.CLASSES_ALTITUDE


def test_period_alone_and_unknown_insulation_are_accepted(predictor):
    inputs = {k: v for k, v in HOUSE.items() if k != "annee_construction"} | {
        "periode_construction": "1948-1974",
        "qualite_isolation_enveloppe": "je ne sais pas",
        "type_generateur_chauffage": "",
    }

    features = predictor.validate(inputs)

    assert features["annee_construction"] is None
    assert features["periode_construction"] == "1948-1974"
    assert features["qualite_isolation_enveloppe"] is None
    assert features["type_generateur_chauffage"] is None
    assert predictor.predict(inputs)["etiquette_dpe"] in rules.LABELS


def test_quantiles_are_ordered(predictor, app):
    rows = serving_rows(F.frame_features(app.extensions["store"].dpe.head(300)), 300)

    results = predictor.predict_batch(rows) + [predictor.predict(r) for r in rows[:20]]

    for result in results:
        low, high = result["conso_5_usages_par_m2_ep_interval"]
        assert low <= result["conso_5_usages_par_m2_ep_median"] <= high
        assert low <= result["conso_5_usages_par_m2_ep"] <= high


def test_passoire_threshold_is_honoured(predictor, app):
    rows = serving_rows(F.frame_features(app.extensions["store"].dpe.head(200)), 200)

    results = predictor.predict_batch(rows)

    assert all(
        r["passoire"] == (r["passoire_probability"] >= predictor.passoire_threshold)
        for r in results
    )
    assert all(
        r["passoire_threshold"] == round(predictor.passoire_threshold, 4)
        for r in results
    )
    assert any(r["passoire"] for r in results) and not all(
        r["passoire"] for r in results
    )


def test_batch_keeps_invalid_rows_in_place(predictor):
    results = predictor.predict_batch(
        [HOUSE, {"surface_habitable_logement": 50}, HOUSE]
    )

    assert isinstance(results[1], InputError)
    assert results[0] == results[2]


@pytest.mark.parametrize("rows", [30, 100], ids=["compiled-trees", "native-loop"])
def test_fast_paths_match_scikit_learn(predictor, app, rows):
    features = F.frame_features(app.extensions["store"].dpe.head(rows))
    X = predictor.encode_frame(features)

    fast = predictor.predict_array(X)
    predictor.fast = False
    try:
        slow = predictor.predict_array(X)
    finally:
        predictor.fast = True

    assert predictor.native
    for key in fast:
        np.testing.assert_allclose(fast[key], slow[key], rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------- app


def test_health_shows_the_model_versions(models_client, ml_training):
    body = models_client.get("/api/v1/health").get_json()

    models = body["models"]
    assert models["status"] == "ready"
    assert models["model_version"] == ml_training.metadata["model_version"]
    assert models["library_versions"] == ml_training.metadata["library_versions"]
    assert set(models["artifacts"]) == set(ml_training.models)


def test_registry_card_and_cli_status(models_app):
    card = models_app.extensions["models"].card()
    assert card["status"] == "ready"
    assert card["metrics"]["accuracy"] is not None

    result = models_app.test_cli_runner().invoke(args=["ml", "status"])

    assert result.exit_code == 0
    assert '"status": "ready"' in result.output


def test_evaluate_a_file_without_most_columns(predictor, app, tmp_path):
    dpe = app.extensions["store"].dpe
    dpe = dpe[dpe["source"] == "existant"].head(120)
    columns = [
        "numero_dpe",
        "date_etablissement_dpe",
        "etiquette_dpe",
        "type_batiment",
        "surface_habitable_logement",
        "type_energie_principale_chauffage",
        "type_installation_chauffage",
        "code_insee_ban",
    ]
    path = tmp_path / "sample.csv"
    dpe[columns].to_csv(path, index=False)

    from ml.evaluate import evaluate_file

    result = evaluate_file(path, predictor)

    assert result["rows_evaluated"] == int(dpe["type_batiment"].isin(F.BATIMENTS).sum())
    assert any("Small sample" in note for note in result["notes"])
    assert result["missing_share_per_feature"]["annee_construction"] == 1.0
    assert result["missing_share_per_feature"]["altitude"] == 0.0
    assert result["classification"]["accuracy"] is not None
    assert "not computable" in result["conso_ep"]


def test_evaluate_gives_new_builds_the_dpe_year(predictor, app, tmp_path):
    dpe = app.extensions["store"].dpe
    dpe = dpe[dpe["source"] == "neuf"].head(40)
    path = tmp_path / "neuf.csv"
    dpe.drop(columns=["annee_construction", "periode_construction"]).to_csv(
        path, index=False
    )

    from ml.evaluate import evaluate_file

    result = evaluate_file(path, predictor)

    assert result["missing_share_per_feature"]["annee_construction"] == 0.0
    assert any("new-build" in note for note in result["notes"])


def test_evaluate_the_real_new_build_sample(predictor, shared_raw):
    from ml.evaluate import evaluate_file

    result = evaluate_file(shared_raw / "ademe_dpe02neuf_73-74_sample.csv", predictor)

    assert result["rows_evaluated"] > 3000
    assert result["classification"]["n"] == result["rows_evaluated"]
    assert result["missing_share_per_feature"]["qualite_isolation_enveloppe"] == 1.0
    assert result["cost"]["n"] > 0


def test_train_if_missing_trains_in_the_background(volume, ml_training, monkeypatch):
    from ml import train as train_module
    from tests.conftest import make_app

    calls = []

    def fake_train(app, config=None, report_dir=None):
        # Stands for a real training: copy the session's models into the volume.
        calls.append(app.config["VOLUME_PATH"])
        shutil.copytree(ml_training.folder, volume / "models", dirs_exist_ok=True)

    monkeypatch.setattr(train_module, "train_from_app", fake_train)

    app = make_app(volume, TRAIN_IF_MISSING=True)
    thread = next(t for t in threading.enumerate() if t.name == "ml-train")
    thread.join(timeout=30)

    assert calls == [str(volume)]
    assert app.extensions["models"].versions()["status"] == "ready"
