"""Go: a consumer crashes with ``panic: runtime error: index out of range``; systemd
restarts it. Logs are exported with ``journalctl -o short-iso``: every line, including
each line of the goroutine dump, carries the journal prefix. The app itself logs with
zerolog to the journal too (JSON after the prefix). Panic shape captured from Go 1.19.8.
Red herring: a steady broker rebalance error. Decoy: later commit to the same file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ._common import (
    BEN,
    CHEN,
    EMIL,
    Clock,
    H,
    History,
    Logs,
    M,
    S,
    add_noise,
    arrivals,
    build_repo,
    expected_base,
    finish,
    go_frames,
    line_no,
    write_runbooks,
)

CASE = "go_journald"
SERVICE = "ledger"
DAY = "2026-12-01"
BUILD = "/src/"

SPLIT_V1 = """\
package batch

// Entry is one ledger posting.
type Entry struct {
	Account string
	Cents   int64
}

// Split cuts entries into batches of at most size entries.
func Split(entries []Entry, size int) [][]Entry {
	var out [][]Entry
	for start := 0; start < len(entries); start += size {
		end := start + size
		if end > len(entries) {
			end = len(entries)
		}
		out = append(out, entries[start:end])
	}
	return out
}

// Last returns the final entry of a batch (the balancing posting).
func Last(batch []Entry) Entry {
	return batch[len(batch)-1]
}
"""

CONSUMER = """\
package consumer

import (
	"context"

	"github.com/acme/ledger/internal/batch"
	"github.com/rs/zerolog/log"
)

type Consumer struct{ Size int }

func (c *Consumer) Run(ctx context.Context, in <-chan []batch.Entry) {
	for entries := range in {
		for _, b := range batch.Split(entries, c.Size) {
			last := batch.Last(b)
			log.Info().Str("account", last.Account).Int("entries", len(b)).Msg("batch posted")
		}
	}
}
"""

RUNBOOKS = {
    "ledger.md": """\
# Runbook: ledger consumer

- The consumer runs under systemd; `journalctl -u ledger -o short-iso` is the log.
  A `panic:` followed by a goroutine dump means the process crashed and was restarted.
- `rebalance failed` errors: broker partition moves every few minutes; harmless.
""",
}


def history() -> History:
    h = History()
    h.commit(
        EMIL,
        "2026-10-02T09:00:00",
        "ledger: batch consumer",
        files={
            "README.md": "# ledger\n\nPostings consumer (Go).\n",
            "go.mod": "module github.com/acme/ledger\n\ngo 1.22\n",
            "internal/batch/split.go": SPLIT_V1,
            "internal/consumer/consumer.go": CONSUMER,
        },
        tag="v3.0.0",
    )
    h.commit(
        BEN,
        "2026-11-30T10:00:00",
        "batch: balancing posting is the one after the batch (#71)",
        role="culprit",
        edits=[("internal/batch/split.go", "return batch[len(batch)-1]", "return batch[len(batch)]")],
    )
    h.commit(
        CHEN,
        "2026-12-01T06:30:00",
        "Release 3.1.0",
        role="deployed",
        tag="v3.1.0",
        edits=[("README.md", "(Go).\n", "(Go). Release 3.1.0.\n")],
    )
    h.commit(
        BEN,
        "2026-12-01T11:45:00",
        "batch: comment on the batch size bound (#73)",
        role="decoy",
        edits=[("internal/batch/split.go", "// Split cuts entries", "// Split cuts entries (in order)")],
    )
    return h


def _panic(tree: dict[str, str], n: int) -> tuple[list[str], int]:
    line = line_no(tree["internal/batch/split.go"], "return batch[len(batch)]")
    call = line_no(tree["internal/consumer/consumer.go"], "last := batch.Last(b)")
    frames = go_frames([
        ("github.com/acme/ledger/internal/batch.Last(...)", BUILD + "internal/batch/split.go", str(line)),
        ("github.com/acme/ledger/internal/consumer.(*Consumer).Run(0xc0000a6018, {0x7a1e08?, 0xc0000a4000?}, 0xc0000b2060)",  # noqa: E501
         BUILD + "internal/consumer/consumer.go", f"{call} +0x1a5"),
        ("created by main.main", BUILD + "cmd/ledger/main.go", "41 +0x2f7"),
    ])  # fmt: skip
    lines = [f"panic: runtime error: index out of range [{n}] with length {n}", "", "goroutine 34 [running]:",
             *frames.split("\n")]  # fmt: skip
    return lines, line


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "ledger.journal.log"
    start, end, deploy = 6 * H, 12 * H, 8 * H + 2 * M + 51 * S
    pid = [2211]

    def j(ms: int, text: str, unit: str = "ledger") -> str:
        return f"{clock.day}T{clock.iso_seconds(ms)[11:19]}+0000 ledger-1 {unit}[{pid[0]}]: {text}"

    def zl(ms: int, level: str, msg: str, **kw: Any) -> str:
        return j(
            ms, json.dumps({"level": level, **kw, "time": clock.iso_seconds(ms), "message": msg}, separators=(",", ":"))
        )

    def posted(r: random.Random, ms: int) -> tuple[str, str]:
        return name, zl(ms, "info", "batch posted", account=f"acct_{r.getrandbits(32):08x}", entries=r.randrange(1, 50))

    add_noise(logs, rnd, start, end, 100, [(1, posted)])
    for ms in arrivals(rnd, start, end, 1 / 8):
        logs.add(name, ms, zl(ms, "error", "rebalance failed", error="kafka: broker not leader for partition 7"))
    deployed_sha = repo.sha("deployed")
    logs.add(
        name, deploy, j(deploy, f"Started ledger.service - ledger consumer 3.1.0 ({deployed_sha[:7]}).", "systemd")
    )
    onset = None
    line = 0
    for ms in arrivals(rnd, deploy + 50 * S, end, 0.8):
        onset = onset or ms
        n = rnd.randrange(1, 40)
        panic, line = _panic(tree, n)
        text = "\n".join(j(ms, p) for p in panic)
        pid[0] += rnd.randrange(3, 40)
        text += "\n" + j(
            ms + 5, "ledger.service: Main process exited, code=exited, status=2/INVALIDARGUMENT", "systemd"
        )
        text += "\n" + j(ms + 1010, "ledger.service: Scheduled restart job, restart counter is at 1.", "systemd")
        logs.add(name, ms, text)
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [9 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="An off-by-one in batch.Last indexes past the end of every batch; the consumer crash-loops.",
        repo=repo,
        culprit_role="culprit",
        file="internal/batch/split.go",
        line=line,
        signature=r"index out of range",
        onset=clock.iso_seconds(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso_seconds(deploy), "sha": deployed_sha, "version": "3.1.0"},
        decoy_roles=["decoy"],
        stack="go/systemd-journald",
        formats=["journalctl -o short-iso", "zerolog JSON inside journal lines", "goroutine dump, prefixed per line"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
