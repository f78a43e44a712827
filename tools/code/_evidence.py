"""Evidence against commits, gathered into one ledger and scored.

Per failing frame (``Site``), weighted by depth (the innermost in-repo frame 1.0, outer
frames 0.4, 0.3, 0.225 … ×0.75 per step):

* ``line``   last changed the frame's exact line (blame at the running revision): 100
* ``near``   last changed a line within ±3 of it: 4.5 / 3 / 1.5 by distance (halved for outer frames)
* ``block``  changed the function around the line: a hunk of a commit in range inside a
             function of that name 40; else owning lines of it at the running revision 20
* ``file``   a commit in range changed the frame's file elsewhere: 5
* ``config`` a commit in range changed a configuration file, dependency manifest or
             deploy manifest: 15 once
* ``value``  a value the commit set (the + side) appears in the error text: +60 for
             configuration; a quoted string or number a code change added or removed: +15
* recency    up to +10 for commits within 3 days before the onset.

So a change to the failing line outranks anything nearby, and a changed setting that
the error message quotes outranks a change elsewhere in the failing file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.code._blocks import Block

__all__ = ["Candidate", "Ledger", "Site", "block_weight", "depth_factor", "exact_weight", "window_weight"]

WINDOW = 3
RECENCY_SECONDS = 3 * 24 * 3600
RECENCY_MAX = 10.0
CONFIG_WEIGHT = 15.0
CONFIG_VALUE_WEIGHT = 60.0
CODE_VALUE_WEIGHT = 15.0


@dataclass
class Site:
    depth: int
    file: str
    line: int
    function: str | None
    block: Block | None = None
    line_exact: bool = True


@dataclass
class Candidate:
    sha: str
    author: str
    date: str
    epoch: int
    subject: str
    score: float = 0.0
    reasons: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    windows: dict[int, int] = field(default_factory=dict)
    evidence: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    in_range: bool = False
    weak: str | None = None

    def add(self, kind: str, weight: float, reason: str | None) -> None:
        self.score += weight
        self.evidence.add(kind)
        if reason and reason not in self.reasons:
            self.reasons.append(reason)

    def as_row(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "short_sha": self.sha[:7],
            "subject": self.subject,
            "author": self.author,
            "date": self.date,
            "score": round(self.score, 1),
            "reasons": self.reasons[:8],
            "evidence": sorted(self.evidence),
            "in_range": self.in_range,
            "lines": self.lines[:10],
            "files": self.files[:10],
        }


def depth_factor(depth: int) -> float:
    return 1.0 if depth == 0 else 0.4 * 0.75 ** (depth - 1)


def exact_weight(depth: int) -> float:
    return 100.0 * depth_factor(depth)


def window_weight(depth: int, distance: int) -> float:
    scale = 1.0 if depth == 0 else 0.5 * 0.75 ** (depth - 1)
    return (WINDOW + 1 - distance) * 1.5 * scale


def block_weight(depth: int, changed: bool = False) -> float:
    return (40.0 if changed else 20.0) * depth_factor(depth)


def site_label(site: Site) -> str:
    if site.depth == 0:
        return "the innermost frame's line"
    name = f" ({site.function})" if site.function else ""
    return f"the line of outer frame #{site.depth}{name}"


def short_label(site: Site) -> str:
    if site.depth == 0:
        return "innermost frame"
    return f"outer frame #{site.depth}" + (f", {site.function}" if site.function else "")


def describe_age(seconds: float) -> str:
    hours = seconds / 3600
    if hours < 1:
        return f"{seconds / 60:.0f} minute(s)"
    return f"{hours:.0f} hour(s)" if hours < 48 else f"{hours / 24:.1f} days"


class Ledger:
    """Candidates by sha; each (commit, site, kind) of evidence counts once."""

    def __init__(self) -> None:
        self.by_sha: dict[str, Candidate] = {}
        self._seen: set[tuple[str, int, str]] = set()

    def get(self, sha: str, author: str, date: str, epoch: int, subject: str) -> Candidate:
        if sha not in self.by_sha:
            self.by_sha[sha] = Candidate(sha, author, date, epoch, subject)
        return self.by_sha[sha]

    def once(self, sha: str, depth: int, kind: str) -> bool:
        """True the first time this commit gets this kind of evidence for the site at ``depth``."""
        key = (sha, depth, kind)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def recency(self, onset_epoch: float | None) -> None:
        if onset_epoch is None:
            return
        for cand in self.by_sha.values():
            age = onset_epoch - cand.epoch
            if 0 <= age <= RECENCY_SECONDS:
                cand.score += RECENCY_MAX * (1 - age / RECENCY_SECONDS)
                cand.reasons.append(f"committed {describe_age(age)} before the onset")

    def ranked(self) -> list[Candidate]:
        return sorted(self.by_sha.values(), key=lambda c: (-c.score, -c.epoch, c.sha))
