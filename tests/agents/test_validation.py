"""Every kind of config error is reported with file:line:column, the YAML path and a reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agents.catalog import load_catalog, validate_directory
from agents.errors import ConfigError

AGENTS = """\
agents:
  analyst:
    role: Analyst for {service}
    goal: Find the error
    backstory: Careful
    tools: [search_logs]
  writer:
    role: Writer
    goal: Write the report
    backstory: Clear
"""
CREWS = """\
crews:
  triage:
    inputs:
      service: {type: string}
      logs: {type: path}
    steps:
      - name: analyze
        agent: analyst
        description: Look at {logs}
        expected_output: Findings
      - name: report
        agent: writer
        context: [analyze]
        description: Write it up
        expected_output: A report
"""


def write(tmp_path: Path, **files: str) -> Path:
    base = {"agents.yaml": AGENTS, "crews.yaml": CREWS}
    base.update(files)
    for name, text in base.items():
        if text is None:
            continue
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


def issues_of(directory: Path) -> list[str]:
    catalog, issues = validate_directory(directory)
    assert catalog is None, "expected the config to be refused"
    return [f"{Path(i.file).name}:{i.line}:{i.column}: {i.path}: {i.message}" for i in issues]


def test_valid_config_loads_with_a_version(tmp_path: Path) -> None:
    catalog = load_catalog(write(tmp_path))
    assert set(catalog.agents) == {"analyst", "writer"}
    assert [s.name for s in catalog.crews["triage"].steps] == ["analyze", "report"]
    assert len(catalog.version) == 12
    assert catalog.default_profile == "offline"


def test_version_follows_content_only(tmp_path: Path) -> None:
    first = load_catalog(write(tmp_path)).version
    assert load_catalog(tmp_path).version == first
    (tmp_path / "agents.yaml").write_text(AGENTS.replace("Careful", "Very careful"))
    assert load_catalog(tmp_path).version != first


def test_yaml_syntax_error_points_at_line(tmp_path: Path) -> None:
    bad = AGENTS.replace("    goal: Write the report\n", "    goal: [unclosed\n")
    [issue] = issues_of(write(tmp_path, **{"agents.yaml": bad}))
    assert issue.startswith("agents.yaml:")
    assert "YAML syntax error" in issue
    line = int(issue.split(":")[1])
    assert 9 <= line <= 11


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    bad = AGENTS.replace("    goal: Write the report\n", "    goal: Write the report\n    goal: again\n")
    [issue] = issues_of(write(tmp_path, **{"agents.yaml": bad}))
    assert issue.startswith("agents.yaml:10:")
    assert 'duplicate key "goal"' in issue


def test_unknown_field_names_the_field_and_line(tmp_path: Path) -> None:
    bad = AGENTS.replace("    backstory: Clear\n", "    backstory: Clear\n    temprature: 0.3\n")
    assert issues_of(write(tmp_path, **{"agents.yaml": bad})) == [
        "agents.yaml:11:5: agents.writer.temprature: unknown field 'temprature'"
    ]


def test_wrong_type_and_missing_field(tmp_path: Path) -> None:
    bad = AGENTS.replace("    tools: [search_logs]\n", "    tools: [search_logs]\n    max_iter: lots\n")
    bad = bad.replace("    goal: Write the report\n", "")
    found = issues_of(write(tmp_path, **{"agents.yaml": bad}))
    assert (
        "agents.yaml:7:15: agents.analyst.max_iter: Input should be a valid integer, unable to parse string as an integer"
        in found
    )
    assert "agents.yaml:8:3: agents.writer.goal: 'goal' is required" in found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        agent: writer\n",
            "        agent: wrter\n",
            "crews.yaml:12:16: crews.triage.steps[1].agent: unknown agent 'wrter' (known: analyst, writer)",
        ),
        (
            "        context: [analyze]\n",
            "        context: [analyse]\n",
            "crews.yaml:13:19: crews.triage.steps[1].context[0]: unknown step 'analyse' in context (steps: analyze, report)",
        ),
        (
            "        context: [analyze]\n",
            "        context: [report]\n",
            "crews.yaml:13:19: crews.triage.steps[1].context[0]: step 'report' lists itself in its context",
        ),
        (
            "        description: Look at {logs}\n",
            "        description: Look at {log_dir}\n",
            "crews.yaml:9:22: crews.triage.steps[0].description: placeholder '{log_dir}' is not a declared input of crew (inputs: logs, service)",
        ),
        (
            "      - name: report\n        agent: writer\n        context: [analyze]\n",
            "      - name: analyze\n        agent: writer\n",
            "crews.yaml:11:15: crews.triage.steps[1].name: duplicate step name 'analyze' (also step 0)",
        ),
        (
            "  triage:\n",
            "  Triage:\n",
            "crews.yaml:2:3: crews.Triage: name 'Triage' must be lower_snake_case: a letter, then letters, digits or _",
        ),
    ],
)
def test_crew_reference_errors(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in CREWS
    assert issues_of(write(tmp_path, **{"crews.yaml": CREWS.replace(old, new)})) == [expected]


def test_context_pointing_forward_and_cycles(tmp_path: Path) -> None:
    bad = CREWS.replace("        agent: analyst\n", "        agent: analyst\n        context: [report]\n")
    found = issues_of(write(tmp_path, **{"crews.yaml": bad}))
    assert (
        "crews.yaml:9:19: crews.triage.steps[0].context[0]: context step 'report' comes later; context may only name earlier steps"
        in found
    )
    assert any(
        "context forms a cycle: analyze -> report -> analyze" in f
        or "context forms a cycle: report -> analyze -> report" in f
        for f in found
    )


def test_unknown_tool_and_model(tmp_path: Path) -> None:
    bad = AGENTS.replace("    tools: [search_logs]\n", "    tools: [search_logs, rm_rf]\n    model: gpt5\n")
    found = issues_of(write(tmp_path, **{"agents.yaml": bad}))
    assert any(
        f.startswith("agents.yaml:6:26: agents.analyst.tools[1]: unknown tool 'rm_rf' (known tools: ") for f in found
    )
    assert "agents.yaml:7:12: agents.analyst.model: unknown model profile 'gpt5' (known: offline)" in found


def test_placeholder_in_agent_text_must_be_a_crew_input(tmp_path: Path) -> None:
    bad = AGENTS.replace("    role: Writer\n", "    role: Writer for {team}\n")
    assert issues_of(write(tmp_path, **{"agents.yaml": bad})) == [
        "agents.yaml:8:11: agents.writer.role: placeholder '{team}' is not a declared input of crew 'triage' (inputs: logs, service)"
    ]


def test_duplicate_agent_across_files_names_first_definition(tmp_path: Path) -> None:
    extra = "agents:\n  writer:\n    role: W\n    goal: G\n    backstory: B\n"
    [issue] = issues_of(write(tmp_path, **{"more/extra.yaml": extra}))
    assert issue.startswith("extra.yaml:2:3: agents.writer: agent 'writer' is already defined at ")
    assert issue.endswith("agents.yaml:7")


def test_api_key_in_yaml_is_refused(tmp_path: Path) -> None:
    models = "models:\n  default: hosted\n  profiles:\n    hosted:\n      model: openai/gpt-4o-mini\n      api_key: sk-live-123\n"
    found = issues_of(write(tmp_path, **{"models.yaml": models}))
    assert found[0].startswith("models.yaml:4:5: models.profiles.hosted: 'api_key' may not be written in YAML")
    assert not any("sk-live-123" in f for f in found)


def test_model_profile_errors(tmp_path: Path) -> None:
    models = textwrap.dedent("""\
        models:
          default: missing
          profiles:
            local:
              model: openai/x
              base_url: ftp://host
              api_key_env: lower-case
        """)
    found = issues_of(write(tmp_path, **{"models.yaml": models}))
    assert "models.yaml:2:12: models.default: unknown model profile 'missing' (known: offline)" in found
    assert any(
        f.startswith("models.yaml:4:5: models.profiles.local: api_key_env must be an environment variable name")
        for f in found
    )


def test_non_mapping_file_and_unknown_section(tmp_path: Path) -> None:
    found = issues_of(write(tmp_path, **{"list.yaml": "- a\n- b\n", "odd.yaml": "tasks: {}\n"}))
    assert "list.yaml:1:1: : top level must be a mapping with agents, crews or models" in found
    assert "odd.yaml:1:1: tasks: unknown section 'tasks' (expected agents, crews or models)" in found


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    agents = AGENTS.replace("    backstory: Clear\n", "    backstory: Clear\n    colour: red\n").replace(
        "[search_logs]", "[nope]"
    )
    crews = CREWS.replace("agent: writer", "agent: nobody").replace("{logs}", "{where}")
    found = issues_of(write(tmp_path, **{"agents.yaml": agents, "crews.yaml": crews}))
    assert len(found) == 4
    assert {f.split(":")[0] for f in found} == {"agents.yaml", "crews.yaml"}


def test_load_catalog_raises_with_every_issue(tmp_path: Path) -> None:
    bad = CREWS.replace("agent: writer", "agent: nobody")
    with pytest.raises(ConfigError) as info:
        load_catalog(write(tmp_path, **{"crews.yaml": bad}))
    assert "unknown agent 'nobody'" in str(info.value)
    assert len(info.value.issues) == 1


def test_shipped_configs_are_valid() -> None:
    catalog = load_catalog(Path(__file__).resolve().parents[2] / "configs")
    crew = catalog.crews["incident_triage"]
    assert [s.agent for s in crew.steps] == ["log_analyst", "code_investigator", "triage_lead"]
    assert set(crew.inputs) == {"service", "logs", "repo", "since", "runbooks"}
    assert not crew.inputs["since"].is_required
