"""Repository paths: resolving the repo and files inside it, listing and reading files."""

from __future__ import annotations

import os
from pathlib import Path

from tools._base import ToolError
from tools._sandbox import Sandbox, SandboxError
from tools.code._git import GitRepo, open_git_repo

__all__ = [
    "MAX_FILE_BYTES",
    "is_binary",
    "list_repo_files",
    "read_text_lines",
    "repo_relpath",
    "resolve_repo",
]

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_WALK_FILES = 200_000
WALK_SKIP_DIRS = (".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".tox")


def resolve_repo(sandbox: Sandbox, raw: str) -> Path:
    """The repository directory, which must lie under the allowed roots."""
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("'repo' is required: a directory under the allowed roots")
    try:
        return sandbox.resolve(raw, want="dir")
    except SandboxError as e:
        raise ToolError(f"repo: {e}") from e


def repo_relpath(sandbox: Sandbox, repo: Path, raw: str, *, want: str = "file", must_exist: bool = True) -> str:
    """``raw`` resolved inside ``repo`` (no escaping via '..', absolute paths or symlinks).

    Returns the POSIX path relative to ``repo``. With ``must_exist=False`` a path
    that does not exist in the work tree (e.g. deleted, but present in history) is
    accepted as long as it would lie inside the repo.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("'path' is required: a file path relative to the repo")
    try:
        real = sandbox.resolve_within(repo, raw, want=want)
    except SandboxError as e:
        candidate = Path(raw.strip())
        candidate = candidate if candidate.is_absolute() else repo / candidate
        real = Path(os.path.realpath(candidate))
        inside = (real == repo or real.is_relative_to(repo)) and sandbox.contains(real)
        if must_exist or not inside or real.exists():
            raise ToolError(f"path: {e}") from e
    rel = real.relative_to(repo).as_posix()
    return "." if rel in ("", ".") else rel


def is_binary(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return b"\x00" in handle.read(8192)
    except OSError:
        return True


def read_text_lines(path: Path) -> list[str]:
    """Text lines of a file (no line endings); ToolError for binary or oversized files."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise ToolError(f"cannot read '{path.name}': {e.strerror}") from e
    if size > MAX_FILE_BYTES:
        raise ToolError(f"'{path.name}' is larger than 2 MB; use grep_code to find lines in it")
    if is_binary(path):
        raise ToolError(f"'{path.name}' is a binary file")
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as e:
        raise ToolError(f"cannot read '{path.name}': {e.strerror}") from e
    return text.splitlines()


def _walk(sandbox: Sandbox, repo: Path) -> list[str]:
    files: list[str] = []
    seen: set[Path] = set()
    for path in sandbox.walk_files(repo, skip_dirs=WALK_SKIP_DIRS):
        if path in seen or not path.is_relative_to(repo):
            continue
        seen.add(path)
        files.append(path.relative_to(repo).as_posix())
        if len(files) >= MAX_WALK_FILES:
            break
    return files


def list_repo_files(sandbox: Sandbox, repo: Path, raw: str) -> tuple[list[str], GitRepo | None]:
    """Files committed at HEAD (``git ls-tree``) or, outside git, every file found by walking."""
    try:
        git = open_git_repo(sandbox, repo, raw)
    except ToolError:
        return _walk(sandbox, repo), None
    try:
        out = git.git("ls-tree", "-r", "-z", "--name-only", "HEAD")
    except ToolError:  # no commits yet
        return _walk(sandbox, repo), None
    return [p for p in out.split("\x00") if p], git
