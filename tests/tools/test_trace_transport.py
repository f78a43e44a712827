"""A Go panic that reaches the log through a transport (journald, CRI, RFC 5424 syslog) still names its culprit.

The dump is the shape Go 1.22 prints for an out-of-range index in an inlined function,
for a binary built in a container whose WORKDIR is ``/src``: the build path then starts
``/src/internal/...`` and ``/src/cmd/...``, just like the standard library's GOROOT
paths, and only the function's import path (``example.com/ledger/internal/batch``) says
the frame is the service's own code.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tools.code import MapStackFramesTool, SuspectCommitsTool
from tools.logs import ErrorSignaturesTool

GO_MOD = "module example.com/ledger\n\ngo 1.22\n"
SPLIT_OK = """package batch

// Split cuts entries into batches of at most size entries.
func Split(entries []int, size int) [][]int {
	var out [][]int
	for len(entries) > size {
		out = append(out, entries[:size])
		entries = entries[size:]
	}
	if len(entries) > 0 {
		out = append(out, entries)
	}
	return out
}

// Balance is the balancing posting of a batch.
func Balance(batch []int) int {
	total := 0
	for _, amount := range batch {
		total += amount
	}
	return total
}

// Last is the final posting of a batch.
func Last(batch []int) int {
	return batch[len(batch)-1]
}
"""
SPLIT_BAD = SPLIT_OK.replace("return batch[len(batch)-1]", "return batch[len(batch)]")
MAIN_GO = """package main

import (
	"fmt"

	"example.com/ledger/internal/batch"
)

func main() {
	for _, b := range batch.Split([]int{1, 2, 3, 4, 5}, 3) {
		fmt.Println(batch.Last(b))
	}
}
"""
SPLIT_LINE = SPLIT_BAD.splitlines().index("\treturn batch[len(batch)]") + 1

# Go 1.22, `go build` inside a container with WORKDIR /src (no -trimpath).
GO_DUMP = [
    "panic: runtime error: index out of range [3] with length 3",
    "",
    "goroutine 1 [running]:",
    "example.com/ledger/internal/batch.Last(...)",
    f"\t/src/internal/batch/split.go:{SPLIT_LINE}",
    "main.main()",
    "\t/src/cmd/ledger/main.go:11 +0x1d",
]

Prefix = Callable[[int], str]
TRANSPORTS: dict[str, tuple[str, Prefix]] = {
    "journald": (
        "ledger.journal.log",
        lambda s: f"2026-12-01T08:{s // 60:02d}:{s % 60:02d}+0000 ledger-1 ledger[2211]: ",
    ),
    "cri": ("ledger.cri.log", lambda s: f"2026-12-01T08:{s // 60:02d}:{s % 60:02d}.000000000Z stderr F "),
    "syslog": ("ledger.syslog", lambda s: f"<14>1 2026-12-01T08:{s // 60:02d}:{s % 60:02d}Z ledger-1 ledger 2211 - - "),
}


def _log_lines(prefix: Prefix) -> list[str]:
    lines = [prefix(s) + "batch posted entries=17" for s in range(0, 600, 20)]
    for start in range(600, 1200, 60):  # a crash loop: one dump a minute
        lines += [prefix(start) + line for line in GO_DUMP]
        lines += [prefix(start + 30) + "starting ledger consumer"]
    return lines


def _repo(code_git_repo) -> tuple[str, str]:
    repo = code_git_repo()
    files = {"go.mod": GO_MOD, "internal/batch/split.go": SPLIT_OK, "cmd/ledger/main.go": MAIN_GO}
    repo.commit(files, "ledger: batch consumer", "2026-11-20T10:00:00+00:00")
    culprit = repo.commit({"internal/batch/split.go": SPLIT_BAD}, "batch: last index", "2026-11-30T16:00:00+00:00")
    repo.commit({"README.md": "ledger\n"}, "docs: readme", "2026-11-30T17:00:00+00:00")
    return str(repo.path), culprit


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_go_panic_through_a_log_transport_names_the_culprit_line_and_commit(
    transport, tmp_path, code_git_repo, code_tool
):
    name, prefix = TRANSPORTS[transport]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / name).write_text("\n".join(_log_lines(prefix)) + "\n")
    repo, culprit = _repo(code_git_repo)

    facts = json.loads(ErrorSignaturesTool(roots=(tmp_path,)).run(logs="logs"))["facts"]
    assert "index out of range" in facts["signature"]
    trace = facts["trace"]
    assert trace.splitlines()[2:5] == GO_DUMP[2:5]  # the dump as Go printed it, no transport prefix

    mapped = json.loads(code_tool(MapStackFramesTool).run(repo=repo, trace=trace))
    assert mapped["facts"] == {"file": "internal/batch/split.go", "line": SPLIT_LINE}
    assert mapped["data"]["frames"][0]["source"] == "return batch[len(batch)]"
    assert mapped["data"]["outside_repo"]["likely"] is False

    suspects = json.loads(code_tool(SuspectCommitsTool).run(repo=repo, trace=trace, onset=facts["onset"]))
    assert suspects["facts"]["commit"] == culprit


def test_goroot_frames_stay_standard_library_next_to_a_src_build(code_git_repo, code_tool):
    repo = code_git_repo()
    files = {"go.mod": GO_MOD, "internal/poll/fd_unix.go": "package poll\n" + "\n" * 200}
    repo.commit(files, "init", "2026-11-20T10:00:00+00:00")
    trace = "\n".join([
        "goroutine 7 [IO wait]:",
        "internal/poll.(*FD).Read(0xc000126000, {0xc00012e000, 0x1000, 0x1000})",
        "\t/usr/local/go/src/internal/poll/fd_unix.go:164 +0x27a",
        "net.(*conn).Read(0xc00011a008, {0xc00012e000?, 0x0?, 0x0?})",
        "\t/usr/local/go/src/net/net.go:179 +0x45",
    ])  # fmt: skip
    mapped = json.loads(code_tool(MapStackFramesTool).run(repo=str(repo.path), trace=trace))
    assert [f["repo_path"] for f in mapped["data"]["frames"]] == [None, None]
    assert mapped["data"]["frames"][0]["note"] == "Go standard library (GOROOT)"


def test_a_module_without_a_dot_in_its_path_still_maps_through_go_mod(code_git_repo, code_tool):
    repo = code_git_repo()
    files = {
        "go.mod": "module ledger\n\ngo 1.22\n",
        "internal/batch/split.go": SPLIT_BAD,
        "cmd/ledger/main.go": MAIN_GO,
    }
    repo.commit(files, "init", "2026-11-20T10:00:00+00:00")
    trace = "\n".join(GO_DUMP).replace("example.com/ledger/", "ledger/")
    mapped = json.loads(code_tool(MapStackFramesTool).run(repo=str(repo.path), trace=trace))
    first = mapped["data"]["frames"][0]
    assert (first["repo_path"], first["line"]) == ("internal/batch/split.go", SPLIT_LINE)
    assert first["mapped_by"] == "go package ledger/internal/batch of module ledger"
