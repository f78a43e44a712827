"""YAML for human in the loop: human_input and its options on a step, the ask_human tool, sequential only."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.catalog import load_catalog, validate_texts
from agents.errors import ConfigIssue

PROJECT = Path(__file__).resolve().parents[2]

AGENTS = """\
agents:
  analyst:
    role: Analyst
    goal: Find the error
    backstory: Careful
    tools: [search_logs, ask_human]
  writer:
    role: Writer
    goal: Write the report
    backstory: Clear
"""
CREWS = """\
crews:
  triage:
    process: sequential
    steps:
      - name: analyze
        agent: analyst
        description: Look
        expected_output: Findings
      - name: report
        agent: writer
        description: Write it up
        expected_output: A report
        human_input: true
        human_input_timeout_s: 600
        on_timeout: approve
"""


def issues(crews: str, agents: str = AGENTS) -> list[ConfigIssue]:
    catalog, found = validate_texts({"agents.yaml": agents, "crews.yaml": crews})
    assert catalog is None, "expected the config to be refused"
    return found


def at(found: list[ConfigIssue]) -> set[tuple[str, int, str]]:
    return {(i.file, i.line, i.path) for i in found}


def test_a_reviewed_step_and_an_agent_that_asks_are_valid_in_a_sequential_crew() -> None:
    catalog, found = validate_texts({"agents.yaml": AGENTS, "crews.yaml": CREWS})
    assert found == [] and catalog is not None
    report = catalog.crews["triage"].steps[1]
    assert (report.human_input, report.human_input_timeout_s, report.on_timeout) == (True, 600, "approve")
    analyze = catalog.crews["triage"].steps[0]
    assert (analyze.human_input, analyze.human_input_timeout_s, analyze.on_timeout) == (False, None, "fail")


@pytest.mark.parametrize(
    ("option", "line"),
    [("human_input_timeout_s: 60", 9), ("on_timeout: fail", 9)],
)
def test_review_options_need_human_input(option: str, line: int) -> None:
    crews = CREWS.replace(
        "        expected_output: Findings\n", f"        expected_output: Findings\n        {option}\n"
    )
    name = option.split(":")[0]
    [issue] = issues(crews)
    assert (issue.file, issue.line, issue.path) == ("crews.yaml", line, f"crews.triage.steps[0].{name}")
    assert issue.message == f"{name} applies only to a step with human_input: true"


def test_review_options_need_human_input_true_not_false() -> None:
    crews = CREWS.replace("human_input: true", "human_input: false")
    found = issues(crews)
    assert at(found) == {
        ("crews.yaml", 14, "crews.triage.steps[1].human_input_timeout_s"),
        ("crews.yaml", 15, "crews.triage.steps[1].on_timeout"),
    }


@pytest.mark.parametrize(
    ("old", "new", "path", "message"),
    [
        ("human_input_timeout_s: 600", "human_input_timeout_s: 0", "human_input_timeout_s", "greater than 0"),
        ("human_input_timeout_s: 600", "human_input_timeout_s: soon", "human_input_timeout_s", "valid number"),
        ("on_timeout: approve", "on_timeout: retry", "on_timeout", "'fail' or 'approve'"),
        ("human_input: true", "human_input: [yes]", "human_input", "valid boolean"),
        ("human_input: true", "human_inputs: true", "human_inputs", "unknown field 'human_inputs'"),
    ],
)
def test_bad_values_are_reported_at_their_line(old: str, new: str, path: str, message: str) -> None:
    crews = CREWS.replace(old, new)
    found = [i for i in issues(crews) if i.path == f"crews.triage.steps[1].{path}"]
    assert found, issues(crews)
    line = 1 + CREWS.splitlines().index(f"        {old}")
    assert (found[0].file, found[0].line) == ("crews.yaml", line)
    assert message in found[0].message


def test_a_hierarchical_crew_cannot_pause_for_a_person() -> None:
    crews = CREWS.replace("process: sequential", "process: hierarchical")
    found = issues(crews)
    assert ("crews.yaml", 13, "crews.triage.steps[1].human_input") in at(found)
    assert ("crews.yaml", 6, "crews.triage.steps[0].agent") in at(found)
    messages = {i.path: i.message for i in found}
    assert "needs process: sequential" in messages["crews.triage.steps[1].human_input"]
    assert "agent 'analyst' has the ask_human tool" in messages["crews.triage.steps[0].agent"]


def test_a_hierarchical_crew_without_human_input_or_ask_human_is_still_valid() -> None:
    crews = CREWS.replace("process: sequential", "process: hierarchical").split("        human_input: true")[0]
    agents = AGENTS.replace("[search_logs, ask_human]", "[search_logs]")
    catalog, found = validate_texts({"agents.yaml": agents, "crews.yaml": crews})
    assert found == [] and catalog is not None


def test_the_question_is_bounded() -> None:
    from tools.human import AskHumanArgs

    assert AskHumanArgs.model_json_schema()["properties"]["question"]["maxLength"] == 2000
    assert AskHumanArgs.model_json_schema()["required"] == ["question"]


def test_the_shipped_reviewed_crew_reviews_the_report_and_the_plain_one_is_unchanged() -> None:
    catalog = load_catalog(PROJECT / "configs")
    plain, reviewed = catalog.crews["incident_triage"], catalog.crews["incident_triage_reviewed"]
    assert not any(s.human_input for s in plain.steps)
    assert all("ask_human" not in catalog.agents[s.agent].tools for s in plain.steps)
    report = reviewed.steps[-1]
    assert (report.name, report.human_input, report.human_input_timeout_s, report.on_timeout) == (
        "write_report",
        True,
        3600,
        "fail",
    )
    assert "ask_human" in catalog.agents[reviewed.steps[1].agent].tools
    same = ("name", "description", "expected_output", "context", "output_schema")
    for a, b in zip(plain.steps, reviewed.steps, strict=True):
        assert [getattr(a, f) for f in same] == [getattr(b, f) for f in same]
    assert plain.inputs == reviewed.inputs
