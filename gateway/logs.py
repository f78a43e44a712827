"""Structured logging: JSON lines in production, readable lines on a terminal.

Standard-library loggers (uvicorn, CrewAI, httpx) go through the same processors,
so every line has one shape. Bind ``task_id`` with ``structlog.contextvars`` and it
appears on every line of that task's work.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger"]

_NOISY = {
    "alembic": logging.WARNING,  # plugin set-up and "Context impl" lines on every start
    "crewai": logging.ERROR,
    "crewai_core": logging.WARNING,
    "httpx": logging.WARNING,
    "LiteLLM": logging.WARNING,
    "root": logging.WARNING,
    "watchfiles": logging.WARNING,
}


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, floor in _NOISY.items():
        logger = logging.getLogger(None if name == "root" else name)
        if name != "root":
            logger.setLevel(max(floor, logging.getLevelName(level)))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def _identity(_logger: Any, _name: str, event: Any) -> Any:
    return event


def get_logger(name: str = "crewgate") -> Any:
    return structlog.get_logger(name)
