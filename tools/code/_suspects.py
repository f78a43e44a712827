"""Ranking the commits that last touched a failing stack's lines before an onset.

Weights: the innermost in-repo frame's exact line weighs 100; the exact lines of
outer frames 40, 30, 22.5 … (x0.75 per step outward); lines within ±3 of a frame's
line weigh 4.5/3/1.5 by distance for the innermost frame and half that (decaying
with depth) for outer frames, each blamed line counting once at its highest
weight. Commits made within 3 days before the onset get up to +10, so recency
alone never lifts a commit past one that changed the innermost failing line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tools._base import ToolError
from tools._result import clip
from tools.code._frames import Frame
from tools.code._git import BlameLine, GitRepo, format_git_date, parse_blame_porcelain
from tools.code._history import read_log
from tools.code._mapping import FileIndex, map_frames

__all__ = ["find_suspects"]

WINDOW = 3
MAX_SITES = 15
MAX_RULED_OUT = 10
RECENCY_SECONDS = 3 * 24 * 3600
RECENCY_MAX = 10.0


@dataclass
class Site:
    depth: int
    file: str
    line: int
    function: str | None


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


def exact_weight(depth: int) -> float:
    return 100.0 if depth == 0 else 40.0 * 0.75 ** (depth - 1)


def window_weight(depth: int, distance: int) -> float:
    scale = 1.0 if depth == 0 else 0.5 * 0.75 ** (depth - 1)
    return (WINDOW + 1 - distance) * 1.5 * scale


def _site_label(site: Site) -> str:
    if site.depth == 0:
        return "the innermost frame's line"
    name = f" ({site.function})" if site.function else ""
    return f"the line of outer frame #{site.depth}{name}"


def _short_label(site: Site) -> str:
    if site.depth == 0:
        return "innermost frame"
    return f"outer frame #{site.depth}" + (f", {site.function}" if site.function else "")


def _describe_age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:.0f} hour(s)" if hours < 48 else f"{hours / 24:.1f} days"


def _blame_file(git: GitRepo, rev: str, path: str, sites: list[Site], skipped: list[str]) -> dict[int, BlameLine]:
    content = git.git("cat-file", "blob", f"{rev}:{path}")
    count = len(content.splitlines())
    ranges: list[list[int]] = []
    for site in sites:
        if site.line > count:
            skipped.append(f"{path}:{site.line} is past the end of the file at the onset revision ({count} lines)")
            continue
        ranges.append([max(1, site.line - WINDOW), min(count, site.line + WINDOW)])
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    if not merged:
        return {}
    options = [arg for low, high in merged for arg in ("-L", f"{low},{high}")]
    out = git.git("blame", "--porcelain", "--no-textconv", *options, rev, "--", path)
    return {item.line: item for item in parse_blame_porcelain(out)}


def _collect_sites(frames: list[Frame], index: FileIndex) -> tuple[list[Site], list[dict[str, Any]]]:
    rows = map_frames(frames, index, lambda _path, _line: "")
    sites: list[Site] = []
    seen: set[tuple[str, int]] = set()
    for row in rows:
        if not row["repo_path"] or not row["line"]:
            continue
        key = (row["repo_path"], row["line"])
        if key in seen:
            continue
        seen.add(key)
        sites.append(Site(len(sites), row["repo_path"], row["line"], row["function"]))
        if len(sites) >= MAX_SITES:
            break
    return sites, rows


def find_suspects(git: GitRepo, frames: list[Frame], onset: datetime | None, limit: int) -> dict[str, Any]:
    """Ranked suspect commits, ruled-out commits and the revision in effect at ``onset``."""
    if onset is not None:
        rev = git.git("rev-list", "-1", f"--before={format_git_date(onset)}", "HEAD").strip()
        if not rev:
            raise ToolError(f"no commit in the repository is older than the onset {onset}")
    else:
        rev = git.resolve_rev("HEAD")
    head = read_log(git, "-1", "--no-walk", rev)[0]
    tracked = [p for p in git.git("ls-tree", "-r", "--name-only", "-z", rev).split("\x00") if p]
    sites, _rows = _collect_sites(frames, FileIndex(tracked))

    skipped: list[str] = []
    blamed: dict[tuple[str, int], BlameLine] = {}
    for path in dict.fromkeys(site.file for site in sites):
        lines = _blame_file(git, rev, path, [s for s in sites if s.file == path], skipped)
        blamed.update({(path, number): item for number, item in lines.items()})

    # Each blamed line counts once, at the highest weight any frame gives it.
    best: dict[tuple[str, int], tuple[float, Site, int]] = {}
    for site in sites:
        for offset in range(-WINDOW, WINDOW + 1):
            key = (site.file, site.line + offset)
            if key not in blamed:
                continue
            weight = exact_weight(site.depth) if offset == 0 else window_weight(site.depth, abs(offset))
            if key not in best or weight > best[key][0]:
                best[key] = (weight, site, abs(offset))

    candidates: dict[str, Candidate] = {}
    for key, (weight, site, distance) in best.items():
        item = blamed[key]
        cand = candidates.setdefault(item.sha, Candidate(item.sha, item.author, item.date, item.epoch, item.summary))
        cand.score += weight
        if distance == 0:
            cand.reasons.append(f"last changed {site.file}:{site.line}, {_site_label(site)}")
            cand.lines.insert(0, f"{site.file}:{site.line}")
        else:
            cand.windows[site.depth] = cand.windows.get(site.depth, 0) + 1
            cand.lines.append(f"{key[0]}:{key[1]}")
    by_depth = {site.depth: site for site in sites}
    for cand in candidates.values():
        for depth, count in sorted(cand.windows.items()):
            site = by_depth[depth]
            cand.reasons.append(
                f"last changed {count} line(s) within ±{WINDOW} of {site.file}:{site.line} ({_short_label(site)})"
            )
        if onset is not None:
            age = onset.timestamp() - cand.epoch
            if 0 <= age <= RECENCY_SECONDS:
                cand.score += RECENCY_MAX * (1 - age / RECENCY_SECONDS)
                cand.reasons.append(f"committed {_describe_age(age)} before the onset")

    ranked = sorted(candidates.values(), key=lambda c: (-c.score, -c.epoch, c.sha))
    ruled_out: list[dict[str, Any]] = []
    if ranked:
        files = list(dict.fromkeys(site.file for site in sites))
        later = read_log(git, "--no-merges", f"{ranked[0].sha}..{rev}", "--", *files)
        for commit in later:
            if commit["sha"] in candidates:
                continue
            touched = ", ".join(commit["files"]) or ", ".join(files)
            commit["reason"] = f"touched {touched} but not the failing lines"
            ruled_out.append(commit)
            if len(ruled_out) >= MAX_RULED_OUT:
                break
    return {
        "revision": {key: head[key] for key in ("sha", "short_sha", "date", "subject")},
        "sites": sites,
        "blamed": blamed,
        "candidates": [
            {
                "sha": c.sha,
                "short_sha": c.sha[:7],
                "subject": c.subject,
                "author": c.author,
                "date": c.date,
                "score": round(c.score, 1),
                "reasons": c.reasons,
                "lines": c.lines[:10],
            }
            for c in ranked[:limit]
        ],
        "ruled_out": [
            {
                "sha": c["sha"],
                "short_sha": c["short_sha"],
                "subject": c["subject"],
                "author": c["author"],
                "date": c["date"],
                "files": c["files"],
                "reason": c["reason"],
                "text": clip(f"{c['short_sha']} '{c['subject']}': {c['reason']}", 300),
            }
            for c in ruled_out
        ],
        "skipped": skipped,
    }
