"""A write outage of the store: the SQLite file's disk fills up while tasks run, then frees.

The disk is a small tmpfs mounted for the test (root, as here and in CI), filled with a
file until the kernel answers ENOSPC, so SQLite fails its writes with SQLITE_FULL
("database or disk is full") through the gateway's real code path; deleting the file
gives the space back.
"""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.store import StoreUnavailable, open_store
from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text

TERMINAL = ("completed", "failed", "cancelled")


class SmallDisk:
    """A tmpfs of a few MiB; ``fill()`` takes every free byte, ``free()`` gives them back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        with self.filler.open("ab", buffering=0) as f:
            for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
                try:
                    while True:
                        f.write(b"\0" * chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    path = tmp_path / "disk"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here (needs root): {done.stderr.decode(errors='replace')[:200]}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(ScriptedModel(default=text("A paragraph."), delay_s=0.3)) as server:
        yield server


def start_gateway(tmp_path: Path, disk: SmallDisk, scripted: ScriptedServer, roots: Path, **settings: Any) -> Gateway:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url, slow_steps=8)
    return Gateway(
        tmp_path / "gw",
        config_dir=configs,
        roots=roots,
        database_url=f"sqlite+aiosqlite:///{disk.path / 'crewgate.db'}",
        max_concurrency=3,
        poll_interval_s=0.1,
        reload="false",
        **settings,
    ).start()


def task(gw: Gateway, task_id: str) -> dict[str, Any]:
    with gw.client() as c:
        record: dict[str, Any] = c.get(f"/v1/tasks/{task_id}").json()
    return record


def events(gw: Gateway, task_id: str) -> list[dict[str, Any]]:
    with gw.client() as c:
        page: dict[str, Any] = c.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000}).json()
    return list(page["data"])


def ready(gw: Gateway) -> int:
    with gw.client() as c:
        return c.get("/readyz").status_code


class Watcher(threading.Thread):
    """A WebSocket watcher of one task, reading frames until the server closes."""

    def __init__(self, gw: Gateway, task_id: str) -> None:
        super().__init__(daemon=True)
        self.url = f"{gw.ws_url}/v1/tasks/{task_id}/events?after=0"
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None

    def run(self) -> None:
        with connect(self.url, open_timeout=10) as ws:
            try:
                while True:
                    self.frames.append(json.loads(ws.recv(timeout=120)))
            except ConnectionClosed:
                pass
            self.close_code = ws.close_code


def running_with_steps(gw: Gateway, task_id: str, steps: int = 1) -> bool:
    started: int = sum(e["type"] == "step.started" for e in events(gw, task_id))
    return started >= steps


def submit(gw: Gateway, topic: str) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": topic}})


def assert_store_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable"
    assert int(response.headers["Retry-After"]) > 0


def assert_gap_free(log: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    types = [e["type"] for e in log]
    assert types.count("task.started") == 1 + types.count("task.restarted")  # one start per attempt
    assert log[-1]["type"] in {f"task.{s}" for s in TERMINAL}


def test_an_outage_longer_than_the_write_budget_fails_running_tasks_with_a_reason(
    tmp_path: Path, incident: dict[str, Any], small_disk: SmallDisk, scripted: ScriptedServer
) -> None:
    gw = start_gateway(tmp_path, small_disk, scripted, incident["root"], store_write_timeout_s=1.0)
    try:
        ids = [submit(gw, f"outage {i}").json()["id"] for i in range(2)]
        for task_id in ids:
            wait_for(lambda task_id=task_id: running_with_steps(gw, task_id), timeout=60)
        watchers = [Watcher(gw, task_id) for task_id in ids]
        for w in watchers:
            w.start()
        wait_for(lambda: all(w.frames for w in watchers), timeout=30)

        small_disk.fill()
        wait_for(lambda: ready(gw) == 503, timeout=30)  # a write failed: not ready
        assert_store_unavailable(submit(gw, "during"))
        with gw.client() as c:
            assert_store_unavailable(c.post(f"/v1/tasks/{ids[0]}/cancel"))
        # both runs give up on the store while it is still full (their write budget is 1 s)
        wait_for(lambda: gw.logs().count('"task cannot write its events') >= 2, timeout=60)
        assert all(task(gw, task_id)["status"] == "running" for task_id in ids)

        small_disk.free()
        finished = [wait_for(lambda t=t: (r := task(gw, t))["status"] in TERMINAL and r, timeout=60) for t in ids]
        for record in finished:
            assert record["status"] == "failed", record
            assert record["error"]["code"] == "store_unavailable"
        for w in watchers:  # watchers are not left hanging: they get the terminal event, then 1000
            w.join(timeout=60)
            assert w.close_code == 1000
            assert w.frames[-1]["type"] == "task.failed"
            assert w.frames[-1]["data"]["code"] == "store_unavailable"
        logs = {t: events(gw, t) for t in ids}
        for task_id, w in zip(ids, watchers, strict=True):
            assert w.frames == logs[task_id]  # what a watcher saw is exactly the durable log
            assert_gap_free(logs[task_id])
        assert ready(gw) == 200

        after = submit(gw, "after")  # the runner works again
        assert after.status_code == 202, after.text
        done = wait_for(lambda: (r := task(gw, after.json()["id"]))["status"] in TERMINAL and r, timeout=90)
        assert done["status"] == "completed", done

        gw.stop()
        gw.start()
        for task_id in ids:  # a restart keeps every event, the failure included
            assert events(gw, task_id) == logs[task_id]
    finally:
        gw.stop()


def test_an_outage_within_the_write_budget_loses_nothing(
    tmp_path: Path, incident: dict[str, Any], small_disk: SmallDisk, scripted: ScriptedServer
) -> None:
    gw = start_gateway(tmp_path, small_disk, scripted, incident["root"], store_write_timeout_s=120)
    try:
        ids = [submit(gw, f"pause {i}").json()["id"] for i in range(2)]
        for task_id in ids:
            wait_for(lambda task_id=task_id: running_with_steps(gw, task_id), timeout=60)
        watcher = Watcher(gw, ids[0])
        watcher.start()

        small_disk.fill()
        wait_for(lambda: ready(gw) == 503, timeout=30)
        assert_store_unavailable(submit(gw, "during"))
        with gw.client() as c:  # refused and changes nothing: the task runs on
            assert_store_unavailable(c.post(f"/v1/tasks/{ids[1]}/cancel"))
        assert not task(gw, ids[1])["cancel_requested"]

        small_disk.free()
        wait_for(lambda: ready(gw) == 200, timeout=30)
        with gw.client() as c:  # cancel works once the store takes writes again
            cancelled = c.post(f"/v1/tasks/{ids[1]}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        first = wait_for(lambda: (r := task(gw, ids[0]))["status"] in TERMINAL and r, timeout=90)
        second = wait_for(lambda: (r := task(gw, ids[1]))["status"] in TERMINAL and r, timeout=90)
        assert first["status"] == "completed", first
        assert second["status"] == "cancelled", second

        log = events(gw, ids[0])
        assert_gap_free(log)
        assert sum(e["type"] == "step.completed" for e in log) == 8  # every step's events were kept
        watcher.join(timeout=60)
        assert watcher.close_code == 1000
        assert watcher.frames == log
        assert_gap_free(events(gw, ids[1]))
    finally:
        gw.stop()


def test_a_stop_during_an_outage_leaves_tasks_to_the_next_start(
    tmp_path: Path, incident: dict[str, Any], small_disk: SmallDisk, scripted: ScriptedServer
) -> None:
    gw = start_gateway(tmp_path, small_disk, scripted, incident["root"], store_write_timeout_s=120, lease_s=2)
    try:
        task_id = submit(gw, "stop").json()["id"]
        wait_for(lambda: running_with_steps(gw, task_id), timeout=60)
        before = events(gw, task_id)

        small_disk.fill()
        wait_for(lambda: ready(gw) == 503, timeout=30)
        assert gw.proc is not None
        gw.stop()  # SIGTERM while the task waits for the store: the process exits by itself
        assert gw.proc.returncode != -signal.SIGKILL, gw.logs()[-3000:]

        small_disk.free()
        gw.start()  # the task could not be handed back (no writes): its lease runs out, and it runs again
        done = wait_for(lambda: (r := task(gw, task_id))["status"] in TERMINAL and r, timeout=90)
        assert done["status"] == "completed", done
        log = events(gw, task_id)
        assert log[: len(before)] == before  # what was durable before the outage is kept
        assert_gap_free(log)
        assert [e["data"]["attempt"] for e in log if e["type"] == "task.restarted"] == [2]
    finally:
        gw.stop()


async def test_readiness_clears_itself_when_space_returns_with_no_other_write(small_disk: SmallDisk) -> None:
    store = open_store(f"sqlite+aiosqlite:///{small_disk.path / 'store.db'}")
    await store.migrate()
    try:
        await store.check_writable()  # nothing failed: no probe
        small_disk.fill()
        with pytest.raises(StoreUnavailable, match="disk is full"):
            await store.create_task("triage", {}, "v1")
        with pytest.raises(StoreUnavailable):
            await store.check_writable()  # the probe write fails on the full disk too
        assert await store.list_tasks() == []  # reads still work, and nothing was half-written
        small_disk.free()
        await store.check_writable()  # the probe alone makes it ready again
        assert store.write_failure is None
        record, created = await store.create_task("triage", {}, "v1")
        assert created and [e.seq for e in await store.events_for_task(record.id)] == [1]
    finally:
        await store.close()
