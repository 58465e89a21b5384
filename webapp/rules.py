"""DPE 2021 (3CL) label rules: thresholds, labels, 2026 factor and rental calendar.

Pure functions only, shared by the demo generator, the figures, the prediction page
and the models. Sources: arrêté du 31 mars 2021 (double threshold), arrêté du 25 mars
2024 (Sref below 40 m² from 1 July 2024), arrêté du 13 août 2025 (electricity factor
1.9 from 1 January 2026), loi Climat et Résilience (rental calendar); summarised in
`open-data.md` §5.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any
from typing import NamedTuple

import numpy as np
import pandas as pd

from webapp import formatting

#: DPE classes, best first.
LABELS: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G")

#: Classes counted as "passoire énergétique".
PASSOIRE_LABELS: tuple[str, ...] = ("F", "G")

#: Colours of the DPE scale (dark green to red), as commonly reproduced from the 2021
#: label graphic; the single place where the app defines them.
LABEL_COLORS: dict[str, str] = {
    "A": "#009C6D",
    "B": "#52B153",
    "C": "#A5CC74",
    "D": "#F4E70F",
    "E": "#F0B40F",
    "F": "#EB8235",
    "G": "#D7221F",
}

#: Climate zones of the 3CL method.
ZONES_CLIMATIQUES: tuple[str, ...] = (
    "H1a",
    "H1b",
    "H1c",
    "H2a",
    "H2b",
    "H2c",
    "H2d",
    "H3",
)

#: Zones where the "supérieur à 800m" altitude class relaxes the E/F bounds.
HIGH_ALTITUDE_ZONES: frozenset[str] = frozenset({"H1b", "H1c", "H2d"})

#: ADEME spellings of `classe_altitude`, lowest first.
CLASSES_ALTITUDE: tuple[str, ...] = ("inférieur à 400m", "400-800m", "supérieur à 800m")
CLASSE_ALTITUDE_HIGH = CLASSES_ALTITUDE[2]

#: Upper bounds (strict) of classes A..F, Sref >= 40 m².
BASE_EP: tuple[float, ...] = (70, 110, 180, 250, 330, 420)
BASE_GES: tuple[float, ...] = (6, 11, 30, 50, 70, 100)

#: E and F bounds replacing the base ones above 800 m in H1b/H1c/H2d.
HIGH_ALTITUDE_EP_EF: tuple[float, float] = (390, 500)
HIGH_ALTITUDE_GES_EF: tuple[float, float] = (80, 110)

#: Date from which the small-dwelling table applies.
SMALL_SURFACE_DATE = date(2024, 7, 1)

#: Sref (m²) below which the small-dwelling table applies.
SMALL_SURFACE_LIMIT = 40

#: Sref (m²) at or below which the small-dwelling bounds stay constant.
SMALL_SURFACE_FLOOR = 8

#: Small-dwelling table (arrêté du 25 mars 2024, as tabulated in open-data.md §5.3):
#: Sref -> (EP A..F, GHG A..F, high-altitude EP E/F, high-altitude GHG E/F).
SMALL_SURFACE_TABLE: dict[int, tuple[tuple[float, ...], ...]] = {
    8: (
        (146, 186, 386, 505, 622, 739),
        (11, 16, 44, 68, 90, 122),
        (682, 819),
        (100, 132),
    ),
    10: (
        (124, 164, 329, 428, 533, 640),
        (10, 15, 40, 62, 84, 115),
        (593, 720),
        (94, 125),
    ),
    15: (
        (100, 140, 263, 333, 421, 514),
        (8, 13, 36, 56, 76, 107),
        (481, 594),
        (86, 117),
    ),
    20: (
        (88, 128, 230, 300, 385, 476),
        (8, 13, 34, 54, 74, 104),
        (445, 556),
        (84, 114),
    ),
    25: (
        (81, 121, 210, 280, 363, 454),
        (7, 12, 32, 52, 73, 103),
        (423, 534),
        (83, 113),
    ),
    30: (
        (76, 116, 197, 267, 349, 439),
        (7, 12, 32, 52, 72, 102),
        (409, 519),
        (82, 112),
    ),
    35: (
        (73, 113, 188, 258, 338, 428),
        (7, 12, 31, 51, 71, 101),
        (398, 508),
        (81, 111),
    ),
    39: (
        (71, 111, 182, 252, 332, 422),
        (7, 12, 31, 51, 71, 101),
        (392, 502),
        (81, 111),
    ),
    40: (
        (70, 110, 180, 250, 330, 420),
        (6, 11, 30, 50, 70, 100),
        (390, 500),
        (80, 110),
    ),
}

#: Electricity primary-energy factor before / from 1 January 2026.
ELEC_FACTOR_BEFORE_2026 = 2.3
ELEC_FACTOR_2026 = 1.9
ELEC_FACTOR_DATE = date(2026, 1, 1)

#: Rental bans of the loi Climat et Résilience (metropolitan France): label -> date.
RENTAL_BANS: dict[str, date] = {
    "G": date(2025, 1, 1),
    "F": date(2028, 1, 1),
    "E": date(2034, 1, 1),
}

#: Final energy (kWh/m²/yr) above which a dwelling is "indécent" from 2023.
INDECENCY_EF_2023 = 450
INDECENCY_DATE = date(2023, 1, 1)

#: Resolution of published EP/GHG values, used for "strictly below" reductions.
VALUE_RESOLUTION = 0.1


@dataclass(frozen=True)
class Thresholds:
    """Strict upper bounds of classes A..F for primary energy and GHG."""

    ep: tuple[float, ...]
    ges: tuple[float, ...]


@dataclass(frozen=True)
class NextClassGap:
    """Reductions needed to reach the next better DPE class."""

    current: str
    target: str | None
    ep_reduction: float
    ges_reduction: float


class RentalStatus(NamedTuple):
    """Rental status of a dwelling on a given day."""

    banned: bool
    since_or_from: date | None
    message_fr: str


def _fold(value: str) -> str:
    """Return `value` lower-cased, without accents or spaces."""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(stripped.lower().split())


_ALTITUDE_BY_FOLD = {_fold(c): c for c in CLASSES_ALTITUDE}
_ZONE_BY_FOLD = {_fold(z): z for z in ZONES_CLIMATIQUES}
# ADEME inventories also list a "Non affecté" class: it carries no adjustment.
_ALTITUDE_UNASSIGNED = {"nonaffecte", ""}


def _is_missing(value: Any) -> bool:
    """Tell whether a scalar is None, NaN or NaT."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def normalise_label(label: str) -> str:
    """Return a DPE class in upper case, or raise ValueError."""
    if isinstance(label, str) and label.strip().upper() in LABELS:
        return label.strip().upper()
    raise ValueError(f"Unknown DPE label {label!r}; allowed: {', '.join(LABELS)}")


def normalise_zone(value: Any) -> str | None:
    """Return the 3CL spelling of a climate zone (e.g. 'H1C' -> 'H1c')."""
    if _is_missing(value):
        return None
    zone = _ZONE_BY_FOLD.get(_fold(str(value)))
    if zone is None:
        allowed = ", ".join(ZONES_CLIMATIQUES)
        raise ValueError(f"Unknown zone_climatique {value!r}; allowed: {allowed}")
    return zone


def normalise_classe_altitude(value: Any) -> str | None:
    """Return the ADEME spelling of an altitude class, or None when missing."""
    if _is_missing(value):
        return None
    folded = _fold(str(value))
    if folded in _ALTITUDE_UNASSIGNED:
        return None
    classe = _ALTITUDE_BY_FOLD.get(folded)
    if classe is None:
        allowed = ", ".join(CLASSES_ALTITUDE)
        raise ValueError(f"Unknown classe_altitude {value!r}; allowed: {allowed}")
    return classe


def classe_altitude_from_altitude(metres: float | None) -> str | None:
    """Return the ADEME altitude class of an altitude in metres (800 m is 400-800m)."""
    if _is_missing(metres):
        return None
    if metres < 400:
        return CLASSES_ALTITUDE[0]
    if metres <= 800:
        return CLASSES_ALTITUDE[1]
    return CLASSES_ALTITUDE[2]


def electricity_factor(date_dpe: Any = None) -> float:
    """Return the electricity primary-energy factor in force on a DPE date."""
    day = _to_date(date_dpe)
    if day is not None and day < ELEC_FACTOR_DATE:
        return ELEC_FACTOR_BEFORE_2026
    return ELEC_FACTOR_2026


def _to_date(value: Any) -> date | None:
    """Convert a date, datetime, Timestamp or ISO string to a date (None if missing)."""
    if _is_missing(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, str):
        # ISO only: a dd/mm/yyyy string would be read month-first.
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(
                f"Unusable DPE date {value!r}; expected an ISO date YYYY-MM-DD"
            ) from None
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    raise ValueError(f"Unusable DPE date {value!r}; expected a date or ISO string")


def _is_high_altitude(zone: str | None, classe: str | None) -> bool:
    """Tell whether the high-altitude E/F bounds apply."""
    return zone in HIGH_ALTITUDE_ZONES and classe == CLASSE_ALTITUDE_HIGH


def _small_surface_row(sref: int) -> tuple[tuple[float, ...], ...]:
    """Return the small-dwelling bounds for an integer Sref, interpolating rows."""
    sref = min(max(sref, SMALL_SURFACE_FLOOR), SMALL_SURFACE_LIMIT)
    if sref in SMALL_SURFACE_TABLE:
        return SMALL_SURFACE_TABLE[sref]
    keys = sorted(SMALL_SURFACE_TABLE)
    upper = next(k for k in keys if k > sref)
    lower = max(k for k in keys if k < sref)
    weight = (sref - lower) / (upper - lower)
    return tuple(
        tuple(
            lo + (hi - lo) * weight for lo, hi in zip(low_part, high_part, strict=True)
        )
        for low_part, high_part in zip(
            SMALL_SURFACE_TABLE[lower], SMALL_SURFACE_TABLE[upper], strict=True
        )
    )


def _sref(surface: Any, date_dpe: Any) -> int:
    """Return the Sref (m², rounded) that selects the thresholds; 40 means base."""
    if _is_missing(surface) or surface <= 0:
        # An unknown or unusable surface is treated as a normal-size dwelling.
        return SMALL_SURFACE_LIMIT
    day = _to_date(date_dpe)
    # An unknown date is read as a current DPE, so the small-dwelling rules apply.
    if day is not None and day < SMALL_SURFACE_DATE:
        return SMALL_SURFACE_LIMIT
    rounded = math.floor(float(surface) + 0.5)
    return min(max(rounded, SMALL_SURFACE_FLOOR), SMALL_SURFACE_LIMIT)


def _build(sref: int, high_altitude: bool) -> Thresholds:
    """Return the thresholds for an integer Sref and altitude flag."""
    ep, ges, ep_high, ges_high = _small_surface_row(sref)
    if high_altitude:
        ep = (*ep[:4], *ep_high)
        ges = (*ges[:4], *ges_high)
    return Thresholds(ep=tuple(float(v) for v in ep), ges=tuple(float(v) for v in ges))


def thresholds(
    surface: float | None = None,
    zone_climatique: str | None = None,
    classe_altitude: str | None = None,
    date_dpe: Any = None,
) -> Thresholds:
    """Return the class bounds that apply to one DPE."""
    zone = normalise_zone(zone_climatique)
    classe = normalise_classe_altitude(classe_altitude)
    return _build(_sref(surface, date_dpe), _is_high_altitude(zone, classe))


def _class_index(value: float, bounds: tuple[float, ...], name: str) -> int:
    """Return the index in LABELS of the first class whose bound exceeds value."""
    if _is_missing(value) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    for index, bound in enumerate(bounds):
        if value < bound:
            return index
    return len(bounds)


def classe_energie(ep: float, **ctx: Any) -> str:
    """Return the primary-energy class of an EP value (kWhEP/m²/yr, 5 uses)."""
    return LABELS[_class_index(ep, thresholds(**ctx).ep, "ep")]


def classe_ges(ges: float, **ctx: Any) -> str:
    """Return the GHG class of an emission value (kgCO2eq/m²/yr)."""
    return LABELS[_class_index(ges, thresholds(**ctx).ges, "ges")]


def etiquette_dpe(ep: float, ges: float, **ctx: Any) -> str:
    """Return the DPE label: the worse of the energy and GHG classes."""
    bounds = thresholds(**ctx)
    worst = max(
        _class_index(ep, bounds.ep, "ep"),
        _class_index(ges, bounds.ges, "ges"),
    )
    return LABELS[worst]


def is_passoire(label: str) -> bool:
    """Tell whether a DPE label is a "passoire énergétique" (F or G)."""
    return normalise_label(label) in PASSOIRE_LABELS


def _threshold_cube() -> tuple[np.ndarray, np.ndarray]:
    """Return EP and GHG bounds indexed by [high_altitude, sref - 8, class]."""
    srefs = range(SMALL_SURFACE_FLOOR, SMALL_SURFACE_LIMIT + 1)
    ep = np.array([[_build(s, high).ep for s in srefs] for high in (False, True)])
    ges = np.array([[_build(s, high).ges for s in srefs] for high in (False, True)])
    return ep, ges


_EP_CUBE, _GES_CUBE = _threshold_cube()


def _normalise_unique(values: Any, normaliser: Any) -> np.ndarray:
    """Apply a scalar normaliser to the unique values of an array only."""
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = np.array([normaliser(u) for u in uniques] + [None], dtype=object)
    return mapped[codes]


def _date_array(values: Any) -> np.ndarray:
    """Convert dates, datetimes or ISO strings to datetime64 (NaT when missing)."""
    series = pd.Series(values)
    if series.dtype.kind == "M":
        return series.to_numpy(dtype="datetime64[ns]")
    series = series.astype(object)
    text = series.map(lambda v: isinstance(v, str))
    parsed = pd.to_datetime(series.where(~text), errors="coerce")
    if text.any():
        iso = pd.to_datetime(
            series[text].str.strip().str[:10], format="%Y-%m-%d", errors="coerce"
        )
        bad = iso.isna() & series[text].str.strip().ne("")
        if bad.any():
            raise ValueError(
                f"Unusable DPE date {series[text][bad].iloc[0]!r}; "
                "expected an ISO date YYYY-MM-DD"
            )
        parsed = parsed.where(~text, iso)
    return parsed.to_numpy(dtype="datetime64[ns]")


def _sref_array(surface: Any, date_dpe: Any) -> np.ndarray:
    """Return the integer Sref per row, 40 where base thresholds apply."""
    surf = np.asarray(pd.to_numeric(pd.Series(surface), errors="coerce"), dtype=float)
    dates = _date_array(date_dpe)
    old = dates < np.datetime64(SMALL_SURFACE_DATE)
    usable = np.isfinite(surf) & (surf > 0) & ~old
    rounded = np.floor(np.where(usable, surf, SMALL_SURFACE_LIMIT) + 0.5)
    return np.clip(rounded, SMALL_SURFACE_FLOOR, SMALL_SURFACE_LIMIT).astype(int)


def _broadcast(value: Any, n: int) -> Any:
    """Repeat a scalar context value to length n; leave arrays as they are."""
    if value is None or np.ndim(value) == 0:
        return [value] * n
    if len(value) != n:
        raise ValueError(f"context array has length {len(value)}, expected {n}")
    return value


def class_index_array(
    ep: Any,
    ges: Any,
    surface: Any = None,
    zone: Any = None,
    classe_altitude: Any = None,
    date: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the EP and GHG class indices (0=A … 6=G, -1 missing) per row."""
    ep_values = np.asarray(pd.to_numeric(pd.Series(ep), errors="coerce"), dtype=float)
    ges_values = np.asarray(pd.to_numeric(pd.Series(ges), errors="coerce"), dtype=float)
    n = len(ep_values)
    if len(ges_values) != n:
        raise ValueError(f"ep has {n} values but ges has {len(ges_values)}")
    zones = _normalise_unique(_broadcast(zone, n), normalise_zone)
    classes = _normalise_unique(
        _broadcast(classe_altitude, n), normalise_classe_altitude
    )

    high = (
        np.isin(zones, list(HIGH_ALTITUDE_ZONES)) & (classes == CLASSE_ALTITUDE_HIGH)
    ).astype(int)
    sref = _sref_array(_broadcast(surface, n), _broadcast(date, n))
    ep_bounds = _EP_CUBE[high, sref - SMALL_SURFACE_FLOOR]
    ges_bounds = _GES_CUBE[high, sref - SMALL_SURFACE_FLOOR]

    ep_index = (ep_values[:, None] >= ep_bounds).sum(axis=1)
    ges_index = (ges_values[:, None] >= ges_bounds).sum(axis=1)
    ep_index[~np.isfinite(ep_values)] = -1
    ges_index[~np.isfinite(ges_values)] = -1
    return ep_index, ges_index


def etiquette_dpe_array(
    ep: Any,
    ges: Any,
    surface: Any = None,
    zone: Any = None,
    classe_altitude: Any = None,
    date: Any = None,
) -> np.ndarray:
    """Return the DPE label per row (object array, None where EP or GHG is missing)."""
    ep_index, ges_index = class_index_array(
        ep, ges, surface, zone, classe_altitude, date
    )
    worst = np.maximum(ep_index, ges_index)
    labels = np.array([*LABELS, None], dtype=object)
    worst[(ep_index < 0) | (ges_index < 0)] = len(LABELS)
    return labels[worst]


def classe_ges_array(
    ges: Any,
    surface: Any = None,
    zone: Any = None,
    classe_altitude: Any = None,
    date: Any = None,
) -> np.ndarray:
    """Return the GHG class per row (object array, None where GHG is missing)."""
    _, ges_index = class_index_array(
        np.zeros(len(np.atleast_1d(ges))), ges, surface, zone, classe_altitude, date
    )
    labels = np.array([*LABELS, None], dtype=object)
    ges_index[ges_index < 0] = len(LABELS)
    return labels[ges_index]


def project_ep_2026(ep: Any, ef: Any) -> Any:
    """Re-project an EP value computed with factor 2.3 onto the 2026 factor 1.9."""
    # EP - EF is the electricity share times 1.3 (2.3 - 1); it becomes 0.9 (1.9 - 1).
    ep_values = np.asarray(ep, dtype=float)
    ef_values = np.asarray(ef, dtype=float)
    projected = ef_values + (ep_values - ef_values) * (
        (ELEC_FACTOR_2026 - 1) / (ELEC_FACTOR_BEFORE_2026 - 1)
    )
    return float(projected) if projected.ndim == 0 else projected


def _reduction(value: float, bound: float) -> float:
    """Return the smallest cut bringing value strictly below bound (0 if already)."""
    if value < bound:
        return 0.0
    return round(value - bound + VALUE_RESOLUTION, 1)


def distance_to_next_class(ep: float, ges: float, **ctx: Any) -> NextClassGap:
    """Return the EP and GHG reductions needed to reach the next better label."""
    bounds = thresholds(**ctx)
    current = etiquette_dpe(ep, ges, **ctx)
    index = LABELS.index(current)
    if index == 0:
        return NextClassGap(current, None, 0.0, 0.0)

    target = index - 1
    return NextClassGap(
        current=current,
        target=LABELS[target],
        ep_reduction=_reduction(ep, bounds.ep[target]),
        ges_reduction=_reduction(ges, bounds.ges[target]),
    )


def format_date_fr(day: date) -> str:
    """Return a date written in French, e.g. '1er janvier 2025'."""
    return formatting.date_fr(day)


def is_indecent(ef_par_m2: float | None, on: date) -> bool:
    """Tell whether final energy above 450 kWh/m²/yr makes a dwelling indecent."""
    if _is_missing(ef_par_m2) or on < INDECENCY_DATE:
        return False
    return float(ef_par_m2) > INDECENCY_EF_2023


def rental_status(label: str, on: date, ef_par_m2: float | None = None) -> RentalStatus:
    """Return whether a label (and final energy, if given) bars new leases on a day."""
    label = normalise_label(label)
    ban = RENTAL_BANS.get(label)
    if ban is not None and on >= ban:
        return RentalStatus(
            True, ban, f"Interdit à la location depuis le {format_date_fr(ban)}"
        )

    if is_indecent(ef_par_m2, on):
        return RentalStatus(
            True,
            INDECENCY_DATE,
            "Logement indécent (plus de 450 kWh/m²/an d'énergie finale) : "
            f"interdit à la location depuis le {format_date_fr(INDECENCY_DATE)}",
        )
    if ban is not None:
        return RentalStatus(
            False, ban, f"Interdit à la location à partir du {format_date_fr(ban)}"
        )
    return RentalStatus(False, None, "Aucune interdiction de location prévue")


def passoire_share(labels: Iterable[str | None]) -> float:
    """Return the share of F/G among non-missing labels (NaN when none)."""
    known = [label for label in labels if not _is_missing(label)]
    if not known:
        return float("nan")
    return sum(normalise_label(label) in PASSOIRE_LABELS for label in known) / len(
        known
    )
