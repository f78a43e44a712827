"""The HTTP/WebSocket boundary: offline docs, an OpenAPI document that matches the real
responses, text that cannot be stored refused where it enters, tokens compared as bytes,
bounded handshakes, and secrets kept out of the logs."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sqlite3
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from jsonschema import Draft202012Validator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.eventlog import EventLog
from gateway.store import EventInput, TaskStatus, open_store
from tests.support.gateway import Gateway, wait_for, write_configs

KEYS = "alpha-key,clé-secrète"
INPUTS = {"service": "checkout", "logs": "incident/logs", "repo": "incident/repo"}


def _gateway(work: Path, incident: dict, **settings: Any) -> Gateway:
    return Gateway(
        work, config_dir=write_configs(work / "configs"), roots=incident["root"], poll_interval_s=0.2, **settings
    ).start()


@pytest.fixture(scope="module")
def open_gw(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    # run_tasks=false: tasks stay queued, and a test writes their events as a worker would
    gw = _gateway(tmp_path_factory.mktemp("boundary-open"), incident, run_tasks="false")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def secured_gw(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    gw = _gateway(
        tmp_path_factory.mktemp("boundary-auth"), incident, run_tasks="false", api_keys=KEYS, request_head_timeout_s=2
    )
    yield gw
    gw.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_db_gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, incident: dict):
    extra = {"database_url": request.getfixturevalue("pg_url")} if request.param == "postgresql" else {}
    gw = _gateway(tmp_path_factory.mktemp(f"boundary-{request.param}"), incident, run_tasks="false", **extra)
    yield gw
    gw.stop()


def _submit(gw: Gateway, **extra: Any) -> str:
    r = httpx.post(f"{gw.url}/v1/tasks", json={"crew": "incident_triage", "inputs": INPUTS}, timeout=30, **extra)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


# 1. docs -------------------------------------------------------------------------------------------


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_and_every_asset_they_reference_are_served_by_the_gateway(open_gw: Gateway, page: str) -> None:
    with open_gw.client() as c:
        html = c.get(page)
        assert html.status_code == 200
        parser = _Assets()
        parser.feed(html.text)
        absolute = re.findall(r"""https?://[^\s'"<>)]+""", html.text)
        assert parser.urls, "the page references no assets"
        for url in parser.urls + absolute:
            full = urljoin(f"{open_gw.url}{page}", url)
            assert urlsplit(full).netloc == urlsplit(open_gw.url).netloc, f"{page} loads {url} from another host"
            asset = c.get(full)
            assert asset.status_code == 200 and asset.content, url


# 2. OpenAPI matches the responses --------------------------------------------------------------------


def _documented(doc: dict[str, Any], method: str, path: str, status: int) -> Draft202012Validator:
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    media = responses[str(status)]["content"]["application/json"]
    validator = Draft202012Validator({**media["schema"], "components": doc["components"]})
    for example in media.get("examples", {}).values():
        validator.validate(example["value"])  # the documented examples are real too
    return validator


def _real_errors(open_gw: Gateway, secured_gw: Gateway) -> list[tuple[str, str, httpx.Response]]:
    other = {**INPUTS, "service": "payments"}
    big = {"crew": "incident_triage", "inputs": {"service": "x" * 1_100_000}}
    with open_gw.client() as c, secured_gw.client() as s:
        key = {"Idempotency-Key": "boundary-409"}
        assert c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": INPUTS}, headers=key).status_code == 202
        return [
            ("get", "/v1/tasks", s.get("/v1/tasks")),
            ("post", "/v1/tasks", s.post("/v1/tasks", json={"crew": "incident_triage"})),
            ("get", "/v1/tasks/{task_id}/events", s.get("/v1/tasks/x/events")),
            ("get", "/v1/crews", s.get("/v1/crews")),
            ("get", "/v1/tasks/{task_id}", c.get("/v1/tasks/no-such-task")),
            ("post", "/v1/tasks/{task_id}/cancel", c.post("/v1/tasks/no-such-task/cancel")),
            ("get", "/v1/tasks/{task_id}/events", c.get("/v1/tasks/no-such-task/events")),
            ("get", "/v1/crews/{name}", c.get("/v1/crews/no_such_crew")),
            ("post", "/v1/tasks", c.post("/v1/tasks", json={"crew": "no_such_crew"})),
            ("post", "/v1/tasks", c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": other}, headers=key)),
            ("post", "/v1/tasks", c.post("/v1/tasks", json=big)),
            ("post", "/v1/tasks", c.post("/v1/tasks", json={"crew": "Not A Crew"})),
            ("post", "/v1/tasks", c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": {}})),
            ("get", "/v1/tasks", c.get("/v1/tasks", params={"limit": 0})),
            ("get", "/v1/tasks/{task_id}/events", c.get("/v1/tasks/x/events", params={"after": -1})),
        ]


def test_every_documented_error_is_the_shape_the_server_sends(open_gw: Gateway, secured_gw: Gateway) -> None:
    doc = httpx.get(f"{open_gw.url}/openapi.json").json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    seen: set[int] = set()
    for method, path, response in _real_errors(open_gw, secured_gw):
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        seen.add(response.status_code)
        _documented(doc, method, path, response.status_code).validate(response.json())
    assert seen == {401, 404, 409, 413, 422}


def test_documented_success_shapes_and_their_examples_are_real(open_gw: Gateway) -> None:
    doc = httpx.get(f"{open_gw.url}/openapi.json").json()
    task_id = _submit(open_gw)
    with open_gw.client() as c:
        for path, url in (
            ("/v1/tasks", "/v1/tasks"),
            ("/v1/tasks/{task_id}", f"/v1/tasks/{task_id}"),
            ("/v1/tasks/{task_id}/events", f"/v1/tasks/{task_id}/events"),
        ):
            media = doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
            schema = media["schema"]
            if "$ref" in schema:  # the model's own examples, in its component
                examples = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]].get("examples", [])
            else:
                examples = []
            assert examples, f"{path} documents no example"
            validator = Draft202012Validator({**schema, "components": doc["components"]})
            for example in examples:
                validator.validate(example)
            validator.validate(c.get(url).json())


def test_openapi_declares_bearer_auth_for_the_protected_routes(open_gw: Gateway, secured_gw: Gateway) -> None:
    for gw, optional in ((open_gw, True), (secured_gw, False)):
        doc = httpx.get(f"{gw.url}/openapi.json").json()
        schemes = doc["components"]["securitySchemes"]
        assert [s for s in schemes.values() if s == {"type": "http", "scheme": "bearer"} or s.get("scheme") == "bearer"]
        name = next(iter(schemes))
        for path, method in (("/v1/tasks", "post"), ("/v1/tasks/{task_id}/events", "get"), ("/v1/crews", "get")):
            security = doc["paths"][path][method]["security"]
            assert {name: []} in security
            assert ({} in security) is optional  # without keys a request needs no token
        assert "security" not in doc["paths"]["/healthz"]["get"]


# 3. text that cannot be stored, and streams that never stop on a record -------------------------------


def test_unencodable_text_is_refused_at_the_boundary_naming_the_field(open_gw: Gateway) -> None:
    with open_gw.client() as c:
        for bad in ("svc\\ud800", "svc\\udfff tail", "nul\\u0000byte"):
            body = '{"crew": "incident_triage", "inputs": {"service": "%s", "logs": "incident/logs", "repo": "incident/repo"}}'
            r = c.post("/v1/tasks", content=body % bad, headers={"content-type": "application/json"})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["details"][0]["field"] == "inputs.service"
        r = c.post(
            "/v1/tasks",
            content='{"crew": "incident_triage", "inputs": {"\\ud800": "x"}}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422
        r = c.get("/v1/tasks", params={"crew": "a\x00b"})
        assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.crew"
        assert c.get("/v1/tasks").status_code == 200  # nothing was stored that breaks reads


def test_a_misspelt_query_parameter_is_an_error_not_an_unfiltered_list(open_gw: Gateway) -> None:
    with open_gw.client() as c:
        r = c.get("/v1/tasks", params={"stauts": "failed"})
        assert r.status_code == 422
        assert r.json()["error"]["details"] == [{"field": "query.stauts", "message": "unknown parameter"}]
        assert c.get("/v1/tasks", params={"status": "failed", "limit": 5}).status_code == 200


def _write_as_worker(db_url: str, task_id: str, *, through_log: bool) -> None:
    """Events whose text holds lone surrogates, as a tool or model may produce them."""

    async def run() -> None:
        store = open_store(db_url)
        try:
            if through_log:
                log = EventLog(store)
                await log.append(task_id, [EventInput("agent.log", "log_analyst", data={"message": "bad \ud800 text"})])
                done = EventInput("task.completed", data={"output": "tail \udfff", "nested": [{"k\udc80": "v"}]})
                await log.finish(task_id, TaskStatus.completed, done, result="result \ud83d\ude00 \ud800")
            else:  # a record stored by an older version, straight into the log
                await store.append(task_id, [EventInput("agent.log", data={"message": "legacy \ud800"})])
        finally:
            await store.close()

    asyncio.run(run())


def _ws_frames(url: str, until: Any) -> tuple[list[dict[str, Any]], int | None]:
    frames: list[dict[str, Any]] = []
    with connect(url, open_timeout=10) as ws:
        try:
            while True:
                frames.append(json.loads(ws.recv(timeout=20)))
                if until(frames[-1]):
                    break
        except ConnectionClosed:
            pass
        return frames, ws.close_code


def test_a_bad_string_from_a_tool_or_model_never_stops_reads_or_streams(open_gw: Gateway) -> None:
    task_id = _submit(open_gw)
    _write_as_worker(open_gw.env["CREWGATE_DATABASE_URL"], task_id, through_log=True)
    with open_gw.client() as c:
        task = c.get(f"/v1/tasks/{task_id}")
        assert task.status_code == 200, task.text
        assert task.json()["result"] == "result \U0001f600 \ufffd"  # a valid pair is kept, a lone half replaced
        assert c.get("/v1/tasks").status_code == 200
        page = c.get(f"/v1/tasks/{task_id}/events")
        assert page.status_code == 200
        assert [e["type"] for e in page.json()["data"]] == ["task.queued", "agent.log", "task.completed"]
        assert page.json()["data"][1]["data"]["message"] == "bad \ufffd text"
        with c.stream("GET", f"/v1/tasks/{task_id}/events", headers={"accept": "text/event-stream"}) as sse:
            assert sse.status_code == 200
            text = "".join(sse.iter_text())
        assert "event: task.completed" in text and "\ufffd" in text
    frames, code = _ws_frames(f"{open_gw.ws_url}/v1/tasks/{task_id}/events", lambda f: False)
    assert [f["type"] for f in frames][-1] == "task.completed" and code == 1000
    firehose, _ = _ws_frames(
        f"{open_gw.ws_url}/v1/events?after=0", lambda f: f["task_id"] == task_id and f["type"] == "task.completed"
    )
    assert firehose[-1]["data"]["nested"] == [{"k\ufffd": "v"}]


def test_a_legacy_row_holding_a_lone_surrogate_is_streamed_as_an_escape(open_gw: Gateway) -> None:
    task_id = _submit(open_gw)
    _write_as_worker(open_gw.env["CREWGATE_DATABASE_URL"], task_id, through_log=False)
    frames, _ = _ws_frames(f"{open_gw.ws_url}/v1/tasks/{task_id}/events", lambda f: f["type"] == "agent.log")
    assert [f["type"] for f in frames] == ["task.queued", "agent.log"]
    assert frames[1]["data"]["message"] == "legacy \ud800"  # the JSON escape, parsed back


def test_a_websocket_whose_read_fails_closes_1011_and_logs_the_task(open_gw: Gateway) -> None:
    task_id = _submit(open_gw)
    _write_as_worker(open_gw.env["CREWGATE_DATABASE_URL"], task_id, through_log=False)
    db = open_gw.env["CREWGATE_DATABASE_URL"].split(":///", 1)[1]
    with sqlite3.connect(db) as conn:  # a row damaged on disk: its data is no longer JSON
        conn.execute("UPDATE events SET data = '{\"message\": ' WHERE task_id = ? AND seq = 2", (task_id,))
    frames, code = _ws_frames(f"{open_gw.ws_url}/v1/tasks/{task_id}/events", lambda f: False)
    assert [f["type"] for f in frames] in ([], ["task.queued"])  # the page holding the damaged row fails
    assert code == 1011
    wait_for(lambda: any(task_id in line and "failed" in line for line in open_gw.logs().splitlines()), timeout=10)


# 4. tokens are compared as bytes ------------------------------------------------------------------------


def test_non_ascii_tokens_are_refused_or_accepted_never_a_crash(secured_gw: Gateway) -> None:
    with secured_gw.client() as c:
        for token in ("café", "\u00e9", "alpha-key\u00e9"):
            r = c.get("/v1/tasks", headers={"Authorization": f"Bearer {token}".encode()})
            assert r.status_code == 401, r.text
            assert r.json()["error"]["code"] == "unauthorized"
        ok = c.get("/v1/tasks", headers={"Authorization": "Bearer clé-secrète".encode()})
        assert ok.status_code == 200
    for query in ("token=%C3%A9", "token=caf%C3%A9", "token=%ED%A0%80"):
        frames, code = _ws_frames(f"{secured_gw.ws_url}/v1/events?{query}", lambda f: True)
        assert frames == [] and code == 4401
    _, code = _ws_frames(f"{secured_gw.ws_url}/v1/tasks/x/events?token=cl%C3%A9-secr%C3%A8te", lambda f: True)
    assert code == 4404  # authorised, and there is no such task


# 5. values that reached the database as 500s -----------------------------------------------------------


def test_edge_values_are_4xx_with_the_error_shape_on_every_store(any_db_gw: Gateway) -> None:
    task_id = _submit(any_db_gw)
    with any_db_gw.client() as c:
        checks = [
            c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": INPUTS}, headers={"Idempotency-Key": ""}),
            c.get(f"/v1/tasks/{task_id}/events", params={"after": 2**31}),
            c.get(f"/v1/tasks/{task_id}/events", params={"after": 2**53}),
            c.get("/v1/tasks/abc%00def"),
            c.get("/v1/tasks/abc%00def/events"),
            c.post("/v1/tasks/abc%00def/cancel"),
        ]
        for r in checks:
            assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
            assert set(r.json()["error"]) == {"code", "message", "details"}
        assert c.get(f"/v1/tasks/{task_id}/events", params={"after": 2**31 - 1}).json()["data"] == []
    _, code = _ws_frames(f"{any_db_gw.ws_url}/v1/tasks/{'%C3%A9' * 100}/events", lambda f: True)
    assert code == 4404  # the reason naming the id is cut to what a close frame carries
    for path in ("/v1/tasks/abc%00def/events", f"/v1/events?after={2**63}", "/v1/events?crew=a%00b"):
        frames, code = _ws_frames(f"{any_db_gw.ws_url}{path}", lambda f: True)
        assert frames == [] and code is not None and code != 1011 and code >= 1000, (path, code)
    assert "Traceback" not in any_db_gw.logs()


# 6. handshakes are bounded -------------------------------------------------------------------------------


def _raw_handshake(gw: Gateway, target: str, extra: str = "", end: str = "\r\n") -> bytes:
    """Send one WebSocket upgrade request and read until the server answers and closes, or a deadline."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}{end}"
    )
    received = b""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=1) as sock:
        sock.sendall(request.encode())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return received  # closed by the server
            received += chunk
            if received.startswith((b"HTTP/1.1 4", b"HTTP/1.1 5")) and b"\r\n\r\n" in received:
                return received
    raise AssertionError(f"the server neither answered nor closed: {received[:200]!r}")


@pytest.mark.parametrize("path", ["/v1/events", "/v1/tasks/x/events"])
def test_an_oversized_websocket_handshake_is_answered_and_closed(secured_gw: Gateway, path: str) -> None:
    answer = _raw_handshake(secured_gw, f"{path}?token={'a' * 8192}")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
    with connect(f"{secured_gw.ws_url}{path}?token=alpha-key&after=0", open_timeout=10):
        pass  # a handshake of ordinary size still works


def test_an_endless_or_stalled_request_head_is_answered_or_closed(secured_gw: Gateway) -> None:
    huge = "".join(f"X-Pad-{i}: {'p' * 4000}\r\n" for i in range(100))  # 400 KB of headers, each line allowed
    answer = _raw_handshake(secured_gw, "/v1/events?token=alpha-key", extra=huge)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), answer[:200]
    stalled = _raw_handshake(secured_gw, "/v1/events?token=alpha-key", end="")  # the blank line never comes
    assert stalled == b""  # closed by the server: the head did not arrive in time


# 7. secrets stay out of the logs --------------------------------------------------------------------------


def test_tokens_in_query_strings_never_reach_the_logs(secured_gw: Gateway) -> None:
    _ws_frames(f"{secured_gw.ws_url}/v1/tasks/x/events?token=alpha-key", lambda f: True)
    _ws_frames(f"{secured_gw.ws_url}/v1/tasks/y/events?after=0&token=cl%C3%A9-secr%C3%A8te", lambda f: True)
    httpx.get(f"{secured_gw.url}/v1/crews?token=alpha-key", headers={"Authorization": "Bearer alpha-key"})
    wait_for(lambda: "/v1/crews" in secured_gw.logs() and "/v1/tasks/y/events" in secured_gw.logs(), timeout=10)
    logs = secured_gw.logs()
    assert "alpha-key" not in logs and "secr" not in logs
    assert "token=[redacted]" in logs


def test_an_event_row_holding_a_lone_surrogate_still_goes_out_as_valid_utf8() -> None:
    """A row written before appends were cleaned must not stop a stream that reaches it."""
    from datetime import UTC, datetime

    from gateway.store import StoredEvent

    event = StoredEvent(
        id=7,
        seq=1,
        task_id="t",
        crew="c",
        ts=datetime(2026, 11, 30, tzinfo=UTC),
        type="tool.finished",
        agent=None,
        step=None,
        data={"output": "svc\ud800 café"},
    )
    wire = event.wire
    wire.encode("utf-8")  # what a WebSocket or SSE send does; raised before
    assert json.loads(wire)["data"]["output"] == "svc\ud800 café"
