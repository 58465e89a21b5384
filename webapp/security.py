"""Security headers with a per-request CSP nonce, production checks, request log."""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import g
from flask import request
from markupsafe import Markup

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("webapp.access")

#: Map tile hosts the base map may load images from (OpenStreetMap-style raster).
DEFAULT_TILE_HOSTS = (
    "https://tile.openstreetmap.org",
    "https://*.tile.openstreetmap.org",
)

_SCRIPT_TAG = re.compile(r"<script(?![^>]*\bnonce=)", re.IGNORECASE)


def csp_nonce() -> str:
    """Return the CSP nonce of the current request (created on first use)."""
    nonce = getattr(g, "_csp_nonce", None)
    if nonce is None:
        nonce = g._csp_nonce = secrets.token_urlsafe(16)
    return nonce


def with_nonce(html: str) -> Markup:
    """Add the request's nonce to every inline <script> of trusted HTML (figures)."""
    return Markup(_SCRIPT_TAG.sub(f'<script nonce="{csp_nonce()}"', str(html)))


def content_security_policy(nonce: str, tile_hosts: tuple[str, ...]) -> str:
    """Return the CSP: the app's own scripts and styles, nonced inline scripts."""
    tiles = " ".join(tile_hosts)
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        # Styles stay inline-capable: plotly.js injects <style> elements (modebar,
        # hover) that cannot carry a nonce. Scripts, the real risk, are nonce-only.
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: blob: {tiles}".strip(),
        f"connect-src 'self' {tiles}".strip(),
        # MapLibre (Plotly's map traces) runs its tile decoding in a blob: worker.
        "worker-src 'self' blob:",
        "child-src 'self' blob:",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def set_security_headers(response):
    """Add the security headers to every response."""
    from flask import current_app

    headers = response.headers
    tile_hosts = tuple(current_app.config.get("CSP_TILE_HOSTS") or ())
    headers.setdefault(
        "Content-Security-Policy", content_security_policy(csp_nonce(), tile_hosts)
    )
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    return response


def check_production(app) -> None:
    """Refuse unsafe settings in production: debug on, or no SECRET_KEY given."""
    if app.config.get("APP_ENV") != "production":
        return
    if app.debug:
        raise RuntimeError("debug mode must never be on in production (APP_ENV)")
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production (APP_ENV=production)")


def _start_timer():
    g._started = time.perf_counter()


def _log_request(response):
    started = getattr(g, "_started", None)
    if started is not None:
        elapsed = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
        access_logger.info(
            "%s %s %s %.1f ms",
            request.method,
            request.full_path.rstrip("?"),
            response.status_code,
            elapsed,
        )
    return response


def init_app(app) -> None:
    """Register the nonce helper, the headers and the per-request log line."""
    app.config.setdefault("CSP_TILE_HOSTS", DEFAULT_TILE_HOSTS)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.filters["with_nonce"] = with_nonce
    app.before_request(_start_timer)
    app.after_request(set_security_headers)
    if app.config.get("REQUEST_LOG", True):
        app.after_request(_log_request)
