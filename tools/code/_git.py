"""Read-only git access: one hardened way to run git, plus parsers for its output.

Git runs only as an argument list (never through a shell), with a timeout, with
system/global configuration, hooks, fsmonitor, pagers, signature checks and
pathspec magic switched off, and with repository discovery fenced at the allowed
roots so a directory that is not itself a work tree can never pick up a parent
repository outside them.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from tools._base import ToolError
from tools._sandbox import Sandbox

__all__ = [
    "BlameLine",
    "GitRepo",
    "format_git_date",
    "iso_from_epoch",
    "open_git_repo",
    "parse_blame_porcelain",
    "parse_iso",
    "validate_rev",
]

GIT_TIMEOUT_SECONDS = 20
_REV_RE = re.compile(r"^[0-9A-Za-z._/~^-]+$")
_BLAME_HEADER_RE = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64}) (\d+) (\d+)(?: (\d+))?$")
ZERO_SHA_RE = re.compile(r"^0+$")


def _git_env(sandbox: Sandbox) -> dict[str, str]:
    ceilings = sorted({str(root.parent) for root in sandbox.roots if root.parent != root})
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_LITERAL_PATHSPECS": "1",
        "LC_ALL": "C",
    }
    if ceilings:
        env["GIT_CEILING_DIRECTORIES"] = os.pathsep.join(ceilings)
    return env


def _run(cwd: Path, safe_dir: Path, args: list[str], env: dict[str, str]) -> str:
    command = [
        "git", "-C", str(cwd),
        "-c", "core.fsmonitor=false",
        "-c", "core.hooksPath=/dev/null",
        "-c", f"safe.directory={safe_dir}",
        "-c", "log.showSignature=false",
        "-c", "color.ui=false",
        "--no-pager",
        *args,
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            env=env,
            timeout=GIT_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as e:
        raise ToolError("git is not installed on this machine") from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"git {args[0]} timed out after {GIT_TIMEOUT_SECONDS} s") from e
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
        first = (errors or lines or [f"exit status {proc.returncode}"])[0]
        raise ToolError(f"git {args[0]} failed: {first}")
    return proc.stdout.decode("utf-8", "replace")


@dataclass
class GitRepo:
    """A git work tree under the allowed roots; ``path`` is the directory asked for."""

    path: Path
    top: Path
    env: dict[str, str] = field(repr=False)

    def git(self, *args: str) -> str:
        return _run(self.path, self.top, list(args), self.env)

    def resolve_rev(self, rev: str) -> str:
        """The full sha of commit ``rev`` (already validated), or ToolError."""
        try:
            out = self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except ToolError as e:
            raise ToolError(f"unknown revision '{rev}' in this repository") from e
        return out.strip()


def open_git_repo(sandbox: Sandbox, repo: Path, raw: str) -> GitRepo:
    """``repo`` (already resolved under the roots) as a git work tree, or ToolError."""
    env = _git_env(sandbox)
    try:
        out = _run(repo, repo, ["rev-parse", "--is-inside-work-tree", "--show-toplevel"], env)
    except ToolError as e:
        raise ToolError(f"'{raw}' is not a git work tree ({e})") from e
    lines = out.splitlines()
    if len(lines) < 2 or lines[0].strip() != "true":
        raise ToolError(f"'{raw}' is not a git work tree")
    top = Path(os.path.realpath(lines[1].strip()))
    if not sandbox.contains(top):
        raise ToolError(f"'{raw}' belongs to a git repository outside the allowed roots")
    return GitRepo(path=repo, top=top, env=env)


def validate_rev(rev: str) -> str:
    rev = rev.strip()
    if not rev:
        raise ToolError("'rev' is empty; give a commit sha, branch or tag")
    if rev.startswith("-"):
        raise ToolError(f"'rev' may not start with '-' (got '{rev}'); give a commit sha or branch")
    if not _REV_RE.match(rev) or ".." in rev:
        raise ToolError(f"'rev' '{rev}' is not a plain revision; use letters, digits and . _ / ~ ^ - only")
    return rev


def parse_iso(value: str, name: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (naive values are taken as UTC)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as e:
        raise ToolError(f"'{name}' must be an ISO timestamp like 2024-05-01T10:00:00Z (got '{value}')") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_git_date(moment: datetime) -> str:
    """A date git parses unambiguously, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def iso_from_epoch(epoch: str | int, tz: str = "+0000") -> str:
    try:
        sign = -1 if tz.startswith("-") else 1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
        zone = timezone(offset)
    except (ValueError, IndexError):
        zone = UTC
    return datetime.fromtimestamp(int(epoch), tz=zone).isoformat()


@dataclass
class BlameLine:
    line: int
    sha: str
    author: str
    date: str
    epoch: int
    summary: str
    text: str

    @property
    def committed(self) -> bool:
        return not ZERO_SHA_RE.match(self.sha)


def parse_blame_porcelain(output: str) -> list[BlameLine]:
    """Lines of ``git blame --porcelain`` output, in file order."""
    infos: dict[str, dict[str, str]] = {}
    result: list[BlameLine] = []
    current: tuple[str, int] | None = None
    for raw in output.split("\n"):
        if raw.startswith("\t"):
            if current is None:
                continue
            sha, final = current
            info = infos.get(sha, {})
            committed = not ZERO_SHA_RE.match(sha)
            epoch = int(info.get("committer-time", "0") or 0)
            result.append(
                BlameLine(
                    line=final,
                    sha=sha,
                    author=info.get("author", "") if committed else "(not committed yet)",
                    date=iso_from_epoch(epoch, info.get("committer-tz", "+0000")),
                    epoch=epoch,
                    summary=info.get("summary", ""),
                    text=raw[1:],
                )
            )
            current = None
            continue
        header = _BLAME_HEADER_RE.match(raw)
        if header:
            current = (header.group(1), int(header.group(3)))
            infos.setdefault(header.group(1), {})
            continue
        if current is not None and " " in raw:
            key, value = raw.split(" ", 1)
            infos[current[0]].setdefault(key, value)
    return result
