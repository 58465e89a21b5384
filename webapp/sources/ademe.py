"""ADEME DPE datasets on Data Fair: `dpe03existant` and `dpe02neuf`, one département."""

from __future__ import annotations

import json
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


#: Formats of `/lines` pages: CSV parses several times faster than JSON.
PAGE_FORMATS = ("csv", "json")
#: Fields parsed as numbers from CSV pages.
NUMERIC_FIELDS = frozenset(schema.DPE_NUMERIC_COLUMNS)


def plan_dataset(
    client: Client, base_url: str, dataset_id: str, page_format: str
) -> dict:
    """Return how to read one dataset: fields to select, page format, CSV headers."""
    url = dataset_url(base_url, dataset_id)
    fields = datafair.schema_fields(client, url)
    select = plan_select(client, {entry["key"] for entry in fields}, url)
    plan = {"select": select, "format": page_format, "headers": None}
    if page_format == "csv":
        plan["headers"] = datafair.csv_header_names(fields, select)
    return plan


def count(client: Client, base_url: str, dataset_id: str, params: dict) -> int:
    """Return the number of rows the query of `first_params` will fetch."""
    return datafair.count_lines(client, dataset_url(base_url, dataset_id), params)


def iter_pages(
    client: Client,
    base_url: str,
    dataset_id: str,
    params: dict,
    plan: dict,
    resume_from: str | None = None,
) -> Iterator[datafair.Page]:
    """Yield the pages of one dataset as `plan` says, from a cursor when given.

    CSV pages carry a frame in `Page.rows`; JSON pages their list of objects.
    """
    url = dataset_url(base_url, dataset_id)
    if plan["format"] == "csv":
        yield from datafair.iter_csv_lines(
            client,
            url,
            plan["select"],
            plan["headers"] or {},
            params,
            start_url=resume_from,
            numeric=NUMERIC_FIELDS,
        )
    else:
        yield from datafair.iter_lines(client, url, params, start_url=resume_from)


def page_frame(
    page: datafair.Page, select: list[str]
) -> tuple[pd.DataFrame, dict, set]:
    """Return (frame, rejected rows by reason, new fields) of one fetched page."""
    if isinstance(page.rows, pd.DataFrame):
        return page.rows, {}, set()
    return datafair.page_frame(page.rows, select, page.body)


def staged_frame(body: bytes, plan: dict) -> pd.DataFrame:
    """Rebuild the frame of a page staged by an interrupted run."""
    if plan.get("format") == "csv":
        return datafair.csv_page_frame(
            body, plan["select"], plan["headers"] or {}, numeric=NUMERIC_FIELDS
        )
    document = json.loads(body)
    return datafair.page_frame(document["results"], plan["select"], body)[0]


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
