"""Streaming under pressure: a watcher too slow to keep up, and many tasks at once."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect
from websockets.uri import parse_uri

from gateway.store import EventInput, TaskStatus, open_store
from tests.support.gateway import Gateway, wait_for, write_configs

BIG = "x" * 2000
TOTAL = 3000


@pytest.fixture
def gateway(tmp_path: Path, incident: dict) -> Iterator[Gateway]:
    gw = Gateway(
        tmp_path,
        config_dir=write_configs(tmp_path / "configs"),
        roots=incident["root"],
        ws_buffer=8,
        ws_stall_timeout_s=0.5,
        poll_interval_s=0.2,
        max_concurrency=16,
    ).start()
    yield gw
    gw.stop()


def fill_log(url: str) -> str:
    """A task whose log holds TOTAL large events, written through the real store."""

    async def run() -> str:
        store = open_store(url)
        await store.migrate()
        record, _ = await store.create_task("incident_triage", {"service": "lag"}, "test")
        for start in range(1, TOTAL, 200):
            batch = [
                EventInput("agent.log", data={"message": BIG, "n": n}) for n in range(start, min(start + 200, TOTAL))
            ]
            await store.append(record.id, batch)
        await store.close()
        return record.id

    return asyncio.run(run())


def finish(url: str, task_id: str) -> None:
    async def run() -> None:
        store = open_store(url)
        await store.finish_task(task_id, TaskStatus.cancelled, EventInput("task.cancelled", data={"reason": "test"}))
        await store.close()

    asyncio.run(run())


class StalledClient:
    """A WebSocket client that reads its socket only when told to (websockets' sans-I/O protocol).

    Library clients read in a background thread and the kernel buffers megabytes on
    loopback, so "a watcher that stopped reading" has to be built this way.
    """

    def __init__(self, url: str, port: int) -> None:
        self.protocol = ClientProtocol(parse_uri(url), max_size=2**20)
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        self.frames: list[dict] = []
        while self.protocol.handshake_exc is None and self.protocol.state.name == "CONNECTING":
            self._read()
        assert self.protocol.handshake_exc is None

    def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self) -> bool:
        data = self.sock.recv(65536)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        for event in self.protocol.events_received():
            if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.frames.append(json.loads(event.data))
        self._flush()
        return bool(data)

    def read_until_closed(self, timeout: float = 60) -> tuple[int, str]:
        self.sock.settimeout(timeout)
        while self.protocol.close_rcvd is None and self._read():
            pass
        self.sock.close()
        assert self.protocol.close_rcvd is not None, "the server dropped the connection without a close frame"
        return self.protocol.close_rcvd.code, self.protocol.close_rcvd.reason


def test_lagging_watcher_is_dropped_with_1013_and_resumes_losslessly(tmp_path: Path, incident: dict) -> None:
    # this process writes the task's log; the server only streams it
    gateway = Gateway(
        tmp_path,
        config_dir=write_configs(tmp_path / "configs"),
        roots=incident["root"],
        ws_buffer=8,
        ws_stall_timeout_s=0.5,
        poll_interval_s=0.2,
        run_tasks="false",
    ).start()
    try:
        _lagging(gateway)
    finally:
        gateway.stop()


def _lagging(gateway: Gateway) -> None:
    url = gateway.env["CREWGATE_DATABASE_URL"]
    task_id = fill_log(url)
    client = StalledClient(f"{gateway.ws_url}/v1/tasks/{task_id}/events", gateway.port)
    # not reading: the server's buffer for this watcher fills, stays full, and the server gives up on it
    wait_for(lambda: "watcher dropped for lagging" in gateway.logs(), timeout=60)
    code, reason = client.read_until_closed()
    received = client.frames
    assert code == 1013
    assert 0 < len(received) < TOTAL
    last = received[-1]["seq"]
    assert re.search(rf"last seq {last}; reconnect with after={last}$", reason), reason

    with connect(f"{gateway.ws_url}/v1/tasks/{task_id}/events?after={last}", max_size=2**20) as ws:
        while len(received) < TOTAL:
            received.append(json.loads(ws.recv(timeout=30)))
    assert [e["seq"] for e in received] == list(range(1, TOTAL + 1))
    finish(url, task_id)


def test_sixteen_concurrent_tasks_keep_their_events_apart(gateway: Gateway, incident: dict) -> None:
    d = incident["dir"]
    services = [f"svc{i:02d}" for i in range(16)]
    with gateway.client() as c:
        ids = {
            s: c.post(
                "/v1/tasks",
                json={
                    "crew": "incident_triage",
                    "inputs": {
                        "service": s,
                        "logs": str(d / "logs"),
                        "repo": str(d / "repo"),
                        "runbooks": str(d / "runbooks"),
                    },
                },
            ).json()["id"]
            for s in services
        }
    running_peak = [0]

    def sample() -> None:
        with gateway.client() as c:
            while True:
                running = c.get("/v1/tasks", params={"status": "running", "limit": 50}).json()["data"]
                running_peak[0] = max(running_peak[0], len(running))
                if not c.get("/v1/tasks", params={"status": "queued"}).json()["data"] and not running:
                    return
                time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    with gateway.client() as c:
        wait_for(
            lambda: all(c.get(f"/v1/tasks/{t}").json()["status"] == "completed" for t in ids.values()),
            timeout=240,
            interval=0.5,
        )
        logs = {s: c.get(f"/v1/tasks/{t}/events", params={"limit": 1000}).json()["data"] for s, t in ids.items()}
        results = {s: c.get(f"/v1/tasks/{t}").json()["result"] for s, t in ids.items()}
    sampler.join(timeout=30)
    assert running_peak[0] > 1  # they really overlapped

    shapes = Counter(tuple((e["type"], e["agent"], e["step"]) for e in log) for log in logs.values())
    assert len(shapes) == 1, "every task ran the same deterministic sequence: nothing added, nothing lost"
    for service, log in logs.items():
        assert {e["task_id"] for e in log} == {ids[service]}
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        text = json.dumps(log)
        foreign = {s for s in services if s != service and s in text}
        assert not foreign, f"{service} saw events of {foreign}"
        assert service in text
        assert incident["expected"]["culprit_sha"][:12] in results[service]


def test_event_tail_answers_only_when_it_can_vouch_for_contiguity() -> None:
    from datetime import UTC, datetime

    from gateway.eventlog import EventTail
    from gateway.store import StoredEvent

    def ev(seq: int, task: str = "t") -> StoredEvent:
        return StoredEvent(
            id=seq,
            seq=seq,
            task_id=task,
            crew="c",
            ts=datetime.now(UTC),
            type="agent.log",
            agent=None,
            step=None,
            data={},
        )

    tail = EventTail(per_task=3, tasks=2)
    assert tail.after("t", 0) is None  # nothing known: read the log
    tail.add([ev(2), ev(3)])
    assert tail.after("t", 0) is None  # seq 1 is not in the tail
    assert [e.seq for e in tail.after("t", 1)] == [2, 3]
    assert tail.after("t", 3) == []
    tail.add([ev(4), ev(5)])  # keeps the last 3
    assert tail.after("t", 1) is None
    assert [e.seq for e in tail.after("t", 2)] == [3, 4, 5]
    tail.add([ev(7)])  # seq 6 came from elsewhere: the tail restarts at 7
    assert tail.after("t", 5) is None
    assert [e.seq for e in tail.after("t", 6)] == [7]
    tail.add([ev(1, "u"), ev(1, "v")])  # a third task evicts the least recently active
    assert tail.after("t", 6) is None
    assert tail.after("v", 0) is not None
