"""Prediction endpoints of the API: DPE label, consumption, batches, model card."""

from __future__ import annotations

import csv
import io
import logging

from flask import current_app
from flask import jsonify
from flask import request

from webapp import prediction
from webapp import ratelimit
from webapp.api import bp
from webapp.errors import ApiError
from webapp.errors import json_error

logger = logging.getLogger(__name__)

#: Most rows in one batch request.
BATCH_MAX_ROWS = 1000

#: Body limit of the batch endpoints (the app-wide limit stays 64 KB).
BATCH_MAX_BYTES = 1024 * 1024

#: Content types accepted for single predictions sent by POST.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

ratelimit.protect(bp, "RATELIMIT_API", json_error)


# --------------------------------------------------------------------------- input


def _json_body():
    """Return the parsed JSON body, or raise a 400 naming the problem."""
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "Le corps de la requête n'est pas un JSON valide.")
    return body


def read_inputs() -> dict:
    """Return the inputs of a single prediction from the query or the body."""
    inputs = request.args.to_dict()
    if request.method != "POST" or not _has_body():
        return inputs
    if request.mimetype == "application/json":
        body = _json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "Le corps JSON doit être un objet {nom: valeur}.")
        inputs.update(body)
    elif request.mimetype in FORM_TYPES:
        inputs.update(request.form.to_dict())
    else:
        raise _unsupported("application/json ou application/x-www-form-urlencoded")
    return inputs


def _has_body() -> bool:
    return bool(request.content_length) or request.mimetype != ""


def _unsupported(allowed: str) -> ApiError:
    return ApiError(
        415,
        f"Type de contenu « {request.mimetype or 'absent'} » non pris en charge ; "
        f"envoyez {allowed}.",
    )


def _predictor():
    try:
        return prediction.current_predictor()
    except prediction.ModelUnavailable:
        raise ApiError(
            503,
            "Aucun modèle de prédiction n'est disponible pour le moment ; "
            "réessayez plus tard.",
        ) from None


def _raise_400(parsed: prediction.ParsedInputs) -> None:
    if parsed.errors:
        names = ", ".join(sorted(parsed.errors))
        raise ApiError(400, f"Paramètres invalides : {names}.", parsed.errors)


def parse_or_400(raw: dict):
    """Parse and validate inputs, raising a 400 that names every bad field.

    Inputs are checked before the model is looked up, so a bad request gets its
    400 even while no model is loaded (503 otherwise).
    """
    parsed = prediction.parse_inputs(raw)
    _raise_400(parsed)
    predictor = _predictor()
    prediction.check_with_model(predictor, parsed)
    _raise_400(parsed)
    return predictor, parsed


# --------------------------------------------------------------------------- output


def label_body(output: dict, parsed: prediction.ParsedInputs, echo=True) -> dict:
    """Return the JSON of a label prediction (`echo`: with the model inputs)."""
    body = {
        "etiquette_dpe": output["etiquette_dpe"],
        "probabilities": output["probabilities"],
        "passoire": bool(output["passoire"]),
        "passoire_probability": output["passoire_probability"],
        "passoire_threshold": output["passoire_threshold"],
        "etiquette_derivee": output.get("etiquette_derivee"),
        "model_version": output["model_version"],
        "location": parsed.location.to_dict(),
    }
    if echo:
        body["inputs"] = prediction.model_inputs(parsed)
    return body


def consumption_body(output: dict, parsed: prediction.ParsedInputs, echo=True) -> dict:
    """Return the JSON of a consumption prediction (`echo`: with the model inputs)."""
    body = {
        "conso_5_usages_par_m2_ep": output["conso_5_usages_par_m2_ep"],
        "conso_5_usages_par_m2_ep_interval": list(
            output["conso_5_usages_par_m2_ep_interval"]
        ),
        "conso_5_usages_ep": output["conso_5_usages_ep"],
        "conso_5_usages_ep_interval": list(output["conso_5_usages_ep_interval"]),
        "emission_ges_5_usages_par_m2": output["emission_ges_5_usages_par_m2"],
        "cout_total_5_usages": output["cout_total_5_usages"],
        "cout_total_5_usages_interval": output.get("cout_total_5_usages_interval"),
        "interval_level": output.get("interval_level", 0.8),
        "model_version": output["model_version"],
        "location": parsed.location.to_dict(),
    }
    if echo:
        body["inputs"] = prediction.model_inputs(parsed)
    return body


def _single(body_of):
    predictor, parsed = parse_or_400(read_inputs())
    output = predictor.predict(prediction.model_inputs(parsed))
    return jsonify(body_of(output, parsed))


@bp.route("/etiquette_dpe", methods=["GET", "POST"])
def etiquette_dpe():
    """Predict the DPE label of one home."""
    return _single(label_body)


@bp.route("/consommation", methods=["GET", "POST"])
def consommation():
    """Predict the consumption (kWh/m²/an, kWh/an) and cost of one home."""
    return _single(consumption_body)


@bp.route("/consommation_chauffage", methods=["GET", "POST"])
def consommation_chauffage():
    """Alias of /consommation kept for clients of the original application."""
    return _single(consumption_body)


# --------------------------------------------------------------------------- batch


def read_rows() -> list[dict]:
    """Return the rows of a batch: a JSON list, a CSV body or a CSV file upload."""
    request.max_content_length = int(
        current_app.config.get("API_BATCH_MAX_CONTENT_LENGTH") or BATCH_MAX_BYTES
    )
    if request.mimetype == "application/json":
        body = _json_body()
        if isinstance(body, dict) and isinstance(body.get("rows"), list):
            body = body["rows"]
        if not isinstance(body, list):
            raise ApiError(400, "Le corps JSON doit être une liste d'objets.")
        rows = body
    elif request.mimetype == "text/csv":
        rows = _csv_rows(request.get_data(as_text=True))
    elif request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(
                400,
                "Envoyez le fichier CSV dans le champ « file ».",
                {"file": "Champ manquant."},
            )
        rows = _csv_rows(upload.read().decode("utf-8-sig", errors="replace"))
    else:
        raise _unsupported("application/json, text/csv ou multipart/form-data")

    if not rows:
        raise ApiError(400, "Le lot est vide.", {"rows": "Au moins une ligne."})
    if len(rows) > BATCH_MAX_ROWS:
        raise ApiError(
            400,
            f"Le lot compte {len(rows)} lignes ; {BATCH_MAX_ROWS} au plus.",
            {"rows": f"{BATCH_MAX_ROWS} lignes au plus."},
        )
    return rows


def _csv_rows(text: str) -> list[dict]:
    """Parse a CSV with a header line (',' or ';'), blank cells as missing."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        return []
    header = text.splitlines()[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    return [
        {k.strip(): v for k, v in row.items() if k is not None and v not in ("", None)}
        for row in reader
    ]


def _batch(body_of):
    predictor = _predictor()
    rows = read_rows()
    results: list[dict | None] = [None] * len(rows)
    pending = []
    locate = prediction.memoised_locate()

    for position, raw in enumerate(rows):
        if not isinstance(raw, dict):
            results[position] = _row_error(position, "La ligne doit être un objet.", {})
            continue
        parsed = prediction.parse_inputs(raw, locate)
        if parsed.errors:
            results[position] = _row_error(
                position, "Paramètres invalides.", parsed.errors
            )
            continue
        pending.append((position, parsed))

    outputs = predictor.predict_batch(
        [prediction.model_inputs(parsed) for _, parsed in pending]
    )
    for (position, parsed), output in zip(pending, outputs, strict=True):
        if isinstance(output, Exception):
            fields = {k: str(v) for k, v in getattr(output, "fields", {}).items()}
            results[position] = _row_error(position, "Paramètres invalides.", fields)
        else:
            # The caller sent the inputs and the order is kept: no echo per row.
            body = body_of(output, parsed, echo=False)
            results[position] = {"index": position, "ok": True, **body}

    errors = sum(1 for r in results if not r["ok"])
    return jsonify(count=len(rows), errors=errors, results=results)


def _row_error(position: int, message: str, fields: dict) -> dict:
    return {
        "index": position,
        "ok": False,
        "error": {"code": "bad_request", "message": message, "fields": fields},
    }


@bp.post("/etiquette_dpe/batch")
def etiquette_dpe_batch():
    """Predict the DPE labels of up to 1,000 homes, in order, errors per row."""
    return _batch(label_body)


@bp.post("/consommation/batch")
def consommation_batch():
    """Predict the consumptions of up to 1,000 homes, in order, errors per row."""
    return _batch(consumption_body)


# --------------------------------------------------------------------------- model


@bp.get("/model")
def model_card():
    """Describe the models in service: version, metrics, data origin and dates."""
    registry = current_app.extensions.get("models")
    if registry is None or getattr(registry, "predictor", None) is None:
        raise ApiError(503, "Aucun modèle n'est chargé pour le moment.")
    return jsonify(registry.card())
