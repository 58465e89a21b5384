"""Where a home is: resolve a commune, its climate features and address suggestions.

A location comes from a `code_insee`, a `code_postal`, a `latitude`+`longitude`
(nearest commune centre of Haute-Savoie) or an explicit `zone_climatique` +
`altitude`. The climate zone and altitude class of a commune are the modes of its
DPE when it has some (the regulatory classes), else the altitude class follows from
the commune's mean altitude. Everything searchable is precomputed once per data load.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from dataclasses import fields
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from webapp import rules
from webapp.formatting import is_blank as _blank
from webapp.store import aggregate
from webapp.store import get_store

logger = logging.getLogger(__name__)

#: Name of the precomputed index in `store.aggregates`.
INDEX_NAME = "location_index"

#: Farthest a point may lie from the nearest commune centre of 74 (km).
MAX_DISTANCE_KM = 20.0

#: Mean Earth radius (km), for the haversine distance.
EARTH_RADIUS_KM = 6371.0

#: Altitude range accepted for an explicit altitude (m).
ALTITUDE_RANGE = (0.0, 4810.0)

#: Suggestions returned by default, and the shortest useful query.
SUGGEST_LIMIT = 8
SUGGEST_MIN_CHARS = 2

#: Most DPE listed for one address or street.
KNOWN_DPE_LIMIT = 10

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


class LocationError(ValueError):
    """A location that cannot be resolved, with a French message per field."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Location:
    """A resolved location and the features the models use."""

    source: str
    code_insee: str | None
    nom_commune: str | None
    code_postal: str | None
    zone_climatique: str
    classe_altitude: str
    altitude: float | None
    densite: float | None

    def features(self) -> dict[str, Any]:
        """Return the location features in the models' input names."""
        return {
            "zone_climatique": self.zone_climatique,
            "classe_altitude": self.classe_altitude,
            "altitude": self.altitude,
            "densite": self.densite,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the location as a JSON-ready dict."""
        # Not dataclasses.asdict: its deep copies cost a tenth of a batch.
        return {name: getattr(self, name) for name in LOCATION_KEYS}


#: Fields of a Location, in order.
LOCATION_KEYS = tuple(f.name for f in fields(Location))


@dataclass
class LocationIndex:
    """Lookup tables of the communes, postal codes, addresses and their DPE."""

    communes: pd.DataFrame
    by_postal: dict[str, list[str]]
    default_zone: str | None
    addresses: pd.DataFrame
    dpe_rows_by_address: dict[str, np.ndarray]
    dpe_rows_by_street: dict[str, np.ndarray]
    commune_ep: dict[str, np.ndarray]
    commune_keys: list[str]
    address_keys: list[str]
    records: dict[str, dict[str, Any]]


@lru_cache(maxsize=65536)
def _fold_str(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", str(text))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", stripped.lower()).strip()


def fold(text: Any) -> str:
    """Return text lower-cased, without accents, punctuation folded to spaces."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return _fold_str(str(text))


def _fold_series(series: pd.Series) -> pd.Series:
    """Fold each value of a series, computing each distinct value once."""
    values = series.astype(object)
    uniques = pd.unique(values[values.notna()])
    mapping = {value: _fold_str(str(value)) for value in uniques}
    return values.map(mapping)


def _mode(series: pd.Series) -> str | None:
    """Return the most frequent non-missing value of a series, or None."""
    counts = series.dropna().astype(str).value_counts()
    return str(counts.index[0]) if len(counts) else None


def _modes_by(frame: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Return the most frequent value of `column` per `key` (ties: first seen)."""
    counts = frame.groupby([key, column], observed=True).size()
    counts = counts[counts > 0].sort_values(ascending=False, kind="stable")
    top = counts.reset_index().drop_duplicates(key)
    return top.set_index(key)[column].astype(str)


# --------------------------------------------------------------------------- index


def _commune_table(communes: pd.DataFrame, dpe: pd.DataFrame) -> pd.DataFrame:
    """Return one row per commune of 74 with its climate features."""
    table = communes[communes["dep_code"] == "74"].copy()
    altitude = table["altitude_moyenne"].fillna(
        (table["altitude_minimale"] + table["altitude_maximale"]) / 2
    )
    zone_mode = _modes_by(dpe, "code_insee_ban", "zone_climatique")
    classe_mode = _modes_by(dpe, "code_insee_ban", "classe_altitude")
    dpe_count = dpe.groupby("code_insee_ban", observed=True).size()

    frame = pd.DataFrame(
        {
            "code_insee": table["code_insee"].astype(str),
            "nom_commune": table["nom_standard"].astype(str),
            "code_postal": table["code_postal"].astype("string"),
            "codes_postaux": table["codes_postaux"].astype("string"),
            "population": pd.to_numeric(table["population"], errors="coerce"),
            "altitude": altitude.astype(float),
            "densite": pd.to_numeric(table["densite"], errors="coerce"),
            "latitude": pd.to_numeric(table["latitude_centre"], errors="coerce"),
            "longitude": pd.to_numeric(table["longitude_centre"], errors="coerce"),
        }
    ).set_index("code_insee", drop=False)
    frame["zone_climatique"] = frame.index.map(zone_mode)
    frame["classe_altitude_dpe"] = frame.index.map(classe_mode)
    frame["classe_altitude"] = frame["classe_altitude_dpe"].fillna(
        frame["altitude"].map(rules.classe_altitude_from_altitude)
    )
    frame["dpe_count"] = frame.index.map(dpe_count).fillna(0).astype(int)
    frame["key"] = [
        fold(f"{name} {codes or ''}")
        for name, codes in zip(
            frame["nom_commune"], frame["codes_postaux"], strict=True
        )
    ]
    return frame.sort_values("nom_commune", key=lambda s: s.map(fold))


def _postal_table(communes: pd.DataFrame) -> dict[str, list[str]]:
    """Return postal code -> INSEE codes, most populous first."""
    pairs: dict[str, list[tuple[float, str]]] = {}
    for row in communes.itertuples():
        codes = {str(row.code_postal or "")}
        codes.update(c.strip() for c in str(row.codes_postaux or "").split(","))
        for code in codes - {"", "<NA>", "nan"}:
            population = 0.0 if pd.isna(row.population) else float(row.population)
            pairs.setdefault(code, []).append((-population, row.code_insee))
    return {code: [insee for _, insee in sorted(v)] for code, v in pairs.items()}


def _address_table(dpe: pd.DataFrame) -> pd.DataFrame:
    """Return one row per BAN address of the DPE, with its DPE count."""
    columns = [
        "adresse_ban",
        "nom_rue_ban",
        "nom_commune_ban",
        "code_postal_ban",
        "code_insee_ban",
    ]
    frame = dpe[columns].dropna(subset=["adresse_ban", "code_insee_ban"])
    frame = frame.astype(str)
    grouped = frame.groupby(["adresse_ban", "code_insee_ban"], sort=False)
    table = grouped.first().reset_index()
    table["dpe_count"] = grouped.size().to_numpy()
    table["key"] = _fold_series(table["adresse_ban"])
    return table


def _rows_by(keys: pd.Series) -> dict[str, np.ndarray]:
    """Return key -> positional row numbers, skipping missing keys."""
    codes, uniques = pd.factorize(keys, use_na_sentinel=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    return {str(key): order[bounds[i] : bounds[i + 1]] for i, key in enumerate(uniques)}


def build_index(communes: pd.DataFrame, dpe: pd.DataFrame) -> LocationIndex:
    """Build every lookup table from the communes and the DPE."""
    table = _commune_table(communes, dpe)
    addresses = _address_table(dpe)

    address_keys = _fold_series(dpe["adresse_ban"])
    street_keys = (
        dpe["code_insee_ban"].astype(object).astype(str)
        + "|"
        + _fold_series(dpe["nom_rue_ban"])
    )
    ep = dpe[["code_insee_ban", "conso_5_usages_par_m2_ep"]].dropna()
    commune_ep = {
        str(code): np.sort(group["conso_5_usages_par_m2_ep"].to_numpy(dtype=float))
        for code, group in ep.groupby("code_insee_ban", observed=True)
    }
    return LocationIndex(
        communes=table,
        by_postal=_postal_table(table),
        default_zone=_mode(dpe["zone_climatique"]),
        addresses=addresses,
        dpe_rows_by_address=_rows_by(address_keys),
        dpe_rows_by_street=_rows_by(street_keys),
        commune_ep=commune_ep,
        commune_keys=table["key"].tolist(),
        address_keys=addresses["key"].tolist(),
        # Plain dicts: a per-request pandas row lookup costs more than a prediction.
        records=table.drop(columns="key").to_dict("index"),
    )


@aggregate(INDEX_NAME)
def _location_index(snapshot) -> LocationIndex:
    return build_index(snapshot.communes, snapshot.dpe)


def get_index() -> LocationIndex:
    """Return the index of the current data (built now if the aggregate failed)."""
    store = get_store()
    index = store.aggregates.get(INDEX_NAME)
    if index is None:
        index = build_index(store.communes, store.dpe)
        store.aggregates[INDEX_NAME] = index
    return index


# --------------------------------------------------------------------------- resolve


def _number(value: Any, name: str, errors: dict[str, str]) -> float | None:
    """Parse a number (French decimal comma accepted) or record an error."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        errors[name] = "Doit être un nombre."
        return None
    try:
        number = float(str(value).strip().replace(",", ".").replace(" ", ""))
    except ValueError:
        errors[name] = "Doit être un nombre."
        return None
    if not math.isfinite(number):
        errors[name] = "Doit être un nombre fini."
        return None
    return number


def haversine_km(lat: float, lon: float, lats: Any, lons: Any) -> np.ndarray:
    """Return the great-circle distances (km) from one point to many."""
    lat1, lon1 = math.radians(lat), math.radians(lon)
    lat2 = np.radians(np.asarray(lats, dtype=float))
    lon2 = np.radians(np.asarray(lons, dtype=float))
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def nearest_commune(index: LocationIndex, lat: float, lon: float) -> str | None:
    """Return the INSEE code of the nearest commune centre, or None if too far."""
    table = index.communes.dropna(subset=["latitude", "longitude"])
    if table.empty:
        return None
    distances = haversine_km(lat, lon, table["latitude"], table["longitude"])
    best = int(np.argmin(distances))
    if distances[best] > MAX_DISTANCE_KM:
        return None
    return str(table.index[best])


def _commune_code(
    index: LocationIndex, inputs: dict, errors: dict[str, str]
) -> tuple[str | None, str]:
    """Return the INSEE code named by the inputs and how it was found."""
    code = inputs.get("code_insee")
    if not _blank(code):
        code = str(code).strip()
        if code not in index.records:
            errors["code_insee"] = (
                "Commune inconnue : le code INSEE doit être celui d'une commune de "
                "Haute-Savoie (74001 à 74315)."
            )
            return None, "code_insee"
        return code, "code_insee"

    postal = inputs.get("code_postal")
    if not _blank(postal):
        postal = str(postal).strip()
        codes = index.by_postal.get(postal)
        if not codes:
            errors["code_postal"] = (
                "Code postal inconnu : il doit être un code postal de Haute-Savoie "
                "(74000 à 74999)."
            )
            return None, "code_postal"
        return codes[0], "code_postal"

    lat = _number(inputs.get("latitude"), "latitude", errors)
    lon = _number(inputs.get("longitude"), "longitude", errors)
    if lat is None and lon is None:
        return None, "explicite"
    if lat is None or lon is None:
        missing = "longitude" if lon is None else "latitude"
        errors.setdefault(
            missing, "Indiquez latitude et longitude ensemble (degrés décimaux WGS 84)."
        )
        return None, "coordonnees"
    if not (-90 <= lat <= 90) or not (-180 <= lon <= 180):
        errors["latitude"] = (
            "Coordonnées invalides : latitude −90 à 90, longitude −180 à 180."
        )
        return None, "coordonnees"
    code = nearest_commune(index, lat, lon)
    if code is None:
        errors["latitude"] = (
            f"Ce point est à plus de {MAX_DISTANCE_KM:.0f} km de toute commune de "
            "Haute-Savoie."
        )
        return None, "coordonnees"
    return code, "coordonnees"


def resolve(inputs: dict, index: LocationIndex | None = None) -> Location:
    """Resolve the location inputs, explicit climate values overriding the commune's.

    :raise LocationError: with a French message per faulty field.
    """
    index = index or get_index()
    errors: dict[str, str] = {}

    code, source = _commune_code(index, inputs, errors)
    zone = _explicit_zone(inputs, errors)
    classe = _explicit_classe(inputs, errors)
    altitude = _number(inputs.get("altitude"), "altitude", errors)
    if altitude is not None and not (
        ALTITUDE_RANGE[0] <= altitude <= ALTITUDE_RANGE[1]
    ):
        errors["altitude"] = "L'altitude doit être comprise entre 0 et 4 810 m."
    if errors:
        raise LocationError(errors)

    commune = index.records[code] if code is not None else None
    if commune is not None:
        altitude = altitude if altitude is not None else _float(commune["altitude"])
        zone = zone or _str(commune["zone_climatique"]) or index.default_zone
        if classe is None:
            # An edited altitude re-derives the class; otherwise the DPE mode wins.
            classe = (
                rules.classe_altitude_from_altitude(altitude)
                if not _blank(inputs.get("altitude"))
                and altitude != _float(commune["altitude"])
                else _str(commune["classe_altitude"])
            )
    else:
        classe = classe or rules.classe_altitude_from_altitude(altitude)

    _check_complete(zone, classe, code, errors)
    if errors:
        raise LocationError(errors)
    return Location(
        source=source if code is not None else "explicite",
        code_insee=code,
        nom_commune=None if commune is None else str(commune["nom_commune"]),
        code_postal=None if commune is None else _str(commune["code_postal"]),
        zone_climatique=zone,
        classe_altitude=classe,
        altitude=altitude,
        densite=None if commune is None else _float(commune["densite"]),
    )


def _check_complete(zone, classe, code, errors: dict[str, str]) -> None:
    """Record what is still missing to place the home."""
    if code is None and zone is None and classe is None:
        errors["code_insee"] = (
            "Indiquez la localisation : code_insee, code_postal, latitude et "
            "longitude, ou zone_climatique et altitude."
        )
        return
    if zone is None:
        errors["zone_climatique"] = (
            "Zone climatique manquante ; valeurs possibles : "
            + ", ".join(rules.ZONES_CLIMATIQUES)
            + "."
        )
    if classe is None:
        errors["altitude"] = (
            "Altitude manquante : indiquez l'altitude (0 à 4 810 m) ou la classe "
            "d'altitude."
        )


def _explicit_zone(inputs: dict, errors: dict[str, str]) -> str | None:
    value = inputs.get("zone_climatique")
    if _blank(value):
        return None
    try:
        return rules.normalise_zone(value)
    except ValueError:
        errors["zone_climatique"] = (
            "Zone climatique inconnue ; valeurs possibles : "
            + (", ".join(rules.ZONES_CLIMATIQUES) + ".")
        )
        return None


def _explicit_classe(inputs: dict, errors: dict[str, str]) -> str | None:
    value = inputs.get("classe_altitude")
    if _blank(value):
        return None
    try:
        return rules.normalise_classe_altitude(value)
    except ValueError:
        errors["classe_altitude"] = (
            "Classe d'altitude inconnue ; valeurs possibles : "
            + ", ".join(rules.CLASSES_ALTITUDE)
            + "."
        )
        return None


def _float(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _str(value: Any) -> str | None:
    return None if pd.isna(value) else str(value)


# --------------------------------------------------------------------------- search


def commune_choices(index: LocationIndex | None = None) -> list[tuple[str, str]]:
    """Return (code_insee, "Nom (code postal)") for every commune, by name."""
    index = index or get_index()
    return [
        (code, f"{name} ({postal})" if isinstance(postal, str) else name)
        for code, name, postal in zip(
            index.communes["code_insee"],
            index.communes["nom_commune"],
            index.communes["code_postal"]
            .astype(object)
            .where(index.communes["code_postal"].notna(), None),
            strict=True,
        )
    ]


def _matches(keys: list[str], tokens: list[str]) -> list[int]:
    """Return the positions of the keys containing every token."""
    return [i for i, key in enumerate(keys) if all(t in key for t in tokens)]


def _best(positions: list[int], keys: list[str], first: str, weight: np.ndarray):
    """Order matches: keys starting with the first token, then by weight."""
    if not positions:
        return []
    chosen = np.asarray(positions)
    starts = np.array([keys[i].startswith(first) for i in positions])
    order = np.lexsort((-weight[chosen], ~starts))
    return chosen[order].tolist()


def suggest(
    query: str, limit: int = SUGGEST_LIMIT, index: LocationIndex | None = None
) -> list[dict[str, Any]]:
    """Return communes then BAN addresses matching every word of the query."""
    tokens = fold(query).split()
    if len("".join(tokens)) < SUGGEST_MIN_CHARS:
        return []
    index = index or get_index()

    communes = index.communes
    found = _best(
        _matches(index.commune_keys, tokens),
        index.commune_keys,
        tokens[0],
        communes["population"].fillna(0).to_numpy(),
    )
    results = []
    for position in found[: max(3, limit - 5)]:
        row = communes.iloc[position]
        results.append(
            {
                "kind": "commune",
                "label": f"{row['nom_commune']} ({row['code_postal']})",
                "adresse": None,
                "code_insee": row["code_insee"],
                "nom_commune": row["nom_commune"],
                "dpe_count": int(row["dpe_count"]),
            }
        )

    addresses = index.addresses
    hits = _best(
        _matches(index.address_keys, tokens),
        index.address_keys,
        tokens[0],
        addresses["dpe_count"].to_numpy(),
    )
    for position in hits[: limit - len(results)]:
        row = addresses.iloc[position]
        results.append(
            {
                "kind": "adresse",
                "label": row["adresse_ban"],
                "adresse": row["adresse_ban"],
                "code_insee": row["code_insee_ban"],
                "nom_commune": row["nom_commune_ban"],
                "dpe_count": int(row["dpe_count"]),
            }
        )
    return results


#: DPE columns shown in the "known DPE" list and used to prefill the form.
KNOWN_DPE_COLUMNS = (
    "numero_dpe",
    "date_etablissement_dpe",
    "etiquette_dpe",
    "etiquette_ges",
    "conso_5_usages_par_m2_ep",
    "surface_habitable_logement",
    "annee_construction",
    "periode_construction",
    "type_batiment",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage_principal",
    "type_installation_chauffage",
    "qualite_isolation_enveloppe",
    "logement_traversant",
    "protection_solaire_exterieure",
    "adresse_ban",
    "code_insee_ban",
    "nom_rue_ban",
)


def known_dpe(
    adresse: str | None,
    code_insee: str | None = None,
    index: LocationIndex | None = None,
    limit: int = KNOWN_DPE_LIMIT,
) -> tuple[str | None, list[dict[str, Any]]]:
    """Return ("adresse" | "rue" | None, DPE) known at an address, else its street.

    The DPE are the most recent first.
    """
    if _blank(adresse):
        return None, []
    index = index or get_index()
    dpe = get_store().dpe

    key = fold(adresse)
    rows = index.dpe_rows_by_address.get(key)
    scope = "adresse"
    if rows is None:
        scope = "rue"
        rows = _street_rows(index, key, code_insee)
    if rows is None or not len(rows):
        return None, []
    frame = dpe.iloc[rows][list(KNOWN_DPE_COLUMNS)]
    frame = frame.sort_values("date_etablissement_dpe", ascending=False).head(limit)
    return scope, [_plain(record) for record in frame.to_dict("records")]


def _street_rows(index: LocationIndex, key: str, code_insee: str | None):
    """Return the DPE rows of the street named in a typed address."""
    match = index.addresses[index.addresses["key"] == key]
    if len(match):
        street = fold(match.iloc[0]["nom_rue_ban"])
        return index.dpe_rows_by_street.get(
            f"{match.iloc[0]['code_insee_ban']}|{street}"
        )
    if code_insee is None:
        return None
    # A typed address unknown to the DPE: look for a known street name inside it.
    for street_key, rows in index.dpe_rows_by_street.items():
        insee, _, street = street_key.partition("|")
        if insee == code_insee and street and f" {street} " in f" {key} ":
            return rows
    return None


def find_dpe(numero_dpe: str) -> dict[str, Any] | None:
    """Return one DPE by its number, with the known-DPE columns, or None."""
    dpe = get_store().dpe
    match = dpe[dpe["numero_dpe"] == numero_dpe]
    if match.empty:
        return None
    return _plain(match.iloc[0][list(KNOWN_DPE_COLUMNS)].to_dict())


def _plain(record: dict) -> dict[str, Any]:
    """Replace pandas missing values and timestamps by None and Python objects."""
    plain = {}
    for key, value in record.items():
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            plain[key] = None
        elif isinstance(value, pd.Timestamp):
            plain[key] = value.date()
        elif isinstance(value, np.generic):
            plain[key] = value.item()
        else:
            plain[key] = value
    return plain


def commune_percentile(
    code_insee: str | None, ep: float, index: LocationIndex | None = None
) -> tuple[float | None, int]:
    """Return the share of the commune's DPE with a lower kWh/m²/an, and their count."""
    if code_insee is None:
        return None, 0
    index = index or get_index()
    values = index.commune_ep.get(code_insee)
    if values is None or not len(values):
        return None, 0
    below = np.searchsorted(values, ep, side="left")
    equal = np.searchsorted(values, ep, side="right") - below
    return float((below + equal / 2) / len(values)), int(len(values))
