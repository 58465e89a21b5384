"""Fragments of the context page."""

from __future__ import annotations

from flask import render_template

from webapp.ajax import bp
from webapp.main.context import context_data


@bp.get("/context/summary")
def context_summary():
    """Return the live summary of the store as a fragment."""
    return render_template("_context_summary.html", **context_data())
