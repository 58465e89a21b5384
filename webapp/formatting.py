"""French formatting of numbers and dates, also registered as Jinja filters."""

from __future__ import annotations

import math
from datetime import date
from datetime import datetime

#: Narrow no-break space, the French thousands separator.
THIN_SPACE = "\u202f"
#: No-break space before a unit or percent sign.
NBSP = "\u00a0"

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


def nombre(value, decimals: int = 0, missing: str = "–") -> str:
    """Format a number the French way: 12 345,6."""
    if _missing(value):
        return missing

    text = f"{float(value):,.{decimals}f}"
    return text.replace(",", THIN_SPACE).replace(".", ",")


def parse_number(value) -> float | None:
    """Parse a number typed the French way (1 234,5) or not; None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace(THIN_SPACE, "").replace(NBSP, "")
        text = text.replace(" ", "").replace(",", ".")
        try:
            number = float(text)
        except ValueError:
            return None
    return number if math.isfinite(number) else None


def is_blank(value) -> bool:
    """Tell whether an input is absent: None, NaN or blank text."""
    # Cheapest checks first: this runs some twenty times per validated row.
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    # NaN is the only value unequal to itself (float, numpy float).
    return isinstance(value, float) and value != value


def pourcent(value, decimals: int = 1, missing: str = "–") -> str:
    """Format a share in [0, 1] as a French percentage: 12,3 %."""
    if _missing(value):
        return missing
    return f"{nombre(value * 100, decimals)}{NBSP}%"


def date_fr(value, missing: str = "–") -> str:
    """Format a date as '3 décembre 2026' (1er for the first day)."""
    if value is None or (not isinstance(value, date) and _missing(value)):
        return missing
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()

    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"


def init_app(app) -> None:
    """Register the formatting helpers as Jinja filters."""
    app.jinja_env.filters["nombre"] = nombre
    app.jinja_env.filters["pourcent"] = pourcent
    app.jinja_env.filters["date_fr"] = date_fr
