"""Log records as real loggers and runtimes write them: one test per format.

Lines marked "real output" were printed here by the runtime named (python3 3.11
logging/traceback, node 20 with a pino-shaped JSON.stringify of a caught error, go
1.19 ``go run`` of an out-of-range index) and pasted; the rest follow the documented
formats of the logger named.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from tools.logs import ParseStats, iter_records
from tools.logs._parse import Record


def _parse(tmp_path: Path, lines: list[str], name: str = "app.log") -> tuple[list[Record], ParseStats]:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    stats = ParseStats()
    return list(iter_records(path, stats=stats)), stats


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_zap_epoch_seconds_and_error_field(tmp_path):
    records, stats = _parse(tmp_path, [
        '{"level":"error","ts":1795514400.6565845,"caller":"api/handler.go:33","msg":"quote failed",'
        '"error":"dial tcp 10.0.0.7:5432: connect: connection refused"}',
    ])  # fmt: skip
    (rec,) = records
    assert rec.level == "ERROR" and rec.ts == datetime.fromtimestamp(1795514400.6565845, UTC)
    assert rec.message == "quote failed: dial tcp 10.0.0.7:5432: connect: connection refused"
    assert stats.unrecognised == 0


def test_pino_numeric_level_epoch_millis_and_err_stack(tmp_path):
    # real output: node 20, the err object of a caught TypeError
    line = ('{"level":50,"time":1796017212728,"pid":1,"hostname":"h","err":{"type":"TypeError","message":'
            '"Cannot read properties of null (reading \'x\')","stack":"TypeError: Cannot read properties of null '
            '(reading \'x\')\\n    at [eval]:1:12\\n    at runScriptInThisContext (node:internal/vm:209:10)"},'
            '"msg":"request failed"}')  # fmt: skip
    (rec,), _ = _parse(tmp_path, [line])
    assert rec.level == "ERROR" and rec.ts == datetime.fromtimestamp(1796017212.728, UTC)
    assert rec.extra[0].startswith("TypeError: Cannot read properties of null")


def test_bunyan_iso_time_and_level_numbers(tmp_path):
    records, _ = _parse(tmp_path, [
        '{"name":"cart","hostname":"h","pid":1,"level":30,"msg":"listening","time":"2026-11-20T14:03:12.123Z","v":0}',
        '{"name":"cart","hostname":"h","pid":1,"level":60,"msg":"out of memory","time":"2026-11-20T14:03:13Z","v":0}',
    ])  # fmt: skip
    assert [(r.level, r.logger) for r in records] == [("INFO", "cart"), ("FATAL", "cart")]


def test_epoch_nanoseconds_as_string_and_logstash_stack_trace(tmp_path):
    records, _ = _parse(tmp_path, [
        '{"@timestamp":"1795514400123456789","level":"ERROR","logger_name":"c.a.Settle","message":"settle failed",'
        '"stack_trace":"java.lang.IllegalStateException: closed\\n\\tat com.acme.Settle.run(Settle.java:42)"}',
    ])  # fmt: skip
    (rec,) = records
    assert rec.ts is not None and rec.ts.year == 2026
    assert rec.extra == ["java.lang.IllegalStateException: closed", "\tat com.acme.Settle.run(Settle.java:42)"]


def test_logfmt(tmp_path):
    (rec,), stats = _parse(tmp_path, [
        'time=2026-11-28T08:00:01.639Z level=error msg="bulk index failed" err="es rejected" docs=219',
    ])  # fmt: skip
    assert (rec.ts, rec.level) == (_at("2026-11-28T08:00:01.639+00:00"), "ERROR")
    assert rec.message == "bulk index failed: es rejected" and stats.unrecognised == 0


def test_celery_worker_header_with_real_traceback(tmp_path):
    # real output: python3 logging with Celery's worker format, then logging.exception
    records, _ = _parse(tmp_path, [
        "[2026-11-30 05:40:15,246: ERROR/ForkPoolWorker-3] Task billing.tasks.x[1] raised unexpected: ZeroDivisionError",
        "Traceback (most recent call last):",
        '  File "<string>", line 5, in <module>',
        "ZeroDivisionError: division by zero",
        "[2026-11-30 05:40:16,001: INFO/MainProcess] Task billing.tasks.x[2] received",
    ])  # fmt: skip
    assert [(r.level, r.ts) for r in records] == [
        ("ERROR", _at("2026-11-30T05:40:15.246+00:00")),
        ("INFO", _at("2026-11-30T05:40:16.001+00:00")),
    ]
    assert records[0].extra[-1] == "ZeroDivisionError: division by zero"


def test_gunicorn_error_log_header(tmp_path):
    (rec,), _ = _parse(tmp_path, ["[2026-11-20 14:03:12 +0100] [42] [ERROR] Exception in worker process"])
    assert (rec.ts, rec.level) == (_at("2026-11-20T13:03:12+00:00"), "ERROR")


def test_log4j_level_first_pattern(tmp_path):
    (rec,), _ = _parse(tmp_path, ["ERROR 2026-11-20 14:03:12,345 [main] com.acme.Foo - boom"])
    assert (rec.level, rec.message) == ("ERROR", "[main] com.acme.Foo - boom")


def test_journald_short_iso_with_go_panic_and_zerolog_inside(tmp_path):
    # the panic and goroutine dump are real output of go 1.19 (go run), with journal prefixes
    prefix = "2026-12-01T09:01:56+0000 ledger-1 ledger[2968]: "
    records, stats = _parse(tmp_path, [
        '2026-12-01T09:01:55+0000 ledger-1 ledger[2211]: {"level":"info","time":"2026-12-01T09:01:55Z","message":"ok"}',
        prefix + "panic: runtime error: index out of range [3] with length 0",
        prefix,
        prefix + "goroutine 1 [running]:",
        prefix + "main.main()",
        prefix + "\t/tmp/logswork/p.go:2 +0x1a",
        "2026-12-01T09:01:57+0000 ledger-1 systemd[1]: ledger.service: Main process exited, status=2/INVALIDARGUMENT",
    ])  # fmt: skip
    ok, panic, exited = records
    assert (ok.level, ok.service, ok.message) == ("INFO", "ledger", "ok")
    assert panic.rank >= 4 and panic.ts == _at("2026-12-01T09:01:56+00:00")
    assert panic.extra[-1] == "\t/tmp/logswork/p.go:2 +0x1a" and panic.service == "ledger"
    assert exited.service == "systemd" and stats.unrecognised == 0


def test_journald_json_export(tmp_path):
    line = json.dumps({"__REALTIME_TIMESTAMP": "1795514400000000", "PRIORITY": "3", "SYSLOG_IDENTIFIER": "ledger",
                       "MESSAGE": "batch failed: timeout"})  # fmt: skip
    (rec,), _ = _parse(tmp_path, [line])
    assert (rec.level, rec.service, rec.message) == ("ERROR", "ledger", "batch failed: timeout")
    assert rec.ts == datetime.fromtimestamp(1795514400, UTC)


def test_syslog_rfc5424_and_rfc3164(tmp_path):
    records, _ = _parse(tmp_path, [
        "<187>1 2026-11-20T14:03:12.003Z web-1 orders 42 - - payment declined",
        "<30>Nov 20 14:03:13 web-1 orders[42]: order created",
    ])  # fmt: skip
    assert [(r.level, r.service, r.message) for r in records] == [
        ("ERROR", "orders", "payment declined"),
        ("INFO", "orders", "order created"),
    ]
    assert records[0].ts == _at("2026-11-20T14:03:12.003+00:00")


def test_cri_partial_lines_are_joined_and_traceback_lines_continue(tmp_path):
    records, stats = _parse(tmp_path, [
        "2026-11-29T11:41:06.672027526Z stderr F 2026-11-29 11:41:06,672 ERROR [tasks] handling failed",
        "2026-11-29T11:41:06.672066101Z stderr F Traceback (most recent call last):",
        '2026-11-29T11:41:06.672097206Z stderr F   File "/app/tasks.py", line 14, in handle',
        "2026-11-29T11:41:06.672100000Z stderr P TypeError: can only concatenate ",
        '2026-11-29T11:41:06.672200000Z stderr F str (not "NoneType") to str',
    ], name="0.log")  # fmt: skip
    (rec,) = records
    assert rec.level == "ERROR" and rec.extra[-1] == 'TypeError: can only concatenate str (not "NoneType") to str'
    assert stats.unrecognised == 0


def test_docker_json_file_wrapping_json_and_text(tmp_path):
    inner = json.dumps({"level": "error", "msg": "charge failed", "time": "2026-11-20T14:03:12Z"})
    records, _ = _parse(tmp_path, [
        json.dumps({"log": inner + "\n", "stream": "stderr", "time": "2026-11-20T14:03:12.5Z"}),
        json.dumps({"log": "plain crash line\n", "stream": "stderr", "time": "2026-11-20T14:03:13Z",
                    "kubernetes": {"labels": {"app": "payments"}}}),
    ])  # fmt: skip
    assert [(r.level, r.message, r.service) for r in records] == [
        ("ERROR", "charge failed", ""),
        ("INFO", "plain crash line", "payments"),
    ]
    assert records[1].ts == _at("2026-11-20T14:03:13+00:00")


def test_go_panic_dump_without_level_is_an_error_and_takes_the_time_before_it(tmp_path):
    # real output: go 1.19, an out-of-range index in main
    records, _ = _parse(tmp_path, [
        "2026/11/24 10:03:16 serving on :8080",
        "panic: runtime error: index out of range [3] with length 0",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/tmp/logswork/p.go:2 +0x1a",
        "exit status 2",
    ])  # fmt: skip
    assert records[0].level == "ERROR"  # the serving line's process crashed: the dump is its record
    assert records[0].extra[0].startswith("panic: runtime error")


def test_crash_dump_at_top_of_stderr_takes_the_first_time_after_it(tmp_path):
    records, stats = _parse(tmp_path, [
        "panic: boom",
        "",
        "goroutine 1 [running]:",
        "main.main()",
        "\t/src/main.go:9 +0x1d",
        "2026/11/24 10:03:20 restarted",
    ])  # fmt: skip
    crash, restarted = records
    assert crash.rank >= 4 and crash.ts == restarted.ts == _at("2026-11-24T10:03:20+00:00")


def test_unrecognised_lines_are_counted_not_glued(tmp_path):
    records, stats = _parse(tmp_path, [
        "2026-11-20 14:03:12,000 INFO started",
        "some free text that fits no format",
        "2026-11-20 14:03:13,000 INFO next",
    ])  # fmt: skip
    assert [r.message for r in records] == ["started", "some free text that fits no format", "next"]
    assert records[0].extra == [] and stats.unrecognised == 1
    assert stats.unrecognised_samples == ["some free text that fits no format"]


def test_a_100kb_json_record_parses_whole(tmp_path):
    stack = "\\n".join(f"\\tat com.acme.Frame{i}.run(Frame{i}.java:{i})" for i in range(3000))
    line = ('{"@timestamp":"2026-11-20T14:03:12Z","level":"ERROR","message":"listener failed",'
            f'"stack_trace":"java.lang.IllegalStateException: x\\n{stack}"}}')  # fmt: skip
    assert len(line) > 100_000
    (rec,), stats = _parse(tmp_path, [line])
    assert rec.level == "ERROR" and rec.extra[0] == "java.lang.IllegalStateException: x"
    assert stats.cut_lines == 0


def test_combined_access_log(tmp_path):
    records, stats = _parse(tmp_path, [
        '10.0.0.7 - - [20/Nov/2026:14:03:12 +0000] "POST /v1/orders HTTP/1.1" 500 12 "-" "curl/8"',
    ])  # fmt: skip
    assert [(r.level, r.ts) for r in records] == [("WARN", _at("2026-11-20T14:03:12+00:00"))]
    assert stats.unrecognised == 0


def test_iso_line_with_a_level_and_a_colon_is_not_a_journal_line(tmp_path):
    (rec,), _ = _parse(tmp_path, ["2026-11-20T09:00:00Z WARN tls: handshake failed"])
    assert (rec.level, rec.service, rec.message) == ("WARN", "", "tls: handshake failed")


def test_pino_pretty_multi_line_record_with_a_time_of_day(tmp_path):
    # pino-pretty's default layout: a time of day, the level, then the err object pretty-printed
    records, stats = _parse(tmp_path, [
        '{"level":30,"time":1795514400000,"msg":"listening"}',
        "[09:00:05.120] ERROR (42): request failed",
        "    err: {",
        '      "type": "TypeError",',
        '      "message": "Cannot read properties of undefined (reading \'percentOff\')",',
        '      "stack":',
        "          TypeError: Cannot read properties of undefined (reading 'percentOff')",
        "              at applyDiscount (/app/dist/cart/discount.js:14:31)",
        "    }",
        "[09:00:06.000] INFO (42): ok",
    ])  # fmt: skip
    _, failed, ok = records
    assert failed.level == "ERROR" and failed.ts == _at("2026-11-24T09:00:05.120+00:00")
    assert failed.extra[-1] == "    }" and ok.message == "(42): ok" and stats.unrecognised == 0


def test_logback_default_pattern_and_level_first(tmp_path):
    records, _ = _parse(tmp_path, [
        "2026-11-20 14:03:11.000 INFO  [main] c.a.App - started",
        "14:03:12.345 [http-nio-8080-exec-1] ERROR c.a.web.Api - request failed",
        "java.lang.IllegalStateException: closed",
        "\tat com.acme.web.Api.handle(Api.java:42)",
    ])  # fmt: skip
    _, failed = records
    assert (failed.level, failed.ts) == ("ERROR", _at("2026-11-20T14:03:12.345+00:00"))
    assert failed.extra[0] == "java.lang.IllegalStateException: closed"
