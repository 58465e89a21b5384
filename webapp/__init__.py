"""Atlas Énergie 74: home energy in Haute-Savoie, DPE labels and predictions."""

from __future__ import annotations

import logging
import os
import secrets
import time

from flask import Flask

__version__ = "0.1.0"

logger = logging.getLogger(__name__)


def create_app(test_config: dict | None = None) -> Flask:
    """Create the application: defaults, instance folder, then environment."""
    from webapp import config
    from webapp import security
    from webapp.logs import configure_logging

    started = time.perf_counter()
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(config.DEFAULTS)
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    app.config.from_prefixed_env()
    app.config.from_mapping(config.from_environment())
    if test_config is not None:
        # Tests describe their whole world; the shell's environment must not leak in.
        app.config.from_mapping(test_config)

    configure_logging(app.config["LOG_LEVEL"])
    security.check_production(app)
    _configure_secret_key(app)
    _configure_templates(app)
    _register_extensions(app)
    # Blueprints first: their modules register the aggregates the store computes.
    _register_blueprints(app)
    _load_data(app)
    from ml import registry as ml_registry

    ml_registry.init_app(app)

    logger.info(
        "Atlas Énergie 74 %s ready in %.2f s (volume %s)",
        __version__,
        time.perf_counter() - started,
        app.config["VOLUME_PATH"],
    )
    return app


def _configure_secret_key(app: Flask) -> None:
    if not app.config.get("SECRET_KEY"):
        # A per-process key keeps development working; sessions reset on restart.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        if not app.testing:
            logger.warning("SECRET_KEY is not set: using a generated development key")


def _configure_templates(app: Flask) -> None:
    import jinja2

    package_dir = os.path.dirname(__file__)
    app.jinja_loader = jinja2.FileSystemLoader(
        [
            os.path.join(package_dir, "templates"),
            os.path.join(package_dir, "partials"),
        ]
    )


def _register_extensions(app: Flask) -> None:
    from webapp import errors
    from webapp import formatting
    from webapp import security
    from webapp import web
    from webapp.extensions import htmx

    htmx.init_app(app)
    formatting.init_app(app)
    errors.init_app(app)
    web.init_app(app)
    security.init_app(app)


def _load_data(app: Flask) -> None:
    from webapp import refresh
    from webapp import store

    store.init_app(app)
    refresh.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from webapp.ajax import bp as ajax_bp
    from webapp.api import bp as api_bp
    from webapp.main import bp as main_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(ajax_bp)
    app.register_blueprint(api_bp)
