"""Error handlers: an HTML page, an HTMX fragment or JSON, by audience."""

from __future__ import annotations

import logging

from flask import jsonify
from flask import render_template
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError

logger = logging.getLogger(__name__)

#: French titles of the error pages and fragments.
TITLES = {
    400: "Requête invalide",
    404: "Page introuvable",
    405: "Méthode non autorisée",
    413: "Requête trop volumineuse",
    415: "Type de contenu non pris en charge",
    422: "Données invalides",
    429: "Trop de requêtes",
    500: "Erreur interne",
    503: "Service indisponible",
}

#: French explanations shown when the error carries no message of its own.
MESSAGES = {
    404: "L'adresse demandée n'existe pas.",
    405: "Cette adresse n'accepte pas cette méthode HTTP.",
    413: "Le corps de la requête dépasse la taille autorisée.",
    415: "Le type de contenu envoyé n'est pas pris en charge.",
    429: "Trop de requêtes en peu de temps : réessayez dans un instant.",
    500: "Une erreur inattendue s'est produite. Elle a été enregistrée.",
    503: "Le service n'est pas prêt : réessayez dans un instant.",
}

#: Machine-readable codes of the JSON errors.
CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error of the JSON API, with per-field details."""

    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields or {}


def json_error(status: int, message: str, fields: dict | None = None):
    """Return the JSON error response of the API."""
    body = {"error": {"code": CODES.get(status, "error"), "message": message}}
    if fields:
        body["error"]["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    return response


def _message(error: HTTPException) -> str:
    default = error.__class__.description
    if error.description and error.description != default:
        return error.description
    return MESSAGES.get(error.code, error.description or "")


def render_error(status: int, message: str, headers=None):
    """Render an error in the shape of the audience of the current request."""
    path = request.path
    if path.startswith("/api/"):
        response = json_error(status, message)
    elif path.startswith("/ajax/"):
        response = (
            render_template(
                "_error.html", status=status, title=TITLES.get(status), message=message
            ),
            status,
        )
    else:
        response = (
            render_template(
                "error.html", status=status, title=TITLES.get(status), message=message
            ),
            status,
        )
    if headers:
        from flask import make_response

        response = make_response(response)
        response.headers.extend(headers)
    return response


def handle_http_error(error: HTTPException):
    """Answer an HTTP error (404, 405, 413, …) in the audience's shape."""
    if error.code is None or error.code < 400:
        return error
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return render_error(error.code, _message(error), headers)


def handle_api_error(error: ApiError):
    """Answer an ApiError with the JSON shape."""
    return json_error(error.status, error.message, error.fields)


def handle_unexpected(error: Exception):
    """Log an unexpected exception and answer a 500 without any trace."""
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500, MESSAGES[500])


def init_app(app) -> None:
    """Register the handlers at app level, so unmatched URLs get them too."""
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_unexpected)
    app.register_error_handler(Exception, handle_unexpected)
