"""A local fake of the ADEME, Enedis and data.gouv services, for the refresh tests.

A werkzeug server in a thread on 127.0.0.1 that behaves as documented in
`../shared/reference/open-data.md`:

* Data Fair (ADEME and Enedis): `/schema`, `/lines` with `size` ≤ 10,000 (400
  above), `page × size` ≤ 10,000, suffixed filters (a bare `field=value` is
  ignored), `select` (unknown key: 400), `next` and `Link: rel=next` only on full
  pages, `total` only without `after`; `/values_agg` with nested fields,
  `agg_size` ≤ 10,000, `metric`/`metric_field` and `total_other`.
* Opendatasoft Explore v2.1 (Enedis fallback): `/records` with `limit` ≤ 100 and
  `offset + limit` ≤ 10,000, `/exports/json` without limit (any `offset` is a
  400), `select` with `sum(x) as y` and `group_by`; legacy keys, `annee` a date.
* data.gouv: the udata dataset document listing resources, and static files.

Faults are queued per request (`fail(...)`): 429 with Retry-After, 500, a slow
answer beyond the client timeout, an HTML page, an empty or truncated body.
Payloads come from `webapp.demo` or from the real samples in ../shared.
"""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from webapp import demo

ADEME_PREFIX = "/ademe/data-fair/api/v1/datasets/"
ENEDIS_PREFIX = "/enedis/data-fair/api/v1/datasets/"
ODS_PREFIX = "/enedis/api/explore/v2.1/catalog/datasets/"
DATAGOUV_PREFIX = "/datagouv/api/1/datasets/"
STATIC_PREFIX = "/static/resources/communes/"
ENEDIS_ID = "consommation-annuelle-residentielle-par-adresse"
COMMUNES_ID = "6745d9ae4524d845d2138193"

MAX_SIZE = 10_000
MAX_WINDOW = 10_000
ODS_MAX_LIMIT = 100
SUFFIXES = (
    "_nexists",
    "_exists",
    "_starts",
    "_contains",
    "_search",
    "_neq",
    "_nin",
    "_gte",
    "_lte",
    "_eq",
    "_in",
    "_gt",
    "_lt",
)
#: Data Fair spellings of the Enedis fields whose legacy key has "_l_".
DATAFAIR_ENEDIS = {
    "consommation_annuelle_totale_de_l_adresse_mwh": (
        "consommation_annuelle_totale_de_ladresse_mwh"
    ),
    "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh": (
        "consommation_annuelle_moyenne_par_site_de_ladresse_mwh"
    ),
}


# --------------------------------------------------------------------------- payloads


def records(frame: pd.DataFrame) -> list[dict]:
    """Return a frame as JSON-like records (NaN → null, numpy → Python)."""
    return json.loads(frame.to_json(orient="records", force_ascii=False))


def demo_dpe(n: int = 300, seed: int = 7) -> pd.DataFrame:
    """Synthetic DPE rows of dept 74 from the demo generator."""
    return demo.generate_dpe(demo.load_communes(), n=n, seed=seed)


def ademe_datasets(dpe: pd.DataFrame) -> dict[str, list[dict]]:
    """Split generator rows into the two ADEME datasets (without `source`)."""
    existing = dpe[dpe["source"] == "existant"].drop(columns="source")
    new = dpe[dpe["source"] == "neuf"].drop(columns="source")
    return {"dpe03existant": records(existing), "dpe02neuf": records(new)}


def demo_enedis(dpe: pd.DataFrame, seed: int = 7) -> list[dict]:
    """Synthetic Enedis address rows (legacy keys) from the demo generator."""
    return records(demo.generate_enedis(demo.load_communes(), dpe, seed=seed))


def communes_csv(frame: pd.DataFrame | None = None, index_column: bool = True) -> bytes:
    """The communes table as data.gouv serves it (leading unnamed index column)."""
    if frame is None:
        frame = demo.load_communes()
    buffer = io.StringIO()
    frame.to_csv(buffer, index=index_column)
    return buffer.getvalue().encode("utf-8")


def real_neuf_rows(raw: Path) -> list[dict]:
    """Rows of the real dpe02neuf sample, as the API would serve them."""
    frame = pd.read_csv(raw / "ademe_dpe02neuf_73-74_sample.csv", dtype=str)
    frame = frame.drop(columns=["code_insee_source", "annee_recherche"])
    # The extract lacks the département field that every ADEME line carries.
    frame["code_departement_ban"] = frame["code_insee_ban"].str.zfill(5).str[:2]
    return records(frame)


def real_enedis_rows(raw: Path) -> list[dict]:
    """Rows of the real Enedis Lyon 8e extract (legacy keys, floats for codes)."""
    path = (
        raw
        / "other_departments"
        / ("enedis_conso_residentielle_adresses_lyon8_69123_2018-2023.csv")
    )
    frame = pd.read_csv(path, sep=";", index_col=0)
    frame["code_departement"] = (
        frame["code_departement"].astype("Int64").astype(str).str.zfill(2)
    )
    frame["code_commune"] = frame["code_commune"].astype("Int64").astype(str)
    return records(frame)


def real_national_communes(raw: Path) -> pd.DataFrame:
    """All communes: the real 74 rows with their 46 columns, the rest reduced."""
    dep74 = pd.read_csv(raw / "communes-france-2025_dep74.csv", dtype=str)
    light = pd.read_csv(raw / "communes-france-2025-light_marinoo3.csv", dtype=str)
    light = light.drop(
        columns=["superficie_km2.1", "zone_climatique", "classe_altitude"]
    )
    light = light[~light["code_insee"].isin(dep74["code_insee"])].copy()
    light["dep_code"] = np.where(
        light["code_insee"].str.startswith("97"),
        light["code_insee"].str[:3],
        light["code_insee"].str[:2],
    )
    return pd.concat([dep74, light], ignore_index=True)


# --------------------------------------------------------------------------- faults


@dataclass
class Fault:
    """One misbehaviour served to the next matching requests."""

    kind: str
    match: str
    times: int = 1
    when: Callable[[Request], bool] | None = None
    served: int = 0

    def applies(self, request: Request) -> bool:
        if self.served >= self.times or self.match not in request.path:
            return False
        return self.when is None or self.when(request)


@dataclass
class Dataset:
    """Rows of one Data Fair dataset, each with its `_i` line number."""

    rows: list[dict]
    keys: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.keys:
            seen: dict[str, None] = {}
            for row in self.rows:
                seen.update(dict.fromkeys(row))
            self.keys = list(seen)
        for number, row in enumerate(self.rows, start=1):
            row["_i"] = number

    def upsert(self, row: dict) -> None:
        """Add a row (or replace the row of the same numero_dpe) as a new line."""
        self.rows = [r for r in self.rows if r.get("numero_dpe") != row["numero_dpe"]]
        row = dict(row)
        row["_i"] = max((r["_i"] for r in self.rows), default=0) + 1
        self.rows.append(row)


def _error(status: int, message: str, kind: str = "text/plain") -> Response:
    return Response(message, status=status, content_type=f"{kind}; charset=utf-8")


def _json(payload, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False)
    return Response(
        body,
        status=status,
        content_type="application/json; charset=utf-8",
        headers=headers,
    )


def _schema_field(key: str) -> dict:
    """A Data Fair schema entry: key, original name and a title unlike the key."""
    title = key.replace("_", " ").strip().capitalize()
    return {"key": key, "x-originalName": key, "title": title, "type": "string"}


def _csv(names: list[str], keys: list[str], rows: list[dict], headers) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow(["" if row.get(k) is None else row.get(k) for k in keys])
    return Response(
        buffer.getvalue(), content_type="text/csv; charset=utf-8", headers=headers
    )


# --------------------------------------------------------------------------- filters


def _compare(value, wanted: str):
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return value, float(wanted)
        except ValueError:
            return str(value), wanted
    return str(value), wanted


def _match(row: dict, key: str, suffix: str, wanted: str) -> bool:
    value = row.get(key)
    if suffix == "_exists":
        return value not in (None, "")
    if suffix == "_nexists":
        return value in (None, "")
    if value is None:
        return suffix in ("_neq", "_nin")
    if suffix in ("_in", "_nin"):
        found = str(value) in wanted.split(",") or any(
            _compare(value, w)[0] == _compare(value, w)[1] for w in wanted.split(",")
        )
        return found if suffix == "_in" else not found
    left, right = _compare(value, wanted)
    if (
        isinstance(left, str)
        and len(right) == 10
        and re.match(r"\d{4}-\d\d-\d\d", right)
    ):
        # A day on a date-time field widens to the whole day.
        left = left[:10]
    if suffix == "_eq":
        return left == right
    if suffix == "_neq":
        return left != right
    if suffix == "_starts":
        return str(value).startswith(wanted)
    if suffix in ("_contains", "_search"):
        return wanted.lower() in str(value).lower()
    return {
        "_gt": left > right,
        "_gte": left >= right,
        "_lt": left < right,
        "_lte": left <= right,
    }[suffix]


def _filters(args, keys: list[str]) -> tuple[list[tuple[str, str, str]], str | None]:
    """Return the suffixed filters of a query; a bare `field=value` is ignored."""
    found = []
    for name, value in args.items(multi=True):
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)]:
                key = name[: -len(suffix)]
                if key not in keys:
                    return [], f'unknown field "{key}" in filter {name}'
                found.append((key, suffix, value))
                break
    return found, None


def _ods_where(where: str | None) -> list[tuple[str, str]]:
    """Parse a tiny ODSQL subset: `a='x' and b=date'2023' and c=3`."""
    if not where:
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", where.strip(), flags=re.IGNORECASE):
        hit = re.fullmatch(r"\s*(\w+)\s*=\s*(?:date)?['\"]?([^'\"]*)['\"]?\s*", part)
        if not hit:
            raise ValueError(part)
        clauses.append((hit.group(1), hit.group(2)))
    return clauses


def _ods_match(row: dict, clauses) -> bool:
    for key, wanted in clauses:
        value = row.get(key)
        if value is None:
            return False
        text = str(value)
        if text != wanted and not text.startswith(wanted + "-"):
            try:
                if float(text) != float(wanted):
                    return False
            except ValueError:
                return False
    return True


# --------------------------------------------------------------------------- server


class FakeUpstream:
    """The fake services; `config()` gives the app settings pointing at them."""

    def __init__(self) -> None:
        self.ademe: dict[str, Dataset] = {}
        self.enedis: Dataset = Dataset([])
        self.communes: bytes = b""
        self.faults: list[Fault] = []
        self.log: list[tuple[str, dict]] = []
        self.down: set[str] = set()
        self.slow_seconds = 0.6
        self.retry_after = "1"
        self.resource_stamp = "20250221-162232"
        self.ods_annee_as_date = True
        #: Schema property written as CSV headers by `/lines?format=csv` (Data
        #: Fair writes original names or titles, not keys); None: format ignored
        #: and JSON served, as an older server would.
        self.csv_header: str | None = "title"
        #: Fields added to every row served, whatever `select` says (a new field).
        self.extra_fields: dict = {}
        self.block: tuple[Callable[[Request], bool], threading.Event] | None = None
        self.reached = threading.Event()
        self._server = None
        self._thread = None

    # ------------------------------------------------------------ set-up

    def set_ademe(self, datasets: dict[str, list[dict]]) -> None:
        """Serve these rows as the ADEME datasets (keys from the rows)."""
        self.ademe = {
            name: Dataset([dict(r) for r in rows]) for name, rows in datasets.items()
        }

    def set_enedis(self, rows: list[dict]) -> None:
        """Serve these Enedis address rows (legacy keys) on both hosts."""
        self.enedis = Dataset([dict(r) for r in rows])

    def fail(self, kind: str, match: str, times: int = 1, when=None) -> Fault:
        """Queue a fault for the next `times` requests whose path contains `match`."""
        fault = Fault(kind, match, times, when)
        self.faults.append(fault)
        return fault

    def start(self) -> FakeUpstream:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.block:
            self.block[1].set()
        if self._server:
            self._server.shutdown()
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def config(self, **extra) -> dict:
        """App settings pointing every source at this server, with fast HTTP."""
        settings = {
            "ADEME_API_URL": self.url + ADEME_PREFIX.rstrip("/"),
            "ENEDIS_API_URL": self.url + ENEDIS_PREFIX.rstrip("/"),
            "ENEDIS_ODS_URL": self.url + ODS_PREFIX.rstrip("/"),
            "DATAGOUV_API_URL": self.url + "/datagouv/api/1",
            "COMMUNES_URL": self.url
            + STATIC_PREFIX
            + "static/communes-france-2025.csv",
            "HTTP_CONNECT_TIMEOUT": 2.0,
            "HTTP_READ_TIMEOUT": 2.0,
            "HTTP_RETRIES": 3,
            "HTTP_BACKOFF_SECONDS": 0.0,
            "HTTP_BACKOFF_MAX_SECONDS": 0.01,
            "HTTP_MIN_INTERVAL_SECONDS": 0.0,
            "ADEME_PAGE_SIZE": 100,
            "ENEDIS_PAGE_SIZE": 50,
            "COMMUNES_MIN_ROWS": 100,
        }
        settings.update(extra)
        return settings

    def requests_to(self, part: str) -> list[dict]:
        """The query arguments of the logged requests whose path contains `part`."""
        return [args for path, args in self.log if part in path]

    # ------------------------------------------------------------ dispatch

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        self.log.append((request.path, request.args.to_dict(flat=True)))
        if self.block and self.block[0](request):
            self.reached.set()
            self.block[1].wait(timeout=30)
        for fault in self.faults:
            if fault.applies(request):
                fault.served += 1
                answer = self._fault(fault)
                if answer is not None:
                    return answer
                break
        for prefix in self.down:
            if request.path.startswith(prefix):
                return _error(
                    503, "<html><body>Service indisponible</body></html>", "text/html"
                )

        path = request.path
        try:
            if path.startswith(ADEME_PREFIX):
                return self._datafair(request, path[len(ADEME_PREFIX) :], self.ademe)
            if path.startswith(ENEDIS_PREFIX):
                enedis = {ENEDIS_ID: self._enedis_datafair()}
                return self._datafair(request, path[len(ENEDIS_PREFIX) :], enedis)
            if path.startswith(ODS_PREFIX):
                return self._ods(request, path[len(ODS_PREFIX) :])
            if path.startswith(DATAGOUV_PREFIX):
                return self._udata(request, path[len(DATAGOUV_PREFIX) :])
            if path.startswith(STATIC_PREFIX):
                return self._static()
        except _BadRequest as exc:
            return _json({"error": str(exc)}, 400)
        return _error(
            404, "<!doctype html><html><body>Not found</body></html>", "text/html"
        )

    def _fault(self, fault: Fault) -> Response | None:
        kind = fault.kind
        if kind == "429":
            return (
                _error(429, "Too Many Requests")
                if not self.retry_after
                else Response(
                    "Too Many Requests",
                    status=429,
                    headers={"Retry-After": self.retry_after},
                )
            )
        if kind == "500":
            return _error(500, "Internal Server Error")
        if kind == "slow":
            time.sleep(self.slow_seconds)
            return None
        if kind == "html":
            return Response(
                "<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>",
                content_type="text/html; charset=utf-8",
            )
        if kind == "empty":
            return Response(b"", content_type="application/json")
        if kind == "truncated_json":
            return Response(
                b'{"total": 3, "results": [{"numero_dpe": "2',
                content_type="application/json",
            )
        if kind == "short_body":
            response = Response(b"code_insee,nom", content_type="text/csv")
            response.headers["Content-Length"] = "100000"
            response.headers["Connection"] = "close"
            return response
        if kind == "wrong_shape":
            return _json(["not", "an", "object"])
        if kind == "csv_renamed":
            # A full page whose headers no longer match the schema.
            return _csv(["Colonne inconnue"], ["x"], [{"x": 1}], {})
        raise ValueError(kind)

    # ------------------------------------------------------------ Data Fair

    def _enedis_datafair(self) -> Dataset:
        # Data Fair drops the "_l_" and keeps `annee` numeric.
        rows = []
        for row in self.enedis.rows:
            row = {DATAFAIR_ENEDIS.get(k, k): v for k, v in row.items()}
            if isinstance(row.get("annee"), str):
                row["annee"] = int(row["annee"][:4])
            rows.append(row)
        keys = [DATAFAIR_ENEDIS.get(k, k) for k in self.enedis.keys]
        dataset = Dataset.__new__(Dataset)
        dataset.rows, dataset.keys = rows, keys
        return dataset

    def _datafair(self, request: Request, rest: str, datasets: dict) -> Response:
        dataset_id, _, action = rest.partition("/")
        dataset = datasets.get(dataset_id)
        if dataset is None:
            return _json({"error": "dataset not found"}, 404)
        if action == "":
            return _json({"id": dataset_id, "count": len(dataset.rows)})
        if action == "schema":
            return _json([_schema_field(k) for k in dataset.keys])
        if action == "lines":
            return self._lines(request, dataset)
        if action == "values_agg":
            return self._values_agg(request, dataset)
        return _json({"error": "unknown endpoint"}, 404)

    def _rows(self, request: Request, dataset: Dataset) -> list[dict]:
        filters, problem = _filters(request.args, dataset.keys)
        if problem:
            raise _BadRequest(problem)
        return [
            row
            for row in dataset.rows
            if all(_match(row, key, suffix, value) for key, suffix, value in filters)
        ]

    def _lines(self, request: Request, dataset: Dataset) -> Response:
        args = request.args
        size = int(args.get("size", 12))
        page = int(args.get("page", 1))
        if size > MAX_SIZE:
            raise _BadRequest('"size" cannot be more than 10000')
        if page * size > MAX_WINDOW:
            raise _BadRequest('"size * page" cannot be more than 10000')
        select = [k for k in args.get("select", "").split(",") if k]
        unknown = [k for k in select if k not in dataset.keys]
        if unknown:
            raise _BadRequest(f'unknown field "{unknown[0]}" in select')

        rows = sorted(self._rows(request, dataset), key=lambda r: r["_i"])
        body: dict = {}
        if "after" in args:
            after = int(args["after"])
            rows = [r for r in rows if r["_i"] > after]
            start = 0
        else:
            body["total"] = len(rows)
            start = (page - 1) * size
        chosen = rows[start : start + size]
        keys = select or [k for k in dataset.keys if k != "_geoshape"]
        body["results"] = [
            {**{k: r.get(k) for k in keys if k in r}, **self.extra_fields}
            for r in chosen
        ]
        headers = {}
        if size and len(chosen) == size:
            query = {k: v for k, v in args.items() if k not in ("page", "after")}
            query["after"] = str(chosen[-1]["_i"])
            body["next"] = f"{request.base_url}?{urlencode(query)}"
            headers["Link"] = f"<{body['next']}>; rel=next"
        if args.get("format") == "csv" and self.csv_header:
            fields = [_schema_field(k) for k in keys]
            names = [field.get(self.csv_header) or field["key"] for field in fields]
            extra = list(self.extra_fields)
            return _csv(names + extra, keys + extra, body["results"], headers)
        return _json(body, headers=headers)

    def _values_agg(self, request: Request, dataset: Dataset) -> Response:
        args = request.args
        fields = [f for f in args.get("field", "").split(",") if f]
        agg_size = int(args.get("agg_size", 20))
        if not fields or any(f not in dataset.keys for f in fields):
            raise _BadRequest("unknown or missing field")
        if agg_size > MAX_SIZE:
            raise _BadRequest('"agg_size" cannot be more than 10000')
        metric, metric_field = args.get("metric"), args.get("metric_field")
        if metric and metric_field not in dataset.keys:
            raise _BadRequest("unknown metric_field")
        rows = self._rows(request, dataset)

        def level(subset: list[dict], depth: int) -> tuple[list[dict], int]:
            groups: dict = {}
            for row in subset:
                groups.setdefault(row.get(fields[depth]), []).append(row)
            ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))
            kept, other = ordered[:agg_size], ordered[agg_size:]
            buckets = []
            for value, members in kept:
                bucket = {"value": value, "total": len(members), "results": []}
                if depth + 1 < len(fields):
                    bucket["aggs"], bucket["total_other"] = level(members, depth + 1)
                elif metric == "sum":
                    bucket["metric"] = float(
                        sum(r.get(metric_field) or 0 for r in members)
                    )
                buckets.append(bucket)
            return buckets, sum(len(m) for _, m in other)

        aggs, other = level(rows, 0)
        return _json({"total": len(rows), "total_other": other, "aggs": aggs})

    # ------------------------------------------------------------ ODS

    def _ods_rows(self) -> list[dict]:
        rows = []
        for row in self.enedis.rows:
            row = {k: v for k, v in row.items() if k != "_i"}
            if self.ods_annee_as_date and row.get("annee") is not None:
                row["annee"] = f"{int(str(row['annee'])[:4])}-01-01"
            rows.append(row)
        return rows

    def _ods(self, request: Request, rest: str) -> Response:
        dataset_id, _, action = rest.partition("/")
        if dataset_id != ENEDIS_ID:
            return _json({"error_code": "DatasetNotFound"}, 404)
        args = request.args
        try:
            clauses = _ods_where(args.get("where"))
        except ValueError as exc:
            raise _BadRequest(f"ODSQL query is malformed: {exc}") from None
        if action == "":
            keys = [k for k in self.enedis.keys if k != "_i"]
            return _json(
                {"dataset_id": ENEDIS_ID, "fields": [{"name": k} for k in keys]}
            )
        rows = [r for r in self._ods_rows() if _ods_match(r, clauses)]
        if action == "records":
            limit = int(args.get("limit", 10))
            offset = int(args.get("offset", 0))
            if not -1 <= limit <= ODS_MAX_LIMIT:
                raise _BadRequest(
                    f"Invalid value for limit API parameter: {limit} was found but "
                    "-1 <= limit <= 100 is expected."
                )
            if offset + max(limit, 0) > MAX_WINDOW:
                raise _BadRequest(
                    "Invalid value for offset API parameter: offset + limit was "
                    f"{offset + limit} but <= 10000 is expected."
                )
            chosen = rows[offset : offset + (limit if limit >= 0 else ODS_MAX_LIMIT)]
            return _json({"total_count": len(rows), "results": chosen})
        if action == "exports/json":
            if args.get("offset", "0") != "0":
                raise _BadRequest("offset is not allowed on exports")
            return _json(
                self._ods_select(rows, args.get("select"), args.get("group_by"))
            )
        return _json({"error_code": "UnknownEndpoint"}, 404)

    def _ods_select(self, rows: list[dict], select: str | None, group_by: str | None):
        if not select:
            return rows
        parts = [p.strip() for p in select.split(",")]
        plain, sums = [], []
        for part in parts:
            hit = re.fullmatch(r"sum\((\w+)\)\s+as\s+(\w+)", part, flags=re.IGNORECASE)
            if hit:
                if hit.group(1) not in self.enedis.keys:
                    raise _BadRequest(f"Unknown field: {hit.group(1)}")
                sums.append((hit.group(1), hit.group(2)))
            else:
                plain.append(part)
        if not group_by:
            return [{k: r.get(k) for k in plain} for r in rows]
        keys = [k.strip() for k in group_by.split(",")]
        groups: dict = {}
        for row in rows:
            groups.setdefault(tuple(row.get(k) for k in keys), []).append(row)
        out = []
        for values, members in groups.items():
            entry = dict(zip(keys, values, strict=True))
            for source, alias in sums:
                entry[alias] = float(sum(r.get(source) or 0 for r in members))
            out.append(entry)
        return out

    # ------------------------------------------------------------ data.gouv

    def _udata(self, request: Request, rest: str) -> Response:
        if rest.strip("/") != COMMUNES_ID:
            return _json({"message": "Not found"}, 404)
        base = f"{self.url}{STATIC_PREFIX}{self.resource_stamp}/communes-france-2025"
        return _json(
            {
                "id": COMMUNES_ID,
                "title": "Communes et villes de France",
                "resources": [
                    {
                        "id": "res-2025-light",
                        "title": "communes-france-2025-light",
                        "format": "csv",
                        "url": f"{base}-light.csv",
                    },
                    {
                        "id": "res-2025-parquet",
                        "title": "communes-france-2025.parquet",
                        "format": "parquet",
                        "url": f"{base}.parquet",
                    },
                    {
                        "id": "res-2025",
                        "title": "communes-france-2025.csv",
                        "format": "csv",
                        "url": f"{base}.csv",
                    },
                ],
            }
        )

    def _static(self) -> Response:
        return Response(self.communes, content_type="text/csv")


class _BadRequest(Exception):
    """A 400 of the emulated APIs."""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def demo_payloads() -> dict:
    """Demo-generator payloads of the three services (built once per session)."""
    dpe = demo_dpe()
    return {
        "dpe": dpe,
        "ademe": ademe_datasets(dpe),
        "enedis": demo_enedis(dpe),
        "communes": communes_csv(),
    }


@pytest.fixture
def upstream(demo_payloads):
    """The fake services serving the demo payloads, stopped after the test."""
    server = FakeUpstream()
    server.set_ademe(demo_payloads["ademe"])
    server.set_enedis(demo_payloads["enedis"])
    server.communes = demo_payloads["communes"]
    server.start()
    yield server
    server.stop()
