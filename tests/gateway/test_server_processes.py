"""Process-level behaviour against real server processes: JSON logs, and an accept-only
replica streaming a task that another process runs (split from test_recovery.py so the two
run on either xdist worker)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.gateway import Gateway, wait_for, write_configs


def task(gw: Gateway, task_id: str) -> dict:
    with gw.client() as c:
        return c.get(f"/v1/tasks/{task_id}").json()


def test_logs_are_json_with_the_task_id_on_every_line_of_its_work(tmp_path: Path, incident: dict) -> None:
    gw = Gateway(tmp_path, config_dir=write_configs(tmp_path / "configs"), roots=incident["root"]).start()
    try:
        d = incident["dir"]
        with gw.client() as c:
            task_id = c.post(
                "/v1/tasks",
                json={
                    "crew": "incident_triage",
                    "inputs": {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo")},
                },
            ).json()["id"]
        wait_for(lambda: task(gw, task_id)["status"] == "completed", timeout=90)
        wait_for(lambda: '"task completed"' in gw.logs(), timeout=30)
    finally:
        gw.stop()
    lines = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]
    work = [entry for entry in lines if entry.get("logger", "").startswith("crewgate.execution")]
    assert {entry["event"] for entry in work} >= {"task started", "task completed"}
    assert all(entry.get("task_id") == task_id for entry in work)
    access = [entry for entry in lines if entry.get("logger") == "uvicorn.access"]
    assert any("POST /v1/tasks" in entry["event"] for entry in access)


def test_an_accept_only_replica_streams_a_task_another_process_runs(tmp_path: Path, incident: dict) -> None:
    from websockets.sync.client import connect

    configs = write_configs(tmp_path / "configs")
    shared = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    (tmp_path / "front").mkdir()
    (tmp_path / "back").mkdir()
    front = Gateway(
        tmp_path / "front",
        config_dir=configs,
        roots=incident["root"],
        database_url=shared,
        run_tasks="false",
        poll_interval_s=0.2,
    ).start()
    back = Gateway(
        tmp_path / "back", config_dir=configs, roots=incident["root"], database_url=shared, poll_interval_s=0.2
    ).start()
    try:
        d = incident["dir"]
        with front.client() as c:
            task_id = c.post(
                "/v1/tasks",
                json={
                    "crew": "incident_triage",
                    "inputs": {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo")},
                },
            ).json()["id"]
        frames = []
        with connect(f"{front.ws_url}/v1/tasks/{task_id}/events", open_timeout=10) as ws:
            for message in ws:
                frames.append(json.loads(message))
        assert frames[-1]["type"] == "task.completed"
        assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
        assert task(front, task_id)["status"] == "completed"
        ran_here = [line for line in back.logs().splitlines() if task_id in line and "task started" in line]
        assert ran_here and task_id not in "".join(line for line in front.logs().splitlines() if "task started" in line)
    finally:
        front.stop()
        back.stop()
