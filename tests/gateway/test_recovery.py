"""Crash recovery against a real server process; time limits and hot reload in-process (same app)."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from pathlib import Path

import pytest

from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.inprocess import app_client, eventually, inprocess_settings
from tests.support.llm_server import ScriptedModel, ScriptedServer, text


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(ScriptedModel(default=text("A paragraph."), delay_s=0.4)) as server:
        yield server


def task(gw: Gateway, task_id: str) -> dict:
    with gw.client() as c:
        return c.get(f"/v1/tasks/{task_id}").json()


def events(gw: Gateway, task_id: str) -> list[dict]:
    with gw.client() as c:
        return c.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000}).json()["data"]


def test_kill_9_mid_task_loses_nothing(tmp_path: Path, incident: dict, scripted: ScriptedServer) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    gw = Gateway(tmp_path, config_dir=configs, roots=incident["root"], max_concurrency=1).start()
    try:
        with gw.client() as c:
            running = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "crash"}}).json()["id"]
            queued = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "after"}}).json()["id"]
        wait_for(lambda: sum(e["type"] == "step.started" for e in events(gw, running)) >= 2, timeout=60)
        before = events(gw, running)
        assert task(gw, queued)["status"] == "queued"
        gw.kill()

        gw.start()  # same database, new process
        crashed = wait_for(lambda: (t := task(gw, running))["status"] != "running" and t, timeout=30)
        assert crashed["status"] == "failed"
        assert crashed["error"]["code"] == "interrupted"
        after = events(gw, running)
        assert after[: len(before)] == before  # events before the crash are kept as they were
        assert after[-1]["type"] == "task.failed" and after[-1]["data"]["code"] == "interrupted"
        assert [e["seq"] for e in after] == list(range(1, len(after) + 1))

        done = wait_for(lambda: (t := task(gw, queued))["status"] in ("completed", "failed") and t, timeout=90)
        assert done["status"] == "completed", done
        assert events(gw, queued)[-1]["type"] == "task.completed"

        with gw.client() as c:  # the interrupted task can be run again
            retried = c.post(f"/v1/tasks/{running}/retry").json()
        assert task(gw, retried["id"])["retry_of"] == running
    finally:
        gw.stop()


async def test_broken_edit_is_refused_and_the_run_completes(
    tmp_path: Path, incident: dict, scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIPTED_KEY", "test-key")
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    async with app_client(inprocess_settings(tmp_path, config_dir=configs, roots=incident["root"])) as c:

        async def task_status(task_id: str) -> dict:
            return (await c.get(f"/v1/tasks/{task_id}")).json()

        async def config_status() -> dict:
            return (await c.get("/v1/configs/status")).json()

        v1 = (await config_status())["active_version"]
        running = (await c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "reload"}})).json()
        assert running["config_version"] == v1
        await eventually(lambda: _has_status(task_status(running["id"]), "running"), timeout=30)

        agents = configs / "agents.yaml"
        good = agents.read_text()
        agents.write_text(good.replace("    max_iter: 8\n", "    max_iter: 8\n    tools: [oops\n"))
        status = await eventually(lambda: _refused(config_status()), timeout=30)
        [error] = status["last_refused"]["errors"]
        assert error["file"].endswith("agents.yaml")
        assert error["line"] >= 14 and "YAML syntax error" in error["message"]
        assert status["active_version"] == v1  # nothing changed

        # new tasks still use the last good config
        during = (await c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "during"}})).json()
        assert during["config_version"] == v1

        finished = await eventually(lambda: _ended(task_status(running["id"])), timeout=90)
        assert finished["status"] == "completed"

        agents.write_text(good.replace("Incident triage lead", "Incident commander"))
        v2 = await eventually(lambda: _new_version(config_status(), v1), timeout=30)
        later = (await c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "later"}})).json()
        lead = [a for a in (await c.get("/v1/agents")).json() if a["name"] == "triage_lead"][0]
        assert later["config_version"] == v2
        assert lead["role"] == "Incident commander"
        assert (await task_status(running["id"]))["config_version"] == v1


async def _has_status(record: Awaitable[dict], status: str) -> bool:
    return (await record)["status"] == status


async def _ended(record: Awaitable[dict]) -> dict | None:
    got = await record
    return got if got["status"] not in ("queued", "running") else None


async def _refused(status: Awaitable[dict]) -> dict | None:
    got = await status
    return got if got["last_refused"] else None


async def _new_version(status: Awaitable[dict], old: str) -> str | None:
    version = (await status)["active_version"]
    return version if version != old else None


def test_graceful_stop_interrupts_running_tasks_instead_of_cancelling(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    gw = Gateway(tmp_path, config_dir=configs, roots=incident["root"]).start()
    try:
        with gw.client() as c:
            task_id = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "stop"}}).json()["id"]
        wait_for(lambda: any(e["type"] == "step.started" for e in events(gw, task_id)), timeout=60)
        gw.stop()  # SIGTERM: shutdown code runs
        gw.start()
        stopped = task(gw, task_id)
        assert stopped["status"] == "failed"
        assert stopped["error"]["code"] == "interrupted"
        assert events(gw, task_id)[-1]["data"]["code"] == "interrupted"
    finally:
        gw.stop()


async def test_a_task_past_its_time_limit_fails_with_timeout(
    tmp_path: Path, incident: dict, scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIPTED_KEY", "test-key")
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    settings = inprocess_settings(tmp_path, config_dir=configs, roots=incident["root"], task_timeout_s=1)
    async with app_client(settings) as c:
        task_id = (await c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "too long"}})).json()["id"]

        async def record() -> dict:
            return (await c.get(f"/v1/tasks/{task_id}")).json()

        done = await eventually(lambda: _ended(record()), timeout=60)
        assert done["status"] == "failed"
        assert done["error"]["code"] == "timeout"
        assert "time limit of 1 s" in done["error"]["message"]
        page = (await c.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000})).json()["data"]
        steps = [e for e in page if e["type"] == "step.completed"]
        assert len(steps) < 6  # it stopped instead of running every step
