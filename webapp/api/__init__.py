"""Blueprint `api`: the public JSON API v1."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from webapp.api import communes  # noqa: E402,F401
from webapp.api import health  # noqa: E402,F401
from webapp.api import openapi  # noqa: E402,F401
from webapp.api import predict  # noqa: E402,F401
