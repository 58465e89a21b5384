"""Model inputs: the features a household knows, derived from DPE rows or a form.

Only values a household can give (or that follow from its address) enter a model.
Nothing computed by the DPE method itself (consumptions, costs, emissions, losses,
needs, the GHG label) is a feature: `LEAKAGE_COLUMNS` lists what is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from webapp import rules
from webapp.schema import fold

#: Categorical features, in the order of the encoded array.
CATEGORICAL: tuple[str, ...] = (
    "type_batiment",
    "periode_construction",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage",
    "type_installation_chauffage",
    "qualite_isolation_enveloppe",
    "zone_climatique",
    "classe_altitude",
)

#: Numeric features, after the categorical ones in the encoded array.
NUMERIC: tuple[str, ...] = (
    "surface_habitable_logement",
    "annee_construction",
    "logement_traversant",
    "protection_solaire_exterieure",
    "altitude",
    "densite",
)

#: Every model input, in the order of the encoded array.
FEATURES: tuple[str, ...] = CATEGORICAL + NUMERIC

#: DPE outputs that must never be model inputs (prefixes and exact names).
LEAKAGE_PREFIXES: tuple[str, ...] = (
    "conso_",
    "cout_",
    "emission_",
    "deperdition",
    "besoin_",
    "ubat",
    "etiquette_",
    "classe_bilan",
    "classe_emission",
)

#: Construction periods of the ADEME data, oldest first, with their year bounds.
PERIODES: tuple[tuple[str, int, int], ...] = (
    ("avant 1948", 1600, 1947),
    ("1948-1974", 1948, 1974),
    ("1975-1977", 1975, 1977),
    ("1978-1982", 1978, 1982),
    ("1983-1988", 1983, 1988),
    ("1989-2000", 1989, 2000),
    ("2001-2005", 2001, 2005),
    ("2006-2012", 2006, 2012),
    ("2013-2021", 2013, 2021),
    ("après 2021", 2022, 9999),
)

#: Heating generator families a household knows (input `type_generateur_chauffage`).
GENERATOR_FAMILIES: tuple[str, ...] = (
    "pompe à chaleur",
    "chaudière",
    "effet joule",
    "poêle ou insert",
    "réseau de chaleur",
    "autre",
)

#: Rules mapping the DPE column `type_generateur_chauffage_principal` to a family,
#: tried in order on the accent-free lower-case text. Heat pumps first, because
#: hybrid systems ("PAC hybride ... chaudière") behave like heat pumps; district
#: heating before boilers, because "réseau" rows sometimes name the plant's boiler;
#: then boilers, stoves and inserts, and direct electric heaters (Joule effect).
GENERATOR_RULES: tuple[tuple[str, str], ...] = (
    (r"\bpac\b|pompe a chaleur", "pompe à chaleur"),
    (r"reseau de chaleur|reseau de chauffage|chauffage urbain", "réseau de chaleur"),
    (r"chaudiere", "chaudière"),
    (r"poele|insert|cuisiniere|foyer ferme|foyer ouvert", "poêle ou insert"),
    (
        r"convecteur|panneau rayonnant|radiateur electrique|plafond rayonnant"
        r"|plancher rayonnant electrique|accumulation|effet joule",
        "effet joule",
    ),
)

#: Installation types a household chooses; the DPE's "mixte" counts as collective
#: because the building's plant sets most of the consumption.
INSTALLATIONS: tuple[str, ...] = ("individuel", "collectif")

#: Building types of a dwelling ("immeuble" DPEs describe whole buildings: dropped).
BATIMENTS: tuple[str, ...] = ("maison", "appartement")

#: Envelope insulation classes, worst first; "je ne sais pas" is a missing value.
ISOLATIONS: tuple[str, ...] = ("insuffisante", "moyenne", "bonne", "très bonne")
UNKNOWN_ANSWER = "je ne sais pas"

#: Share of training rows whose optional inputs are blanked, so the models learn to
#: answer a household that gives only a period, or no generator, etc. The masks are
#: drawn with the training seed and applied to the fitting rows only.
MASK_RATES: dict[str, float] = {
    "annee_construction": 0.25,
    "type_generateur_chauffage": 0.15,
    "qualite_isolation_enveloppe": 0.10,
    "logement_traversant": 0.10,
    "protection_solaire_exterieure": 0.10,
    "densite": 0.05,
}


def generator_family(value: Any) -> str | None:
    """Return the household-known family of a DPE heating generator label."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = fold(str(value))
    if not text or text in {"nan", "<na>"}:
        return None
    if text in {fold(f) for f in GENERATOR_FAMILIES}:
        return GENERATOR_FAMILIES[[fold(f) for f in GENERATOR_FAMILIES].index(text)]
    for pattern, family in GENERATOR_RULES:
        if re.search(pattern, text):
            return family
    return "autre"


def periode_from_year(year: float | None) -> str | None:
    """Return the ADEME construction period of a year."""
    if year is None or not np.isfinite(year):
        return None
    for label, low, high in PERIODES:
        if low <= year <= high:
            return label
    return None


def normalise_periode(value: Any) -> str | None:
    """Return the ADEME spelling of a construction period (accents optional)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    folded = fold(str(value)).replace(" ", "")
    for label, _, _ in PERIODES:
        if fold(label).replace(" ", "") == folded:
            return label
    return None


def _map_unique(series: pd.Series, function) -> pd.Series:
    """Apply a scalar function once per distinct value of a column."""
    values = series.astype("object")
    uniques = pd.unique(values.dropna())
    mapping = {value: function(value) for value in uniques}
    return values.map(mapping).astype("object")


def _installation(value: Any) -> str | None:
    text = fold(str(value))
    if text.startswith("individuel"):
        return "individuel"
    if text.startswith("collectif") or text.startswith("mixte"):
        return "collectif"
    return None


def _isolation(value: Any) -> str | None:
    text = fold(str(value))
    for label in ISOLATIONS:
        if fold(label) == text:
            return label
    return None


def _batiment(value: Any) -> str | None:
    text = fold(str(value))
    return text if text in BATIMENTS else None


def _zone(value: Any) -> str | None:
    try:
        return rules.normalise_zone(value)
    except ValueError:
        return None


def _classe(value: Any) -> str | None:
    try:
        return rules.normalise_classe_altitude(value)
    except ValueError:
        return None


def frame_features(dpe: pd.DataFrame) -> pd.DataFrame:
    """Return the feature table of DPE rows (store schema), one row per DPE."""
    columns = {}
    index = dpe.index

    def column(name: str) -> pd.Series:
        if name in dpe.columns:
            return dpe[name]
        return pd.Series(np.nan, index=index, dtype="object")

    year = pd.to_numeric(column("annee_construction"), errors="coerce")
    periode = _map_unique(column("periode_construction"), normalise_periode)
    from_year = year.map(periode_from_year, na_action="ignore").astype("object")
    columns["type_batiment"] = _map_unique(column("type_batiment"), _batiment)
    columns["periode_construction"] = periode.fillna(from_year)
    columns["type_energie_principale_chauffage"] = (
        column("type_energie_principale_chauffage").astype("object").str.strip()
    )
    columns["type_generateur_chauffage"] = _map_unique(
        column("type_generateur_chauffage_principal"), generator_family
    )
    columns["type_installation_chauffage"] = _map_unique(
        column("type_installation_chauffage"), _installation
    )
    columns["qualite_isolation_enveloppe"] = _map_unique(
        column("qualite_isolation_enveloppe"), _isolation
    )
    columns["zone_climatique"] = _map_unique(column("zone_climatique"), _zone)
    columns["classe_altitude"] = _map_unique(column("classe_altitude"), _classe)
    columns["surface_habitable_logement"] = pd.to_numeric(
        column("surface_habitable_logement"), errors="coerce"
    )
    columns["annee_construction"] = year
    for name in ("logement_traversant", "protection_solaire_exterieure"):
        columns[name] = pd.to_numeric(column(name), errors="coerce")
    columns["altitude"] = pd.to_numeric(column("altitude"), errors="coerce")
    columns["densite"] = pd.to_numeric(column("densite"), errors="coerce")

    features = pd.DataFrame(columns, index=index)
    # The classe follows from the altitude when the DPE does not give it.
    from_altitude = features["altitude"].map(
        rules.classe_altitude_from_altitude, na_action="ignore"
    )
    features["classe_altitude"] = features["classe_altitude"].fillna(from_altitude)
    for name in CATEGORICAL:
        features[name] = features[name].astype("object").where(features[name].notna())
    return features[list(FEATURES)]


def mask_optional(
    features: pd.DataFrame, seed: int, rates: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Blank optional inputs on a seeded share of rows (training augmentation)."""
    rng = np.random.default_rng(seed)
    masked = features.copy()
    for name, rate in (MASK_RATES if rates is None else rates).items():
        hide = rng.random(len(masked)) < rate
        masked.loc[hide, name] = np.nan
    return masked


def is_leaky(name: str) -> bool:
    """Tell whether a column is computed by the DPE method (must not be a feature)."""
    return name.startswith(LEAKAGE_PREFIXES)


def current_year(today: date | None = None) -> int:
    """Return the year used as the upper bound of construction years."""
    return (today or date.today()).year


def harmonised_targets(dpe: pd.DataFrame) -> pd.DataFrame:
    """Return the targets of DPE rows restated under the label rules in force now.

    Two rule changes make older DPEs look worse than today's: the electricity
    factor 1.9 (from 1 January 2026) and the small-dwelling bounds (from 1 July
    2024). Older EP values are re-projected with `rules.project_ep_2026` (needs the
    final energy) and the label is recomputed with the current rules, but only when
    the recorded label agrees with the rules at the DPE's own date; otherwise the
    recorded label is kept. GHG values do not depend on either change.
    """
    ep = pd.to_numeric(dpe["conso_5_usages_par_m2_ep"], errors="coerce")
    ef = pd.to_numeric(
        dpe.get("conso_5_usages_par_m2_ef", pd.Series(np.nan, index=dpe.index)),
        errors="coerce",
    )
    ges = pd.to_numeric(dpe["emission_ges_5_usages_par_m2"], errors="coerce")
    dates = pd.to_datetime(dpe["date_etablissement_dpe"], errors="coerce")
    recorded = dpe["etiquette_dpe"].astype("object")
    surface = pd.to_numeric(dpe["surface_habitable_logement"], errors="coerce")
    zone = dpe["zone_climatique"].astype("object").where(dpe["zone_climatique"].notna())
    classe = (
        dpe["classe_altitude"].astype("object").where(dpe["classe_altitude"].notna())
    )
    zone = _map_unique(zone, _zone)
    classe = _map_unique(classe, _classe)

    old_factor = (dates < pd.Timestamp(rules.ELEC_FACTOR_DATE)) & ef.notna()
    ep_now = ep.where(~old_factor, rules.project_ep_2026(ep.to_numpy(), ef.to_numpy()))
    ep_now = ep_now.clip(lower=ef.where(old_factor))
    known = ep.notna() & ges.notna()
    then = rules.etiquette_dpe_array(
        ep.fillna(0), ges.fillna(0), surface, zone, classe, dates
    )
    now = rules.etiquette_dpe_array(
        ep_now.fillna(0), ges.fillna(0), surface, zone, classe, None
    )
    consistent = known.to_numpy() & (then == recorded.to_numpy())
    label = np.where(consistent, now, recorded.to_numpy())
    return pd.DataFrame(
        {
            "etiquette_dpe": label,
            "etiquette_dpe_enregistree": recorded.to_numpy(),
            "conso_5_usages_par_m2_ep": ep_now.to_numpy(),
            "emission_ges_5_usages_par_m2": ges.to_numpy(),
            "consistent": consistent,
        },
        index=dpe.index,
    )
