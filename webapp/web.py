"""Cross-cutting web plumbing: plotly.js from the installed package, gzip."""

from __future__ import annotations

import gzip
import logging
import threading
from functools import cache
from importlib import resources

import plotly
from flask import Response
from flask import abort
from flask import request

logger = logging.getLogger(__name__)

#: Responses smaller than this are not worth compressing.
GZIP_MIN_BYTES = 1024
#: Compressible content types.
GZIP_TYPES = (
    "text/html",
    "text/css",
    "text/csv",
    "text/plain",
    "application/json",
    "application/javascript",
    "text/javascript",
    "image/svg+xml",
)
ONE_YEAR = 365 * 24 * 3600

_plotly_lock = threading.Lock()


@cache
def plotly_js() -> tuple[bytes, bytes]:
    """Return plotly.min.js of the installed plotly package, raw and gzipped."""
    with _plotly_lock:
        source = resources.files("plotly") / "package_data" / "plotly.min.js"
        raw = source.read_bytes()
        return raw, gzip.compress(raw, compresslevel=6, mtime=0)


def serve_plotly_js(version: str):
    """Serve the plotly.js bundle matching the Python plotly version."""
    if version != plotly.__version__:
        abort(404)
    raw, zipped = plotly_js()
    accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    response = Response(zipped if accepts_gzip else raw, mimetype="text/javascript")
    if accepts_gzip:
        response.headers["Content-Encoding"] = "gzip"
    response.headers["Vary"] = "Accept-Encoding"
    response.cache_control.public = True
    response.cache_control.max_age = ONE_YEAR
    response.headers["X-Skip-Gzip"] = "1"
    return response


def compress_response(response: Response) -> Response:
    """Gzip text responses when the client accepts it."""
    if response.headers.pop("X-Skip-Gzip", None):
        return response
    if (
        response.direct_passthrough
        or response.status_code < 200
        or response.status_code in (204, 304)
        or "Content-Encoding" in response.headers
        or "gzip" not in request.headers.get("Accept-Encoding", "")
        or response.mimetype not in GZIP_TYPES
    ):
        return response

    data = response.get_data()
    if len(data) < GZIP_MIN_BYTES:
        return response
    response.set_data(gzip.compress(data, compresslevel=5))
    response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    return response


def init_app(app) -> None:
    """Serve plotly.js, compress responses and expose asset URLs to templates."""
    app.add_url_rule(
        "/static/vendor/plotly-<version>.min.js", "plotly_js", serve_plotly_js
    )
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.after_request(compress_response)

    @app.context_processor
    def _assets():
        return {"plotly_version": plotly.__version__, "htmx_version": HTMX_VERSION}


#: The vendored htmx file is webapp/static/vendor/htmx-<version>.min.js.
HTMX_VERSION = "2.0.11"


def favicon():
    """Serve the icon at the path browsers ask for by default."""
    from flask import current_app

    return current_app.send_static_file("favicon.svg")
