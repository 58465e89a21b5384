"""Prediction inputs and results: parsing with French messages, explained results.

Used by the `/predict` page, its HTMX fragments and the JSON API. Inputs use the
shared names of the form, the API and the models; parsing never touches the
request, and results are plain dicts the templates and the API both render.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from functools import lru_cache
from typing import Any

from ml import features as ml_features
from webapp import location as loc
from webapp import rules
from webapp.formatting import is_blank as _blank
from webapp.formatting import parse_number as _number
from webapp.schema import fold

logger = logging.getLogger(__name__)

#: Surface range (m²) accepted, as in the store's validation.
SURFACE_RANGE = (5.0, 1000.0)

#: Oldest construction year accepted.
YEAR_MIN = 1600

#: Heating energies of the ADEME data a household can choose.
ENERGIES: tuple[str, ...] = (
    "Électricité",
    "Gaz naturel",
    "Fioul domestique",
    "Bois – Bûches",
    "Bois – Granulés (pellets) ou briquettes",
    "Réseau de Chauffage urbain",
    "GPL",
)
ELECTRICITY = ENERGIES[0]
PELLETS = ENERGIES[4]

#: French labels of the fields, for messages and the form.
LABELS_FR: dict[str, str] = {
    "surface_habitable_logement": "Surface habitable",
    "annee_construction": "Année de construction",
    "periode_construction": "Période de construction",
    "type_batiment": "Type de logement",
    "type_energie_principale_chauffage": "Énergie de chauffage",
    "type_generateur_chauffage": "Équipement de chauffage",
    "type_installation_chauffage": "Chauffage individuel ou collectif",
    "qualite_isolation_enveloppe": "Qualité de l'isolation",
    "logement_traversant": "Logement traversant",
    "protection_solaire_exterieure": "Protection solaire extérieure",
    "code_insee": "Commune",
    "code_postal": "Code postal",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "zone_climatique": "Zone climatique",
    "classe_altitude": "Classe d'altitude",
    "altitude": "Altitude",
}

#: Allowed values of the categorical inputs (the models' own lists where they exist).
CHOICES: dict[str, tuple[str, ...]] = {
    "type_batiment": ml_features.BATIMENTS,
    "periode_construction": tuple(label for label, _, _ in ml_features.PERIODES),
    "type_energie_principale_chauffage": ENERGIES,
    "type_generateur_chauffage": ml_features.GENERATOR_FAMILIES,
    "type_installation_chauffage": ml_features.INSTALLATIONS,
    "qualite_isolation_enveloppe": (
        *ml_features.ISOLATIONS,
        ml_features.UNKNOWN_ANSWER,
    ),
    "zone_climatique": rules.ZONES_CLIMATIQUES,
    "classe_altitude": rules.CLASSES_ALTITUDE,
}

#: Inputs a prediction cannot do without (besides a location and a year or period).
REQUIRED = (
    "surface_habitable_logement",
    "type_batiment",
    "type_energie_principale_chauffage",
    "type_installation_chauffage",
)

#: Boolean inputs and the spellings accepted for them.
BOOLEANS = ("logement_traversant", "protection_solaire_exterieure")
TRUE_WORDS = frozenset({"1", "true", "oui", "yes", "on", "vrai"})
FALSE_WORDS = frozenset({"0", "false", "non", "no", "off", "faux"})
UNKNOWN_WORDS = frozenset({"", "je ne sais pas", "inconnu", "null", "none"})

#: Location inputs read by `webapp.location.resolve`.
LOCATION_FIELDS = (
    "code_insee",
    "code_postal",
    "latitude",
    "longitude",
    "zone_climatique",
    "classe_altitude",
    "altitude",
)

#: Every input name the form and the API accept.
INPUT_FIELDS = (
    "surface_habitable_logement",
    "annee_construction",
    "periode_construction",
    "type_batiment",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage",
    "type_installation_chauffage",
    "qualite_isolation_enveloppe",
    "logement_traversant",
    "protection_solaire_exterieure",
    *LOCATION_FIELDS,
)


class ModelUnavailable(Exception):
    """No usable model is loaded."""


@dataclass
class ParsedInputs:
    """Model inputs, the resolved location and the French errors per field."""

    inputs: dict[str, Any] = field(default_factory=dict)
    location: loc.Location | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Tell whether the inputs can be predicted."""
        return not self.errors and self.location is not None


def current_year() -> int:
    """Return the latest construction year accepted."""
    return date.today().year


def _allowed(name: str) -> str:
    return ", ".join(CHOICES[name])


@lru_cache(maxsize=4096)
def _choice_key(value: str) -> str:
    """Return a spelling-insensitive key (case, accents, dashes, spaces)."""
    return " ".join(fold(value).replace("–", "-").split())


#: Per categorical input: key -> canonical spelling.
_CHOICE_KEYS = {
    name: {_choice_key(option): option for option in options}
    for name, options in CHOICES.items()
}


def _choice(name: str, value: Any) -> tuple[str | None, str | None]:
    """Return (value in its canonical spelling, error) for a categorical input."""
    option = _CHOICE_KEYS[name].get(_choice_key(str(value)))
    if option is not None:
        return option, None
    return None, f"Valeur inconnue « {value} » ; valeurs possibles : {_allowed(name)}."


def parse_surface(value: Any) -> tuple[float | None, str | None]:
    """Parse the surface in m² (5 to 1 000)."""
    number = _number(value)
    low, high = SURFACE_RANGE
    if number is None:
        return None, "Indiquez un nombre de m² (par exemple 72 ou 72,5)."
    if not low <= number <= high:
        return None, "La surface doit être comprise entre 5 et 1 000 m²."
    return number, None


def parse_year(value: Any) -> tuple[int | None, str | None]:
    """Parse the construction year (1600 to the current year)."""
    number = _number(value)
    last = current_year()
    if number is None or number != int(number):
        return None, f"Indiquez une année entière entre {YEAR_MIN} et {last}."
    if not YEAR_MIN <= number <= last:
        return None, f"L'année doit être comprise entre {YEAR_MIN} et {last}."
    return int(number), None


def parse_bool(value: Any) -> tuple[bool | None, str | None]:
    """Parse a yes/no answer; 'je ne sais pas' or blank is unknown."""
    if isinstance(value, bool):
        return value, None
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value), None
    text = fold(str(value)) if value is not None else ""
    if text in TRUE_WORDS:
        return True, None
    if text in FALSE_WORDS:
        return False, None
    if text in UNKNOWN_WORDS:
        return None, None
    return None, "Répondez oui, non ou je ne sais pas (true, false ou vide dans l'API)."


def parse_field(name: str, value: Any) -> tuple[Any, str | None]:
    """Parse one non-location input; blank values are (None, None)."""
    if _blank(value):
        return None, None
    if name == "surface_habitable_logement":
        return parse_surface(value)
    if name == "annee_construction":
        return parse_year(value)
    if name in BOOLEANS:
        return parse_bool(value)
    if name in CHOICES:
        parsed, error = _choice(name, value)
        if (
            name == "qualite_isolation_enveloppe"
            and parsed == ml_features.UNKNOWN_ANSWER
        ):
            return None, None
        return parsed, error
    raise KeyError(name)


def validate_field(name: str, value: Any) -> str | None:
    """Return the French message for one field on its own, or None when fine."""
    if name in REQUIRED and _blank(value):
        return "Ce champ est obligatoire."
    if name in ("code_insee", "code_postal", "latitude", "longitude", "altitude"):
        if _blank(value):
            return None
        try:
            loc.resolve({name: value, **_location_partner(name)})
        except loc.LocationError as error:
            return error.fields.get(name) or next(iter(error.fields.values()))
        return None
    if name not in INPUT_FIELDS:
        raise KeyError(name)
    return parse_field(name, value)[1]


def _location_partner(name: str) -> dict[str, Any]:
    """Return stand-in companions so one location field can be checked alone."""
    if name == "latitude":
        return {"longitude": 6.4}
    if name == "longitude":
        return {"latitude": 46.0}
    if name == "altitude":
        return {"zone_climatique": "H1c"}
    return {}


def parse_inputs(
    raw: Mapping[str, Any],
    locate: Callable[[Mapping[str, Any]], loc.Location] | None = None,
) -> ParsedInputs:
    """Parse form, query or JSON inputs into model inputs and a location.

    :param locate: resolves the location inputs (default `location.resolve`);
        batches pass a memoised one.
    """
    locate = locate or loc.resolve
    parsed = ParsedInputs()
    for name in REQUIRED:
        if _blank(raw.get(name)):
            parsed.errors[name] = "Ce champ est obligatoire."
    for name in INPUT_FIELDS:
        if name in LOCATION_FIELDS or name in parsed.errors:
            continue
        value, error = parse_field(name, raw.get(name))
        if error:
            parsed.errors[name] = error
        parsed.inputs[name] = value

    _complete_period(parsed)
    try:
        parsed.location = locate({k: raw.get(k) for k in LOCATION_FIELDS})
    except loc.LocationError as error:
        parsed.errors.update(error.fields)
    else:
        parsed.inputs.update(parsed.location.features())
    return parsed


def _complete_period(parsed: ParsedInputs) -> None:
    """Derive the period from the year, or ask for one of them."""
    year = parsed.inputs.get("annee_construction")
    period = parsed.inputs.get("periode_construction")
    if "annee_construction" in parsed.errors or "periode_construction" in parsed.errors:
        return
    if year is None and period is None:
        parsed.errors["annee_construction"] = (
            "Indiquez l'année de construction (ou, dans l'API, periode_construction)."
        )
        return
    from_year = ml_features.periode_from_year(year) if year is not None else None
    if period is not None and from_year is not None and period != from_year:
        parsed.errors["periode_construction"] = (
            f"L'année {year} n'appartient pas à la période « {period} » "
            f"(elle est dans « {from_year} »)."
        )
        return
    parsed.inputs["periode_construction"] = period or from_year


def memoised_locate() -> Callable[[Mapping[str, Any]], loc.Location]:
    """Return a location resolver that resolves each distinct location once."""
    index = loc.get_index()
    cache: dict[tuple, loc.Location | loc.LocationError] = {}

    def locate(inputs: Mapping[str, Any]) -> loc.Location:
        key = tuple(str(inputs.get(name)) for name in LOCATION_FIELDS)
        if key not in cache:
            try:
                cache[key] = loc.resolve(inputs, index)
            except loc.LocationError as error:
                cache[key] = error
        found = cache[key]
        if isinstance(found, loc.LocationError):
            raise found
        return found

    return locate


def model_inputs(parsed: ParsedInputs) -> dict[str, Any]:
    """Return the dict passed to the predictor (booleans as 0/1, missing as None)."""
    inputs = dict(parsed.inputs)
    for name in BOOLEANS:
        if inputs.get(name) is not None:
            inputs[name] = float(inputs[name])
    return inputs


def check_with_model(predictor, parsed: ParsedInputs) -> None:
    """Add the predictor's own validation messages to the parsed errors."""
    if not parsed.ok:
        return
    try:
        predictor.validate(model_inputs(parsed))
    except Exception as error:
        fields = getattr(error, "fields", None)
        if fields is None:
            raise
        parsed.errors.update({k: str(v) for k, v in fields.items()})


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class Scenario:
    """A renovation what-if: the inputs it changes."""

    key: str
    title: str
    changes: dict[str, Any]


#: The what-ifs recomputed by the models, in display order.
SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "isolation_bonne",
        "Isolation portée à « bonne »",
        {"qualite_isolation_enveloppe": "bonne"},
    ),
    Scenario(
        "isolation_tres_bonne",
        "Isolation portée à « très bonne »",
        {"qualite_isolation_enveloppe": "très bonne"},
    ),
    Scenario(
        "pompe_a_chaleur",
        "Chauffage par pompe à chaleur",
        {
            "type_generateur_chauffage": "pompe à chaleur",
            "type_energie_principale_chauffage": ELECTRICITY,
        },
    ),
    Scenario(
        "granules",
        "Chauffage au bois (granulés)",
        {
            "type_generateur_chauffage": "chaudière",
            "type_energie_principale_chauffage": PELLETS,
        },
    ),
    Scenario(
        "combinaison",
        "Isolation « très bonne » et pompe à chaleur",
        {
            "qualite_isolation_enveloppe": "très bonne",
            "type_generateur_chauffage": "pompe à chaleur",
            "type_energie_principale_chauffage": ELECTRICITY,
        },
    ),
)

_ISOLATION_RANK = {label: i for i, label in enumerate(ml_features.ISOLATIONS)}


def scenario_applies(scenario: Scenario, inputs: Mapping[str, Any]) -> str | None:
    """Return why a what-if does not apply to these inputs, or None when it does."""
    if all(inputs.get(k) == v for k, v in scenario.changes.items()):
        return "C'est déjà le cas de ce logement."
    wanted = scenario.changes.get("qualite_isolation_enveloppe")
    current = inputs.get("qualite_isolation_enveloppe")
    if (
        wanted
        and current in _ISOLATION_RANK
        and (_ISOLATION_RANK[current] > _ISOLATION_RANK[wanted])
    ):
        return "L'isolation est déjà meilleure que cela."
    return None


def label_rank(label: str) -> int:
    """Return 0 for A … 6 for G."""
    return rules.LABELS.index(label)


def compare_whatif(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict:
    """Return what a what-if changes against the current prediction."""
    label = new["etiquette_dpe"]
    kwh_saved = current["conso_5_usages_ep"] - new["conso_5_usages_ep"]
    cost_saved = _difference(current["cout_total_5_usages"], new["cout_total_5_usages"])
    delta = label_rank(current["etiquette_dpe"]) - label_rank(label)
    return {
        "etiquette_dpe": label,
        "probability": float(new["probabilities"].get(label, 0.0)),
        "conso_5_usages_par_m2_ep": new["conso_5_usages_par_m2_ep"],
        "conso_5_usages_ep": new["conso_5_usages_ep"],
        "cout_total_5_usages": new["cout_total_5_usages"],
        "kwh_saved": kwh_saved,
        "cost_saved": cost_saved,
        "classes_gained": delta,
        "worse_label": delta < 0,
        "worse_consumption": kwh_saved < 0,
    }


def _difference(before: float | None, after: float | None) -> float | None:
    """Return before - after, or None when either is unknown."""
    if before is None or after is None:
        return None
    return before - after


def whatifs(predictor, inputs: Mapping[str, Any], current: Mapping[str, Any]):
    """Recompute every applicable what-if with the models, in one batch."""
    rows, entries = [], []
    for scenario in SCENARIOS:
        reason = scenario_applies(scenario, inputs)
        entry = {"key": scenario.key, "title": scenario.title, "reason": reason}
        entries.append(entry)
        if reason is None:
            rows.append((entry, {**inputs, **scenario.changes}))

    outputs = predictor.predict_batch([row for _, row in rows]) if rows else []
    for (entry, _), output in zip(rows, outputs, strict=True):
        if isinstance(output, Exception):
            entry["reason"] = "Le modèle ne peut pas évaluer ce cas."
            logger.warning("what-if %s refused: %s", entry["key"], output)
            continue
        entry.update(compare_whatif(current, output))
    return entries


def electricity_factor_effect(inputs: Mapping[str, Any], prediction: Mapping) -> dict:
    """Return the label the home would have had with the pre-2026 factor 2.3.

    The models learn labels restated under the rules in force (factor 1.9). For a
    home heated by electricity we assume every use is electric, so the final energy
    is EP / 1.9 and the old EP is EF × 2.3; mixed energies make this an upper bound.
    """
    ep_now = float(prediction["conso_5_usages_par_m2_ep"])
    ges = float(prediction["emission_ges_5_usages_par_m2"])
    ef = ep_now / rules.ELEC_FACTOR_2026
    ep_before = ef * rules.ELEC_FACTOR_BEFORE_2026
    context = _rule_context(inputs)
    label_now = rules.etiquette_dpe(ep_now, ges, **context)
    label_before = rules.etiquette_dpe(ep_before, ges, **context)
    return {
        "ep_before": ep_before,
        "ep_now": ep_now,
        "label_before": label_before,
        "label_now": label_now,
        "changed": label_before != label_now,
    }


def _rule_context(inputs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "surface": inputs.get("surface_habitable_logement"),
        "zone_climatique": inputs.get("zone_climatique"),
        "classe_altitude": inputs.get("classe_altitude"),
        "date_dpe": date.today(),
    }


def build_result(
    predictor, parsed: ParsedInputs, today: date | None = None
) -> dict[str, Any]:
    """Predict and explain one home: label, consumption, rules, what-ifs."""
    today = today or date.today()
    inputs = model_inputs(parsed)
    prediction = predictor.predict(inputs)

    label = prediction["etiquette_dpe"]
    ep = float(prediction["conso_5_usages_par_m2_ep"])
    ges = float(prediction["emission_ges_5_usages_par_m2"])
    gap = rules.distance_to_next_class(ep, ges, **_rule_context(inputs))
    percentile, peers = loc.commune_percentile(
        parsed.location.code_insee if parsed.location else None, ep
    )
    electric = inputs.get("type_energie_principale_chauffage") == ELECTRICITY
    return {
        "prediction": prediction,
        "inputs": inputs,
        "location": parsed.location,
        "label": label,
        "probabilities": [
            (name, float(prediction["probabilities"].get(name, 0.0)), color)
            for name, color in rules.LABEL_COLORS.items()
        ],
        "gap": gap,
        "rental": rules.rental_status(label, today),
        "factor_2026": electricity_factor_effect(inputs, prediction)
        if electric
        else None,
        "percentile": percentile,
        "peers": peers,
        "whatifs": whatifs(predictor, inputs, prediction),
    }


# --------------------------------------------------------------------------- grid


def whatif_grid(
    communes: Iterable[str] = ("74010", "74056", "74281"),
) -> list[dict[str, Any]]:
    """Return a grid of plausible homes (model inputs) to audit the what-ifs."""
    index = loc.get_index()
    rows = []
    for code in communes:
        place = loc.resolve({"code_insee": code}, index).features()
        for surface in (35.0, 80.0, 140.0):
            for year in (1930, 1965, 1985, 2005, 2018):
                for batiment in ("maison", "appartement"):
                    for energy in ENERGIES[:4]:
                        for isolation in ("insuffisante", "moyenne", None):
                            rows.append(
                                {
                                    "surface_habitable_logement": surface,
                                    "annee_construction": year,
                                    "periode_construction": (
                                        ml_features.periode_from_year(year)
                                    ),
                                    "type_batiment": batiment,
                                    "type_energie_principale_chauffage": energy,
                                    "type_generateur_chauffage": None,
                                    "type_installation_chauffage": "individuel",
                                    "qualite_isolation_enveloppe": isolation,
                                    "logement_traversant": None,
                                    "protection_solaire_exterieure": None,
                                    **place,
                                }
                            )
    return rows


def whatif_grid_report(predictor, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, per what-if over a grid of homes, results better, equal or worse."""
    currents = predictor.predict_batch(rows)
    report = {
        s.key: {
            "cases": 0,
            "better_label": 0,
            "same_label": 0,
            "worse_label": 0,
            "worse_consumption": 0,
        }
        for s in SCENARIOS
    }
    pending = []
    for row, current in zip(rows, currents, strict=True):
        if isinstance(current, Exception):
            continue
        for scenario in SCENARIOS:
            if scenario_applies(scenario, row) is None:
                pending.append((scenario.key, current, {**row, **scenario.changes}))

    outputs = predictor.predict_batch([row for _, _, row in pending])
    for (key, current, _), output in zip(pending, outputs, strict=True):
        if isinstance(output, Exception):
            continue
        change = compare_whatif(current, output)
        counts = report[key]
        counts["cases"] += 1
        if change["worse_label"]:
            counts["worse_label"] += 1
        elif change["classes_gained"] > 0:
            counts["better_label"] += 1
        else:
            counts["same_label"] += 1
        counts["worse_consumption"] += bool(change["worse_consumption"])
    return {
        "homes": len(rows),
        "scenarios": report,
        "worse_label_total": sum(c["worse_label"] for c in report.values()),
        "worse_consumption_total": sum(c["worse_consumption"] for c in report.values()),
    }


def current_predictor(app=None):
    """Return the loaded predictor, or raise ModelUnavailable."""
    if app is None:
        from flask import current_app

        app = current_app
    registry = app.extensions.get("models")
    predictor = getattr(registry, "predictor", None)
    if predictor is None:
        raise ModelUnavailable("no usable model is loaded")
    return predictor
