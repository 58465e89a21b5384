"""Enedis "consommation annuelle résidentielle par adresse": Data Fair, then ODS.

Two extracts: every address row of one département, and the national sums per
commune and year computed by the API's own aggregation (never by downloading
every address of France).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import pandas as pd

from webapp import schema
from webapp.sources import datafair
from webapp.sources.http import Client
from webapp.sources.http import SourceError

logger = logging.getLogger(__name__)

DATASET_ID = "consommation-annuelle-residentielle-par-adresse"
#: The two spellings of the total consumption (Data Fair drops the "_l_").
CONSO_KEYS = (
    "consommation_annuelle_totale_de_ladresse_mwh",
    "consommation_annuelle_totale_de_l_adresse_mwh",
)
DWELLINGS_KEY = "nombre_de_logements"
#: Départements per aggregation bucket list (France has 101).
MAX_DEPARTEMENTS = 200

Progress = Callable[[int, int | None], None]


@dataclass
class Extract:
    """Rows fetched from one host, with the rows rejected before normalising."""

    frame: pd.DataFrame
    host: str
    url: str
    rejected: dict[str, int] = field(default_factory=dict)


def _known_keys(keys) -> list[str]:
    """Return the keys that map to a stored Enedis column (either spelling)."""
    return [key for key in keys if schema.enedis_header(key) in schema.ENEDIS_COLUMNS]


def _pick_conso(client: Client, keys: set[str], url: str) -> str:
    for key in CONSO_KEYS:
        if key in keys:
            return key
    raise client.error(
        "schema change: no consommation_annuelle_totale_de_l(_)adresse_mwh field", url
    )


def _log_extra(url: str, extra: set[str]) -> None:
    if extra:
        logger.info("%s: new fields ignored: %s", url, ", ".join(sorted(extra)))


# --------------------------------------------------------------------------- hosts


def datafair_addresses(
    client: Client,
    base_url: str,
    departement: str,
    page_size: int,
    progress: Progress | None = None,
) -> Extract:
    """Fetch every address row of one département through Data Fair `/lines`."""
    url = f"{base_url.rstrip('/')}/{DATASET_ID}"
    keys = datafair.schema_keys(client, url)
    missing = [
        key for key in ("annee", "code_commune", DWELLINGS_KEY) if key not in keys
    ]
    if missing:
        raise client.error(f"schema change: fields missing: {', '.join(missing)}", url)
    _pick_conso(client, keys, url)
    fields = _known_keys(keys)

    params = {
        "code_departement_eq": departement,
        "size": str(min(page_size, datafair.MAX_PAGE_SIZE)),
        "select": ",".join(fields),
    }
    rows: list[dict] = []
    rejected: dict[str, int] = {}
    extra: set[str] = set()
    total = None
    for page in datafair.iter_lines(client, url, params):
        total = page.total if page.total is not None else total
        kept, bad, new = datafair.check_rows(page.rows, fields)
        rows.extend(kept)
        datafair.merge_counts(rejected, bad)
        extra |= new
        if progress:
            progress(len(rows), total)
    _log_extra(url, extra)
    frame = pd.DataFrame.from_records(rows, columns=fields)
    return Extract(frame, "data-fair", url, rejected)


def ods_addresses(
    client: Client,
    base_url: str,
    departement: str,
    progress: Progress | None = None,
) -> Extract:
    """Fetch every address row of one département through the ODS exports."""
    url = f"{base_url.rstrip('/')}/{DATASET_ID}"
    where = f"code_departement='{departement}'"
    # /records only counts here: paging it stops at 10,000 rows.
    counted, shown = client.get_json(
        f"{url}/records", {"where": where, "limit": "0"}, required=("total_count",)
    )
    total = counted["total_count"]
    if not isinstance(total, int):
        raise client.error("'total_count' is not a count", shown)

    records, shown = client.get_json(
        f"{url}/exports/json", {"where": where, "limit": "-1"}, shape=list
    )
    keys = set().union(*(r.keys() for r in records if isinstance(r, dict)))
    fields = _known_keys(keys)
    kept, rejected, extra = datafair.check_rows(records, fields)
    _log_extra(shown, extra)
    if len(records) < total:
        raise client.error(
            f"export stopped at {len(records)} of {total} rows (truncated)", shown
        )
    if progress:
        progress(len(kept), total)
    return Extract(
        pd.DataFrame.from_records(kept, columns=fields), "ods", shown, rejected
    )


def datafair_commune_sums(
    client: Client, base_url: str, progress: Progress | None = None
) -> Extract:
    """Sum dwellings and consumption per commune and year with `values_agg`."""
    url = f"{base_url.rstrip('/')}/{DATASET_ID}"
    keys = datafair.schema_keys(client, url)
    conso = _pick_conso(client, keys, url)

    try:
        frame = _sums_for(client, url, conso, {})
        if progress:
            progress(len(frame), len(frame))
    except datafair.Truncated:
        # Too many communes for one bucket list: one query per département.
        logger.info("%s: national aggregation truncated, splitting by département", url)
        frame = _sums_by_departement(client, url, conso, progress)
    return Extract(frame, "data-fair", f"{url}/values_agg")


def _sums_for(client: Client, url: str, conso: str, filters: dict) -> pd.DataFrame:
    fields = ["annee", "code_commune"]
    sums = {}
    for metric_field, column in ((DWELLINGS_KEY, DWELLINGS_KEY), (conso, "conso")):
        params = {
            "field": ",".join(fields),
            "agg_size": str(datafair.MAX_AGG_SIZE),
            "metric": "sum",
            "metric_field": metric_field,
            **filters,
        }
        document = datafair.values_agg(client, url, params)
        if document.get("total_other"):
            raise datafair.Truncated(())
        for values, bucket in datafair.flatten_aggs(
            client, document["aggs"], fields, f"{url}/values_agg"
        ):
            sums.setdefault(values, {})[column] = bucket.get("metric")
    return pd.DataFrame(
        [
            {
                "annee": annee,
                "code_commune": commune,
                "nombre_de_logements": metrics.get(DWELLINGS_KEY),
                "conso_total_mwh": metrics.get("conso"),
            }
            for (annee, commune), metrics in sums.items()
        ],
        columns=list(schema.ENEDIS_COMMUNES_COLUMNS),
    )


def _sums_by_departement(
    client: Client, url: str, conso: str, progress: Progress | None
) -> pd.DataFrame:
    document = datafair.values_agg(
        client, url, {"field": "code_departement", "agg_size": str(MAX_DEPARTEMENTS)}
    )
    departements = [
        bucket["value"]
        for _, bucket in datafair.flatten_aggs(
            client, document["aggs"], ["code_departement"], f"{url}/values_agg"
        )
    ]
    frames = []
    for done, departement in enumerate(departements, start=1):
        try:
            frames.append(
                _sums_for(client, url, conso, {"code_departement_eq": departement})
            )
        except datafair.Truncated:
            raise client.error(
                f"aggregation still truncated for département {departement}", url
            ) from None
        if progress:
            progress(done, len(departements))
    return pd.concat(frames, ignore_index=True) if frames else _sums_for_empty()


def _sums_for_empty() -> pd.DataFrame:
    return pd.DataFrame(columns=list(schema.ENEDIS_COMMUNES_COLUMNS))


def ods_commune_sums(
    client: Client, base_url: str, progress: Progress | None = None
) -> Extract:
    """Sum dwellings and consumption per commune and year with an ODS group_by."""
    url = f"{base_url.rstrip('/')}/{DATASET_ID}"
    conso = CONSO_KEYS[1]
    try:
        metadata, _ = client.get_json(url, required=("fields",))
        names = {f.get("name") for f in metadata["fields"] if isinstance(f, dict)}
        conso = _pick_conso(client, names, url)
    except SourceError as exc:
        logger.warning("%s; assuming the legacy field names", exc)

    params = {
        "select": (
            "code_commune, annee, sum(nombre_de_logements) as nombre_de_logements, "
            f"sum({conso}) as conso_total_mwh"
        ),
        "group_by": "code_commune, annee",
        "limit": "-1",
    }
    records, shown = client.get_json(f"{url}/exports/json", params, shape=list)
    fields = list(schema.ENEDIS_COMMUNES_COLUMNS)
    kept, rejected, extra = datafair.check_rows(records, fields)
    _log_extra(shown, extra)
    if progress:
        progress(len(kept), len(kept))
    return Extract(
        pd.DataFrame.from_records(kept, columns=fields), "ods", shown, rejected
    )


# --------------------------------------------------------------------------- fallback


def with_fallback(attempts: list[tuple[str, Callable[[], Extract]]]) -> Extract:
    """Return the first host that succeeds; fail with every host's reason."""
    failures = []
    for host, attempt in attempts:
        try:
            return attempt()
        except SourceError as exc:
            logger.warning("enedis %s host failed: %s", host, exc)
            failures.append(exc)
    reasons = "; then ".join(f"{e.reason} ({e.url})" for e in failures)
    raise SourceError("enedis", f"every host failed: {reasons}")
