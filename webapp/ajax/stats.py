"""Fragments of the statistics page: KPI with out-of-band swaps, figures, CSV."""

from __future__ import annotations

import logging

from flask import Response
from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask import url_for
from flask_htmx import make_response

from webapp import figures
from webapp import stats
from webapp.ajax import bp
from webapp.errors import render_error
from webapp.main.stats import display_table
from webapp.main.stats import page_query
from webapp.main.stats import search_communes
from webapp.main.stats import stats_context
from webapp.main.stats import stats_frame
from webapp.main.stats import with_query
from webapp.store import get_store

logger = logging.getLogger(__name__)


def _filters() -> stats.StatsFilters:
    """Parse the query string (raises FilterError)."""
    return stats.parse_filters(request.args, get_store().aggregates["stats_choices"])


def _figure_html(result: stats.FigureResult) -> str:
    """Render a result's figure, with the page's CSP nonce when one exists."""
    csp_nonce = current_app.jinja_env.globals.get("csp_nonce")
    nonce = csp_nonce() if callable(csp_nonce) else None
    return figures.fig_html(result.figure(), f"fig-{result.name}", nonce=nonce)


def _result(name: str, filters: stats.StatsFilters) -> stats.FigureResult:
    store = get_store()
    frame = stats.filtered(stats_frame(store), filters)
    context = stats.Context(
        filters=filters, enedis=store.aggregates.get("stats_enedis_per_dwelling")
    )
    return stats.figure_result(name, frame, context)


@bp.get("/stats/kpis")
def stats_kpis():
    """Return the KPI cards and, out of band, fresh figure slots and communes."""
    try:
        filters = _filters()
    except stats.FilterError as exc:
        return render_error(400, exc.message)

    context = stats_context(filters, oob=True)
    choices = context["choices"]
    context["commune_q"] = request.args.get("q", "")
    context["commune_results"] = search_communes(
        choices, context["commune_q"], filters.communes
    )
    html = render_template("_stats_kpis.html", **context)
    return make_response(html, push_url=context["permalink"])


@bp.get("/stats/communes")
def stats_communes():
    """Return the communes matching the search box as checkboxes."""
    choices = get_store().aggregates["stats_choices"]
    selected = tuple(
        c for c in request.args.getlist("commune") if c in choices.communes
    )
    results = search_communes(choices, request.args.get("q", ""), selected)
    return render_template(
        "_stats_communes.html",
        commune_results=results,
        commune_q=request.args.get("q", ""),
    )


@bp.get("/stats/<name>")
def stats_figure(name: str):
    """Return one figure with its insight, notes, data table and CSV link."""
    if name not in stats.FIGURES:
        abort(404)
    try:
        filters = _filters()
    except stats.FilterError as exc:
        return render_error(400, exc.message)

    result = _result(name, filters)
    csv_url = with_query(url_for("ajax.stats_csv", name=name), page_query(filters))
    return render_template(
        "_stats_figure.html",
        result=result,
        spec=stats.FIGURES[name],
        figure_html="" if result.empty else _figure_html(result),
        table=display_table(result),
        csv_url=csv_url,
    )


@bp.get("/stats/<name>.csv")
def stats_csv(name: str):
    """Download exactly the data of one figure as CSV."""
    if name not in stats.FIGURES:
        abort(404)
    try:
        filters = _filters()
    except stats.FilterError as exc:
        return render_error(400, exc.message)

    result = _result(name, filters)
    response = Response(result.csv(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="atlas74-stats-{name}.csv"'
    )
    return response
