"""Repository paths: resolving the repo and files inside it, listing and reading files."""

from __future__ import annotations

import os
from pathlib import Path

from tools._base import ToolError
from tools._sandbox import MissingPathError, Sandbox, SandboxError
from tools.code._git import GitRepo, open_git_repo

__all__ = [
    "MAX_FILE_BYTES",
    "list_repo_files",
    "read_repo_text",
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
    accepted as long as it would lie, as written, inside the repo.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ToolError("'path' is required: a file path relative to the repo")
    try:
        real = sandbox.resolve_within(repo, raw, want=want)
    except MissingPathError as e:
        if must_exist:
            raise ToolError(f"path: {e}") from e
        real = Path(os.path.normpath(os.path.join(repo, raw.strip())))
        if not (real == repo or real.is_relative_to(repo)):
            raise ToolError(f"path: '{raw.strip()}' is outside the repository") from e
    except SandboxError as e:
        raise ToolError(f"path: {e}") from e
    rel = real.relative_to(repo).as_posix()
    return "." if rel in ("", ".") else rel


def _read_text(path: Path, sandbox: Sandbox) -> str:
    """A text file's content read through the sandbox; ToolError when unreadable, over 2 MB or binary."""
    name = path.name
    try:
        with sandbox.open_file(path) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except SandboxError as e:
        raise ToolError(f"cannot read '{name}': {e}") from e
    except OSError as e:
        raise ToolError(f"cannot read '{name}': {e.strerror}") from e
    if len(data) > MAX_FILE_BYTES:
        raise ToolError(f"'{name}' is larger than 2 MB; use grep_code to find lines in it")
    if b"\x00" in data[:8192]:
        raise ToolError(f"'{name}' is a binary file")
    return data.decode("utf-8", "replace")


def read_repo_text(path: Path, sandbox: Sandbox) -> str | None:
    """A text file's content read through the sandbox; None when binary, over 2 MB or unreadable."""
    try:
        return _read_text(path, sandbox)
    except ToolError:
        return None


def read_text_lines(path: Path, sandbox: Sandbox) -> list[str]:
    """Text lines of a file (no line endings) read through ``sandbox``, so a link swapped in on
    its path is never followed out of the roots; ToolError for binary or oversized files."""
    return _read_text(path, sandbox).splitlines()


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
