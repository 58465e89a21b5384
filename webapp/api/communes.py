"""Communes endpoints of the API: the per-commune aggregates the map shows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from flask import jsonify
from flask import request

from webapp import maps
from webapp import rules
from webapp.api import bp
from webapp.errors import ApiError
from webapp.store import get_store

#: Rows per page of /api/v1/communes by default, and at most.
DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000


def _data() -> maps.MapData:
    data = get_store().aggregates.get("map")
    if data is None:
        raise ApiError(503, "Les agrégats par commune ne sont pas disponibles.")
    return data


def _value(value):
    """Return a JSON-ready scalar (NaN and NA become null)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else round(float(value), 4)
    return value


def _integer(value):
    value = _value(value)
    return None if value is None else int(round(value))


def _record(row: pd.Series) -> dict:
    rank = row.get("etiquette_mediane_rang")
    median = rules.LABELS[int(rank)] if rank is not None and rank == rank else None
    return {
        "code_insee": row["code_insee"],
        "nom_commune": _value(row["nom_commune"]),
        "code_departement": _value(row["dep_code"]),
        "annee": _value(row["annee"]),
        "nombre_de_logements": _integer(row["nombre_de_logements"]),
        "conso_total_mwh": _value(row["conso_total_mwh"]),
        "conso_moyenne_mwh": _value(row["conso_moyenne_mwh"]),
        "densite": _value(row["densite"]),
        "altitude": _value(row["altitude"]),
        "latitude": _value(row["latitude"]),
        "longitude": _value(row["longitude"]),
        "nombre_dpe": _value(row["nombre_dpe"]),
        "part_passoires": _value(row["part_passoires"]),
        "etiquette_mediane": median,
    }


def _per_page() -> int:
    text = request.args.get("par_page", str(DEFAULT_PER_PAGE)).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_PER_PAGE:
        raise ApiError(
            400,
            "Paramètre invalide.",
            {"par_page": f"Entier entre 1 et {MAX_PER_PAGE} attendu."},
        )
    return int(text)


@bp.get("/communes")
def communes():
    """List the communes with their consumption, filtered like the map, by page."""
    data = _data()
    try:
        filters = maps.parse_filters(request.args, data)
    except maps.FilterError as error:
        raise ApiError(400, "Filtres invalides.", error.fields) from error
    per_page = _per_page()

    keys = list(maps.TABLE_COLUMNS)
    rows = maps.table_rows(data, filters)
    page = maps.table_page(rows, filters.page, per_page)
    source = data.rows.set_index(["code_insee", "annee"])
    index = pd.MultiIndex.from_frame(page.rows[["code_insee", "annee"]])
    full = source.loc[index].reset_index()
    return jsonify(
        count=page.count,
        page=page.page,
        pages=page.pages,
        par_page=per_page,
        filtres=filters.to_dict(),
        colonnes=keys,
        resultats=[_record(row) for _, row in full.iterrows()],
    )


@bp.get("/communes/<code_insee>")
def commune(code_insee: str):
    """Return one commune: consumption per year, mean, DPE labels and metrics."""
    data = _data()
    code = code_insee.strip().upper()
    if code not in data.commune_names.index:
        raise ApiError(404, f"Commune inconnue : {code_insee}.")

    years = data.rows[data.rows["code_insee"] == code]
    mean = data.commune_row(code, None)
    counts = data.label_counts.loc[code] if code in data.label_counts.index else None
    return jsonify(
        code_insee=code,
        nom_commune=str(data.commune_names[code]),
        annees=[_record(row) for _, row in years.iterrows()],
        moyenne_annuelle=_record(mean) if mean is not None else None,
        etiquettes_dpe=(
            {label: int(counts[label]) for label in rules.LABELS}
            if counts is not None
            else None
        ),
    )
