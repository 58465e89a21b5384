"""Prediction inputs, result assembly and the what-if grid report."""

from __future__ import annotations

from datetime import date

import pytest

from tests.conftest import make_app
from webapp import prediction
from webapp import rules

#: kWh EP/m²/an of the fake model, per heating energy.
FAKE_BASE_EP = {
    "Électricité": 260.0,
    "Gaz naturel": 210.0,
    "Fioul domestique": 300.0,
    "Bois – Bûches": 190.0,
    "Bois – Granulés (pellets) ou briquettes": 150.0,
    "Réseau de Chauffage urbain": 160.0,
    "GPL": 280.0,
}
FAKE_GES = {"Électricité": 8.0, "Fioul domestique": 75.0, "GPL": 60.0}
FAKE_ISOLATION = {"insuffisante": 1.3, "moyenne": 1.0, "bonne": 0.8, "très bonne": 0.65}


class FakeInputError(ValueError):
    """Same shape as ml.predict.InputError."""

    def __init__(self, fields):
        super().__init__(str(fields))
        self.fields = fields


class FakePredictor:
    """A deterministic stand-in with the model contract, for assembly tests."""

    version = "fake-1"

    def __init__(self, heat_pump_factor: float = 0.45):
        self.heat_pump_factor = heat_pump_factor
        self.calls = 0

    def validate(self, inputs):
        if inputs.get("surface_habitable_logement") == 999:
            raise FakeInputError({"surface_habitable_logement": "refusée (test)"})
        return inputs

    def predict(self, inputs):
        self.calls += 1
        self.validate(inputs)
        energy = inputs["type_energie_principale_chauffage"]
        ep = FAKE_BASE_EP[energy]
        ep *= FAKE_ISOLATION.get(inputs.get("qualite_isolation_enveloppe"), 1.1)
        if inputs.get("type_generateur_chauffage") == "pompe à chaleur":
            ep *= self.heat_pump_factor
        ges = FAKE_GES.get(energy, 35.0) * ep / 200
        surface = inputs["surface_habitable_logement"]
        label = rules.etiquette_dpe(ep, ges, surface=surface)
        probabilities = dict.fromkeys(rules.LABELS, 0.02)
        probabilities[label] = 0.88
        passoire = probabilities["F"] + probabilities["G"]
        return {
            "etiquette_dpe": label,
            "probabilities": probabilities,
            "passoire": passoire >= 0.5,
            "passoire_probability": passoire,
            "passoire_threshold": 0.5,
            "conso_5_usages_par_m2_ep": ep,
            "conso_5_usages_par_m2_ep_interval": [ep * 0.8, ep * 1.2],
            "conso_5_usages_ep": ep * surface,
            "conso_5_usages_ep_interval": [ep * surface * 0.8, ep * surface * 1.2],
            "emission_ges_5_usages_par_m2": ges,
            "etiquette_derivee": label,
            "cout_total_5_usages": ep * surface * 0.12,
            "model_version": self.version,
        }

    def predict_batch(self, rows):
        results = []
        for row in rows:
            try:
                results.append(self.predict(row))
            except FakeInputError as error:
                results.append(error)
        return results


class FakeRegistry:
    """Registry shape of the model contract around a predictor."""

    def __init__(self, predictor):
        self.predictor = predictor

    def versions(self):
        return {"etiquette_dpe": "fake-1"}

    def card(self):
        return {"version": "fake-1", "metrics": {"accuracy": 0.5}, "data": {}}


#: A valid home, as a form would send it.
HOME = {
    "surface_habitable_logement": "72",
    "annee_construction": "1968",
    "type_batiment": "appartement",
    "type_energie_principale_chauffage": "Gaz naturel",
    "type_installation_chauffage": "individuel",
    "qualite_isolation_enveloppe": "insuffisante",
    "logement_traversant": "oui",
    "protection_solaire_exterieure": "non",
    "code_insee": "74010",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module: these tests only read the data."""
    return make_app(tmp_path_factory.mktemp("volume"))


@pytest.fixture
def fake_app(app):
    """The app with the fake model registered."""
    previous = app.extensions.get("models")
    app.extensions["models"] = FakeRegistry(FakePredictor())
    yield app
    app.extensions["models"] = previous


def test_parse_inputs_accepts_form_strings(app):
    with app.app_context():
        parsed = prediction.parse_inputs(HOME)

    assert parsed.ok, parsed.errors
    assert parsed.inputs["surface_habitable_logement"] == 72.0
    assert parsed.inputs["annee_construction"] == 1968
    assert parsed.inputs["periode_construction"] == "1948-1974"
    assert parsed.inputs["logement_traversant"] is True
    assert parsed.inputs["protection_solaire_exterieure"] is False
    assert parsed.inputs["zone_climatique"] == "H1c"
    assert parsed.location.nom_commune == "Annecy"


def test_parse_inputs_accepts_typed_json_and_loose_spellings(app):
    raw = {
        **HOME,
        "surface_habitable_logement": 72.5,
        "annee_construction": 1968,
        "type_energie_principale_chauffage": "gaz NATUREL",
        "logement_traversant": True,
        "qualite_isolation_enveloppe": "Tres bonne",
    }
    with app.app_context():
        parsed = prediction.parse_inputs(raw)

    assert parsed.ok, parsed.errors
    assert parsed.inputs["type_energie_principale_chauffage"] == "Gaz naturel"
    assert parsed.inputs["qualite_isolation_enveloppe"] == "très bonne"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("surface_habitable_logement", "2", "entre 5 et 1 000 m²"),
        ("surface_habitable_logement", "grand", "nombre de m²"),
        ("annee_construction", "1500", "entre 1600 et"),
        ("annee_construction", "1968,5", "année entière"),
        ("type_batiment", "château", "maison, appartement"),
        ("type_energie_principale_chauffage", "charbon", "Électricité, Gaz naturel"),
        ("qualite_isolation_enveloppe", "parfaite", "je ne sais pas"),
        ("logement_traversant", "peut-être", "oui, non ou je ne sais pas"),
        ("code_insee", "75056", "Haute-Savoie"),
    ],
    ids=[
        "surface-range",
        "surface-text",
        "year-range",
        "year-fraction",
        "batiment",
        "energy",
        "isolation",
        "bool",
        "commune",
    ],
)
def test_parse_inputs_names_each_bad_field_in_french(app, name, value, expected):
    with app.app_context():
        parsed = prediction.parse_inputs({**HOME, name: value})

    assert not parsed.ok
    assert expected in parsed.errors[name]


def test_missing_required_fields_are_all_reported(app):
    with app.app_context():
        parsed = prediction.parse_inputs({})

    assert set(parsed.errors) >= {
        "surface_habitable_logement",
        "type_batiment",
        "type_energie_principale_chauffage",
        "annee_construction",
        "code_insee",
    }
    assert all(parsed.errors.values())


def test_year_and_period_must_agree(app):
    with app.app_context():
        parsed = prediction.parse_inputs({**HOME, "periode_construction": "après 2021"})

    assert "1948-1974" in parsed.errors["periode_construction"]


def test_period_alone_is_enough(app):
    raw = {**HOME, "periode_construction": "1989-2000"}
    del raw["annee_construction"]
    with app.app_context():
        parsed = prediction.parse_inputs(raw)

    assert parsed.ok, parsed.errors
    assert parsed.inputs["annee_construction"] is None


def test_unknown_insulation_is_missing(app):
    with app.app_context():
        parsed = prediction.parse_inputs(
            {**HOME, "qualite_isolation_enveloppe": "je ne sais pas"}
        )

    assert parsed.ok
    assert parsed.inputs["qualite_isolation_enveloppe"] is None


def test_validate_field_checks_one_field(app):
    with app.app_context():
        assert prediction.validate_field("surface_habitable_logement", "72") is None
        assert "obligatoire" in prediction.validate_field("type_batiment", "")
        assert "Haute-Savoie" in prediction.validate_field("code_postal", "75001")
        assert prediction.validate_field("code_postal", "74000") is None
        assert "4 810" in prediction.validate_field("altitude", "9000")
    with pytest.raises(KeyError):
        prediction.validate_field("nope", "1")


def test_model_messages_are_merged(fake_app):
    with fake_app.app_context():
        parsed = prediction.parse_inputs({**HOME, "surface_habitable_logement": "999"})
        prediction.check_with_model(prediction.current_predictor(), parsed)

    assert parsed.errors == {"surface_habitable_logement": "refusée (test)"}


def test_build_result_explains_the_prediction(fake_app):
    with fake_app.app_context():
        parsed = prediction.parse_inputs(HOME)
        result = prediction.build_result(
            prediction.current_predictor(), parsed, today=date(2026, 12, 3)
        )

    # Gas 210 × 1.3 (poor insulation) = 273 kWh/m²/an, GHG 47.8: label E.
    assert result["label"] == "E"
    assert result["gap"].target == "D"
    assert result["gap"].ep_reduction == pytest.approx(273.0 - 250 + 0.1)
    assert not result["rental"].banned
    assert "1er janvier 2034" in result["rental"].message_fr
    assert result["factor_2026"] is None
    assert 0 <= result["percentile"] <= 1 and result["peers"] > 0
    assert [p[0] for p in result["probabilities"]] == list(rules.LABELS)
    whatifs = {w["key"]: w for w in result["whatifs"]}
    # 210 × 0.8 = 168 kWh/m²/an: C.
    assert whatifs["isolation_bonne"]["etiquette_dpe"] == "C"
    assert whatifs["isolation_bonne"]["kwh_saved"] == pytest.approx((273 - 168) * 72)
    assert whatifs["isolation_bonne"]["probability"] == pytest.approx(0.88)
    assert whatifs["combinaison"]["classes_gained"] > 0


def test_electric_home_shows_the_2026_factor(fake_app):
    with fake_app.app_context():
        parsed = prediction.parse_inputs(
            {**HOME, "type_energie_principale_chauffage": "Électricité"}
        )
        result = prediction.build_result(prediction.current_predictor(), parsed)

    effect = result["factor_2026"]
    assert effect["ep_before"] == pytest.approx(effect["ep_now"] * 2.3 / 1.9)
    assert effect["label_now"] == result["gap"].current


def test_whatifs_already_true_or_downgrades_are_not_run(fake_app):
    raw = {
        **HOME,
        "qualite_isolation_enveloppe": "très bonne",
        "type_energie_principale_chauffage": "Électricité",
        "type_generateur_chauffage": "pompe à chaleur",
    }
    with fake_app.app_context():
        parsed = prediction.parse_inputs(raw)
        result = prediction.build_result(prediction.current_predictor(), parsed)

    reasons = {w["key"]: w["reason"] for w in result["whatifs"]}
    assert "meilleure" in reasons["isolation_bonne"]
    assert "déjà" in reasons["isolation_tres_bonne"]
    assert "déjà" in reasons["pompe_a_chaleur"]
    assert "déjà" in reasons["combinaison"]
    assert reasons["granules"] is None


def test_worse_whatifs_are_reported_honestly(fake_app):
    # A heat pump "factor" above 1 makes the fake model predict a worse result.
    predictor = FakePredictor(heat_pump_factor=1.6)
    with fake_app.app_context():
        parsed = prediction.parse_inputs(
            {**HOME, "type_energie_principale_chauffage": "Électricité"}
        )
        result = prediction.build_result(predictor, parsed)

    pac = next(w for w in result["whatifs"] if w["key"] == "pompe_a_chaleur")
    assert pac["worse_label"] and pac["worse_consumption"]
    assert pac["kwh_saved"] < 0


def test_whatif_grid_report_counts_worse_cases(fake_app):
    with fake_app.app_context():
        rows = prediction.whatif_grid(communes=("74010",))
        good = prediction.whatif_grid_report(FakePredictor(), rows)
        bad = prediction.whatif_grid_report(FakePredictor(heat_pump_factor=1.6), rows)

    assert good["homes"] == len(rows) == 3 * 5 * 2 * 4 * 3
    assert good["scenarios"]["pompe_a_chaleur"]["worse_label"] == 0
    # Heat pumps on homes not already electric-heat-pump: every one gets worse.
    pac = bad["scenarios"]["pompe_a_chaleur"]
    assert pac["cases"] == len(rows)
    assert pac["worse_consumption"] == pac["cases"]
    assert bad["worse_label_total"] > good["worse_label_total"]
    for counts in good["scenarios"].values():
        assert (
            counts["better_label"] + counts["same_label"] + counts["worse_label"]
            == counts["cases"]
        )


def test_no_model_raises_model_unavailable(app):
    previous = app.extensions.pop("models", None)
    try:
        with app.app_context(), pytest.raises(prediction.ModelUnavailable):
            prediction.current_predictor()
    finally:
        if previous is not None:
            app.extensions["models"] = previous
