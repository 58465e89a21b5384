"""data.gouv.fr communes-france table: resolved through udata, static URL fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from webapp import schema
from webapp.sources.http import Client
from webapp.sources.http import SourceError

logger = logging.getLogger(__name__)

#: udata id of "Communes et villes de France en CSV, Excel, JSON, Parquet et Feather".
DATASET_ID = "6745d9ae4524d845d2138193"
#: The resource wanted among the dataset's files.
RESOURCE_NAME = "communes-france-2025"

#: The 46 columns of the 2025 edition, kept by name when present.
COLUMNS = (
    "code_insee",
    "nom_standard",
    "nom_sans_pronom",
    "nom_a",
    "nom_de",
    "nom_sans_accent",
    "nom_standard_majuscule",
    "typecom",
    "typecom_texte",
    "reg_code",
    "reg_nom",
    "dep_code",
    "dep_nom",
    "canton_code",
    "canton_nom",
    "epci_code",
    "epci_nom",
    "academie_code",
    "academie_nom",
    "code_postal",
    "codes_postaux",
    "zone_emploi",
    "code_insee_centre_zone_emploi",
    "code_unite_urbaine",
    "nom_unite_urbaine",
    "taille_unite_urbaine",
    "type_commune_unite_urbaine",
    "statut_commune_unite_urbaine",
    "population",
    "superficie_hectare",
    "superficie_km2",
    "densite",
    "altitude_moyenne",
    "altitude_minimale",
    "altitude_maximale",
    "latitude_mairie",
    "longitude_mairie",
    "latitude_centre",
    "longitude_centre",
    "grille_densite",
    "grille_densite_texte",
    "niveau_equipements_services",
    "niveau_equipements_services_texte",
    "gentile",
    "url_wikipedia",
    "url_villedereve",
)


def resolve(client: Client, api_url: str, dataset_id: str = DATASET_ID) -> str:
    """Return the URL of the communes CSV listed by the udata API."""
    url = f"{api_url.rstrip('/')}/datasets/{dataset_id}/"
    document, shown = client.get_json(url, required=("resources",))
    resources = document["resources"]
    if not isinstance(resources, list):
        raise client.error("'resources' is not a list", shown)

    candidates = []
    for resource in resources:
        if not isinstance(resource, dict) or not isinstance(resource.get("url"), str):
            continue
        fmt = str(resource.get("format") or "").lower()
        label = f"{resource.get('title') or ''} {resource['url']}".lower()
        if fmt == "csv" and RESOURCE_NAME in label:
            exact = resource["url"].lower().endswith(f"/{RESOURCE_NAME}.csv")
            candidates.append((not exact, resource["url"]))
    if not candidates:
        raise client.error(f"no csv resource named {RESOURCE_NAME}", shown)
    return sorted(candidates)[0][1]


def download(
    client: Client, api_url: str, static_url: str, target: Path
) -> tuple[str, list[str]]:
    """Download the CSV (resolved URL, else the static one); return (URL, notes)."""
    notes: list[str] = []
    urls = []
    try:
        urls.append(resolve(client, api_url))
    except SourceError as exc:
        logger.warning("%s; falling back to %s", exc, static_url)
        notes.append(f"udata resolution failed: {exc.reason}")
    if static_url not in urls:
        urls.append(static_url)

    failures = []
    for url in urls:
        try:
            return client.download(url, target), notes
        except SourceError as exc:
            logger.warning("%s", exc)
            failures.append(exc)
    reasons = "; then ".join(f"{e.reason} ({e.url})" for e in failures)
    raise SourceError(client.source, f"download failed: {reasons}")


def read_table(client: Client, path: Path, url: str) -> pd.DataFrame:
    """Read the national CSV with codes as text, keeping the known columns by name."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise client.error(f"not a CSV table ({e.__class__.__name__})", url) from None
    columns = [c for c in header.columns if str(c).strip() in COLUMNS]
    missing = [c for c in schema.COMMUNES_REQUIRED if c not in columns]
    if missing:
        raise client.error(
            f"schema change: communes columns missing: {', '.join(missing)}", url
        )
    extra = [
        c
        for c in header.columns
        if c not in columns and not str(c).startswith("Unnamed")
    ]
    if extra:
        logger.info("%s: new columns ignored: %s", url, ", ".join(map(str, extra)))

    text = {c: "string" for c in columns if c in schema.COMMUNES_CODE_COLUMNS}
    try:
        return pd.read_csv(
            path, usecols=columns, dtype=text, encoding="utf-8-sig", low_memory=False
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise client.error(
            f"unreadable CSV ({exc.__class__.__name__}: {exc})", url
        ) from None
