"""Argument schemas of the log tools and the checks on their values."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tools._base import ToolError
from tools.logs._fields import LEVELS, normalize_level, parse_ts

__all__ = [
    "ErrorSignaturesArgs",
    "ErrorTimelineArgs",
    "SearchLogsArgs",
    "parse_level",
    "parse_time",
]

_LOGS = "Log file or directory to read, relative to an allowed root or absolute inside one. "
_LOGS += "Directories are read recursively; .gz files are decompressed."
_SINCE = "Only records at or after this ISO-8601 time, e.g. 2026-11-20T14:00:00Z (no zone = UTC)."
_UNTIL = "Only records at or before this ISO-8601 time, e.g. 2026-11-20T15:00:00Z (no zone = UTC)."
_LEVELS_TEXT = ", ".join(LEVELS)


_SERVICE = (
    "Only this service's records: those whose service/app field, Kubernetes app label, syslog or "
    "journald identifier, logger, or file or directory name names it (e.g. payments matches "
    "payments-api.log). Records of other services are counted by name, not analysed. Omit for all."
)


class _WindowArgs(BaseModel):
    logs: str = Field(..., description=_LOGS)
    since: str | None = Field(default=None, description=_SINCE)
    until: str | None = Field(default=None, description=_UNTIL)
    service: str | None = Field(default=None, description=_SERVICE)  # clipped, not refused: the crew passes its input


class SearchLogsArgs(_WindowArgs):
    pattern: str | None = Field(
        default=None,
        description="Python regular expression, matched case-insensitively against each "
        "record's message and its continuation lines (stack traces). Omit to match all.",
    )
    level: str | None = Field(default=None, description=f"Minimum level to include, one of {_LEVELS_TEXT}.")
    limit: int = Field(default=50, ge=1, le=500, description="Most records to return (1-500).")


class ErrorSignaturesArgs(_WindowArgs):
    min_level: str = Field(default="ERROR", description=f"Lowest level counted as an error, one of {_LEVELS_TEXT}.")
    limit: int = Field(default=10, ge=1, le=100, description="Most signatures to list (1-100).")


class ErrorTimelineArgs(_WindowArgs):
    min_level: str = Field(default="ERROR", description=f"Lowest level counted as an error, one of {_LEVELS_TEXT}.")
    bucket_minutes: int = Field(default=1, ge=1, le=60, description="Width of each time bucket in minutes (1-60).")


def parse_time(name: str, value: str | None) -> datetime | None:
    if value is None or not str(value).strip():
        return None
    parsed = parse_ts(str(value))
    if parsed is None:
        raise ToolError(f"{name} {value!r} is not an ISO-8601 timestamp (expected e.g. 2026-11-20T14:03:00Z)")
    return parsed


def parse_level(name: str, value: str | None) -> int | None:
    if value is None or not str(value).strip():
        return None
    level = normalize_level(str(value))
    if level is None:
        raise ToolError(f"{name} {value!r} is not a log level; use one of {_LEVELS_TEXT}")
    return LEVELS.index(level)
