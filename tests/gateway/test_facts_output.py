"""A task's machine-readable findings: stored in ``tasks.output``, served as ``output``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store import EventInput, TaskStatus
from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.small_incident import make_incident


async def test_output_is_kept_with_the_terminal_status(store: Any) -> None:
    done, _ = await store.create_task("triage", {"service": "checkout"}, "v1")
    failed, _ = await store.create_task("triage", {"service": "checkout"}, "v1")
    await store.claim_task(done.id)
    await store.claim_task(failed.id)
    output = {"commit": "abc", "line": 72, "ruled_out": ["cache", "nul\x00here"], "nested": {"ok": True}}
    await store.finish_task(
        done.id, TaskStatus.completed, EventInput("task.completed"), result="# report", output=output
    )
    await store.finish_task(failed.id, TaskStatus.failed, EventInput("task.failed"), error_code="x", error="y")
    kept = await store.get_task(done.id)
    assert kept.output == {"commit": "abc", "line": 72, "ruled_out": ["cache", "nul\ufffdhere"], "nested": {"ok": True}}
    assert kept.result == "# report"
    assert (await store.get_task(failed.id)).output is None
    [listed] = [t for t in await store.list_tasks() if t.id == done.id]
    assert listed.output == kept.output


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("facts_output")
    incident = make_incident(root)
    gw = Gateway(root / "gw", config_dir=write_configs(root / "configs"), roots=root).start()
    yield gw, incident
    gw.stop()


def test_get_task_returns_the_report_and_the_findings_apart(served: tuple[Gateway, dict[str, Any]]) -> None:
    gw, incident = served
    inputs = {k: str(incident[k]) for k in ("logs", "repo", "runbooks")} | {"service": "checkout"}
    with gw.client() as c:
        task_id = c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": inputs}).json()["id"]
        queued = c.get(f"/v1/tasks/{task_id}").json()
        assert "output" in queued and queued["output"] is None
        task = wait_for(
            lambda: (t := c.get(f"/v1/tasks/{task_id}").json())["status"] in ("completed", "failed") and t, timeout=180
        )
        schema = c.get("/openapi.json").json()["components"]["schemas"]["TaskPublic"]["properties"]["output"]
    assert task["status"] == "completed", task
    assert "<!--" not in task["result"]
    assert task["output"]["suspect"]["sha"] == incident["commit"]
    assert f"{task['output']['file']}:{task['output']['line']}" == incident["file_line"]
    assert task["output"]["onset"] == incident["onset"]
    assert sorted(s["type"] for s in schema["anyOf"]) == ["null", "object"]  # an object or null
    assert Path(task["output"]["runbook"].split("#")[0]).name == "checkout-payments.md"
