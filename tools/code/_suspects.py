"""Ranking the commits behind a failing stack, as the code ran when the error started.

1. The range: the commits between the last good deploy and the bad one (``_deploys``),
   or, without deploy facts, the week before the onset. The running revision (the bad
   deploy, else the newest commit at the onset) is the one blamed.
2. Blame at that revision: each frame's line, ±3 lines around it and the function
   enclosing it (``_blocks``).
3. The range's diffs (``_changes``): hunks inside the failing functions, other changes
   to the failing files, and configuration, dependency and deploy files, with the
   values they set matched against the error text. When the innermost frames run in a
   third-party package (site-packages, node_modules, the Go module cache) and a manifest
   or lock file moved that package's version, the bump is strong evidence: the error is
   raised inside the dependency that changed.
4. Weighing (``_evidence``): inside a known deploy range a commit gains 15, outside it
   counts a quarter; a commit that merely created a file long before the onset counts
   0.2, and says so.
A clear winner is named; otherwise only candidates are, and ``outside_repo`` says
when the trace never enters the repository.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from tools._base import ToolError
from tools._result import clip
from tools.code._blocks import Block, block_named, enclosing_block
from tools.code._changes import (
    KIND_LABELS,
    Bump,
    Change,
    FileChange,
    changed_values,
    dependency_bumps,
    file_kind,
    match_values,
    package_matches,
    read_changes,
    unquote_path,
)
from tools.code._deploys import DeployFacts, DeployRange, resolve_range
from tools.code._evidence import (
    CODE_VALUE_WEIGHT,
    CONFIG_VALUE_WEIGHT,
    CONFIG_WEIGHT,
    WINDOW,
    Candidate,
    Ledger,
    Site,
    block_weight,
    depth_factor,
    describe_age,
    exact_weight,
    short_label,
    site_label,
    window_weight,
)
from tools.code._frames import Frame, path_components
from tools.code._git import BlameLine, GitRepo, parse_blame_porcelain
from tools.code._history import read_log
from tools.code._mapping import FileIndex, RepoView, map_frames

__all__ = ["find_suspects"]

MAX_SITES = 15
MAX_RULED_OUT = 10
MAX_RANGE_COMMITS = 80
MAX_CHANGE_PATHS = 200
MAX_BLOCK_LINES = 120
MAX_READ_BYTES = 2 * 1024 * 1024
WEAK_AGE_SECONDS = 14 * 24 * 3600
OUT_OF_RANGE_FACTOR = 0.25
IN_RANGE_BONUS = 15.0
MAX_WEAK_CHECKS = 20
WEAK_FACTOR = 0.2
CLEAR_MIN_SCORE = 50.0
CLEAR_RATIO = 1.5
CONFIG_KINDS = ("config", "dependency", "deploy")
DEPENDENCY_WEIGHT = 40.0
MAX_PACKAGES = 10
_INSTALL_DIRS = ("site-packages", "dist-packages")
_GO_ESCAPE = re.compile(r"!([a-z])")
_LOCK_FILE = re.compile(r"(?:lock|shrinkwrap)[\w.-]*$|go\.sum$", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_$][\w$]*")
_NETWORK = re.compile(
    r"connection refused|connection reset|connection aborted|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|"
    r"ENOTFOUND|EAI_AGAIN|getaddrinfo|name or service not known|nodename nor servname|no such host|"
    r"temporary failure in name resolution|could not resolve|UnknownHostException|ConnectException|"
    r"SocketTimeoutException|timed? ?out|deadline exceeded|certificate verify|x509|SSL|TLS|handshake|"
    r"no route to host|network is unreachable|broken pipe|RemoteDisconnected|502 Bad Gateway|503 Service",
    re.IGNORECASE,
)


class RevReader:
    """Files as they were at a revision (or at any commit), read through git, size-bounded, cached."""

    def __init__(self, git: GitRepo, rev: str) -> None:
        self.git = git
        self.rev = rev
        self._cache: dict[tuple[str, str], list[str] | None] = {}

    def lines(self, path: str, sha: str | None = None) -> list[str] | None:
        key = (sha or self.rev, path)
        if key not in self._cache:
            self._cache[key] = self._read(*key)
        return self._cache[key]

    def text(self, path: str) -> str | None:
        lines = self.lines(path)
        return None if lines is None else "\n".join(lines)

    def _read(self, sha: str, path: str) -> list[str] | None:
        spec = f"{sha}:./{path}"
        try:
            size = int(self.git.git("cat-file", "-s", spec).strip() or 0)
            if size > MAX_READ_BYTES:
                return None
            return self.git.git("cat-file", "blob", spec).splitlines()
        except (ValueError, ToolError):  # a missing path at that commit, or an unreadable object
            return None


def short_name(function: str | None) -> str | None:
    names = _NAME.findall(function or "")
    return names[-1] if names else None


# --- sites: the failing frames in the repository ---------------------------------


def _collect_sites(frames: list[Frame], view: RepoView, reader: RevReader) -> tuple[list[Site], list[dict[str, Any]]]:
    rows = map_frames(frames, view.index, lambda _path, _line: "", view)
    sites: list[Site] = []
    seen: set[tuple[str, int]] = set()
    for row in rows:
        if not row["repo_path"] or not row["line"] or (row["repo_path"], row["line"]) in seen:
            continue
        seen.add((row["repo_path"], row["line"]))
        site = Site(len(sites), row["repo_path"], row["line"], row["function"], line_exact=row.get("line_exact", True))
        site.block = _site_block(site, reader)
        sites.append(site)
        if len(sites) >= MAX_SITES:
            break
    return sites, rows


def _site_block(site: Site, reader: RevReader) -> Block | None:
    lines = reader.lines(site.file)
    if lines is None:
        return None
    if site.line_exact:
        return enclosing_block(site.file, lines, site.line)
    name = short_name(site.function)
    return block_named(site.file, lines, name) if name else None


# --- blame at the running revision ------------------------------------------------


def _ranges(site: Site, count: int) -> list[list[int]]:
    ranges: list[list[int]] = []
    if site.line_exact and site.line <= count:
        ranges.append([max(1, site.line - WINDOW), min(count, site.line + WINDOW)])
    if site.block is not None:
        anchor = site.line if site.line_exact else site.block.start
        low = max(site.block.start, anchor - MAX_BLOCK_LINES)
        high = min(site.block.end, anchor + MAX_BLOCK_LINES, count)
        if low <= high:
            ranges.append([low, high])
    return ranges


def _merge(ranges: list[list[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def _blame_file(
    git: GitRepo, reader: RevReader, path: str, sites: list[Site], skipped: list[str]
) -> dict[int, BlameLine]:
    count = len(reader.lines(path) or [])
    ranges: list[list[int]] = []
    for site in sites:
        if site.line_exact and site.line > count:
            skipped.append(f"{path}:{site.line} is past the end of the file at the onset revision ({count} lines)")
            continue
        ranges.extend(_ranges(site, count))
    merged = _merge(ranges)
    if not merged:
        return {}
    options = [arg for low, high in merged for arg in ("-L", f"{low},{high}")]
    out = git.git("blame", "--porcelain", *options, reader.rev, "--", path)
    return {item.line: item for item in parse_blame_porcelain(out)}


def _candidate(ledger: Ledger, item: BlameLine) -> Candidate:
    return ledger.get(item.sha, item.author, item.date, item.epoch, item.summary)


def _score_lines(ledger: Ledger, sites: list[Site], blamed: dict[tuple[str, int], BlameLine]) -> None:
    """Exact lines and ±3 windows: each blamed line counts once, at the highest weight any frame gives it."""
    best: dict[tuple[str, int], tuple[float, Site, int]] = {}
    for site in (s for s in sites if s.line_exact):
        for offset in range(-WINDOW, WINDOW + 1):
            key = (site.file, site.line + offset)
            if key not in blamed:
                continue
            weight = exact_weight(site.depth) if offset == 0 else window_weight(site.depth, abs(offset))
            if key not in best or weight > best[key][0]:
                best[key] = (weight, site, abs(offset))
    for key, (weight, site, distance) in best.items():
        cand = _candidate(ledger, blamed[key])
        if distance == 0:
            cand.add("line", weight, f"last changed {site.file}:{site.line}, {site_label(site)}")
            cand.lines.insert(0, f"{site.file}:{site.line}")
        else:
            cand.add("near", weight, None)
            cand.windows[site.depth] = cand.windows.get(site.depth, 0) + 1
            cand.lines.append(f"{key[0]}:{key[1]}")
    by_depth = {site.depth: site for site in sites}
    for cand in ledger.by_sha.values():
        for depth, count in sorted(cand.windows.items()):
            site = by_depth[depth]
            cand.reasons.append(
                f"last changed {count} line(s) within ±{WINDOW} of {site.file}:{site.line} ({short_label(site)})"
            )


def _block_reason(site: Site, how: str) -> str:
    assert site.block is not None
    return f"{how} {site.block.name} ({site.file}:{site.block.start}-{site.block.end}), around {short_label(site)}"


def _score_blocks(ledger: Ledger, sites: list[Site], blamed: dict[tuple[str, int], BlameLine]) -> None:
    """Lines of the enclosing function beyond the ±3 window: once per commit and frame."""
    for site in sites:
        if site.block is None:
            continue
        for number in range(site.block.start, site.block.end + 1):
            item = blamed.get((site.file, number))
            if item is None or (site.line_exact and abs(number - site.line) <= WINDOW):
                continue
            if ledger.once(item.sha, site.depth, "block"):
                reason = _block_reason(site, "last changed lines of the function")
                _candidate(ledger, item).add("block", block_weight(site.depth), reason)


# --- the packages the error is raised in ------------------------------------------


def frame_package(frame: Frame) -> str | None:
    """The third-party package a frame runs in: the directory under site-packages/dist-packages or
    node_modules (``@scope/pkg`` whole), or the Go module path in the module cache; None otherwise."""
    parts = frame.components or path_components(frame.path)
    for index in range(len(parts) - 2, -1, -1):
        part = parts[index]
        if part in _INSTALL_DIRS:
            name = parts[index + 1]
            return name[:-3] if name.endswith(".py") else name
        if part == "node_modules":
            name = parts[index + 1]
            return f"{name}/{parts[index + 2]}" if name.startswith("@") and index + 2 < len(parts) else name
        if part == "mod" and index > 0 and parts[index - 1] == "pkg":
            return _go_module(parts[index + 1 :])
    return None


def _go_module(parts: list[str]) -> str | None:
    for end, part in enumerate(parts):
        if "@" in part:
            path = "/".join([*parts[:end], part.split("@", 1)[0]])
            return _GO_ESCAPE.sub(lambda m: m.group(1).upper(), path)  # the cache writes 'A' as '!a'
    return None


def raising_packages(frames: list[Frame]) -> list[str]:
    """Third-party packages of the innermost frames, up to the first frame outside any library."""
    found: list[str] = []
    for frame in frames:
        if not frame.library:
            break
        package = frame_package(frame)
        if package and package not in found:
            found.append(package)
        if len(found) >= MAX_PACKAGES:
            break
    return found


# --- the range's diffs --------------------------------------------------------------


def _change_paths(commits: list[dict[str, Any]], sites: list[Site], error_text: str) -> list[str]:
    paths = dict.fromkeys(site.file for site in sites)
    for commit in commits:
        for path in map(unquote_path, commit["files"]):
            kind = file_kind(path)
            if kind in CONFIG_KINDS or (kind == "code" and error_text):
                paths[path] = None
    return list(paths)[:MAX_CHANGE_PATHS]


def _touched_blocks(path: str, change: FileChange, lines: list[str] | None) -> set[str]:
    names: set[str] = set()
    if not lines:
        return names
    for hunk in change.hunks[:20]:
        for number in list(hunk.new_lines())[:4]:
            block = enclosing_block(path, lines, min(number, len(lines)))
            if block:
                names.add(block.name)
    return names


def _change_candidate(ledger: Ledger, change: Change) -> Candidate:
    cand = ledger.get(change.sha, change.author, change.date, change.epoch, change.subject)
    cand.in_range = True
    return cand


def _score_change_sites(ledger: Ledger, change: Change, sites: list[Site], reader: RevReader) -> None:
    touched: dict[str, set[str]] = {}  # functions the change touched, per file (several sites may share one)
    for site in sites:
        found = change.files.get(site.file)
        if found is None or found.deleted:
            continue
        if site.file not in touched:
            touched[site.file] = set(_touched_blocks(site.file, found, reader.lines(site.file, change.sha)))
        names = touched[site.file]
        if site.block is not None and site.block.name in names:
            if ledger.once(change.sha, site.depth, "block"):
                reason = _block_reason(site, "changed the function")
                _change_candidate(ledger, change).add("block", block_weight(site.depth, changed=True), reason)
        elif ledger.once(change.sha, -1, f"file:{site.file}"):
            cand = _change_candidate(ledger, change)
            cand.add("file", 5.0 * depth_factor(site.depth), f"changed {site.file} ({short_label(site)}) elsewhere")
            cand.files.append(site.file)


def _score_bumps(ledger: Ledger, change: Change, reader: RevReader, packages: list[str]) -> None:
    """A manifest change that moved the version of the package the error is raised in: strong evidence.

    The manifest a person edits is named before the lock file that follows it."""
    for path, found in sorted(change.files.items(), key=lambda item: _LOCK_FILE.search(item[0]) is not None):
        if file_kind(path) != "dependency" or found.deleted:
            continue
        before = reader.lines(path, change.parents[0]) if change.parents else None
        for bump in dependency_bumps(found, reader.lines(path, change.sha), before):
            module = next((p for p in packages if package_matches(bump.package, p)), None)
            if module and ledger.once(change.sha, -3, f"bump:{bump.package.lower()}"):
                _add_bump(_change_candidate(ledger, change), bump, module)


def _add_bump(cand: Candidate, bump: Bump, module: str) -> None:
    where = f"{bump.path}:{bump.line}"
    cand.add("dependency", DEPENDENCY_WEIGHT, f"{bump.describe()} in {where}; the error is raised inside {module}")
    if where not in cand.lines:
        cand.lines.insert(0, where)


def _score_change_values(ledger: Ledger, change: Change, error_text: str) -> None:
    for path, found in change.files.items():
        kind = file_kind(path)
        if kind in CONFIG_KINDS and kind is not None:
            cand = _change_candidate(ledger, change)
            if ledger.once(change.sha, -1, "config"):
                cand.add("config", CONFIG_WEIGHT, f"changed {KIND_LABELS[kind]} {path}")
            if path not in cand.files:
                cand.files.append(path)
            _value_evidence(ledger, cand, kind, path, found, error_text)
        elif kind == "code" and error_text:
            _code_value_evidence(ledger, change, path, found, error_text)


def _code_value_evidence(ledger: Ledger, change: Change, path: str, found: FileChange, error_text: str) -> None:
    """A string or number the error quotes, added or removed (a dropped guard, a renamed key) by the change."""
    removed = [line for hunk in found.hunks for line in hunk.removed]
    for verb, lines in (("added", found.added), ("removed", removed)):
        matched = match_values(changed_values("code", lines), error_text)
        if matched and ledger.once(change.sha, -1, "value"):
            reason = f"{verb} {_quote(matched)} in {path}, which the error text mentions"
            _change_candidate(ledger, change).add("value", CODE_VALUE_WEIGHT, reason)


def _quote(values: list[str]) -> str:
    return ", ".join(f"'{clip(value, 80)}'" for value in values[:3])


def _value_evidence(ledger: Ledger, cand: Candidate, kind: str, path: str, found: FileChange, error_text: str) -> None:
    matched = match_values(changed_values(kind, found.added), error_text)
    if matched and ledger.once(cand.sha, -2, "value"):
        cand.add("value", CONFIG_VALUE_WEIGHT, f"set {_quote(matched)} in {path}; the error text mentions it")


# --- weighing ---------------------------------------------------------------------


def _creators(git: GitRepo, ledger: Ledger, sites: list[Site], reference: float) -> dict[str, str]:
    """Old, out-of-range candidates that are the repository's root commit or created a failing file."""
    files = list(dict.fromkeys(site.file for site in sites))
    found: dict[str, str] = {}
    old = [c for c in ledger.ranked() if not c.in_range and reference - c.epoch > WEAK_AGE_SECONDS]
    for cand in old[:MAX_WEAK_CHECKS]:
        if not git.git("log", "-1", "--no-walk", "--format=%P", cand.sha).strip():
            found[cand.sha] = "the repository's initial commit"
            continue
        out = git.git("show", "--format=", "--name-only", "--diff-filter=A",
                      "--relative", cand.sha, "--", *files)  # fmt: skip
        created = [line for line in out.splitlines() if line.strip()]
        if created:
            found[cand.sha] = f"the commit that created {created[0]}"
    return found


def _weigh(ledger: Ledger, span: DeployRange, creators: dict[str, str], reference: float) -> None:
    for cand in ledger.by_sha.values():
        if span.kind == "deploy" and cand.in_range:
            cand.add("range", IN_RANGE_BONUS, f"new in the failing deploy ({span.label})")
        elif span.kind == "deploy":
            cand.score *= OUT_OF_RANGE_FACTOR
            cand.reasons.append(f"committed before the deploy range {span.label}: already ran in the last good deploy")
        age = reference - cand.epoch
        if cand.sha in creators and not cand.in_range and age > WEAK_AGE_SECONDS:
            cand.score *= WEAK_FACTOR
            cand.weak = (
                f"{creators[cand.sha]} ({describe_age(age)} before the failure) wrote these lines "
                "long before the failure: weak evidence on its own"
            )
            cand.reasons.append(cand.weak)


def _split(ranked: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
    """File-only commits are ruled out when a commit touched the failing lines or functions."""
    if not ranked or not ranked[0].evidence & {"line", "near", "block", "value", "dependency"}:
        return ranked, []
    kept = [c for c in ranked if c.evidence - {"file", "range"}]
    return kept, [c for c in ranked if not c.evidence - {"file", "range"}]


def _ruled_out(
    git: GitRepo, rev: str, kept: list[Candidate], dropped: list[Candidate], sites: list[Site]
) -> list[dict[str, Any]]:
    rows = [_ruled_row(c.sha, c.author, c.date, c.subject, c.files) for c in dropped]
    if kept and sites:
        files = list(dict.fromkeys(site.file for site in sites))
        known = {c.sha for c in kept} | {c.sha for c in dropped}
        for commit in read_log(
            git, "--no-merges", f"--max-count={MAX_RULED_OUT * 3}", f"{kept[0].sha}..{rev}", "--", *files
        ):
            if commit["sha"] not in known:
                rows.append(
                    _ruled_row(commit["sha"], commit["author"], commit["date"], commit["subject"], commit["files"])
                )
    return rows[:MAX_RULED_OUT]


def _ruled_row(sha: str, author: str, date: str, subject: str, files: list[str]) -> dict[str, Any]:
    reason = f"touched {', '.join(dict.fromkeys(files))} but not the failing lines"
    return {
        "sha": sha,
        "short_sha": sha[:7],
        "subject": subject,
        "author": author,
        "date": date,
        "files": files,
        "reason": reason,
        "text": clip(f"{sha[:7]} '{subject}': {reason}", 300),
    }


def outside_repo(rows: list[dict[str, Any]], in_repo: int, ranked: list[Candidate], error_text: str) -> dict[str, Any]:
    """Whether the cause likely lies outside the repository (dependencies, runtime, network)."""
    if in_repo:
        return {"likely": False, "reason": f"{in_repo} frame(s) map to files in the repository"}
    hit = next((c for c in ranked if c.evidence & {"value", "dependency"} and c.in_range), None)
    if hit:
        what = "the version of a package the error is raised in" if "dependency" in hit.evidence else ""
        reason = f"no frame is in the repository, but {hit.sha[:7]} '{hit.subject}' changed "
        return {"likely": False, "reason": reason + (what or "a value the error mentions")}
    network = _NETWORK.search(error_text)
    failure = f"the error is a connection/DNS/TLS failure ('{network.group(0)}')" if network else ""
    if rows:
        notes = sorted({str(row.get("note")) for row in rows if row.get("note")})
        reason = "no frame maps into the repository: " + "; ".join(notes[:4])
        return {"likely": True, "reason": reason + (f"; {failure}" if failure else "")}
    if network:
        return {"likely": True, "reason": f"{failure} and the trace has no frame in the repository"}
    return {"likely": False, "reason": "the text has no stack frames to place the error"}


def verdict(ranked: list[Candidate], outside: dict[str, Any], span: DeployRange) -> tuple[bool, str]:
    """Whether the top candidate is a clear winner, and why (not)."""
    if not ranked:
        return False, "no candidate"
    top = ranked[0]
    if outside["likely"]:
        return False, "the cause is likely outside the repository"
    if span.kind == "deploy" and not top.in_range:
        return False, (
            f"no commit of the deploy range {span.label} touches the failing code or its configuration; "
            "the cause may be data, traffic or infrastructure"
        )
    if top.weak:
        return False, "the top candidate only wrote the lines long before the failure"
    if top.score < CLEAR_MIN_SCORE:
        return False, f"the top score {top.score:.1f} is below {CLEAR_MIN_SCORE:.0f}"
    if len(ranked) > 1 and top.score < CLEAR_RATIO * ranked[1].score:
        return False, f"{ranked[1].sha[:7]} scores close to the top ({ranked[1].score:.1f} vs {top.score:.1f})"
    return True, "clear winner"


# --- the whole ----------------------------------------------------------------------


def _blame_all(
    git: GitRepo, reader: RevReader, sites: list[Site], skipped: list[str]
) -> dict[tuple[str, int], BlameLine]:
    blamed: dict[tuple[str, int], BlameLine] = {}
    for path in dict.fromkeys(site.file for site in sites):
        lines = _blame_file(git, reader, path, [s for s in sites if s.file == path], skipped)
        blamed.update({(path, number): item for number, item in lines.items()})
    return blamed


def _score_range(
    git: GitRepo,
    ledger: Ledger,
    span: DeployRange,
    sites: list[Site],
    reader: RevReader,
    error_text: str,
    packages: list[str],
) -> list[dict[str, Any]]:
    commits = read_log(git, "--no-merges", f"--max-count={MAX_RANGE_COMMITS}", *span.log_options(), *span.revs())
    paths = _change_paths(commits, sites, error_text)
    changes = read_changes(git, [*span.log_options(), *span.revs()], paths, MAX_RANGE_COMMITS)
    for change in changes:
        _score_change_sites(ledger, change, sites, reader)
        _score_change_values(ledger, change, error_text)
        if packages:
            _score_bumps(ledger, change, reader, packages)
    in_range = {commit["sha"] for commit in commits}
    for cand in ledger.by_sha.values():
        cand.in_range = cand.in_range or cand.sha in in_range
    return commits


def find_suspects(
    git: GitRepo,
    frames: list[Frame],
    onset: datetime | None,
    limit: int,
    deploy: DeployFacts | None = None,
    error_text: str = "",
) -> dict[str, Any]:
    """Ranked suspect commits, ruled-out commits, the range and the revision that ran at the onset."""
    facts = deploy or DeployFacts()
    facts.onset = onset
    span = resolve_range(git, facts)
    rev = span.bad
    head = read_log(git, "-1", "--no-walk", rev)[0]
    tracked = [p for p in git.git("ls-tree", "-r", "--name-only", "-z", rev).split("\x00") if p]
    reader = RevReader(git, rev)
    sites, rows = _collect_sites(frames, RepoView(FileIndex(tracked), reader.text), reader)
    skipped: list[str] = []
    ledger = Ledger()
    blamed = _blame_all(git, reader, sites, skipped)
    _score_lines(ledger, sites, blamed)
    commits = _score_range(git, ledger, span, sites, reader, error_text, raising_packages(frames))
    _score_blocks(ledger, sites, blamed)
    reference = onset.timestamp() if onset else datetime.fromisoformat(head["date"]).timestamp()
    _weigh(ledger, span, _creators(git, ledger, sites, reference), reference)
    ledger.recency(onset.timestamp() if onset else None)
    kept, dropped = _split(ledger.ranked())
    outside = outside_repo(rows, len(sites), kept, error_text)
    clear, why = verdict(kept, outside, span)
    return {
        "revision": {key: head[key] for key in ("sha", "short_sha", "date", "subject")},
        "range": {**span.as_dict(), "commits": len(commits)},
        "sites": sites,
        "blamed": blamed,
        "candidates": [c.as_row() for c in kept[:limit]],
        "clear": clear,
        "confidence": why,
        "outside_repo": outside,
        "ruled_out": _ruled_out(git, rev, kept, dropped, sites),
        "skipped": skipped,
    }
