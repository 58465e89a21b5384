"""The prediction page: a GET form whose URL is a permalink to its result."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import render_template
from flask import request
from flask import url_for

from webapp import location as loc
from webapp import prediction
from webapp.main import bp

logger = logging.getLogger(__name__)

#: Form fields kept in the permalink, in form order.
PERMALINK_FIELDS = ("adresse", *prediction.INPUT_FIELDS)

#: Yes/no/unknown choices of the boolean questions.
BOOL_CHOICES = (("oui", "Oui"), ("non", "Non"), ("", "Je ne sais pas"))


def is_submitted(args: Mapping[str, str]) -> bool:
    """Tell whether the query carries a submitted form (not just an address)."""
    return any(args.get(name) for name in prediction.REQUIRED)


def permalink(args: Mapping[str, str]) -> str:
    """Return the /predict URL that reproduces these inputs."""
    kept = {k: args[k] for k in PERMALINK_FIELDS if args.get(k)}
    return url_for("main.predict", **kept)


def location_context(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the location fieldset shows: communes and the DPE known there."""
    scope, known = loc.known_dpe(values.get("adresse"), values.get("code_insee"))
    return {
        "communes": loc.commune_choices(),
        "known_scope": scope,
        "known": known,
    }


def form_context(
    values: Mapping[str, Any], errors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the template context of the form."""
    return {
        "values": values,
        "errors": errors or {},
        "choices": prediction.CHOICES,
        "labels": prediction.LABELS_FR,
        "bool_choices": BOOL_CHOICES,
        "year_max": prediction.current_year(),
        **location_context(values),
    }


def panel(
    values: Mapping[str, Any], submitted: bool = False
) -> tuple[dict[str, Any], int]:
    """Validate and predict a submitted form; return (context, HTTP status)."""
    values = dict(values)
    if not submitted and not is_submitted(values):
        return form_context(values), 200

    parsed = prediction.parse_inputs(values)
    try:
        predictor = prediction.current_predictor()
    except prediction.ModelUnavailable:
        context = form_context(values, parsed.errors)
        return {**context, "unavailable": True}, 422 if parsed.errors else 503

    prediction.check_with_model(predictor, parsed)
    if parsed.errors:
        return form_context(values, parsed.errors), 422
    result = prediction.build_result(predictor, parsed)
    return {
        **form_context(values),
        "result": result,
        "permalink": permalink(values),
    }, 200


@bp.get("/predict")
def predict():
    """Show the prediction form, and its result when the query holds inputs."""
    context, status = panel(request.args)
    return render_template("predict.html", **context), status
