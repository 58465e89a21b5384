"""Live summary of the store for the context page and the health check."""

from __future__ import annotations

import pandas as pd

from webapp import rules
from webapp.store import Snapshot
from webapp.store import aggregate


def _year_range(years: pd.Series) -> tuple[int, int] | None:
    years = years.dropna()
    if years.empty:
        return None
    return int(years.min()), int(years.max())


@aggregate("summary")
def summarise(snapshot: Snapshot) -> dict:
    """Return rows, coverage and key figures of every dataset in service."""
    dpe = snapshot.dpe
    enedis = snapshot.enedis
    national = snapshot.enedis_communes

    coverage = {
        "communes": {
            "years": None,
            "communes": int(snapshot.communes["code_insee"].nunique()),
            "departements": int(snapshot.communes["dep_code"].nunique()),
        },
        "dpe": {
            "years": _year_range(dpe["date_etablissement_dpe"].dt.year),
            "communes": int(dpe["code_insee_ban"].nunique()),
        },
        "enedis": {
            "years": _year_range(enedis["annee"]),
            "communes": int(enedis["code_commune"].nunique()),
        },
        "enedis_communes": {
            "years": _year_range(national["annee"]),
            "communes": int(national["code_commune"].nunique()),
        },
    }

    labels = dpe["etiquette_dpe"].astype("string")
    latest_year = int(enedis["annee"].max()) if len(enedis) else None
    latest = enedis[enedis["annee"] == latest_year]
    figures = {
        "dpe_count": int(len(dpe)),
        "dpe_existant": int((dpe["source"] == "existant").sum()),
        "dpe_neuf": int((dpe["source"] == "neuf").sum()),
        "passoire_share": float(labels.isin(rules.PASSOIRE_LABELS).mean())
        if len(dpe)
        else None,
        "median_ep": float(dpe["conso_5_usages_par_m2_ep"].median())
        if dpe["conso_5_usages_par_m2_ep"].notna().any()
        else None,
        "enedis_latest_year": latest_year,
        "enedis_latest_mwh": float(
            latest["consommation_annuelle_totale_de_l_adresse_mwh"].sum()
        )
        if latest_year
        else None,
        "enedis_latest_addresses": int(len(latest)),
    }
    return {"coverage": coverage, "figures": figures}


#: French wording of the reasons for which rows are dropped at load.
REASONS_FR = {
    "missing numero_dpe": "numéro de DPE absent",
    "etiquette_dpe not in A-G": "étiquette hors A–G",
    "missing or invalid DPE date": "date du DPE absente ou invalide",
    "surface outside 5-1000 m2": "surface hors 5–1 000 m²",
    "kWh/m2/an outside 0-2000": "consommation hors 0–2 000 kWh/m²/an",
    "duplicate numero_dpe": "DPE en double",
    "replaced by a newer DPE": "DPE remplacé par un plus récent",
    "missing code_commune": "code commune absent",
    "invalid nombre_de_logements": "nombre de logements invalide",
    "invalid consumption": "consommation invalide",
    "missing annee or code_commune": "année ou code commune absent",
    "invalid values": "valeurs invalides",
    "missing code_insee": "code INSEE absent",
    "duplicate code_insee": "code INSEE en double",
}


def reason_fr(reason: str) -> str:
    """Return the French wording of a rejection reason."""
    if reason.startswith("annee_construction outside"):
        return "année de construction hors " + reason.rsplit(" ", 1)[-1]
    if reason.startswith("annee outside"):
        return "année hors " + reason.rsplit(" ", 1)[-1]
    return REASONS_FR.get(reason, reason)
