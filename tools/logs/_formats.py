"""Line formats beyond "timestamp first": wrappers to unwrap and headers to recognise.

Wrappers carry another log line inside them: Kubernetes/CRI container logs
(``<ts> stderr F <line>``, ``P`` for a partial line continued by the next one), Docker's
json-file (``{"log": "<line>\\n", "stream": ..., "time": ...}``), journald exports
(``journalctl -o short-iso``) and syslog (RFC 3164 and 5424). ``unwrap`` returns the
inner line with the wrapper's time, service and level, which the inner line's own
values override. Headers of their own: Celery workers, level-first Log4j patterns, and
logfmt (``time=... level=... msg=...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tools.logs._fields import LEVEL_MAP, TS_PATTERN, from_groups, normalize_level, parse_ts

__all__ = ["Wrap", "access_line", "celery_header", "json_wrap", "level_first_header", "logfmt", "unwrap"]

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                          "Nov", "Dec"), 1)}  # fmt: skip
_CRI = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})) (stdout|stderr) ([PF]) ?")
# journalctl -o short-iso / short-iso-precise: "<ts> <host> <ident>[<pid>]: <message>"
_JOURNAL = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})) "
    r"([^\s\[\]]+) ([^\s\[\]:]+)(?:\[\d+\])?: ?"
)
# RFC 3164: "<34>Nov 20 14:03:12 host ident[pid]: message" (priority optional)
_SYSLOG = re.compile(
    r"(?:<(\d{1,3})>)?([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\S+) ([^\s\[:]+)(?:\[\d+\])?: ?"
)
# RFC 5424: "<34>1 2026-11-20T14:03:12.003Z host app procid msgid [sd]|- message"
_SYSLOG5424 = re.compile(r"<(\d{1,3})>1 (\S+) (\S+) (\S+) \S+ \S+ (?:-|(?:\[(?:[^\]\\]|\\.)*\])+) ?")
_SYSLOG_LEVELS = ("FATAL", "FATAL", "FATAL", "ERROR", "WARN", "INFO", "INFO", "DEBUG")
# Celery: "[2026-11-20 14:03:12,345: ERROR/ForkPoolWorker-3] message"
_CELERY = re.compile(r"\[" + TS_PATTERN + r": (\w+)/([^\]]*)\] ?")
_NAMES = "|".join(sorted(LEVEL_MAP, key=len, reverse=True))
# Log4j "%-5p %d [%t] %c - %m": "ERROR 2026-11-20 14:03:12,345 [main] c.a.Foo - message"
_LEVEL_FIRST = re.compile(rf"\[?({_NAMES})\]?\s+\[?" + TS_PATTERN + r"\]?\s*")
# Common/combined access log: 10.0.0.7 - - [20/Nov/2026:14:03:12 +0000] "GET / HTTP/1.1" 500 12 ...
_ACCESS = re.compile(
    r"\S+ \S+ \S+ \[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{4})\] \"[^\"]*\" (\d{3})\b"
)
_LOGFMT_PAIR = re.compile(r'([\w.@-]+)=("(?:[^"\\]|\\.)*"|\S*)')
_LOGFMT_START = re.compile(r"[\w.@-]+=")


@dataclass(slots=True)
class Wrap:
    """What a wrapper says about the line inside it."""

    ts: datetime | None = None
    service: str = ""
    level: str | None = None
    partial: bool = False  # CRI "P": the line continues in the next wrapper line


def unwrap(line: str) -> tuple[str, Wrap] | None:
    """(inner line, wrapper facts) for a CRI, journald or syslog line, else None."""
    first = line[:1]
    if first.isdigit():
        return _iso_wrapped(line)
    if first == "<":
        return _syslog5424(line) or _syslog3164(line)
    if first in _FIRST_MONTH_LETTERS:
        return _syslog3164(line)
    return None


_FIRST_MONTH_LETTERS = frozenset(m[0] for m in _MONTHS)


def _iso_wrapped(line: str) -> tuple[str, Wrap] | None:
    """A CRI or journald line (both start with an ISO-8601 time), told apart by the word after it."""
    space = line.find(" ", 19) if line[10:11] == "T" else -1
    if space < 0:
        return None
    word = line[space + 1 : space + 8]
    if word in ("stdout ", "stderr "):
        return _cri(line)
    end = line.find(" ", space + 1)
    if line[space + 1 : end].upper() in LEVEL_MAP:  # "<ts> WARN tls: ..." is a level, not a host
        return None
    return _journal(line)


def _cri(line: str) -> tuple[str, Wrap] | None:
    match = _CRI.match(line)
    if match is None:
        return None
    return line[match.end() :], Wrap(parse_ts(match.group(1)), partial=match.group(3) == "P")


def _journal(line: str) -> tuple[str, Wrap] | None:
    match = _JOURNAL.match(line)
    if match is None or match.group(2).upper() in LEVEL_MAP:  # "<ts> WARN tls: ..." is a level, not a host
        return None
    return line[match.end() :], Wrap(parse_ts(match.group(1)), service=match.group(3))


def _syslog3164(line: str) -> tuple[str, Wrap] | None:
    match = _SYSLOG.match(line)
    if match is None or match.group(2) not in _MONTHS:
        return None
    pri, month, day, hour, minute, second, _host, ident = match.groups()
    try:
        # RFC 3164 has no year: the current one (UTC) unless that puts the line in the future
        now = datetime.now(UTC)
        ts = datetime(now.year, _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        if ts > now and ts.month > now.month:
            ts = ts.replace(year=now.year - 1)
    except ValueError:
        return None
    return line[match.end() :], Wrap(ts, service=ident, level=_pri_level(pri))


def _syslog5424(line: str) -> tuple[str, Wrap] | None:
    match = _SYSLOG5424.match(line)
    if match is None:
        return None
    pri, stamp, _host, app = match.groups()
    service = "" if app == "-" else app
    return line[match.end() :], Wrap(parse_ts(stamp), service=service, level=_pri_level(pri))


def _pri_level(pri: str | None) -> str | None:
    return None if pri is None else _SYSLOG_LEVELS[int(pri) % 8]


def json_wrap(obj: dict[str, Any]) -> tuple[str, Wrap] | None:
    """(inner line, wrapper facts) for Docker json-file/fluentd ``{"log": ...}`` or ``journalctl -o json``."""
    if "MESSAGE" in obj and "__REALTIME_TIMESTAMP" in obj:
        return _journal_json(obj)
    inner = obj.get("log")
    if not isinstance(inner, str) or not ("stream" in obj or "kubernetes" in obj or "container_name" in obj):
        return None
    wrap = Wrap(parse_ts(obj.get("time")), partial=not inner.endswith("\n") and "stream" in obj)
    kube = obj.get("kubernetes")
    if isinstance(kube, dict):
        labels = kube.get("labels")
        app = (labels.get("app") or labels.get("app.kubernetes.io/name")) if isinstance(labels, dict) else None
        wrap.service = str(app or kube.get("container_name") or "")[:200]
    elif isinstance(obj.get("container_name"), str):
        wrap.service = obj["container_name"].lstrip("/")[:200]
    return inner.rstrip("\r\n"), wrap


def _journal_json(obj: dict[str, Any]) -> tuple[str, Wrap] | None:
    message = obj.get("MESSAGE")
    if isinstance(message, list):  # journald writes non-UTF-8 messages as a byte array
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    raw = obj.get("__REALTIME_TIMESTAMP")
    ts = parse_ts(int(raw) / 1e6) if isinstance(raw, str) and raw.isdigit() else None
    ident = obj.get("SYSLOG_IDENTIFIER") or obj.get("_COMM") or ""
    priority = obj.get("PRIORITY")
    level = _pri_level(priority) if isinstance(priority, str) and priority.isdigit() else None
    return message, Wrap(ts, service=str(ident)[:200], level=level)


def celery_header(line: str) -> tuple[datetime, str | None, str, str] | None:
    """(ts, level, process, message) of a Celery worker line."""
    match = _CELERY.match(line)
    if match is None:
        return None
    try:
        ts = from_groups(match.groups()[:8])
    except ValueError:
        return None
    return ts, normalize_level(match.group(9)), match.group(10), line[match.end() :].rstrip()


def access_line(line: str) -> tuple[datetime, str, str] | None:
    """(ts, level, line) of an access log line: WARN for a 5xx answer, else INFO."""
    match = _ACCESS.match(line)
    if match is None or match.group(2) not in _MONTHS:
        return None
    day, month, year, hour, minute, second, zone, status = match.groups()
    groups = (year, f"{_MONTHS[month]:02d}", day, hour, minute, second, None, zone)
    try:
        ts = from_groups(groups)
    except ValueError:
        return None
    return ts, "WARN" if status[0] == "5" else "INFO", line.rstrip()


def level_first_header(line: str) -> tuple[datetime, str | None, str] | None:
    """(ts, level, message) of a line that starts with its level, then its timestamp."""
    match = _LEVEL_FIRST.match(line)
    if match is None:
        return None
    try:
        ts = from_groups(match.groups()[1:9])
    except ValueError:
        return None
    return ts, normalize_level(match.group(1)), line[match.end() :].rstrip()


def logfmt(line: str) -> dict[str, str] | None:
    """The key=value pairs of a logfmt line that names a time, level or message, else None."""
    if _LOGFMT_START.match(line) is None:
        return None
    pairs: dict[str, str] = {}
    for key, value in _LOGFMT_PAIR.findall(line):
        if value[:1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
        pairs.setdefault(key, value)
    known = ("time", "ts", "timestamp", "t", "level", "lvl", "msg", "message")
    if len(pairs) < 2 or not any(key in pairs for key in known):
        return None
    return pairs
