"""The gateway over real HTTP and WebSocket: uvicorn on 127.0.0.1, real clients."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    model = ScriptedModel(default=text("A paragraph."), delay_s=0.3)
    with ScriptedServer(model) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, incident: dict, scripted: ScriptedServer) -> Iterator[Gateway]:
    work = tmp_path_factory.mktemp("gateway")
    configs = write_configs(work / "configs", scripted_base_url=scripted.base_url)
    gw = Gateway(work, config_dir=configs, roots=incident["root"], max_concurrency=4).start()
    yield gw
    gw.stop()


def triage_inputs(incident: dict) -> dict[str, str]:
    d = incident["dir"]
    return {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo"), "runbooks": str(d / "runbooks")}


def submit(gw: Gateway, crew: str, inputs: dict[str, Any], **headers: str) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/tasks", json={"crew": crew, "inputs": inputs}, headers=headers)


def watch(gw: Gateway, task_id: str, after: int = 0, stop_after: int | None = None) -> tuple[list[dict], int | None]:
    """Read frames until the server closes (or ``stop_after`` frames); returns (events, close code)."""
    events: list[dict] = []
    with connect(f"{gw.ws_url}/v1/tasks/{task_id}/events?after={after}", open_timeout=10) as ws:
        try:
            while stop_after is None or len(events) < stop_after:
                events.append(json.loads(ws.recv(timeout=60)))
        except ConnectionClosed:
            pass
        code = ws.close_code if stop_after is None else None
    return events, code


def all_events(gw: Gateway, task_id: str) -> list[dict]:
    out: list[dict] = []
    after = 0
    with gw.client() as c:
        while True:
            page = c.get(f"/v1/tasks/{task_id}/events", params={"after": after, "limit": 50}).json()
            out += page["data"]
            after = page["next_after"]
            if not page["has_more"]:
                return out


def test_submit_and_watch_to_the_terminal_event(gateway: Gateway, incident: dict) -> None:
    response = submit(gateway, "incident_triage", triage_inputs(incident))
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["location"] == f"/v1/tasks/{body['id']}"
    assert body["links"]["events"] == f"/v1/tasks/{body['id']}/events"

    events, code = watch(gateway, body["id"])
    assert code == 1000
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "task.queued" and events[-1]["type"] == "task.completed"
    assert all(e["task_id"] == body["id"] and e["v"] == 1 for e in events)
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)

    with gateway.client() as c:
        task = c.get(f"/v1/tasks/{body['id']}").json()
    assert task["status"] == "completed"
    assert incident["expected"]["culprit_sha"][:12] in task["result"]
    assert task["events"] == len(events)
    assert task["config_version"] == body["config_version"]
    assert task["usage"]["total_tokens"] > 0


def test_resume_after_disconnect_has_no_gap_or_duplicate(gateway: Gateway) -> None:
    task_id = submit(gateway, "slow", {"topic": "resume"}).json()["id"]
    first, _ = watch(gateway, task_id, stop_after=4)  # drop off mid-stream
    rest, code = watch(gateway, task_id, after=first[-1]["seq"])
    assert code == 1000
    seqs = [e["seq"] for e in first + rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert first + rest == all_events(gateway, task_id)
    assert rest[-1]["type"] == "task.completed"


def test_two_watchers_and_the_firehose_see_the_same_events(gateway: Gateway) -> None:
    seen: dict[str, list[dict]] = {"firehose": []}
    ready = threading.Event()
    task_ids: list[str] = []

    def firehose() -> None:
        with connect(f"{gateway.ws_url}/v1/events?after=-1&crew=slow", open_timeout=10) as ws:
            ready.set()
            while True:
                event = json.loads(ws.recv(timeout=60))
                seen["firehose"].append(event)
                if event["type"] == "task.completed" and event["task_id"] in task_ids:
                    return

    thread = threading.Thread(target=firehose)
    thread.start()
    assert ready.wait(10)
    task_id = submit(gateway, "slow", {"topic": "watchers"}).json()["id"]
    task_ids.append(task_id)
    results: list[list[dict]] = [[], []]

    def watcher(i: int) -> None:
        results[i], _ = watch(gateway, task_id)

    watchers = [threading.Thread(target=watcher, args=(i,)) for i in range(2)]
    for t in watchers:
        t.start()
    for t in [*watchers, thread]:
        t.join(timeout=90)
    mine = [e for e in seen["firehose"] if e["task_id"] == task_id]
    assert results[0] == results[1] == mine
    assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1))


def test_sse_stream_honours_last_event_id(gateway: Gateway) -> None:
    task_id = submit(gateway, "slow", {"topic": "sse"}).json()["id"]
    wait_for(lambda: all_events(gateway, task_id)[-1]["type"] == "task.completed", timeout=60)
    with httpx.stream(
        "GET",
        f"{gateway.url}/v1/tasks/{task_id}/events",
        headers={"Accept": "text/event-stream", "Last-Event-ID": "3"},
        timeout=30,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    frames = [f for f in body.split("\n\n") if f.startswith("id: ")]
    ids = [int(f.split("\n")[0][4:]) for f in frames]
    assert ids == list(range(4, len(all_events(gateway, task_id)) + 1))
    last = json.loads(frames[-1].split("data: ", 1)[1])
    assert last["type"] == "task.completed"


def test_cancel_a_running_task(gateway: Gateway) -> None:
    task_id = submit(gateway, "slow", {"topic": "cancel me"}).json()["id"]
    with connect(f"{gateway.ws_url}/v1/tasks/{task_id}/events", open_timeout=10) as ws:
        while json.loads(ws.recv(timeout=30))["type"] != "step.started":
            pass
        with gateway.client() as c:
            response = c.post(f"/v1/tasks/{task_id}/cancel")
        assert response.status_code == 200
        events = []
        try:
            while True:
                events.append(json.loads(ws.recv(timeout=30)))
        except ConnectionClosed:
            pass
    assert events[-1]["type"] == "task.cancelled"
    with gateway.client() as c:
        task = c.get(f"/v1/tasks/{task_id}").json()
        assert task["status"] == "cancelled"
        assert sum(1 for e in all_events(gateway, task_id) if e["type"] == "step.started") < 6
        again = c.post(f"/v1/tasks/{task_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "task_finished"


def test_retry_makes_a_new_task_with_the_same_inputs(gateway: Gateway) -> None:
    task_id = submit(gateway, "slow", {"topic": "retry"}).json()["id"]
    with gateway.client() as c:
        assert c.post(f"/v1/tasks/{task_id}/retry").status_code == 409  # still running
        c.post(f"/v1/tasks/{task_id}/cancel")  # takes effect at the next model call
        wait_for(lambda: c.get(f"/v1/tasks/{task_id}").json()["status"] == "cancelled", timeout=30)
        retried = c.post(f"/v1/tasks/{task_id}/retry")
        assert retried.status_code == 202
        new = c.get(f"/v1/tasks/{retried.json()['id']}").json()
    assert new["retry_of"] == task_id
    assert new["inputs"] == {"topic": "retry", "steps_note": ""}
    assert new["id"] != task_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": {}}, "crew"),
        ({"crew": "Bad Name!"}, "crew"),
        ({"crew": "slow", "inputs": "text"}, "inputs"),
        ({"crew": "slow", "inputs": {}, "extra": 1}, "extra"),
    ],
)
def test_malformed_requests_get_422_naming_the_field(gateway: Gateway, body: dict, field: str) -> None:
    with gateway.client() as c:
        before = c.get("/v1/tasks", params={"limit": 200}).json()["data"]
        response = c.post("/v1/tasks", json=body)
        after = c.get("/v1/tasks", params={"limit": 200}).json()["data"]
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in [d["field"] for d in error["details"]]
    assert len(after) == len(before)  # nothing was accepted


def test_inputs_checked_against_the_crew(gateway: Gateway, incident: dict) -> None:
    inputs = triage_inputs(incident) | {"logs": "/etc", "since": "not a time"}
    del inputs["repo"]
    response = submit(gateway, "incident_triage", inputs)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_inputs"
    fields = {d["field"]: d["message"] for d in error["details"]}
    assert set(fields) == {"inputs.logs", "inputs.since", "inputs.repo"}
    assert "outside the allowed roots" in fields["inputs.logs"]


def test_unknown_things_are_404(gateway: Gateway) -> None:
    with gateway.client() as c:
        crew = c.post("/v1/tasks", json={"crew": "nope", "inputs": {}})
        assert crew.status_code == 404 and crew.json()["error"]["code"] == "unknown_crew"
        assert c.get("/v1/tasks/nope").json()["error"]["code"] == "unknown_task"
        assert c.get("/v1/crews/nope").status_code == 404
    with connect(f"{gateway.ws_url}/v1/tasks/nope/events", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4404


def test_bad_json_and_oversized_bodies(gateway: Gateway) -> None:
    with gateway.client() as c:
        broken = c.post("/v1/tasks", content=b"{not json", headers={"content-type": "application/json"})
        assert broken.status_code == 422
        huge = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "x" * 2_000_000}})
        assert huge.status_code == 413
        assert huge.json()["error"]["code"] == "request_too_large"

        def chunks():  # no Content-Length: the limit applies as the body streams in
            yield b'{"crew": "slow", "inputs": {"topic": "'
            for _ in range(40):
                yield b"y" * 50_000
            yield b'"}}'

        streamed = c.post("/v1/tasks", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413
        assert streamed.json()["error"]["code"] == "request_too_large"


def test_idempotency_key(gateway: Gateway) -> None:
    first = submit(gateway, "slow", {"topic": "once"}, **{"Idempotency-Key": "k-123"})
    again = submit(gateway, "slow", {"topic": "once"}, **{"Idempotency-Key": "k-123"})
    other = submit(gateway, "slow", {"topic": "twice"}, **{"Idempotency-Key": "k-123"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert other.status_code == 409
    assert other.json()["error"]["details"]["task_id"] == first.json()["id"]


def test_listing_filters_and_pages(gateway: Gateway) -> None:
    ids = [submit(gateway, "slow", {"topic": f"page {i}"}).json()["id"] for i in range(3)]
    with gateway.client() as c:
        page1 = c.get("/v1/tasks", params={"crew": "slow", "limit": 2}).json()
        page2 = c.get("/v1/tasks", params={"crew": "slow", "limit": 2, "cursor": page1["next_cursor"]}).json()
        for task_id in ids:
            c.post(f"/v1/tasks/{task_id}/cancel")
    listed = [t["id"] for t in page1["data"] + page2["data"]]
    assert listed[:3] == list(reversed(ids))
    assert all(t["crew"] == "slow" for t in page1["data"] + page2["data"])


def test_crews_agents_health_and_docs(gateway: Gateway) -> None:
    with gateway.client() as c:
        crew = c.get("/v1/crews/incident_triage").json()
        assert crew["inputs"]["required"] == ["service", "logs", "repo"]
        assert crew["inputs"]["properties"]["since"]["format"] == "date-time"
        assert {a["name"] for a in c.get("/v1/agents").json()} >= {"log_analyst", "code_investigator", "triage_lead"}
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json()["status"] == "ready"
        spec = c.get("/openapi.json").json()
        assert "/v1/tasks/{task_id}/cancel" in spec["paths"]
        assert c.get("/docs").status_code == 200
