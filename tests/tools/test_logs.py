"""search_logs, error_signatures, error_timeline and the log parsing beneath them."""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tools._base import ToolError
from tools.logs import (
    LOG_TOOLS,
    ErrorSignaturesTool,
    ErrorTimelineTool,
    ParseStats,
    SearchLogsTool,
    group_records,
    iter_records,
    template,
)

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)

PY_TRACE = [
    "Traceback (most recent call last):",
    '  File "/app/shop/pay.py", line 42, in charge',
    '    currency = order["currency"]',
    "KeyError: 'currency'",
]
JAVA_TRACE = [
    "java.lang.IllegalStateException: ledger closed",
    "\tat com.shop.Ledger.post(Ledger.java:88)",
    "\tat com.shop.Checkout.run(Checkout.java:42)",
    "Caused by: java.lang.NullPointerException: account is null",
    "\tat com.shop.Account.get(Account.java:12)",
    "\t... 12 more",
]


def _stamp(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _records(path: Path) -> list:
    return list(iter_records(path))


def _run(tool, **kwargs) -> dict:
    text = tool.run(**kwargs)
    assert len(text) <= tool.max_output_chars
    return json.loads(text)


@pytest.fixture
def logs_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def logs_tools(logs_root: Path) -> dict:
    """One instance of each log tool, allowed to read only under ``logs_root``."""
    return {cls().name: cls(roots=(logs_root,)) for cls in LOG_TOOLS}


@pytest.fixture
def logs_incident(logs_root: Path) -> Path:
    """40 minutes of service logs: a steady old timeout, then a KeyError from 14:20.

    - every minute one INFO request line, every 10 minutes a WARN
    - every 2 minutes (from 14:00) an ERROR "upstream timeout" with a varying ip and duration
    - from 14:20, three ERROR "charge failed" per minute with a Python traceback
    - from 14:30, one ERROR per 2 minutes "KeyError: 'amount'" (a second, smaller new one)
    """
    lines: list[str] = []
    for minute in range(40):
        lines.append(f"{_stamp(minute)} INFO [web] GET /orders/{1000 + minute} 200 in {minute}ms")
        if minute % 10 == 0:
            lines.append(f"{_stamp(minute + 0.05)} WARN [db] pool low: {minute % 7} left")
        if minute % 2 == 0:
            lines.append(
                f"{_stamp(minute + 0.1)} ERROR [http] upstream timeout after {3000 + minute}ms "
                f"talking to 10.0.{minute}.7:443"
            )
        if minute >= 20:
            for k in range(3):
                order = f"{minute:02d}{k}f3a9c-1b2c-4d5e-8f90-a1b2c3d4e5f6"
                lines.append(f"{_stamp(minute + 0.2 + k / 10)} ERROR [pay] charge failed "
                             f"for order {order}")  # fmt: skip
                lines.extend(PY_TRACE)
        if minute >= 30 and minute % 2 == 0:
            lines.append(f"{_stamp(minute + 0.6)} ERROR [pay] refund failed: KeyError: 'amount'")
    return _write(logs_root / "svc" / "app.log", lines)


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "ts", "level", "message"),
    [
        ("2026-11-20T14:03:12Z ERROR db down", "2026-11-20T14:03:12", "ERROR", "db down"),
        (
            "2026-11-20T16:03:12.123+02:00 [ERROR] db down",
            "2026-11-20T14:03:12.123",
            "ERROR",
            "db down",
        ),
        (
            "2026-11-20 14:03:12,345 ERROR [orders] db down",
            "2026-11-20T14:03:12.345",
            "ERROR",
            "[orders] db down",
        ),
        ("2026-11-20 14:03:12.345 WARN pool low", "2026-11-20T14:03:12.345", "WARN", "pool low"),
        ("[2026-11-20 14:03:12] ERROR db down", "2026-11-20T14:03:12", "ERROR", "db down"),
        (
            "2026-11-20 14:03:12,345 [main-7] ERROR db down",
            "2026-11-20T14:03:12.345",
            "ERROR",
            "db down",
        ),
        (
            "2026-11-20 14:03:12,345 - shop.db - WARNING - pool low",
            "2026-11-20T14:03:12.345",
            "WARN",
            "pool low",
        ),
        ("2026-11-20T14:03:12Z CRITICAL disk full", "2026-11-20T14:03:12", "FATAL", "disk full"),
        ("2026-11-20T14:03:12Z SEVERE disk full", "2026-11-20T14:03:12", "ERROR", "disk full"),
        ("2026-11-20T14:03:12Z ERR disk full", "2026-11-20T14:03:12", "ERROR", "disk full"),
        ("2026-11-20T09:03:12-05:00 error disk full", "2026-11-20T14:03:12", "ERROR", "disk full"),
    ],
)
def test_plain_text_timestamp_styles(tmp_path, line, ts, level, message):
    (record,) = _records(_write(tmp_path / "a.log", [line]))
    assert record.ts == datetime.fromisoformat(ts).replace(tzinfo=UTC)
    assert (record.level, record.message, record.line) == (level, message, 1)


def test_json_lines_keys_levels_and_exceptions(tmp_path):
    rows = [
        {
            "ts": "2026-11-20T14:03:12.5Z",
            "level": "error",
            "msg": "charge failed",
            "exc_info": "\n".join(PY_TRACE),
        },
        {"@timestamp": "2026-11-20T15:03:13+01:00", "severity": "WARNING", "message": "slow"},
        {"time": 1795097000000, "level": 50, "msg": "pino style"},
        {
            "timestamp": "2026-11-20 14:03:14",
            "levelname": "CRITICAL",
            "event": "disk full",
            "stack_trace": "\n".join(JAVA_TRACE),
        },
    ]
    rows += [
        {"ts": "2026-11-20T14:03:15Z", "level": "error", "msg": "db call failed",
         "error": "dial tcp 10.0.0.1:5432: connect: connection refused"},
        {"ts": "2026-11-20T14:03:16Z", "log": {"level": "error"}, "message": "checkout failed",
         "error": {"type": "java.lang.IllegalStateException", "message": "ledger closed",
                   "stack_trace": "\n".join(JAVA_TRACE[1:3])}},
    ]  # fmt: skip
    path = _write(tmp_path / "app.jsonl", [json.dumps(r) for r in rows])
    records = _records(path)
    assert [(r.level, r.message, r.line) for r in records] == [
        ("ERROR", "charge failed", 1),
        ("WARN", "slow", 2),
        ("ERROR", "pino style", 3),
        ("FATAL", "disk full", 4),
        ("ERROR", "db call failed: dial tcp 10.0.0.1:5432: connect: connection refused", 5),
        ("ERROR", "checkout failed: java.lang.IllegalStateException: ledger closed", 6),
    ]
    assert records[5].extra == JAVA_TRACE[1:3]
    assert records[0].ts == datetime(2026, 11, 20, 14, 3, 12, 500000, tzinfo=UTC)
    assert records[1].ts == datetime(2026, 11, 20, 14, 3, 13, tzinfo=UTC)
    assert records[2].ts == datetime.fromtimestamp(1795097000, UTC)
    assert records[3].ts == datetime(2026, 11, 20, 14, 3, 14, tzinfo=UTC)
    assert records[0].extra == PY_TRACE
    assert records[3].extra == JAVA_TRACE


def test_python_traceback_attaches_to_the_record_above(tmp_path):
    path = _write(tmp_path / "a.log", [
        "2026-11-20 14:03:11,000 INFO [pay] charging order 17",
        "2026-11-20 14:03:12,000 ERROR [pay] charge failed",
        *PY_TRACE,
        "",
        "2026-11-20 14:03:13,000 INFO [pay] next request",
    ])  # fmt: skip
    first, failed, after = _records(path)
    assert first.extra == [] and after.extra == []
    assert failed.extra == PY_TRACE  # the blank line before the next record is dropped
    assert (failed.line, after.line) == (2, 8)


def test_java_and_go_traces_attach_to_the_record_above(tmp_path):
    path = _write(tmp_path / "a.log", [
        "2026-11-20 14:03:12.000 ERROR [main] c.s.Checkout - checkout failed",
        *JAVA_TRACE,
        "2026-11-20 14:03:13.000 FATAL worker crashed",
        "panic: runtime error: invalid memory address or nil pointer dereference",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/app/main.go:12 +0x1d",
        "2026-11-20 14:03:14.000 INFO restarted",
    ])  # fmt: skip
    java, go, restarted = _records(path)
    assert java.extra == JAVA_TRACE
    assert go.extra[0].startswith("panic: runtime error")
    assert go.extra[-2:] == ["main.main()", "\t/app/main.go:12 +0x1d"]
    assert restarted.extra == []


def test_gzip_and_directory_of_mixed_files(logs_root):
    _write(logs_root / "b" / "api.jsonl", [
        json.dumps({"ts": "2026-11-20T14:00:02Z", "level": "info", "msg": "json line"})
    ])  # fmt: skip
    _write(logs_root / "a.log", ["2026-11-20T14:00:01Z WARN text line"])
    with gzip.open(logs_root / "old.log.gz", "wt") as fh:
        fh.write("2026-11-20T13:59:00Z ERROR gzipped line\n  with a continuation\n")
    (logs_root / "image.png").write_bytes(b"\x89PNG\r\n\x00\x00\x00binary")
    stats = ParseStats()
    records = list(iter_records(logs_root, stats=stats))
    by_file = {Path(r.source).name: r for r in records}
    # sorted walk: a directory's own files first, then its subdirectories
    assert [Path(r.source).name for r in records] == ["a.log", "old.log.gz", "api.jsonl"]
    assert by_file["old.log.gz"].message == "gzipped line"
    assert by_file["old.log.gz"].extra == ["  with a continuation"]
    assert by_file["api.jsonl"].level == "INFO"
    assert stats.files == 3
    assert stats.skipped == [(str(logs_root / "image.png"), "binary file")]


def test_corrupt_gzip_is_reported_and_other_files_still_read(logs_root, logs_tools):
    _write(logs_root / "app.log", ["2026-11-20T14:00:01Z ERROR still here"])
    (logs_root / "app.log.1.gz").write_bytes(gzip.compress(b"2026-11-20T13:00:00Z ERROR x\n")[:12])
    out = _run(logs_tools["search_logs"], logs=".")
    assert [r["message"] for r in out["data"]["records"]] == ["still here"]
    (skipped,) = out["data"]["skipped_files"]
    assert skipped.startswith("app.log.1.gz: ")


def test_continuation_lines_and_long_lines_are_capped(tmp_path):
    path = _write(tmp_path / "a.log", [
        "2026-11-20T14:00:00Z ERROR " + "x" * 10_000,
        *[f"  frame {i}" for i in range(1000)],
    ])  # fmt: skip
    (record,) = _records(path)
    assert len(record.message) < 2100
    assert len(record.extra) == 201
    assert record.extra[-1] == "…[800 more lines]"


def test_a_log_read_again_reflects_appends_and_rotation(tmp_path):
    # parsed files are remembered between tool calls; a changed file must never be served stale
    path = _write(tmp_path / "app.log", ["2026-11-20T14:00:00Z ERROR first failure"])
    for _ in range(2):
        stats = ParseStats()
        assert [r.message for r in iter_records(path, stats=stats)] == ["first failure"]
        assert (stats.files, stats.lines, stats.records) == (1, 1, 1)  # counted on a remembered read too
    with path.open("a") as log:
        log.write("2026-11-20T14:00:01Z ERROR second failure\n")
    assert [r.message for r in _records(path)] == ["first failure", "second failure"]
    rotated = _write(tmp_path / "new.log", ["2026-11-20T15:00:00Z ERROR other failure!"])
    os.replace(rotated, path)  # same name, a new file
    assert [r.message for r in _records(path)] == ["other failure!"]


def test_lines_without_timestamps_become_undated_records(tmp_path):
    path = _write(tmp_path / "stdout.txt", [
        "starting worker",
        "ERROR: cannot reach broker",
        "Traceback (most recent call last):",
        '  File "/app/w.py", line 3, in <module>',
        "ConnectionError: refused",
    ])  # fmt: skip
    records = _records(path)
    assert [(r.ts, r.level, r.message, r.line) for r in records] == [
        (None, "INFO", "starting worker", 1),
        (None, "ERROR", "ERROR: cannot reach broker", 2),
    ]
    assert records[1].extra[0] == "Traceback (most recent call last):"
    assert records[1].extra[-1] == "ConnectionError: refused"


# --- signatures -----------------------------------------------------------------------------


def test_template_masks_ids_numbers_addresses_and_paths():
    a = ("user 8f1c2d3e-1111-2222-3333-444455556666 timed out after 2000ms from "
         "10.0.0.7:5432 reading /var/lib/app/7/data.db at 0x7ffd1a2b (attempt 3, sha "
         "3f2a9c1d4e5b6a7f8091a2b3c4d5e6f708192a3b, mail bob@example.com, "
         "https://api.example.com/v1/orders/123?token=abc)")  # fmt: skip
    b = ("user 0a9b8c7d-aaaa-bbbb-cccc-ddddeeeeffff timed out after 15ms from "
         "[2001:db8::1]:8080 reading /srv/app/9/other.db at 0xdeadbeef (attempt 12, sha "
         "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807, mail eve@example.org, "
         "https://api.example.com/v1/orders/987?token=xyz&x=1)")  # fmt: skip
    assert template(a) == template(b)
    masked = template(a)
    for placeholder in ("<uuid>", "<duration>", "<ip>", "<path>", "<hex>", "<num>", "<email>"):
        assert placeholder in masked
    assert "https://api.example.com/v1/orders/<id>?<query>" in masked
    assert "8f1c2d3e" not in masked and "bob@" not in masked and "token=abc" not in masked
    # URL routes keep their fixed segments; only id-like ones are masked
    assert template("POST /v1/checkout failed after GET /v1/carts/crt_1c5de16088") == (
        "POST /v1/checkout failed after GET /v1/carts/<id>"
    )


def test_quoted_identifiers_and_exception_names_are_kept():
    currency = template("charge failed: KeyError: 'currency'")
    amount = template("charge failed: KeyError: 'amount'")
    assert currency == "charge failed: KeyError: 'currency'"
    assert currency != amount
    assert template("lookup failed: KeyError: '12345'") == "lookup failed: KeyError: '<num>'"
    assert template("java.lang.NullPointerException: x is null") == ("java.lang.NullPointerException: x is null")


def test_group_records_counts_first_last_levels_and_sample(tmp_path):
    path = _write(tmp_path / "a.log", [
        "2026-11-20T14:00:05Z ERROR charge failed for order 17",
        "2026-11-20T14:00:01Z FATAL charge failed for order 18",
        "2026-11-20T14:00:09Z ERROR charge failed for order 19",
        "2026-11-20T14:00:03Z ERROR disk full on /dev/sda1",
    ])  # fmt: skip
    top, other = group_records(_records(path))
    assert (top.template, top.count) == ("charge failed for order <num>", 3)
    assert top.first_seen == datetime(2026, 11, 20, 14, 0, 1, tzinfo=UTC)
    assert top.last_seen == datetime(2026, 11, 20, 14, 0, 9, tzinfo=UTC)
    assert top.levels == {"ERROR": 2, "FATAL": 1}
    assert top.sample == "charge failed for order 18"  # the earliest one
    assert (other.template, other.count) == ("disk full on <path>", 1)


def test_traced_records_group_by_their_exception(tmp_path):
    declined = ["Traceback (most recent call last):", '  File "/app/gw.py", line 9, in capture',
                "gateway.PaymentDeclined: upstream returned 502"]  # fmt: skip
    path = _write(tmp_path / "a.log", [
        "2026-11-20T14:00:05Z ERROR Unhandled exception on POST /v1/checkout", *PY_TRACE,
        "2026-11-20T14:00:02Z ERROR [Job 17]: exception raised while executing", *PY_TRACE,
        "2026-11-20T14:00:07Z ERROR [Job 18]: exception raised while executing", *declined,
        "2026-11-20T14:00:09Z ERROR checkout failed", *JAVA_TRACE,
    ])  # fmt: skip
    groups = {g.template: g for g in group_records(_records(path))}
    assert {k: g.count for k, g in groups.items()} == {
        "KeyError: 'currency'": 2,
        "gateway.PaymentDeclined: upstream returned <num>": 1,
        "java.lang.IllegalStateException: ledger closed": 1,
    }
    keyerror = groups["KeyError: 'currency'"]
    # the sample is the earliest traced record, whichever file order it came in
    assert keyerror.sample == "[Job 17]: exception raised while executing"
    assert keyerror.trace == PY_TRACE and keyerror.sample_line == 6


# --- error_signatures ---------------------------------------------------------------------------


def test_error_signatures_new_vs_pre_existing(logs_tools, logs_incident):
    out = _run(logs_tools["error_signatures"], logs="svc")
    facts, sigs = out["facts"], out["data"]["signatures"]
    assert facts["signature"] == "KeyError: 'currency'"
    assert facts["signature_count"] == 60
    assert facts["onset"] == "2026-11-20T14:20:12Z"
    assert facts["trace"].splitlines() == [
        "[pay] charge failed for order 200f3a9c-1b2c-4d5e-8f90-a1b2c3d4e5f6",
        *PY_TRACE,
    ]
    status = {s["signature"]: (s["status"], s["count"]) for s in sigs}
    assert status == {
        "KeyError: 'currency'": ("new", 60),
        "[http] upstream timeout after <duration> talking to <ip>": ("pre-existing", 20),
        "[pay] refund failed: KeyError: 'amount'": ("new", 5),
    }
    assert [s["count"] for s in sigs] == [60, 20, 5]
    assert facts["ruled_out"] == [
        "pre-existing: [http] upstream timeout after <duration> talking to <ip> (20 since 2026-11-20T14:00:06Z)"
    ]
    assert out["summary"].startswith("129 records, 3 error signatures, top new: ")
    assert out["summary"].endswith("(60)")


def test_error_signatures_min_level_and_window(logs_tools, logs_incident):
    tool = logs_tools["error_signatures"]
    warn = _run(tool, logs="svc/app.log", min_level="WARNING")
    pool = {s["signature"]: s for s in warn["data"]["signatures"]}["[db] pool low: <num> left"]
    assert (pool["count"], pool["status"], pool["levels"]) == (4, "pre-existing", {"WARN": 4})
    assert len(warn["data"]["signatures"]) == 4
    # From 14:25 on, 'currency' errors run from the window's start: pre-existing there;
    # the 'amount' errors (from 14:30) become the top new signature.
    late = _run(tool, logs="svc", since="2026-11-20T14:25:00Z", until="2026-11-20T14:39:59Z")
    assert late["data"]["start"] == "2026-11-20T14:25:00Z"
    assert late["facts"]["signature"] == "[pay] refund failed: KeyError: 'amount'"
    assert late["facts"]["onset"] == "2026-11-20T14:30:36Z"
    status = {s["signature"]: s["status"] for s in late["data"]["signatures"]}
    assert status["KeyError: 'currency'"] == "pre-existing"
    info = _run(tool, logs="svc", min_level="INFO", limit=2)
    assert len(info["data"]["signatures"]) == 2
    assert info["data"]["more_signatures"] == 3


# --- error_timeline -------------------------------------------------------------------------


def test_error_timeline_onset_and_rates(logs_tools, logs_incident):
    out = _run(logs_tools["error_timeline"], logs="svc", bucket_minutes=5)
    data, facts = out["data"], out["facts"]
    assert facts == {
        "onset": "2026-11-20T14:20:12Z",
        "signature": "KeyError: 'currency'",
        "signature_count": 60,
    }
    buckets = {b["start"]: b["errors"] for b in data["buckets"]}
    assert len(buckets) == 8
    assert buckets["2026-11-20T14:15:00Z"] == 2  # only the old timeouts
    assert buckets["2026-11-20T14:20:00Z"] == 3 + 15
    assert sum(buckets.values()) == 85
    assert data["baseline"]["per_minute"] == pytest.approx(0.5, abs=0.1)
    # after the onset: 60 charge + 9 timeout + 5 refund errors over 19.2 minutes
    assert data["after_onset"]["errors"] == 74
    assert data["after_onset"]["per_minute"] == pytest.approx(74 / 19.2, abs=0.01)
    assert "onset 2026-11-20T14:20:12Z" in out["summary"]


def test_error_timeline_keeps_buckets_bounded_around_the_onset(logs_root, logs_tools):
    lines = [f"{_stamp(m)} ERROR old failure {m}" for m in range(0, 3 * 24 * 60, 7)]
    lines += [f"{_stamp(2 * 24 * 60 + m)} ERROR new failure {m}" for m in range(0, 120, 3)]
    lines.sort()
    _write(logs_root / "long.log", lines)
    out = _run(logs_tools["error_timeline"], logs="long.log")
    data = out["data"]
    assert out["facts"]["onset"] == "2026-11-22T14:00:00Z"
    assert len(data["buckets"]) <= 120
    assert data["total_buckets"] > 4000
    starts = [b["start"] for b in data["buckets"]]
    assert "2026-11-22T14:00:00Z" in starts
    shown = sum(b["errors"] for b in data["buckets"])
    assert shown + data["omitted_before"] + data["omitted_after"] == data["matched"]


# --- search_logs --------------------------------------------------------------------------------


def test_search_pattern_level_window_and_limit(logs_tools, logs_incident):
    tool = logs_tools["search_logs"]
    out = _run(tool, logs="svc", pattern=r"charge FAILED", since="2026-11-20T14:25:00",
               until="2026-11-20T14:26:00Z", limit=2)  # fmt: skip
    data = out["data"]
    assert data["matched"] == 3
    assert [r["ts"] for r in data["records"]] == ["2026-11-20T14:25:12Z", "2026-11-20T14:25:18Z"]
    first = data["records"][0]
    assert first["at"].startswith("svc/app.log:")
    assert first["extra"][-1] == "KeyError: 'currency'" and first["extra_lines"] == 4
    errors = _run(tool, logs="svc", level="error", limit=500)["data"]
    assert errors["matched"] == 85
    warn_and_up = _run(tool, logs="svc", level="WARN", limit=1)["data"]
    assert warn_and_up["matched"] == 89 and len(warn_and_up["records"]) == 1
    everything = _run(tool, logs="svc", limit=1)["data"]
    assert everything["matched"] == 129


def test_search_matches_stack_lines_and_orders_files_by_time(logs_root, logs_tools):
    _write(logs_root / "a-late.log", ["2026-11-20T15:00:00Z ERROR checkout failed", *JAVA_TRACE])
    _write(logs_root / "b-early.log", ["2026-11-20T09:00:00Z ERROR checkout failed",
                                       *JAVA_TRACE])  # fmt: skip
    out = _run(logs_tools["search_logs"], logs=".", pattern=r"NullPointerException")
    assert [(r["ts"], r["at"]) for r in out["data"]["records"]] == [
        ("2026-11-20T09:00:00Z", "b-early.log:1"),
        ("2026-11-20T15:00:00Z", "a-late.log:1"),
    ]


def test_undated_records_are_searchable_but_not_in_time_windows(logs_root, logs_tools):
    _write(logs_root / "stdout.txt", ["worker booting", "ERROR: cannot reach broker"])
    tool = logs_tools["search_logs"]
    assert _run(tool, logs="stdout.txt", pattern="broker")["data"]["matched"] == 1
    windowed = _run(tool, logs="stdout.txt", pattern="broker", since="2026-01-01")
    assert windowed["data"]["matched"] == 0


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"pattern": "charge ("}, "pattern 'charge (' is not a valid regular expression"),
        ({"since": "yesterday"}, "since 'yesterday' is not an ISO-8601 timestamp"),
        ({"until": "2026-13-40T99:00"}, "until '2026-13-40T99:00' is not an ISO-8601"),
        ({"level": "loud"}, "level 'loud' is not a log level"),
        ({"since": "2026-11-21", "until": "2026-11-20"}, "is after until"),
    ],
)
def test_search_rejects_bad_arguments(logs_tools, logs_incident, kwargs, needle):
    with pytest.raises(ToolError) as err:
        logs_tools["search_logs"].run(logs="svc", **kwargs)
    assert needle in str(err.value)


def test_limit_outside_its_range_is_refused(logs_tools, logs_incident):
    with pytest.raises(ValueError, match="limit"):
        logs_tools["search_logs"].run(logs="svc", limit=501)
    with pytest.raises(ValueError, match="bucket_minutes"):
        logs_tools["error_timeline"].run(logs="svc", bucket_minutes=0)


def test_invalid_min_level_is_refused(logs_tools, logs_incident):
    with pytest.raises(ToolError, match="min_level 'bad' is not a log level"):
        logs_tools["error_signatures"].run(logs="svc", min_level="bad")


# --- sandbox and bounds -------------------------------------------------------------------------


@pytest.fixture
def logs_outside(tmp_path: Path) -> Path:
    return _write(tmp_path / "secret" / "other.log", ["2026-11-20T14:00:00Z ERROR top secret"])


@pytest.mark.parametrize("name", ["search_logs", "error_signatures", "error_timeline"])
def test_paths_escaping_the_root_are_refused(logs_root, logs_tools, logs_outside, name):
    os.symlink(logs_outside, logs_root / "link.log")
    tool = logs_tools[name]
    for raw in ("../secret/other.log", str(logs_outside), "link.log"):
        with pytest.raises(ToolError, match="outside the allowed roots") as err:
            tool.run(logs=raw)
        assert raw in str(err.value)
        assert "top secret" not in str(err.value)


def test_missing_path_is_named(logs_tools):
    with pytest.raises(ToolError, match="'nope/app.log' does not exist"):
        logs_tools["search_logs"].run(logs="nope/app.log")


def test_directory_walk_skips_symlinks_leading_outside(logs_root, logs_tools, logs_outside):
    _write(logs_root / "logs" / "app.log", ["2026-11-20T14:00:00Z ERROR inside"])
    os.symlink(logs_outside, logs_root / "logs" / "zz-link.log")
    os.symlink(logs_outside.parent, logs_root / "logs" / "secret-dir")
    out = _run(logs_tools["search_logs"], logs="logs")
    assert [r["message"] for r in out["data"]["records"]] == ["inside"]
    assert "top secret" not in json.dumps(out)


def test_output_stays_bounded_on_a_huge_log(logs_root, logs_tools):
    lines = []
    for i in range(5_000):
        kind = chr(97 + i % 26) + chr(97 + i // 26 % 26)  # 676 distinct quoted words
        lines.append(f"{_stamp(i / 60)} ERROR failure {i} of '{kind}' " + "detail " * 60)
        lines.append(f'  File "/app/x{i % 50}.py", line {i}, in f')
    _write(logs_root / "huge.log", lines)
    for name, kwargs in [("search_logs", {"limit": 500}), ("error_signatures", {"limit": 100}),
                         ("error_timeline", {})]:  # fmt: skip
        tool = logs_tools[name]
        text = tool.run(logs="huge.log", **kwargs)
        assert len(text) <= tool.max_output_chars
        out = json.loads(text)
        assert out["tool"] == name
    search = json.loads(logs_tools["search_logs"].run(logs="huge.log", limit=500))
    assert search["truncated"] is True
    assert search["data"]["matched"] == 5_000
    assert 0 < len(search["data"]["records"]) < 500


def test_tools_are_exported_with_described_arguments():
    assert [cls().name for cls in LOG_TOOLS] == [
        "search_logs", "error_signatures", "error_timeline"
    ]  # fmt: skip
    assert set(SearchLogsTool().args_schema.model_fields) == {
        "logs", "pattern", "since", "until", "level", "limit", "service"
    }  # fmt: skip
    assert set(ErrorSignaturesTool().args_schema.model_fields) == {
        "logs", "since", "until", "min_level", "limit", "service"
    }  # fmt: skip
    assert set(ErrorTimelineTool().args_schema.model_fields) == {
        "logs", "since", "until", "min_level", "bucket_minutes", "service"
    }  # fmt: skip
    for cls in LOG_TOOLS:
        for field_name, info in cls().args_schema.model_fields.items():
            assert info.description, f"{cls.__name__}.{field_name} has no description"
