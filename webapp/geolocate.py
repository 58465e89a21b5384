"""Coordinates for the Enedis addresses, which the Enedis file does not carry.

Each address is matched, in this order, to:

1. `adresse`: a DPE with the same normalised number, street and commune (its BAN
   point);
2. `rue`: the centre of the DPE points of the same street and commune;
3. `commune`: the centre of the commune in the communes table.

The match runs once per data load (`@aggregate("geolocation")`) and reports its
rates for the context page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from dataclasses import field

import numpy as np
import pandas as pd

from webapp import schema
from webapp.store import Snapshot
from webapp.store import aggregate

logger = logging.getLogger(__name__)

#: Geolocation precisions, best first.
PRECISIONS = ("adresse", "rue", "commune")

#: French labels of the precisions (context page, hover).
PRECISION_LABELS = {
    "adresse": "à l'adresse exacte (DPE)",
    "rue": "au centre de la rue (DPE)",
    "commune": "au centre de la commune",
    "aucune": "non localisées",
}

#: Titles of the precisions (context page table).
PRECISION_TITLES = {
    "adresse": "Adresse exacte (DPE)",
    "rue": "Centre de la rue (DPE)",
    "commune": "Centre de la commune",
    "aucune": "Non localisée",
}

#: Street-type abbreviations of the Enedis file (and common BAN variants).
STREET_TYPES = {
    "ALL": "ALLEE",
    "AV": "AVENUE",
    "AVE": "AVENUE",
    "BD": "BOULEVARD",
    "BLD": "BOULEVARD",
    "BOUL": "BOULEVARD",
    "CHE": "CHEMIN",
    "CHEM": "CHEMIN",
    "CH": "CHEMIN",
    "CHS": "CHAUSSEE",
    "CRS": "COURS",
    "ESP": "ESPLANADE",
    "FG": "FAUBOURG",
    "FBG": "FAUBOURG",
    "HAM": "HAMEAU",
    "IMP": "IMPASSE",
    "LOT": "LOTISSEMENT",
    "MTE": "MONTEE",
    "PAS": "PASSAGE",
    "PASS": "PASSAGE",
    "PL": "PLACE",
    "PLN": "PLAINE",
    "PRO": "PROMENADE",
    "PROM": "PROMENADE",
    "QU": "QUAI",
    "R": "RUE",
    "RES": "RESIDENCE",
    "RPT": "ROND POINT",
    "RTE": "ROUTE",
    "SEN": "SENTIER",
    "SQ": "SQUARE",
    "TRA": "TRAVERSE",
    "VC": "VOIE COMMUNALE",
    "VLA": "VILLA",
    "ZA": "ZONE ARTISANALE",
    "ZAC": "ZONE AMENAGEMENT CONCERTE",
    "ZI": "ZONE INDUSTRIELLE",
}

#: Words abbreviated anywhere in a street name.
WORD_ABBREVIATIONS = {
    "ST": "SAINT",
    "STE": "SAINTE",
    "GAL": "GENERAL",
    "MAL": "MARECHAL",
}

#: Articles and linking words dropped before comparing street names.
STOP_WORDS = frozenset(
    {"DE", "DU", "DES", "LA", "LE", "LES", "L", "D", "AU", "AUX", "ET", "A", "EN"}
)

#: Number suffixes (indice de répétition) in one spelling.
SUFFIXES = {"B": "BIS", "T": "TER", "Q": "QUATER", "C": "C", "BIS": "BIS", "TER": "TER"}

_NUMBER = re.compile(r"^\s*(\d+)\s*(BIS|TER|QUATER|[A-Z](?![A-Z]))?\s*(.*)$")


def _clean(text: object) -> str:
    """Upper-case ASCII words of a value ('' for missing, 'nan' or 'None')."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    value = str(text).strip()
    if value.lower() in ("nan", "none", "<na>"):
        return ""
    value = schema.fold(value).upper()
    return re.sub(r"[^A-Z0-9]+", " ", value).strip()


def normalise_street(text: object) -> str:
    """Return a street name in one comparable spelling ('Av. du Mt-Blanc' style)."""
    words = [w for w in _clean(text).split() if w.lower() != "nan"]
    if not words:
        return ""
    words[0] = STREET_TYPES.get(words[0], words[0])
    words = " ".join(words).split()
    words = [WORD_ABBREVIATIONS.get(w, w) for w in words]
    kept = [w for w in words if w not in STOP_WORDS]
    return " ".join(kept)


def normalise_number(number: object, suffix: object = None) -> str:
    """Return '12', '12 BIS'… from a number and an optional repetition index."""
    digits = _clean(number)
    match = _NUMBER.match(digits) if digits else None
    if not match:
        return ""
    value = str(int(match.group(1)))
    extra = _clean(suffix) or (match.group(2) or "")
    extra = SUFFIXES.get(extra, extra)
    return f"{value} {extra}" if extra else value


def split_address(text: object) -> tuple[str, str]:
    """Split '12 bis Rue du Pont' into ('12 BIS', 'RUE PONT')."""
    cleaned = _clean(text)
    match = _NUMBER.match(cleaned)
    if not match:
        return "", normalise_street(cleaned)
    return normalise_number(match.group(1), match.group(2)), normalise_street(
        match.group(3)
    )


def _geopoint(dpe: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Latitude and longitude of the BAN point of each DPE (NaN when absent).

    The store fills missing DPE coordinates with the commune centre; a street
    centroid must not use those, so the raw `_geopoint` is read here.
    """
    parts = dpe["_geopoint"].astype("string").str.split(",", n=1, expand=True)
    if parts.shape[1] < 2:
        nan = pd.Series(np.nan, index=dpe.index)
        return nan, nan
    return (
        pd.to_numeric(parts[0], errors="coerce"),
        pd.to_numeric(parts[1], errors="coerce"),
    )


def _map_unique(values: pd.Series, function) -> pd.Series:
    """Apply `function` once per distinct value (addresses repeat a lot)."""
    text = values.astype("string").fillna("")
    mapping = {value: function(value) for value in text.unique()}
    return text.map(mapping).astype("string")


#: A repetition index written after the number in a BAN address ('12 bis Rue…').
_ADDRESS_SUFFIX = r"^\s*\d+\s*(bis|ter|quater|[a-z])\s+\S"


def dpe_address_keys(dpe: pd.DataFrame) -> pd.DataFrame:
    """Return per DPE: commune, normalised number and street, BAN point."""
    latitude, longitude = _geopoint(dpe)
    address = dpe["adresse_ban"].astype("string").fillna("")

    # The BAN number column has no suffix: take it from the address when present.
    suffix = address.str.extract(_ADDRESS_SUFFIX, flags=re.IGNORECASE)[0]
    number_text = dpe["numero_voie_ban"].astype("string").fillna("")
    number_key = number_text + "|" + suffix.fillna("")
    numbers = _map_unique(
        number_key,
        lambda k: normalise_number(*k.split("|", 1)) if k[0:1] != "|" else "",
    )
    streets = _map_unique(dpe["nom_rue_ban"], normalise_street)

    # Without the split columns, parse the full BAN address (the slow path).
    incomplete = (numbers == "") | (streets == "")
    if incomplete.any():
        parsed = _map_unique(address[incomplete], lambda a: "|".join(split_address(a)))
        parts = parsed.str.split("|", n=1)
        numbers = numbers.mask(numbers == "", parts.str[0])
        streets = streets.mask(streets == "", parts.str[1])

    frame = pd.DataFrame(
        {
            "code_commune": dpe["code_insee_ban"].astype("string").to_numpy(),
            "numero": numbers.fillna("").to_numpy(),
            "rue": streets.fillna("").to_numpy(),
            "latitude": latitude.to_numpy(),
            "longitude": longitude.to_numpy(),
        }
    )
    return frame[frame["latitude"].notna() & frame["longitude"].notna()]


def enedis_address_keys(enedis: pd.DataFrame) -> pd.DataFrame:
    """Return per Enedis row: commune, normalised number and street."""
    number_key = (
        enedis["numero_de_voie"].astype("string").fillna("")
        + "|"
        + enedis["indice_de_repetition"].astype("string").fillna("")
    )
    numbers = _map_unique(number_key, lambda k: normalise_number(*k.split("|", 1)))
    street_key = (
        enedis["type_de_voie"].astype("string").fillna("")
        + "|"
        + enedis["libelle_de_voie"].astype("string").fillna("")
    )
    streets = _map_unique(
        street_key,
        lambda k: normalise_street(" ".join(_clean(p) for p in k.split("|"))),
    )
    parsed = _map_unique(enedis["adresse"], lambda a: "|".join(split_address(a)))
    numbers = numbers.mask(numbers == "", parsed.str.split("|", n=1).str[0])
    streets = streets.mask(streets == "", parsed.str.split("|", n=1).str[1])
    return pd.DataFrame(
        {
            "code_commune": enedis["code_commune"].astype("string").to_numpy(),
            "numero": numbers.fillna("").to_numpy(),
            "rue": streets.fillna("").to_numpy(),
        },
        index=enedis.index,
    )


@dataclass
class Geolocation:
    """Coordinates of the Enedis addresses and the match rates."""

    #: Enedis rows (same index as `store.enedis`) with latitude, longitude, precision.
    points: pd.DataFrame
    #: Distinct addresses per precision (incl. `aucune`).
    address_counts: dict[str, int]
    #: Share of distinct addresses per precision.
    address_rates: dict[str, float]
    #: Share of dwellings (latest year) per precision.
    dwelling_rates: dict[str, float]
    addresses: int
    #: Per commune code, its located Enedis rows (see `commune_addresses`).
    by_commune: dict[str, pd.DataFrame] = field(default_factory=dict)


def geolocate(
    enedis: pd.DataFrame, dpe: pd.DataFrame, communes: pd.DataFrame
) -> Geolocation:
    """Place every Enedis address: DPE address, else street centre, else commune."""
    keys = enedis_address_keys(enedis)
    dpe_keys = dpe_address_keys(dpe)

    by_address = (
        dpe_keys[dpe_keys["numero"] != ""]
        .groupby(["code_commune", "numero", "rue"], observed=True)[
            ["latitude", "longitude"]
        ]
        .mean()
    )
    by_street = (
        dpe_keys[dpe_keys["rue"] != ""]
        .groupby(["code_commune", "rue"], observed=True)[["latitude", "longitude"]]
        .median()
    )
    centres = communes.set_index("code_insee")[["latitude_centre", "longitude_centre"]]
    centres.columns = ["latitude", "longitude"]

    exact = keys.join(by_address, on=["code_commune", "numero", "rue"])
    street = keys.join(by_street, on=["code_commune", "rue"])
    commune = keys.join(centres, on="code_commune")

    has_exact = exact["latitude"].notna() & (keys["numero"] != "")
    has_street = street["latitude"].notna() & (keys["rue"] != "")
    has_commune = commune["latitude"].notna()
    precision = np.select(
        [has_exact, has_street, has_commune], list(PRECISIONS), default="aucune"
    )
    latitude = np.select(
        [has_exact, has_street, has_commune],
        [exact["latitude"], street["latitude"], commune["latitude"]],
        default=np.nan,
    )
    longitude = np.select(
        [has_exact, has_street, has_commune],
        [exact["longitude"], street["longitude"], commune["longitude"]],
        default=np.nan,
    )
    points = pd.DataFrame(
        {
            "latitude": latitude.astype("float64"),
            "longitude": longitude.astype("float64"),
            "precision": precision,
        },
        index=enedis.index,
    )
    return Geolocation(
        points=points,
        by_commune=_by_commune(enedis, points),
        **_rates(enedis, keys, points),
    )


#: Columns of the per-commune address tables.
ADDRESS_COLUMNS = (
    "annee",
    "adresse",
    "latitude",
    "longitude",
    "precision",
    "nombre_de_logements",
    "consommation_annuelle_totale_de_l_adresse_mwh",
    "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh",
)


def _address_labels(enedis: pd.DataFrame) -> pd.Series:
    """Rebuild '12 B AV DU GAL DE GAULLE' from its parts (some files write 'nan')."""
    parts = [
        enedis[column].astype("string").fillna("")
        for column in (
            "numero_de_voie",
            "indice_de_repetition",
            "type_de_voie",
            "libelle_de_voie",
        )
    ]
    rebuilt = (parts[0] + " " + parts[1] + " " + parts[2] + " " + parts[3]).str.replace(
        r"\s+", " ", regex=True
    )
    rebuilt = rebuilt.str.strip()
    return rebuilt.where(rebuilt != "", enedis["adresse"].astype("string"))


def _by_commune(enedis: pd.DataFrame, points: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Split the located rows by commune once, so a commune view is a lookup."""
    located = enedis.join(points, how="left").assign(adresse=_address_labels(enedis))
    located = located[["code_commune", *ADDRESS_COLUMNS]]
    return {
        str(code): group.drop(columns="code_commune")
        for code, group in located.groupby("code_commune", observed=True)
    }


def _rates(enedis: pd.DataFrame, keys: pd.DataFrame, points: pd.DataFrame) -> dict:
    """Match rates by distinct address and by dwellings of the latest year."""
    frame = keys.assign(
        precision=points["precision"],
        logements=enedis["nombre_de_logements"],
        annee=enedis["annee"],
    )
    distinct = frame.drop_duplicates(["code_commune", "numero", "rue"])
    counts = distinct["precision"].value_counts()
    total = int(len(distinct))
    address_counts = {p: int(counts.get(p, 0)) for p in (*PRECISIONS, "aucune")}
    address_rates = {
        p: (n / total if total else float("nan")) for p, n in address_counts.items()
    }
    latest = frame[frame["annee"] == frame["annee"].max()] if len(frame) else frame
    dwellings = latest.groupby("precision")["logements"].sum()
    all_dwellings = float(dwellings.sum())
    dwelling_rates = {
        p: (float(dwellings.get(p, 0)) / all_dwellings if all_dwellings else np.nan)
        for p in (*PRECISIONS, "aucune")
    }
    return {
        "address_counts": address_counts,
        "address_rates": address_rates,
        "dwelling_rates": dwelling_rates,
        "addresses": total,
    }


@aggregate("geolocation")
def geolocation_aggregate(snapshot: Snapshot) -> Geolocation:
    """Geolocate the Enedis addresses once per data load."""
    result = geolocate(snapshot.enedis, snapshot.dpe, snapshot.communes)
    logger.info(
        "geolocated %d Enedis addresses: %s",
        result.addresses,
        ", ".join(f"{p} {n}" for p, n in result.address_counts.items()),
    )
    return result


def commune_addresses(
    geolocation: Geolocation, code: str, annee: int | None
) -> pd.DataFrame:
    """Return the geolocated Enedis addresses of a commune for a year.

    With no year, the latest year of that commune is shown (one point per address).
    """
    rows = geolocation.by_commune.get(code)
    if rows is None:
        return pd.DataFrame(columns=list(ADDRESS_COLUMNS))
    year = annee if annee is not None else int(rows["annee"].max())
    return rows[rows["annee"] == year]
