"""Statistics of the DPE of Haute-Savoie: filters, KPI, figure tables and insights.

Plain module (no request, no Flask): the views parse the query string with
`parse_filters`, filter the store's DPE with `filtered`, then ask `figure_result`
for the table, the one-sentence insight and the notes of one figure. The same
table feeds the Plotly figure, the "Voir les données" table and the CSV.
"""

from __future__ import annotations

import logging
import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from plotly.graph_objects import Figure
from scipy import stats as scipy_stats

from webapp import figures
from webapp import rules
from webapp.formatting import NBSP
from webapp.formatting import date_fr
from webapp.formatting import nombre
from webapp.formatting import pourcent
from webapp.store import ALTITUDE_BANDS
from webapp.store import aggregate

logger = logging.getLogger(__name__)

#: Groups with fewer DPE than this are greyed or left out of comparisons.
MIN_GROUP = 30

#: Above this number of points figure 1 is a 2D binned view, not a scatter.
MAX_SCATTER_POINTS = 5000

#: Bin sizes of the binned altitude view: metres and kWh/m²/an.
ALTITUDE_BIN_M = 100
CONSO_BIN = 25

#: Upper limit of the binned consumption axis (kWh/m²/an); higher values are
#: counted in the last bin so that a few extreme DPE do not flatten the view.
CONSO_AXIS_MAX = 800

#: Default reference dwelling of figure 3 (m²).
DEFAULT_SURFACE = 70.0

#: Default energy price of figure 3, €/kWh TTC: variable part of the regulated
#: electricity tariff (tarif Bleu, option Base) in force from 1 February 2025, as
#: set after the proposal of the Commission de régulation de l'énergie
#: (CRE, 16 January 2025).
DEFAULT_PRICE_EUR_KWH = 0.2016
DEFAULT_PRICE_DATE = date(2025, 2, 1)
DEFAULT_PRICE_SOURCE = (
    "tarif réglementé de vente d'électricité (tarif Bleu, option Base), prix du kWh TTC"
)

#: Accepted ranges of the figure-3 inputs.
SURFACE_RANGE = (10.0, 500.0)
PRICE_RANGE = (0.01, 2.0)

#: Enedis addresses below this number of dwellings are left out of figure 7.
ENEDIS_MIN_DWELLINGS = 10

#: ADEME construction periods, oldest first.
PERIODES = (
    "avant 1948",
    "1948-1974",
    "1975-1977",
    "1978-1982",
    "1983-1988",
    "1989-2000",
    "2001-2005",
    "2006-2012",
    "2013-2021",
    "après 2021",
)

#: Building types, as labelled on the page.
TYPES_BATIMENT = {
    "maison": "Maison",
    "appartement": "Appartement",
    "immeuble": "Immeuble",
}

#: DPE sources, as labelled on the page.
SOURCES = {"existant": "Logements existants", "neuf": "Logements neufs"}

#: Rule changes marked on the timeline.
RULE_CHANGES = (
    (rules.SMALL_SURFACE_DATE, "Petites surfaces"),
    (rules.ELEC_FACTOR_DATE, "Facteur électricité 1,9"),
)

#: Filter names read from the query string, in URL order.
FILTER_KEYS = (
    "commune",
    "type_batiment",
    "periode_construction",
    "type_energie_principale_chauffage",
    "source",
    "date_debut",
    "date_fin",
    "surface",
    "prix_kwh",
)


def band_label(band: str) -> str:
    """Return the French label of an altitude band ('0-600' → '0–600 m')."""
    return band.replace("-", "–") + f"{NBSP}m"


def band_between(band: str) -> str:
    """Return 'entre 1 200 et 1 800 m' for the band '1200-1800'."""
    low, _, high = band.partition("-")
    return f"entre {nombre(float(low))} et {nombre(float(high))}{NBSP}m"


BAND_NAMES = tuple(name for name, _, _ in ALTITUDE_BANDS)
VALLEY_BAND = BAND_NAMES[0]


# --------------------------------------------------------------------------- filters


class FilterError(ValueError):
    """Invalid filter values, with one French message per field."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(fields.values()))
        self.fields = fields

    @property
    def message(self) -> str:
        """All the field messages as one French sentence list."""
        return " ".join(self.fields.values())


@dataclass(frozen=True)
class Choices:
    """The values each filter accepts, taken from the data in service."""

    communes: dict[str, str]
    types_batiment: tuple[str, ...]
    periodes: tuple[str, ...]
    energies: tuple[str, ...]
    sources: tuple[str, ...]
    date_min: date | None
    date_max: date | None


@dataclass(frozen=True)
class StatsFilters:
    """A validated selection of DPE and the reference dwelling of figure 3."""

    communes: tuple[str, ...] = ()
    type_batiment: str | None = None
    periode_construction: str | None = None
    type_energie_principale_chauffage: str | None = None
    source: str | None = None
    date_debut: date | None = None
    date_fin: date | None = None
    surface: float = DEFAULT_SURFACE
    prix_kwh: float = DEFAULT_PRICE_EUR_KWH

    def dpe_key(self) -> tuple:
        """The part of the filters that selects DPE (cache key)."""
        return (
            self.communes,
            self.type_batiment,
            self.periode_construction,
            self.type_energie_principale_chauffage,
            self.source,
            self.date_debut,
            self.date_fin,
        )

    def query(self) -> list[tuple[str, str]]:
        """Return the non-default values as query-string pairs (permalink)."""
        pairs = [("commune", code) for code in self.communes]
        for key in FILTER_KEYS[1:5]:
            value = getattr(self, key)
            if value:
                pairs.append((key, value))
        if self.date_debut:
            pairs.append(("date_debut", self.date_debut.isoformat()))
        if self.date_fin:
            pairs.append(("date_fin", self.date_fin.isoformat()))
        if self.surface != DEFAULT_SURFACE:
            pairs.append(("surface", _plain_number(self.surface)))
        if self.prix_kwh != DEFAULT_PRICE_EUR_KWH:
            pairs.append(("prix_kwh", _plain_number(self.prix_kwh)))
        return pairs


def _plain_number(value: float) -> str:
    return f"{value:.6g}"


def choices_from(dpe: pd.DataFrame, communes: pd.DataFrame) -> Choices:
    """Collect the values each filter accepts from the DPE and communes tables."""
    names = communes.set_index("code_insee")["nom_standard"].astype(str)
    dates = dpe["date_etablissement_dpe"]

    present = set(dpe["periode_construction"].dropna().astype(str))
    periodes = tuple(p for p in PERIODES if p in present) + tuple(
        sorted(present - set(PERIODES))
    )
    return Choices(
        communes=dict(sorted(names.items(), key=lambda item: fold(item[1]))),
        types_batiment=_present(dpe["type_batiment"]),
        periodes=periodes,
        energies=_present(dpe["type_energie_principale_chauffage"]),
        sources=_present(dpe["source"]),
        date_min=dates.min().date() if dates.notna().any() else None,
        date_max=dates.max().date() if dates.notna().any() else None,
    )


def _present(column: pd.Series) -> tuple[str, ...]:
    return tuple(sorted(set(column.dropna().astype(str)), key=fold))


def fold(text: str) -> str:
    """Return `text` case-folded and without accents, for sorting and search."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@aggregate("stats_choices")
def _choices_aggregate(snapshot) -> Choices:
    return choices_from(snapshot.dpe, snapshot.communes_74)


def parse_filters(args: Mapping[str, Any], choices: Choices) -> StatsFilters:
    """Validate query-string values against `choices`.

    Parameters
    ----------
    args : Mapping
        Query arguments; a ``getlist`` method (werkzeug ``MultiDict``) is used
        for the repeated ``commune`` key when present.
    choices : Choices
        The accepted values.

    Raises
    ------
    FilterError
        With one French message per invalid field.
    """
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    raw_communes = _getlist(args, "commune")
    unknown = [c for c in raw_communes if c not in choices.communes]
    if unknown:
        errors["commune"] = (
            f"Commune inconnue : {', '.join(unknown[:3])} "
            "(code INSEE d'une commune de Haute-Savoie attendu)."
        )
    values["communes"] = tuple(dict.fromkeys(c for c in raw_communes if c))

    allowed = {
        "type_batiment": (choices.types_batiment, "Type de bâtiment"),
        "periode_construction": (choices.periodes, "Période de construction"),
        "type_energie_principale_chauffage": (
            choices.energies,
            "Énergie de chauffage",
        ),
        "source": (choices.sources, "Type de DPE"),
    }
    for key, (accepted, title) in allowed.items():
        value = _single(args, key)
        if value and value not in accepted:
            errors[key] = (
                f"{title} inconnu(e) : « {value} ». Valeurs possibles : "
                f"{', '.join(accepted)}."
            )
        else:
            values[key] = value or None

    for key, title in (("date_debut", "Date de début"), ("date_fin", "Date de fin")):
        text = _single(args, key)
        try:
            values[key] = date.fromisoformat(text) if text else None
        except ValueError:
            errors[key] = f"{title} invalide : « {text} » (format AAAA-MM-JJ attendu)."
    debut, fin = values.get("date_debut"), values.get("date_fin")
    if debut and fin and debut > fin:
        errors["date_fin"] = "La date de fin doit suivre la date de début."

    for key, title, unit, default, (low, high) in (
        ("surface", "Surface", "m²", DEFAULT_SURFACE, SURFACE_RANGE),
        ("prix_kwh", "Prix de l'énergie", "€/kWh", DEFAULT_PRICE_EUR_KWH, PRICE_RANGE),
    ):
        text = _single(args, key)
        number = _to_float(text) if text else default
        if number is None or not low <= number <= high:
            errors[key] = (
                f"{title} invalide : « {text} » (nombre entre "
                f"{nombre(low, 2 if low < 1 else 0)} et {nombre(high, 0)} {unit})."
            )
        else:
            values[key] = number

    if errors:
        raise FilterError(errors)
    return StatsFilters(**values)


def _getlist(args: Mapping[str, Any], key: str) -> list[str]:
    if hasattr(args, "getlist"):
        raw = args.getlist(key)
    else:
        raw = args.get(key) or []
        raw = [raw] if isinstance(raw, str) else list(raw)
    return [str(v).strip() for v in raw if str(v).strip()]


def _single(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    return str(value).strip() if value is not None else ""


def _to_float(text: str) -> float | None:
    try:
        number = float(text.replace(",", ".").replace(NBSP, "").replace(" ", ""))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------- filtering


#: DPE columns the statistics read; the filtered copies hold only these.
STATS_COLUMNS = (
    "numero_dpe",
    "date_etablissement_dpe",
    "etiquette_dpe",
    "conso_5_usages_par_m2_ep",
    "conso_5_usages_par_m2_ef",
    "conso_5_usages_ef",
    "surface_habitable_logement",
    "type_batiment",
    "periode_construction",
    "type_energie_principale_chauffage",
    "source",
    "code_insee_ban",
    "nom_commune_ban",
    "altitude",
    "tranche_altitude",
)


@aggregate("stats_dpe")
def _stats_dpe_aggregate(snapshot) -> pd.DataFrame:
    # A narrow copy: filtering the 47-column table would copy every column.
    return snapshot.dpe[list(STATS_COLUMNS)].copy()


def apply_filters(dpe: pd.DataFrame, filters: StatsFilters) -> pd.DataFrame:
    """Return the DPE rows selected by `filters`."""
    mask = np.ones(len(dpe), dtype=bool)
    if filters.communes:
        mask &= dpe["code_insee_ban"].isin(filters.communes).to_numpy()
    for key in (
        "type_batiment",
        "periode_construction",
        "type_energie_principale_chauffage",
        "source",
    ):
        value = getattr(filters, key)
        if value:
            mask &= (dpe[key] == value).fillna(False).to_numpy(dtype=bool)
    dates = dpe["date_etablissement_dpe"]
    if filters.date_debut:
        mask &= (dates >= pd.Timestamp(filters.date_debut)).to_numpy()
    if filters.date_fin:
        mask &= (
            dates < pd.Timestamp(filters.date_fin) + pd.Timedelta(days=1)
        ).to_numpy()
    if mask.all():
        return dpe
    return dpe[mask]


class FilterCache:
    """The last few filtered frames, so the fragments of one change share work."""

    def __init__(self, size: int = 8):
        self.size = size
        self._entries: OrderedDict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, dpe: pd.DataFrame, filters: StatsFilters) -> pd.DataFrame:
        """Return `apply_filters(dpe, filters)`, from the cache when possible."""
        key = (id(dpe), filters.dpe_key())
        with self._lock:
            entry = self._entries.get(key)
            # The source frame is kept in the entry: an id reused by a new
            # snapshot after a reload does not match the old object.
            if entry is not None and entry[0] is dpe:
                self._entries.move_to_end(key)
                return entry[1]

        result = apply_filters(dpe, filters)
        with self._lock:
            self._entries[key] = (dpe, result)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return result


_CACHE = FilterCache()


def filtered(dpe: pd.DataFrame, filters: StatsFilters) -> pd.DataFrame:
    """Return the filtered DPE through the process-wide cache."""
    return _CACHE.get(dpe, filters)


# --------------------------------------------------------------------------- KPI


@dataclass(frozen=True)
class Kpis:
    """Headline numbers of a selection."""

    nombre_dpe: int
    part_passoires: float
    mediane_conso: float
    mediane_surface: float


def kpis(frame: pd.DataFrame) -> Kpis:
    """Return the KPI of a selection (NaN medians when empty)."""
    labels = frame["etiquette_dpe"]
    known = int(labels.notna().sum())
    passoires = int(labels.isin(rules.PASSOIRE_LABELS).sum())
    return Kpis(
        nombre_dpe=len(frame),
        part_passoires=passoires / known if known else float("nan"),
        mediane_conso=_median(frame["conso_5_usages_par_m2_ep"]),
        mediane_surface=_median(frame["surface_habitable_logement"]),
    )


def _median(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.median()) if len(values) else float("nan")


# --------------------------------------------------------------------------- figures


@dataclass
class FigureResult:
    """Everything shown for one figure: its data, figure options and texts."""

    name: str
    table: pd.DataFrame
    columns: dict[str, str]
    insight: str
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    empty: bool = False

    def figure(self) -> Figure:
        """Build the Plotly figure of this result."""
        spec = FIGURES[self.name]
        return spec.plot(self.table, **self.options)

    def csv(self) -> str:
        """Return the table as CSV text (comma, dot decimals, UTF-8)."""
        return self.table.to_csv(index=False, lineterminator="\n")


@dataclass(frozen=True)
class Context:
    """What a figure needs besides the filtered DPE."""

    filters: StatsFilters = field(default_factory=StatsFilters)
    enedis: pd.DataFrame | None = None
    commune_names: Mapping[str, str] = field(default_factory=dict)


NO_DPE = "Aucun DPE ne correspond à ces filtres."


def _empty(name: str, columns: dict[str, str], message: str = NO_DPE) -> FigureResult:
    return FigureResult(
        name=name,
        table=pd.DataFrame({key: [] for key in columns}),
        columns=columns,
        insight=message,
        empty=True,
    )


# ---- 1. altitude × consumption


@dataclass(frozen=True)
class Regression:
    """Least-squares line of consumption on altitude."""

    slope: float
    intercept: float
    r2: float
    p_value: float
    n: int

    @property
    def slope_per_100m(self) -> float:
        """Slope in kWh/m²/an per 100 m."""
        return self.slope * 100


def altitude_regression(frame: pd.DataFrame) -> Regression | None:
    """Fit kWh/m²/an on altitude by ordinary least squares (None when undefined)."""
    data = frame[["altitude", "conso_5_usages_par_m2_ep"]].dropna()
    x = data["altitude"].to_numpy(dtype=float)
    y = data["conso_5_usages_par_m2_ep"].to_numpy(dtype=float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None

    fit = scipy_stats.linregress(x, y)
    return Regression(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r2=float(fit.rvalue**2),
        p_value=float(fit.pvalue),
        n=len(x),
    )


ALTITUDE_POINT_COLUMNS = {
    "numero_dpe": "Numéro DPE",
    "nom_commune_ban": "Commune",
    "altitude": "Altitude de la commune (m)",
    "conso_5_usages_par_m2_ep": "Consommation (kWh/m²/an)",
}
ALTITUDE_BIN_COLUMNS = {
    "altitude_min": "Altitude de (m)",
    "altitude_max": "Altitude à (m)",
    "conso_min": "Consommation de (kWh/m²/an)",
    "conso_max": "Consommation à (kWh/m²/an)",
    "nombre_dpe": "Nombre de DPE",
}


def altitude_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 1: consumption against commune altitude, with the OLS line."""
    # Only the four columns needed: dropping NaN rows on the whole frame would
    # copy every column.
    data = frame[list(ALTITUDE_POINT_COLUMNS)]
    data = data[data["altitude"].notna() & data["conso_5_usages_par_m2_ep"].notna()]
    if data.empty:
        return _empty("altitude", ALTITUDE_BIN_COLUMNS)

    regression = altitude_regression(data)
    binned = len(data) > MAX_SCATTER_POINTS
    notes = []
    if binned:
        table = altitude_bins(data)
        columns = ALTITUDE_BIN_COLUMNS
        notes.append(
            f"{nombre(len(data))} DPE : vue par cases de {ALTITUDE_BIN_M}{NBSP}m × "
            f"{CONSO_BIN}{NBSP}kWh/m²/an (au-delà de "
            f"{nombre(MAX_SCATTER_POINTS)} points, un nuage serait illisible) ; "
            "les valeurs au-dessus de "
            f"{CONSO_AXIS_MAX}{NBSP}kWh/m²/an sont comptées dans la dernière case."
        )
    else:
        table = data[list(ALTITUDE_POINT_COLUMNS)].copy()
        table["nom_commune_ban"] = table["nom_commune_ban"].astype(str)
        table["altitude"] = table["altitude"].round(0)
        table = table.sort_values(["altitude", "numero_dpe"]).reset_index(drop=True)
        columns = ALTITUDE_POINT_COLUMNS
    notes.append(
        "L'altitude est l'altitude moyenne de la commune du logement "
        "(data.gouv.fr), pas celle du bâtiment."
    )
    return FigureResult(
        name="altitude",
        table=table.reset_index(drop=True),
        columns=columns,
        insight=altitude_insight(regression),
        notes=notes,
        options={"regression": regression, "binned": binned},
    )


def altitude_bins(frame: pd.DataFrame) -> pd.DataFrame:
    """Count DPE in altitude × consumption cells (non-empty cells only)."""
    altitude = frame["altitude"].to_numpy(dtype=float)
    conso = frame["conso_5_usages_par_m2_ep"].to_numpy(dtype=float)
    x_start = math.floor(altitude.min() / ALTITUDE_BIN_M) * ALTITUDE_BIN_M
    nx = int((altitude.max() - x_start) // ALTITUDE_BIN_M) + 1
    ny = CONSO_AXIS_MAX // CONSO_BIN

    # Integer division puts each value in its cell; consumption above the axis
    # goes to the last row.
    ix = ((altitude - x_start) // ALTITUDE_BIN_M).astype(np.int64)
    iy = np.clip(conso // CONSO_BIN, 0, ny - 1).astype(np.int64)
    counts = np.bincount(ix * ny + iy, minlength=nx * ny)
    cells = np.flatnonzero(counts)
    x_low = x_start + (cells // ny) * ALTITUDE_BIN_M
    y_low = (cells % ny) * CONSO_BIN
    return pd.DataFrame(
        {
            "altitude_min": x_low.astype(int),
            "altitude_max": (x_low + ALTITUDE_BIN_M).astype(int),
            "conso_min": y_low.astype(int),
            "conso_max": (y_low + CONSO_BIN).astype(int),
            "nombre_dpe": counts[cells].astype(int),
        }
    )


def format_p_value(p_value: float) -> str:
    """Format a p-value the French way ('p < 0,001' below one in a thousand)."""
    if p_value < 0.001:
        return "p < 0,001"
    return f"p = {nombre(p_value, 3)}"


def altitude_insight(regression: Regression | None) -> str:
    """Say how much consumption changes per 100 m, with R² and p-value."""
    if regression is None:
        return (
            "Pas assez de variation d'altitude dans cette sélection pour estimer "
            "une pente."
        )

    slope = regression.slope_per_100m
    verb = "augmente" if slope >= 0 else "diminue"
    significant = "" if regression.p_value < 0.05 else " (pente non significative)"
    return (
        f"La consommation {verb} en moyenne de {nombre(abs(slope), 1)}"
        f"{NBSP}kWh/m²/an tous les 100{NBSP}m d'altitude (R² = "
        f"{nombre(regression.r2, 2)}, {format_p_value(regression.p_value)}, "
        f"{nombre(regression.n)} DPE){significant}."
    )


# ---- 2. distribution by altitude band

BAND_STATS_COLUMNS = {
    "tranche_altitude": "Tranche d'altitude",
    "nombre_dpe": "Nombre de DPE",
    "moustache_basse": "Moustache basse (kWh/m²/an)",
    "q1": "1er quartile (kWh/m²/an)",
    "mediane": "Médiane (kWh/m²/an)",
    "q3": "3e quartile (kWh/m²/an)",
    "moustache_haute": "Moustache haute (kWh/m²/an)",
    "moyenne": "Moyenne (kWh/m²/an)",
}


def band_codes(frame: pd.DataFrame) -> np.ndarray:
    """Return the index of each DPE's altitude band in BAND_NAMES (-1 if none)."""
    return codes(frame["tranche_altitude"], BAND_NAMES)


def band_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """Quartiles and 1.5 IQR whiskers of kWh/m²/an per altitude band."""
    bands = band_codes(frame)
    conso = frame["conso_5_usages_par_m2_ep"].to_numpy(dtype=float)
    known = ~np.isnan(conso)
    rows = []
    for index, band in enumerate(BAND_NAMES):
        values = conso[(bands == index) & known]
        if len(values) == 0:
            continue
        q1, median, q3 = np.quantile(values, [0.25, 0.5, 0.75])
        iqr = q3 - q1
        low = values[values >= q1 - 1.5 * iqr].min()
        high = values[values <= q3 + 1.5 * iqr].max()
        rows.append(
            {
                "tranche_altitude": band,
                "nombre_dpe": len(values),
                "moustache_basse": round(float(low), 1),
                "q1": round(float(q1), 1),
                "mediane": round(float(median), 1),
                "q3": round(float(q3), 1),
                "moustache_haute": round(float(high), 1),
                "moyenne": round(float(values.mean()), 1),
            }
        )
    return pd.DataFrame(rows, columns=list(BAND_STATS_COLUMNS))


def bands_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 2: box plots of kWh/m²/an by altitude band."""
    table = band_stats(frame)
    if table.empty:
        return _empty("bands", BAND_STATS_COLUMNS)

    return FigureResult(
        name="bands",
        table=table,
        columns=BAND_STATS_COLUMNS,
        insight=bands_insight(table),
        notes=_small_group_notes(table, "tranche_altitude", band_label, "grisée"),
        options={"min_group": MIN_GROUP},
    )


def _small_group_notes(
    table: pd.DataFrame, key: str, label: Callable[[str], str], how: str
) -> list[str]:
    small = table[table["nombre_dpe"] < MIN_GROUP]
    if small.empty:
        return []
    names = ", ".join(label(str(v)) for v in small[key])
    return [f"Moins de {MIN_GROUP} DPE ({names}) : groupe {how}, à ne pas interpréter."]


def bands_insight(table: pd.DataFrame) -> str:
    """Compare the median of the highest reliable band with the valley's."""
    reliable = table[table["nombre_dpe"] >= MIN_GROUP]
    if len(reliable) < 2:
        return (
            f"Moins de deux tranches d'altitude comptent au moins {MIN_GROUP} DPE : "
            "pas de comparaison possible."
        )

    low, high = reliable.iloc[0], reliable.iloc[-1]
    change = high["mediane"] / low["mediane"] - 1 if low["mediane"] else float("nan")
    direction = "plus" if change >= 0 else "moins"
    return (
        f"La consommation médiane est de {nombre(high['mediane'])}{NBSP}kWh/m²/an "
        f"{band_between(high['tranche_altitude'])} contre "
        f"{nombre(low['mediane'])} {band_between(low['tranche_altitude'])}, "
        f"soit {pourcent(abs(change), 0)} de {direction}."
    )


# ---- 3. extra cost compared with the valley

EXTRA_COST_COLUMNS = {
    "tranche_altitude": "Tranche d'altitude",
    "nombre_dpe": "Nombre de DPE",
    "mediane_conso_5_usages_par_m2_ef": "Médiane énergie finale (kWh/m²/an)",
    "ecart_vallee_par_m2": "Écart à la vallée (kWh/m²/an)",
    "surcout_kwh_an": "Surconsommation (kWh/an)",
    "surcout_eur_an": "Surcoût (€/an)",
}


def extra_cost_table(frame: pd.DataFrame, surface: float, price: float) -> pd.DataFrame:
    """Yearly extra cost per band against the valley for a reference dwelling."""
    bands = band_codes(frame)
    conso = frame["conso_5_usages_par_m2_ef"].to_numpy(dtype=float)
    known = ~np.isnan(conso)
    names, sizes, medians = [], [], []
    for index, band in enumerate(BAND_NAMES):
        values = conso[(bands == index) & known]
        if len(values):
            names.append(band)
            sizes.append(len(values))
            medians.append(float(np.median(values)))
    if VALLEY_BAND not in names:
        return pd.DataFrame(columns=list(EXTRA_COST_COLUMNS))

    median = np.array(medians)
    gap = median - median[names.index(VALLEY_BAND)]
    return pd.DataFrame(
        {
            "tranche_altitude": names,
            "nombre_dpe": sizes,
            "mediane_conso_5_usages_par_m2_ef": np.round(median, 1),
            "ecart_vallee_par_m2": np.round(gap, 1),
            "surcout_kwh_an": np.round(gap * surface, 0),
            "surcout_eur_an": np.round(gap * surface * price, 0),
        }
    )


def extra_cost_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 3: yearly extra cost per band for the reference dwelling."""
    surface, price = context.filters.surface, context.filters.prix_kwh
    if frame.empty:
        return _empty("extra-cost", EXTRA_COST_COLUMNS)
    table = extra_cost_table(frame, surface, price)
    if table.empty:
        return _empty(
            "extra-cost",
            EXTRA_COST_COLUMNS,
            "Aucun DPE de vallée (0–600 m) dans cette sélection : pas de référence "
            "pour calculer un surcoût.",
        )

    notes = _small_group_notes(table, "tranche_altitude", band_label, "grisée")
    notes.append(
        f"Logement de référence : {nombre(surface)}{NBSP}m² ; prix : "
        f"{nombre(price, 4)}{NBSP}€/kWh appliqué à l'écart d'énergie finale "
        "médiane (5 usages). Prix par défaut : "
        f"{DEFAULT_PRICE_SOURCE} au {date_fr(DEFAULT_PRICE_DATE)} ; il surestime "
        "le surcoût des logements chauffés au gaz ou au bois, moins chers au kWh."
    )
    return FigureResult(
        name="extra-cost",
        table=table,
        columns=EXTRA_COST_COLUMNS,
        insight=extra_cost_insight(table, surface, price),
        notes=notes,
        options={"min_group": MIN_GROUP, "surface": surface, "price": price},
    )


def extra_cost_insight(table: pd.DataFrame, surface: float, price: float) -> str:
    """Name the reliable band with the largest yearly extra cost."""
    reliable = table[
        (table["nombre_dpe"] >= MIN_GROUP) & (table["tranche_altitude"] != VALLEY_BAND)
    ]
    if reliable.empty or table.iloc[0]["nombre_dpe"] < MIN_GROUP:
        return (
            f"Pas assez de DPE (au moins {MIN_GROUP} en vallée et dans une autre "
            "tranche) pour estimer un surcoût."
        )

    top = reliable.loc[reliable["surcout_eur_an"].idxmax()]
    amount = top["surcout_eur_an"]
    more = "de plus" if amount >= 0 else "de moins"
    return (
        f"Pour un logement de {nombre(surface)}{NBSP}m² à "
        f"{nombre(price, 4)}{NBSP}€/kWh, habiter "
        f"{band_between(top['tranche_altitude'])} coûte environ "
        f"{nombre(abs(amount))}{NBSP}€ {more} par an qu'en vallée (0–600 m)."
    )


# ---- 4. labels per altitude band


def codes(values: pd.Series, categories: list[str] | tuple[str, ...]) -> np.ndarray:
    """Return the position of each value in `categories` (-1 when absent or NaN)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and list(
        values.cat.categories
    ) == list(categories):
        return values.cat.codes.to_numpy()
    return pd.Categorical(values, categories=list(categories)).codes


def label_counts(
    frame: pd.DataFrame, group_codes: np.ndarray, groups: int
) -> np.ndarray:
    """Count the A–G labels per group: an array of shape (groups, 7)."""
    labels = codes(frame["etiquette_dpe"], rules.LABELS)
    keep = (labels >= 0) & (group_codes >= 0)
    flat = group_codes[keep].astype(np.int64) * len(rules.LABELS) + labels[keep]
    counts = np.bincount(flat, minlength=groups * len(rules.LABELS))
    return counts.reshape(groups, len(rules.LABELS))


def label_shares(frame: pd.DataFrame, key: pd.Series, order: list[str]) -> pd.DataFrame:
    """Label counts and shares per group, with the passoire share, in `order`."""
    counts = label_counts(frame, codes(key, order), len(order))
    totals = counts.sum(axis=1)
    present = totals > 0
    counts, totals = counts[present], totals[present]

    table = pd.DataFrame(
        {
            "groupe": [g for g, keep in zip(order, present, strict=True) if keep],
            "nombre_dpe": totals.astype(int),
        }
    )
    for index, label in enumerate(rules.LABELS):
        table[f"part_{label}"] = np.round(counts[:, index] / totals, 4)
    passoire_index = [rules.LABELS.index(label) for label in rules.PASSOIRE_LABELS]
    passoires = counts[:, passoire_index].sum(axis=1)
    table["part_passoires"] = np.round(passoires / totals, 4)
    return table


def _share_columns(first: str, title: str) -> dict[str, str]:
    columns = {first: title, "nombre_dpe": "Nombre de DPE"}
    for label in rules.LABELS:
        columns[f"part_{label}"] = f"Part {label}"
    columns["part_passoires"] = "Part de passoires (F–G)"
    return columns


LABEL_BAND_COLUMNS = _share_columns("tranche_altitude", "Tranche d'altitude")


def labels_bands_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 4: label mix per altitude band, passoire share annotated."""
    if frame.empty:
        return _empty("labels-bands", LABEL_BAND_COLUMNS)
    table = label_shares(frame, frame["tranche_altitude"], list(BAND_NAMES))
    table = table.rename(columns={"groupe": "tranche_altitude"})

    return FigureResult(
        name="labels-bands",
        table=table,
        columns=LABEL_BAND_COLUMNS,
        insight=passoire_ratio_insight(table),
        notes=_small_group_notes(table, "tranche_altitude", band_label, "grisée"),
        options={"min_group": MIN_GROUP},
    )


def passoire_ratio_insight(table: pd.DataFrame) -> str:
    """Ratio of passoire shares between the worst reliable band and the lowest."""
    reliable = table[table["nombre_dpe"] >= MIN_GROUP]
    if len(reliable) < 2:
        return (
            f"Moins de deux tranches d'altitude comptent au moins {MIN_GROUP} DPE : "
            "pas de comparaison possible."
        )

    low = reliable.iloc[0]
    others = reliable.iloc[1:]
    high = others.loc[others["part_passoires"].idxmax()]
    high_band = band_between(high["tranche_altitude"])
    low_band = band_between(low["tranche_altitude"])
    if low["part_passoires"] == 0:
        return (
            f"Aucune passoire (F–G) {low_band}, contre "
            f"{pourcent(high['part_passoires'], 0)} des DPE {high_band}."
        )
    ratio = high["part_passoires"] / low["part_passoires"]
    return (
        f"La part de passoires (F–G) atteint {pourcent(high['part_passoires'], 0)} "
        f"{high_band}, soit {nombre(ratio, 1)} fois celle mesurée {low_band} "
        f"({pourcent(low['part_passoires'], 0)})."
    )


# ---- 5. heatmap period × band

PERIOD_BAND_COLUMNS = {
    "periode_construction": "Période de construction",
    "tranche_altitude": "Tranche d'altitude",
    "nombre_dpe": "Nombre de DPE",
    "mediane": "Médiane (kWh/m²/an)",
}


def present_values(values: pd.Series) -> list[str]:
    """Return the distinct non-missing values (cheap on categorical columns)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        used = values.cat.codes.to_numpy()
        used = np.bincount(used[used >= 0], minlength=len(values.cat.categories))
        return [str(c) for c, n in zip(values.cat.categories, used, strict=True) if n]
    return sorted(set(values.dropna().astype(str)))


def period_order(values: pd.Series) -> list[str]:
    """ADEME periods oldest first, then any other spelling present, sorted."""
    present = set(present_values(values))
    return list(PERIODES) + sorted(present - set(PERIODES))


def period_band_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Median kWh/m²/an and count per construction period × altitude band."""
    periods = period_order(frame["periode_construction"])
    period = codes(frame["periode_construction"], periods)
    band = band_codes(frame)
    conso = frame["conso_5_usages_par_m2_ep"].to_numpy(dtype=float)
    keep = (period >= 0) & (band >= 0) & ~np.isnan(conso)
    key = period[keep].astype(np.int64) * len(BAND_NAMES) + band[keep]

    grouped = pd.Series(conso[keep]).groupby(key).agg(["size", "median"])
    cells = grouped.index.to_numpy()
    return pd.DataFrame(
        {
            "periode_construction": [periods[k // len(BAND_NAMES)] for k in cells],
            "tranche_altitude": [BAND_NAMES[k % len(BAND_NAMES)] for k in cells],
            "nombre_dpe": grouped["size"].to_numpy().astype(int),
            "mediane": grouped["median"].round(1).to_numpy(),
        }
    )


def period_band_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 5: heatmap of the median kWh/m²/an, period × altitude band."""
    table = period_band_table(frame) if not frame.empty else pd.DataFrame()
    if table.empty:
        return _empty("period-band", PERIOD_BAND_COLUMNS)

    notes = []
    small = int((table["nombre_dpe"] < MIN_GROUP).sum())
    if small:
        notes.append(
            f"{small} case(s) de moins de {MIN_GROUP} DPE laissée(s) en blanc "
            "(valeur dans le tableau)."
        )
    return FigureResult(
        name="period-band",
        table=table,
        columns=PERIOD_BAND_COLUMNS,
        insight=period_band_insight(table),
        notes=notes,
        options={"min_group": MIN_GROUP},
    )


def period_band_insight(table: pd.DataFrame) -> str:
    """Name the reliable cells with the highest and lowest medians."""
    reliable = table[table["nombre_dpe"] >= MIN_GROUP]
    if reliable.empty:
        return f"Aucune case ne compte {MIN_GROUP} DPE ou plus : pas de comparaison."

    top = reliable.loc[reliable["mediane"].idxmax()]
    bottom = reliable.loc[reliable["mediane"].idxmin()]
    return (
        f"Médiane la plus élevée : {nombre(top['mediane'])}{NBSP}kWh/m²/an pour les "
        f"logements construits {_period_phrase(top['periode_construction'])} "
        f"{band_between(top['tranche_altitude'])} ; la plus basse : "
        f"{nombre(bottom['mediane'])} ({_period_phrase(bottom['periode_construction'])}"
        f", {band_label(bottom['tranche_altitude'])})."
    )


def _period_phrase(periode: str) -> str:
    if periode.startswith(("avant", "après")):
        return periode
    return f"en {periode.replace('-', '–')}"


# ---- 6. labels per heating energy, building type, construction period

#: Dimensions of figure 6: (column, French title).
CATEGORY_DIMENSIONS = (
    ("type_energie_principale_chauffage", "Énergie de chauffage"),
    ("type_batiment", "Type de bâtiment"),
    ("periode_construction", "Période de construction"),
)

LABEL_CATEGORY_COLUMNS = {
    "dimension": "Dimension",
    **_share_columns("categorie", "Catégorie"),
}


def labels_categories_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Label mix per category of each dimension of figure 6."""
    parts = []
    for column, title in CATEGORY_DIMENSIONS:
        values = frame[column]
        if column == "periode_construction":
            order = period_order(values)
        elif column == "type_batiment":
            order = list(TYPES_BATIMENT)
            order += sorted(set(present_values(values)) - set(order))
        else:
            counts = values.value_counts()
            order = [str(v) for v in counts[counts > 0].index]
        table = label_shares(frame, values, order)
        table.insert(0, "dimension", title)
        parts.append(table.rename(columns={"groupe": "categorie"}))
    return pd.concat(parts, ignore_index=True)[list(LABEL_CATEGORY_COLUMNS)]


def labels_categories_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 6: label mix by heating energy, building type and period."""
    if frame.empty:
        return _empty("labels-categories", LABEL_CATEGORY_COLUMNS)
    table = labels_categories_table(frame)
    shown = table[table["nombre_dpe"] >= MIN_GROUP].reset_index(drop=True)

    notes = []
    left_out = table[table["nombre_dpe"] < MIN_GROUP]
    if not left_out.empty:
        names = ", ".join(
            f"{row.categorie} ({row.nombre_dpe})" for row in left_out.itertuples()
        )
        notes.append(f"Catégories de moins de {MIN_GROUP} DPE non affichées : {names}.")
    if shown.empty:
        return FigureResult(
            name="labels-categories",
            table=shown,
            columns=LABEL_CATEGORY_COLUMNS,
            insight=f"Aucune catégorie ne compte {MIN_GROUP} DPE ou plus.",
            notes=notes,
            empty=True,
        )
    return FigureResult(
        name="labels-categories",
        table=shown,
        columns=LABEL_CATEGORY_COLUMNS,
        insight=labels_categories_insight(shown),
        notes=notes,
        options={"dimensions": [title for _, title in CATEGORY_DIMENSIONS]},
    )


def labels_categories_insight(table: pd.DataFrame) -> str:
    """Compare the heating energies with the highest and lowest passoire shares."""
    energies = table[table["dimension"] == CATEGORY_DIMENSIONS[0][1]]
    if len(energies) < 2:
        return (
            f"Moins de deux énergies de chauffage comptent {MIN_GROUP} DPE ou plus : "
            "pas de comparaison."
        )

    top = energies.loc[energies["part_passoires"].idxmax()]
    bottom = energies.loc[energies["part_passoires"].idxmin()]
    return (
        f"Chauffage « {top['categorie']} » : {pourcent(top['part_passoires'], 0)} de "
        f"passoires (F–G), contre {pourcent(bottom['part_passoires'], 0)} pour "
        f"« {bottom['categorie']} »."
    )


# ---- 7. measured (Enedis) against theoretical (DPE)

MEASURED_COLUMNS = {
    "code_commune": "Code INSEE",
    "nom_commune": "Commune",
    "nombre_dpe": "Nombre de DPE",
    "dpe_moyenne_mwh": "DPE : énergie finale moyenne (MWh/an par logement)",
    "annee": "Année Enedis",
    "enedis_logements": "Enedis : logements",
    "enedis_moyenne_mwh": "Enedis : électricité moyenne (MWh/an par logement)",
    "rapport": "Rapport Enedis / DPE",
}

MEASURED_CAVEATS = (
    "Enedis ne publie que les adresses d'au moins 10 logements : les maisons "
    "individuelles et les petits immeubles manquent, alors que les DPE les "
    "comptent.",
    "Enedis mesure l'électricité seule (énergie finale relevée au compteur) ; le "
    "DPE calcule une consommation conventionnelle de toutes les énergies pour "
    "5 usages, sous un climat et une occupation standard.",
    "Les DPE ne portent que sur les logements vendus, loués ou construits depuis "
    "juillet 2021 : ils ne représentent pas tout le parc de la commune.",
    "Faute d'identifiant commun (Enedis ne publie ni identifiant BAN ni "
    "coordonnées), la comparaison se fait commune par commune, pas adresse par "
    "adresse ; les filtres autres que les communes et les dates ne s'appliquent "
    "qu'aux DPE.",
)


def enedis_per_dwelling(enedis: pd.DataFrame) -> pd.DataFrame:
    """Electricity per dwelling per commune and year (addresses ≥ 10 dwellings)."""
    data = enedis[enedis["nombre_de_logements"] >= ENEDIS_MIN_DWELLINGS]
    grouped = data.groupby(["code_commune", "annee"], observed=True)
    table = grouped.agg(
        nom_commune=("nom_commune", "first"),
        enedis_logements=("nombre_de_logements", "sum"),
        total_mwh=("consommation_annuelle_totale_de_l_adresse_mwh", "sum"),
    ).reset_index()
    table["enedis_moyenne_mwh"] = table["total_mwh"] / table["enedis_logements"]
    return table.drop(columns="total_mwh")


@aggregate("stats_enedis_per_dwelling")
def _enedis_aggregate(snapshot) -> pd.DataFrame:
    return enedis_per_dwelling(snapshot.enedis)


def measured_table(
    frame: pd.DataFrame, enedis: pd.DataFrame, year_until: int | None = None
) -> tuple[pd.DataFrame, int | None]:
    """Join the per-commune DPE mean with the latest Enedis year available."""
    years = enedis["annee"]
    if year_until is not None:
        years = years[years <= year_until]
    if years.empty:
        return pd.DataFrame(columns=list(MEASURED_COLUMNS)), None
    year = int(years.max())

    data = frame[["code_insee_ban", "conso_5_usages_ef"]].dropna()
    grouped = data.groupby("code_insee_ban", observed=True)["conso_5_usages_ef"]
    dpe = grouped.agg(["size", "mean"])
    dpe = pd.DataFrame(
        {
            "code_commune": dpe.index.astype(str),
            "nombre_dpe": dpe["size"].to_numpy(),
            "dpe_moyenne_mwh": dpe["mean"].to_numpy() / 1000,
        }
    )
    measured = enedis[enedis["annee"] == year]
    measured = measured.assign(code_commune=measured["code_commune"].astype(str))
    table = dpe.merge(measured, on="code_commune", how="inner")
    table["rapport"] = table["enedis_moyenne_mwh"] / table["dpe_moyenne_mwh"]
    table = table.round(
        {"dpe_moyenne_mwh": 2, "enedis_moyenne_mwh": 2, "rapport": 2}
    ).astype({"nombre_dpe": int, "enedis_logements": int, "annee": int})
    table = table.sort_values("nom_commune", key=lambda s: s.map(fold))
    return table[list(MEASURED_COLUMNS)].reset_index(drop=True), year


def measured_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 7: Enedis electricity per dwelling against the DPE mean, per commune."""
    if frame.empty:
        return _empty("measured", MEASURED_COLUMNS)
    enedis = context.enedis
    if enedis is None or enedis.empty:
        return _empty("measured", MEASURED_COLUMNS, "Aucune donnée Enedis chargée.")
    if context.filters.communes:
        enedis = enedis[enedis["code_commune"].isin(context.filters.communes)]
    until = context.filters.date_fin.year if context.filters.date_fin else None
    table, year = measured_table(frame, enedis, until)

    notes = list(MEASURED_CAVEATS)
    small = table[table["nombre_dpe"] < MIN_GROUP]
    shown = table[table["nombre_dpe"] >= MIN_GROUP].reset_index(drop=True)
    if not small.empty:
        notes.append(
            f"{len(small)} commune(s) de moins de {MIN_GROUP} DPE non affichée(s)."
        )
    if shown.empty:
        message = (
            f"Aucune commune ne réunit {MIN_GROUP} DPE et des adresses Enedis "
            "d'au moins 10 logements dans cette sélection."
        )
        result = _empty("measured", MEASURED_COLUMNS, message)
        result.notes = notes
        return result
    return FigureResult(
        name="measured",
        table=shown,
        columns=MEASURED_COLUMNS,
        insight=measured_insight(shown, year),
        notes=notes,
        options={"year": year},
    )


def measured_insight(table: pd.DataFrame, year: int | None) -> str:
    """Median Enedis/DPE ratio across communes and their correlation."""
    ratio = float(table["rapport"].median())
    where = (
        "Dans la seule commune comparable"
        if len(table) == 1
        else f"Dans les {nombre(len(table))} communes comparables"
    )
    sentence = (
        f"{where}, l'électricité mesurée "
        f"par Enedis en {year} représente en médiane {pourcent(ratio, 0)} de "
        "l'énergie finale moyenne calculée par les DPE"
    )
    if len(table) >= 3 and table["dpe_moyenne_mwh"].nunique() > 1:
        r = table["dpe_moyenne_mwh"].corr(table["enedis_moyenne_mwh"])
        if not math.isnan(r):
            sentence += f" (corrélation entre communes : r = {nombre(r, 2)})"
    return sentence + "."


# ---- 8. over time

TIMELINE_COLUMNS = {
    "mois": "Mois",
    "nombre_dpe": "Nombre de DPE",
    **{f"nombre_{label}": f"DPE {label}" for label in rules.LABELS},
    "part_passoires": "Part de passoires (F–G)",
}


def timeline_table(frame: pd.DataFrame) -> pd.DataFrame:
    """DPE per month of `date_etablissement_dpe`, by label."""
    dates = frame["date_etablissement_dpe"].dropna()
    if dates.empty:
        return pd.DataFrame(columns=list(TIMELINE_COLUMNS))
    months = dates.to_numpy().astype("datetime64[M]")
    first = months.min()
    offsets = (months - first).astype(np.int64)
    count = int(offsets.max()) + 1

    dated = frame if len(dates) == len(frame) else frame.loc[dates.index]
    counts = label_counts(dated, offsets, count)
    totals = counts.sum(axis=1)
    labels = np.arange(first, first + count).astype("datetime64[M]")
    table = pd.DataFrame({"mois": labels.astype(str), "nombre_dpe": totals.astype(int)})
    for index, label in enumerate(rules.LABELS):
        table[f"nombre_{label}"] = counts[:, index].astype(int)
    passoire_index = [rules.LABELS.index(label) for label in rules.PASSOIRE_LABELS]
    passoires = counts[:, passoire_index].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, passoires / np.maximum(totals, 1), np.nan)
    table["part_passoires"] = np.round(shares, 4)
    return table


def timeline_result(frame: pd.DataFrame, context: Context) -> FigureResult:
    """Figure 8: DPE per month and label mix, rule changes marked."""
    table = timeline_table(frame) if not frame.empty else pd.DataFrame()
    if table.empty:
        return _empty("timeline", TIMELINE_COLUMNS)

    first = date.fromisoformat(table["mois"].iloc[0] + "-01")
    last = date.fromisoformat(table["mois"].iloc[-1] + "-01")
    marks = [(day, text) for day, text in RULE_CHANGES if first <= day <= last]
    notes = [
        f"{date_fr(day)} : {_rule_note(day)}"
        for day, _ in RULE_CHANGES
        if (day, _) in marks
    ]
    return FigureResult(
        name="timeline",
        table=table,
        columns=TIMELINE_COLUMNS,
        insight=timeline_insight(frame),
        notes=notes,
        options={"marks": marks},
    )


def _rule_note(day: date) -> str:
    if day == rules.SMALL_SURFACE_DATE:
        return (
            "seuils relevés pour les logements de moins de 40 m² (arrêté du "
            "25 mars 2024)."
        )
    return (
        "facteur d'énergie primaire de l'électricité abaissé de 2,3 à 1,9 "
        "(arrêté du 13 août 2025)."
    )


def timeline_insight(frame: pd.DataFrame) -> str:
    """Compare the passoire share before and after the latest rule change seen."""
    dates = frame["date_etablissement_dpe"]
    passoire = frame["etiquette_dpe"].isin(rules.PASSOIRE_LABELS)
    for day, _ in reversed(RULE_CHANGES):
        cut = pd.Timestamp(day)
        before, after = dates < cut, dates >= cut
        if before.sum() >= MIN_GROUP and after.sum() >= MIN_GROUP:
            return (
                f"Part de passoires (F–G) : {pourcent(passoire[before].mean(), 0)} "
                f"des DPE établis avant le {date_fr(day)}, "
                f"{pourcent(passoire[after].mean(), 0)} depuis "
                f"({nombre(int(after.sum()))} DPE)."
            )

    per_month = dates.dt.to_period("M").value_counts()
    busiest = per_month.idxmax()
    return (
        f"Mois le plus chargé : {date_fr(busiest.start_time)[2:].strip()} avec "
        f"{nombre(int(per_month.max()))} DPE ; trop peu de DPE de part et d'autre "
        "des changements de règles pour les comparer."
    )


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the page: its data function and its builder."""

    name: str
    title: str
    compute: Callable[[pd.DataFrame, Context], FigureResult]
    plot: Callable[..., Figure]
    lazy: bool = True


FIGURES: dict[str, FigureSpec] = {
    spec.name: spec
    for spec in (
        FigureSpec(
            "altitude",
            "Altitude et consommation d'énergie",
            altitude_result,
            figures.plot_altitude_conso,
            lazy=False,
        ),
        FigureSpec(
            "bands",
            "Consommation par tranche d'altitude",
            bands_result,
            figures.plot_conso_by_band,
            lazy=False,
        ),
        FigureSpec(
            "extra-cost",
            "Surcoût annuel par rapport à la vallée",
            extra_cost_result,
            figures.plot_extra_cost,
        ),
        FigureSpec(
            "labels-bands",
            "Étiquettes DPE par tranche d'altitude",
            labels_bands_result,
            figures.plot_labels_by_band,
        ),
        FigureSpec(
            "period-band",
            "Période de construction et altitude",
            period_band_result,
            figures.plot_period_band,
        ),
        FigureSpec(
            "labels-categories",
            "Étiquettes par énergie, type de bâtiment et période",
            labels_categories_result,
            figures.plot_labels_by_category,
        ),
        FigureSpec(
            "measured",
            "Mesuré (Enedis) ou théorique (DPE) ?",
            measured_result,
            figures.plot_measured_vs_theoretical,
        ),
        FigureSpec(
            "timeline",
            "DPE au fil du temps",
            timeline_result,
            figures.plot_timeline,
        ),
    )
}


def figure_result(name: str, frame: pd.DataFrame, context: Context) -> FigureResult:
    """Compute the table, insight and notes of figure `name` on filtered DPE."""
    return FIGURES[name].compute(frame, context)
