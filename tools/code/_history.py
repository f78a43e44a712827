"""git_log and git_blame: who changed what, and when."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tools._base import SandboxedTool, ToolError
from tools._result import ToolResult, clip
from tools.code._git import (
    GitRepo,
    format_git_date,
    open_git_repo,
    parse_blame_porcelain,
    parse_iso,
    validate_rev,
)
from tools.code._repo import repo_relpath, resolve_repo

__all__ = ["GitBlameArgs", "GitBlameTool", "GitLogArgs", "GitLogTool", "read_log"]

MAX_BLAME_LINES = 200
MAX_FILES_PER_COMMIT = 30
_LOG_FORMAT = "%x1e%H%x1f%h%x1f%an%x1f%ae%x1f%cI%x1f%s"


class GitLogArgs(BaseModel):
    repo: str = Field(..., description="Git repository directory (under the allowed roots).")
    path: str | None = Field(default=None, description="Only commits touching this file or directory (repo-relative).")
    since: str | None = Field(default=None, description="Only commits committed at or after this ISO timestamp.")
    until: str | None = Field(default=None, description="Only commits committed at or before this ISO timestamp.")
    limit: int = Field(default=20, ge=1, le=200, description="Most commits to return (1-200).")


class GitBlameArgs(BaseModel):
    repo: str = Field(..., description="Git repository directory (under the allowed roots).")
    path: str = Field(..., description="File path relative to the repo.")
    start: int = Field(default=1, ge=1, description="First line to blame (1-based).")
    end: int | None = Field(default=None, ge=1, description="Last line to blame; at most 200 lines per call.")
    rev: str | None = Field(
        default=None,
        description="Revision to blame at (sha, branch or tag, e.g. a suspect commit); defaults to HEAD.",
    )


def read_log(git: GitRepo, *args: str) -> list[dict[str, Any]]:
    """Commits from ``git log`` with the fixed format and ``--name-only``."""
    out = git.git("log", "--no-color", "--relative", f"--format={_LOG_FORMAT}", "--name-only", *args)
    commits: list[dict[str, Any]] = []
    for record in out.split("\x1e"):
        if not record.strip():
            continue
        header, _, rest = record.partition("\n")
        fields = header.split("\x1f")
        if len(fields) < 6:
            continue
        sha, short, author, email, date, subject = fields[:6]
        files = [line for line in rest.splitlines() if line.strip()]
        commits.append(
            {
                "sha": sha,
                "short_sha": short,
                "author": author,
                "email": email,
                "date": date,
                "subject": subject,
                "files": files,
            }
        )
    return commits


class GitLogTool(SandboxedTool):
    name: str = "git_log"
    description: str = (
        "List recent commits of a git repository, newest first: sha, author, commit date, "
        "subject and files changed. Narrow with 'path' and an ISO 'since'/'until' window, "
        "e.g. the hours before an incident's onset."
    )
    args_schema: type[BaseModel] = GitLogArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = GitLogArgs(**arguments)
        repo = resolve_repo(self.sandbox, args.repo)
        git = open_git_repo(self.sandbox, repo, args.repo)
        options = ["--full-diff", f"--max-count={args.limit}"]
        if args.since:
            options.append(f"--since={format_git_date(parse_iso(args.since, 'since'))}")
        if args.until:
            options.append(f"--until={format_git_date(parse_iso(args.until, 'until'))}")
        rel = None
        if args.path:
            rel = repo_relpath(self.sandbox, repo, args.path, want="any", must_exist=False)
        try:
            git.resolve_rev("HEAD")
        except ToolError as e:
            raise ToolError("the repository has no commits yet") from e
        commits = read_log(git, *options, "HEAD", "--", *([rel] if rel else []))
        for commit in commits:
            files = commit["files"]
            if len(files) > MAX_FILES_PER_COMMIT:
                commit["files"] = files[:MAX_FILES_PER_COMMIT]
                commit["files_total"] = len(files)
        where = f" touching {rel}" if rel else ""
        summary = f"{len(commits)} commit(s){where}"
        if commits:
            newest = commits[0]
            summary += f"; newest {newest['short_sha']} {newest['date']} '{newest['subject']}'"
        return ToolResult(
            tool=self.name, summary=summary, data={"commits": commits}, truncated=len(commits) >= args.limit
        )


class GitBlameTool(SandboxedTool):
    name: str = "git_blame"
    description: str = (
        "Show which commit last changed each line of a file (git blame), at most 200 lines "
        "per call: sha, author, commit date and the line text. 'rev' blames the file as it "
        "was at that revision (default HEAD)."
    )
    args_schema: type[BaseModel] = GitBlameArgs

    def execute(self, **arguments: Any) -> ToolResult:
        args = GitBlameArgs(**arguments)
        rev = validate_rev(args.rev) if args.rev is not None else "HEAD"
        repo = resolve_repo(self.sandbox, args.repo)
        rel = repo_relpath(self.sandbox, repo, args.path, want="any", must_exist=False)
        git = open_git_repo(self.sandbox, repo, args.repo)
        sha = git.resolve_rev(rev)
        end = args.end if args.end is not None else args.start + MAX_BLAME_LINES - 1
        if end < args.start:
            raise ToolError(f"'end' ({end}) is before 'start' ({args.start})")
        clipped = end - args.start + 1 > MAX_BLAME_LINES
        if clipped:
            end = args.start + MAX_BLAME_LINES - 1
        out = git.git("blame", "--porcelain", "-L", f"{args.start},{end}", sha, "--", rel)
        rows = []
        for item in parse_blame_porcelain(out):
            rows.append(
                {
                    "line": item.line,
                    "sha": item.sha,
                    "short_sha": item.sha[:7],
                    "author": item.author,
                    "date": item.date,
                    "subject": item.summary,
                    "text": clip(item.text, 300),
                }
            )
        last = rows[-1]["line"] if rows else args.start
        distinct = len({row["sha"] for row in rows})
        summary = f"{rel} lines {args.start}-{last} at {rev}: {distinct} distinct commit(s)"
        if clipped:
            summary += f" (limited to {MAX_BLAME_LINES} lines per call)"
        return ToolResult(
            tool=self.name,
            summary=summary,
            data={"path": rel, "rev": rev, "commit": sha, "lines": rows},
            truncated=clipped,
        )
