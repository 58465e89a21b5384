"""Fragments of the prediction page: suggestions, location, validation, result."""

from __future__ import annotations

import json
import logging

from flask import abort
from flask import current_app
from flask import render_template
from flask import request
from flask_htmx import make_response as htmx_response

from ml.features import generator_family
from webapp import location as loc
from webapp import prediction
from webapp import ratelimit
from webapp.ajax import bp
from webapp.errors import TITLES
from webapp.formatting import nombre
from webapp.main import predict as page

logger = logging.getLogger(__name__)

#: Fields that have an inline validation endpoint.
VALIDATED_FIELDS = tuple(
    name
    for name in prediction.INPUT_FIELDS
    if name not in ("latitude", "longitude", "zone_climatique", "classe_altitude")
)

#: Longest JSON body the playground forwards (the API's own limit applies too).
PLAYGROUND_MAX_CHARS = 60_000


def _error_fragment(status: int, message: str):
    """Return the error fragment of the ajax blueprint with its status."""
    html = render_template(
        "_error.html", status=status, title=TITLES.get(status), message=message
    )
    return html, status


ratelimit.protect(bp, "RATELIMIT_AJAX", _error_fragment)


@bp.get("/address/suggest")
def address_suggest():
    """Return the communes and addresses matching the typed text."""
    query = request.args.get("q") or request.args.get("adresse") or ""
    suggestions = loc.suggest(query)
    return render_template(
        "_predict_suggestions.html", suggestions=suggestions, q=query
    )


@bp.get("/address/pick")
def address_pick():
    """Return the location fieldset filled from a chosen address or commune."""
    values = request.args.to_dict()
    code = values.get("code_insee")
    index = loc.get_index()
    if code in index.records:
        place = loc.resolve({"code_insee": code}, index)
        values.update(
            zone_climatique=place.zone_climatique,
            classe_altitude=place.classe_altitude,
            altitude=nombre(place.altitude, 0).replace("\u202f", "")
            if place.altitude is not None
            else "",
        )
    return render_template("_predict_location.html", **page.form_context(values))


@bp.get("/predict")
def predict():
    """Return the form and its result, or the form with messages (422)."""
    context, status = page.panel(request.args, submitted=True)
    html = render_template("_predict_panel.html", **context)
    if status == 200 and context.get("result"):
        # The address bar gets the page URL of this result: a permalink.
        return htmx_response(html, push_url=context["permalink"])
    return html, status


@bp.get("/predict/validate/<field>")
def predict_validate(field):
    """Return the message of one field (empty when the value is fine)."""
    if field not in VALIDATED_FIELDS:
        abort(404)
    message = prediction.validate_field(field, request.args.get(field))
    return render_template("_predict_field_error.html", name=field, message=message)


@bp.get("/predict/prefill/<numero_dpe>")
def predict_prefill(numero_dpe):
    """Return the form prefilled from a DPE known at the address."""
    dpe = loc.find_dpe(numero_dpe)
    if dpe is None:
        abort(404)
    values = prefill_values(dpe, request.args.get("adresse"))
    context = page.form_context(values)
    return render_template("_predict_panel.html", **context, prefilled_from=dpe)


def prefill_values(dpe: dict, adresse: str | None) -> dict[str, str]:
    """Return form values taken from one DPE."""
    installation = str(dpe.get("type_installation_chauffage") or "")
    values = {
        "adresse": adresse or dpe.get("adresse_ban") or "",
        "code_insee": dpe.get("code_insee_ban") or "",
        "surface_habitable_logement": _plain_number(dpe["surface_habitable_logement"]),
        "annee_construction": _plain_number(dpe["annee_construction"]),
        "type_batiment": dpe.get("type_batiment")
        if dpe.get("type_batiment") in prediction.CHOICES["type_batiment"]
        else "",
        "type_energie_principale_chauffage": dpe.get(
            "type_energie_principale_chauffage"
        )
        or "",
        "type_generateur_chauffage": generator_family(
            dpe.get("type_generateur_chauffage_principal")
        )
        or "",
        "type_installation_chauffage": "individuel"
        if installation.startswith("individuel")
        else ("collectif" if installation else ""),
        "qualite_isolation_enveloppe": dpe.get("qualite_isolation_enveloppe") or "",
        "logement_traversant": _yes_no(dpe.get("logement_traversant")),
        "protection_solaire_exterieure": _yes_no(
            dpe.get("protection_solaire_exterieure")
        ),
    }
    code = values["code_insee"]
    index = loc.get_index()
    if code in index.records:
        place = loc.resolve({"code_insee": code}, index)
        values["zone_climatique"] = place.zone_climatique
        values["classe_altitude"] = place.classe_altitude
        values["altitude"] = _plain_number(place.altitude)
    return values


def _plain_number(value) -> str:
    if value is None:
        return ""
    number = float(value)
    return str(int(number)) if number == int(number) else str(number)


def _yes_no(value) -> str:
    if value is None:
        return ""
    return "oui" if float(value) >= 0.5 else "non"


@bp.route("/api-playground", methods=["GET", "POST"])
def api_playground():
    """Call one API endpoint in-process and show its status and JSON."""
    path = request.values.get("path", "")
    method = request.values.get("method", "GET").upper()
    query = request.values.get("query", "").strip().lstrip("?")
    body = request.values.get("body", "").strip()
    if not path.startswith("/api/v1/") or method not in ("GET", "POST"):
        abort(400, "Choisissez un point d'accès de l'API /api/v1 et GET ou POST.")
    if len(body) > PLAYGROUND_MAX_CHARS:
        abort(413)

    url = f"{path}?{query}" if query else path
    # The in-process call counts against the visitor's own API limit.
    environ = {"REMOTE_ADDR": request.remote_addr or "127.0.0.1"}
    with current_app.test_client() as client:
        if method == "POST":
            response = client.post(
                url,
                data=body.encode("utf-8"),
                content_type="application/json",
                environ_base=environ,
            )
        else:
            response = client.get(url, environ_base=environ)
    text = response.get_data(as_text=True)
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    return render_template(
        "_api_playground_result.html",
        method=method,
        url=url,
        status=response.status_code,
        reason=response.status,
        body=text,
    )
