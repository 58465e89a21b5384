"""Logging set-up: one stdout handler on the root logger, added once."""

from __future__ import annotations

import logging
import sys

FORMAT = "[%(asctime)s] %(levelname)s %(name)s: %(message)s"


class _StdoutHandler(logging.StreamHandler):
    """The app's own stdout handler, recognisable so it is added only once."""

    def emit(self, record: logging.LogRecord) -> None:
        # Follow sys.stdout when it is replaced (test capture, reloaders).
        self.stream = sys.stdout
        super().emit(record)


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stdout in one format; other handlers are kept."""
    root = logging.getLogger()
    root.setLevel(str(level).upper())
    if any(isinstance(h, _StdoutHandler) for h in root.handlers):
        return

    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
