"""Centralised logging: JSON lines to a rotating file per job, readable lines on a terminal.

    log = configure_logging("event_aggregation")          # once, at process start
    log = log.bind(query_id=q.id, batch_id=7)              # context bound once, not per call
    log.info("batch done", extra={"input_rows": 10})

Every record carries the bound context (job, run_id, and whatever was bound) as JSON fields.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import uuid
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter

CONSOLE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(job)s] %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
DEFAULT_LOG_DIR = Path(__file__).resolve().parent.parent / "logs"


class _UtcTime:
    """Record times as ISO 8601 in UTC with the zone ('2026-11-29T18:41:08.315Z'): the same on
    every host whatever its TZ, and parsed back with datetime.fromisoformat."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLines(_UtcTime, JsonFormatter):
    pass


class ConsoleLines(_UtcTime, logging.Formatter):
    pass


class ContextLogger(logging.LoggerAdapter):
    """A logger adapter whose context is bound once and merged into every record."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs

    def bind(self, **context: Any) -> ContextLogger:
        return ContextLogger(self.logger, {**(self.extra or {}), **context})


class _ContextDefaults(logging.Filter):
    """Give records logged outside a ContextLogger the fields the console format needs."""

    def __init__(self, context: Mapping[str, Any]):
        super().__init__()
        self.context = dict(context)

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.context.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def configure_logging(
    job: str,
    *,
    run_id: str | None = None,
    level: str | None = None,
    log_dir: Path | None = None,
    console: bool = True,
) -> ContextLogger:
    """Set up the root logger for one process (a job or the orchestrator) and return its logger.

    Level comes from `LOG_LEVEL` (default INFO); the file is `<log_dir>/<job>.log`, rotated at
    10 MB with 5 backups. On a TTY the console gets readable lines; otherwise JSON, so that a
    supervisor capturing stdout still gets machine-readable logs.
    """
    run_id = run_id or os.environ.get("RUN_ID") or uuid.uuid4().hex[:12]
    level = (level or os.environ.get("LOG_LEVEL", "INFO")).upper()
    log_dir = Path(log_dir or os.environ.get("LOG_DIR", DEFAULT_LOG_DIR))
    log_dir.mkdir(parents=True, exist_ok=True)

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    defaults = _ContextDefaults({"job": job, "run_id": run_id})

    file_handler = logging.handlers.RotatingFileHandler(
        log_dir / f"{job}.log", maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8"
    )
    file_handler.setFormatter(JsonLines(JSON_FIELDS, timestamp=False))
    file_handler.addFilter(defaults)
    root.addHandler(file_handler)

    if console:
        stream = logging.StreamHandler(sys.stderr)
        if sys.stderr.isatty():
            stream.setFormatter(ConsoleLines(CONSOLE_FORMAT))
        else:
            stream.setFormatter(JsonLines(JSON_FIELDS))
        stream.addFilter(defaults)
        root.addHandler(stream)

    # py4j chatters at INFO on every gateway call.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    return ContextLogger(logging.getLogger(job), {"job": job, "run_id": run_id})


def get_logger(name: str, **context: Any) -> ContextLogger:
    return ContextLogger(logging.getLogger(name), context)
