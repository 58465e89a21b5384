"""The statistics page: shared filters, KPI cards and eight lazily loaded figures."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd
from flask import render_template
from flask import request
from flask import url_for

from webapp import stats
from webapp.formatting import nombre
from webapp.formatting import pourcent
from webapp.main import bp
from webapp.store import get_store

#: Rows of a data table shown on the page; the CSV always has every row.
TABLE_MAX_ROWS = 60

#: Commune search results shown at once.
COMMUNE_RESULTS = 12


def page_query(filters: stats.StatsFilters) -> str:
    """Return the query string of a selection ('' for the defaults)."""
    return urlencode(filters.query())


def with_query(url: str, query: str) -> str:
    """Append a query string to a URL when there is one."""
    return f"{url}?{query}" if query else url


def stats_frame(store) -> pd.DataFrame:
    """Return the narrow DPE table of the statistics (the full one as fallback)."""
    return store.aggregates.get("stats_dpe", store.dpe)


def stats_context(filters: stats.StatsFilters, oob: bool = False) -> dict:
    """Return what the page and the KPI fragment render for a selection."""
    store = get_store()
    choices = store.aggregates["stats_choices"]
    frame = stats.filtered(stats_frame(store), filters)
    query = page_query(filters)
    return {
        "filters": filters,
        "choices": choices,
        "kpis": stats.kpis(frame),
        "query": query,
        "permalink": with_query(url_for("main.stats"), query),
        "specs": list(stats.FIGURES.values()),
        "selected_communes": [
            (code, choices.communes[code]) for code in filters.communes
        ],
        "commune_results": [],
        "commune_q": "",
        "oob": oob,
        "types_batiment": stats.TYPES_BATIMENT,
        "sources": stats.SOURCES,
        "min_group": stats.MIN_GROUP,
        "price_default": stats.DEFAULT_PRICE_EUR_KWH,
        "price_date": stats.DEFAULT_PRICE_DATE,
        "price_source": stats.DEFAULT_PRICE_SOURCE,
        "surface_range": stats.SURFACE_RANGE,
        "price_range": stats.PRICE_RANGE,
    }


def search_communes(
    choices: stats.Choices, text: str, exclude: tuple[str, ...]
) -> list[tuple[str, str]]:
    """Return the communes whose name or code starts with or contains `text`."""
    wanted = stats.fold(text.strip())
    if not wanted:
        return []
    starts, contains = [], []
    for code, name in choices.communes.items():
        if code in exclude:
            continue
        folded = stats.fold(name)
        if folded.startswith(wanted) or code.startswith(wanted):
            starts.append((code, name))
        elif wanted in folded:
            contains.append((code, name))
    return (starts + contains)[:COMMUNE_RESULTS]


def display_table(result: stats.FigureResult) -> dict:
    """Format a figure's table for the page: French headers and numbers."""
    table = result.table.head(TABLE_MAX_ROWS)
    headers = [(key, result.columns.get(key, key)) for key in table.columns]
    rows = []
    for record in table.itertuples(index=False):
        rows.append(
            [_cell(key, value) for (key, _), value in zip(headers, record, strict=True)]
        )
    return {
        "headers": headers,
        "rows": rows,
        "total": len(result.table),
        "truncated": len(result.table) > TABLE_MAX_ROWS,
    }


def _cell(key: str, value) -> tuple[str, bool]:
    """Return (text, is_number) for one table cell."""
    if key == "tranche_altitude":
        return stats.band_label(str(value)), False
    if isinstance(value, str) or value is None:
        return value or "", False
    if key.startswith("part_"):
        return pourcent(value, 1), True
    if key in ("annee", "altitude_min", "altitude_max"):
        return str(int(value)), True
    if float(value).is_integer():
        return nombre(value), True
    decimals = 2 if key.endswith("_mwh") or key == "rapport" else 1
    return nombre(value, decimals), True


@bp.get("/stats", endpoint="stats")
def stats_page():
    """Show the statistics page for the selection in the query string."""
    choices = get_store().aggregates["stats_choices"]
    errors = {}
    try:
        filters = stats.parse_filters(request.args, choices)
    except stats.FilterError as exc:
        errors = exc.fields
        filters = stats.StatsFilters()

    context = stats_context(filters)
    context["errors"] = errors
    return render_template("stats.html", **context), 400 if errors else 200
