"""Hostile repositories under an allowed root: whatever their .git says, git must not
read files or repositories outside the roots, and errors must not carry file contents."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools._base import ToolError
from tools.code import GitBlameTool, GitLogTool, SuspectCommitsTool

MARKER = "SECRET-MARKER-c0ffee"


@pytest.fixture
def world(tmp_path: Path, code_git_repo):
    """(root, inside repo, outside repo, secret file): only ``root`` is allowed."""
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text(f"{MARKER}:$6$hash:19000:0:99999:7:::\nsecond line\n")
    inside = code_git_repo("root/repo")
    inside.commit({"app.py": "x = 1\ny = 2\n"}, "inside commit", "2024-05-01T09:00:00+00:00")
    outside = code_git_repo("outside/repo")
    outside.commit({"app.py": f"token = '{MARKER}'\n"}, f"outside {MARKER}", "2024-05-02T09:00:00+00:00")
    return root, inside, outside, secret


def _outputs(root: Path, **kwargs: str) -> list[str]:
    """What git_log and git_blame say about the repo: results or error messages."""
    texts = []
    for cls, extra in ((GitLogTool, {}), (GitBlameTool, {"path": "app.py"})):
        try:
            texts.append(cls(roots=(root,)).run(repo="repo", **extra, **kwargs))
        except ToolError as e:
            texts.append(f"error: {e}")
    return texts


def _assert_no_leak(root: Path) -> list[str]:
    texts = _outputs(root)
    for text in texts:
        assert MARKER not in text
        assert str(root.parent / "outside") not in text
    return texts


def _config(repo, *lines: str) -> None:
    with (repo.path / ".git" / "config").open("a") as handle:
        handle.write("\n".join(lines) + "\n")


def test_blame_ignore_revs_file_outside_is_not_read(world) -> None:
    root, inside, _, secret = world
    _config(inside, "[blame]", f"\tignoreRevsFile = {secret}")
    texts = _assert_no_leak(root)
    assert json.loads(texts[1])["data"]["lines"][0]["text"] == "x = 1"  # the repo config is ignored


def test_config_include_outside_is_not_followed(world, tmp_path: Path) -> None:
    root, inside, _, secret = world
    evil = tmp_path / "outside" / "evil.config"
    evil.write_text(f"[blame]\n\tignoreRevsFile = {secret}\n[core]\n\tworktree = {secret.parent}\n")
    _config(inside, "[include]", f"\tpath = {evil}", f'[includeIf "gitdir:{root}/"]', f"\tpath = {evil}")
    texts = _assert_no_leak(root)
    assert "inside commit" in texts[0]


def test_dotgit_file_pointing_outside_is_refused(world) -> None:
    root, inside, outside, _ = world
    dotgit = inside.path / ".git"
    os.rename(dotgit, root / "parked.git")
    dotgit.write_text(f"gitdir: {outside.path / '.git'}\n")
    texts = _assert_no_leak(root)
    assert all(t.startswith("error:") and "outside the allowed roots" in t for t in texts)


def test_symlinked_objects_outside_are_refused(world) -> None:
    root, inside, outside, _ = world
    foreign = outside.git("rev-parse", "HEAD").strip()
    objects = inside.path / ".git" / "objects"
    os.rename(objects, root / "parked-objects")
    os.symlink(outside.path / ".git" / "objects", objects)
    (inside.path / ".git" / "refs" / "heads" / "main").write_text(foreign + "\n")
    texts = _assert_no_leak(root)
    assert all(t.startswith("error:") for t in texts)


def test_alternates_outside_are_refused(world) -> None:
    root, inside, outside, _ = world
    foreign = outside.git("rev-parse", "HEAD").strip()
    (inside.path / ".git" / "objects" / "info" / "alternates").write_text(f"{outside.path / '.git' / 'objects'}\n")
    (inside.path / ".git" / "refs" / "heads" / "main").write_text(foreign + "\n")
    texts = _assert_no_leak(root)
    assert all(t.startswith("error:") for t in texts)


def test_commondir_outside_is_refused(world) -> None:
    root, inside, outside, _ = world
    (inside.path / ".git" / "commondir").write_text(f"{outside.path / '.git'}\n")
    texts = _assert_no_leak(root)
    assert all(t.startswith("error:") for t in texts)


def test_a_linked_worktree_and_alternates_inside_the_roots_still_work(world) -> None:
    root, inside, _, _ = world
    inside.git("worktree", "add", "-q", str(root / "wt"), "-b", "side")
    clone = root / "clone"
    inside.git("clone", "-q", "--shared", str(inside.path), str(clone))
    for name in ("wt", "clone"):
        out = json.loads(GitLogTool(roots=(root,)).run(repo=name))
        assert [c["subject"] for c in out["data"]["commits"]] == ["inside commit"]
    trace = 'Traceback (most recent call last):\n  File "/srv/app.py", line 2, in <module>\nValueError: bad\n'
    suspects = json.loads(SuspectCommitsTool(roots=(root,)).run(repo="wt", trace=trace))
    assert suspects["facts"]["commit_subject"] == "inside commit"


@pytest.mark.parametrize("kind", ["pack", "loose"])
def test_object_files_linked_to_another_repository_are_refused(world, kind: str) -> None:
    root, inside, outside, _ = world
    foreign = outside.git("rev-parse", "HEAD").strip()
    source = outside.path / ".git" / "objects"
    target = inside.path / ".git" / "objects"
    if kind == "pack":
        outside.git("repack", "-a", "-d", "-q")
        for item in (source / "pack").iterdir():
            os.symlink(item, target / "pack" / item.name)
    else:
        for item in source.glob("??/*"):
            (target / item.parent.name).mkdir(exist_ok=True)
            if not (target / item.parent.name / item.name).exists():
                os.symlink(item, target / item.parent.name / item.name)
    (inside.path / ".git" / "refs" / "heads" / "main").write_text(foreign + "\n")
    texts = _assert_no_leak(root)
    assert all(t.startswith("error:") for t in texts)
