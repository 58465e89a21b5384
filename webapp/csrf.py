"""CSRF protection of the POST forms: a session-bound token checked on submit.

Templates put ``<input type="hidden" name="csrf_token" value="{{ csrf_token() }}">``
in each form (or send the header ``X-CSRFToken``); views are wrapped with
``@csrf_protect``, or call ``check_csrf()`` themselves.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable

from flask import abort
from flask import request
from flask import session

#: Session key of the token.
SESSION_KEY = "_csrf_token"
#: Form field and header that carry the token.
FIELD_NAME = "csrf_token"
HEADER_NAME = "X-CSRFToken"
#: French message of a refused request.
MESSAGE = (
    "Le jeton de sécurité du formulaire est absent ou expiré : "
    "rechargez la page puis réessayez."
)


def csrf_token() -> str:
    """Return the CSRF token of the current session, creating it once."""
    token = session.get(SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def is_valid(value: str | None) -> bool:
    """True when `value` matches the token of the current session."""
    expected = session.get(SESSION_KEY)
    if not expected or not value:
        return False
    return hmac.compare_digest(str(expected), str(value))


def check_csrf() -> None:
    """Abort with 400 unless the request carries the session's CSRF token."""
    value = request.form.get(FIELD_NAME) or request.headers.get(HEADER_NAME)
    if not is_valid(value):
        abort(400, description=MESSAGE)


def csrf_protect(view: Callable) -> Callable:
    """Decorate a view so that its POST, PUT, PATCH and DELETE need the token."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if request.method in {"POST", "PUT", "PATCH", "DELETE"}:
            check_csrf()
        return view(*args, **kwargs)

    return wrapped


def init_app(app) -> None:
    """Make `csrf_token()` available in every template."""
    app.jinja_env.globals["csrf_token"] = csrf_token
