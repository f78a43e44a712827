"""``output_schema`` on a crew step is checked when the config loads, with file:line:column."""

from __future__ import annotations

import textwrap
from pathlib import Path

from agents.catalog import load_catalog, validate_directory
from agents.outputs import json_schema_of

CONFIG = """\
agents:
  writer:
    role: Writer
    goal: Write
    backstory: Clear
crews:
  triage:
    steps:
      - name: report
        agent: writer
        description: Write it up
        expected_output: A report
        output_schema: {schema}
"""


def issues_of(tmp_path: Path, schema: str) -> list[str]:
    (tmp_path / "all.yaml").write_text(textwrap.dedent(CONFIG).format(schema=schema))
    catalog, issues = validate_directory(tmp_path)
    assert catalog is None, "expected the config to be refused"
    return [f"{Path(i.file).name}:{i.line}:{i.column}: {i.path}: {i.message}" for i in issues]


def test_a_misspelt_model_name_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    assert issues_of(tmp_path, "triage_finding") == [
        "all.yaml:13:24: crews.triage.steps[0].output_schema: unknown output model 'triage_finding' "
        "(did you mean 'triage_findings'?); known: triage_findings, or an inline JSON Schema"
    ]


def test_an_invalid_inline_json_schema_is_refused_where_it_is_wrong(tmp_path: Path) -> None:
    schema = "\n          type: object\n          properties:\n            confidence: {type: maybe}"
    (issue,) = issues_of(tmp_path, schema)
    assert issue.startswith("all.yaml:16:32: crews.triage.steps[0].output_schema.properties.confidence.type: ")
    assert "not a valid JSON Schema" in issue and "'maybe'" in issue


def test_a_schema_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    assert issues_of(tmp_path, "{type: array, items: {type: string}}") == [
        "all.yaml:13:31: crews.triage.steps[0].output_schema.type: output_schema must describe a JSON object "
        "(type: object)"
    ]


def test_retries_are_bounded(tmp_path: Path) -> None:
    text = textwrap.dedent(CONFIG).format(schema="triage_findings") + "        output_retries: 9\n"
    (tmp_path / "all.yaml").write_text(text)
    _, issues = validate_directory(tmp_path)
    assert [(i.line, i.path) for i in issues] == [(14, "crews.triage.steps[0].output_retries")]


def test_a_valid_inline_schema_and_a_model_name_load(tmp_path: Path) -> None:
    schema = "\n          type: object\n          required: [verdict]\n          properties:\n            verdict: {type: string}"
    (tmp_path / "all.yaml").write_text(textwrap.dedent(CONFIG).format(schema=schema))
    step = load_catalog(tmp_path).crew("triage").steps[0]
    assert json_schema_of(step.output_schema or {}) == {
        "type": "object",
        "required": ["verdict"],
        "properties": {"verdict": {"type": "string"}},
    }


def test_the_shipped_triage_crew_declares_triage_findings() -> None:
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "configs")
    steps = {s.name: s for s in catalog.crew("incident_triage").steps}
    assert steps["write_report"].output_schema == "triage_findings"
    schema = json_schema_of("triage_findings")
    assert schema["properties"]["confidence"]["enum"] == ["high", "medium", "low", "none"]
