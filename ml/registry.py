"""The model registry: save, verify and load model versions from the volume.

Each training writes `<volume>/models/<version>/` (one joblib Pipeline per model
and `metadata.json`), then points `<volume>/models/current.json` at it. A version
is loaded only when every artifact sits inside the models folder, its sha256
matches the metadata, and the recorded library versions are the running ones;
scikit-learn's `InconsistentVersionWarning` is raised as an error.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import logging
import os
import shutil
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import click
import joblib
from flask import Flask
from flask import current_app
from flask.cli import AppGroup
from sklearn.exceptions import InconsistentVersionWarning

from ml.predict import MODEL_NAMES
from ml.predict import Predictor
from ml.versions import library_versions
from webapp.store import atomic_write_bytes

logger = logging.getLogger(__name__)

MODELS_FOLDER = "models"
CURRENT = "current.json"
METADATA = "metadata.json"
LOCK = ".train.lock"
#: Model versions kept on the volume (the current one and its predecessor).
KEEP_VERSIONS = 2
#: Seconds between two checks of current.json for a version trained elsewhere.
CHECK_SECONDS = 2.0


#: Modules the pickles need. They are imported with this module (before gunicorn
#: forks and before request threads start) so that two threads never import them
#: at once: concurrent imports of scikit-learn's inter-dependent modules can fail.
PICKLE_MODULES = (
    "sklearn.calibration",
    "sklearn.compose",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.frozen",
    "sklearn.pipeline",
    "sklearn.preprocessing",
)
for _module in PICKLE_MODULES:
    importlib.import_module(_module)


class ModelError(Exception):
    """A model version that must not be loaded, with the reason."""


def models_dir(app: Flask) -> Path:
    """Return the models folder of an app's volume."""
    return Path(app.config["VOLUME_PATH"]) / MODELS_FOLDER


def sha256(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, payload: dict) -> None:
    data = json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(path, lambda handle: handle.write(data))


# --------------------------------------------------------------------------- saving


def save(models: dict[str, Any], metadata: dict, folder: Path) -> Path:
    """Write a model version into `folder` and make it the current one."""
    folder.mkdir(parents=True, exist_ok=True)
    version = metadata["model_version"]
    target = folder / version
    suffix = 1
    while target.exists():
        # Two trainings in the same second: keep both, distinctly named.
        suffix += 1
        target = folder / f"{version}-{suffix}"
    if suffix > 1:
        metadata["model_version"] = target.name
    staging = folder / f".staging-{target.name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()

    artifacts = {}
    for name in MODEL_NAMES:
        path = staging / f"{name}.joblib"
        joblib.dump(models[name], path)
        artifacts[name] = {
            "file": path.name,
            "sha256": sha256(path),
            "bytes": path.stat().st_size,
        }
    metadata["artifacts"] = artifacts
    _write_json(staging / METADATA, metadata)
    os.replace(staging, target)
    _write_json(folder / CURRENT, {"version": target.name})
    logger.info("models %s saved in %s", target.name, target)
    _prune(folder, keep=target.name)
    return target


def _prune(folder: Path, keep: str) -> None:
    """Remove old versions beyond KEEP_VERSIONS (never the current one)."""
    versions = sorted(
        (p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in versions[KEEP_VERSIONS:]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- loading


def _inside(folder: Path, path: Path) -> Path:
    """Return the resolved path, or raise when it leaves the models folder."""
    root = folder.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise ModelError(f"{path} is outside the models folder {root}")
    return resolved


def read_current(folder: Path) -> Path:
    """Return the folder of the current version, checked to be inside `folder`."""
    pointer = folder / CURRENT
    try:
        version = json.loads(pointer.read_text(encoding="utf-8"))["version"]
    except FileNotFoundError as exc:
        raise ModelError(f"no trained model in {folder}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"unreadable {pointer}: {exc}") from exc
    return _inside(folder, folder / str(version))


def check_versions(recorded: dict[str, str]) -> None:
    """Raise ModelError when the recorded library versions are not the running ones."""
    running = library_versions()
    different = {
        name: (recorded.get(name), version)
        for name, version in running.items()
        if recorded.get(name) != version
    }
    if different:
        detail = ", ".join(
            f"{name} trained with {old} but running {new}"
            for name, (old, new) in different.items()
        )
        raise ModelError(f"library versions differ: {detail}")


def load_version(folder: Path, version_dir: Path) -> Predictor:
    """Verify and load one model version; raise ModelError with the reason."""
    version_dir = _inside(folder, version_dir)
    try:
        metadata = json.loads((version_dir / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable metadata in {version_dir}: {exc}") from exc
    check_versions(metadata.get("library_versions", {}))

    models = {}
    artifacts = metadata.get("artifacts", {})
    for name in MODEL_NAMES:
        entry = artifacts.get(name)
        if not entry:
            raise ModelError(f"artifact {name} missing from the metadata")
        path = _inside(folder, version_dir / entry["file"])
        if not path.is_file():
            raise ModelError(f"artifact file {path} missing")
        if sha256(path) != entry.get("sha256"):
            raise ModelError(f"sha256 of {path.name} does not match the metadata")
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            try:
                models[name] = joblib.load(path)
            except InconsistentVersionWarning as exc:
                raise ModelError(f"{path.name}: {exc}") from exc
    return Predictor(models, metadata)


def load_current(folder: Path) -> Predictor:
    """Load the current version of a models folder (verified)."""
    return load_version(folder, read_current(folder))


# --------------------------------------------------------------------------- registry


class ModelRegistry:
    """The models of one app: the loaded predictor, its status and its card."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.predictor: Predictor | None = None
        self.status = "missing"
        self.problem: str | None = None
        self.training = False
        self._lock = threading.RLock()
        self._pointer_mtime: int | None = None
        self._last_check = 0.0

    def _stat_pointer(self) -> int | None:
        try:
            return (self.folder / CURRENT).stat().st_mtime_ns
        except OSError:
            return None

    def reload(self) -> Predictor | None:
        """Load the current version (or record why none can be used)."""
        with self._lock:
            # Remembered only once this version is settled (loaded or refused), so
            # an unexpected failure is retried at the next check.
            mtime = self._stat_pointer()
            try:
                self.predictor = load_current(self.folder)
            except ModelError as exc:
                self._pointer_mtime = mtime
                self.predictor = None
                self.problem = str(exc)
                self.status = "missing" if "no trained model" in str(exc) else "refused"
                log = logger.info if self.status == "missing" else logger.error
                log("models not loaded: %s", exc)
                return None
            self._pointer_mtime = mtime
            self.status = "ready"
            self.problem = None
            self.training = False
            logger.info(
                "models %s loaded from %s (fast path %s)",
                self.predictor.version,
                self.folder,
                "on" if self.predictor.fast else "off",
            )
            return self.predictor

    def check_for_update(self, min_interval: float = CHECK_SECONDS) -> None:
        """Reload when another process trained a new version; cheap otherwise."""
        now = time.monotonic()
        if now - self._last_check < min_interval:
            return
        self._last_check = now
        if self._stat_pointer() != self._pointer_mtime:
            try:
                self.reload()
            except Exception:
                # A request must not fail because a new version could not load.
                logger.exception("reloading the models failed; keeping the current")

    def versions(self) -> dict:
        """Return the status and versions for /api/v1/health."""
        if self.predictor is None:
            return {
                "status": "training" if self.training else self.status,
                "problem": self.problem,
            }
        metadata = self.predictor.metadata
        return {
            "status": "ready",
            "model_version": self.predictor.version,
            "created_at": metadata["created_at"],
            "library_versions": metadata["library_versions"],
            "training_data": {
                "origin": metadata["training_data"]["origin"],
                "sha256": metadata["training_data"]["sha256"],
                "rows": metadata["training_data"]["rows_used"],
            },
            "artifacts": {
                name: entry["sha256"][:12]
                for name, entry in metadata["artifacts"].items()
            },
        }

    def card(self) -> dict:
        """Return a summary of the current models for /api/v1/model (empty: none)."""
        if self.predictor is None:
            return {}
        metadata = self.predictor.metadata
        return {
            "status": "ready",
            "model_version": self.predictor.version,
            "created_at": metadata["created_at"],
            "training_data": {
                k: v
                for k, v in metadata["training_data"].items()
                if k not in {"path", "dropped"}
            },
            "features": {
                "categorical": metadata["features"]["categorical"],
                "numeric": list(metadata["features"]["numeric"]),
            },
            "passoire_threshold": metadata["passoire_threshold"],
            "interval_level": metadata["interval"]["level"],
            "metrics": metadata.get("metrics", {}),
            "prices": metadata.get("prices", {}),
            "notes": (
                "Étiquette prédite selon les règles en vigueur (facteur électricité "
                "1,9 depuis 2026, seuils des petites surfaces depuis juillet 2024) ; "
                "estimation à partir de caractéristiques connues du ménage, pas un "
                "DPE."
            ),
        }


def train_in_background(app: Flask, registry: ModelRegistry) -> threading.Thread | None:
    """Train once in a thread when no usable model exists (one process at a time)."""
    registry.folder.mkdir(parents=True, exist_ok=True)
    # The lock file stays open while the thread trains; the thread closes it.
    handle = open(registry.folder / LOCK, "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        logger.info("another process is training the models; waiting for it")
        registry.training = True
        return None

    def run():
        from ml.train import STARTUP_CONFIG
        from ml.train import train_from_app

        try:
            logger.info("no usable model (%s): training now", registry.problem)
            train_from_app(app, STARTUP_CONFIG)
        except Exception:
            logger.exception("training at startup failed")
        finally:
            registry.training = False
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
            registry.reload()

    thread = threading.Thread(target=run, name="ml-train", daemon=True)
    # Set before the start: gunicorn may fork workers from this state at once.
    registry.training = True
    thread.start()
    return thread


# --------------------------------------------------------------------------- app

ml_cli = AppGroup("ml", help="Train and inspect the prediction models.")


@ml_cli.command("train")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of metrics.json and model_card.md (default: ml/reports).",
)
@click.option("--no-report", is_flag=True, help="Do not write the report.")
@click.option("--fast", is_flag=True, help="Small quick run (tests, smoke checks).")
@click.option("--seed", type=int, default=0, show_default=True)
def train_command(report_dir: Path | None, no_report: bool, fast: bool, seed: int):
    """Train the models on the DPE data in service and save them on the volume."""
    from dataclasses import replace

    from ml.train import FAST_CONFIG
    from ml.train import REPORT_DIR
    from ml.train import TrainConfig
    from ml.train import train_from_app

    config = replace(FAST_CONFIG if fast else TrainConfig(), seed=seed)
    target = None if no_report else (report_dir or REPORT_DIR)
    result = train_from_app(current_app._get_current_object(), config, target)
    metrics = result.metadata["metrics"]
    click.echo(f"models {result.metadata['model_version']} saved")
    for name, value in metrics.items():
        click.echo(f"  {name}: {value}")
    if target is not None:
        click.echo(f"report written to {target}")


@ml_cli.command("status")
def status_command():
    """Show the loaded model version, or why none is loaded."""
    registry = current_app.extensions["models"]
    click.echo(json.dumps(registry.versions(), indent=2, ensure_ascii=False))


def init_app(app: Flask) -> ModelRegistry:
    """Load the models of the app's volume and register the `ml` commands."""
    registry = ModelRegistry(models_dir(app))
    registry.reload()
    app.extensions["models"] = registry
    app.cli.add_command(ml_cli)
    if registry.predictor is None and app.config.get("TRAIN_IF_MISSING"):
        train_in_background(app, registry)

    @app.before_request
    def _reload_models_if_retrained():
        registry.check_for_update()

    return registry
