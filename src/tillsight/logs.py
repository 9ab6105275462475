"""Logging, set up once: readable on a terminal, one JSON object a line otherwise.

Events are constant snake_case names with fields (``event_ingested``,
``request_handled``); the request id is bound in a context variable so every
line of a request carries it. Nothing here logs bodies or personal data: the
callers pass ids and counts only.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

_configured = False


def configure_logging(*, json_output: bool | None = None, level: str = "INFO") -> None:
    """Configure structlog and the standard library's root logger (once)."""
    global _configured
    if _configured:
        return
    _configured = True
    if json_output is None:
        json_output = not sys.stderr.isatty()

    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer()
    )
    extra = [structlog.processors.format_exc_info] if json_output else []
    # Our own events skip the standard library (a record, a handler and a
    # second pass through the processors cost as much as the rest of a
    # request's logging) and go straight to stderr; other libraries' records
    # still go through the handler below, rendered the same way.
    structlog.configure(
        processors=[*shared, *extra, renderer],
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *extra,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _NamedWriteLogger(structlog.WriteLogger):
    """Writes lines to a file and knows its name, for ``add_logger_name``."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


def _stderr_logger(*args: Any) -> _NamedWriteLogger:
    return _NamedWriteLogger(sys.stderr, str(args[0]) if args else "")
