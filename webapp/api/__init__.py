"""Blueprint `api`: the public JSON API v1."""

from __future__ import annotations

from flask import Blueprint
from flask import request

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Methods answered with an open CORS header (no credentials are involved).
CORS_METHODS = ("GET", "HEAD", "OPTIONS")


@bp.after_app_request
def _cors(response):
    """Open the read-only API to every origin, unknown URLs included."""
    if request.path.startswith("/api/") and request.method in CORS_METHODS:
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


from webapp.api import communes  # noqa: E402,F401
from webapp.api import health  # noqa: E402,F401
from webapp.api import openapi  # noqa: E402,F401
from webapp.api import predict  # noqa: E402,F401
