"""A directory under a root swapped for a link to the outside, again and again, while
the log tools read: not one read may reach the outside."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from tools._base import ToolError
from tools.code import GitLogTool, GrepCodeTool, ReadCodeTool
from tools.logs import SearchLogsTool
from tools.runbooks import SearchRunbooksTool

CALLS = 3_000
MARKER = "OUTSIDE-MARKER-7f3a"


def _flip(root: Path, stop: threading.Event, flips: list[int]) -> None:
    """Swap ``root/d`` between a real directory and a link to the outside, by renames."""
    live = root / "d"
    real, link = root / ".d-real", root / ".d-link"
    while not stop.is_set():
        for parked in (real, link):
            os.rename(parked, live)
            os.rename(live, parked)
        flips[0] += 1


def _calls(kind: str):
    """(tool class, arguments for call i) reading ``d`` under the root in two ways."""
    if kind == "search_logs":
        return SearchLogsTool, lambda i: {"logs": "d" if i % 2 else "d/app.log"}
    if kind == "read_code":
        return ReadCodeTool, lambda i: {"repo": "." if i % 2 else "d", "path": "d/app.log" if i % 2 else "app.log"}
    if kind == "search_runbooks":
        return SearchRunbooksTool, lambda i: {"runbooks": "d" if i % 2 else ".", "query": "error inside"}
    return GrepCodeTool, lambda i: {"repo": "." if i % 2 else "d", "pattern": "ERROR"}


@pytest.mark.parametrize("kind", ["search_logs", "read_code", "grep_code", "search_runbooks"])
def test_a_directory_swapped_for_an_outside_link_never_leaks(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / ".d-real").mkdir(parents=True)
    outside.mkdir()
    (root / ".d-real" / "app.log").write_text("2026-11-20T14:00:00Z ERROR inside only\n")
    (outside / "app.log").write_text(f"2026-11-20T14:00:00Z ERROR {MARKER}\n")
    (root / ".d-real" / "app.md").write_text("# Error\n\ninside only\n")
    (outside / "app.md").write_text(f"# Error inside\n\n{MARKER}\n")
    os.symlink(outside, root / ".d-link")
    cls, arguments = _calls(kind)
    tool = cls(roots=(root,))
    stop, flips = threading.Event(), [0]
    flipper = threading.Thread(target=_flip, args=(root, stop, flips), daemon=True)
    flipper.start()
    leaks, found, crashes = 0, 0, []
    try:
        for i in range(CALLS):
            try:
                text = tool.run(**arguments(i))
            except ToolError as e:  # "does not exist" / "outside the allowed roots" while swapped
                text = str(e)
            except Exception as e:  # noqa: BLE001 - counted and reported below
                text = str(e)
                crashes.append(type(e).__name__)
            leaks += MARKER in text
            found += "inside only" in text
    finally:
        stop.set()
        flipper.join()
    assert leaks == 0, f"{leaks} of {CALLS} calls read the outside file"
    assert found > 0 and flips[0] > 0  # the race was actually run
    assert crashes == []  # only plain tool errors, never a raw OSError


def test_a_log_link_inside_the_root_is_followed_and_named_relative(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "2026").mkdir(parents=True)
    (root / "2026" / "app.log").write_text("2026-11-20T14:00:00Z ERROR inside\n")
    os.symlink("2026", root / "current")
    out = json.loads(SearchLogsTool(roots=(root,)).run(logs="current"))
    assert [r["message"] for r in out["data"]["records"]] == ["inside"]
    assert out["data"]["records"][0]["at"] == "2026/app.log:1"
    assert str(tmp_path) not in json.dumps(out)


GIT_CALLS = 1_000


def test_a_repository_swapped_for_an_outside_link_never_leaks(tmp_path: Path, code_git_repo) -> None:
    root = tmp_path / "root"
    inside = code_git_repo("root/.d-real")
    inside.commit({"app.py": "x = 1\n"}, "inside only", "2024-05-01T09:00:00+00:00")
    outside = code_git_repo("outside")
    outside.commit({"app.py": "x = 2\n"}, MARKER, "2024-05-02T09:00:00+00:00")
    os.symlink(outside.path, root / ".d-link")
    tool = GitLogTool(roots=(root,))
    stop, flips = threading.Event(), [0]
    flipper = threading.Thread(target=_flip, args=(root, stop, flips), daemon=True)
    flipper.start()
    leaks = 0
    try:
        for _ in range(GIT_CALLS):
            try:
                text = tool.run(repo="d")
            except ToolError as e:
                text = str(e)
            leaks += MARKER in text
    finally:
        stop.set()
        flipper.join()
    assert leaks == 0, f"{leaks} of {GIT_CALLS} calls read the outside repository"
    assert flips[0] > 0
    # git runs far longer than one flip, so calls during the race mostly fail; once the
    # swapping stops, the same call reads the repository
    os.rename(root / ".d-real", root / "d")
    assert "inside only" in tool.run(repo="d")
