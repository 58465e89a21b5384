"""Logging set-up: one stdout handler, configured once per process."""

from __future__ import annotations

import logging.config

FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"

_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stdout in one format, once per process."""
    global _configured
    if _configured:
        return

    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"default": {"format": FORMAT}},
            "handlers": {
                "stdout": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "default",
                }
            },
            "root": {"level": level, "handlers": ["stdout"]},
            "loggers": {"werkzeug": {"level": "WARNING"}},
        }
    )
    _configured = True
