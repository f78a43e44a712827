"""Mapping deployed frame paths onto repository files by longest path-suffix match."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools._result import clip
from tools.code._frames import Frame

__all__ = ["FileIndex", "Mapping", "library_reason", "map_frames"]


@dataclass
class Mapping:
    repo_path: str | None
    reason: str | None = None
    candidates: list[str] | None = None


class FileIndex:
    """Repository files indexed by file name, for suffix matching of deployed paths."""

    def __init__(self, paths: list[str]) -> None:
        self._by_name: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for path in paths:
            parts = tuple(p for p in path.split("/") if p)
            if parts:
                self._by_name[parts[-1]].append(parts)

    def match(self, components: list[str]) -> Mapping:
        """The repo file sharing the longest trailing run of path components.

        Ties go to the shallowest file when exactly one is shallowest; otherwise
        the frame is reported as ambiguous rather than guessed.
        """
        if not components:
            return Mapping(None, "the frame has no file path")
        options = self._by_name.get(components[-1], [])
        if not options:
            return Mapping(None, "no file with this name in the repo")
        scored: list[tuple[int, tuple[str, ...]]] = []
        for parts in options:
            score = 0
            for mine, theirs in zip(reversed(parts), reversed(components), strict=False):
                if mine != theirs:
                    break
                score += 1
            scored.append((score, parts))
        best = max(score for score, _ in scored)
        top = [parts for score, parts in scored if score == best]
        if len(top) > 1:
            shallowest = min(len(parts) for parts in top)
            narrowed = [parts for parts in top if len(parts) == shallowest]
            if len(narrowed) == 1:
                top = narrowed
            else:
                names = sorted("/".join(parts) for parts in top)
                return Mapping(
                    None,
                    f"ambiguous: {len(names)} repo files end with '{'/'.join(components[-best:])}'",
                    names[:5],
                )
        return Mapping("/".join(top[0]))


def library_reason(frame: Frame) -> str:
    """Why a library/runtime frame is not mapped into the repo."""
    if frame.language == "java":
        return "JDK or third-party class" if frame.line is not None else "no line number"
    path = frame.path
    for marker, label in (
        ("site-packages", "installed package (site-packages)"),
        ("dist-packages", "installed package (dist-packages)"),
        ("node_modules", "third-party module (node_modules)"),
        ("/pkg/mod/", "Go module cache"),
        ("node:", "Node.js runtime"),
    ):
        if marker in path:
            return label
    if frame.language == "go":
        return "Go standard library (GOROOT)"
    if frame.language == "python":
        return "Python standard library or generated code"
    return "runtime or library code"


def map_frames(
    frames: list[Frame],
    index: FileIndex,
    read_line: Callable[[str, int], str | None],
) -> list[dict[str, Any]]:
    """Frames (depth order) as result rows: the first row is the innermost frame."""
    rows: list[dict[str, Any]] = []
    for depth, frame in enumerate(frames):
        mapping = Mapping(None, library_reason(frame)) if frame.library else index.match(frame.components)
        row: dict[str, Any] = {
            "language": frame.language,
            "function": frame.function,
            "path": frame.path,
            "line": frame.line,
            "repo_path": mapping.repo_path,
            "source": None,
            "innermost": depth == 0,
        }
        if frame.column is not None:
            row["column"] = frame.column
        if mapping.repo_path and frame.line:
            source = read_line(mapping.repo_path, frame.line)
            if source is None:
                row["note"] = "line is past the end of the repo file (deployed version differs?)"
            else:
                row["source"] = clip(source.strip(), 300)
        if mapping.reason:
            row["note"] = mapping.reason
        if mapping.candidates:
            row["candidates"] = mapping.candidates
        rows.append(row)
    return rows
