"""Fragments of the map page: map + table, table alone, CSV, suggestions, commune."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from flask import Response
from flask import abort
from flask import render_template
from flask import request
from flask import url_for
from markupsafe import Markup

from webapp import geolocate
from webapp import maps
from webapp.ajax import bp
from webapp.extensions import htmx
from webapp.store import get_store

logger = logging.getLogger(__name__)

#: Error slot of each filter; table-state errors share the general slot.
ERROR_SLOTS = {
    "departement": "erreur-departement",
    "annee": "erreur-annee",
    "indicateur": "erreur-indicateur",
    "densite_min": "erreur-densite_min",
    "densite_max": "erreur-densite_max",
    "altitude_min": "erreur-altitude_min",
    "altitude_max": "erreur-altitude_max",
    "commune": "erreur-commune",
    "mode": "erreur-mode",
    "tri": "erreur-filtres",
    "ordre": "erreur-filtres",
    "page": "erreur-filtres",
}

#: Most suggestions returned for one search.
SUGGESTIONS = 12


def map_data() -> maps.MapData:
    """Return the map aggregates of the data in service."""
    data = get_store().aggregates.get("map")
    if data is None:
        abort(503, "Les données de la carte ne sont pas disponibles.")
    return data


@bp.app_template_filter("script_nonce")
def script_nonce(html: str, nonce: str | None) -> Markup:
    """Mark figure HTML safe, with the CSP nonce on its script when one exists.

    Every figure of the map passes through here (via `_map_plot.html`), so the
    nonce is added in one place.
    """
    if nonce:
        html = maps.SCRIPT_OPEN.sub(f'<script nonce="{Markup.escape(nonce)}">', html)
    return Markup(html)


def fragment_url(endpoint: str, filters: maps.MapFilters, **changes) -> str:
    """Return the URL of an endpoint for a map state (defaults left out)."""
    query = filters.query(**changes)
    base = url_for(endpoint)
    return f"{base}?{urlencode(query)}" if query else base


def page_url(filters: maps.MapFilters, **changes) -> str:
    """Return the canonical page URL of a map state (what the address bar shows)."""
    return fragment_url("main.map", filters, **changes)


def _selected_row(data, filters):
    if not filters.commune:
        return None
    return data.commune_row(filters.commune, filters.annee)


def map_figure_html(data: maps.MapData, filters: maps.MapFilters) -> tuple[str, str]:
    """Return the map fragment HTML (no layout) and its aria-label."""
    frame = maps.map_frame(data, filters)
    selected = _selected_row(data, filters)
    addresses = None
    if filters.commune:
        geolocation = get_store().aggregates.get("geolocation")
        if geolocation is not None:
            addresses = geolocate.commune_addresses(
                geolocation, filters.commune, filters.annee
            )
        if selected is None:
            selected = _commune_reference_row(filters.commune)
    if filters.mode == "chaleur":
        fig = maps.density_map(frame, filters.annee, selected, addresses)
    else:
        fig = maps.scatter_map(
            frame, filters.indicateur, filters.annee, selected, addresses
        )
    filename = "carte-consommation-" + (
        "-".join(filters.departements) if filters.departements else "france"
    )
    html = maps.figure_html(fig, maps.MAP_DIV_ID, filename)
    return html, maps.describe(frame, filters, data)


def _commune_reference_row(code: str):
    communes = get_store().communes
    row = communes[communes["code_insee"] == code]
    if row.empty:
        return None
    first = row.iloc[0]
    return {
        "latitude": first["latitude_centre"],
        "longitude": first["longitude_centre"],
    }


def _sort_change(filters: maps.MapFilters, column: str) -> dict:
    """Clicking the sorted column flips the order; another column sorts it down."""
    if filters.tri == column:
        flipped = "asc" if filters.ordre == "desc" else "desc"
        return {"tri": column, "ordre": flipped, "page": 1}
    ordre = "asc" if column in ("code_insee", "nom_commune") else "desc"
    return {"tri": column, "ordre": ordre, "page": 1}


def table_context(data: maps.MapData, filters: maps.MapFilters) -> dict:
    """Return what `_map_table.html` needs."""
    rows = maps.table_rows(data, filters)
    page = maps.table_page(rows, filters.page)
    return {
        "table": page,
        "table_cells": maps.display_rows(page.rows),
        "table_codes": page.rows["code_insee"].tolist(),
        "columns": maps.TABLE_COLUMNS,
        "numeric_columns": set(maps.TABLE_DECIMALS) | {"part_passoires"},
        "sort_url": lambda column: fragment_url(
            "ajax.communes_table", filters, **_sort_change(filters, column)
        ),
        "sort_href": lambda column: page_url(filters, **_sort_change(filters, column)),
        "page_url": lambda number: fragment_url(
            "ajax.communes_table", filters, page=number
        ),
        "page_href": lambda number: page_url(filters, page=number),
        "csv_url": fragment_url("ajax.communes_csv", filters, page=1),
    }


def commune_context(data: maps.MapData, code: str | None, annee: int | None) -> dict:
    """Return what `_map_commune.html` needs for one commune (or none)."""
    if not code:
        return {"commune": None}
    row = data.commune_row(code, annee)
    counts = data.label_counts.loc[code] if code in data.label_counts.index else None
    chart = None
    name = str(data.commune_names.get(code, code))
    if counts is not None and int(counts.sum()) > 0:
        chart = maps.figure_html(
            maps.label_chart(counts, name),
            maps.LABEL_CHART_DIV_ID,
            f"etiquettes-dpe-{code}",
        )
    geolocation = get_store().aggregates.get("geolocation")
    precisions = {}
    if geolocation is not None:
        addresses = geolocate.commune_addresses(geolocation, code, annee)
        precisions = addresses["precision"].value_counts().to_dict()
    return {
        "commune": {
            "code": code,
            "nom": name,
            "row": row,
            "annee": annee,
            "label_chart": chart,
            "precisions": precisions,
            "precision_labels": geolocate.PRECISION_LABELS,
            "labels": maps.METRICS,
        }
    }


def map_context(data: maps.MapData, filters: maps.MapFilters) -> dict:
    """Return the whole context of the map fragments for a valid state."""
    html, label = map_figure_html(data, filters)
    return {
        "filters": filters,
        "map_html": html,
        "map_label": label,
        "unavailable_metric": filters.indicateur in maps.DPE_METRICS,
        **table_context(data, filters),
        **commune_context(data, filters.commune, filters.annee),
    }


def filter_error_response(error: maps.FilterError):
    """Answer invalid filters: 400, messages next to their controls, map kept."""
    logger.debug("map filters rejected: %s", error.fields)
    slots: dict[str, list[str]] = {}
    for name, message in error.fields.items():
        slots.setdefault(ERROR_SLOTS.get(name, "erreur-filtres"), []).append(message)
    first = next(iter(slots))
    body = render_template(
        "_map_errors.html", slots=slots, primary=first, all_slots=ERROR_SLOTS
    )
    return htmx_response(
        body,
        400,
        retarget=f"#{first}",
        reswap="innerHTML",
        push_url="false",
    )


def htmx_response(body, status: int = 200, **headers) -> Response:
    """Return a fragment response with HX-* headers (only for htmx requests)."""
    from flask_htmx import make_response

    if not htmx:
        return Response(body, status=status, mimetype="text/html")
    return make_response(body, status, **headers)


@bp.get("/map")
def map_fragments():
    """Return the map, the table and the commune detail for the filters."""
    data = map_data()
    try:
        filters = maps.parse_filters(request.args, data)
    except maps.FilterError as error:
        return filter_error_response(error)

    body = render_template("_map_fragments.html", **map_context(data, filters))
    return htmx_response(body, push_url=page_url(filters))


@bp.get("/communes/table")
def communes_table():
    """Return one sorted page of the communes table."""
    data = map_data()
    try:
        filters = maps.parse_filters(request.args, data)
    except maps.FilterError as error:
        return filter_error_response(error)

    body = render_template(
        "_map_table.html", filters=filters, **table_context(data, filters)
    )
    return htmx_response(body, push_url=page_url(filters))


@bp.get("/communes.csv")
def communes_csv():
    """Download every filtered row of the table as CSV (UTF-8 BOM, ';')."""
    data = map_data()
    try:
        filters = maps.parse_filters(request.args, data)
    except maps.FilterError as error:
        return filter_error_response(error)

    rows = maps.table_rows(data, filters)
    response = Response(maps.csv_bytes(rows), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{maps.csv_filename(filters)}"'
    )
    return response


@bp.get("/communes/suggest")
def communes_suggest():
    """Return the communes matching the typed text as datalist options."""
    text = request.args.get("q") or request.args.get("commune") or ""
    data = map_data()
    suggestions = data.suggest(text[:80], limit=SUGGESTIONS) if text.strip() else []
    return render_template("_map_suggestions.html", suggestions=suggestions)


@bp.get("/communes/<code_insee>")
def commune_detail(code_insee: str):
    """Return the detail of one commune (figures and DPE labels)."""
    data = map_data()
    code = code_insee.strip().upper()
    if code not in data.commune_names.index:
        abort(404, f"Commune inconnue : {code_insee}.")
    try:
        filters = maps.parse_filters({"annee": request.args.get("annee")}, data)
    except maps.FilterError as error:
        return filter_error_response(error)

    return render_template(
        "_map_commune.html", **commune_context(data, code, filters.annee)
    )
