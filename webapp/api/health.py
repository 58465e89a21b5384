"""Liveness of the API: status, versions of the app, data and models."""

from __future__ import annotations

from flask import current_app
from flask import jsonify

import webapp
from webapp.api import bp
from webapp.store import get_store


def data_versions() -> dict:
    """Return origin, rows and update date of each dataset in service."""
    store = get_store()
    return {
        name: {
            "origin": source["origin"],
            "rows": source["rows"],
            "updated_at": source["updated_at"],
            "sha256": source["sha256"],
        }
        for name, source in store.sources.items()
    }


def model_versions() -> dict:
    """Return the versions of the loaded models, when any are loaded."""
    registry = current_app.extensions.get("models")
    if registry is None:
        return {}
    return registry.versions()


@bp.get("/health")
def health():
    """Report that the app answers, with data and model versions."""
    return jsonify(
        status="ok",
        version=webapp.__version__,
        data=data_versions(),
        models=model_versions(),
    )


@bp.get("/ready")
def ready():
    """Report readiness: 200 once data and models are loaded, else 503."""
    store = current_app.extensions.get("store")
    registry = current_app.extensions.get("models")
    checks = {
        "data": store is not None and store.is_loaded,
        "models": registry is not None and registry.predictor is not None,
    }
    is_ready = all(checks.values())
    response = jsonify(
        status="ready" if is_ready else "not_ready",
        checks=checks,
        version=webapp.__version__,
        data=data_versions() if checks["data"] else {},
        models=model_versions(),
    )
    response.status_code = 200 if is_ready else 503
    return response
