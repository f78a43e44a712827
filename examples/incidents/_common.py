"""Shared helpers for the scored incident suite: git history, clocks, log files, traces.

The git plumbing is reused from ``examples/generate_incident.py`` (loaded by path, so
the suite needs no installed package): global/system git config off, fixed identities
and dates, so every case produces the same commit shas on every machine.

Stack-trace shapes below were captured once from the real runtimes on the machine that
wrote this suite (CPython 3.11.7, OpenJDK 17.0.15, Node.js 20.20.2, Go 1.19.8) and are
kept here as templates; generating a case needs only the standard library and git.
"""

from __future__ import annotations

import calendar
import gzip
import importlib.util
import json
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

S = 1000
M = 60 * S
H = 60 * M


def _load_generator() -> ModuleType:
    name = "crewgate_example_generate_incident"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "generate_incident.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_GEN = _load_generator()
CommitSpec = _GEN.CommitSpec
write_repo: Callable[[Path, list[Any]], list[str]] = _GEN.write_repo
line_no: Callable[..., int] = _GEN._line_no
py_frame: Callable[..., str] = _GEN._frame

ALICE = ("Alice Moreau", "alice.moreau@example.com", "+0100")
BEN = ("Ben Adeyemi", "ben.adeyemi@example.com", "+0000")
CHEN = ("Chen Wei", "chen.wei@example.com", "+0800")
DANA = ("Dana Kowalski", "dana.kowalski@example.com", "-0500")
EMIL = ("Emil Sørensen", "emil.sorensen@example.com", "+0100")


# --------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------


class History:
    """Commits built one after another, each holding the full tree."""

    def __init__(self) -> None:
        self.tree: dict[str, str] = {}
        self.commits: list[Any] = []

    def commit(
        self,
        author: tuple[str, str, str],
        when: str,
        subject: str,
        *,
        body: str = "",
        role: str = "",
        tag: str = "",
        files: dict[str, str] | None = None,
        edits: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        if files:
            self.tree.update(files)
        for path, old, new in edits:
            text = self.tree[path]
            if text.count(old) != 1:
                raise AssertionError(f"{path}: expected exactly one occurrence of {old!r}")
            self.tree[path] = text.replace(old, new)
        self.commits.append(CommitSpec(author, when, subject, body, dict(self.tree), role, tag))

    def index(self, role: str) -> int:
        return next(i for i, c in enumerate(self.commits) if c.role == role)

    def tree_of(self, role: str) -> dict[str, str]:
        return dict(self.commits[self.index(role)].tree)


@dataclass
class Repo:
    shas: list[str]
    history: History

    def sha(self, role: str) -> str:
        return self.shas[self.history.index(role)]

    def subject(self, role: str) -> str:
        return str(self.history.commits[self.history.index(role)].subject)


def build_repo(out: Path, history: History) -> Repo:
    return Repo(write_repo(out / "repo", history.commits), history)


# --------------------------------------------------------------------------------------
# Clocks
# --------------------------------------------------------------------------------------


class Clock:
    """Milliseconds since midnight UTC of ``day`` to the timestamp formats stacks print."""

    def __init__(self, day: str) -> None:
        self.day = day
        self.base = calendar.timegm(datetime.strptime(day, "%Y-%m-%d").timetuple()) * S

    def _parts(self, ms: int) -> tuple[str, int]:
        seconds, frac = divmod(ms, S)
        h, rest = divmod(seconds, 3600)
        m, s = divmod(rest, 60)
        return f"{h:02d}:{m:02d}:{s:02d}", frac

    def iso(self, ms: int) -> str:  # 2026-11-21T10:14:03.123Z
        hms, frac = self._parts(ms)
        return f"{self.day}T{hms}.{frac:03d}Z"

    def iso_seconds(self, ms: int) -> str:  # 2026-11-21T10:14:03Z
        return f"{self.day}T{self._parts(ms)[0]}Z"

    def py(self, ms: int) -> str:  # 2026-11-21 10:14:03,123 (Python logging asctime)
        hms, frac = self._parts(ms)
        return f"{self.day} {hms},{frac:03d}"

    def dotted(self, ms: int) -> str:  # 2026-11-21 10:14:03.123 (Logback)
        hms, frac = self._parts(ms)
        return f"{self.day} {hms}.{frac:03d}"

    def gunicorn(self, ms: int) -> str:  # [2026-11-21 10:14:03 +0000]
        return f"[{self.day} {self._parts(ms)[0]} +0000]"

    def clf(self, ms: int) -> str:  # [21/Nov/2026:10:14:03 +0000] (access logs)
        y, mo, d = self.day.split("-")
        month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[int(mo) - 1]
        return f"[{d}/{month}/{y}:{self._parts(ms)[0]} +0000]"

    def nanos(self, ms: int, rnd: random.Random) -> str:  # CRI: 2026-11-21T10:14:03.123456789Z
        hms, frac = self._parts(ms)
        return f"{self.day}T{hms}.{frac:03d}{rnd.randrange(1_000_000):06d}Z"

    def epoch_ms(self, ms: int) -> int:
        return self.base + ms

    def epoch_s(self, ms: int, rnd: random.Random) -> str:  # zap: 1763719243.1234567
        return f"{(self.base + ms) / S:.3f}{rnd.randrange(10000):04d}"

    def when(self, ms: int) -> str:  # a commit date, as CommitSpec wants it
        return f"{self.day}T{self._parts(ms)[0]}"


# --------------------------------------------------------------------------------------
# Log files
# --------------------------------------------------------------------------------------


@dataclass
class Logs:
    """Records per file, written sorted by time; a record may span several lines."""

    records: dict[str, list[tuple[int, int, str]]] = field(default_factory=lambda: defaultdict(list))
    seq: int = 0

    def add(self, name: str, ms: int, text: str) -> None:
        self.seq += 1
        self.records[name].append((ms, self.seq, text))

    def write(self, logs_dir: Path, rotate: dict[str, list[int]] | None = None) -> dict[str, int]:
        """Write every file; ``rotate[name]`` = cut times: older parts go to name.N.gz.

        Returns the number of lines per written file (gz counted decompressed).
        """
        logs_dir.mkdir(parents=True, exist_ok=True)
        counts: dict[str, int] = {}
        for name, items in sorted(self.records.items()):
            items.sort()
            cuts = sorted((rotate or {}).get(name, []))
            parts: list[tuple[str, list[str]]] = []
            bounds = [-1, *cuts, 1 << 62]
            for i in range(len(bounds) - 1):
                lo, hi = bounds[i], bounds[i + 1]
                age = len(bounds) - 2 - i
                target = name if age == 0 else f"{name}.{age}.gz"
                parts.append((target, [t for ms, _, t in items if lo <= ms < hi]))
            for target, texts in parts:
                data = "".join(t + "\n" for t in texts).encode("utf-8")
                counts[target] = data.count(b"\n")
                if target.endswith(".gz"):
                    data = gzip.compress(data, compresslevel=6, mtime=0)
                (logs_dir / target).parent.mkdir(parents=True, exist_ok=True)
                (logs_dir / target).write_bytes(data)
        return counts


def arrivals(rnd: random.Random, start: int, end: int, per_minute: float) -> Iterable[int]:
    """Poisson arrival times (ms) between start and end."""
    t = float(start)
    rate = per_minute / M
    while True:
        t += rnd.expovariate(rate)
        if t >= end:
            return
        yield int(t)


def hexid(rnd: random.Random, n: int = 32) -> str:
    return f"{rnd.getrandbits(n * 4):0{n}x}"


def uuid4(rnd: random.Random) -> str:
    h = hexid(rnd)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


def ip(rnd: random.Random) -> str:
    return f"{rnd.choice((34, 52, 81, 93, 145, 188))}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"


def write_runbooks(out: Path, runbooks: dict[str, str]) -> list[str]:
    target = out / "runbooks"
    target.mkdir(parents=True, exist_ok=True)
    for name, text in runbooks.items():
        (target / name).write_text(text, encoding="utf-8")
    return [f"runbooks/{name}" for name in sorted(runbooks)]


# --------------------------------------------------------------------------------------
# Stack traces, in the shapes the runtimes print (captured; see module docstring)
# --------------------------------------------------------------------------------------


def py_traceback(frames: list[str], exception: str) -> str:
    """``frames`` outermost first (from ``py_frame``), like CPython prints them."""
    return "\n".join(["Traceback (most recent call last):", *frames, exception])


def java_trace(exception: str, frames: list[str], causes: Iterable[tuple[str, list[str], int]] = ()) -> str:
    """A Throwable.printStackTrace(): frames as 'pkg.Class.method(File.java:N)'.

    ``causes``: (exception line, frames, frames in common with the enclosing trace).
    """
    lines = [exception, *(f"\tat {f}" for f in frames)]
    for header, cause_frames, common in causes:
        lines.append(f"Caused by: {header}")
        lines.extend(f"\tat {f}" for f in cause_frames)
        if common:
            lines.append(f"\t... {common} more")
    return "\n".join(lines)


def go_frames(frames: list[tuple[str, str, str]]) -> str:
    """(function line, file path, line[+offset]) -> the two-line Go frames of a goroutine dump."""
    return "\n".join(f"{func}\n\t{path}:{where}" for func, path, where in frames)


def js_stack(error: str, frames: list[tuple[str | None, str, int, int]]) -> str:
    """V8's Error.stack: 'TypeError: msg' then '    at fn (path:line:col)'."""
    lines = [error]
    for func, path, line, col in frames:
        lines.append(f"    at {func} ({path}:{line}:{col})" if func else f"    at {path}:{line}:{col}")
    return "\n".join(lines)


def finish(out: Path, expected: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    expected["log_files"] = [f"logs/{name}" for name in sorted(counts)]
    expected["lines_by_file"] = {f"logs/{name}": counts[name] for name in sorted(counts)}
    expected["total_lines"] = sum(counts.values())
    (out / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return expected


def expected_base(
    *,
    case: str,
    service: str,
    seed: int,
    summary: str,
    repo: Repo | None,
    culprit_role: str | None,
    file: str | None,
    line: int | None,
    signature: str,
    onset: str,
    onset_tolerance_s: int,
    deploy: dict[str, Any] | None,
    decoy_roles: Iterable[str],
    stack: str,
    formats: list[str],
    runbooks: list[str],
) -> dict[str, Any]:
    suspect = None
    if repo is not None and culprit_role is not None:
        suspect = {"sha": repo.sha(culprit_role), "subject": repo.subject(culprit_role)}
    return {
        "case": case,
        "service": service,
        "seed": seed,
        "summary": summary,
        "stack": stack,
        "formats": formats,
        "cause_in_repo": suspect is not None,
        "suspect": suspect,
        "file": file,
        "line": line,
        "signature": signature,
        "onset": onset,
        "onset_tolerance_s": onset_tolerance_s,
        "deploy": deploy,
        "decoys": [{"sha": repo.sha(r), "subject": repo.subject(r)} for r in decoy_roles] if repo else [],
        "runbooks": runbooks,
    }


def utc_iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / S, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def repo_py_frame(
    tree: dict[str, str],
    prefix: str,
    path: str,
    func: str,
    snippet: str,
    expr: str = "",
    *,
    after: str | None = None,
    tilde: int = 0,
) -> tuple[str, int]:
    """A CPython frame for repo file ``path`` deployed under ``prefix``, and its line."""
    lineno = line_no(tree[path], snippet, after)
    source = tree[path].splitlines()[lineno - 1]
    return py_frame(prefix + path, lineno, func, source, expr, tilde), lineno


Noise = tuple[float, Callable[[random.Random, int], tuple[str, str]]]  # (weight, rnd, ms -> (file, line))


def add_noise(logs: Logs, rnd: random.Random, start: int, end: int, per_minute: float, kinds: list[Noise]) -> None:
    """Background lines: at each arrival, one of ``kinds`` picked by weight."""
    weights = [w for w, _ in kinds]
    makers = [m for _, m in kinds]
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    from bisect import bisect_right

    for ms in arrivals(rnd, start, end, per_minute):
        make = makers[min(bisect_right(cumulative, rnd.random() * total), len(makers) - 1)]
        name, text = make(rnd, ms)
        logs.add(name, ms, text)
