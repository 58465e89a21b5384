"""Flask extensions shared by the blueprints."""

from __future__ import annotations

from flask_htmx import HTMX

#: The only object that reads HX-* request headers.
htmx = HTMX()
