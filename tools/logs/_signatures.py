"""Error signatures: mask the variable parts of a message so the same error groups together.

``template("user 8f1c… timed out after 2000ms from 10.0.0.7:5432")`` becomes
``"user <uuid> timed out after <duration> from <ip>"``. Exception class names and quoted
words such as ``KeyError: 'currency'`` stay: they are what tells one error from another.
A record with a stack trace is grouped by the template of its exception line, so one
failure logged under different messages counts once (``signature_of``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from tools.logs._parse import Record

__all__ = [
    "OTHER",
    "Signature",
    "SignatureIndex",
    "exception_line",
    "group_records",
    "signature_of",
    "template",
    "top_frame",
]

MAX_TEMPLATE_INPUT = 400  # characters of a message that decide its signature
MAX_TRACE_LINES = 200
MAX_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 300
OTHER = "<other signatures>"

_HEX4 = r"[0-9A-Fa-f]{1,4}"
_IPV4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IPV6 = (
    rf"(?:{_HEX4}:){{7}}{_HEX4}"
    rf"|(?=[0-9A-Fa-f:]*\d)(?:{_HEX4}(?::{_HEX4})*)?::(?:{_HEX4}(?::{_HEX4})*)?"
)
_UNITS = r"ns|us|µs|ms|s|sec|secs|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?"
_SIZES = r"[kKmMgGtT]i?[bB]|bytes?|[bB]"
_SEGMENT = r"[\w.@+%~-]"
_PATTERNS = (
    ("quoted", r"'[^'\s]{1,80}'|\"[^\"\s]{1,80}\""),
    ("url", r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s\"'<>]+"),
    ("uuid", r"\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b"),
    ("ts", r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"),
    ("date", r"\b\d{4}-\d{2}-\d{2}\b"),
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    ("ip", rf"(?<![\w:])::[fF]{{4}}:{_IPV4}|\b{_IPV4}(?::\d{{1,5}})?\b"
           rf"|\[(?:{_IPV6})\](?::\d{{1,5}})?|(?<![\w:])(?:{_IPV6})(?![\w:])"),
    ("time", r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),
    ("path", rf"(?<![\w/.:~-])(?:~|\.{{1,2}})?/(?:{_SEGMENT}+/)+{_SEGMENT}*"
             rf"|\b[A-Za-z]:\\[^\s\"'<>|]+"
             rf"|\b(?:{_SEGMENT}+/)+{_SEGMENT}*\.[A-Za-z0-9]{{1,8}}\b"),
    ("pod", r"(?<=-)(?=[a-z0-9]*\d)[0-9a-f]{6,10}-[a-z0-9]{5}\b"),
    ("hex", r"\b0[xX][0-9A-Fa-f]+\b"
            r"|\b(?=[0-9A-Fa-f]*[A-Fa-f])(?:(?=[0-9A-Fa-f]*\d)[0-9A-Fa-f]{7,}|[A-Fa-f]{9,})\b"),
    ("id", r"(?<=[A-Za-z]_)(?=[A-Za-z]*\d[A-Za-z]*\d)[A-Za-z0-9]{4,}\b"
           r"|\b(?=[a-z]*\d[a-z]*\d)(?=\d*[a-z]\d*[a-z])[a-z0-9]{7,}\b"),
    ("duration", rf"(?<![\w.])\d+(?:\.\d+)?\s?(?:{_UNITS})\b"),
    ("size", rf"(?<![\w.])\d+(?:\.\d+)?\s?(?:{_SIZES})\b"),
    ("num", r"(?<![\w.])[-+]?\d+(?:\.\d+)*(?!\w)|(?<=[A-Za-z_])\d{3,}(?!\w)"),
)  # fmt: skip
# No pattern starts at whitespace or at a letter inside a word: skipping those positions
# up front makes masking about twice as fast without changing any result.
_GUARD = r"(?:(?<!\w)(?=\S)|(?<=[A-Za-z]_)|(?![A-Za-z_\s]))"
_MASK = re.compile(_GUARD + "(?:" + "|".join(f"(?P<{n}>{p})" for n, p in _PATTERNS) + ")")
_BODY = re.compile(_GUARD + "(?:" + "|".join(f"(?P<{n}>{p})" for n, p in _PATTERNS[1:]) + ")")
_DIGIT_RUN = re.compile(r"\d{3,}")
_URL_HOST = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/]*)(.*)$")
_ID_SEGMENT = re.compile(r"\d+|[0-9A-Fa-f-]{7,}")
_FILE_EXT = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
# First segments that make "/a/b" a file path rather than a URL route such as /v1/checkout.
_FS_ROOTS = frozenset(
    ("app", "bin", "boot", "code", "data", "dev", "etc", "home", "lib", "lib64", "mnt", "nix",
     "opt", "private", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var",
     "Users", "Volumes", "workspace")
)  # fmt: skip
# The line of a trace that names the exception (Java/JS/Go: near the top).
_EXCEPTION = re.compile(r"(?:[\w$]+\.)*[\w$]*(?:Exception|Error|Throwable|Panic)\b|panic: |Exception in thread ")
_NOT_EXCEPTION = ("Traceback (", "During handling", "The above exception", "…[")
_REPEATS = re.compile(r"(<\w+>)(?:\s*[,;]\s*\1)+")
_SPACES = re.compile(r"\s+")


def _url(url: str) -> str:
    tail = ""
    while url and url[-1] in ".,;:)]}!":
        url, tail = url[:-1], url[-1] + tail
    base, sep, _query = url.partition("?")
    base = base.split("#", 1)[0]
    match = _URL_HOST.match(base)
    if match is None:
        return url + tail
    scheme, host, path = match.groups()
    return scheme + _BODY.sub(_replace, host) + _route(path) + ("?<query>" if sep else "") + tail


def _route(path: str) -> str:
    """A URL path with its id-like segments (numbers, uuids, hex, 3+ digits) as <id>."""
    return "/".join(
        "<id>" if _DIGIT_RUN.search(s) or (_ID_SEGMENT.fullmatch(s) and any(c.isdigit() for c in s)) else s
        for s in path.split("/")
    )


def _path(text: str) -> str:
    """File paths become <path>; URL routes (/v1/checkout) keep their fixed segments."""
    if text[0] != "/":
        return "<path>"
    segments = text.split("/")
    if segments[1] in _FS_ROOTS or _FILE_EXT.search(segments[-1]):
        return "<path>"
    return _route(text)


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    text = match.group()
    if kind == "url":
        return _url(text)
    if kind == "path":
        return _path(text)
    if kind == "quoted":
        quote, body = text[0], text[1:-1]
        whole = _BODY.fullmatch(body)
        if whole is not None:
            return quote + _replace(whole) + quote
        if _DIGIT_RUN.search(body):
            return quote + _BODY.sub(_replace, body) + quote
        return text  # an identifier such as 'currency': it names the error
    return f"<{kind}>"


@lru_cache(maxsize=16384)
def template(message: str) -> str:
    """The message with ids, numbers, addresses, paths and times replaced by placeholders."""
    masked = _MASK.sub(_replace, message[:MAX_TEMPLATE_INPUT])
    masked = _REPEATS.sub(r"\1, …", masked)
    return _SPACES.sub(" ", masked).strip()


def exception_line(extra: list[str]) -> str | None:
    """The line of a record's trace that names its exception, if any.

    Python: the last unindented line after ``Traceback (most recent call last):`` (the
    final exception of a chain). Java, JavaScript, Go: the first unindented line near
    the top that names an ...Exception/...Error or a panic.
    """
    if not extra:
        return None
    if any(line.startswith("Traceback (") for line in extra):
        return _python_exception(extra)
    for line in extra[:6]:
        if line and not line[0].isspace() and _EXCEPTION.match(line):
            return line
    return None


def _python_exception(extra: list[str]) -> str | None:
    """The first unindented line after the last frame: the final exception, even when its message
    runs over several lines."""
    last = max((i for i, line in enumerate(extra) if line.startswith('  File "')), default=-1)
    for line in extra[last + 1 :]:
        if line and not line[0].isspace() and not line.startswith(_NOT_EXCEPTION):
            return line
    for line in reversed(extra):
        if line and not line[0].isspace() and not line.startswith(_NOT_EXCEPTION):
            return line
    return None


_LIBRARY = re.compile(
    r"site-packages|dist-packages|node_modules|/usr/lib/|/usr/local/go/|\bruntime/|<frozen |node:internal|"
    r"\bat (?:java|javax|jdk|sun|kotlin|scala|org\.springframework|org\.apache|io\.netty|com\.sun)\.|"
    r"\(internal/|^\s*(?:java|javax|jdk|sun)\.|^net/http\.|^runtime\."
)
_FRAME = re.compile(r'\s+File "|\s+at |\t/|\s+/|[\w./*()-]+\.go:\d+')


def top_frame(extra: list[str]) -> str | None:
    """The innermost frame of a trace that is not in a library or the runtime (an in-repo frame).

    Python lists the innermost frame last; Java, JavaScript and Go first, and in a Java
    ``Caused by:`` chain the root cause's frames come last, so they are looked at first.
    """
    lines = extra[:MAX_TRACE_LINES]
    if any(line.startswith('  File "') for line in lines):
        frames = _own_frames(lines)
        return frames[-1][:300] if frames else None
    cause = max((i for i, line in enumerate(lines) if line.startswith("Caused by:")), default=0)
    frames = _own_frames(lines[cause:]) or _own_frames(lines)
    return frames[0][:300] if frames else None


def _own_frames(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if _FRAME.match(line) and not _LIBRARY.search(line)]


def signature_of(message: str, extra: list[str]) -> str:
    """What groups a record: its exception's template when it has a trace, else its message's.

    ``Unhandled exception on POST /v1/checkout`` and ``[Job 42]: exception raised`` both
    with a ``KeyError: 'currency'`` trace are one failure, ``KeyError: 'currency'``; the
    same generic message over a ``PaymentDeclined`` trace is another.
    """
    exc = exception_line(extra)
    return (template(exc[:MAX_TEMPLATE_INPUT]) if exc else "") or template(message)


@dataclass(slots=True)
class Signature:
    """All records that share one signature (template, plus exception when traced)."""

    template: str
    count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    levels: dict[str, int] = field(default_factory=dict)
    sample: str = ""
    trace: list[str] = field(default_factory=list)
    sample_source: str = ""
    sample_line: int = 0
    sample_ts: datetime | None = None
    buckets: dict[int, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # up to MAX_EXAMPLES distinct raw messages

    def note_example(self, message: str) -> None:
        if len(self.examples) < MAX_EXAMPLES:
            text = message[:MAX_EXAMPLE_CHARS]
            if text not in self.examples:
                self.examples.append(text)

    def trace_text(self, max_lines: int = MAX_TRACE_LINES) -> str:
        """The sample message and its continuation lines, one per line."""
        return "\n".join([self.sample, *self.trace[:max_lines]])


class SignatureIndex:
    """Groups records by template, tracking counts, first/last seen and a sample trace.

    With ``bucket_seconds`` each signature also counts its records per time bucket
    (bucket number = epoch seconds // bucket_seconds). Past ``max_signatures`` distinct
    templates, further new ones are counted together under ``OTHER``.
    """

    def __init__(self, *, bucket_seconds: int | None = None, max_signatures: int = 5000):
        self.bucket_seconds = bucket_seconds
        self.max_signatures = max_signatures
        self.signatures: dict[str, Signature] = {}

    def __len__(self) -> int:
        return len(self.signatures)

    def add(self, record: Record, epoch: float | None = None) -> Signature:
        key = signature_of(record.message, record.extra) or "<empty message>"
        sig = self.signatures.get(key)
        if sig is None:
            if len(self.signatures) >= self.max_signatures:
                key = OTHER
                sig = self.signatures.get(key)
            if sig is None:
                sig = self.signatures[key] = Signature(key)
        sig.count += 1
        sig.levels[record.level] = sig.levels.get(record.level, 0) + 1
        sig.note_example(record.message)
        self._sample(sig, record)
        self._count_time(sig, record.ts, epoch)
        return sig

    @staticmethod
    def _sample(sig: Signature, record: Record) -> None:
        ts = record.ts
        # the sample is the earliest record that carries a trace (else the earliest record)
        if bool(record.extra) != bool(sig.trace):
            better = bool(record.extra)
        else:
            better = ts is not None and (sig.sample_ts is None or ts < sig.sample_ts)
        if better or not sig.sample:
            sig.sample, sig.trace = record.message, record.extra[:MAX_TRACE_LINES]
            sig.sample_source, sig.sample_line, sig.sample_ts = record.source, record.line, ts

    def _count_time(self, sig: Signature, ts: datetime | None, epoch: float | None) -> None:
        if ts is not None:
            if sig.first_seen is None or ts < sig.first_seen:
                sig.first_seen = ts
            if sig.last_seen is None or ts > sig.last_seen:
                sig.last_seen = ts
            if self.bucket_seconds:
                if epoch is None:
                    epoch = ts.timestamp()
                bucket = int(epoch // self.bucket_seconds)
                sig.buckets[bucket] = sig.buckets.get(bucket, 0) + 1

    def ranked(self) -> list[Signature]:
        """Signatures by count, most first; ties by first seen."""
        return sorted(
            self.signatures.values(),
            key=lambda s: (-s.count, s.first_seen is None, s.first_seen or datetime.min),
        )


def group_records(records: list[Record] | tuple[Record, ...]) -> list[Signature]:
    """Group ``records`` by template; most frequent first."""
    index = SignatureIndex()
    for record in records:
        index.add(record)
    return index.ranked()
