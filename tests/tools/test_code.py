"""grep_code, read_code, git_log, git_blame, and the sandbox around all code tools."""

from __future__ import annotations

import json
import os

import pytest

from tools._base import ToolError
from tools.code import (
    CODE_TOOLS,
    GitBlameTool,
    GitLogTool,
    GrepCodeTool,
    MapStackFramesTool,
    ReadCodeTool,
    SuspectCommitsTool,
)

PAY_V1 = "def charge(amount):\n    fee = 0\n    return amount + fee\n"
PAY_V2 = "def charge(amount):\n    fee = amount * 0.03\n    return amount + fee\n"


@pytest.fixture
def code_shop(code_git_repo):
    """A repo with three commits: init, a fee change, and docs."""
    repo = code_git_repo("shop")
    shas = [
        repo.commit(
            {"app/pay.py": PAY_V1, "app/util.py": "def fee():\n    return 0\n"},
            "Initial import",
            "2024-05-01T09:00:00+00:00",
            author="Alice",
        ),
        repo.commit({"app/pay.py": PAY_V2}, "Charge a 3% fee", "2024-05-02T10:00:00+00:00", author="Bob"),
        repo.commit({"README.md": "# Shop\nfee docs\n"}, "Document fees", "2024-05-03T11:00:00+00:00", author="Alice"),
    ]
    return repo, shas


def _run(code_tool, cls, **kwargs) -> dict:
    return json.loads(code_tool(cls).run(**kwargs))


def test_exports_every_tool_with_its_fixed_name(tmp_path):
    names = [cls(roots=(tmp_path,)).name for cls in CODE_TOOLS]
    assert names == ["grep_code", "read_code", "map_stack_frames", "git_log", "git_blame", "suspect_commits"]


# --- grep_code ----------------------------------------------------------------


def test_grep_finds_lines_with_path_and_number(code_shop, code_tool):
    repo, _ = code_shop
    result = _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern=r"fee\s*=")
    assert result["data"]["matches"] == ["app/pay.py:2:fee = amount * 0.03"]
    assert result["data"]["total"] == 1


def test_grep_glob_limit_and_total(code_shop, code_tool):
    repo, _ = code_shop
    everything = _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern="fee")
    assert everything["data"]["total"] == 4  # 2 in pay.py, 1 in util.py, 1 in README.md
    only_py = _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern="fee", glob="*.py")
    assert only_py["data"]["total"] == 3
    assert all(".py:" in m for m in only_py["data"]["matches"])
    limited = _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern="fee", limit=2)
    assert len(limited["data"]["matches"]) == 2
    assert limited["data"]["total"] == 4
    assert "showing the first 2" in limited["summary"]


def test_grep_skips_git_metadata_binaries_and_clips_long_lines(code_shop, code_tool):
    repo, _ = code_shop
    (repo.path / "logo.bin").write_bytes(b"\x00\x01charge\x00")
    (repo.path / "long.txt").write_text("charge" + "x" * 5000 + "\n")
    result = _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern="charge|Initial import")
    paths = [m.split(":", 1)[0] for m in result["data"]["matches"]]
    assert "logo.bin" not in paths
    assert not any(p.startswith(".git") for p in paths)  # commit messages live in .git
    long_line = next(m for m in result["data"]["matches"] if m.startswith("long.txt"))
    assert len(long_line) < 300


def test_grep_invalid_regex_is_a_tool_error(code_shop, code_tool):
    repo, _ = code_shop
    with pytest.raises(ToolError, match="invalid regex"):
        _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern="fee(")


# --- read_code ----------------------------------------------------------------


def test_read_returns_numbered_window(code_shop, code_tool):
    repo, _ = code_shop
    result = _run(code_tool, ReadCodeTool, repo=str(repo.path), path="app/pay.py", start=2, end=3)
    assert result["data"]["lines"] == ["2|     fee = amount * 0.03", "3|     return amount + fee"]
    assert result["data"]["total_lines"] == 3


def test_read_caps_at_400_lines_and_reports_where_to_continue(code_git_repo, code_tool):
    repo = code_git_repo()
    (repo.path / "big.py").write_text("".join(f"x{n} = {n}\n" for n in range(1, 1001)))
    result = _run(code_tool, ReadCodeTool, repo=str(repo.path), path="big.py", start=10)
    assert len(result["data"]["lines"]) == 400
    assert result["data"]["end"] == 409
    assert "continue at 410" in result["summary"]


def test_read_past_end_of_file_is_refused(code_shop, code_tool):
    repo, _ = code_shop
    with pytest.raises(ToolError, match="past the end"):
        _run(code_tool, ReadCodeTool, repo=str(repo.path), path="app/pay.py", start=50)


# --- git_log ------------------------------------------------------------------


def test_log_lists_commits_newest_first_with_files(code_shop, code_tool):
    repo, shas = code_shop
    commits = _run(code_tool, GitLogTool, repo=str(repo.path))["data"]["commits"]
    assert [c["subject"] for c in commits] == ["Document fees", "Charge a 3% fee", "Initial import"]
    fee = commits[1]
    assert fee["sha"] == shas[1] and fee["short_sha"] == shas[1][:7]
    assert fee["author"] == "Bob"
    assert fee["date"] == "2024-05-02T10:00:00+00:00"
    assert fee["files"] == ["app/pay.py"]
    assert sorted(commits[2]["files"]) == ["app/pay.py", "app/util.py"]


def test_log_filters_by_path_time_window_and_limit(code_shop, code_tool):
    repo, _ = code_shop
    by_path = _run(code_tool, GitLogTool, repo=str(repo.path), path="app/pay.py")
    assert [c["subject"] for c in by_path["data"]["commits"]] == ["Charge a 3% fee", "Initial import"]
    window = _run(
        code_tool, GitLogTool, repo=str(repo.path), since="2024-05-02T00:00:00Z", until="2024-05-02T23:59:59Z"
    )
    assert [c["subject"] for c in window["data"]["commits"]] == ["Charge a 3% fee"]
    limited = _run(code_tool, GitLogTool, repo=str(repo.path), limit=1)
    assert len(limited["data"]["commits"]) == 1


def test_log_on_a_plain_directory_says_it_is_not_git(tmp_path, code_tool):
    (tmp_path / "plain").mkdir()
    with pytest.raises(ToolError, match="not a git work tree"):
        _run(code_tool, GitLogTool, repo=str(tmp_path / "plain"))


# --- git_blame ----------------------------------------------------------------


def test_blame_attributes_each_line(code_shop, code_tool):
    repo, shas = code_shop
    result = _run(code_tool, GitBlameTool, repo=str(repo.path), path="app/pay.py", start=1, end=3)
    lines = result["data"]["lines"]
    assert [row["sha"] for row in lines] == [shas[0], shas[1], shas[0]]
    assert lines[1]["author"] == "Bob"
    assert lines[1]["date"] == "2024-05-02T10:00:00+00:00"
    assert lines[1]["text"] == "    fee = amount * 0.03"


def test_blame_at_an_older_revision(code_shop, code_tool):
    repo, shas = code_shop
    result = _run(code_tool, GitBlameTool, repo=str(repo.path), path="app/pay.py", start=2, end=2, rev=shas[0][:10])
    assert result["data"]["lines"][0]["text"] == "    fee = 0"
    assert result["data"]["lines"][0]["author"] == "Alice"


def test_blame_unknown_revision_is_a_tool_error(code_shop, code_tool):
    repo, _ = code_shop
    with pytest.raises(ToolError, match="unknown revision"):
        _run(code_tool, GitBlameTool, repo=str(repo.path), path="app/pay.py", rev="nosuchbranch")


# --- sandbox ------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ReadCodeTool, GitBlameTool])
def test_dotdot_path_leaving_the_repo_is_refused(code_shop, code_tool, cls):
    repo, _ = code_shop
    (repo.path.parent / "secret.txt").write_text("password\n")
    with pytest.raises(ToolError, match="outside"):
        _run(code_tool, cls, repo=str(repo.path), path="../secret.txt")


def test_absolute_path_outside_the_repo_is_refused(code_shop, code_tool):
    repo, _ = code_shop
    with pytest.raises(ToolError, match="outside"):
        _run(code_tool, ReadCodeTool, repo=str(repo.path), path="/etc/passwd")


@pytest.mark.parametrize("cls", [GrepCodeTool, GitLogTool, MapStackFramesTool])
def test_repo_outside_the_roots_is_refused(code_tool, cls):
    kwargs = {"pattern": "root"} if cls is GrepCodeTool else {}
    if cls is MapStackFramesTool:
        kwargs = {"trace": 'File "/etc/x.py", line 1, in f'}
    with pytest.raises(ToolError, match="outside the allowed roots"):
        _run(code_tool, cls, repo="/etc", **kwargs)


def test_symlink_pointing_out_of_the_repo_is_not_followed(code_shop, code_tool):
    repo, _ = code_shop
    outside = repo.path.parent / "outside"
    outside.mkdir()
    (outside / "creds.py").write_text("TOKEN = 'hunter2'\n")
    os.symlink(outside / "creds.py", repo.path / "app" / "creds.py")
    with pytest.raises(ToolError, match="outside"):
        _run(code_tool, ReadCodeTool, repo=str(repo.path), path="app/creds.py")
    grep = _run(code_tool, GrepCodeTool, repo=str(repo.path), pattern="hunter2")
    assert grep["data"]["total"] == 0


@pytest.mark.parametrize("rev", ["--output=/tmp/x", "-L1,2"])
def test_rev_starting_with_dash_is_refused(code_shop, code_tool, rev):
    repo, _ = code_shop
    with pytest.raises(ToolError, match="may not start with '-'"):
        _run(code_tool, GitBlameTool, repo=str(repo.path), path="app/pay.py", rev=rev)


def test_rev_with_shell_characters_is_refused(code_shop, code_tool):
    repo, _ = code_shop
    with pytest.raises(ToolError, match="not a plain revision"):
        _run(code_tool, GitBlameTool, repo=str(repo.path), path="app/pay.py", rev="HEAD;id")


def test_git_dir_nested_under_a_repo_outside_the_roots_is_not_used(code_git_repo, code_tool, tmp_path):
    # The allowed root is a plain subdirectory of a git repo: git must not climb out of it.
    outer = code_git_repo("outer")
    outer.commit({"inner/a.py": "x = 1\n"}, "outer commit", "2024-01-01T00:00:00+00:00")
    tool = SuspectCommitsTool(roots=(outer.path / "inner",))
    with pytest.raises(ToolError, match="not a git work tree"):
        tool.run(repo=str(outer.path / "inner"), trace='File "/srv/a.py", line 1, in f')
