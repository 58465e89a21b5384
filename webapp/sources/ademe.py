"""ADEME DPE datasets on Data Fair: `dpe03existant` and `dpe02neuf`, one département."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pandas as pd

from webapp import schema
from webapp.sources import datafair
from webapp.sources.http import Client

logger = logging.getLogger(__name__)

#: Data Fair dataset ids and the `source` value of their rows.
DATASETS = {"dpe03existant": "existant", "dpe02neuf": "neuf"}
#: Every field the pages and models use (the stored DPE columns but `source`).
FIELDS = tuple(column for column in schema.DPE_COLUMNS if column != "source")
#: Fields without which a dataset cannot be used: a schema change upstream.
REQUIRED_FIELDS = ("numero_dpe", "etiquette_dpe")
#: At least one of these dates must exist (the label rules depend on it).
DATE_FIELDS = ("date_etablissement_dpe", "date_reception_dpe")
#: The modification date that drives incremental refreshes.
MODIFIED_FIELD = "date_derniere_modification_dpe"


def dataset_url(base_url: str, dataset_id: str) -> str:
    """Return the Data Fair URL of one dataset."""
    return f"{base_url.rstrip('/')}/{dataset_id}"


def plan_select(client: Client, keys: set[str], url: str) -> list[str]:
    """Return the fields to select, failing when a required one has gone."""
    missing = [key for key in REQUIRED_FIELDS if key not in keys]
    if not any(key in keys for key in DATE_FIELDS):
        missing.append(" or ".join(DATE_FIELDS))
    if missing:
        raise client.error(
            f"schema change: required fields missing: {', '.join(missing)}", url
        )
    absent = [key for key in FIELDS if key not in keys]
    if absent:
        logger.info(
            "%s: %d fields not published, left empty: %s",
            url,
            len(absent),
            ", ".join(absent),
        )
    return [key for key in FIELDS if key in keys]


def first_params(
    departement: str, page_size: int, select: list[str], since: str | None
) -> dict:
    """Return the query of the first page (suffixed filters, `size`, `select`)."""
    params = {
        "code_departement_ban_eq": departement,
        "size": str(min(page_size, datafair.MAX_PAGE_SIZE)),
        "select": ",".join(select),
    }
    if since and MODIFIED_FIELD in select:
        params[f"{MODIFIED_FIELD}_gte"] = since
    return params


def iter_pages(
    client: Client,
    base_url: str,
    dataset_id: str,
    departement: str,
    page_size: int,
    since: str | None = None,
    resume_from: str | None = None,
    select: list[str] | None = None,
) -> Iterator[tuple[datafair.Page, list[str]]]:
    """Yield (page, selected fields) of one dataset, from a cursor when given."""
    url = dataset_url(base_url, dataset_id)
    if select is None:
        select = plan_select(client, datafair.schema_keys(client, url), url)
    params = first_params(departement, page_size, select, since)
    for page in datafair.iter_lines(client, url, params, start_url=resume_from):
        yield page, select


def merge(
    current: pd.DataFrame, changes: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Upsert `changes` into `current` by numero_dpe and drop the replaced DPE."""
    changed = set(changes["numero_dpe"].dropna())
    replaced = set(changes["numero_dpe_remplace"].dropna()) - {""}
    existing = set(current["numero_dpe"].dropna())

    kept = current[~current["numero_dpe"].isin(changed | replaced)]
    merged = pd.concat([kept, changes], ignore_index=True)
    counts = {
        "added": len(changed - existing),
        "updated": len(changed & existing),
        "removed": len((replaced - changed) & existing),
    }
    return merged, counts


def compare(current: pd.DataFrame, new: pd.DataFrame) -> dict[str, int]:
    """Count the DPE added, updated and removed by a full replacement."""
    before = set(current["numero_dpe"].dropna())
    after = set(new["numero_dpe"].dropna())
    return {
        "added": len(after - before),
        "updated": len(after & before),
        "removed": len(before - after),
    }
