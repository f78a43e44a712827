"""Streaming log parser: JSON lines, logfmt and timestamped plain text, plain or gzip.

A record starts at a line that begins with a timestamp (plain text, Celery, gunicorn,
Log4j/Logback, Go ``log``), a logfmt line, or a JSON object that carries a timestamp,
level or message. Wrapped lines (Kubernetes/CRI, Docker json-file, journald, syslog)
are unwrapped first and their inner line parsed the same way (``_formats``). Lines that
look like a stack trace, a goroutine dump or a chained exception continue the record
above them; a record with no timestamp of its own (a crash dump on stderr) takes the
time of the record before it in its file (or, at the top of a file, of the first dated
record after it). Any other line is a record of its own and is counted in
``ParseStats.unrecognised``. Timestamps without a zone are taken as UTC; every dated
``Record.ts`` is an aware UTC datetime.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from tools._sandbox import Sandbox, SandboxError
from tools.logs._deploys import deploy_fields, deploy_of
from tools.logs._fields import (
    LEVEL_MAP,
    LEVELS,
    TS_PATTERN,
    from_groups,
    level_rank,
    normalize_level,
    parse_ts,
)
from tools.logs._formats import Wrap, access_line, celery_header, json_wrap, level_first_header, logfmt, unwrap

__all__ = ["LEVELS", "MAX_RECORD_BYTES", "ParseStats", "Record", "iter_records", "level_rank", "normalize_level",
           "parse_ts", "record_deploy"]  # fmt: skip

_RANK = {name: i for i, name in enumerate(LEVELS)}
MAX_EXTRA_LINES = 200  # continuation lines kept per record
MAX_LINE_CHARS = 2000  # longer lines are cut (after parsing: a JSON record is parsed whole)
MAX_HELD = 10_000  # undated records held at the top of a file until a timestamp is seen
MAX_UNRECOGNISED_SAMPLES = 3

_HEADER = re.compile(r"\[?" + TS_PATTERN + r"\]?(?:\s+|(?=\[)|$)")
_TIME_ONLY = re.compile(r"\[?(\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\]?\s+")
_NAMES = "|".join(sorted(LEVEL_MAP, key=len, reverse=True))
# Level right after the timestamp (any case): "ERROR msg", "[error] msg", "| ERROR | msg".
_LEVEL_FIRST = re.compile(rf"[-|:\s]*[\[(<]?({_NAMES})[\])>]?(?=[\s:|\-\[]|$)[\s:|]*(?:-\s+)?", re.IGNORECASE)
# Level after up to four logger/thread tokens (upper case only): "[main] ERROR msg".
_LEVEL_LATER = re.compile(rf"(?:\S+\s+){{1,4}}?[\[(<]?({_NAMES})[\])>]?(?=[\s:|\-\[]|$)[\s:|]*(?:-\s+)?")
# Lines that continue a record: stack frames, chained exceptions, goroutine dumps, the
# closing brackets of a pretty-printed object.
_CONTINUES = re.compile(
    r"\s|Traceback \(|Caused by:|Suppressed:|During handling|The above exception|goroutine \d+ |"
    r"created by |\.\.\. \d+ |[\w.$]+(?:Error|Exception|Warning|Throwable)\b|[\w./*()$-]+\(.*\)$|"
    r"panic\(|\[signal |[\]}),]|at [\w.$<]"
)
_ERROR_START = re.compile(r"Traceback \(|panic:|fatal error:|Exception in thread ")
# A crash is an error even when no level is written.
_CRASH = re.compile(
    r"panic:|panic serving|fatal error:|Fatal Python error|Exception in thread |Traceback \(|"
    r"Unhandled (?:exception|rejection)|uncaught exception|Segmentation fault|SIGSEGV|\bFATAL EXCEPTION",
    re.IGNORECASE,
)
_CRASH_TRACE = ("goroutine ", "Traceback (", "panic:", "fatal error:")

_TS_KEYS = ("ts", "time", "timestamp", "@timestamp", "datetime", "date", "@t", "asctime", "t", "timeMillis",
            "timestamp_ms", "eventTime")  # fmt: skip
_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "loglevel", "log_level", "log.level",
               "level_name", "@l", "levelStr")  # fmt: skip
_MSG_KEYS = ("msg", "message", "event", "@m", "@mt", "text", "log")
_EXTRA_KEYS = ("exception", "exc", "exc_info", "exc_text", "stack", "stack_trace", "stacktrace",
               "traceback", "error.stack", "error.stack_trace", "err.stack", "@x", "exception.stacktrace",
               "exception.stack_trace", "error.stacktrace", "err.stacktrace", "panic")  # fmt: skip
_ERROR_KEYS = ("error.type", "error.message", "error", "err", "err.message", "error.kind")
_SERVICE_KEYS = ("service", "service.name", "app", "application", "app_name", "appname", "service_name",
                 "kubernetes.labels.app", "syslog_identifier", "SYSLOG_IDENTIFIER", "_SYSTEMD_UNIT")  # fmt: skip
_LOGGER_KEYS = ("logger", "logger_name", "loggerName", "name", "log.logger", "component")
# "kubernetes.labels.app" is also {"kubernetes": {"labels": {"app": ...}}}
_DOTTED = {key: tuple(key.split(".")) for key in (*_SERVICE_KEYS, *_LOGGER_KEYS) if "." in key}
_CONTAINERS = (dict, list)
_NESTED = (
    "log",
    "error",
    "err",
    "exception",
    "service",
    "kubernetes",
)  # objects whose fields count as "error.type" ...
_NESTED_SET = frozenset(_NESTED)
_ROLES: dict[str, tuple[int, int]] = {}  # key -> (0 ts | 1 level | 2 msg | 3 trace | 4 error, rank)
for _kind, _keys in enumerate((_TS_KEYS, _LEVEL_KEYS, _MSG_KEYS, _EXTRA_KEYS, _ERROR_KEYS)):
    for _prio, _key in enumerate(_keys):
        _ROLES.setdefault(_key, (_kind, _prio))
_UNPARSED: Any = object()
_NO_DEPLOY: Any = (None, None)  # looked at: not a deploy


@dataclass(slots=True)
class Record:
    """One log record: its first line plus the continuation lines that follow it."""

    ts: datetime | None
    level: str
    message: str
    extra: list[str] = field(default_factory=list)
    source: str = ""
    line: int = 0
    service: str = ""  # what the record says it comes from: service/app field, syslog identifier
    logger: str = ""  # logger or component name (a weaker hint of the service)
    deploy: tuple[str | None, str | None] | None = None  # see record_deploy(); None: not looked at yet
    implied: bool = False  # no level was written: INFO, or ERROR for a crash

    @property
    def rank(self) -> int:
        return _RANK.get(self.level, 2)


@dataclass(slots=True)
class ParseStats:
    """Counts gathered while parsing, for reporting what was (not) read."""

    files: int = 0
    lines: int = 0
    records: int = 0
    cut_lines: int = 0  # lines longer than MAX_RECORD_BYTES, kept only in part
    cut_bytes: int = 0
    unrecognised: int = 0  # lines in no known format, kept as undated-level records of their own
    unrecognised_samples: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _json_fields(obj: dict[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    """([ts, level, msg], exception values, error strings) from one JSON log object."""
    best: list[Any] = [None, None, None]
    rank = [99, 99, 99]
    traces: list[tuple[int, Any]] = []
    errors: list[tuple[int, str]] = []
    for key, value in _pairs(obj):
        role = _ROLES.get(key)
        if role is None or value is None or value == "":
            continue
        kind, prio = role
        if kind < 3:
            if prio < rank[kind] and not isinstance(value, _CONTAINERS):
                best[kind], rank[kind] = value, prio
        elif kind == 3:
            traces.append((prio, value))
        elif isinstance(value, str):  # an error field: one line joins the message
            (errors if "\n" not in value else traces).append((prio, value))
    if not traces and not errors:
        return best, [], []
    traces.sort(key=lambda t: t[0])
    errors.sort(key=lambda t: t[0])
    return best, _distinct(v for _, v in traces), [v for _, v in errors]


def _pairs(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    pairs = [(key, value) for key, value in obj.items() if key in _ROLES]
    for outer in _NESTED_SET.intersection(obj):
        inner = obj[outer]
        if isinstance(inner, dict):
            pairs.extend((f"{outer}.{key}", value) for key, value in inner.items())
    return pairs


def _distinct(values: Iterable[Any]) -> list[Any]:
    """Trace values without one nested inside another (``exception`` and ``exception.stacktrace``)."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, str) and any(isinstance(v, dict) and value in v.values() for v in out):
            continue
        out.append(value)
    return out


def _first_str(obj: dict[str, Any], keys: tuple[str, ...]) -> str:
    """The first non-empty string among ``keys`` (``a.b`` also as a nested object), cut to 200."""
    for key in keys:
        value = obj.get(key)
        if value is None and key in _DOTTED:
            value = _nested(obj, _DOTTED[key])
        if isinstance(value, str) and value:
            return value[:200]
    return ""


def _nested(obj: dict[str, Any], parts: tuple[str, ...]) -> Any:
    value: Any = obj
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text_lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.splitlines()
    if isinstance(value, list):
        return [line for item in value for line in _text_lines(item)]
    if isinstance(value, dict):
        return [line for item in value.values() for line in _text_lines(item)]
    return []


def _plain_case(word: str) -> bool:
    return word.isupper() or word.islower()


def _parse_header(text: str) -> tuple[datetime, str | None, str] | None:
    """(ts, level or None when none is written, message) when ``text`` starts with a timestamp."""
    match = _HEADER.match(text)
    if match is None:
        return _time_only(text)
    try:
        ts = from_groups(match.groups())
    except ValueError:
        return None
    return _level_and_message(ts, text[match.end() :])


def _time_only(text: str) -> tuple[datetime, str | None, str] | None:
    """A header with a time of day but no date (pino-pretty, Logback's default pattern): the
    date is filled in from the record before it (``_FileParser._finish``); until then year 1."""
    match = _TIME_ONLY.match(text)
    if match is None:
        return None
    hour, minute, second, frac = match.groups()
    try:
        ts = datetime(1, 1, 1, int(hour), int(minute), int(second), int((frac or "0")[:6].ljust(6, "0")), UTC)
    except ValueError:
        return None
    header = _level_and_message(ts, text[match.end() :])
    return header if header[1] is not None else None  # a bare time and prose is no header


def _level_and_message(ts: datetime, rest: str) -> tuple[datetime, str | None, str]:
    found = _LEVEL_FIRST.match(rest)
    if found is not None and not _plain_case(found.group(1)):
        found = None  # "Error connecting ..." is prose, not a level column
    found = found or _LEVEL_LATER.match(rest)
    if found is None:
        return ts, None, rest.strip()
    return ts, LEVEL_MAP[found.group(1).upper()], rest[found.end() :].rstrip()


def _json_text(raw_msg: Any) -> str:
    if raw_msg is None:
        return ""
    if isinstance(raw_msg, str):
        return raw_msg
    return json.dumps(raw_msg, ensure_ascii=False)[:MAX_LINE_CHARS]


def _json_record(obj: Any, source: str, lineno: int) -> Record | None:
    if not isinstance(obj, dict):
        return None
    (raw_ts, raw_level, raw_msg), traces, errors = _json_fields(obj)
    if raw_ts is None and raw_level is None and raw_msg is None:
        return None
    ts, level, text = parse_ts(raw_ts), normalize_level(raw_level), _json_text(raw_msg)
    if level is None and text[:1].isdigit():  # e.g. {"log": "2026-... ERROR ..."}
        header = _parse_header(text.split("\n", 1)[0])
        if header is not None:
            ts, level = ts or header[0], header[1]
            text = header[2] + text[len(text.split("\n", 1)[0]) :]
    first, _, rest = text.partition("\n")
    errors = [e for e in errors if e != first]
    if errors:
        first = ": ".join(part for part in (first, *errors[:2]) if part)
    extra = rest.splitlines()
    trace = [line for value in traces for line in _text_lines(value)]
    extra.extend(trace)
    implied = level is None
    if level is None:
        level = "ERROR" if trace else "INFO"
    kept = [line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…" for line in extra[:MAX_EXTRA_LINES]]
    record = Record(ts, level, first[:MAX_LINE_CHARS], kept, source, lineno, _first_str(obj, _SERVICE_KEYS),
                    _first_str(obj, _LOGGER_KEYS), implied=implied)  # fmt: skip
    if record.rank < 4:
        record.deploy = deploy_of(record.message, deploy_fields(obj)) or _NO_DEPLOY
    return record


def _logfmt_record(pairs: dict[str, str], source: str, lineno: int) -> Record:
    record = _json_record(pairs, source, lineno)
    assert record is not None  # logfmt() only returns pairs that name a time, level or message
    return record


def _text_record(line: str, source: str, lineno: int) -> Record | None:
    """The record a plain-text line starts (timestamp, Celery, level-first or logfmt header), or None."""
    first = line[:1]
    if first.isdigit() or first == "[":
        header = _parse_header(line) or _celery(line)
        if header is not None:
            return Record(header[0], header[1] or "INFO", header[2], [], source, lineno, implied=header[1] is None)
    if '] "' in line[:120]:
        access = access_line(line)
        if access is not None:
            return Record(*access, [], source, lineno)
    if first.isalpha():
        if "=" in line[:48]:
            pairs = logfmt(line)
            if pairs is not None:
                return _logfmt_record(pairs, source, lineno)
        if first.isupper() or first == "[":
            found = level_first_header(line)
            if found is not None:
                return Record(found[0], found[1] or "INFO", found[2], [], source, lineno)
    return None


def _celery(line: str) -> tuple[datetime, str | None, str] | None:
    found = celery_header(line)
    return None if found is None else (found[0], found[1], found[3])


def _orphan(line: str, source: str, lineno: int) -> Record:
    """A record for a line with no timestamp that continues no record."""
    found = _LEVEL_FIRST.match(line)
    level = LEVEL_MAP[found.group(1).upper()] if found else None
    return Record(None, level or "INFO", line.strip(), [], source, lineno, implied=level is None)


def _loads(line: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _unwrap(line: str) -> tuple[str, Wrap | None, Any]:
    """(inner line, wrapper facts or None, the line's JSON value or _UNPARSED)."""
    first = line[:1]
    if first.isdigit() and line[10:11] != "T":  # the common plain-text line: no wrapper starts so
        return line, None, _UNPARSED
    if first == "{":
        obj = _loads(line)
        found = json_wrap(obj) if isinstance(obj, dict) else None
        if found is None:
            return line, None, obj
        return found[0], found[1], _UNPARSED
    if first.isdigit() or first == "<" or first.isupper():
        found = unwrap(line)
        if found is not None:
            return found[0], found[1], _UNPARSED
    return line, None, _UNPARSED


class _FileParser:
    """Turns the lines of one file into records (see the module docstring)."""

    def __init__(self, source: str, stats: ParseStats) -> None:
        self.source, self.stats = source, stats
        self.current: Record | None = None
        self.dropped = 0
        self.last_ts: datetime | None = None
        self.held: list[Record] = []  # undated records before the first dated one
        self.pieces: list[str] = []  # a CRI/Docker line split into partial lines
        self.out: list[Record] = []

    def feed(self, raw: str, lineno: int) -> None:
        if raw[10:11] != "T" and raw[:1].isdigit() and not self.pieces:  # most plain-text lines: no wrapper
            new = _text_record(raw if len(raw) <= MAX_LINE_CHARS else raw[:MAX_LINE_CHARS] + "…", self.source, lineno)
            if new is not None:
                self._push(new)
                return
        self._feed(raw, lineno)

    def _feed(self, raw: str, lineno: int) -> None:
        line, wrap, obj = _unwrap(raw)
        if wrap is not None and wrap.partial:
            if sum(map(len, self.pieces)) < MAX_RECORD_BYTES:
                self.pieces.append(line)
            return
        if self.pieces:
            line, obj = "".join([*self.pieces, line]), _UNPARSED
            self.pieces = []
        new = self._start(line, obj, lineno)
        if new is None:
            if self._continue(line, wrap is not None):
                return
            if not line.strip():
                return
            new = _orphan(line, self.source, lineno)
            if wrap is None:
                self._unrecognised(line)
        if wrap is not None:
            _apply(new, wrap)
        self._push(new)

    def _start(self, line: str, obj: Any, lineno: int) -> Record | None:
        if line[:1] == "{":  # parsed whole (up to MAX_RECORD_BYTES), cut after
            new = _json_record(_loads(line) if obj is _UNPARSED else obj, self.source, lineno)
            if new is not None:
                return new
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + "…"
        return _text_record(line, self.source, lineno)

    def _continue(self, line: str, wrapped: bool) -> bool:
        """Add ``line`` to the current record when it continues it (a trace, a blank line).

        A crash (``panic:``, ``Traceback``) continues the record above it, except a Go runtime
        crash in a wrapper of its own (journald, CRI): that is a new process's last words.
        """
        current = self.current
        if current is None or (wrapped and line.startswith(("panic: ", "fatal error: "))):
            return False
        if not (not line.strip() or (current.extra and not wrapped) or _CONTINUES.match(line)
                or _ERROR_START.match(line)):  # fmt: skip
            return False
        if len(current.extra) < MAX_EXTRA_LINES:
            current.extra.append(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…")
        else:
            self.dropped += 1
        return True

    def _unrecognised(self, line: str) -> None:
        self.stats.unrecognised += 1
        if len(self.stats.unrecognised_samples) < MAX_UNRECOGNISED_SAMPLES:
            self.stats.unrecognised_samples.append(line[:200])

    def _push(self, new: Record) -> None:
        if self.current is not None:
            self._finish(self.current)
        self.current, self.dropped = new, 0

    def _finish(self, record: Record) -> None:
        _close(record, self.dropped)
        if record.ts is not None and record.ts.year == 1:
            record.ts = _on_day_of(record.ts, self.last_ts)
        if record.ts is None and self.last_ts is not None:
            record.ts = self.last_ts  # a dump without a time of its own: when the record before it was
        if record.ts is None:
            if len(self.held) < MAX_HELD:
                self.held.append(record)
                return
            self.out.append(record)
            return
        if self.held:
            for early in self.held:
                early.ts = record.ts
            self.out.extend(self.held)
            self.held = []
        self.last_ts = record.ts
        self.out.append(record)

    def close(self) -> None:
        if self.current is not None:
            self._finish(self.current)
            self.current = None
        self.out.extend(self.held)
        self.held = []


def _on_day_of(time_of_day: datetime, last: datetime | None) -> datetime | None:
    """``time_of_day`` on the day of ``last`` (the next day when it is hours earlier), else None."""
    if last is None:
        return None
    ts = datetime.combine(last.date(), time_of_day.timetz())
    return ts + timedelta(days=1) if ts < last - timedelta(hours=12) else ts


def _apply(record: Record, wrap: Wrap) -> None:
    """Fill what the inner line did not say from its wrapper."""
    if record.ts is None or (record.ts.year == 1 and wrap.ts is not None):
        record.ts = wrap.ts
    if not record.service:
        record.service = wrap.service
    if record.implied and wrap.level is not None:
        record.level, record.implied = wrap.level, False


def _close(record: Record, dropped: int) -> None:
    extra = record.extra
    while extra and not extra[-1].strip():
        extra.pop()
    if dropped:
        extra.append(f"…[{dropped} more lines]")
    if record.implied and record.rank < 4 and _crashed(record):
        record.level = "ERROR"


_CRASH_WORDS = ("panic", "fatal", "exception", "traceback", "unhandled", "uncaught", "segmentation", "sigsegv")


def record_deploy(record: Record) -> tuple[str | None, str | None] | None:
    """(version, sha) when ``record`` is a start-up or deploy line, else None.

    Looked at on first use, not while parsing (search_logs never needs it), and remembered
    on the record: cached records share the answer.
    """
    found = record.deploy
    if found is None:
        found = record.deploy = (deploy_of(record.message) if record.rank < 4 else None) or _NO_DEPLOY
    return None if found is _NO_DEPLOY else found


def _crashed(record: Record) -> bool:
    low = record.message[:300].lower()
    if any(word in low for word in _CRASH_WORDS) and _CRASH.search(record.message[:300]):
        return True
    return any(line.startswith(_CRASH_TRACE) for line in record.extra[:3])


def _parse_lines(lines: Iterable[str], source: str, stats: ParseStats) -> Iterator[Record]:
    parser = _FileParser(source, stats)
    lineno = 0
    for lineno, raw in enumerate(lines, 1):
        parser.feed(raw.rstrip("\r\n"), lineno)
        if len(parser.out) >= 64:  # handed on in batches: cheaper than one at a time
            stats.records += len(parser.out)
            yield from parser.out
            parser.out = []
    parser.close()
    stats.lines += lineno
    stats.records += len(parser.out)
    yield from parser.out


MAX_RECORD_BYTES = 1024 * 1024  # a physical line is kept up to this size; the rest is counted, not held
_CHUNK = 64 * 1024


def _bounded_lines(binary: BinaryIO, stats: ParseStats) -> Iterator[str]:
    """Decoded lines of ``binary`` (without line ends), each at most MAX_RECORD_BYTES.

    Reads fixed-size chunks, so memory stays bounded whatever the line length: the
    part of a line past the limit is skipped and counted in ``stats.cut_lines`` and
    ``stats.cut_bytes``; the kept part ends with a ``…[N bytes cut]`` mark.
    """
    held: list[bytes] = []
    size = 0
    cut = 0
    first = True
    while True:
        chunk = binary.read(_CHUNK)
        if not chunk:
            break
        start = 0
        while start < len(chunk):
            end = chunk.find(b"\n", start)
            stop = len(chunk) if end < 0 else end
            room = MAX_RECORD_BYTES - size
            piece = chunk[start:stop]
            if len(piece) > room:
                cut += len(piece) - room
                piece = piece[:room]
            if piece:
                held.append(piece)
                size += len(piece)
            if end < 0:
                break
            yield _decode(b"".join(held), cut, first, stats)
            held, size, cut, first = [], 0, 0, False
            start = end + 1
    if held or cut:
        yield _decode(b"".join(held), cut, first, stats)


def _decode(data: bytes, cut: int, first: bool, stats: ParseStats) -> str:
    if first and data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", "replace").rstrip("\r")
    if cut:
        stats.cut_lines += 1
        stats.cut_bytes += cut
        text += f"…[{cut:,} bytes cut]"
    return text


def _open_binary(
    path: Path, sandbox: Sandbox, stack: contextlib.ExitStack
) -> tuple[BinaryIO, tuple[int, int, int, int]] | str:
    """A binary stream over ``path`` (gunzipped when needed) and its version, or why it is skipped."""
    binary: Any = stack.enter_context(sandbox.open_file(path))
    st = os.fstat(binary.fileno())
    version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if binary.peek(2)[:2] == b"\x1f\x8b":
        binary = stack.enter_context(io.BufferedReader(gzip.GzipFile(fileobj=binary, mode="rb"), _CHUNK))
    if b"\x00" in binary.peek(8192)[:8192]:
        return "binary file"
    return binary, version


def _iter_file(path: Path, sandbox: Sandbox, stats: ParseStats) -> Iterator[Record]:
    with contextlib.ExitStack() as stack:
        try:
            opened = _open_binary(path, sandbox, stack)
        except SandboxError as e:
            stats.skipped.append((str(path), str(e)))
            return
        except (OSError, EOFError, zlib.error) as e:
            stats.skipped.append((str(path), f"{e.__class__.__name__}"))
            return
        if isinstance(opened, str):
            stats.skipped.append((str(path), opened))
            return
        binary, version = opened
        key: tuple[str, int, int, int, int] = (str(path), *version)
        cached = _CACHE.get(key)
        if cached is not None:
            _merge(stats, cached.stats)
            yield from cached.records
            return
        own = ParseStats()
        records: list[Record] = []
        try:
            for record in _parse_stream(binary, str(path), own):
                records.append(record)
                yield record
            # read to the end (the consumer did not stop early); remember it unless it changed meanwhile
            with contextlib.suppress(OSError, SandboxError):
                if _file_key(path, sandbox) == key:
                    _CACHE.put(key, _Parsed(records, own))
        finally:
            _merge(stats, own)


def _parse_stream(binary: BinaryIO, source: str, stats: ParseStats) -> Iterator[Record]:
    stats.files += 1
    try:
        yield from _parse_lines(_bounded_lines(binary, stats), source, stats)
    except (OSError, EOFError, zlib.error) as e:  # truncated or corrupt .gz: keep what was read
        stats.skipped.append((source, f"stopped early: {e.__class__.__name__}"))


def _file_key(path: Path, sandbox: Sandbox) -> tuple[str, int, int, int, int]:
    st = sandbox.stat(path)
    return str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _merge(into: ParseStats, part: ParseStats) -> None:
    into.files += part.files
    into.lines += part.lines
    into.records += part.records
    into.cut_lines += part.cut_lines
    into.cut_bytes += part.cut_bytes
    into.unrecognised += part.unrecognised
    room = MAX_UNRECOGNISED_SAMPLES - len(into.unrecognised_samples)
    into.unrecognised_samples.extend(part.unrecognised_samples[: max(0, room)])
    into.skipped.extend(part.skipped)


@dataclass(frozen=True)
class _Parsed:
    records: list[Record]
    stats: ParseStats


class _ParseCache:
    """Parsed files, one version per path (checked by inode, size and mtime), least
    recently used out first.

    One triage step calls several log tools over the same files, and a model searching
    logs calls them again and again; each would otherwise re-parse every file. Bounded by
    the total number of records held. Records are shared: readers must not modify them.
    """

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self._items: OrderedDict[str, tuple[tuple[int, int, int, int], _Parsed]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int, int, int]) -> _Parsed | None:
        path, version = key[0], key[1:]
        with self._lock:
            entry = self._items.get(path)
            if entry is None or entry[0] != version:
                return None
            self._items.move_to_end(path)
            return entry[1]

    def put(self, key: tuple[str, int, int, int, int], parsed: _Parsed) -> None:
        path, version = key[0], key[1:]
        size = len(parsed.records)
        with self._lock:
            old = self._items.pop(path, None)  # an older version of the file is never wanted again
            self._held -= len(old[1].records) if old is not None else 0
            if size > self.max_records:
                return
            self._items[path] = (version, parsed)
            self._held += size
            while self._held > self.max_records:
                _, (_, evicted) = self._items.popitem(last=False)
                self._held -= len(evicted.records)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._held = 0


_CACHE = _ParseCache(max_records=100_000)  # ~480 bytes each: at most ~50 MiB


def iter_records(
    paths: str | Path | Iterable[str | Path],
    *,
    sandbox: Sandbox | None = None,
    stats: ParseStats | None = None,
) -> Iterator[Record]:
    """Stream records from files and directories (recursively, sorted, symlinks checked).

    Directories are walked with ``sandbox.walk_files`` (by default a sandbox rooted at
    the directory itself, or at a file's directory), and every file is opened through
    the sandbox, so links that lead outside the roots are skipped, even when swapped in
    while the logs are read. Lines are read in bounded chunks (MAX_RECORD_BYTES).
    """
    if stats is None:
        stats = ParseStats()
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    for item in items:
        path = Path(os.path.abspath(item))
        walker = sandbox or Sandbox([path if path.is_dir() else path.parent])
        found = False
        for file in walker.walk_files(path):
            found = True
            yield from _iter_file(file, walker, stats)
        if not found and not _exists(walker, path):
            stats.skipped.append((str(path), "not a file or directory"))


def _exists(sandbox: Sandbox, path: Path) -> bool:
    try:
        sandbox.open_path(path).close()
    except SandboxError:
        return False
    return True
