"""The map page (also the home page): consumption per commune, table, exports."""

from __future__ import annotations

from flask import render_template
from flask import request

from webapp import geolocate
from webapp import maps
from webapp.ajax.map import ERROR_SLOTS
from webapp.ajax.map import map_context
from webapp.ajax.map import map_data
from webapp.main import bp
from webapp.store import get_store


def form_values(args) -> dict:
    """Return the raw values the user sent, to refill the form as typed."""
    values = {name: args.get(name, "") for name in ERROR_SLOTS}
    values["departement"] = args.getlist("departement")
    return values


def _form_from_filters(filters: maps.MapFilters) -> dict:
    values = {name: value for name, value in filters.query()}
    values["departement"] = list(filters.departements) or ["tous"]
    return values


@bp.get("/map", endpoint="map")
def map_page():
    """Show the map, the communes table and the chosen commune, server-rendered."""
    data = map_data()
    try:
        filters = maps.parse_filters(request.args, data)
    except maps.FilterError as error:
        return (
            render_template(
                "map.html",
                data=data,
                form=form_values(request.args),
                errors=error.fields,
                filters=None,
            ),
            400,
        )

    return render_template(
        "map.html",
        data=data,
        form=_form_from_filters(filters),
        errors={},
        **map_context(data, filters),
    )


@bp.app_template_global("geolocation_summary")
def geolocation_summary() -> dict | None:
    """Return the match rates of the Enedis address geolocation (context page)."""
    geolocation = get_store().aggregates.get("geolocation")
    if geolocation is None:
        return None
    return {
        "addresses": geolocation.addresses,
        "address_counts": geolocation.address_counts,
        "address_rates": geolocation.address_rates,
        "dwelling_rates": geolocation.dwelling_rates,
        "labels": geolocate.PRECISION_TITLES,
    }
