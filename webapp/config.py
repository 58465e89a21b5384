"""Default configuration of Atlas Énergie 74."""

from __future__ import annotations

import os

#: Environment variables read on top of the defaults and the instance folder.
ENV_KEYS = (
    "MOUNT_PATH",
    "INITIAL_DATA_PATH",
    "SECRET_KEY",
    "REFRESH_TOKEN",
    "ADEME_API_URL",
    "ENEDIS_API_URL",
    "ENEDIS_ODS_URL",
    "DATAGOUV_API_URL",
    "COMMUNES_URL",
    "APP_ENV",
    "LOG_LEVEL",
    "TRAIN_IF_MISSING",
    "RATELIMIT_API",
    "RATELIMIT_AJAX",
    # Refresh job (webapp/refresh.py): HTTP behaviour and page sizes.
    "HTTP_CONNECT_TIMEOUT",
    "HTTP_READ_TIMEOUT",
    "HTTP_RETRIES",
    "HTTP_BACKOFF_SECONDS",
    "HTTP_BACKOFF_MAX_SECONDS",
    "HTTP_MIN_INTERVAL_SECONDS",
    "ADEME_PAGE_SIZE",
    "ADEME_PAGE_FORMAT",
    "ENEDIS_PAGE_SIZE",
    "REFRESH_DEPARTEMENT",
    "COMMUNES_MIN_ROWS",
    "REFRESH_CURSOR_MAX_AGE_HOURS",
)

DEFAULTS = {
    # Where refreshed data, the manifest and the models live (as in the original app).
    "MOUNT_PATH": "/volume",
    # Folder of the initial datasets; None means webapp/datasets.
    "INITIAL_DATA_PATH": None,
    "SECRET_KEY": None,
    "REFRESH_TOKEN": None,
    "APP_ENV": "development",
    "LOG_LEVEL": "INFO",
    "ADEME_API_URL": "https://data.ademe.fr/data-fair/api/v1/datasets",
    "ENEDIS_API_URL": "https://opendata.enedis.fr/data-fair/api/v1/datasets",
    "ENEDIS_ODS_URL": "https://data.enedis.fr/api/explore/v2.1/catalog/datasets",
    "DATAGOUV_API_URL": "https://www.data.gouv.fr/api/1",
    "COMMUNES_URL": (
        "https://static.data.gouv.fr/resources/"
        "communes-et-villes-de-france-en-csv-excel-json-parquet-et-feather/"
        "20250221-162232/communes-france-2025.csv"
    ),
    # Refresh job: seconds for connect/read timeouts, retries with exponential
    # backoff (Retry-After honoured, capped), and the minimum gap between two
    # requests of one source (0.11 s stays under the 600 requests per 60 s quota).
    "HTTP_CONNECT_TIMEOUT": 5.0,
    "HTTP_READ_TIMEOUT": 60.0,
    "HTTP_RETRIES": 3,
    "HTTP_BACKOFF_SECONDS": 1.0,
    "HTTP_BACKOFF_MAX_SECONDS": 30.0,
    "HTTP_MIN_INTERVAL_SECONDS": 0.11,
    # Rows per Data Fair page (the API caps `size` at 10,000).
    "ADEME_PAGE_SIZE": 10_000,
    # DPE pages as CSV (parsed several times faster) or JSON. CSV headers are
    # mapped to keys through the schema; pages fall back to JSON when they can't.
    "ADEME_PAGE_FORMAT": "csv",
    "ENEDIS_PAGE_SIZE": 10_000,
    # Département whose DPE and Enedis addresses are fetched.
    "REFRESH_DEPARTEMENT": "74",
    # A national communes table with fewer rows is refused (France has ~35,000).
    "COMMUNES_MIN_ROWS": 30_000,
    # A saved ADEME cursor older than this is discarded and the download restarts.
    "REFRESH_CURSOR_MAX_AGE_HOURS": 168,
    # Seconds between two cheap checks of the manifest for data refreshed elsewhere.
    "DATA_RELOAD_CHECK_SECONDS": 1.0,
    # With no usable model on the volume, train one in a background thread at
    # startup (ml.registry; `make run` sets it).
    "TRAIN_IF_MISSING": False,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Body limit of the API batch endpoints (1,000 rows do not fit in 64 KB).
    "API_BATCH_MAX_CONTENT_LENGTH": 1024 * 1024,
    # Per-IP sliding-window limits ("N/period"); off under TESTING unless
    # RATELIMIT_ENABLED is set (None: on outside tests).
    "RATELIMIT_API": "120/minute",
    "RATELIMIT_AJAX": "300/minute",
    "RATELIMIT_ENABLED": None,
    "JSON_SORT_KEYS": False,
}

#: Keys whose environment value is a boolean.
BOOL_KEYS = {"TRAIN_IF_MISSING"}


def from_environment(environ: os._Environ | dict | None = None) -> dict:
    """Return the configuration values found in the environment."""
    environ = os.environ if environ is None else environ
    values = {}
    for key in ENV_KEYS:
        if key in environ and environ[key] != "":
            value = environ[key]
            if key in BOOL_KEYS:
                value = value.strip().lower() in {"1", "true", "yes", "on"}
            values[key] = value
    return values
