"""Which commits were new in the failing deploy: the range between the last good rev and the bad one.

The facts that fill it come from the logs (a start-up line's version, build or git sha,
the time a new version started) or from the caller. ``deploy_version`` resolves a tag
(``2.14.0`` → ``v2.14.0``), a branch, or a sha (also inside ``2.14.0+g1a2b3c4`` or
``v2.14.0-3-g1a2b3c4``); ``good_rev``/``bad_rev`` take the same forms; ``deployed_at``
takes the commit that was newest at that time. Without a previous good rev, the release
tag before the bad one is taken as the last good deploy; without any deploy fact, the
commits of the ``WINDOW_DAYS`` before the onset stand in for the range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tools._base import ToolError
from tools.code._git import GitRepo, format_git_date, validate_rev

__all__ = ["DeployFacts", "DeployRange", "resolve_range"]

WINDOW_DAYS = 7
_DESCRIBE_SHA = re.compile(r"(?:^|[-+._])g?([0-9a-f]{7,40})$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass
class DeployFacts:
    good_rev: str | None = None
    bad_rev: str | None = None
    deploy_version: str | None = None
    deployed_at: datetime | None = None
    onset: datetime | None = None

    @property
    def any_deploy(self) -> bool:
        return bool(self.good_rev or self.bad_rev or self.deploy_version or self.deployed_at)


@dataclass
class DeployRange:
    bad: str  # full sha of the code that was running (the revision blamed)
    good: str | None  # full sha of the last good deploy, when known
    kind: str  # "deploy" (good..bad) or "window" (time window before the onset)
    label: str
    since_epoch: int | None = None
    notes: list[str] = field(default_factory=list)

    def revs(self) -> list[str]:
        """``git log`` revision arguments selecting the range's commits."""
        if self.good:
            return [f"^{self.good}", self.bad]
        return [self.bad]

    def log_options(self) -> list[str]:
        if self.good or self.since_epoch is None:
            return []
        return [f"--since={format_git_date(datetime.fromtimestamp(self.since_epoch, UTC))}"]

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "label": self.label,
            "good": self.good,
            "bad": self.bad,
            "notes": self.notes,
        }


def _epoch(git: GitRepo, sha: str) -> int:
    return int(git.git("log", "-1", "--no-walk", "--format=%ct", sha).strip() or 0)


def _at_time(git: GitRepo, moment: datetime, what: str) -> str:
    rev = git.git("rev-list", "-1", f"--before={format_git_date(moment)}", "HEAD").strip()
    if not rev:
        raise ToolError(f"no commit in the repository is older than the {what} {moment}")
    return rev


def _try_resolve(git: GitRepo, rev: str) -> str | None:
    try:
        return git.resolve_rev(validate_rev(rev))
    except ToolError:
        return None


def resolve_version(git: GitRepo, version: str, name: str = "deploy_version") -> str:
    """The commit of a deployed version: a tag (with or without 'v'), a ref, or a sha inside it."""
    text = version.strip()
    if text.startswith("-"):
        validate_rev(text)  # refuses with the usual message
    candidates = [f"refs/tags/{text}", f"refs/tags/v{text}", text]
    match = _DESCRIBE_SHA.search(text.lower())
    if match:
        candidates.append(match.group(1))
    for candidate in candidates:
        if candidate.startswith("refs/tags/v") and text.startswith("v"):
            continue
        sha = _try_resolve(git, candidate)
        if sha:
            return sha
    raise ToolError(
        f"{name} '{clip_text(text)}' matches no tag, branch or commit of this repository; "
        "give the release tag or the commit sha the deploy logged"
    )


def clip_text(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _previous_tag(git: GitRepo, sha: str) -> str | None:
    try:
        tag = git.git("describe", "--tags", "--abbrev=0", f"{sha}^").strip()
    except ToolError:
        return None
    return _try_resolve(git, f"refs/tags/{tag}") if tag and not tag.startswith("-") else None


def _bad_rev(git: GitRepo, facts: DeployFacts) -> tuple[str, str]:
    if facts.bad_rev:
        return resolve_version(git, facts.bad_rev, "bad_rev"), f"bad_rev {clip_text(facts.bad_rev)}"
    if facts.deploy_version:
        return resolve_version(git, facts.deploy_version), f"deploy_version {clip_text(facts.deploy_version)}"
    if facts.deployed_at:
        return _at_time(git, facts.deployed_at, "deploy time"), f"the newest commit at {facts.deployed_at}"
    if facts.onset:
        return _at_time(git, facts.onset, "onset"), "the newest commit at the onset"
    return git.resolve_rev("HEAD"), "HEAD"


def resolve_range(git: GitRepo, facts: DeployFacts) -> DeployRange:
    """The deploy range (or the window before the onset) whose commits are suspects first."""
    bad, bad_label = _bad_rev(git, facts)
    notes = [f"running code: {bad[:7]} ({bad_label})"]
    good = None
    if facts.good_rev:
        good = resolve_version(git, facts.good_rev, "good_rev")
        notes.append(f"last good: {good[:7]} (good_rev {clip_text(facts.good_rev)})")
    elif facts.any_deploy:
        good = _previous_tag(git, bad)
        if good:
            notes.append(f"last good: {good[:7]}, the release tag before the deployed commit")
    if good:
        return DeployRange(bad, good, "deploy", f"{good[:7]}..{bad[:7]}", notes=notes)
    reference = int(facts.onset.timestamp()) if facts.onset else _epoch(git, bad)
    since = reference - WINDOW_DAYS * 24 * 3600
    where = "the onset" if facts.onset else f"{bad[:7]}"
    notes.append(f"no previous deploy known: commits of the {WINDOW_DAYS} days before {where} stand in for the range")
    return DeployRange(bad, None, "window", f"{WINDOW_DAYS} days before {where}", since_epoch=since, notes=notes)
