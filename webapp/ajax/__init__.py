"""Blueprint `ajax`: HTML fragments for HTMX, never full pages."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ajax", __name__, url_prefix="/ajax")

from webapp.ajax import context  # noqa: E402,F401
from webapp.ajax import map  # noqa: E402,F401
from webapp.ajax import predict  # noqa: E402,F401
from webapp.ajax import refresh  # noqa: E402,F401
from webapp.ajax import stats  # noqa: E402,F401
