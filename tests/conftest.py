"""Fixtures around the application factory, with a temporary volume."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp import create_app

PROJECT_DIR = Path(__file__).resolve().parent.parent
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
