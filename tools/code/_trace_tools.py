"""map_stack_frames and suspect_commits: from a stack trace to repo lines and commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools._base import SandboxedTool, ToolError
from tools._result import ToolResult, clip
from tools.code._frames import ParsedTrace, parse_trace
from tools.code._git import open_git_repo, parse_iso
from tools.code._mapping import FileIndex, map_frames
from tools.code._repo import list_repo_files, read_text_lines, resolve_repo
from tools.code._suspects import find_suspects

__all__ = [
    "MapStackFramesArgs",
    "MapStackFramesTool",
    "SuspectCommitsArgs",
    "SuspectCommitsTool",
]

_TRACE_DESCRIPTION = "A stack trace or log excerpt (Python, Java, Go or JavaScript/Node frames)."


class MapStackFramesArgs(BaseModel):
    repo: str = Field(..., description="Repository directory (under the allowed roots).")
    trace: str = Field(..., description=_TRACE_DESCRIPTION)


class SuspectCommitsArgs(BaseModel):
    repo: str = Field(..., description="Git repository directory (under the allowed roots).")
    trace: str = Field(..., description=_TRACE_DESCRIPTION)
    onset: str | None = Field(
        default=None,
        description="ISO timestamp of when the error started; commits after it are ignored.",
    )
    limit: int = Field(default=5, ge=1, le=20, description="Most suspects to return (1-20).")


def _parse(trace: str) -> ParsedTrace:
    if not isinstance(trace, str) or not trace.strip():
        raise ToolError("'trace' is empty; paste the stack trace or log excerpt")
    parsed = parse_trace(trace)
    if not parsed.frames:
        raise ToolError(
            "no stack frames found in 'trace'; expected Python ('File \"x.py\", line N'), "
            "Java ('at pkg.Class.method(File.java:N)'), Go ('path/file.go:N') or "
            "JavaScript ('at fn (file.js:N:C)') frames"
        )
    return parsed


class MapStackFramesTool(SandboxedTool):
    name: str = "map_stack_frames"
    description: str = (
        "Parse the frames of a stack trace (Python, Java, Go, JavaScript) and map each to "
        "the file in the repo even when the deployed path prefix differs; shows the source "
        "line at each frame. Frames are listed innermost first (where the error was raised); "
        "library/runtime frames and unmatched files get repo_path null. facts: file, line of "
        "the innermost frame inside the repo."
    )
    args_schema: type[BaseModel] = MapStackFramesArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = MapStackFramesArgs(**arguments)
        repo = resolve_repo(self.sandbox, args.repo)
        parsed = _parse(args.trace)
        files, _git = list_repo_files(self.sandbox, repo, args.repo)
        cache: dict[str, list[str] | None] = {}

        def read_line(rel: str, line: int) -> str | None:
            if rel not in cache:
                try:
                    cache[rel] = read_text_lines(Path(repo, rel), self.sandbox)
                except ToolError:
                    cache[rel] = None
            lines = cache[rel]
            if lines is None:
                return ""
            return lines[line - 1] if 0 < line <= len(lines) else None

        rows = map_frames(parsed.frames, FileIndex(files), read_line)
        in_repo = [row for row in rows if row["repo_path"]]
        facts: dict[str, Any] = {}
        if in_repo:
            facts = {"file": in_repo[0]["repo_path"], "line": in_repo[0]["line"]}
        languages = sorted({row["language"] for row in rows})
        summary = f"{len(rows)} frame(s) ({', '.join(languages)}), {len(in_repo)} in the repo"
        if in_repo:
            first = in_repo[0]
            summary += f"; innermost in repo: {first['repo_path']}:{first['line']}"
            if first["function"]:
                summary += f" in {first['function']}"
        return ToolResult(
            tool=self.name,
            summary=summary,
            data={"errors": parsed.errors, "frames": rows},
            facts=facts,
        )


class SuspectCommitsTool(SandboxedTool):
    name: str = "suspect_commits"
    description: str = (
        "Rank the commits most likely to have caused an error: blames the failing stack "
        "frames' lines (and ±3 lines around them) as the code was at the 'onset' time, "
        "weighting the innermost frame's exact line most, and lists later commits to the "
        "same files that did not touch those lines as ruled out. facts: commit, "
        "commit_subject, file, line, ruled_out."
    )
    args_schema: type[BaseModel] = SuspectCommitsArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = SuspectCommitsArgs(**arguments)
        onset = parse_iso(args.onset, "onset") if args.onset else None
        repo = resolve_repo(self.sandbox, args.repo)
        parsed = _parse(args.trace)
        git = open_git_repo(self.sandbox, repo, args.repo)
        found = find_suspects(git, parsed.frames, onset, args.limit)
        sites = found["sites"]
        frames = []
        for site in sites:
            blame = found["blamed"].get((site.file, site.line))
            frames.append(
                {
                    "depth": site.depth,
                    "file": site.file,
                    "line": site.line,
                    "function": site.function,
                    "source": clip(blame.text.strip(), 300) if blame else None,
                    "last_changed_by": blame.sha[:7] if blame else None,
                }
            )
        candidates = found["candidates"]
        ruled_out = found["ruled_out"]
        revision = found["revision"]
        facts: dict[str, Any] = {}
        if sites:
            facts.update(file=sites[0].file, line=sites[0].line)
        if candidates:
            top = candidates[0]
            facts.update(commit=top["sha"], commit_subject=top["subject"])
            summary = f"top suspect {top['short_sha']} '{top['subject']}' (score {top['score']}): {top['reasons'][0]}"
        elif not sites:
            summary = "no frame of the trace maps to a file in the repo at the onset revision"
        else:
            summary = "no commit could be blamed for the failing lines"
        if ruled_out:
            facts["ruled_out"] = [item["text"] for item in ruled_out]
            summary += f"; {len(ruled_out)} later commit(s) to the same files ruled out"
        return ToolResult(
            tool=self.name,
            summary=summary,
            data={
                "onset": onset.isoformat() if onset else None,
                "revision": revision,
                "frames": frames,
                "candidates": candidates,
                "ruled_out": ruled_out,
                "skipped": found["skipped"],
                "errors": parsed.errors,
            },
            facts=facts,
        )
