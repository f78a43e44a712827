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


def test_kill_9_mid_task_runs_it_again_from_the_start_and_loses_nothing(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    gw = Gateway(tmp_path, config_dir=configs, roots=incident["root"], max_concurrency=1, lease_s=1.5).start()
    try:
        with gw.client() as c:
            running = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "crash"}}).json()["id"]
            queued = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "after"}}).json()["id"]
        wait_for(lambda: sum(e["type"] == "step.started" for e in events(gw, running)) >= 2, timeout=60)
        before = events(gw, running)
        assert task(gw, queued)["status"] == "queued"
        gw.kill()

        gw.start()  # same database, new process: the dead one's lease runs out, attempt 2 starts
        done = wait_for(lambda: (t := task(gw, running))["status"] not in ("queued", "running") and t, timeout=120)
        assert done["status"] == "completed", done
        after = events(gw, running)
        assert after[: len(before)] == before  # events before the crash are kept as they were
        assert [e["seq"] for e in after] == list(range(1, len(after) + 1))
        restarted = [e for e in after if e["type"] == "task.restarted"]
        assert [e["data"]["attempt"] for e in restarted] == [2]
        assert restarted[0]["seq"] > before[-1]["seq"]
        rerun = after[after.index(restarted[0]) :]
        assert sum(e["type"] == "step.started" for e in rerun) == 6  # from the start: every step again
        assert after[-1]["type"] == "task.completed"

        finished = wait_for(lambda: (t := task(gw, queued))["status"] in ("completed", "failed") and t, timeout=90)
        assert finished["status"] == "completed", finished
    finally:
        gw.stop()


def test_kill_9_with_one_attempt_allowed_ends_the_task_interrupted(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    gw = Gateway(tmp_path, config_dir=configs, roots=incident["root"], lease_s=1.5).start()
    try:
        with gw.client() as c:
            once = c.post("/v1/tasks", json={"crew": "slow_once", "inputs": {"topic": "crash"}}).json()["id"]
        wait_for(lambda: any(e["type"] == "step.started" for e in events(gw, once)), timeout=60)
        before = events(gw, once)
        gw.kill()

        gw.start()
        crashed = wait_for(lambda: (t := task(gw, once))["status"] != "running" and t, timeout=60)
        assert crashed["status"] == "failed"
        assert crashed["error"]["code"] == "interrupted"
        assert "max_attempts" in crashed["error"]["message"]
        after = events(gw, once)
        assert after[: len(before)] == before
        assert after[-1]["type"] == "task.failed" and after[-1]["data"]["code"] == "interrupted"
        assert not any(e["type"] == "task.restarted" for e in after)
        assert [e["seq"] for e in after] == list(range(1, len(after) + 1))

        with gw.client() as c:  # the interrupted task can be run again
            retried = c.post(f"/v1/tasks/{once}/retry").json()
        assert task(gw, retried["id"])["retry_of"] == once
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


def test_graceful_stop_hands_running_tasks_back_and_the_next_start_runs_them(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    # a lease far longer than the wait below: the task runs again only if it was handed back
    gw = Gateway(tmp_path, config_dir=configs, roots=incident["root"], lease_s=600).start()
    try:
        with gw.client() as c:
            task_id = c.post("/v1/tasks", json={"crew": "slow", "inputs": {"topic": "stop"}}).json()["id"]
        wait_for(lambda: any(e["type"] == "step.started" for e in events(gw, task_id)), timeout=60)
        gw.stop()  # SIGTERM: the crew stops at its next checkpoint and its lease ends at once
        gw.start()
        done = wait_for(lambda: (t := task(gw, task_id))["status"] not in ("queued", "running") and t, timeout=90)
        assert done["status"] == "completed", done  # not cancelled, not failed: run again
        log = events(gw, task_id)
        assert [e["data"]["attempt"] for e in log if e["type"] == "task.restarted"] == [2]
        assert not any(e["type"] in ("task.failed", "task.cancelled") for e in log)
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
