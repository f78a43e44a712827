"""map_stack_frames and suspect_commits: from a stack trace to repo lines and commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools._base import SandboxedTool, ToolError
from tools._result import ToolResult, clip
from tools.code._deploys import DeployFacts
from tools.code._frames import ParsedTrace, parse_trace
from tools.code._git import open_git_repo, parse_iso
from tools.code._mapping import FileIndex, RepoView, map_frames
from tools.code._repo import list_repo_files, read_text_lines, resolve_repo
from tools.code._suspects import find_suspects, outside_repo

__all__ = [
    "MapStackFramesArgs",
    "MapStackFramesTool",
    "SuspectCommitsArgs",
    "SuspectCommitsTool",
]

MAX_MESSAGE_SCAN = 50_000
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
    signature: str | None = Field(
        default=None,
        description="The error signature or message; values a change set that appear in it (a timeout, "
        "a host name, a pool size, a version) make that change a strong suspect.",
    )
    error_text: str | None = Field(
        default=None, description="More error text to match changed values against (optional)."
    )
    good_rev: str | None = Field(
        default=None,
        description="The last deployed revision that worked (version, tag, branch or sha); with bad_rev or "
        "deploy_version, the commits between them are the suspects first.",
    )
    bad_rev: str | None = Field(
        default=None, description="The deployed revision that fails (version, tag, branch or sha)."
    )
    deploy_version: str | None = Field(
        default=None,
        description="The version the failing deploy logged at start-up: a release tag ('2.14.0' or 'v2.14.0'), "
        "a sha, or a describe string ('v2.14.0-3-g1a2b3c4'); the release tag before it is the last good deploy.",
    )
    deployed_at: str | None = Field(
        default=None, description="ISO timestamp of the failing deploy; the newest commit then is what ran."
    )


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

        def read_file(rel: str) -> str | None:
            read_line(rel, 1)
            lines = cache.get(rel)
            return None if lines is None else "\n".join(lines)

        index = FileIndex(files)
        rows = map_frames(parsed.frames, index, read_line, RepoView(index, read_file))
        in_repo = [row for row in rows if row["repo_path"]]
        facts: dict[str, Any] = {}
        if in_repo:
            facts = {"file": in_repo[0]["repo_path"], "line": in_repo[0]["line"]}
        outside = outside_repo(rows, len(in_repo), [], "\n".join(parsed.errors + _message_lines(args.trace)))
        if outside["likely"]:
            facts["outside_repo"] = outside["reason"]
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
            data={
                "errors": parsed.errors,
                "frames": rows,
                "outside_repo": outside,
            },
            facts=facts,
        )


class SuspectCommitsTool(SandboxedTool):
    name: str = "suspect_commits"
    description: str = (
        "Rank the commits most likely to have caused an error. Suspects are first the commits "
        "of the deploy range (good_rev..bad_rev, or the release before deploy_version, or the "
        "deploy at deployed_at; without these, the week before the onset), scored by how close "
        "they come to the failing frames (the exact line, the function around it, the file; "
        "the innermost frame most) and by configuration, dependency and deploy files they "
        "changed, above all when the error text (signature, trace) quotes a value they set. "
        "Blames the code that ran at the onset; an old commit that only created the file is "
        "weak evidence. facts: commit and commit_subject only for a clear winner, else "
        "candidates; file, line, ruled_out, outside_repo when the cause is likely not in the repo."
    )
    args_schema: type[BaseModel] = SuspectCommitsArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = SuspectCommitsArgs(**arguments)
        onset = parse_iso(args.onset, "onset") if args.onset else None
        repo = resolve_repo(self.sandbox, args.repo)
        parsed = _parse_lenient(args.trace)
        git = open_git_repo(self.sandbox, repo, args.repo)
        deploy = DeployFacts(
            good_rev=args.good_rev,
            bad_rev=args.bad_rev,
            deploy_version=args.deploy_version,
            deployed_at=parse_iso(args.deployed_at, "deployed_at") if args.deployed_at else None,
        )
        error_text = _error_text(args, parsed)
        found = find_suspects(git, parsed.frames, onset, args.limit, deploy, error_text)
        return ToolResult(
            tool=self.name,
            summary=_summary(found),
            data={
                "onset": onset.isoformat() if onset else None,
                "revision": found["revision"],
                "range": found["range"],
                "frames": _frame_rows(found),
                "candidates": found["candidates"],
                "confidence": found["confidence"],
                "outside_repo": found["outside_repo"],
                "ruled_out": found["ruled_out"],
                "skipped": found["skipped"],
                "errors": parsed.errors,
            },
            facts=_facts(found),
        )


def _parse_lenient(trace: str) -> ParsedTrace:
    """Frames when there are any; a trace-less error message still lets config changes be matched."""
    if not isinstance(trace, str) or not trace.strip():
        raise ToolError("'trace' is empty; paste the stack trace or log excerpt")
    return parse_trace(trace)


def _error_text(args: SuspectCommitsArgs, parsed: ParsedTrace) -> str:
    """What the error says: the signature, extra text, and the trace's message lines (not its frames)."""
    parts = [args.signature or "", args.error_text or "", *parsed.errors]
    if not parsed.frames:
        parts.append(args.trace[:2000])
    else:
        parts.extend(_message_lines(args.trace))
    return clip("\n".join(dict.fromkeys(p for p in parts if p)), 8000)


def _message_lines(trace: str) -> list[str]:
    """Unindented lines of a trace other than headers: 'KeyError: …', 'Error: …', 'panic: …'."""
    lines = []
    for line in trace[:MAX_MESSAGE_SCAN].splitlines():
        if line[:1].isspace() or not line.strip() or line.startswith(("Traceback", "goroutine ", "File ")):
            continue
        lines.append(line.strip()[:500])
        if len(lines) >= 20:
            break
    return lines


def _frame_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    frames = []
    for site in found["sites"]:
        blame = found["blamed"].get((site.file, site.line))
        row = {
            "depth": site.depth,
            "file": site.file,
            "line": site.line,
            "function": site.function,
            "source": clip(blame.text.strip(), 300) if blame else None,
            "last_changed_by": blame.sha[:7] if blame else None,
        }
        if site.block is not None:
            row["block"] = {"name": site.block.name, "start": site.block.start, "end": site.block.end}
        if not site.line_exact:
            row["line_exact"] = False
        frames.append(row)
    return frames


def _summary(found: dict[str, Any]) -> str:
    candidates, sites, outside = found["candidates"], found["sites"], found["outside_repo"]
    if candidates:
        top = candidates[0]
        lead = "top suspect" if found["clear"] else "no clear suspect; best candidate"
        summary = f"{lead} {top['short_sha']} '{top['subject']}' (score {top['score']}): {top['reasons'][0]}"
        if not found["clear"] and not found["outside_repo"]["likely"]:
            summary += f" ({found['confidence']})"
    elif not sites:
        summary = "no frame of the trace maps to a file in the repo at the onset revision"
    else:
        summary = "no commit could be blamed for the failing lines"
    if outside["likely"]:
        summary += f"; the cause is likely outside the repository ({outside['reason']})"
    if found["ruled_out"]:
        summary += f"; {len(found['ruled_out'])} later commit(s) to the same files ruled out"
    return clip(summary, 1000)


def _facts(found: dict[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    sites, candidates = found["sites"], found["candidates"]
    if sites:
        facts.update(file=sites[0].file, line=sites[0].line)
    if candidates and found["clear"]:
        facts.update(commit=candidates[0]["sha"], commit_subject=candidates[0]["subject"])
    elif candidates:
        facts["candidates"] = [
            clip(f"{c['short_sha']} '{c['subject']}' (score {c['score']}): {c['reasons'][0]}", 300)
            for c in candidates[:3]
        ]
    if found["outside_repo"]["likely"]:
        facts["outside_repo"] = found["outside_repo"]["reason"]
    if found["ruled_out"]:
        facts["ruled_out"] = [item["text"] for item in found["ruled_out"]]
    return facts
