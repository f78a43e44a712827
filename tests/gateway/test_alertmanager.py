"""POST /v1/hooks/alertmanager against the app in this process (its real store and runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateway import write_configs
from tests.support.inprocess import app_client, inprocess_settings

ALERTS_YAML = """\
crews:
  alert_triage:
    description: Triage of a firing alert
    inputs:
      service: {type: string}
      logs: {type: path}
      repo: {type: path}
    alerts:
      - match: {alertname: HighErrorRate}
        inputs:
          service: "{labels.service}"
          logs: "incident/{annotations.logs_dir}"
          repo: incident/repo
    steps:
      - name: analyze
        agent: log_analyst
        description: Look at the logs of {service} in {logs} and the code in {repo}
        expected_output: A short finding
"""


def alert(status: str = "firing", *, name: str = "HighErrorRate", fingerprint: str = "a1b2c3d4e5f60718", **labels: str):
    return {
        "status": status,
        "labels": {"alertname": name, "service": "checkout", **labels},
        "annotations": {"summary": "errors are up", "logs_dir": "logs"},
        "startsAt": "2026-11-30T09:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "crewgate",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


@pytest.fixture
async def client(tmp_path: Path, incident: dict):
    configs = write_configs(tmp_path / "configs")
    agents = (configs / "agents.yaml").read_text()
    assert "log_analyst:" in agents  # the shipped agent the crew above uses
    (configs / "alerts.yaml").write_text(ALERTS_YAML)
    settings = inprocess_settings(tmp_path / "gw", config_dir=configs, roots=incident["root"], run_tasks=False)
    async with app_client(settings) as c:
        yield c


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/hooks/alertmanager", json=body)
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_firing_alert_starts_one_task_once(client: httpx.AsyncClient, incident: dict) -> None:
    first = await post(client, payload(alert()))
    (started,) = first["started"]
    assert started["crew"] == "alert_triage" and first["skipped"] == []
    task = (await client.get(f"/v1/tasks/{started['task_id']}")).json()
    assert task["inputs"]["service"] == "checkout"
    assert task["inputs"]["logs"] == str((incident["dir"] / "logs").resolve())
    again = await post(client, payload(alert()))
    assert again["started"] == []
    assert again["skipped"] == [
        {
            "fingerprint": "a1b2c3d4e5f60718",
            "crew": "alert_triage",
            "reason": "duplicate",
            "task_id": started["task_id"],
            "message": "",
        }
    ]
    listed = (await client.get("/v1/tasks", params={"crew": "alert_triage"})).json()["data"]
    assert [t["id"] for t in listed] == [started["task_id"]]


async def test_resolved_and_unmapped_alerts_start_nothing(client: httpx.AsyncClient) -> None:
    result = await post(client, payload(alert("resolved"), alert(name="DiskFull", fingerprint="ffff0000ffff0000")))
    assert result["started"] == []
    assert [(s["fingerprint"], s["reason"]) for s in result["skipped"]] == [
        ("a1b2c3d4e5f60718", "resolved"),
        ("ffff0000ffff0000", "no_mapping"),
    ]
    assert (await client.get("/v1/tasks", params={"crew": "alert_triage"})).json()["data"] == []


async def test_inputs_from_labels_still_go_through_input_validation(client: httpx.AsyncClient) -> None:
    escape = alert(fingerprint="0000111122223333")
    escape["annotations"]["logs_dir"] = "../../../../etc"
    result = await post(client, payload(escape))
    assert result["started"] == []
    (skipped,) = result["skipped"]
    assert skipped["reason"] == "invalid_inputs" and "logs" in skipped["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"status": "firing"},
        payload({**alert(), "fingerprint": ""}),
        payload({**alert(), "status": "pending"}),
        payload(*[alert(fingerprint=f"{i:016x}") for i in range(201)]),
        payload({**alert(), "labels": {f"l{i}": "v" for i in range(65)}}),
    ],
)
async def test_malformed_payloads_are_422(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await client.post("/v1/hooks/alertmanager", json=body)
    assert response.status_code == 422
    assert (await client.get("/v1/tasks")).json()["data"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('service: "{labels.service}"', "only {labels.NAME} and {annotations.NAME}"),
        ("repo: incident/repo", "inputs the crew does not declare: nope"),
    ],
)
def test_a_bad_alert_mapping_is_a_config_error_with_its_line(change: str, message: str) -> None:
    from gateway.configs import validate_files

    broken = {
        'service: "{labels.service}"': 'service: "{service}"',
        "repo: incident/repo": "nope: x",
    }[change]
    files = {"agents.yaml": (Path(__file__).parents[2] / "configs" / "agents.yaml").read_text()}
    files["alerts.yaml"] = ALERTS_YAML.replace(change, broken)
    catalog, issues = validate_files(files)
    assert catalog is None
    (issue,) = [i for i in issues if i.file == "alerts.yaml"]
    assert message in issue.message and issue.line is not None
