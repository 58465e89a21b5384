"""The context page: what the app is, its sources and a live summary of the data."""

from __future__ import annotations

from flask import current_app
from flask import render_template

from webapp import summary
from webapp.main import bp
from webapp.store import get_store


def context_data() -> dict:
    """Return what the context templates need from the store."""
    store = get_store()
    return {
        "sources": store.sources,
        "rejections": store.rejections,
        "summary": store.aggregates.get("summary"),
        "is_demo": store.is_demo,
    }


@bp.app_template_filter("reason_fr")
def _reason_fr(reason: str) -> str:
    return summary.reason_fr(reason)


@bp.get("/context")
def context():
    """Show the context page."""
    return render_template("context.html", **context_data())


def _index():
    """Show the home page (the context page until the map page exists)."""
    if "main.map" in current_app.view_functions:
        return current_app.view_functions["main.map"]()
    return render_template("context.html", **context_data())


bp.add_url_rule("/", "index", _index)
