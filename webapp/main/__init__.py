"""Blueprint `main`: the full pages."""

from __future__ import annotations

from flask import Blueprint
from flask import current_app

bp = Blueprint("main", __name__, url_prefix="/")

#: Navigation entries (endpoint, label); only registered endpoints are shown.
NAV = (
    ("main.map", "Carte"),
    ("main.stats", "Statistiques"),
    ("main.predict", "Prédiction"),
    ("main.api_docs", "API"),
    ("main.context", "Contexte"),
)


@bp.app_context_processor
def _navigation():
    endpoints = current_app.view_functions
    return {"nav_items": [(e, label) for e, label in NAV if e in endpoints]}


from webapp.main import api_docs  # noqa: E402,F401
from webapp.main import context  # noqa: E402,F401
from webapp.main import map  # noqa: E402,F401
from webapp.main import predict  # noqa: E402,F401
from webapp.main import stats  # noqa: E402,F401
