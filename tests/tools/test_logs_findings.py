"""What the log tools report beyond signatures: one service among many, deploys, examples."""

from __future__ import annotations

import json
from pathlib import Path

from tools.logs import ErrorSignaturesTool, ErrorTimelineTool, SearchLogsTool, template


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _run(tool: object, **kwargs: object) -> dict:
    return json.loads(tool.run(**kwargs))  # type: ignore[attr-defined]


def _two_services(root: Path) -> None:
    _write(root / "logs" / "payments-api.log", [
        "2026-11-28 10:00:00,000 INFO [deploy] payments 2.1.0 deployed (commit 1508598)",
        *[f"2026-11-28 10:{m:02d}:00,000 INFO [payments.callbacks] callback ok" for m in range(1, 40)],
        *[f"2026-11-28 10:{m:02d}:30,000 ERROR [payments.callbacks] ValueError: invalid literal for int()"
          for m in range(20, 40)],
    ])  # fmt: skip
    _write(root / "logs" / "search-indexer.log", [
        *[f"time=2026-11-28T10:{m:02d}:10Z level=info msg=indexed" for m in range(0, 40)],
        *[f'time=2026-11-28T10:{m:02d}:{s:02d}Z level=error msg="bulk index failed"'
          for m in range(15, 40) for s in (11, 21, 31)],
    ])  # fmt: skip


def test_service_narrows_to_that_service_and_says_what_it_left_out(tmp_path):
    _two_services(tmp_path)
    tool = ErrorSignaturesTool(roots=(tmp_path,))
    everything = _run(tool, logs="logs")
    assert everything["facts"]["signature"] == "bulk index failed"  # louder, but another service's
    narrowed = _run(tool, logs="logs", service="payments")
    assert narrowed["facts"]["signature"] == "[payments.callbacks] ValueError: invalid literal for int()"
    service = narrowed["data"]["service"]
    assert service["filtered"] is True and service["left_out"] == {"search-indexer.log": 115}
    assert "115 records of others left out (search-indexer.log 115)" in narrowed["summary"]


def test_service_named_by_no_record_filters_nothing_and_says_so(tmp_path):
    _two_services(tmp_path)
    out = _run(SearchLogsTool(roots=(tmp_path,)), logs="logs", service="billing", level="ERROR")
    assert out["data"]["matched"] == 20 + 75
    assert out["data"]["service"]["filtered"] is False
    assert "no record names service 'billing': nothing left out" in out["summary"]


def test_service_field_of_a_record_outranks_its_file_name(tmp_path):
    _write(tmp_path / "logs" / "all.jsonl", [
        '{"time":"2026-11-20T14:00:00Z","level":"error","service":"payments","msg":"card declined"}',
        '{"time":"2026-11-20T14:00:01Z","level":"error","service":"search","msg":"shard down"}',
        '{"time":"2026-11-20T14:00:02Z","level":"error","kubernetes":{"labels":{"app":"payments"}},"msg":"x"}',
    ])  # fmt: skip
    out = _run(SearchLogsTool(roots=(tmp_path,)), logs="logs", service="payments")
    assert [r["message"] for r in out["data"]["records"]] == ["card declined", "x"]
    assert out["data"]["service"]["left_out"] == {"search": 1}


def test_deploys_become_facts_for_the_commit_range(tmp_path):
    _write(tmp_path / "logs" / "shipping.jsonl", [
        '{"level":"info","ts":1795510000.0,"msg":"starting shipping","version":"2.2.0","commit":"aaa1111"}',
        '{"level":"info","ts":1795512000.0,"msg":"starting shipping","version":"2.3.0","commit":"394036a"}',
        '{"level":"info","ts":1795512060.0,"msg":"starting shipping","version":"2.3.0","commit":"394036a"}',
        *[f'{{"level":"info","ts":{1795510000 + 60 * i}.0,"msg":"quote served"}}' for i in range(100)],
        *[f'{{"level":"error","ts":{1795513000 + 60 * i}.0,"msg":"nil pointer dereference"}}' for i in range(20)],
    ])  # fmt: skip
    for cls in (ErrorSignaturesTool, ErrorTimelineTool):
        out = _run(cls(roots=(tmp_path,)), logs="logs")
        facts = out["facts"]
        assert facts["deploy_version"] == "2.3.0" and facts["deploy_sha"] == "394036a"
        assert facts["deployed_at"] == "2026-11-24T09:20:00Z"
        assert facts["previous_version"] == "2.2.0" and facts["previous_sha"] == "aaa1111"
        assert (facts["bad_rev"], facts["good_rev"]) == ("394036a", "aaa1111")
        assert [d["version"] for d in out["data"]["deploys"]] == ["2.2.0", "2.3.0"]  # a restart is no deploy
        assert "running 2.3.0 deployed 2026-11-24T09:20:00Z (before: 2.2.0)" in out["summary"]


def test_deploy_markers_in_text_lines(tmp_path):
    _write(tmp_path / "logs" / "app.log", [
        "2026-11-23T12:17:44.090Z  INFO 1 --- [main] c.a.i.InventoryApplication : "
        "Started InventoryApplication in 7.412 seconds (process running for 8.03)",
        "2026-11-23T12:17:45.000Z  INFO 1 --- [main] deploybot : Deployed inventory 4.2.0 (commit 36e1357)",
        "2026-11-23T12:30:00.000Z ERROR 1 --- [main] c.a.Svc : boom",
    ])  # fmt: skip
    facts = _run(ErrorSignaturesTool(roots=(tmp_path,)), logs="logs")["facts"]
    assert (facts["deploy_version"], facts["deploy_sha"]) == ("4.2.0", "36e1357")
    assert "previous_version" not in facts  # "running for 8.03" is no version


def test_signatures_keep_raw_examples_and_mask_mixed_ids(tmp_path):
    _write(tmp_path / "logs" / "a.log", [
        "2026-11-20 14:00:00,000 INFO start",
        *[f"2026-11-20 14:{m:02d}:00,000 ERROR reservation failed for order ord_{m}f3kq{m}x" for m in range(10, 20)],
    ])  # fmt: skip
    out = _run(ErrorSignaturesTool(roots=(tmp_path,)), logs="logs")
    (sig,) = out["data"]["signatures"]
    assert sig["signature"] == "reservation failed for order ord_<id>" and sig["count"] == 10
    assert sig["examples"] == [f"reservation failed for order ord_{m}f3kq{m}x" for m in (10, 11, 12)]
    assert template("pod checkout-7c9d8b6f5-qx2lm evicted, key a1b2c3d4e5") == "pod checkout-<pod> evicted, key <hex>"


def test_python_exception_with_a_two_line_message_groups_by_its_exception(tmp_path):
    trace = [
        "Traceback (most recent call last):",
        '  File "/app/catalog/fx.py", line 15, in rate',
        "    resp.raise_for_status()",
        '  File "/usr/local/lib/python3.11/site-packages/httpx/_models.py", line 763, in raise_for_status',
        "    raise HTTPStatusError(message, request=request, response=self)",
        "httpx.HTTPStatusError: Client error '404 Not Found' for url 'http://fx.internal:8080/v3/rates/EUR'",
        "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404",
    ]
    _write(tmp_path / "logs" / "a.log", [
        "2026-11-20 14:00:00,000 INFO start",
        *[line for m in range(10, 20) for line in (f"2026-11-20 14:{m:02d}:00,000 ERROR fx lookup failed", *trace)],
    ])  # fmt: skip
    out = _run(ErrorSignaturesTool(roots=(tmp_path,)), logs="logs")
    assert out["facts"]["signature"].startswith("httpx.HTTPStatusError: Client error '<num> Not Found'")
    assert out["data"]["signatures"][0]["frame"] == 'File "/app/catalog/fx.py", line 15, in rate'


def test_unrecognised_lines_are_reported_by_the_tools(tmp_path):
    _write(tmp_path / "logs" / "a.log", ["2026-11-20 14:00:00,000 ERROR boom", "what is this line"])
    out = _run(ErrorTimelineTool(roots=(tmp_path,)), logs="logs")
    assert out["data"]["unrecognised_lines"] == 1
    assert out["data"]["unrecognised_samples"] == ["what is this line"]
    assert "1 line(s) in no known format" in out["summary"]


def test_a_file_is_the_services_when_its_loggers_name_it(tmp_path):
    # the worker's own lines come from rq.worker; its checkout.* lines say whose worker it is
    _write(tmp_path / "logs" / "payments-worker.jsonl", [
        '{"ts":"2026-11-20T14:00:00Z","level":"info","logger":"checkout.payments.gateway","msg":"captured"}',
        '{"ts":"2026-11-20T14:00:01Z","level":"error","logger":"rq.worker","msg":"job failed",'
        '"exc_info":"Traceback (most recent call last):\\nKeyError: \'currency\'"}',
    ])  # fmt: skip
    _write(tmp_path / "logs" / "edge-proxy.log", ["2026-11-20T14:00:02Z WARN tls: handshake failed"])
    out = _run(SearchLogsTool(roots=(tmp_path,)), logs="logs", service="checkout")
    assert [r["message"] for r in out["data"]["records"]] == ["captured", "job failed"]
    assert out["data"]["service"]["left_out"] == {"edge-proxy.log": 1}


def test_the_frame_of_a_java_chain_is_the_root_causes(tmp_path):
    _write(tmp_path / "logs" / "inventory.log", [
        "2026-11-23T12:00:00.000Z  INFO 1 --- [main] c.a.App : ready",
        *[line for m in range(20, 30) for line in (
            f"2026-11-23T12:{m}:00.000Z ERROR 1 --- [nio-8080-exec-7] c.a.i.web.Api : Unhandled exception",
            "com.acme.inventory.service.ReservationException: reservation failed for order ord_8c278a9b5",
            "\tat com.acme.inventory.service.ReservationService.reserveAll(ReservationService.java:21)",
            "\tat org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:885)",
            'Caused by: java.lang.NullPointerException: Cannot invoke "Warehouse.getZone()"',
            "\tat java.base/java.util.Objects.requireNonNull(Objects.java:233)",
            "\tat com.acme.inventory.service.StockService.zoneOf(StockService.java:21)",
            "\t... 48 common frames omitted",
        )],
    ])  # fmt: skip
    out = _run(ErrorSignaturesTool(roots=(tmp_path,)), logs="logs")
    (sig,) = out["data"]["signatures"]
    assert sig["frame"] == "at com.acme.inventory.service.StockService.zoneOf(StockService.java:21)"


def test_a_long_service_input_is_clipped_not_refused_and_records_count_every_record_read(tmp_path):
    _two_services(tmp_path)
    tool = ErrorSignaturesTool(roots=(tmp_path,))
    out = _run(tool, logs="logs", service="payments " + "<!-- x -->" * 500)
    assert out["data"]["service"]["filtered"] is False and out["facts"]["signature"] == "bulk index failed"
    narrowed = _run(tool, logs="logs", service="payments")
    assert narrowed["data"]["records"] == out["data"]["records"] == 20 + 40 + 40 + 75
