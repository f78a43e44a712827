"""Log levels and timestamps: normalization shared by the parser and the tools."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["LEVELS", "LEVEL_MAP", "TS_PATTERN", "from_groups", "level_rank", "normalize_level",
           "parse_ts"]  # fmt: skip

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_RANK = {name: i for i, name in enumerate(LEVELS)}
_ALIASES = {
    "WARNING": "WARN", "WRN": "WARN",
    "CRITICAL": "FATAL", "CRIT": "FATAL", "EMERG": "FATAL", "EMERGENCY": "FATAL",
    "ALERT": "FATAL", "PANIC": "FATAL",
    "SEVERE": "ERROR", "ERR": "ERROR", "ERRO": "ERROR", "EROR": "ERROR",
    "INFORMATION": "INFO", "INF": "INFO", "NOTICE": "INFO",
    "DBG": "DEBUG", "FINE": "DEBUG", "FINER": "TRACE", "FINEST": "TRACE",
    "TRC": "TRACE", "VERBOSE": "TRACE",
}  # fmt: skip
LEVEL_MAP = {**{name: name for name in LEVELS}, **_ALIASES}

# 2026-11-20T14:03:12Z, 2026-11-20 14:03:12,345, 2026/11/20 14:03:12.123+01:00 ...
TS_PATTERN = (
    r"(\d{4})[-/](\d{2})[-/](\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(?:\s?(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)(?![\w:]))?"
)
_EPOCH = re.compile(r"\d{9,19}(?:\.\d+)?")
_TS_FULL = re.compile(r"\s*" + TS_PATTERN + r"\s*$")


def normalize_level(value: Any) -> str | None:
    """Map a level name or number (pino/bunyan 10..60) to one of ``LEVELS``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value <= 0:
            return None
        return LEVELS[min(max(int(value) // 10 - 1, 0), 5)]
    if isinstance(value, str):
        return LEVEL_MAP.get(value.strip().upper())
    return None


def level_rank(level: str) -> int:
    return _RANK[level]


_SECONDS: dict[tuple[str | None, ...], datetime] = {}  # whole-second cache: lines share seconds


def from_groups(groups: tuple[str | None, ...]) -> datetime:
    """UTC datetime from the 8 groups of ``TS_PATTERN``; ValueError when out of range."""
    key = groups[:6] + groups[7:]
    base = _SECONDS.get(key)
    if base is None:
        year, month, day, hour, minute, second, _frac, zone = groups
        base = datetime(int(year), int(month), int(day), int(hour),  # type: ignore[arg-type]
                        int(minute), int(second), tzinfo=UTC)  # type: ignore[arg-type]  # fmt: skip
        if zone and zone not in ("Z", "z", "UTC"):
            digits = zone[1:].replace(":", "")
            offset = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
            base -= timedelta(minutes=offset if zone[0] == "+" else -offset)
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS[key] = base
    frac = groups[6]
    return base.replace(microsecond=int(frac[:6].ljust(6, "0"))) if frac else base


def _from_epoch(number: float) -> datetime | None:
    """Epoch seconds, milliseconds, microseconds or nanoseconds (told apart by size)."""
    for scale in (1e9, 1e6, 1e3):
        if abs(number) > scale * 1e8:
            number /= scale
            break
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_ts(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO-8601-like string or an epoch number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    if value[:1].isdigit() and _EPOCH.fullmatch(value):  # "1795514400.65": epoch as a string
        return _from_epoch(float(value))
    try:
        parsed = datetime.fromisoformat(value)  # C fast path for most JSON timestamps
    except ValueError:
        match = _TS_FULL.match(value)  # "2026/11/20 14:03:12", " UTC", surrounding blanks
        if match is None:
            return None
        try:
            return from_groups(match.groups())
        except ValueError:
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
