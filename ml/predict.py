"""Inference: validate a household's inputs and predict label, consumption, cost.

`Predictor` wraps the fitted pipelines of one model version. It validates a dict
into typed features (raising `InputError` with one French message per bad field),
encodes them straight into the array the trees expect (no per-call DataFrame), and
evaluates all trees at once through `ml.forest.CompiledForest` for small batches;
large batches go through scikit-learn's own multi-threaded predict.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import ThreadpoolController

from ml import costs
from ml import features as F
from ml.forest import CompiledForest
from ml.forest import native_raw
from webapp import rules
from webapp.formatting import is_blank as _blank
from webapp.formatting import nombre
from webapp.formatting import parse_number as _number
from webapp.schema import fold

logger = logging.getLogger(__name__)


@functools.cache
def _threadpools() -> ThreadpoolController:
    # Scanning the loaded libraries costs ~4 ms: do it once, not per prediction.
    return ThreadpoolController()


def _one_openmp_thread():
    """Limit OpenMP to one thread for the duration of a `with` block."""
    return _threadpools().limit(limits=1, user_api="openmp")


#: The persisted models, by artifact name.
CLASSIFIER = "classifier"
REGRESSORS: tuple[str, ...] = (
    "conso_ep",
    "conso_ep_q10",
    "conso_ep_q50",
    "conso_ep_q90",
    "emission_ges",
)
MODEL_NAMES: tuple[str, ...] = (CLASSIFIER, *REGRESSORS)

#: Batches up to this size use the compiled trees; larger ones scikit-learn's.
FAST_PATH_MAX_ROWS = 32

#: Largest gap tolerated between the compiled trees and scikit-learn.
FAST_PATH_TOLERANCE = 1e-6

#: Allowed ranges of the numeric inputs (inclusive).
SURFACE_RANGE = (5.0, 1000.0)
YEAR_MIN = 1600
ALTITUDE_RANGE = (0.0, 4810.0)
DENSITE_RANGE = (0.0, 100_000.0)
#: Farthest a point may lie from a commune centre of the table to be located (km).
MAX_LOCATION_KM = 25.0

_TRUE = {"1", "true", "vrai", "oui", "on", "yes"}
_FALSE = {"0", "false", "faux", "non", "off", "no"}


class InputError(ValueError):
    """Invalid prediction inputs; `fields` maps each bad field to a French message."""

    def __init__(self, fields: Mapping[str, str]):
        self.fields = dict(fields)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.fields.items()))


@functools.lru_cache(maxsize=4096)
def _folded_key(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", fold(text))


def _key(value: Any) -> str:
    """Return a value reduced to lowercase ASCII letters and digits."""
    return _folded_key(str(value))


def _boolean(value: Any) -> float | None:
    """Parse a yes/no answer into 1.0/0.0; None if not one."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    text = _key(value)
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    return None


def _range_fr(low: float, high: float) -> str:
    return f"entre {nombre(low)} et {nombre(high)}"


def _choices_fr(values) -> str:
    return ", ".join(f"« {v} »" for v in values)


def _distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km (haversine)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(a))


class Predictor:
    """The models of one version, with input validation and fast inference."""

    def __init__(self, models: Mapping[str, Any], metadata: Mapping[str, Any]):
        self.models = dict(models)
        self.metadata = dict(metadata)
        self.version: str = metadata["model_version"]
        self.passoire_threshold = float(metadata["passoire_threshold"])
        self.interval_offset = float(metadata["interval"]["offset"])
        self.interval_level = float(metadata["interval"]["level"])

        prepare = self.models[CLASSIFIER].named_steps["prepare"]
        encoder = prepare.named_transformers_["categories"]
        self.categories = {
            name: [str(v) for v in values]
            for name, values in zip(F.CATEGORICAL, encoder.categories_, strict=True)
        }
        self._codes = {
            name: {value: float(code) for code, value in enumerate(values)}
            for name, values in self.categories.items()
        }
        self._allowed = self._allowed_values()
        self._lookup = {
            name: {_key(v): v for v in values} for name, values in self._allowed.items()
        }

        self._locations = dict(metadata.get("locations", {}))
        self._postal: dict[str, str] = {}
        for code, place in sorted(
            self._locations.items(), key=lambda item: -(item[1].get("population") or 0)
        ):
            for postal in place.get("codes_postaux") or []:
                self._postal.setdefault(postal, code)
        located = [
            (c, p["latitude"], p["longitude"])
            for c, p in self._locations.items()
            if p.get("latitude") is not None and p.get("longitude") is not None
        ]
        self._centre_codes = [c for c, _, _ in located]
        self._centres = np.array([[lat, lon] for _, lat, lon in located], dtype=float)

        calibrated = self.models[CLASSIFIER].named_steps["model"]
        self.classes = [str(c) for c in calibrated.classes_]
        inner = calibrated.calibrated_classifiers_[0]
        self._calibrated = calibrated
        self._beta = float(inner.calibrators[0].beta_)
        self._passoire_columns = [self.classes.index(c) for c in rules.PASSOIRE_LABELS]
        # The calibrated trees are frozen; the compiled forest needs the trees.
        trees = getattr(inner.estimator, "estimator", inner.estimator)
        estimators = [(CLASSIFIER, trees)] + [
            (name, self.models[name].named_steps["model"]) for name in REGRESSORS
        ]
        self._estimators = estimators
        self.forest = CompiledForest(estimators)
        self.fast = self._check_fast_path()

    # ---------------------------------------------------------------- validation

    def _allowed_values(self) -> dict[str, list[str]]:
        allowed = {
            "type_batiment": list(F.BATIMENTS),
            "periode_construction": [p for p, _, _ in F.PERIODES],
            "type_energie_principale_chauffage": self.categories[
                "type_energie_principale_chauffage"
            ],
            "type_generateur_chauffage": list(F.GENERATOR_FAMILIES),
            "type_installation_chauffage": list(F.INSTALLATIONS),
            "qualite_isolation_enveloppe": [*F.ISOLATIONS, F.UNKNOWN_ANSWER],
            "zone_climatique": list(rules.ZONES_CLIMATIQUES),
            "classe_altitude": list(rules.CLASSES_ALTITUDE),
        }
        return allowed

    def _choice(self, name, value, errors, required=False) -> str | None:
        if _blank(value):
            if required:
                errors[name] = (
                    "Champ obligatoire ; valeurs possibles : "
                    f"{_choices_fr(self._allowed[name])}."
                )
            return None
        found = self._lookup[name].get(_key(value))
        if found is None:
            errors[name] = (
                f"Valeur « {value} » non reconnue ; valeurs possibles : "
                f"{_choices_fr(self._allowed[name])}."
            )
        return found

    def _bounded(self, name, value, low, high, errors, label, integer=False):
        if _blank(value):
            return None
        number = _number(value)
        if (
            number is None
            or not low <= number <= high
            or (integer and number != int(number))
        ):
            kind = "nombre entier" if integer else "nombre"
            errors[name] = f"{label} : {kind} {_range_fr(low, high)} attendu."
            return None
        return number

    def validate(self, inputs: Mapping[str, Any]) -> dict:
        """Return typed features from raw inputs, or raise `InputError`.

        The result holds the model features plus `commune` (the commune used for
        the location, when one was found).
        """
        errors: dict[str, str] = {}
        year_max = F.current_year()
        out: dict[str, Any] = {}

        surface = inputs.get("surface_habitable_logement")
        if _blank(surface):
            errors["surface_habitable_logement"] = (
                "Champ obligatoire : surface habitable en m² "
                f"{_range_fr(*SURFACE_RANGE)}."
            )
        out["surface_habitable_logement"] = self._bounded(
            "surface_habitable_logement",
            surface,
            *SURFACE_RANGE,
            errors,
            "Surface habitable en m²",
        )
        out["annee_construction"] = self._bounded(
            "annee_construction",
            inputs.get("annee_construction"),
            YEAR_MIN,
            year_max,
            errors,
            "Année de construction",
            integer=True,
        )
        periode = self._choice(
            "periode_construction", inputs.get("periode_construction"), errors
        )
        year = out["annee_construction"]
        if year is not None:
            from_year = F.periode_from_year(year)
            if periode is not None and periode != from_year:
                errors["periode_construction"] = (
                    f"La période « {periode} » ne correspond pas à l'année "
                    f"{int(year)} (période « {from_year} »)."
                )
            periode = from_year
        elif (
            periode is None
            and "periode_construction" not in errors
            and "annee_construction" not in errors
        ):
            errors["annee_construction"] = (
                "Indiquez l'année de construction "
                f"({_range_fr(YEAR_MIN, year_max)}) ou la période de construction "
                f"({_choices_fr(self._allowed['periode_construction'])})."
            )
        out["periode_construction"] = periode

        out["type_batiment"] = self._choice(
            "type_batiment", inputs.get("type_batiment"), errors, required=True
        )
        out["type_energie_principale_chauffage"] = self._choice(
            "type_energie_principale_chauffage",
            inputs.get("type_energie_principale_chauffage"),
            errors,
            required=True,
        )
        out["type_generateur_chauffage"] = self._choice(
            "type_generateur_chauffage",
            inputs.get("type_generateur_chauffage"),
            errors,
        )
        out["type_installation_chauffage"] = self._choice(
            "type_installation_chauffage",
            inputs.get("type_installation_chauffage"),
            errors,
            required=True,
        )
        isolation = self._choice(
            "qualite_isolation_enveloppe",
            inputs.get("qualite_isolation_enveloppe"),
            errors,
        )
        out["qualite_isolation_enveloppe"] = (
            None if isolation == F.UNKNOWN_ANSWER else isolation
        )
        for name, label in (
            ("logement_traversant", "Logement traversant"),
            ("protection_solaire_exterieure", "Protection solaire extérieure"),
        ):
            value = inputs.get(name)
            parsed = None if _blank(value) else _boolean(value)
            if not _blank(value) and parsed is None:
                errors[name] = f"{label} : oui ou non attendu."
            out[name] = parsed

        self._validate_location(inputs, out, errors)
        if errors:
            raise InputError(errors)
        return out

    def _validate_location(self, inputs, out, errors) -> None:
        """Fill zone, altitude class, altitude and density from the location."""
        place = None
        code = inputs.get("code_insee")
        postal = inputs.get("code_postal")
        lat, lon = inputs.get("latitude"), inputs.get("longitude")

        if not _blank(code):
            key = str(code).strip().removesuffix(".0").zfill(5)
            place = self._locations.get(key)
            if place is None:
                errors["code_insee"] = (
                    f"Commune « {code} » inconnue : code INSEE d'une commune de "
                    "Haute-Savoie attendu (par exemple 74010 pour Annecy)."
                )
            else:
                out["commune"] = {"code_insee": key, "nom": place.get("nom")}
        elif not _blank(postal):
            key = str(postal).strip().removesuffix(".0").zfill(5)
            found = self._postal.get(key)
            if found is None:
                errors["code_postal"] = (
                    f"Code postal « {postal} » inconnu : code postal de Haute-Savoie "
                    "attendu (74000 à 74999)."
                )
            else:
                place = self._locations[found]
                out["commune"] = {"code_insee": found, "nom": place.get("nom")}
        elif not _blank(lat) or not _blank(lon):
            place = self._nearest(lat, lon, errors)

        zone = self._choice("zone_climatique", inputs.get("zone_climatique"), errors)
        altitude = self._bounded(
            "altitude",
            inputs.get("altitude"),
            *ALTITUDE_RANGE,
            errors,
            "Altitude en m",
        )
        densite = self._bounded(
            "densite",
            inputs.get("densite"),
            *DENSITE_RANGE,
            errors,
            "Densité en habitants par km²",
        )
        classe = self._choice("classe_altitude", inputs.get("classe_altitude"), errors)

        if place is None and (zone is None or altitude is None):
            if not any(
                k in errors for k in ("code_insee", "code_postal", "latitude")
            ) and not any(k in errors for k in ("zone_climatique", "altitude")):
                errors["code_insee"] = (
                    "Localisation requise : code_insee, code_postal, latitude et "
                    "longitude, ou zone_climatique et altitude."
                )
            return
        place = place or {}
        out["zone_climatique"] = zone or place.get("zone_climatique")
        out["altitude"] = altitude if altitude is not None else place.get("altitude")
        out["densite"] = densite if densite is not None else place.get("densite")
        if classe is None and altitude is not None:
            classe = rules.classe_altitude_from_altitude(altitude)
        out["classe_altitude"] = classe or place.get("classe_altitude")

    def _nearest(self, lat, lon, errors) -> dict | None:
        """Return the commune whose centre is nearest to a point, if close enough."""
        lat_n, lon_n = _number(lat), _number(lon)
        if lat_n is None or not -90 <= lat_n <= 90:
            errors["latitude"] = "Latitude : nombre entre -90 et 90 attendu."
        if lon_n is None or not -180 <= lon_n <= 180:
            errors["longitude"] = "Longitude : nombre entre -180 et 180 attendu."
        if "latitude" in errors or "longitude" in errors or not len(self._centres):
            return None
        distances = _distance_km(lat_n, lon_n, self._centres[:, 0], self._centres[:, 1])
        best = int(np.argmin(distances))
        if distances[best] > MAX_LOCATION_KM:
            errors["latitude"] = (
                "Point hors de Haute-Savoie : aucune commune connue à moins de "
                f"{nombre(MAX_LOCATION_KM)} km."
            )
            return None
        return self._locations[self._centre_codes[best]]

    # ---------------------------------------------------------------- encoding

    def encode(self, rows: list[Mapping[str, Any]]) -> np.ndarray:
        """Return the model array of validated feature dicts (categories as codes)."""
        array = np.full((len(rows), len(F.FEATURES)), np.nan)
        for i, row in enumerate(rows):
            for j, name in enumerate(F.CATEGORICAL):
                value = row.get(name)
                if value is not None:
                    array[i, j] = self._codes[name].get(value, np.nan)
            for j, name in enumerate(F.NUMERIC, start=len(F.CATEGORICAL)):
                value = row.get(name)
                if value is not None:
                    array[i, j] = value
        return array

    def encode_frame(self, features: pd.DataFrame) -> np.ndarray:
        """Return the model array of a feature DataFrame (as built by `ml.features`)."""
        prepare = self.models[CLASSIFIER].named_steps["prepare"]
        return prepare.transform(features[list(F.FEATURES)])

    # ---------------------------------------------------------------- prediction

    def _proba_from_raw(self, raw: np.ndarray) -> np.ndarray:
        """Temperature-scaled softmax, as CalibratedClassifierCV computes it."""
        logits = raw * self._beta
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def _check_fast_path(self) -> bool:
        probe = self._probe_rows()
        with _one_openmp_thread():
            gap = self.forest.check(self._estimators, probe, FAST_PATH_TOLERANCE)
            reference = self._calibrated.predict_proba(probe)
        fast = self._proba_from_raw(self.forest.raw(probe)[:, : len(self.classes)])
        proba_gap = float(np.max(np.abs(fast - reference)))
        ok = gap <= FAST_PATH_TOLERANCE and proba_gap <= FAST_PATH_TOLERANCE
        self.native = ok and self._check_native(probe)
        if not ok:
            logger.warning(
                "compiled trees disagree with scikit-learn (raw %.3g, proba %.3g): "
                "using scikit-learn's predict only",
                gap,
                proba_gap,
            )
        return ok

    def _check_native(self, probe: np.ndarray) -> bool:
        """Tell whether scikit-learn's tree loop can skip its own preprocessing."""
        with _one_openmp_thread():
            for _, model in self._estimators:
                reference = model._raw_predict(probe)
                if not np.allclose(
                    native_raw(model, probe), reference, rtol=0, atol=1e-9
                ):
                    logger.warning("native tree loop differs; using predict")
                    return False
        return True

    def _probe_rows(self, n: int = 64) -> np.ndarray:
        """Return seeded encoded rows spanning the feature schema, some missing."""
        rng = np.random.default_rng(0)
        probe = np.empty((n, len(F.FEATURES)))
        for j, name in enumerate(F.CATEGORICAL):
            probe[:, j] = rng.integers(0, max(len(self.categories[name]), 1), n)
        numeric = self.metadata["features"]["numeric"]
        for j, name in enumerate(F.NUMERIC, start=len(F.CATEGORICAL)):
            low, high = numeric[name]["min"], numeric[name]["max"]
            probe[:, j] = rng.uniform(low, high, n)
        probe[rng.random(probe.shape) < 0.1] = np.nan
        return probe

    def predict_array(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Return probabilities and regression outputs for an encoded array."""
        k = len(self.classes)
        if self.fast and len(X) <= FAST_PATH_MAX_ROWS:
            raw = self.forest.raw(X)
            out = {"proba": self._proba_from_raw(raw[:, :k])}
            for offset, name in enumerate(REGRESSORS):
                out[name] = raw[:, k + offset]
        elif self.fast and self.native:
            # Same trees, scikit-learn's compiled loop, without re-encoding the
            # array that `encode` already built (checked at load).
            with _one_openmp_thread():
                raws = [native_raw(model, X) for _, model in self._estimators]
            out = {"proba": self._proba_from_raw(raws[0])}
            for name, raw in zip(REGRESSORS, raws[1:], strict=True):
                out[name] = raw[:, 0]
        else:
            # One thread: OpenMP teams oversubscribe a busy machine (several
            # workers, other processes) and then run slower than a single thread.
            with _one_openmp_thread():
                out = {"proba": self._calibrated.predict_proba(X)}
                for name in REGRESSORS:
                    out[name] = self.models[name].named_steps["model"].predict(X)

        quantiles = np.sort(
            np.column_stack(
                [out["conso_ep_q10"], out["conso_ep_q50"], out["conso_ep_q90"]]
            ),
            axis=1,
        )
        point = np.maximum(out["conso_ep"], 0.0)
        low = np.maximum(quantiles[:, 0] - self.interval_offset, 0.0)
        high = np.maximum(quantiles[:, 2] + self.interval_offset, low)
        out["conso_ep"] = point
        out["conso_ep_q10"] = np.minimum(low, point)
        out["conso_ep_q50"] = quantiles[:, 1]
        out["conso_ep_q90"] = np.maximum(high, point)
        out["emission_ges"] = np.maximum(out["emission_ges"], 0.0)
        out["passoire_probability"] = out["proba"][:, self._passoire_columns].sum(1)
        return out

    def predict_frame(self, features: pd.DataFrame) -> dict[str, np.ndarray]:
        """Return the outputs of `predict_array` for a feature DataFrame."""
        return self.predict_array(self.encode_frame(features))

    def predict(self, inputs: Mapping[str, Any]) -> dict:
        """Validate one household's inputs and return every prediction."""
        result = self.predict_batch([inputs])[0]
        if isinstance(result, InputError):
            raise result
        return result

    def predict_batch(self, rows: list[Mapping[str, Any]]) -> list[dict | InputError]:
        """Predict many rows; invalid rows give their `InputError` in place."""
        validated: list[dict | InputError] = []
        for row in rows:
            try:
                validated.append(self.validate(row))
            except InputError as error:
                validated.append(error)
        good = [i for i, v in enumerate(validated) if isinstance(v, dict)]
        if not good:
            return validated

        valid = [validated[i] for i in good]
        outputs = self.predict_array(self.encode(valid))
        derived = self._derived_labels(valid, outputs)
        results = list(validated)
        for i, result in zip(good, self._results(valid, outputs, derived), strict=True):
            results[i] = result
        return results

    def _derived_labels(self, valid: list[dict], outputs: dict) -> list:
        """Return the label the rules give to the predicted EP and GHG."""
        if len(valid) == 1:
            # The scalar rule is far cheaper than the array one for a single row.
            features = valid[0]
            return [
                rules.etiquette_dpe(
                    float(outputs["conso_ep"][0]),
                    float(outputs["emission_ges"][0]),
                    surface=features["surface_habitable_logement"],
                    zone_climatique=features.get("zone_climatique"),
                    classe_altitude=features.get("classe_altitude"),
                )
            ]
        return list(
            rules.etiquette_dpe_array(
                outputs["conso_ep"],
                outputs["emission_ges"],
                [v["surface_habitable_logement"] for v in valid],
                [v.get("zone_climatique") for v in valid],
                [v.get("classe_altitude") for v in valid],
                None,
            )
        )

    def _results(self, valid: list[dict], outputs: dict, derived: list) -> list[dict]:
        """Assemble the output dicts, rounding whole columns at once."""
        surface = np.array([v["surface_habitable_logement"] for v in valid])
        # € per kWh of primary energy: carrier price over its primary-energy factor.
        eur = np.array(
            [
                (
                    costs.annual_cost(1.0, v["type_energie_principale_chauffage"])
                    or np.nan
                )
                for v in valid
            ]
        )
        ep, low, high = (
            outputs["conso_ep"],
            outputs["conso_ep_q10"],
            outputs["conso_ep_q90"],
        )
        proba = outputs["proba"]
        labels = [self.classes[k] for k in proba.argmax(axis=1)]
        passoire = (outputs["passoire_probability"] >= self.passoire_threshold).tolist()
        columns = {
            "proba": np.round(proba, 4).tolist(),
            "passoire_probability": np.round(outputs["passoire_probability"], 4),
            "ep": np.round(ep, 1),
            "low": np.round(low, 1),
            "high": np.round(high, 1),
            "median": np.round(outputs["conso_ep_q50"], 1),
            "ges": np.round(outputs["emission_ges"], 1),
            "ep_logement": np.round(ep * surface),
            "low_logement": np.round(low * surface),
            "high_logement": np.round(high * surface),
            "cost": np.round(ep * surface * eur),
            "cost_low": np.round(low * surface * eur),
            "cost_high": np.round(high * surface * eur),
        }
        lists = {
            k: v if isinstance(v, list) else v.tolist() for k, v in columns.items()
        }
        threshold = round(self.passoire_threshold, 4)
        results = []
        for i, features in enumerate(valid):
            cost = lists["cost"][i]
            known_cost = cost == cost
            results.append(
                {
                    "etiquette_dpe": labels[i],
                    "probabilities": dict(
                        zip(self.classes, lists["proba"][i], strict=True)
                    ),
                    "passoire": passoire[i],
                    "passoire_probability": lists["passoire_probability"][i],
                    "passoire_threshold": threshold,
                    "conso_5_usages_par_m2_ep": lists["ep"][i],
                    "conso_5_usages_par_m2_ep_interval": [
                        lists["low"][i],
                        lists["high"][i],
                    ],
                    "conso_5_usages_par_m2_ep_median": lists["median"][i],
                    "interval_level": self.interval_level,
                    "conso_5_usages_ep": int(lists["ep_logement"][i]),
                    "conso_5_usages_ep_interval": [
                        int(lists["low_logement"][i]),
                        int(lists["high_logement"][i]),
                    ],
                    "emission_ges_5_usages_par_m2": lists["ges"][i],
                    "etiquette_derivee": derived[i],
                    "cout_total_5_usages": int(cost) if known_cost else None,
                    "cout_total_5_usages_interval": [
                        int(lists["cost_low"][i]),
                        int(lists["cost_high"][i]),
                    ]
                    if known_cost
                    else None,
                    "features": {k: v for k, v in features.items() if k != "commune"},
                    "commune": features.get("commune"),
                    "model_version": self.version,
                }
            )
        return results
