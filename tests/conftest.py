"""Fixtures around the application factory, with a temporary volume."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp import create_app
from webapp import store as store_module

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Many test apps share the demo data; keep a few snapshots so tests that write
# their own data do not force the demo aggregates to be computed again.
store_module._SNAPSHOT_CACHE_SIZE = 4
SHARED_RAW = PROJECT_DIR.parent / "shared" / "datasets" / "raw"


def make_app(volume: Path, **config):
    """Create an app for tests on a temporary volume."""
    settings = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "MOUNT_PATH": str(volume),
        "TRAIN_IF_MISSING": False,
    }
    settings.update(config)
    return create_app(settings)


@pytest.fixture
def volume(tmp_path) -> Path:
    """An empty volume folder."""
    path = tmp_path / "volume"
    path.mkdir()
    return path


@pytest.fixture
def app(volume):
    """An app on the initial datasets and an empty temporary volume."""
    return make_app(volume)


@pytest.fixture
def client(app):
    """A test client of `app`."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner of `app`."""
    return app.test_cli_runner()


@pytest.fixture
def htmx_headers() -> dict:
    """Headers of a request sent by htmx."""
    return {"HX-Request": "true"}


@pytest.fixture(scope="session")
def shared_raw() -> Path:
    """The folder of real-data samples, or a skip when ../shared is absent."""
    if not SHARED_RAW.is_dir():
        pytest.skip(f"real-data samples not found at {SHARED_RAW} (../shared absent)")
    return SHARED_RAW


@pytest.fixture(scope="session")
def ml_training(tmp_path_factory):
    """Small models trained once per session on the demo data, saved in a folder.

    Returns the `ml.train.TrainResult` with an extra `folder` attribute (the
    models folder holding `current.json` and the version).
    """
    from ml.registry import save
    from ml.train import FAST_CONFIG
    from ml.train import train

    volume = tmp_path_factory.mktemp("ml-volume")
    app = make_app(volume)
    store = app.extensions["store"]
    result = train(store.dpe, store.communes, dict(store.sources["dpe"]), FAST_CONFIG)
    result.folder = save(result.models, result.metadata, volume / "models").parent
    return result


@pytest.fixture
def models_app(volume, ml_training):
    """An app whose volume `models/` holds a copy of the session's small models."""
    import shutil

    shutil.copytree(ml_training.folder, volume / "models")
    return make_app(volume)


@pytest.fixture
def models_client(models_app):
    """A test client of `models_app`."""
    return models_app.test_client()
