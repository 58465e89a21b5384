"""Data Fair API helpers shared by ADEME and Enedis: schema, paged lines, aggregates."""

from __future__ import annotations

import codecs
import io
import logging
import re
from collections.abc import Collection
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from webapp.sources.http import Client

logger = logging.getLogger(__name__)

#: Data Fair's `maxPageSize`: `size` above it is a 400.
MAX_PAGE_SIZE = 10_000
#: Buckets per level of `values_agg` (`agg_size` maximum).
MAX_AGG_SIZE = 10_000
#: JSON scalar types accepted as field values.
SCALARS = (str, int, float, bool, type(None))


@dataclass
class Page:
    """One page of `/lines`: its rows (JSON objects, or a frame from CSV), the
    `next` URL (None on the last), the total (first JSON page only) and body."""

    url: str
    rows: list | pd.DataFrame
    next: str | None
    total: int | None
    body: bytes = b""


def schema_fields(client: Client, dataset_url: str) -> list[dict]:
    """Return the fields of a Data Fair dataset from `<dataset>/schema`."""
    url = f"{dataset_url}/schema"
    document, shown = client.get_json(url, shape=(list, dict))
    fields = document.get("schema") if isinstance(document, dict) else document
    if not isinstance(fields, list) or not fields:
        raise client.error("schema is not a non-empty list of fields", shown)
    for entry in fields:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise client.error("schema field without a string 'key'", shown)
    return fields


def schema_keys(client: Client, dataset_url: str) -> set[str]:
    """Return the field keys of a Data Fair dataset from `<dataset>/schema`."""
    return {entry["key"] for entry in schema_fields(client, dataset_url)}


#: Schema properties a CSV header of `/lines?format=csv` may be taken from.
HEADER_PROPERTIES = ("key", "x-originalName", "title")


def csv_header_names(fields: list[dict], select: list[str]) -> dict[str, str]:
    """Map every name a selected field may carry as a CSV header to its key.

    Data Fair writes the original column names or titles, not the keys, as CSV
    headers. A name claimed by two fields is left out: it cannot be trusted.
    """
    wanted = set(select)
    claims: dict[str, set[str]] = {}
    for entry in fields:
        for prop in HEADER_PROPERTIES:
            name = entry.get(prop)
            if isinstance(name, str) and name.strip():
                claims.setdefault(name.strip(), set()).add(entry["key"])
    return {
        name: next(iter(keys))
        for name, keys in claims.items()
        if len(keys) == 1 and keys <= wanted
    }


class CsvHeaderMismatch(Exception):
    """The CSV headers of a page cannot be mapped onto the selected keys."""


def iter_lines(
    client: Client,
    dataset_url: str,
    params: dict | None = None,
    start_url: str | None = None,
) -> Iterator[Page]:
    """Yield the pages of `/lines`, following `next` until it is absent.

    `start_url` resumes from a saved `next` URL instead of the first page.
    """
    url = start_url or f"{dataset_url}/lines"
    query = None if start_url else dict(params or {})
    seen: set[str] = set()
    while url:
        document, shown, body = client.get_json_body(url, query, required=("results",))
        rows = document["results"]
        if not isinstance(rows, list):
            raise client.error("'results' is not a list", shown)
        total = document.get("total")
        if total is not None and (not isinstance(total, int) or total < 0):
            raise client.error(f"'total' is not a count: {total!r}", shown)
        following = document.get("next") or None
        if following is not None and not isinstance(following, str):
            raise client.error("'next' is not a URL", shown)
        following = _follow(client, following, not rows, seen, shown)
        yield Page(url=shown, rows=rows, next=following, total=total, body=body)
        url, query = following, None


def _follow(
    client: Client, following: str | None, empty: bool, seen: set[str], shown: str
) -> str | None:
    """Return the next page to read (None after an empty page), refusing loops."""
    if empty:
        return None
    if following in seen:
        raise client.error("'next' points to a page already read", shown)
    if following:
        seen.add(following)
    return following


def count_lines(client: Client, dataset_url: str, params: dict) -> int:
    """Return the number of rows matching `params` (`/lines?size=0`)."""
    query = {k: v for k, v in params.items() if k not in ("select", "format")}
    query["size"] = "0"
    document, shown = client.get_json(
        f"{dataset_url}/lines", query, required=("total",)
    )
    total = document["total"]
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise client.error(f"'total' is not a count: {total!r}", shown)
    return total


def iter_csv_lines(
    client: Client,
    dataset_url: str,
    select: list[str],
    headers: dict[str, str],
    params: dict | None = None,
    start_url: str | None = None,
    numeric: Collection[str] = (),
) -> Iterator[Page]:
    """Yield the pages of `/lines?format=csv` as frames, following `Link: next`.

    The body of each page is kept (to stage it); `Page.rows` holds its frame.
    """
    url = start_url or f"{dataset_url}/lines"
    query = None if start_url else {**(params or {}), "format": "csv"}
    size = int((params or {}).get("size", MAX_PAGE_SIZE))
    seen: set[str] = set()
    while url:
        response, body = client.get_csv_body(url, query)
        shown = response.url
        kind = response.headers.get("Content-Type", "").lower()
        if "json" in kind and not seen:
            raise CsvHeaderMismatch("the server answered format=csv with JSON")
        if "csv" not in kind:
            raise client.error(f"unexpected content type {kind or 'none'!r}", shown)
        frame = csv_page_frame(body, select, headers, client, shown, numeric)
        following = response.links.get("next", {}).get("url") or None
        if len(frame) > size:
            raise client.error(f"page of {len(frame)} rows, above size={size}", shown)
        if following and len(frame) < size:
            # Data Fair links a next page only after a full one.
            raise client.error(
                f"truncated page: {len(frame)} of {size} rows before 'next'", shown
            )
        following = _follow(client, following, frame.empty, seen, shown)
        yield Page(url=shown, rows=frame, next=following, total=None, body=body)
        url, query = following, None


def csv_page_frame(
    body: bytes,
    select: list[str],
    headers: dict[str, str],
    client: Client | None = None,
    url: str | None = None,
    numeric: Collection[str] = (),
) -> pd.DataFrame:
    """Parse one CSV page into a frame of `select` (keys as columns).

    Fields of `numeric` are left to the parser's number conversion (a column
    with a stray word stays text, for the normaliser to count); every other
    field is read as text, so that codes keep their leading zeros. Only empty
    fields are missing values. Raises `CsvHeaderMismatch` when a selected field
    has no column.
    """
    # Plain objects: pandas' own string dtype costs a third more to build, and
    # the normaliser converts each text column once anyway.
    text = {name: object for name, key in headers.items() if key not in numeric}
    # A BOM is cut here: `encoding="utf-8-sig"` makes pandas decode in Python.
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            dtype=text,
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = f"malformed CSV page ({exc.__class__.__name__}: {exc})"
        if client is None:
            raise ValueError(reason) from None
        raise client.error(reason, url) from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=select)

    renamed = {name: headers.get(str(name).strip()) for name in frame.columns}
    unknown = [name for name, key in renamed.items() if key is None]
    missing = [key for key in select if key not in renamed.values()]
    if missing:
        raise CsvHeaderMismatch(
            f"CSV headers {list(frame.columns)[:5]}… name no column for "
            f"{len(missing)} selected fields ({', '.join(missing[:3])}…)"
        )
    if unknown:
        logger.info("%s: CSV columns ignored: %s", url, unknown)
        frame = frame.drop(columns=unknown)
    return frame.rename(columns=renamed)[select]


def values_agg(client: Client, dataset_url: str, params: dict) -> dict:
    """Return a validated `values_agg` response."""
    document, shown = client.get_json(
        f"{dataset_url}/values_agg", params, required=("aggs",)
    )
    if not isinstance(document["aggs"], list):
        raise client.error("'aggs' is not a list", shown)
    return document


def flatten_aggs(
    client: Client, buckets: list, fields: list[str], url: str, path: tuple = ()
) -> Iterator[tuple[tuple, dict]]:
    """Yield (values of every level, innermost bucket) of nested `values_agg` aggs."""
    for bucket in buckets:
        if not isinstance(bucket, dict) or "value" not in bucket:
            raise client.error("aggregation bucket without 'value'", url)
        values = (*path, bucket["value"])
        if len(values) < len(fields):
            inner = bucket.get("aggs")
            if not isinstance(inner, list):
                raise client.error("nested aggregation missing 'aggs'", url)
            if bucket.get("total_other"):
                raise Truncated(values)
            yield from flatten_aggs(client, inner, fields, url, values)
        else:
            yield values, bucket


class Truncated(Exception):
    """A `values_agg` level had more buckets than `agg_size` returned."""


def check_rows(
    rows: list, fields: list[str]
) -> tuple[list[dict], dict[str, int], set[str]]:
    """Keep the rows that are objects of scalars; return (rows, rejected, extra keys).

    Keys outside `fields` (a schema change upstream) are dropped and reported.
    """
    wanted = set(fields)
    kept: list[dict] = []
    rejected: dict[str, int] = {}
    extra: set[str] = set()
    for row in rows:
        if not isinstance(row, dict):
            rejected["row is not a JSON object"] = (
                rejected.get("row is not a JSON object", 0) + 1
            )
            continue
        if not all(isinstance(value, SCALARS) for value in row.values()):
            rejected["non-scalar field value"] = (
                rejected.get("non-scalar field value", 0) + 1
            )
            continue
        unknown = row.keys() - wanted
        if unknown:
            extra |= {key for key in unknown if not key.startswith("_")}
            row = {key: row[key] for key in row.keys() & wanted}
        kept.append(row)
    return kept, rejected, extra


#: A JSON object or array as a field value (`"key": {` or `"key": [`).
_NESTED = re.compile(rb'":\s*[\[{]')


def page_frame(
    rows: list, fields: list[str], body: bytes | None = None
) -> tuple[pd.DataFrame, dict[str, int], set[str]]:
    """Return one page as a frame of `fields`, with rejections and new keys.

    The per-row check of `check_rows` costs more than the parse itself, so it
    only runs when the raw body holds a nested value or a row is not an object.
    """
    # One match is the page's own `"results": [`.
    nested = body is None or len(_NESTED.findall(body)) > 1
    if nested or not all(type(row) is dict for row in rows):
        kept, rejected, extra = check_rows(rows, fields)
        return pd.DataFrame.from_records(kept, columns=fields), rejected, extra
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    extra = {c for c in frame.columns if c not in fields and not str(c).startswith("_")}
    return frame.reindex(columns=fields), {}, extra


def merge_counts(into: dict[str, int], more: dict[str, Any]) -> dict[str, int]:
    """Add the counts of `more` to `into` and return it."""
    for reason, count in more.items():
        into[reason] = into.get(reason, 0) + int(count)
    return into
