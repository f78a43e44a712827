"""The crewgate command as a user runs it: a real process, real exit codes, real output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def crewgate(*args: str, roots: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if roots is not None:
        env["CREWGATE_ALLOWED_ROOTS"] = str(roots)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def triage(incident: dict) -> dict[str, Any]:
    d = incident["dir"]
    proc = crewgate(
        "run",
        "incident_triage",
        "--json",
        "-i",
        "service=checkout",
        "-i",
        f"logs={d / 'logs'}",
        "-i",
        f"repo={d / 'repo'}",
        "-i",
        f"runbooks={d / 'runbooks'}",
        roots=incident["root"],
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": json.loads(proc.stdout), "expected": incident["expected"], "proc": proc}


def test_json_output_is_one_object_and_nothing_else(triage: dict[str, Any]) -> None:
    out = triage["out"]
    assert set(out) == {"task_id", "status", "result", "output", "usage", "events"}
    assert out["status"] == "completed"
    assert out["usage"]["total_tokens"] > 0
    assert triage["proc"].stdout.strip().count("\n") == 0  # a single JSON line on stdout


def test_offline_triage_names_the_cause(triage: dict[str, Any]) -> None:
    report, expected = triage["out"]["result"], triage["expected"]
    assert expected["culprit_sha"][:12] in report
    assert f"{expected['file']}:{expected['line']}" in report
    assert expected["exception"] in report
    assert f"**Occurrences of the new signature:** {expected['new_error_count']}" in report
    assert expected["onset"] in report
    # red herrings it ruled out: the pre-existing cache timeouts and the later, harmless commit
    ruled_out = report.split("**Ruled out**", 1)[1].split("**Evidence**", 1)[0]
    assert "Timeout connecting to cache" in ruled_out
    assert expected["decoy_sha"][:7] in ruled_out
    assert expected["post_onset_sha"][:7] not in report


def test_events_follow_the_public_contract(triage: dict[str, Any]) -> None:
    events = triage["out"]["events"]
    task_id = triage["out"]["task_id"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["v"] == 1 and e["task_id"] == task_id and e["ts"].endswith("Z") for e in events)
    types = [e["type"] for e in events]
    assert types[:3] == ["task.queued", "task.started", "step.started"]
    assert types[-1] == "task.completed"
    steps = [(e["step"], e["agent"]) for e in events if e["type"] == "step.started"]
    assert steps == [
        ("analyze_logs", "log_analyst"),
        ("investigate_code", "code_investigator"),
        ("write_report", "triage_lead"),
    ]
    tools = [e["data"]["tool"] for e in events if e["type"] == "tool.finished"]
    assert all(e["data"]["summary"] for e in events if e["type"] == "tool.finished")
    assert {"error_signatures", "error_timeline", "map_stack_frames", "suspect_commits", "search_runbooks"} <= set(
        tools
    )
    # every tool call is attributed to the agent and step that made it
    for e in events:
        if e["type"].startswith("tool."):
            assert e["agent"] and e["step"]
    # data stays small: long outputs are cut with a marker
    assert all(len(json.dumps(e["data"])) < 6000 for e in events)
    assert any("…[cut " in e["data"].get("output", "") for e in events if e["type"] == "tool.finished")


def test_same_inputs_same_report(triage: dict[str, Any], incident: dict) -> None:
    d = incident["dir"]
    proc = crewgate(
        "run",
        "incident_triage",
        "--json",
        "-q",
        "-i",
        "service=checkout",
        "-i",
        f"logs={d / 'logs'}",
        "-i",
        f"repo={d / 'repo'}",
        "-i",
        f"runbooks={d / 'runbooks'}",
        roots=incident["root"],
    )
    assert json.loads(proc.stdout)["result"] == triage["out"]["result"]


def test_unknown_crew_is_bad_input() -> None:
    proc = crewgate("run", "no_such_crew", "-i", "a=b")
    assert proc.returncode == 2
    assert "unknown crew 'no_such_crew' (known crews: incident_triage, incident_triage_reviewed)" in proc.stderr
    assert proc.stdout == ""


def test_bad_inputs_are_named_and_nothing_runs(incident: dict) -> None:
    proc = crewgate(
        "run",
        "incident_triage",
        "--json",
        "-i",
        "logs=/etc",
        "-i",
        "since=last tuesday",
        "-i",
        "colour=red",
        roots=incident["root"],
    )
    assert proc.returncode == 2
    for needle in (
        "inputs.service: required",
        "inputs.repo: required",
        "inputs.logs: '/etc' is outside the allowed roots",
        "inputs.since: expected an ISO-8601 timestamp",
        "inputs.colour: unknown input",
    ):
        assert needle in proc.stderr
    assert proc.stdout == ""


def test_malformed_input_flag() -> None:
    proc = crewgate("run", "incident_triage", "-i", "no-equals-sign")
    assert proc.returncode == 2
    assert "expected key=value" in proc.stderr


def test_validate_lists_problems_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("agents:\n  x:\n    role: R\n    goal: G\n    backstory: B\n    tools: [nope]\n")
    proc = crewgate("validate", str(tmp_path))
    assert proc.returncode == 1
    assert f"{tmp_path}/a.yaml:6:13: agents.x.tools[0]: unknown tool 'nope'" in proc.stderr.replace("\n", "")
    ok = crewgate("validate")
    assert ok.returncode == 0
    assert ok.stdout.startswith("OK 4 agents, 2 crews")


def test_validate_does_not_import_crewai() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom gateway.cli import app\n"
        "r = CliRunner().invoke(app, ['validate'])\nassert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('crewai', 'litellm', 'openai')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
