"""The sandbox walk itself: links inside the roots work, nothing else is opened."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools._base import ToolError
from tools._sandbox import Sandbox, SandboxError
from tools.logs import SearchLogsTool


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_links_inside_the_roots_are_followed_without_leaking_descriptors(tmp_path: Path) -> None:
    (tmp_path / "real" / "deep").mkdir(parents=True)
    (tmp_path / "real" / "deep" / "app.log").write_text("x\n")
    os.symlink("real", tmp_path / "hop1")
    os.symlink(str(tmp_path / "hop1" / "deep"), tmp_path / "hop2")
    sandbox = Sandbox([tmp_path])
    before = _open_fds()
    for _ in range(200):
        assert sandbox.resolve("hop2/app.log", want="file") == tmp_path / "real" / "deep" / "app.log"
        with pytest.raises(SandboxError):
            sandbox.resolve("hop2/app.log", want="dir")
    assert _open_fds() == before


def test_link_loops_and_special_files_are_refused_cleanly(tmp_path: Path) -> None:
    os.symlink("loop-b", tmp_path / "loop-a")
    os.symlink("loop-a", tmp_path / "loop-b")
    os.mkfifo(tmp_path / "pipe.log")
    (tmp_path / "app.log").write_text("2026-11-20T14:00:00Z ERROR fine\n")
    tool = SearchLogsTool(roots=(tmp_path,))
    for name in ("loop-a", "pipe.log"):
        with pytest.raises(ToolError, match="does not exist under the allowed roots"):
            tool.run(logs=name)
    out = json.loads(tool.run(logs="."))  # the fifo in the directory is skipped, not opened
    assert [r["message"] for r in out["data"]["records"]] == ["fine"]
