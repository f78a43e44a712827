"""grep_code and read_code: searching and reading source files inside a repository."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from tools._base import SandboxedTool, ToolError
from tools._result import ToolResult, clip
from tools.code._repo import (
    WALK_SKIP_DIRS,
    read_repo_text,
    read_text_lines,
    repo_relpath,
    resolve_repo,
)

__all__ = ["GrepCodeArgs", "GrepCodeTool", "ReadCodeArgs", "ReadCodeTool"]

GREP_LINE_CHARS = 240
READ_LINE_CHARS = 500
MAX_READ_LINES = 400
MAX_GREP_FILES = 50_000


class GrepCodeArgs(BaseModel):
    repo: str = Field(..., description="Repository directory (under the allowed roots).")
    pattern: str = Field(..., description="Python regular expression searched line by line.")
    glob: str | None = Field(
        default=None,
        description="Only search files whose repo-relative path or name matches, e.g. '*.py'.",
    )
    limit: int = Field(default=50, ge=1, le=500, description="Most matches to return (1-500).")


class ReadCodeArgs(BaseModel):
    repo: str = Field(..., description="Repository directory (under the allowed roots).")
    path: str = Field(..., description="File path relative to the repo, e.g. 'app/pay.py'.")
    start: int = Field(default=1, ge=1, description="First line to show (1-based).")
    end: int | None = Field(default=None, ge=1, description="Last line to show; at most 400 lines per call.")


def _glob_matches(rel: str, glob: str) -> bool:
    pattern = glob.strip().removeprefix("./")
    if fnmatch.fnmatchcase(rel, pattern):
        return True
    if "/" not in pattern:
        return fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern)
    return PurePosixPath(rel).match(pattern)


class GrepCodeTool(SandboxedTool):
    name: str = "grep_code"
    description: str = (
        "Search a repository's source files for a regular expression. Returns matching "
        "lines as 'path:line:text' plus the total number of matches. Skips .git, binary "
        "files and files over 2 MB. Use 'glob' (e.g. '*.py') to narrow the files."
    )
    args_schema: type[BaseModel] = GrepCodeArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = GrepCodeArgs(**arguments)
        repo = resolve_repo(self.sandbox, args.repo)
        try:
            regex = re.compile(args.pattern)
        except re.error as e:
            raise ToolError(f"invalid regex pattern {args.pattern!r}: {e}") from e
        matches: list[str] = []
        total = 0
        files_with_matches = 0
        files_searched = 0
        seen: set[Path] = set()
        truncated = False
        for path in self.sandbox.walk_files(repo, skip_dirs=WALK_SKIP_DIRS):
            if path in seen or not path.is_relative_to(repo):
                continue
            seen.add(path)
            rel = path.relative_to(repo).as_posix()
            if args.glob and not _glob_matches(rel, args.glob):
                continue
            if files_searched >= MAX_GREP_FILES:
                truncated = True
                break
            text = read_repo_text(path, self.sandbox)
            if text is None:
                continue
            files_searched += 1
            hit = False
            for number, line in enumerate(text.splitlines(), start=1):
                if regex.search(line):
                    total += 1
                    hit = True
                    if len(matches) < args.limit:
                        matches.append(f"{rel}:{number}:{clip(line.strip(), GREP_LINE_CHARS)}")
            files_with_matches += hit
        shown = len(matches)
        summary = f"{total} match{'es' if total != 1 else ''} in {files_with_matches} file(s)"
        if shown < total:
            summary += f" (showing the first {shown})"
        return ToolResult(
            tool=self.name,
            summary=summary,
            data={
                "matches": matches,
                "total": total,
                "files_with_matches": files_with_matches,
                "files_searched": files_searched,
            },
            truncated=truncated or shown < total,
        )


class ReadCodeTool(SandboxedTool):
    name: str = "read_code"
    description: str = (
        "Read numbered lines of a file in a repository (at most 400 lines per call). "
        "'path' is relative to the repo; give 'start' and 'end' to read a window, "
        "e.g. around a line reported by map_stack_frames."
    )
    args_schema: type[BaseModel] = ReadCodeArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = ReadCodeArgs(**arguments)
        repo = resolve_repo(self.sandbox, args.repo)
        rel = repo_relpath(self.sandbox, repo, args.path, want="file")
        lines = read_text_lines(repo / rel, self.sandbox)
        count = len(lines)
        if count == 0:
            return ToolResult(
                tool=self.name, summary=f"{rel} is empty", data={"path": rel, "total_lines": 0, "lines": []}
            )
        if args.start > count:
            raise ToolError(f"'start' {args.start} is past the end of {rel} ({count} lines)")
        end = count if args.end is None else min(args.end, count)
        if end < args.start:
            raise ToolError(f"'end' ({args.end}) is before 'start' ({args.start})")
        clipped = end - args.start + 1 > MAX_READ_LINES
        if clipped:
            end = args.start + MAX_READ_LINES - 1
        width = len(str(end))
        numbered = [f"{n:>{width}}| {clip(lines[n - 1], READ_LINE_CHARS)}" for n in range(args.start, end + 1)]
        summary = f"{rel} lines {args.start}-{end} of {count}"
        if clipped:
            summary += f" (limited to {MAX_READ_LINES} lines per call; continue at {end + 1})"
        return ToolResult(
            tool=self.name,
            summary=summary,
            data={"path": rel, "start": args.start, "end": end, "total_lines": count, "lines": numbered},
            truncated=clipped,
        )
