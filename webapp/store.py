"""The data store: reads, validates and atomically writes the three datasets.

The volume copy of a dataset wins over the initial copy shipped in
`webapp/datasets`; a volume file that cannot be loaded falls back to its backup,
then to the initial file, and every dropped row is counted by reason.
"""

from __future__ import annotations

import dataclasses
import fcntl
import gzip
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from webapp import csvio
from webapp import rules
from webapp import schema

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
INITIAL_DIR = PACKAGE_DIR / "datasets"
MANIFEST_NAME = "properties.json"
#: The lock a refresh holds while it writes (`webapp.refresh.RefreshLock`).
REFRESH_LOCK = Path("refresh") / "lock"
#: Seconds a worker waits to be replaced after asking for a graceful reload,
#: before it loads the new data itself (the master may not have reloaded).
RELOAD_FALLBACK_SECONDS = 120.0
#: Flags creating a reload claim file only if no worker created it first.
CLAIM_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY

#: Altitude bands of the statistics pages, in metres.
ALTITUDE_BANDS = (
    ("0-600", 0, 600),
    ("600-1200", 600, 1200),
    ("1200-1800", 1200, 1800),
    ("1800-2500", 1800, 2500),
)

#: Datasets whose shipped copy is synthetic demonstration data.
DEMO_DATASETS = ("dpe", "enedis")


class DatasetError(Exception):
    """A dataset file that cannot be loaded as a whole."""


@dataclass(frozen=True)
class DatasetSpec:
    """Where one dataset lives and how it is read."""

    name: str
    title: str
    initial: str | None
    volume: str


SPECS = {
    "communes": DatasetSpec(
        "communes", "Communes (data.gouv.fr)", "communes-74.csv", "communes.csv"
    ),
    "dpe": DatasetSpec("dpe", "DPE (ADEME)", "dpe-74.csv.gz", "dpe.csv"),
    "enedis": DatasetSpec(
        "enedis", "Consommation par adresse (Enedis)", "enedis-74.csv.gz", "enedis.csv"
    ),
    "enedis_communes": DatasetSpec(
        "enedis_communes",
        "Consommation par commune (Enedis)",
        None,
        "enedis_communes.csv",
    ),
}
LOAD_ORDER = ("communes", "dpe", "enedis", "enedis_communes")


# --------------------------------------------------------------------------- reading


def sniff_separator(path: Path) -> str:
    """Return ';' or ',' from the header line of a CSV file."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rt", encoding="utf-8-sig", errors="replace") as handle:
        header = handle.readline()
    return ";" if header.count(";") > header.count(",") else ","


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def read_raw(path: Path, string_columns: Callable[[str], bool]) -> pd.DataFrame:
    """Read a CSV (plain or gzip, ',' or ';') keeping code columns as text."""
    try:
        sep = sniff_separator(path)
        compression = "gzip" if _is_gzip(path) else None
        header = pd.read_csv(
            path, sep=sep, nrows=0, compression=compression, encoding="utf-8-sig"
        )
        dtypes = {c: "string" for c in header.columns if string_columns(str(c))}
        return pd.read_csv(
            path,
            sep=sep,
            compression=compression,
            encoding="utf-8-sig",
            dtype=dtypes,
            low_memory=False,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise DatasetError(
            f"unreadable file ({exc.__class__.__name__}: {exc})"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise DatasetError("empty file") from exc


def _require(frame: pd.DataFrame, required, name: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(f"{name}: required columns missing: {missing}")


def _conform(frame: pd.DataFrame, header, required, columns, name: str):
    """Rename to our keys, check the required ones, keep `columns` (absent: empty).

    No copy: with copy-on-write, the columns the normaliser sets never reach the
    caller's frame.
    """
    frame = schema.rename_columns(frame, header)
    _require(frame, required, name)
    return frame.reindex(columns=list(columns))


class Rejections(dict):
    """Counts of dropped rows by reason."""

    def drop(self, frame: pd.DataFrame, mask: pd.Series, reason: str) -> pd.DataFrame:
        """Drop the rows where `mask` is true and count them under `reason`."""
        count = int(mask.sum())
        if count:
            self[reason] = self.get(reason, 0) + count
            frame = frame[~mask.to_numpy()]
        return frame


def _is_dpe_code(name: str) -> bool:
    key = schema.dpe_header(name)
    return key in schema.DPE_STRING_COLUMNS or key in schema.CODE_WIDTHS


def normalise_dpe(
    frame: pd.DataFrame, today: datetime | None = None
) -> tuple[pd.DataFrame, Rejections]:
    """Map any DPE schema to the current one and drop the invalid rows."""
    rejections = Rejections()
    current_year = (today or datetime.now()).year

    frame = _conform(
        frame, schema.dpe_header, schema.DPE_REQUIRED, schema.DPE_COLUMNS, "DPE"
    )

    for column in schema.DPE_STRING_COLUMNS:
        frame[column] = schema.strip_text(frame[column])
    for column, width in schema.CODE_WIDTHS.items():
        if column in frame.columns:
            frame[column] = schema.clean_code(frame[column], width)
    for column in schema.DPE_NUMERIC_COLUMNS:
        frame[column] = schema.to_number(frame[column])
    for column in schema.DPE_DATE_COLUMNS:
        frame[column] = schema.parse_dates(frame[column])

    for column in ("etiquette_dpe", "etiquette_ges"):
        frame[column] = schema.map_distinct(frame[column], _upper_label)
    frame = rejections.drop(frame, frame["numero_dpe"].isna(), "missing numero_dpe")
    frame = rejections.drop(
        frame,
        ~frame["etiquette_dpe"].isin(rules.LABELS).fillna(False),
        "etiquette_dpe not in A-G",
    )
    frame["etiquette_ges"] = frame["etiquette_ges"].where(
        frame["etiquette_ges"].isin(rules.LABELS).fillna(False)
    )

    frame["date_etablissement_dpe"] = frame["date_etablissement_dpe"].fillna(
        frame["date_reception_dpe"]
    )
    frame = rejections.drop(
        frame, frame["date_etablissement_dpe"].isna(), "missing or invalid DPE date"
    )
    frame = _drop_out_of_range(
        frame,
        rejections,
        "surface_habitable_logement",
        5,
        1000,
        "surface outside 5-1000 m2",
    )
    frame = _drop_out_of_range(
        frame,
        rejections,
        "conso_5_usages_par_m2_ep",
        0,
        2000,
        "kWh/m2/an outside 0-2000",
    )
    frame = _drop_out_of_range(
        frame,
        rejections,
        "annee_construction",
        1600,
        current_year,
        f"annee_construction outside 1600-{current_year}",
    )

    frame = _deduplicate_dpe(frame, rejections)
    frame["source"] = _dpe_source(frame)
    # A handful of distinct spellings: normalise each once, not once per row.
    altitudes = frame["classe_altitude"]
    spellings = {v: _classe_altitude_or_none(v) for v in altitudes.dropna().unique()}
    frame["classe_altitude"] = altitudes.map(spellings)
    departement = frame["code_departement_ban"]
    missing = departement.isna()
    if missing.any():
        from_insee = frame.loc[missing, "code_insee_ban"].str.slice(0, 2)
        frame["code_departement_ban"] = departement.fillna(from_insee)
    return frame.reset_index(drop=True), rejections


def _upper_label(values: pd.Series) -> pd.Series:
    return values.astype("string").str.upper().str.strip()


def _classe_altitude_or_none(value: str) -> str | None:
    try:
        return rules.normalise_classe_altitude(value)
    except ValueError:
        return None


def _drop_out_of_range(frame, rejections, column, low, high, reason):
    values = frame[column]
    bad = values.notna() & ((values < low) | (values > high))
    return rejections.drop(frame, bad, reason)


def _deduplicate_dpe(frame: pd.DataFrame, rejections: Rejections) -> pd.DataFrame:
    """Keep the latest version of each DPE and drop the DPE that were replaced."""
    order = frame["date_derniere_modification_dpe"].fillna(
        frame["date_etablissement_dpe"]
    )
    frame = frame.assign(_order=order).sort_values("_order", kind="stable")
    frame = rejections.drop(
        frame,
        frame.duplicated("numero_dpe", keep="last"),
        "duplicate numero_dpe",
    )
    replaced = set(frame["numero_dpe_remplace"].dropna()) - {""}
    frame = rejections.drop(
        frame,
        frame["numero_dpe"].isin(replaced),
        "replaced by a newer DPE",
    )
    return frame.drop(columns="_order")


def _dpe_source(frame: pd.DataFrame) -> pd.Series:
    source = schema.map_distinct(frame["source"], lambda v: v.astype("string"))
    missing = source.isna()
    if missing.any():
        letter = frame.loc[missing, "numero_dpe"].str.slice(4, 5).str.upper()
        guessed = letter.map({"E": "existant", "N": "neuf"}).astype("string")
        source = source.fillna(guessed).fillna("existant")
    return source


def normalise_enedis(
    frame: pd.DataFrame, today: datetime | None = None
) -> tuple[pd.DataFrame, Rejections]:
    """Map any Enedis per-address schema to the legacy keys and drop bad rows."""
    rejections = Rejections()
    current_year = (today or datetime.now()).year

    frame = _conform(
        frame,
        schema.enedis_header,
        schema.ENEDIS_REQUIRED,
        schema.ENEDIS_COLUMNS,
        "Enedis",
    )

    frame["annee"] = schema.year_from(frame["annee"])
    for column in ("code_commune", "code_departement", "code_region", "code_iris"):
        frame[column] = schema.clean_code(frame[column], schema.CODE_WIDTHS[column])
    for column in ("code_epci", "numero_de_voie", "tri_des_adresses"):
        frame[column] = schema.clean_code(frame[column], None)
    for column in schema.ENEDIS_NUMERIC_COLUMNS:
        frame[column] = schema.to_number(frame[column])

    frame = rejections.drop(
        frame,
        frame["annee"].isna()
        | (frame["annee"] < 2000)
        | (frame["annee"] > current_year),
        f"annee outside 2000-{current_year}",
    )
    frame = rejections.drop(frame, frame["code_commune"].isna(), "missing code_commune")
    frame = rejections.drop(
        frame,
        ~(frame["nombre_de_logements"] >= 1).fillna(False),
        "invalid nombre_de_logements",
    )
    frame = rejections.drop(
        frame,
        ~(frame["consommation_annuelle_totale_de_l_adresse_mwh"] >= 0).fillna(False),
        "invalid consumption",
    )

    per_site = "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"
    frame[per_site] = frame[per_site].fillna(
        frame["consommation_annuelle_totale_de_l_adresse_mwh"]
        / frame["nombre_de_logements"]
    )
    frame["code_departement"] = frame["code_departement"].fillna(
        frame["code_commune"].str.slice(0, 2)
    )
    frame["annee"] = frame["annee"].astype("int64")
    return frame.reset_index(drop=True), rejections


def normalise_enedis_communes(
    frame: pd.DataFrame, today: datetime | None = None
) -> tuple[pd.DataFrame, Rejections]:
    """Validate the per-commune, per-year Enedis aggregates."""
    rejections = Rejections()

    frame = schema.rename_columns(frame, schema.enedis_header)
    frame = frame.rename(
        columns={"consommation_annuelle_totale_de_l_adresse_mwh": "conso_total_mwh"}
    )
    _require(frame, schema.ENEDIS_COMMUNES_COLUMNS, "Enedis communes")
    frame = frame[list(schema.ENEDIS_COMMUNES_COLUMNS)].copy()

    frame["annee"] = schema.year_from(frame["annee"])
    frame["code_commune"] = schema.clean_code(frame["code_commune"], 5)
    frame["nombre_de_logements"] = schema.to_number(frame["nombre_de_logements"])
    frame["conso_total_mwh"] = schema.to_number(frame["conso_total_mwh"])
    frame = rejections.drop(
        frame,
        frame["annee"].isna() | frame["code_commune"].isna(),
        "missing annee or code_commune",
    )
    frame = rejections.drop(
        frame,
        ~(frame["nombre_de_logements"] >= 1).fillna(False)
        | ~(frame["conso_total_mwh"] >= 0).fillna(False),
        "invalid values",
    )
    frame["annee"] = frame["annee"].astype("int64")
    return frame.reset_index(drop=True), rejections


def normalise_communes(
    frame: pd.DataFrame, today: datetime | None = None
) -> tuple[pd.DataFrame, Rejections]:
    """Validate the data.gouv communes table (any edition, index column or not)."""
    rejections = Rejections()

    frame = schema.rename_columns(frame, lambda name: name.replace("\ufeff", ""))
    frame = frame.loc[:, ~frame.columns.str.fullmatch(r".*\.\d+")]
    _require(frame, schema.COMMUNES_REQUIRED, "communes")
    frame = frame.copy()

    for column in schema.COMMUNES_CODE_COLUMNS:
        if column in frame.columns:
            frame[column] = schema.clean_code(
                frame[column], schema.CODE_WIDTHS.get(column)
            )
    for column in schema.COMMUNES_NUMERIC_COLUMNS:
        if column in frame.columns:
            frame[column] = schema.to_number(frame[column])
    for column in schema.COMMUNES_ALTITUDE_COLUMNS:
        if column in frame.columns:
            # 0.0 marks a missing altitude in this table.
            frame[column] = frame[column].mask(frame[column] == 0)
    if "dep_code" not in frame.columns:
        # Overseas départements have three-digit codes (971…976).
        overseas = frame["code_insee"].str.startswith("97").fillna(False)
        frame["dep_code"] = (
            frame["code_insee"]
            .str.slice(0, 2)
            .mask(overseas, frame["code_insee"].str.slice(0, 3))
        )

    frame = rejections.drop(frame, frame["code_insee"].isna(), "missing code_insee")
    frame = rejections.drop(
        frame, frame.duplicated("code_insee"), "duplicate code_insee"
    )
    return frame.reset_index(drop=True), rejections


NORMALISERS = {
    "communes": (
        normalise_communes,
        lambda name: name.strip() in schema.COMMUNES_CODE_COLUMNS,
    ),
    "dpe": (normalise_dpe, _is_dpe_code),
    "enedis": (
        normalise_enedis,
        lambda name: (
            schema.enedis_header(name) in schema.CODE_WIDTHS
            or schema.enedis_header(name) in ("code_epci", "numero_de_voie")
        ),
    ),
    "enedis_communes": (
        normalise_enedis_communes,
        lambda name: schema.enedis_header(name) == "code_commune",
    ),
}

_PARSE_CACHE: dict[tuple, tuple[pd.DataFrame, Rejections]] = {}
_PARSE_CACHE_LOCK = threading.Lock()


def read_dataset(name: str, path: Path) -> tuple[pd.DataFrame, Rejections]:
    """Read, normalise and validate one dataset file (cached per file version)."""
    stat = path.stat()
    key = (name, str(path), stat.st_mtime_ns, stat.st_size)
    with _PARSE_CACHE_LOCK:
        if key in _PARSE_CACHE:
            return _PARSE_CACHE[key]

    normaliser, is_text = NORMALISERS[name]
    raw = read_raw(path, is_text)
    frame, rejections = normaliser(raw)
    with _PARSE_CACHE_LOCK:
        # Keep only the latest version of each file.
        for old in [k for k in _PARSE_CACHE if k[:2] == key[:2]]:
            del _PARSE_CACHE[old]
        _PARSE_CACHE[key] = (frame, rejections)
    return frame, rejections


# --------------------------------------------------------------------------- derived


def altitude_band(altitude: pd.Series) -> pd.Series:
    """Return the altitude band label ('0-600', ...) of each altitude in metres."""
    edges = [low for _, low, _ in ALTITUDE_BANDS] + [ALTITUDE_BANDS[-1][2]]
    labels = [label for label, _, _ in ALTITUDE_BANDS]
    clipped = altitude.clip(upper=edges[-1] - 1e-6)
    return pd.cut(clipped, bins=edges, labels=labels, right=False)


def enrich_dpe(dpe: pd.DataFrame, communes: pd.DataFrame) -> pd.DataFrame:
    """Add coordinates, commune altitude, density and altitude band to the DPE."""
    frame = dpe.copy()

    point = frame["_geopoint"].str.split(",", n=1, expand=True)
    if point.shape[1] == 2:
        frame["latitude"] = pd.to_numeric(point[0], errors="coerce")
        frame["longitude"] = pd.to_numeric(point[1], errors="coerce")
    else:
        frame["latitude"] = np.nan
        frame["longitude"] = np.nan

    lookup = communes.set_index("code_insee")
    codes = frame["code_insee_ban"]
    altitude = lookup["altitude_moyenne"] if "altitude_moyenne" in lookup else None
    if altitude is not None:
        fallback = (lookup["altitude_minimale"] + lookup["altitude_maximale"]) / 2
        altitude = altitude.fillna(fallback)
        frame["altitude"] = codes.map(altitude).astype("float64")
    else:
        frame["altitude"] = np.nan
    frame["densite"] = codes.map(lookup.get("densite")).astype("float64")
    frame["latitude"] = frame["latitude"].fillna(
        codes.map(lookup["latitude_centre"]).astype("float64")
    )
    frame["longitude"] = frame["longitude"].fillna(
        codes.map(lookup["longitude_centre"]).astype("float64")
    )
    frame["tranche_altitude"] = altitude_band(frame["altitude"])

    for column in schema.DPE_CATEGORY_COLUMNS:
        frame[column] = frame[column].astype("category")
    frame["etiquette_dpe"] = frame["etiquette_dpe"].cat.set_categories(rules.LABELS)
    frame["etiquette_ges"] = frame["etiquette_ges"].cat.set_categories(rules.LABELS)
    return frame


def enedis_by_commune(enedis: pd.DataFrame) -> pd.DataFrame:
    """Sum the Enedis addresses per commune and year."""
    grouped = enedis.groupby(["code_commune", "annee"], observed=True, as_index=False)
    return grouped.agg(
        nombre_de_logements=("nombre_de_logements", "sum"),
        conso_total_mwh=("consommation_annuelle_totale_de_l_adresse_mwh", "sum"),
    )


# --------------------------------------------------------------------------- store

#: Aggregates computed once per load, by name: function(snapshot) -> value.
AGGREGATES: dict[str, Callable[[Snapshot], Any]] = {}


def aggregate(name: str):
    """Register a function computed once per data load (for the pages)."""

    def register(function):
        AGGREGATES[name] = function
        return function

    return register


@dataclass
class Snapshot:
    """One consistent version of every dataset and of its aggregates."""

    communes: pd.DataFrame
    dpe: pd.DataFrame
    enedis: pd.DataFrame
    enedis_communes: pd.DataFrame
    sources: dict[str, dict]
    rejections: dict[str, dict[str, int]]
    stamp: str | None
    aggregates: dict[str, Any] = field(default_factory=dict)

    @property
    def communes_74(self) -> pd.DataFrame:
        """The communes of Haute-Savoie."""
        return self.communes[self.communes["dep_code"] == "74"]


def resolve_volume(mount_path: str | os.PathLike) -> Path:
    """Return a writable volume folder, falling back to ./volume with a warning."""
    wanted = Path(mount_path)
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=wanted, prefix=".write-test-"):
            pass
        return wanted
    except OSError as exc:
        fallback = PROJECT_DIR / "volume"
        fallback.mkdir(parents=True, exist_ok=True)
        logger.warning(
            "MOUNT_PATH %s is not writable (%s); using %s instead",
            wanted,
            exc.strerror or exc,
            fallback,
        )
        return fallback


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def now_iso() -> str:
    """Return the current UTC time in ISO 8601."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def atomic_write_bytes(path: Path, writer: Callable[[Any], None]) -> None:
    """Write a file through `writer(handle)` atomically (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def atomic_copy(source: Path, target: Path) -> None:
    """Copy a file atomically (the target is either old or complete)."""

    def writer(handle):
        with open(source, "rb") as original:
            shutil.copyfileobj(original, handle)

    atomic_write_bytes(target, writer)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _HashingWriter:
    """A binary handle that hashes what it writes (saves reading the file back)."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def write_frame_csv(path: Path, frame: pd.DataFrame) -> str:
    """Write a DataFrame as CSV atomically (gzip when the name ends in .gz).

    Returns the sha256 of the file written.
    """
    digests = []

    def writer(handle):
        hashing = _HashingWriter(handle)
        if path.name.endswith(".gz"):
            with gzip.GzipFile(fileobj=hashing, mode="wb", mtime=0) as zipped:
                csvio.write_csv(frame, zipped)
        else:
            csvio.write_csv(frame, hashing)
        digests.append(hashing.digest.hexdigest())

    atomic_write_bytes(path, writer)
    return digests[-1]


class DataStore:
    """Owns the datasets of one process: load, validate, write, reload."""

    def __init__(self, volume: Path, initial_dir: Path | None = None):
        self.volume = Path(volume)
        self.initial_dir = Path(initial_dir or INITIAL_DIR)
        self.data_dir = self.volume / "data"
        self.backup_dir = self.data_dir / "backup"
        self.quarantine_dir = self.data_dir / "quarantine"
        self.manifest_path = self.volume / MANIFEST_NAME
        self._snapshot: Snapshot | None = None
        self._lock = threading.RLock()
        self._manifest_mtime: int | None = None
        self._last_check = 0.0
        #: Under gunicorn, asks the master for a graceful reload of the workers
        #: (`MasterReload`); None: this process reloads the data itself.
        self.reload_requester: Callable[[str], bool] | None = None
        self._requested: tuple[str, float] | None = None

    # ---------------------------------------------------------------- access

    @property
    def snapshot(self) -> Snapshot:
        """The data in service (loaded on first use)."""
        if self._snapshot is None:
            self.load()
        return self._snapshot

    def __getattr__(self, name: str):
        # Datasets and aggregates read through the current snapshot.
        if name in {"communes", "dpe", "enedis", "enedis_communes", "communes_74"}:
            return getattr(self.snapshot, name)
        raise AttributeError(name)

    @property
    def is_loaded(self) -> bool:
        """True once a snapshot is in service."""
        return self._snapshot is not None

    @property
    def aggregates(self) -> dict[str, Any]:
        """Values computed once per load for the pages."""
        return self.snapshot.aggregates

    @property
    def sources(self) -> dict[str, dict]:
        """Per dataset: origin, rows, updated_at, sha256, path, where it came from."""
        return self.snapshot.sources

    @property
    def rejections(self) -> dict[str, dict[str, int]]:
        """Per dataset, the rows dropped at load by reason."""
        return self.snapshot.rejections

    @property
    def is_demo(self) -> bool:
        """True while any DPE or Enedis dataset in service is synthetic."""
        return any(self.sources[n]["origin"] == "demo" for n in DEMO_DATASETS)

    @property
    def last_update(self) -> str | None:
        """The most recent `updated_at` of the datasets in service."""
        dates = [s["updated_at"] for s in self.sources.values() if s.get("updated_at")]
        return max(dates) if dates else None

    # ---------------------------------------------------------------- manifest

    def read_manifest(self) -> dict:
        """Return the volume manifest, or an empty one when absent or unreadable."""
        try:
            with open(self.manifest_path, encoding="utf-8") as handle:
                manifest = json.load(handle)
        except FileNotFoundError:
            return {"datasets": {}}
        except (OSError, ValueError) as exc:
            logger.warning("manifest %s unreadable (%s)", self.manifest_path, exc)
            return {"datasets": {}}
        if not isinstance(manifest, dict):
            return {"datasets": {}}
        manifest.setdefault("datasets", {})
        return manifest

    def write_manifest(self, manifest: dict) -> None:
        """Write the manifest atomically with a new version stamp."""
        manifest["stamp"] = uuid.uuid4().hex
        payload = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.manifest_path, lambda handle: handle.write(payload))

    def update_manifest(self, change: Callable[[dict], None]) -> dict:
        """Apply `change` to the manifest under the store lock and write it."""
        with self._lock:
            manifest = self.read_manifest()
            change(manifest)
            self.write_manifest(manifest)
            return manifest

    # ---------------------------------------------------------------- loading

    def load(self) -> Snapshot:
        """Load every dataset (volume, then backup, then initial copy)."""
        with self._lock:
            started = time.perf_counter()
            # Stat before reading: a manifest replaced in between is seen next time.
            self._manifest_mtime = self._stat_manifest()
            manifest = self.read_manifest()
            frames: dict[str, pd.DataFrame] = {}
            sources: dict[str, dict] = {}
            rejections: dict[str, dict[str, int]] = {}

            for name in LOAD_ORDER:
                loaded = self._load_one(name, manifest.get("datasets", {}).get(name))
                if loaded is None:
                    continue
                frames[name], sources[name], rejections[name] = loaded

            if "enedis_communes" not in frames:
                frames["enedis_communes"] = enedis_by_commune(frames["enedis"])
                sources["enedis_communes"] = {
                    **sources["enedis"],
                    "name": "enedis_communes",
                    "title": SPECS["enedis_communes"].title,
                    "rows": len(frames["enedis_communes"]),
                    "derived_from": "enedis",
                }
                rejections["enedis_communes"] = {}
            key = _snapshot_key(sources, manifest.get("stamp"))
            cached = _SNAPSHOT_CACHE.get(key)
            if cached is not None:
                # Same files, same aggregates: share the frames (read-only by
                # convention) instead of recomputing them, e.g. for many test apps.
                snapshot = dataclasses.replace(
                    cached, sources=sources, rejections=rejections
                )
            else:
                frames["dpe"] = enrich_dpe(frames["dpe"], frames["communes"])
                snapshot = Snapshot(
                    communes=frames["communes"],
                    dpe=frames["dpe"],
                    enedis=frames["enedis"],
                    enedis_communes=frames["enedis_communes"],
                    sources=sources,
                    rejections=rejections,
                    stamp=manifest.get("stamp"),
                )
                self._compute_aggregates(snapshot)
                _remember_snapshot(key, snapshot)
            self._snapshot = snapshot
            logger.info(
                "data loaded in %.2f s: %s",
                time.perf_counter() - started,
                ", ".join(
                    f"{n}={s['rows']} rows ({s['origin']}, {s['loaded_from']})"
                    for n, s in sources.items()
                ),
            )
            return snapshot

    def _load_one(self, name: str, entry: dict | None):
        spec = SPECS[name]
        candidates = []
        volume_file = self.data_dir / spec.volume
        backup_file = self.backup_dir / spec.volume
        if volume_file.exists():
            candidates.append(("volume", volume_file))
        if backup_file.exists():
            candidates.append(("backup", backup_file))
        if spec.initial:
            candidates.append(("initial", self.initial_dir / spec.initial))

        failures = []
        for where, path in candidates:
            try:
                frame, rejected = read_dataset(name, path)
            except (DatasetError, OSError) as exc:
                logger.error("%s: %s not loaded: %s", name, path, exc)
                failures.append((where, path))
                continue

            for reason, count in rejected.items():
                logger.warning("%s: %d rows dropped: %s", name, count, reason)
            if failures and failures[0][0] == "volume" and where == "backup":
                self._restore_backup(failures[0][1], path)
            source = self._describe(name, path, where, frame, entry)
            return frame, source, dict(rejected)

        if name == "enedis_communes":
            return None
        raise DatasetError(f"{name}: no loadable file among {candidates}")

    def _restore_backup(self, corrupt: Path, backup: Path) -> None:
        """Move a corrupt volume file aside and put its backup back in service."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = self.quarantine_dir / f"{corrupt.name}.{stamp}"
        try:
            os.replace(corrupt, target)
            atomic_copy(backup, corrupt)
            logger.warning(
                "%s was corrupt: moved to %s, previous version restored from %s",
                corrupt.name,
                target,
                backup,
            )
        except OSError as exc:
            logger.error("could not restore %s from backup: %s", corrupt, exc)

    def _describe(self, name, path, where, frame, entry) -> dict:
        sha = file_sha256(path)
        if where == "initial":
            origin = "demo" if name in DEMO_DATASETS else "reference"
            initial = _initial_manifest(self.initial_dir).get(name, {})
            updated_at = initial.get("updated_at")
        elif entry and entry.get("sha256") == sha:
            origin = entry.get("origin", "api")
            updated_at = entry.get("updated_at")
        else:
            # A volume file the manifest does not describe (e.g. restored backup).
            origin = (entry or {}).get("origin", "api")
            updated_at = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
        return {
            "name": name,
            "title": SPECS[name].title,
            "origin": origin,
            "rows": int(len(frame)),
            "updated_at": updated_at,
            "sha256": sha,
            "schema_version": schema.SCHEMA_VERSION,
            "path": str(path),
            "loaded_from": where,
        }

    def _compute_aggregates(self, snapshot: Snapshot) -> None:
        for name, function in AGGREGATES.items():
            started = time.perf_counter()
            try:
                snapshot.aggregates[name] = function(snapshot)
            except Exception:
                logger.exception(
                    "aggregate %s failed; the pages using it degrade", name
                )
                continue
            elapsed = time.perf_counter() - started
            if elapsed > 0.5:
                logger.info("aggregate %s computed in %.2f s", name, elapsed)

    # ---------------------------------------------------------------- reload

    def _stat_manifest(self) -> int | None:
        try:
            return self.manifest_path.stat().st_mtime_ns
        except OSError:
            return None

    def check_for_update(
        self, min_interval: float = 1.0, wait_for_refresh: bool = True
    ) -> bool:
        """Reload when another process changed the manifest; cheap when not.

        While a refresh runs (its lock is held) the reload waits for its end:
        the sources are written one after the other, and reloading after each
        would cost as many loads. Under gunicorn (`reload_requester` set) the
        master is asked to reload once and fork new workers that share the new
        data; this worker serves the current data until it is replaced.
        """
        now = time.monotonic()
        if now - self._last_check < min_interval:
            return False
        self._last_check = now

        mtime = self._stat_manifest()
        if mtime == self._manifest_mtime and self._requested is None:
            return False
        stamp = self.read_manifest().get("stamp")
        if self._snapshot is not None and stamp == self._snapshot.stamp:
            self._manifest_mtime = mtime
            self._requested = None
            return False
        if wait_for_refresh and lock_is_held(self.volume / REFRESH_LOCK):
            return False
        if self._reload_elsewhere(stamp, now):
            self._manifest_mtime = mtime
            return False

        logger.info("data changed on the volume (stamp %s): reloading", stamp)
        self.load()
        return True

    def _reload_elsewhere(self, stamp: str | None, now: float) -> bool:
        """True while a graceful reload by the gunicorn master is awaited."""
        if self.reload_requester is None or stamp is None:
            return False
        if self._requested is None or self._requested[0] != stamp:
            if not self.reload_requester(stamp):
                return False
            self._requested = (stamp, now)
            return True
        if now - self._requested[1] < RELOAD_FALLBACK_SECONDS:
            return True
        logger.warning(
            "no new worker took over %.0f s after the reload request: reloading here",
            now - self._requested[1],
        )
        self._requested = None
        return False

    def is_current(self) -> bool:
        """True when this process serves the data the manifest names."""
        if self._snapshot is None:
            return False
        return self._snapshot.stamp == self.read_manifest().get("stamp")

    def refreshed(self) -> None:
        """Serve the data a refresh of this process has just written."""
        if self.reload_requester is None:
            self.load()

    def reload(self) -> Snapshot:
        """Reload every dataset now."""
        return self.load()

    # ---------------------------------------------------------------- writing

    def write_dataset(
        self,
        name: str,
        frame: pd.DataFrame,
        origin: str = "api",
        extra: dict | None = None,
        reload: bool = True,
    ) -> dict:
        """Replace one dataset on the volume atomically, keeping a backup."""
        spec = SPECS[name]
        target = self.data_dir / spec.volume

        with self._lock:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if target.exists():
                self.backup_dir.mkdir(parents=True, exist_ok=True)
                backup = self.backup_dir / spec.volume
                atomic_copy(target, backup)
            digest = write_frame_csv(target, frame)
            entry = {
                "updated_at": now_iso(),
                "origin": origin,
                "rows": int(len(frame)),
                "sha256": digest,
                "schema_version": schema.SCHEMA_VERSION,
                **(extra or {}),
            }
            self.update_manifest(
                lambda manifest: manifest["datasets"].__setitem__(name, entry)
            )
            logger.info(
                "%s written to %s: %d rows (%s)", name, target, len(frame), origin
            )
            if reload:
                self.load()
            return entry

    def cleanup_temporary_files(self) -> int:
        """Remove temporary files left by a process killed during a write."""
        removed = 0
        for folder in (self.volume, self.data_dir, self.backup_dir):
            if not folder.is_dir():
                continue
            for path in folder.glob(".*.tmp-*"):
                try:
                    path.unlink()
                    removed += 1
                except OSError:
                    pass
        if removed:
            logger.info(
                "removed %d temporary files left by an interrupted write", removed
            )
        return removed


#: Recently built snapshots by the identity of their files (newest last). One is
#: enough in service (an old snapshot is freed after a refresh); tests keep more.
_SNAPSHOT_CACHE: dict[tuple, Snapshot] = {}
_SNAPSHOT_CACHE_SIZE = 1


def lock_is_held(path: Path) -> bool:
    """True while some open file holds an exclusive flock on `path`."""
    try:
        handle = open(path)
    except OSError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


class MasterReload:
    """Asks the gunicorn master for a graceful reload (SIGHUP), once per stamp.

    Every worker notices a new manifest stamp; the first one to create the claim
    file of that stamp sends the signal, the others just wait to be replaced.
    The master claims the stamp it loads itself, so that the old workers still
    serving do not ask again.
    """

    def __init__(self, master_pid: int, volume: Path):
        self.master_pid = master_pid
        self.folder = Path(volume) / "refresh"
        self.prefix = f"reload-{socket.gethostname()}-{master_pid}-"

    def claim(self, stamp: str) -> bool:
        """Create the claim file of `stamp`; False when it already existed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(self.folder / f"{self.prefix}{stamp}", CLAIM_FLAGS))
        except FileExistsError:
            return False
        for old in self.folder.glob(f"{self.prefix}*"):
            if not old.name.endswith(stamp):
                old.unlink(missing_ok=True)
        return True

    def __call__(self, stamp: str) -> bool:
        """Make sure the master reloads for `stamp`; False if it cannot be asked."""
        if os.getppid() != self.master_pid:
            return False
        try:
            if not self.claim(stamp):
                return True
            os.kill(self.master_pid, signal.SIGHUP)
        except OSError as exc:
            logger.warning("cannot ask the gunicorn master to reload: %s", exc)
            return False
        logger.info(
            "data changed on the volume (stamp %s): asked the gunicorn master "
            "(pid %d) for new workers",
            stamp,
            self.master_pid,
        )
        return True


def _snapshot_key(sources: dict[str, dict], stamp: str | None) -> tuple:
    files = tuple(
        (name, source["path"], source["sha256"]) for name, source in sources.items()
    )
    return files, stamp, tuple(AGGREGATES)


def _remember_snapshot(key: tuple, snapshot: Snapshot) -> None:
    with _PARSE_CACHE_LOCK:
        _SNAPSHOT_CACHE[key] = snapshot
        while len(_SNAPSHOT_CACHE) > _SNAPSHOT_CACHE_SIZE:
            del _SNAPSHOT_CACHE[next(iter(_SNAPSHOT_CACHE))]


def _initial_manifest(folder: Path) -> dict:
    """Dates and origins of the datasets shipped in webapp/datasets."""
    path = folder / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("datasets", {})
    except (OSError, ValueError):
        return {}


# --------------------------------------------------------------------------- app


def init_app(app) -> DataStore:
    """Create the store of this app, load the data and watch for refreshes."""
    volume = resolve_volume(app.config["MOUNT_PATH"])
    app.config["VOLUME_PATH"] = str(volume)
    store = DataStore(volume, app.config.get("INITIAL_DATA_PATH"))
    store.cleanup_temporary_files()
    store.load()
    app.extensions["store"] = store

    interval = float(app.config.get("DATA_RELOAD_CHECK_SECONDS", 1.0))

    @app.before_request
    def _reload_if_refreshed():
        store.check_for_update(interval)

    @app.context_processor
    def _store_context():
        return {
            "data_is_demo": store.is_demo,
            "data_last_update": store.last_update,
        }

    return store


def get_store() -> DataStore:
    """Return the store of the current app."""
    from flask import current_app

    return current_app.extensions["store"]
