"""Streaming log parser: JSON lines and timestamped plain text, plain or gzip.

A record starts at a line that begins with a timestamp (plain text) or at a JSON
object that carries a timestamp, level or message. Any other line continues the
record above it (tracebacks, Java stack traces, Go goroutine dumps). Timestamps
without a zone are taken as UTC; every ``Record.ts`` is an aware UTC datetime.
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
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from tools._sandbox import Sandbox, SandboxError
from tools.logs._fields import (
    LEVEL_MAP,
    LEVELS,
    TS_PATTERN,
    from_groups,
    level_rank,
    normalize_level,
    parse_ts,
)

__all__ = ["LEVELS", "MAX_RECORD_BYTES", "ParseStats", "Record", "iter_records", "level_rank", "normalize_level",
           "parse_ts"]  # fmt: skip

_RANK = {name: i for i, name in enumerate(LEVELS)}
MAX_EXTRA_LINES = 200  # continuation lines kept per record
MAX_LINE_CHARS = 2000  # longer lines are cut

_HEADER = re.compile(r"\[?" + TS_PATTERN + r"\]?(?:\s+|(?=\[)|$)")
_NAMES = "|".join(sorted(LEVEL_MAP, key=len, reverse=True))
# Level right after the timestamp (any case): "ERROR msg", "[error] msg", "| ERROR | msg".
_LEVEL_FIRST = re.compile(rf"[-|:\s]*[\[(<]?({_NAMES})[\])>]?(?=[\s:|\-\[]|$)[\s:|]*(?:-\s+)?", re.IGNORECASE)
# Level after up to four logger/thread tokens (upper case only): "[main] ERROR msg".
_LEVEL_LATER = re.compile(rf"(?:\S+\s+){{1,4}}?[\[(<]?({_NAMES})[\])>]?(?=[\s:|\-\[]|$)[\s:|]*(?:-\s+)?")
# Lines that continue a record even when that record has no timestamp.
_CONTINUES = re.compile(
    r"\s|Traceback \(|Caused by:|During handling|The above exception|goroutine \d+ |"
    r"created by |\.\.\. \d+ |[\w.$]+(?:Error|Exception|Warning)\b|[\w./*()-]+\(.*\)$"
)
_ERROR_START = re.compile(r"Traceback \(|panic:|fatal error:|Exception in thread ")

_TS_KEYS = ("ts", "time", "timestamp", "@timestamp", "datetime", "date", "@t", "asctime", "t")
_LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "loglevel", "log_level", "log.level",
               "level_name", "@l")  # fmt: skip
_MSG_KEYS = ("msg", "message", "event", "@m", "@mt", "text", "log")
_EXTRA_KEYS = ("exception", "exc", "exc_info", "exc_text", "stack", "stack_trace", "stacktrace",
               "traceback", "error.stack", "error.stack_trace", "err.stack", "@x")  # fmt: skip
_ERROR_KEYS = ("error.type", "error.message", "error", "err")
_CONTAINERS = (dict, list)
_NESTED = ("log", "error", "err")  # objects whose fields count as "log.level", "error.type" ...
_ROLES: dict[str, tuple[int, int]] = {}  # key -> (0 ts | 1 level | 2 msg | 3 trace | 4 error, rank)
for _kind, _keys in enumerate((_TS_KEYS, _LEVEL_KEYS, _MSG_KEYS, _EXTRA_KEYS, _ERROR_KEYS)):
    for _prio, _key in enumerate(_keys):
        _ROLES.setdefault(_key, (_kind, _prio))


@dataclass(slots=True)
class Record:
    """One log record: its first line plus the continuation lines that follow it."""

    ts: datetime | None
    level: str
    message: str
    extra: list[str] = field(default_factory=list)
    source: str = ""
    line: int = 0

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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def _json_fields(obj: dict[str, Any]) -> tuple[list[Any], list[Any], list[str]]:
    """([ts, level, msg], exception values, error strings) from one JSON log object."""
    best: list[Any] = [None, None, None]
    rank = [99, 99, 99]
    traces: list[tuple[int, Any]] = []
    errors: list[tuple[int, str]] = []
    known = obj.keys() & _ROLES.keys()  # usually 3-5 keys: cheaper than walking them all
    pairs = [(key, obj[key]) for key in known]
    for outer in _NESTED:
        inner = obj.get(outer)
        if isinstance(inner, dict):
            pairs.extend((f"{outer}.{key}", value) for key, value in inner.items())
    for key, value in pairs:
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
    return best, [v for _, v in traces], [v for _, v in errors]


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


def _parse_header(text: str) -> tuple[datetime, str, str] | None:
    """(ts, level, message) when ``text`` starts with a timestamp, else None."""
    match = _HEADER.match(text)
    if match is None:
        return None
    try:
        ts = from_groups(match.groups())
    except ValueError:
        return None
    rest = text[match.end() :]
    found = _LEVEL_FIRST.match(rest)
    if found is not None and not _plain_case(found.group(1)):
        found = None  # "Error connecting ..." is prose, not a level column
    found = found or _LEVEL_LATER.match(rest)
    if found is None:
        return ts, "INFO", rest.strip()
    return ts, LEVEL_MAP[found.group(1).upper()], rest[found.end() :].rstrip()


def _json_record(obj: Any, source: str, lineno: int) -> Record | None:
    if not isinstance(obj, dict):
        return None
    (raw_ts, raw_level, raw_msg), traces, errors = _json_fields(obj)
    if raw_ts is None and raw_level is None and raw_msg is None:
        return None
    ts, level = parse_ts(raw_ts), normalize_level(raw_level)
    if raw_msg is None:
        text = ""
    elif isinstance(raw_msg, str):
        text = raw_msg
    else:
        text = json.dumps(raw_msg, ensure_ascii=False)[:MAX_LINE_CHARS]
    if level is None and text[:1].isdigit():  # e.g. docker: {"log": "2026-... ERROR ..."}
        header = _parse_header(text.split("\n", 1)[0])
        if header is not None:
            ts = ts or header[0]
            level = header[1]
            text = header[2] + text[len(text.split("\n", 1)[0]) :]
    first, _, rest = text.partition("\n")
    errors = [e for e in errors if e != first]
    if errors:
        first = ": ".join(part for part in (first, *errors[:2]) if part)
    extra = rest.splitlines()
    trace = [line for value in traces for line in _text_lines(value)]
    extra.extend(trace)
    if level is None:
        level = "ERROR" if trace else "INFO"
    kept = [line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…" for line in extra[:MAX_EXTRA_LINES]]
    return Record(ts, level, first[:MAX_LINE_CHARS], kept, source, lineno)


def _orphan(line: str, source: str, lineno: int) -> Record:
    """A record for a line with no timestamp and no record to continue."""
    found = _LEVEL_FIRST.match(line)
    level = LEVEL_MAP[found.group(1).upper()] if found else None
    level = level or ("ERROR" if _ERROR_START.match(line) else "INFO")
    return Record(None, level, line.strip(), [], source, lineno)


def _finish(record: Record, dropped: int) -> Record:
    extra = record.extra
    while extra and not extra[-1].strip():
        extra.pop()
    if dropped:
        extra.append(f"…[{dropped} more lines]")
    return record


def _start_record(line: str, source: str, lineno: int) -> tuple[str, Record | None]:
    """(the line cut to MAX_LINE_CHARS, the record it starts or None when it continues one)."""
    new: Record | None = None
    if line[:1] == "{":  # parsed whole (up to MAX_RECORD_BYTES), cut after
        try:
            new = _json_record(json.loads(line), source, lineno)
        except (ValueError, RecursionError):
            new = None
    if len(line) > MAX_LINE_CHARS:
        line = line[:MAX_LINE_CHARS] + "…"
    first = line[:1]
    if new is None and (first.isdigit() or first == "["):
        header = _parse_header(line)
        if header is not None:
            new = Record(header[0], header[1], header[2], [], source, lineno)
    return line, new


def _parse_lines(lines: Iterable[str], source: str, stats: ParseStats) -> Iterator[Record]:
    current: Record | None = None
    dropped = 0
    lineno = 0
    for lineno, raw in enumerate(lines, 1):
        line, new = _start_record(raw.rstrip("\r\n"), source, lineno)
        if new is None:
            if current is not None and (current.ts is not None or not line or
                                        _CONTINUES.match(line)):  # fmt: skip
                if len(current.extra) < MAX_EXTRA_LINES:
                    current.extra.append(line)
                else:
                    dropped += 1
                continue
            if not line.strip():
                continue
            new = _orphan(line, source, lineno)
        if current is not None:
            stats.records += 1
            yield _finish(current, dropped)
        current, dropped = new, 0
    stats.lines += lineno
    if current is not None:
        stats.records += 1
        yield _finish(current, dropped)


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
