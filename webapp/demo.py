"""Deterministic generator of the synthetic demo DPE and Enedis datasets of dept 74.

The rows are invented, but they sit in the real communes of Haute-Savoie
(`webapp/datasets/communes-74.csv`) and their magnitudes are calibrated on real
aggregates of 202,829 existing DPEs of the department
(`../shared/datasets/raw/derived_74_benchmarks/`, read while tuning, never shipped).
Labels come from `webapp.rules`. Regenerate the shipped files with::

    .venv/bin/python -m webapp.demo

Every random draw goes through one seeded `numpy.random.Generator`, and the gzip
files are written with ``mtime=0``, so the same seed gives the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import logging
import math
import time
import unicodedata
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from webapp import rules
from webapp import schema

logger = logging.getLogger(__name__)

DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
COMMUNES_PATH = DATASETS_DIR / "communes-74.csv"
DPE_PATH = DATASETS_DIR / "dpe-74.csv.gz"
ENEDIS_PATH = DATASETS_DIR / "enedis-74.csv.gz"

#: Default seed (the department number) and last day covered by the demo data.
SEED = 74
REFERENCE_DATE = date(2026, 10, 31)
#: First day of the DPE 2021 method.
FIRST_DPE_DATE = date(2021, 7, 1)
#: Default number of DPE rows.
N_DPE = 25_000

#: Columns of the demo DPE table: the store's schema (ADEME keys + `source`).
DPE_COLUMNS: tuple[str, ...] = schema.DPE_COLUMNS

#: Columns of the demo Enedis table (legacy Opendatasoft keys, in the real order).
ENEDIS_COLUMNS: tuple[str, ...] = schema.ENEDIS_COLUMNS

# -- Altitude bands --------------------------------------------------------------

#: Lower edges of the altitude bands used by the real benchmarks (metres).
BAND_EDGES = (0, 600, 1200, 1800, 2500)
BAND_NAMES = ("0-600", "600-1200", "1200-1800", "1800-2500")
#: Real medians of conso_5_usages_par_m2_ep per band (stats_boxplot.csv).
BENCHMARK_MEDIAN_EP = (176.0, 191.0, 286.0, 278.0)
#: Real shares of F/G per band (stats_dpe_altitude.csv).
BENCHMARK_PASSOIRE = (0.111, 0.162, 0.269, 0.240)
#: Real DPE counts per band (stats_boxplot.csv), used to weight communes.
BENCHMARK_COUNTS = (124_595, 45_659, 25_799, 6_776)

#: Mean EP per period group and band (tableau_periode_altitude.csv).
PERIOD_GROUP_MEAN_EP = {
    "avant 1975": (276.2, 315.1, 364.6, 355.3),
    "1975-2000": (211.3, 244.7, 324.5, 305.7),
    "2001-2012": (173.3, 194.2, 243.7, 238.9),
    "après 2012": (108.8, 120.7, 150.1, 140.8),
}
#: Mean EP of all DPEs per band (stats_boxplot.csv), to turn the above into ratios.
BAND_MEAN_EP = (196.9, 217.9, 294.9, 294.4)

#: Mean EP per heating energy and band (stats_chauffage_altitude.csv).
HEATING_MEAN_EP = {
    "Électricité": (228.1, 251.2, 332.9, 334.2),
    "Gaz naturel": (169.2, 145.2, 174.3, 224.5),
    "Fioul domestique": (329.1, 323.3, 353.9, 375.5),
    "Bois": (228.9, 268.8, 292.5, 290.2),
}
#: Heating shares per band: real counts of the four benchmark energies
#: (stats_chauffage_altitude.csv); the rest of each band's DPEs is split between
#: district heating and LPG (assumption: the benchmark leaves them out).
HEATING_COUNTS = {
    "Électricité": (40_284, 21_131, 15_165, 3_537),
    "Gaz naturel": (60_896, 14_425, 4_376, 1_990),
    "Fioul domestique": (5_270, 4_124, 3_446, 604),
    "Bois": (2_257, 2_356, 1_155, 266),
}
OTHER_HEATING_SPLIT = {"Réseau de Chauffage urbain": 0.65, "GPL": 0.35}
#: EP ratio to the band mean assumed for energies without a real benchmark.
OTHER_HEATING_RATIO = {"Réseau de Chauffage urbain": 0.85, "GPL": 1.15}

#: Calibration of the synthetic model, tuned once so that a 25,000-row run meets
#: BENCHMARK_MEDIAN_EP and roughly BENCHMARK_PASSOIRE: a per-band EP multiplier and
#: the per-band spread (log-normal sigma) of the unexplained part.
BAND_EP_CALIBRATION = (0.929, 0.939, 1.040, 0.945)
BAND_NOISE_SIGMA = (0.326, 0.374, 0.280, 0.270)

#: More DPEs per inhabitant in resorts (second homes): band weights that bring the
#: population-weighted commune draw to the real band counts of the benchmarks.
BAND_COMMUNE_WEIGHT = (1.04, 0.74, 1.40, 1.70)

# -- Energy carriers (documented in webapp/datasets/README.md) -------------------

#: kgCO2eq per kWh of final energy (3CL order of magnitude; one value per carrier).
EMISSION_FACTORS = {
    "Électricité": 0.079,
    "Gaz naturel": 0.227,
    "Fioul domestique": 0.324,
    "Bois – Bûches": 0.030,
    "Bois – Granulés (pellets) ou briquettes": 0.030,
    "Réseau de Chauffage urbain": 0.100,
    "GPL": 0.272,
}
#: Energy price in EUR per kWh of final energy, consumption only (no subscription),
#: orders of magnitude of French household prices in 2024.
PRICES_EUR_PER_KWH = {
    "Électricité": 0.2516,
    "Gaz naturel": 0.110,
    "Fioul domestique": 0.120,
    "Bois – Bûches": 0.070,
    "Bois – Granulés (pellets) ou briquettes": 0.085,
    "Réseau de Chauffage urbain": 0.100,
    "GPL": 0.190,
}
#: Heating generators per energy, least efficient first, with assumed shares (no
#: real 74 breakdown was available); the most efficient go to the lowest EP.
GENERATORS: dict[str, tuple[tuple[str, float], ...]] = {
    "Électricité": (
        ("Convecteur électrique NFC, NF** et NF***", 0.40),
        ("Panneau rayonnant électrique NFC, NF** et NF***", 0.22),
        ("Radiateur électrique à accumulation", 0.05),
        ("PAC air/air", 0.13),
        ("PAC air/eau", 0.20),
    ),
    "Gaz naturel": (
        ("Chaudière gaz standard", 0.25),
        ("Chaudière gaz basse température", 0.25),
        ("Chaudière gaz à condensation", 0.50),
    ),
    "Fioul domestique": (
        ("Chaudière fioul standard", 0.75),
        ("Chaudière fioul à condensation", 0.25),
    ),
    "Bois – Bûches": (("Poêle à bois (bûche)", 0.65), ("Chaudière bois bûche", 0.35)),
    "Bois – Granulés (pellets) ou briquettes": (
        ("Poêle à granulés", 0.60),
        ("Chaudière granulés", 0.40),
    ),
    "Réseau de Chauffage urbain": (("Réseau de chaleur", 1.0),),
    "GPL": (("Chaudière GPL standard", 0.50), ("Chaudière GPL à condensation", 0.50)),
}
#: Energy of collectively heated buildings (assumed shares).
COLLECTIVE_HEATING_SHARES = {
    "Gaz naturel": 0.50,
    "Réseau de Chauffage urbain": 0.30,
    "Fioul domestique": 0.15,
    "Bois": 0.05,
}
#: Heating energy of new builds, rounded from the real 74 rows of the
#: ademe_dpe02neuf sample (gas 2,079, electricity 1,831, district heating 349, ...).
NEW_BUILD_HEATING_SHARES = {
    "Électricité": 0.40,
    "Gaz naturel": 0.45,
    "Bois": 0.03,
    "Réseau de Chauffage urbain": 0.08,
    "GPL": 0.04,
}
#: Median EP of new builds (kWh/m²/yr, RT2012/RE2020 level) and its band factors.
NEW_BUILD_MEDIAN_EP = 75.0
NEW_BUILD_BAND_FACTOR = (1.0, 1.1, 1.3, 1.3)

# -- Buildings -------------------------------------------------------------------

#: ADEME construction periods with the years they cover (existing dwellings).
PERIODS = (
    ("avant 1948", 1850, 1947),
    ("1948-1974", 1948, 1974),
    ("1975-1977", 1975, 1977),
    ("1978-1982", 1978, 1982),
    ("1983-1988", 1983, 1988),
    ("1989-2000", 1989, 2000),
    ("2001-2005", 2001, 2005),
    ("2006-2012", 2006, 2012),
    ("2013-2021", 2013, 2021),
)
PERIOD_AFTER_2021 = "après 2021"
#: Period weights of existing dwellings; resorts were mostly built 1960-1990.
PERIOD_WEIGHTS_LOW = (0.13, 0.22, 0.06, 0.08, 0.08, 0.17, 0.08, 0.11, 0.07)
PERIOD_WEIGHTS_HIGH = (0.06, 0.24, 0.10, 0.14, 0.12, 0.15, 0.06, 0.08, 0.05)
PERIOD_GROUP = {
    "avant 1948": "avant 1975",
    "1948-1974": "avant 1975",
    "1975-1977": "1975-2000",
    "1978-1982": "1975-2000",
    "1983-1988": "1975-2000",
    "1989-2000": "1975-2000",
    "2001-2005": "2001-2012",
    "2006-2012": "2001-2012",
    "2013-2021": "après 2012",
}
#: Mean envelope score per period (higher is better insulated).
PERIOD_ENVELOPE = {
    "avant 1948": -0.9,
    "1948-1974": -0.8,
    "1975-1977": -0.5,
    "1978-1982": -0.3,
    "1983-1988": -0.1,
    "1989-2000": 0.1,
    "2001-2005": 0.4,
    "2006-2012": 0.7,
    "2013-2021": 1.2,
}
QUALITIES = ("insuffisante", "moyenne", "bonne", "très bonne")
#: Envelope-score cut points between the four qualities.
QUALITY_CUTS = (-0.6, 0.3, 1.1)
#: EP elasticity to the envelope score around its period mean.
ENVELOPE_EFFECT = 0.22
#: Share of missing values in each insulation column, as in real extracts.
QUALITY_MISSING = 0.03

STREET_TYPES = (
    ("Rue", 0.35, ("RUE", "RUE")),
    ("Chemin", 0.18, ("CHE", "CHEMIN")),
    ("Route", 0.15, ("RTE", "ROUTE")),
    ("Impasse", 0.10, ("IMP", "IMPASSE")),
    ("Avenue", 0.09, ("AV", "AVENUE")),
    ("Allée", 0.06, ("ALL", "ALLEE")),
    ("Place", 0.04, ("PL", "PLACE")),
    ("Montée", 0.03, ("MTE", "MONTEE")),
)
#: Share of Enedis street types written abbreviated (the real file mixes both).
ENEDIS_ABBREVIATED_SHARE = 0.6
STREET_NAMES = (
    "des Alpes",
    "du Lac",
    "de la Mairie",
    "du Mont-Blanc",
    "des Écoles",
    "de l'Église",
    "du Stade",
    "des Vergers",
    "de la Gare",
    "du Moulin",
    "des Prés",
    "des Tilleuls",
    "des Fleurs",
    "du Château",
    "de la Fontaine",
    "des Jardins",
    "du Marché",
    "de la Poste",
    "du Pont",
    "des Sorbiers",
    "des Érables",
    "des Chalets",
    "du Salève",
    "des Aravis",
    "du Semnoz",
    "de la Tournette",
    "de Genève",
    "de la Plage",
    "du Bourg",
    "des Crêts",
    "des Granges",
    "de la Forêt",
    "des Noyers",
    "des Cerisiers",
    "du Belvédère",
    "du Col",
    "des Marais",
    "des Pêcheurs",
    "de la Chapelle",
    "du Lavoir",
    "des Rochers",
    "du Clos",
    "de Savoie",
    "du Léman",
    "des Glières",
    "Jean Moulin",
    "Victor Hugo",
    "du Général de Gaulle",
    "de la Libération",
    "du 8 Mai 1945",
    "Louis Pasteur",
    "des Sapins",
    "de la Scierie",
    "des Mélèzes",
    "des Gentianes",
    "des Edelweiss",
    "des Myrtilles",
    "du Verger",
    "des Bleuets",
    "de la Croix",
)
#: Extra street names used only for Enedis addresses that match no DPE street.
ENEDIS_ONLY_STREET_NAMES = (
    "des Primevères",
    "des Coquelicots",
    "du Torrent",
    "des Alpages",
    "du Replat",
)
IRIS_NAMES = ("Centre", "Nord", "Sud", "Est", "Ouest", "Gare", "Plaine", "Coteaux")
#: Mean number of DPEs per collective building address.
DPE_PER_BUILDING = 3.5
#: Spread of buildings around their street position, and km per degree of latitude.
BUILDING_JITTER_KM = 0.08
KM_PER_DEGREE = 111.2

# -- Enedis ----------------------------------------------------------------------

ENEDIS_YEARS = tuple(range(2018, 2025))
#: Year factor on electricity use (synthetic: mild 2020, cold 2021, 2022-23
#: sobriety), applied to every address and commune.
ENEDIS_YEAR_FACTOR = {
    2018: 1.00,
    2019: 1.00,
    2020: 0.97,
    2021: 1.04,
    2022: 0.93,
    2023: 0.92,
    2024: 0.94,
}
#: Addresses per 25,000 DPE rows, and the split matched / street only / unmatched.
ENEDIS_ADDRESSES_PER_25K = 650
ENEDIS_MATCH_SHARE = (0.72, 0.20, 0.08)
#: Share of address-years dropped to mimic gaps in the real series.
ENEDIS_GAP_SHARE = 0.04
#: Minimum number of dwellings for an address to be published by Enedis.
ENEDIS_MIN_DWELLINGS = 10


# -- Lambert-93 ------------------------------------------------------------------

_GRS80_A = 6_378_137.0
_GRS80_F = 1 / 298.257222101
_GRS80_E = math.sqrt(2 * _GRS80_F - _GRS80_F**2)
_L93_PHI1 = math.radians(44.0)
_L93_PHI2 = math.radians(49.0)
_L93_PHI0 = math.radians(46.5)
_L93_LAMBDA0 = math.radians(3.0)
_L93_X0 = 700_000.0
_L93_Y0 = 6_600_000.0


def _lcc_m(phi: np.ndarray | float) -> np.ndarray | float:
    """Return the ellipsoid parallel radius factor m(phi)."""
    return np.cos(phi) / np.sqrt(1 - (_GRS80_E * np.sin(phi)) ** 2)


def _lcc_t(phi: np.ndarray | float) -> np.ndarray | float:
    """Return the conformal latitude function t(phi)."""
    e_sin = _GRS80_E * np.sin(phi)
    return np.tan(np.pi / 4 - phi / 2) / ((1 - e_sin) / (1 + e_sin)) ** (_GRS80_E / 2)


_L93_N = (np.log(_lcc_m(_L93_PHI1)) - np.log(_lcc_m(_L93_PHI2))) / (
    np.log(_lcc_t(_L93_PHI1)) - np.log(_lcc_t(_L93_PHI2))
)
_L93_F = _lcc_m(_L93_PHI1) / (_L93_N * _lcc_t(_L93_PHI1) ** _L93_N)
_L93_RHO0 = _GRS80_A * _L93_F * _lcc_t(_L93_PHI0) ** _L93_N


def lambert93(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project WGS84/RGF93 degrees to Lambert-93 (EPSG:2154) metres."""
    phi = np.radians(np.asarray(lat, dtype=float))
    theta = _L93_N * (np.radians(np.asarray(lon, dtype=float)) - _L93_LAMBDA0)
    rho = _GRS80_A * _L93_F * _lcc_t(phi) ** _L93_N
    return _L93_X0 + rho * np.sin(theta), _L93_Y0 + _L93_RHO0 - rho * np.cos(theta)


# -- Helpers ---------------------------------------------------------------------


def _strip_accents(text: str) -> str:
    """Return text without diacritics."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def enedis_libelle(street_name: str) -> str:
    """Return a street name (without its type) as Enedis writes it."""
    plain = _strip_accents(street_name).upper()
    for mark in ("-", "'", "’"):
        plain = plain.replace(mark, " ")
    return " ".join(plain.split())


def altitude_band(altitude: np.ndarray) -> np.ndarray:
    """Return the benchmark band index (0..3) of altitudes in metres."""
    return np.clip(np.searchsorted(BAND_EDGES, altitude, side="right") - 1, 0, 3)


def prepare_communes(communes: pd.DataFrame) -> pd.DataFrame:
    """Return the communes with a usable altitude, band and DPE weight."""
    frame = communes.copy()
    frame["code_insee"] = frame["code_insee"].astype(str).str.zfill(5)
    frame["code_postal"] = frame["code_postal"].astype(str).str.zfill(5)
    frame["epci_code"] = frame["epci_code"].astype(str).str.replace(".0", "")
    # The communes file writes missing altitudes as 0.0.
    altitudes = {}
    for column in ("altitude_moyenne", "altitude_minimale", "altitude_maximale"):
        values = frame[column].astype(float)
        altitudes[column] = values.where(values > 0)
    altitude = altitudes["altitude_moyenne"].fillna(
        (altitudes["altitude_minimale"] + altitudes["altitude_maximale"]) / 2
    )
    missing = altitude.isna().to_numpy()
    if missing.any():
        # Fall back on the mean of the five nearest communes with an altitude.
        lat = frame["latitude_centre"].to_numpy(dtype=float)
        lon = frame["longitude_centre"].to_numpy(dtype=float)
        known = np.flatnonzero(~missing)
        for row in np.flatnonzero(missing):
            distance = (lat[known] - lat[row]) ** 2 + (lon[known] - lon[row]) ** 2
            nearest = known[np.argsort(distance)[:5]]
            altitude.iloc[row] = altitude.iloc[nearest].mean()
    frame["altitude"] = altitude.to_numpy(dtype=float)
    frame["band"] = altitude_band(frame["altitude"].to_numpy())
    frame["classe_altitude"] = [
        rules.classe_altitude_from_altitude(a) for a in frame["altitude"]
    ]
    weight = frame["population"].astype(float).clip(lower=50)
    frame["weight"] = weight * np.take(BAND_COMMUNE_WEIGHT, frame["band"])
    return frame.reset_index(drop=True)


def _random_dates(
    rng: np.random.Generator, n: int, start: date, end: date, growth: float
) -> np.ndarray:
    """Draw n dates in [start, end] with a density rising linearly by `growth`."""
    u = rng.random(n)
    # Inverse CDF of the density (1 + growth * t) on [0, 1].
    t = (np.sqrt(1 + growth * u * (2 + growth)) - 1) / growth
    span = (end - start).days
    days = np.floor(t * (span + 1)).clip(0, span).astype("int64")
    return np.datetime64(start, "D") + days


def _qualities(score: np.ndarray) -> np.ndarray:
    """Map envelope scores to the four ADEME insulation qualities."""
    return np.array(QUALITIES, dtype=object)[np.searchsorted(QUALITY_CUTS, score)]


def _with_missing(
    rng: np.random.Generator, values: np.ndarray, share: float
) -> np.ndarray:
    """Blank a random share of values, as real extracts have."""
    values = values.copy()
    values[rng.random(len(values)) < share] = None
    return values


def _choose(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """Draw one column index per row of a (rows, options) probability matrix."""
    cumulative = probabilities.cumsum(axis=1)
    cumulative /= cumulative[:, -1:]
    return (rng.random((len(probabilities), 1)) > cumulative).sum(axis=1)


# -- Addresses -------------------------------------------------------------------


def _commune_streets(
    rng: np.random.Generator, population: float
) -> tuple[list[str], np.ndarray]:
    """Return a commune's street names and their 4-digit BAN street ids."""
    count = int(np.clip(round(6 + math.sqrt(population) / 3), 6, 120))
    type_names = [t[0] for t in STREET_TYPES]
    type_weights = np.array([t[1] for t in STREET_TYPES])
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        street_type = type_names[_choose(rng, type_weights[None, :])[0]]
        name = f"{street_type} {STREET_NAMES[rng.integers(len(STREET_NAMES))]}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    ids = rng.choice(np.arange(1, 10_000), size=count, replace=False)
    return names, ids


def _addresses(
    rng: np.random.Generator,
    communes: pd.DataFrame,
    commune_idx: np.ndarray,
    is_house: np.ndarray,
) -> pd.DataFrame:
    """Place every DPE at an address: one per house, shared in collective buildings."""
    parts = []
    dpe_index = np.arange(len(commune_idx))
    for c in np.unique(commune_idx):
        rows = dpe_index[commune_idx == c]
        houses = rows[is_house[rows]]
        flats = rows[~is_house[rows]]
        n_buildings = (
            max(1, math.ceil(len(flats) / DPE_PER_BUILDING)) if len(flats) else 0
        )
        names, ids = _commune_streets(rng, float(communes.at[c, "population"]))
        street_weight = 1 / np.arange(1, len(names) + 1) ** 0.7
        street_weight /= street_weight.sum()

        # Unique (street, number) pairs: buildings first, then houses.
        needed = n_buildings + len(houses)
        pairs = np.empty((0, 2), dtype=int)
        while len(pairs) < needed:
            extra = needed - len(pairs) + 16
            street = rng.choice(len(names), size=extra, p=street_weight)
            number = rng.integers(1, 160 + 4 * needed // len(names), size=extra)
            pairs = np.unique(
                np.concatenate([pairs, np.column_stack([street, number])]), axis=0
            )
        pairs = pairs[rng.permutation(len(pairs))[:needed]]

        # Flats go to buildings with a probability rising with building size.
        size = rng.lognormal(np.log(8), 0.8, n_buildings)
        building_of_flat = (
            rng.choice(n_buildings, size=len(flats), p=size / size.sum())
            if len(flats)
            else np.empty(0, dtype=int)
        )
        flat_mask = ~is_house[rows]
        address_of_row = np.empty(len(rows), dtype=int)
        address_of_row[flat_mask] = building_of_flat
        address_of_row[~flat_mask] = n_buildings + np.arange(len(houses))

        chosen = pairs[address_of_row]
        parts.append(
            pd.DataFrame(
                {
                    "row": rows,
                    "commune": c,
                    "address_key": c * 1_000_000 + address_of_row,
                    "street": np.array(names, dtype=object)[chosen[:, 0]],
                    "street_id": ids[chosen[:, 0]],
                    "street_rank": chosen[:, 0],
                    "number": chosen[:, 1],
                    "collective": address_of_row < n_buildings,
                }
            )
        )
    return pd.concat(parts).sort_values("row").reset_index(drop=True)


# -- DPE -------------------------------------------------------------------------


def _dwellings(
    rng: np.random.Generator, com: pd.DataFrame, n: int, reference_date: date
) -> dict[str, np.ndarray]:
    """Draw commune, type, address and building properties of each DPE."""
    commune_idx = rng.choice(len(com), size=n, p=com["weight"] / com["weight"].sum())
    density = com["densite"].to_numpy(dtype=float)[commune_idx]
    band = com["band"].to_numpy()[commune_idx]
    house_share = np.clip(0.62 - 0.12 * np.log10(np.maximum(density, 1)), 0.1, 0.55)
    house_share = np.where(band >= 2, house_share * 0.5, house_share)
    type_draw = rng.random(n)
    type_batiment = np.where(
        type_draw < house_share,
        "maison",
        np.where(type_draw > 0.985, "immeuble", "appartement"),
    ).astype(object)
    is_house = type_batiment == "maison"
    addr = _addresses(rng, com, commune_idx, is_house)
    keys, address_idx = np.unique(addr["address_key"].to_numpy(), return_inverse=True)
    n_addr = len(keys)

    # Per-address properties, shared by every DPE of a building.
    addr_band = np.zeros(n_addr, dtype=int)
    addr_band[address_idx] = band
    addr_collective = np.zeros(n_addr, dtype=bool)
    addr_collective[address_idx] = addr["collective"].to_numpy()
    addr_new = rng.random(n_addr) < np.where(addr_collective, 0.115, 0.06)
    period_weights = np.where(
        (addr_band >= 2)[:, None],
        np.array(PERIOD_WEIGHTS_HIGH)[None, :],
        np.array(PERIOD_WEIGHTS_LOW)[None, :],
    )
    addr_period = _choose(rng, period_weights)
    first = np.array([p[1] for p in PERIODS])[addr_period]
    last = np.array([p[2] for p in PERIODS])[addr_period]
    # Older dwellings cluster near the end of their period (few 19th-century ones).
    addr_year = np.round(last - (last - first) * rng.random(n_addr) ** 1.6)
    addr_new_year = rng.integers(2020, reference_date.year + 1, n_addr)
    addr_envelope = np.array([PERIOD_ENVELOPE[p[0]] for p in PERIODS])[addr_period]
    addr_envelope_noise = rng.normal(0, 0.6, n_addr)
    addr_collective_heating = addr_collective & (rng.random(n_addr) < 0.35)
    addr_lat_jitter = rng.normal(0, 1, n_addr)
    addr_lon_jitter = rng.normal(0, 1, n_addr)

    # Back to one value per DPE; new builds get a recent period and year.
    is_new = addr_new[address_idx]
    new_year = addr_new_year[address_idx]
    periode = np.array([p[0] for p in PERIODS], dtype=object)[addr_period]
    periode = np.where(
        is_new,
        np.where(new_year <= 2021, "2013-2021", PERIOD_AFTER_2021),
        periode[address_idx],
    )
    return {
        "commune_idx": commune_idx,
        "band": band,
        "type_batiment": type_batiment,
        "is_house": is_house,
        "immeuble": type_batiment == "immeuble",
        "street": addr["street"].to_numpy(dtype=object),
        "street_id": addr["street_id"].to_numpy(),
        "street_rank": addr["street_rank"].to_numpy(),
        "number": addr["number"].to_numpy(),
        "is_new": is_new,
        "new_year": new_year,
        "periode": periode,
        "annee": np.where(is_new, new_year, addr_year[address_idx]).astype(float),
        "envelope_mean": np.where(is_new, 2.0, addr_envelope[address_idx]),
        "envelope_building": addr_envelope_noise[address_idx],
        "collective_heating": addr_collective_heating[address_idx] & ~is_house,
        "lat_jitter": addr_lat_jitter[address_idx],
        "lon_jitter": addr_lon_jitter[address_idx],
        "address_idx": address_idx,
        "n_addr": np.array(n_addr),
    }


def _dates(
    rng: np.random.Generator, rows: dict[str, np.ndarray], reference_date: date
) -> dict[str, np.ndarray]:
    """Draw the three DPE dates (datetime64[D])."""
    n = len(rows["band"])
    new_year = rows["new_year"]
    # Existing-dwelling DPEs grow over time; new-build DPEs follow completion.
    date_etab = _random_dates(rng, n, FIRST_DPE_DATE, reference_date, growth=1.2)
    new_start = np.maximum(
        (new_year - 1970).astype("datetime64[Y]").astype("datetime64[D]"),
        np.datetime64(FIRST_DPE_DATE, "D"),
    )
    new_end = np.minimum(
        (new_year - 1970 + 2).astype("datetime64[Y]").astype("datetime64[D]")
        - np.timedelta64(1, "D"),
        np.datetime64(reference_date, "D"),
    )
    new_span = (new_end - new_start).astype(int) + 1
    new_dates = new_start + np.floor(rng.random(n) * new_span).astype(int)
    date_etab = np.where(rows["is_new"], new_dates, date_etab)

    last_day = np.datetime64(reference_date, "D")
    date_reception = np.minimum(
        date_etab + rng.choice(4, size=n, p=(0.5, 0.3, 0.15, 0.05)), last_day
    )
    modified = rng.random(n) < 0.2
    date_modif = np.minimum(
        date_reception + np.where(modified, rng.integers(1, 400, n), 0), last_day
    )
    return {
        "date_etab": date_etab,
        "date_reception": date_reception,
        "date_modif": date_modif,
    }


def _surfaces(rng: np.random.Generator, rows: dict[str, np.ndarray]) -> np.ndarray:
    """Draw living areas: studios common in resorts, whole buildings large."""
    n = len(rows["band"])
    flat_median = np.take((55.0, 50.0, 42.0, 38.0), rows["band"])
    surface = np.where(
        rows["is_house"],
        rng.lognormal(np.log(115), 0.32, n).clip(45, 320),
        rng.lognormal(np.log(flat_median), 0.45, n).clip(9, 160),
    )
    # Whole-building DPEs stay under the store's 1,000 m² plausibility limit.
    building = rng.lognormal(np.log(600), 0.35, n).clip(250, 990)
    return np.where(rows["immeuble"], building, surface).round(1)


def _heating_energy(
    rng: np.random.Generator, rows: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the heating energy group and ADEME energy label of each DPE."""
    n = len(rows["band"])
    energies = [*HEATING_COUNTS, *OTHER_HEATING_SPLIT]
    counts = np.array([HEATING_COUNTS[e] for e in HEATING_COUNTS], dtype=float)
    rest = np.array(BENCHMARK_COUNTS, dtype=float) - counts.sum(axis=0)
    counts = np.vstack([counts, *[rest * s for s in OTHER_HEATING_SPLIT.values()]])
    probabilities = (counts / counts.sum(axis=0)).T
    row_energy = _choose(rng, probabilities[rows["band"]])

    # Collectively heated buildings share one energy.
    collective_energy = [energies.index(e) for e in COLLECTIVE_HEATING_SHARES]
    collective_pick = _choose(
        rng,
        np.tile(list(COLLECTIVE_HEATING_SHARES.values()), (int(rows["n_addr"]), 1)),
    )
    addr_energy = np.array(collective_energy)[collective_pick]
    energy_idx = np.where(
        rows["collective_heating"], addr_energy[rows["address_idx"]], row_energy
    )
    new_shares = [NEW_BUILD_HEATING_SHARES.get(e, 0.0) for e in energies]
    new_energy = _choose(rng, np.tile(new_shares, (n, 1)))
    energy_idx = np.where(rows["is_new"], new_energy, energy_idx)
    group = np.array(energies, dtype=object)[energy_idx]

    pellets = rng.random(n) < np.where(rows["is_new"], 1.0, 0.45)
    energy = np.where(
        group == "Bois",
        np.where(pellets, "Bois – Granulés (pellets) ou briquettes", "Bois – Bûches"),
        group,
    )
    return group, energy


def _energy(
    rng: np.random.Generator,
    rows: dict[str, np.ndarray],
    surface: np.ndarray,
    date_etab: np.ndarray,
) -> dict[str, np.ndarray]:
    """Draw consumption, emissions, costs and heating system of each DPE."""
    n = len(rows["band"])
    band = rows["band"]
    is_new = rows["is_new"]
    group, energy = _heating_energy(rng, rows)
    envelope_resid = rows["envelope_building"] + rng.normal(0, 0.45, n)
    envelope = rows["envelope_mean"] + envelope_resid

    # Primary energy per m² at factor 2.3, log-normal around the benchmarks.
    groups = list(PERIOD_GROUP_MEAN_EP)
    group_table = np.array([PERIOD_GROUP_MEAN_EP[g] for g in groups])
    group_of_period = {p: groups.index(g) for p, g in PERIOD_GROUP.items()}
    group_idx = (
        pd.Series(rows["periode"])
        .map(group_of_period)
        .fillna(len(groups) - 1)
        .to_numpy(int)
    )
    band_mean = np.take(BAND_MEAN_EP, band)
    period_ratio = group_table[group_idx, band] / band_mean
    heating_ratio = np.ones(n)
    for name, means in HEATING_MEAN_EP.items():
        mask = group == name
        heating_ratio[mask] = np.take(means, band[mask]) / band_mean[mask]
    for name, ratio in OTHER_HEATING_RATIO.items():
        heating_ratio[group == name] = ratio
    sigma = np.take(BAND_NOISE_SIGMA, band)
    noise = rng.normal(0, 1, n) * sigma
    small = np.clip((60 / np.where(rows["immeuble"], 60, surface)) ** 0.2, 0.85, 1.5)
    type_factor = np.where(rows["is_house"], 1.05, 0.96)
    log_ep = (
        np.log(band_mean * period_ratio * heating_ratio * small * type_factor)
        + np.log(np.take(BAND_EP_CALIBRATION, band))
        - ENVELOPE_EFFECT * envelope_resid
        + noise
        # Centre the log-normal terms so the ratios above stay ratios of means.
        - 0.5 * (sigma**2 + ENVELOPE_EFFECT**2 * 0.6)
    )
    new_log_ep = (
        np.log(NEW_BUILD_MEDIAN_EP)
        + np.log(np.take(NEW_BUILD_BAND_FACTOR, band))
        + rng.normal(0, 0.25, n)
    )
    ep_23 = np.exp(np.where(is_new, new_log_ep, log_ep)).clip(15, 990)

    # Final energy by carrier: the electric part of EP is divided by the factor.
    electric_heating = energy == "Électricité"
    electric_dhw = rng.random(n) < np.where(
        np.isin(group, ["Fioul domestique", "Bois"]), 0.5, 0.0
    )
    share_elec = np.where(electric_heating, 1.0, np.where(electric_dhw, 0.30, 0.10))
    ef_elec = ep_23 * share_elec / rules.ELEC_FACTOR_BEFORE_2026
    ef_other = ep_23 * (1 - share_elec)
    factor = np.where(
        date_etab >= np.datetime64(rules.ELEC_FACTOR_DATE, "D"),
        rules.ELEC_FACTOR_2026,
        rules.ELEC_FACTOR_BEFORE_2026,
    )
    emission = pd.Series(energy).map(EMISSION_FACTORS).to_numpy(float)
    price = pd.Series(energy).map(PRICES_EUR_PER_KWH).to_numpy(float)
    elec_price = PRICES_EUR_PER_KWH["Électricité"]
    heating_share = rng.uniform(0.55, 0.8, n)
    heating_cost = heating_share * np.where(
        electric_heating, ef_elec * elec_price, ef_other * price
    )

    # Heating generator: efficient systems where the envelope-adjusted EP is low.
    efficiency = (
        -noise / sigma + 0.5 * (envelope - rows["envelope_mean"]) + 2.0 * is_new
    )
    generator = np.empty(n, dtype=object)
    for name, options in GENERATORS.items():
        mask = energy == name
        if not mask.any():
            continue
        scores = efficiency[mask] + rng.normal(0, 1, mask.sum())
        labels = np.array([label for label, _ in options], dtype=object)
        cumulative = np.cumsum([share for _, share in options])
        cuts = np.quantile(scores, cumulative[:-1] / cumulative[-1])
        generator[mask] = labels[np.searchsorted(cuts, scores)]

    return {
        "ep": (ef_elec * factor + ef_other).round(1),
        "ef": (ef_elec + ef_other).round(1),
        "ges": (ef_elec * EMISSION_FACTORS["Électricité"] + ef_other * emission).round(
            1
        ),
        "cost": ef_elec * elec_price + ef_other * price,
        "heating_cost": heating_cost,
        "energy": energy,
        "generator": generator,
        "envelope": envelope,
    }


def _location(
    com: pd.DataFrame, rows: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Return latitude and longitude: commune centre, street and building offsets."""
    idx = rows["commune_idx"]
    lat0 = com["latitude_centre"].to_numpy(dtype=float)[idx]
    lon0 = com["longitude_centre"].to_numpy(dtype=float)[idx]
    spread_km = np.sqrt(com["superficie_km2"].to_numpy(dtype=float))[idx] / 5
    rank = rows["street_rank"]
    # Golden-angle spiral: each street of a commune gets its own direction.
    street_angle = (rank * 2.399963) % (2 * np.pi)
    street_radius = spread_km * np.sqrt((rank % 17) / 17)
    north_km = (
        street_radius * np.sin(street_angle) + BUILDING_JITTER_KM * rows["lat_jitter"]
    )
    east_km = (
        street_radius * np.cos(street_angle) + BUILDING_JITTER_KM * rows["lon_jitter"]
    )
    lat = lat0 + north_km / KM_PER_DEGREE
    lon = lon0 + east_km / (KM_PER_DEGREE * np.cos(np.radians(lat0)))
    return lat, lon


def generate_dpe(
    communes: pd.DataFrame,
    n: int = N_DPE,
    seed: int = SEED,
    reference_date: date = REFERENCE_DATE,
    scale: float = 1.0,
) -> pd.DataFrame:
    """Return `n * scale` synthetic DPE rows of dept 74 with ADEME column names."""
    n = int(round(n * scale))
    if n < 1:
        raise ValueError(f"n * scale must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    com = prepare_communes(communes)

    rows = _dwellings(rng, com, n, reference_date)
    dates = _dates(rng, rows, reference_date)
    surface = _surfaces(rng, rows)
    energy = _energy(rng, rows, surface, dates["date_etab"])
    installation = np.where(
        rows["collective_heating"], "collectif", "individuel"
    ).astype(object)
    mixed = (~rows["is_house"]) & (rng.random(n) < 0.02)
    installation[mixed] = "mixte (collectif-individuel)"
    installation[rows["immeuble"] & rows["collective_heating"]] = "collectif"
    lat, lon = _location(com, rows)
    x, y = lambert93(lat, lon)
    numero_dpe, replaced = _dpe_numbers(rng, dates["date_reception"], rows["is_new"])

    idx = rows["commune_idx"]
    insee = com["code_insee"].to_numpy(dtype=object)[idx]
    postal = com["code_postal"].to_numpy(dtype=object)[idx]
    commune_name = com["nom_standard"].to_numpy(dtype=object)[idx]
    number_text = rows["number"].astype(str).astype(object)
    zone = np.full(n, "H1c", dtype=object)
    classe = com["classe_altitude"].to_numpy(dtype=object)[idx]
    ep, ges = energy["ep"], energy["ges"]
    label_context = (surface, zone, classe, dates["date_etab"])
    envelope = energy["envelope"]
    qualities = {
        "qualite_isolation_enveloppe": _qualities(envelope),
        "qualite_isolation_murs": _qualities(envelope + rng.normal(0, 0.5, n)),
        "qualite_isolation_menuiseries": _qualities(envelope + rng.normal(0, 0.6, n)),
        "qualite_isolation_plancher_bas": _qualities(envelope + rng.normal(0, 0.7, n)),
    }
    qualities = {
        k: _with_missing(rng, v, QUALITY_MISSING) for k, v in qualities.items()
    }

    frame = pd.DataFrame(
        {
            "numero_dpe": numero_dpe,
            "numero_dpe_remplace": replaced,
            "date_etablissement_dpe": _iso(dates["date_etab"]),
            "date_reception_dpe": _iso(dates["date_reception"]),
            "date_derniere_modification_dpe": _iso(dates["date_modif"]),
            "etiquette_dpe": rules.etiquette_dpe_array(ep, ges, *label_context),
            "etiquette_ges": rules.classe_ges_array(ges, *label_context),
            "conso_5_usages_par_m2_ep": ep,
            "conso_5_usages_par_m2_ef": energy["ef"],
            "conso_5_usages_ep": (ep * surface).round(1),
            "conso_5_usages_ef": (energy["ef"] * surface).round(1),
            "emission_ges_5_usages_par_m2": ges,
            "emission_ges_5_usages": (ges * surface).round(1),
            "cout_total_5_usages": (energy["cost"] * surface).round(1),
            "cout_chauffage": (energy["heating_cost"] * surface).round(1),
            "surface_habitable_logement": surface,
            "annee_construction": rows["annee"],
            "type_batiment": rows["type_batiment"],
            "periode_construction": rows["periode"],
            "type_energie_principale_chauffage": energy["energy"],
            "type_generateur_chauffage_principal": energy["generator"],
            "type_installation_chauffage": installation,
            **qualities,
            "logement_traversant": (
                rng.random(n) < np.where(rows["is_house"], 0.8, 0.45)
            ).astype(float),
            "protection_solaire_exterieure": (rng.random(n) < 0.35).astype(float),
            "zone_climatique": zone,
            "classe_altitude": classe,
            "adresse_ban": number_text
            + " "
            + rows["street"]
            + " "
            + postal
            + " "
            + commune_name,
            "numero_voie_ban": number_text,
            "nom_rue_ban": rows["street"],
            "nom_commune_ban": commune_name,
            "code_postal_ban": postal,
            "code_insee_ban": insee,
            "code_departement_ban": "74",
            "identifiant_ban": insee
            + "_"
            + _zero_padded(rows["street_id"], 4)
            + "_"
            + _zero_padded(rows["number"], 5),
            "coordonnee_cartographique_x_ban": x.round(1),
            "coordonnee_cartographique_y_ban": y.round(1),
            "_geopoint": np.char.mod("%.6f", lat).astype(object)
            + ","
            + np.char.mod("%.6f", lon).astype(object),
            "source": np.where(rows["is_new"], "neuf", "existant").astype(object),
        },
        columns=list(DPE_COLUMNS),
    )
    order = np.lexsort((numero_dpe, _iso(dates["date_reception"])))
    return frame.iloc[order].reset_index(drop=True)


def _zero_padded(values: np.ndarray, width: int) -> np.ndarray:
    """Return integers as zero-padded strings (object array)."""
    return np.char.zfill(values.astype(str), width).astype(object)


def _iso(days: np.ndarray) -> np.ndarray:
    """Return datetime64[D] values as ISO `YYYY-MM-DD` strings."""
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(object)


def _dpe_numbers(
    rng: np.random.Generator, date_reception: np.ndarray, is_new: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return unique DPE numbers and a few replaced numbers absent from the file."""
    n = len(date_reception)
    years = date_reception.astype("datetime64[Y]").astype(int) + 1970
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), dtype=object)
    digits = rng.choice(10_000_000, size=n, replace=False)
    kind = np.where(is_new, "N", "E")
    numbers = (
        _zero_padded(years % 100, 2)
        + "74"
        + kind.astype(object)
        + _zero_padded(digits, 7)
        + letters[rng.integers(0, 26, n)]
    )

    # About 2 % of existing-dwelling DPEs replace an earlier one of the same year or
    # the year before; the replaced DPE is not part of the extract.
    replaced = np.full(n, None, dtype=object)
    replacing = np.flatnonzero((~is_new) & (rng.random(n) < 0.02))
    known = set(numbers)
    for row in replacing:
        year = max(21, years[row] % 100 - int(rng.integers(0, 2)))
        while True:
            letter = letters[rng.integers(0, 26)]
            candidate = f"{year:02d}74E{int(rng.integers(0, 10_000_000)):07d}{letter}"
            if candidate not in known:
                known.add(candidate)
                replaced[row] = candidate
                break
    return numbers, replaced


# -- Enedis ----------------------------------------------------------------------


def _street_parts(nom_rue: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split BAN street names into their type word and the rest."""
    types = np.array([name.split(" ", 1)[0] for name in nom_rue], dtype=object)
    rests = np.array([name.split(" ", 1)[1] for name in nom_rue], dtype=object)
    return types, rests


def _enedis_buildings(rng: np.random.Generator, flats: pd.DataFrame) -> pd.DataFrame:
    """Return the collective DPE addresses, sized from their number of DPEs."""
    flats = flats.assign(
        electric=(flats["type_energie_principale_chauffage"] == "Électricité").astype(
            float
        )
    )
    grouped = flats.groupby("identifiant_ban", sort=True)
    buildings = grouped.agg(
        code_commune=("code_insee_ban", "first"),
        numero=("numero_voie_ban", "first"),
        nom_rue=("nom_rue_ban", "first"),
        n_dpe=("numero_dpe", "size"),
        annee_construction=("annee_construction", "min"),
        electric=("electric", "mean"),
    ).reset_index()
    buildings["nombre_de_logements"] = np.round(
        buildings["n_dpe"] * rng.uniform(2.5, 6.0, len(buildings))
        + rng.integers(0, 6, len(buildings))
    ).astype(int)
    return buildings[
        (buildings["n_dpe"] >= 2)
        & (buildings["nombre_de_logements"] >= ENEDIS_MIN_DWELLINGS)
    ]


def _enedis_addresses(
    rng: np.random.Generator, dpe: pd.DataFrame, flats: pd.DataFrame
) -> pd.DataFrame:
    """Pick DPE buildings, other numbers of DPE streets and unknown streets."""
    buildings = _enedis_buildings(rng, flats)
    target = max(20, round(ENEDIS_ADDRESSES_PER_25K * len(dpe) / 25_000))
    n_match = min(len(buildings), round(target * ENEDIS_MATCH_SHARE[0]))
    n_street = round(target * ENEDIS_MATCH_SHARE[1])
    n_none = max(1, target - n_match - n_street)

    matched = buildings.iloc[
        np.sort(rng.choice(len(buildings), size=n_match, replace=False))
    ][
        [
            "code_commune",
            "numero",
            "nom_rue",
            "nombre_de_logements",
            "annee_construction",
            "electric",
        ]
    ].copy()
    matched["numero"] = matched["numero"].astype(int)
    matched["indice_de_repetition"] = None
    matched["match"] = "address"

    # Same street as some DPE, another number; and streets no DPE uses.
    used = set(
        zip(
            dpe["code_insee_ban"],
            dpe["nom_rue_ban"],
            dpe["numero_voie_ban"].astype(str),
            strict=True,
        )
    )
    streets = flats[["code_insee_ban", "nom_rue_ban"]].drop_duplicates().to_numpy()
    street_rows = []
    while len(street_rows) < n_street:
        code, rue = streets[rng.integers(len(streets))]
        numero = int(rng.integers(1, 200))
        if (code, rue, str(numero)) not in used:
            used.add((code, rue, str(numero)))
            street_rows.append((code, numero, rue, "street"))
    communes_with_flats = np.unique(flats["code_insee_ban"].to_numpy())
    commune_streets = set(zip(dpe["code_insee_ban"], dpe["nom_rue_ban"], strict=True))
    none_rows = []
    while len(none_rows) < n_none:
        code = communes_with_flats[rng.integers(len(communes_with_flats))]
        name = ENEDIS_ONLY_STREET_NAMES[rng.integers(len(ENEDIS_ONLY_STREET_NAMES))]
        rue = f"Rue {name}"
        numero = int(rng.integers(1, 120))
        if (code, rue) not in commune_streets and (code, rue, str(numero)) not in used:
            used.add((code, rue, str(numero)))
            none_rows.append((code, numero, rue, "none"))
    others = pd.DataFrame(
        street_rows + none_rows, columns=["code_commune", "numero", "nom_rue", "match"]
    )
    others["nombre_de_logements"] = (
        np.round(rng.lognormal(np.log(22), 0.6, len(others)))
        .clip(ENEDIS_MIN_DWELLINGS, 250)
        .astype(int)
    )
    others["annee_construction"] = rng.integers(1950, 2015, len(others)).astype(float)
    others["electric"] = rng.random(len(others)) < 0.35
    others["indice_de_repetition"] = np.where(rng.random(len(others)) < 0.1, "B", None)
    addresses = pd.concat([matched, others], ignore_index=True)
    addresses["electric"] = addresses["electric"].astype(float)
    return addresses


def _enedis_spelling(
    rng: np.random.Generator, com: pd.DataFrame, addresses: pd.DataFrame
) -> pd.DataFrame:
    """Add street spelling, IRIS, base consumption and sort key the Enedis way."""
    types, rests = _street_parts(addresses["nom_rue"].to_numpy())
    abbreviations = {t[0]: t[2] for t in STREET_TYPES}
    # Each street keeps one spelling of its type, abbreviated or not.
    abbreviated = np.array(
        [
            zlib.crc32(f"{code}|{rue}".encode()) % 100 < 100 * ENEDIS_ABBREVIATED_SHARE
            for code, rue in zip(
                addresses["code_commune"], addresses["nom_rue"], strict=True
            )
        ]
    )
    addresses["type_de_voie"] = [
        abbreviations[t][0] if short else abbreviations[t][1]
        for t, short in zip(types, abbreviated, strict=True)
    ]
    addresses["libelle_de_voie"] = [enedis_libelle(r) for r in rests]
    altitude = com.loc[addresses["code_commune"], "altitude"].to_numpy()
    extra_altitude = np.maximum(altitude - 400, 0)
    base_site = np.where(addresses["electric"] >= 0.5, 5.0, 2.4) * (
        1 + 0.00045 * extra_altitude
    )
    addresses["base_site"] = base_site * rng.lognormal(0, 0.18, len(addresses))
    iris_count = np.maximum(
        1, com.loc[addresses["code_commune"], "population"].to_numpy() // 2500
    )
    street_hash = np.array([sum(map(ord, r)) for r in addresses["nom_rue"]], dtype=int)
    iris_index = np.where(iris_count > 1, street_hash % iris_count + 1, 0)
    addresses["code_iris"] = [
        f"{c}{100 + i if i else 0:04d}"
        for c, i in zip(addresses["code_commune"], iris_index, strict=True)
    ]
    addresses["nom_iris"] = [
        com.at[c, "nom_standard"]
        if not i
        else IRIS_NAMES[(i - 1) % len(IRIS_NAMES)]
        + ("" if i <= len(IRIS_NAMES) else f" {(i - 1) // len(IRIS_NAMES) + 1}")
        for c, i in zip(addresses["code_commune"], iris_index, strict=True)
    ]
    addresses = addresses.sort_values(
        ["code_commune", "libelle_de_voie", "numero"], kind="stable"
    ).reset_index(drop=True)
    addresses["tri_des_adresses"] = np.arange(1, len(addresses) + 1) * 10
    return addresses


def generate_enedis(
    communes: pd.DataFrame, dpe: pd.DataFrame, seed: int = SEED
) -> pd.DataFrame:
    """Return synthetic Enedis per-address rows (>= 10 dwellings) for 2018-2024."""
    rng = np.random.default_rng(seed + 1_000)
    com = prepare_communes(communes).set_index("code_insee")
    flats = dpe[dpe["type_batiment"].isin(["appartement", "immeuble"])]
    if flats.empty:
        return pd.DataFrame(columns=list(ENEDIS_COLUMNS))
    addresses = _enedis_spelling(rng, com, _enedis_addresses(rng, dpe, flats))

    # One row per address and year, from the year after completion, with gaps.
    years = np.array(ENEDIS_YEARS)
    rows = addresses.loc[addresses.index.repeat(len(years))].reset_index(drop=True)
    rows["annee"] = np.tile(years, len(addresses))
    built = rows["annee_construction"].fillna(1900).to_numpy() < rows["annee"]
    kept = built & (rng.random(len(rows)) >= ENEDIS_GAP_SHARE)
    rows = rows[kept].reset_index(drop=True)
    year_factor = rows["annee"].map(ENEDIS_YEAR_FACTOR).to_numpy()
    per_site = (
        rows["base_site"].to_numpy() * year_factor * rng.lognormal(0, 0.04, len(rows))
    ).clip(0.8, 12)
    total = per_site * rows["nombre_de_logements"].to_numpy()
    rows["consommation_annuelle_totale_de_l_adresse_mwh"] = total.round(3)
    rows["consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"] = (
        total.round(3) / rows["nombre_de_logements"]
    ).round(3)

    # Commune average over all its residential sites: one value per commune-year.
    commune_codes = np.unique(rows["code_commune"])
    commune_base = pd.Series(
        (3.0 + 0.0011 * np.maximum(com.loc[commune_codes, "altitude"] - 400, 0))
        * rng.lognormal(0, 0.08, len(commune_codes)),
        index=commune_codes,
    )
    rows["consommation_annuelle_moyenne_de_la_commune_mwh"] = (
        commune_base.loc[rows["code_commune"]].to_numpy() * year_factor
    ).round(3)

    rows["nom_commune"] = com.loc[rows["code_commune"], "nom_standard"].to_numpy()
    rows["code_epci"] = com.loc[rows["code_commune"], "epci_code"].to_numpy()
    rows["numero_de_voie"] = rows["numero"].astype(int)
    rows["segment_de_client"] = "RESIDENTIEL"
    rows["code_departement"] = "74"
    rows["code_region"] = (
        com.loc[rows["code_commune"], "reg_code"].astype(str).to_numpy()
    )
    rows["adresse"] = [
        " ".join(str(p) for p in (num, rep, t, lib) if not pd.isna(p) and p)
        for num, rep, t, lib in zip(
            rows["numero_de_voie"],
            rows["indice_de_repetition"],
            rows["type_de_voie"],
            rows["libelle_de_voie"],
            strict=True,
        )
    ]
    rows = rows.sort_values(["annee", "tri_des_adresses"], kind="stable")
    return rows[list(ENEDIS_COLUMNS)].reset_index(drop=True)


# -- Files -----------------------------------------------------------------------


def load_communes(path: Path = COMMUNES_PATH) -> pd.DataFrame:
    """Read the shipped communes reference with codes as strings."""
    return pd.read_csv(
        path,
        dtype={
            "code_insee": str,
            "code_postal": str,
            "codes_postaux": str,
            "dep_code": str,
            "reg_code": str,
            "epci_code": str,
        },
    )


def write_csv_gz(frame: pd.DataFrame, path: Path) -> int:
    """Write a frame as reproducible gzip CSV (mtime 0) and return its byte size."""
    data = gzip.compress(
        frame.to_csv(index=False, lineterminator="\n").encode("utf-8"),
        compresslevel=9,
        mtime=0,
    )
    path.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the demo DPE and Enedis files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=N_DPE, help="DPE rows at scale 1")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply --n")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out-dir", type=Path, default=DATASETS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s"
    )

    communes = load_communes()
    start = time.perf_counter()
    dpe = generate_dpe(communes, n=args.n, seed=args.seed, scale=args.scale)
    enedis = generate_enedis(communes, dpe, seed=args.seed)
    elapsed = time.perf_counter() - start
    args.out_dir.mkdir(parents=True, exist_ok=True)
    dpe_size = write_csv_gz(dpe, args.out_dir / DPE_PATH.name)
    enedis_size = write_csv_gz(enedis, args.out_dir / ENEDIS_PATH.name)
    logger.info(
        "generated %d DPE and %d Enedis rows in %.2f s (%d and %d bytes) in %s",
        len(dpe),
        len(enedis),
        elapsed,
        dpe_size,
        enedis_size,
        args.out_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
