"""OpenTelemetry traces of a run, received by a small OTLP/HTTP receiver on 127.0.0.1.

A real gateway with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set (and ``OTEL_SDK_DISABLED=true``
left as the project sets it for CrewAI) runs one incident triage on the offline model;
the receiver decodes what arrives with opentelemetry-proto. The spans form one trace:
the task, its steps under it, model and tool calls under their step.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.gateway.test_metrics import ended, events, submit, triage_inputs
from tests.support.gateway import PROJECT, Gateway, wait_for
from tests.support.redis import redis_url
from tests.support.scaleout import private_pg, redis_prefix

__all__ = ["private_pg", "redis_prefix", "redis_url"]  # fixtures, imported to be found

STEPS = {"analyze_logs", "investigate_code", "write_report"}


class Receiver:
    """Accepts POST /v1/traces (protobuf) and keeps every span with its resource's service name."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.take(self.path, body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self, path: str, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        {
                            "service": resource.get("service.name"),
                            "name": span.name,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent": span.parent_span_id.hex(),
                            "attributes": {a.key: _value(a.value) for a in span.attributes},
                        }
                    )
        with self._lock:
            self.paths.append(path)
            self.spans.extend(found)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.spans)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    running.thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def test_a_run_is_one_trace_task_steps_and_calls(tmp_path: Path, incident: dict, receiver: Receiver) -> None:
    gateway = Gateway(tmp_path / "gw", config_dir=PROJECT / "configs", roots=incident["root"])
    gateway.env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms between batches
            "OTEL_SDK_DISABLED": "true",  # as the project sets it for CrewAI: must not silence our traces
            "CREWAI_DISABLE_TELEMETRY": "true",
        }
    )
    gateway.start()
    try:
        task_id = submit(gateway.url, "incident_triage", triage_inputs(incident))
        assert ended(gateway.url, task_id) == "completed"
        log = events(gateway.url, task_id)

        def task_span() -> dict[str, Any] | None:
            tasks = [s for s in receiver.snapshot() if s["attributes"].get("crewgate.task_id") == task_id]
            return next((s for s in tasks if s["name"] == "task incident_triage"), None)

        root = wait_for(task_span, 30)
    finally:
        gateway.stop()  # flushes what is left
    spans = [s for s in receiver.snapshot() if s["trace_id"] == root["trace_id"]]
    assert set(receiver.paths) == {"/v1/traces"}
    assert {s["service"] for s in receiver.snapshot()} == {"crewgate"}  # nothing of CrewAI's own
    assert root["parent"] == ""
    assert root["attributes"]["crewgate.crew"] == "incident_triage"
    assert root["attributes"]["crewgate.status"] == "completed"
    assert all(s["attributes"]["crewgate.task_id"] == task_id for s in spans)

    steps = {s["span_id"]: s for s in spans if s["name"].startswith("step ")}
    assert {s["attributes"]["crewgate.step"] for s in steps.values()} == STEPS
    assert all(s["parent"] == root["span_id"] for s in steps.values())

    llm = [s for s in spans if s["name"].startswith("llm ")]
    tools = [s for s in spans if s["name"].startswith("tool ")]
    assert len(llm) == sum(e["type"] == "llm.completed" for e in log)
    assert len(tools) == sum(e["type"] in ("tool.finished", "tool.failed") for e in log)
    for span in llm + tools:
        parent = steps[span["parent"]]  # a grandchild of the task, under its own step
        assert parent["attributes"]["crewgate.step"] == span["attributes"]["crewgate.step"]
    assert {t["attributes"]["crewgate.tool"] for t in tools} == {
        e["data"]["tool"] for e in log if e["type"] == "tool.finished"
    }
    prompt = sum(e["data"].get("usage", {}).get("prompt_tokens", 0) for e in log if e["type"] == "llm.completed")
    assert sum(s["attributes"]["gen_ai.usage.input_tokens"] for s in llm) == prompt > 0
    assert {s["attributes"]["gen_ai.request.model"] for s in llm} == {"offline"}
    assert {s["attributes"]["crewgate.agent"] for s in llm} == {"log_analyst", "code_investigator", "triage_lead"}


def test_no_endpoint_no_tracing(tmp_path: Path, incident: dict) -> None:
    gateway = Gateway(tmp_path / "gw", config_dir=PROJECT / "configs", roots=incident["root"])
    gateway.env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    gateway.start()
    try:
        task_id = submit(gateway.url, "incident_triage", triage_inputs(incident))
        assert ended(gateway.url, task_id) == "completed"
    finally:
        gateway.stop()
    assert "tracing runs" not in gateway.logs()
    assert "opentelemetry" not in gateway.logs().lower()


def test_a_run_on_a_celery_worker_is_traced_from_the_worker(
    tmp_path: Path, incident: dict, receiver: Receiver, redis_url: str, redis_prefix: str, private_pg: str
) -> None:
    from tests.gateway.test_metrics import celery_settings
    from tests.support.scaleout import Worker

    settings = celery_settings(redis_url, redis_prefix, private_pg)
    gateway = Gateway(tmp_path / "gw", config_dir=PROJECT / "configs", roots=incident["root"], **settings)
    worker = Worker(tmp_path / "w", config_dir=PROJECT / "configs", roots=incident["root"], concurrency=1, **settings)
    worker.env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    try:
        gateway.start()
        worker.start()
        task_id = submit(gateway.url, "incident_triage", triage_inputs(incident))
        assert ended(gateway.url, task_id) == "completed"

        def steps_under_the_task() -> list[dict[str, Any]]:
            spans = [s for s in receiver.snapshot() if s["attributes"].get("crewgate.task_id") == task_id]
            roots = [s for s in spans if s["name"] == "task incident_triage"]
            if not roots:
                return []
            return [s for s in spans if s["parent"] == roots[0]["span_id"] and s["name"].startswith("step ")]

        steps = wait_for(lambda: len(steps_under_the_task()) == len(STEPS) and steps_under_the_task(), 30)
    finally:
        worker.stop()
        gateway.stop()
    assert {s["attributes"]["crewgate.step"] for s in steps} == STEPS
    assert {s["service"] for s in receiver.snapshot()} == {"crewgate-worker"}  # the gateway ran no crew
