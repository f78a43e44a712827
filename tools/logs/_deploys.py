"""Deploys and versions named in the logs: start-up lines and deploy markers.

``Starting app version=2.14.0 commit=abc1234``, ``{"msg": "starting", "version": "1.8.2"}``,
``Started Application in 3.2 seconds (… v2.1.0)``, ``Deployed orders 3.8.0 (commit b28649e)``:
a line that says something started, was deployed, released or rolled out, and names a
version or a git sha. ``deploy_of`` reads one record; ``Deploys`` collects them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["MAX_DEPLOYS", "Deploy", "Deploys", "deploy_fields", "deploy_of"]

MAX_DEPLOYS = 50
_MARKER = re.compile(
    r"\b(?:deploy(?:ed|ing|ment)?|releas(?:e|ed|ing)|roll(?:ed )?out|rollout|upgrad(?:e|ed|ing)|"
    r"start(?:ed|ing)?|boot(?:ed|ing)?|listening|running|ready|launch(?:ed|ing)?|version)\b",
)
# A dotted version; whether it counts depends on what precedes it (see _version).
_DOTTED = re.compile(r"v?(\d+\.\d+(?:\.\d+)?(?:[-+][0-9A-Za-z.]*[0-9A-Za-z])?)(?![.\w/])")
_KEYED = re.compile(r"(?:version|ver|release|tag|build)[\"']?\s*[=:]?\s*[\"']?$")
_SHA = re.compile(
    r"(?:commit|sha|rev|revision|build|git)[\"'\w]*?\s*[=:#]?\s*[\"']?([0-9a-f]{7,40})\b|\(([0-9a-f]{7,40})\)"
)
_SHA_WORDS = ("commit", "sha", "rev", "build", "git", "(")
_VERSION_KEYS = ("version", "app_version", "service.version", "release", "build_version")
_SHA_KEYS = ("commit", "sha", "git_sha", "git_commit", "revision", "gitsha", "commit_sha", "build_sha")


@dataclass(slots=True, frozen=True)
class Deploy:
    ts: datetime | None
    version: str | None
    sha: str | None


_FIELD_KEYS = frozenset((*_VERSION_KEYS, *_SHA_KEYS))


def deploy_fields(obj: dict[str, Any]) -> str:
    """``version=… commit=…`` text from a JSON record's own fields (empty when none)."""
    if not (obj.keys() & _FIELD_KEYS):
        return ""
    parts = []
    for names, label in ((_VERSION_KEYS, "version"), (_SHA_KEYS, "commit")):
        for name in names:
            value = obj.get(name)
            if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
                parts.append(f"{label}={str(value)[:64]}")
                break
    return " ".join(parts)


def _has_marker_word(text: str) -> bool:
    """A fast first test (substrings without their first letter, so either case; no regex)."""
    return (
        "tart" in text or "eploy" in text or "ersion" in text or "eleas" in text or "oll" in text
        or "unning" in text or "istening" in text or "eady" in text or "oot" in text or "aunch" in text
        or "pgrad" in text or "TART" in text or "EPLOY" in text
    )  # fmt: skip


def deploy_of(message: str, fields: str = "") -> tuple[str | None, str | None] | None:
    """(version, sha) when ``message`` marks a start-up or deploy that names either, else None."""
    if not _has_marker_word(message):
        return None
    low = message[:400].lower()
    if _MARKER.search(low) is None:
        return None
    text = f"{low} {fields}" if fields else low
    version = _version(text)
    digest = _sha(text)
    if version is None and digest is None:
        return None
    return version, digest


def _version(text: str) -> str | None:
    """The first dotted version after a version word (``version 2.1``, ``version=2.1.0``), with a
    ``v`` (``v2.1``), or of three parts (``2.1.0``); not after a slash, ``=`` or ``@`` (a client's,
    a field's or a package's version)."""
    for found in _DOTTED.finditer(text):
        start = found.start()
        before = text[max(0, start - 24) : start]
        if _KEYED.search(before):
            return found.group(1)
        if before[-1:].isalnum() or before[-1:] in "_./=:@-":
            continue
        if text[start] == "v" or found.group(1).count(".") >= 2:
            return found.group(1)
    return None


def _sha(text: str) -> str | None:
    if not any(word in text for word in _SHA_WORDS):
        return None
    found = _SHA.search(text)
    return (found.group(1) or found.group(2)) if found else None


@dataclass
class Deploys:
    """Deploys in time order, a repeat of the running version (a restart) not counted again.

    When some name a git sha, those without one (a web server's or a library's version at
    start-up) are left out. Tools show the last MAX_DEPLOYS of ``timeline()``; the facts
    come from all of them.
    """

    items: list[Deploy] = field(default_factory=list)

    def add(self, ts: datetime | None, version: str | None, sha: str | None) -> None:
        self.items.append(Deploy(ts, version, sha))

    def timeline(self) -> list[Deploy]:
        items = self.items
        if any(d.sha for d in items):  # "Starting gunicorn 22.0.0" is a component, not a deploy of the code
            items = [d for d in items if d.sha]
        ordered = sorted(items, key=lambda d: (d.ts is None, d.ts or datetime.min))
        out: list[Deploy] = []
        for item in ordered:
            if out and (item.version, item.sha) == (out[-1].version, out[-1].sha):
                continue
            out.append(item)
        return out

    @staticmethod
    def facts(timeline: list[Deploy], onset: datetime | None) -> dict[str, Any]:
        """deploy_version/deploy_sha/deployed_at of the last deploy at or before ``onset``."""
        dated = [d for d in timeline if d.ts is not None]
        before = [d for d in dated if onset is None or (d.ts is not None and d.ts <= onset)]
        if not before:
            return {}
        last = before[-1]
        out: dict[str, Any] = {"deployed_at": last.ts}
        if last.version:
            out["deploy_version"] = last.version
        if last.sha:
            out["deploy_sha"] = last.sha
        earlier = [d for d in before[:-1] if d.version and d.version != last.version]
        if earlier:
            out["previous_version"] = earlier[-1].version
            if earlier[-1].sha:
                out["previous_sha"] = earlier[-1].sha
        return out
