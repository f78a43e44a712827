"""Shared fixtures for tool tests.

Code-tool fixtures carry a ``code_`` prefix; log-tool fixtures live alongside.
Append new fixtures; do not reorder existing ones.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# --- code tools ---------------------------------------------------------------


class CodeGitRepo:
    """A throw-away git repository with fixed identities and dates.

    Needs no global git identity: names, e-mails and dates come from the
    environment and ``-c`` options of each call.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def _env(self, author: str, date: str) -> dict[str, str]:
        email = f"{author.lower().replace(' ', '.')}@example.com"
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": author,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": author,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_DATE": date,
        }

    def git(self, *args: str, author: str = "Test Bot", date: str = "2024-01-01T00:00:00+00:00") -> str:
        command = [
            "git", "-C", str(self.path),
            "-c", f"user.name={author}", "-c", "user.email=bot@example.com",
            "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main",
            *args,
        ]  # fmt: skip
        proc = subprocess.run(
            command, env=self._env(author, date), capture_output=True, text=True, check=True, timeout=30
        )
        return proc.stdout

    def write(self, files: dict[str, str | None]) -> None:
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)

    def commit(self, files: dict[str, str | None], message: str, date: str, author: str = "Test Bot") -> str:
        """Write ``files`` (None deletes), commit them at ``date``; returns the sha."""
        self.write(files)
        self.git("add", "-A", author=author, date=date)
        self.git("commit", "-q", "-m", message, author=author, date=date)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def code_git_repo(tmp_path: Path):
    """Factory: ``code_git_repo("name")`` makes an empty git repo under ``tmp_path``."""

    def make(name: str = "repo") -> CodeGitRepo:
        return CodeGitRepo(tmp_path / name)

    return make


@pytest.fixture
def code_tool(tmp_path: Path):
    """Factory: ``code_tool(ToolClass)`` builds a tool whose only allowed root is tmp_path."""

    def make(cls, **kwargs):
        return cls(roots=(tmp_path,), **kwargs)

    return make
