"""A PostgreSQL outage: the runner's polls and claims come back when the database does.

The outage is real: the test database stops accepting connections
(``ALTER DATABASE … ALLOW_CONNECTIONS false``) and its sessions are ended with
``pg_terminate_backend``; then connections are allowed again.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from agents.inputs import validate_inputs
from gateway.configs import ConfigManager
from gateway.dispatch.embedded import EmbeddedDispatcher
from gateway.eventlog import EventLog
from gateway.settings import Settings
from gateway.store import SqlStore, StoreUnavailable, TaskStatus, open_store
from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text

PG_ADMIN_URL = os.environ.get("CREWGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TERMINAL = ("completed", "failed", "cancelled")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class Outage:
    """The database ``url`` names refuses connections between ``begin`` and ``end``."""

    def __init__(self, url: str) -> None:
        self.name = make_url(url).database

    async def begin(self) -> None:
        await _admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        await _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'")

    async def end(self) -> None:
        await _admin(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')


async def empty_store(url: str) -> SqlStore:
    store = open_store(url)
    await store.migrate()
    async with store.engine.begin() as conn:
        await conn.execute(
            sql(
                "TRUNCATE api_keys, webhook_deliveries, webhook_cursors, input_requests, events, tasks, "
                "config_versions RESTART IDENTITY"
            )
        )
    return store


async def reset(url: str) -> None:
    await (await empty_store(url)).close()


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(ScriptedModel(default=text("A paragraph."), delay_s=0.3)) as server:
        yield server


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


def step_started(gw: Gateway, task_id: str) -> bool:
    return any(e["type"] == "step.started" for e in events(gw, task_id))


def ended(gw: Gateway, task_id: str) -> dict[str, Any] | None:
    record = task(gw, task_id)
    return record if record["status"] in TERMINAL else None


def watch(gw: Gateway, task_id: str, frames: list[dict[str, Any]]) -> threading.Thread:
    def run() -> None:
        with connect(f"{gw.ws_url}/v1/tasks/{task_id}/events?after=0", open_timeout=10) as ws:
            try:
                while True:
                    frames.append(json.loads(ws.recv(timeout=120)))
            except ConnectionClosed:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_work_queued_or_cancelled_elsewhere_after_an_outage_still_lands(
    tmp_path: Path, incident: dict[str, Any], pg_url: str, scripted: ScriptedServer
) -> None:
    asyncio.run(reset(pg_url))
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url, slow_steps=8)
    gw = Gateway(
        tmp_path / "gw",
        config_dir=configs,
        roots=incident["root"],
        database_url=pg_url,
        poll_interval_s=0.1,
        store_write_timeout_s=120,
        reload="false",
    ).start()
    outage = Outage(pg_url)
    try:
        with gw.client() as c:
            version = c.get("/v1/configs/status").json()["active_version"]
            first = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "outage"}}).json()["id"]
        wait_for(lambda: step_started(gw, first), timeout=60)
        frames: list[dict[str, Any]] = []
        watcher = watch(gw, first, frames)
        wait_for(lambda: frames, timeout=30)

        asyncio.run(outage.begin())
        try:
            wait_for(lambda: ready(gw) == 503, timeout=30)
            # several poll intervals of failing reads: every poll of the runner has met the outage
            wait_for(lambda: gw.logs().count("polling the event log failed") >= 5, timeout=30)
            with gw.client() as c:
                refused = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "during"}})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "store_unavailable"
            assert int(refused.headers["Retry-After"]) > 0
        finally:
            asyncio.run(outage.end())
        wait_for(lambda: ready(gw) == 200, timeout=30)

        async def queue_elsewhere() -> str:
            store = open_store(pg_url)  # another process, as a replica that only accepts tasks
            try:
                record, _ = await store.create_task("slow", {"topic": "elsewhere"}, version)
                return record.id
            finally:
                await store.close()

        elsewhere = asyncio.run(queue_elsewhere())
        done = wait_for(lambda: ended(gw, elsewhere), timeout=90)
        assert done["status"] == "completed", done

        with gw.client() as c:
            third = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "to cancel"}}).json()["id"]
        wait_for(lambda: step_started(gw, third), timeout=60)

        async def cancel_elsewhere() -> None:
            store = open_store(pg_url)
            try:
                await store.request_cancel(third, "cancelled through another replica")
            finally:
                await store.close()

        asyncio.run(cancel_elsewhere())
        cancelled = wait_for(lambda: ended(gw, third), timeout=60)
        assert cancelled["status"] == "cancelled", cancelled
        assert events(gw, third)[-1]["type"] == "task.cancelled"

        survived = wait_for(lambda: ended(gw, first), timeout=90)  # the task running through it lost nothing
        assert survived["status"] == "completed", survived
        log = events(gw, first)
        assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
        assert sum(e["type"] == "step.completed" for e in log) == 8
        watcher.join(timeout=60)
        assert frames == log
    finally:
        asyncio.run(outage.end())
        gw.stop()


async def test_a_task_whose_claim_failed_runs_when_the_database_is_back(
    tmp_path: Path, incident: dict[str, Any], pg_url: str
) -> None:
    store = await empty_store(pg_url)
    settings = Settings(
        config_dir=write_configs(tmp_path / "configs"),
        allowed_roots=str(incident["root"]),
        database_url=pg_url,
        poll_interval_s=0.05,
        reload=False,
    )
    configs = ConfigManager(settings.config_dir, store)
    await configs.load()
    assert configs.active is not None
    log = EventLog(store)
    runner = EmbeddedDispatcher(settings, configs, log)
    await runner.start()
    outage = Outage(pg_url)
    try:
        d = incident["dir"]
        given = {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo")}
        catalog = configs.active
        inputs = validate_inputs("incident_triage", catalog.crew("incident_triage"), given, roots=settings.roots)
        record, _ = await log.create_task("incident_triage", inputs, catalog.version)

        await outage.begin()
        try:
            await runner.dispatch(record.id)  # as the API does after storing the task
            deadline = time.monotonic() + 30
            while store.write_failure is None:  # the claim was tried, and the database refused it
                assert time.monotonic() < deadline, "the claim was never tried"
                await asyncio.sleep(0.02)
            with pytest.raises(StoreUnavailable):
                await store.check_writable()
        finally:
            await outage.end()

        deadline = time.monotonic() + 120
        while (current := await store.get_task(record.id)) is None or current.status not in (
            TaskStatus.completed,
            TaskStatus.failed,
        ):
            assert time.monotonic() < deadline, f"the task never ran after the outage: {current}"
            await asyncio.sleep(0.05)
        assert current.status is TaskStatus.completed, current
    finally:
        await outage.end()
        await runner.stop()
        await store.close()
