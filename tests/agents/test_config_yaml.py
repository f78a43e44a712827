"""Config validation on hostile or mistyped YAML: the right line, a useful hint, bounded cost, never a crash."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agents.catalog import validate_directory
from agents.errors import ConfigIssue
from gateway.configs import validate_files

AGENTS = """\
agents:
  analyst:
    role: Analyst
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
    description: >-
      Look at the logs and
      write a report.
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
"""


def write(directory: Path, **files: str) -> Path:
    for name, text in {"agents.yaml": AGENTS, "crews.yaml": CREWS, **files}.items():
        (directory / name).write_text(text)
    return directory


def refused(directory: Path) -> list[ConfigIssue]:
    catalog, issues = validate_directory(directory, relative_names=True)
    assert catalog is None, "expected the config to be refused"
    return issues


def test_a_misindented_key_before_folded_text_is_reported_at_its_own_line(tmp_path: Path) -> None:
    # "description" has 3 spaces instead of 4; the parser only notices at "process", three lines later
    bad = CREWS.replace("    description: >-\n", "   description: >-\n")
    [issue] = refused(write(tmp_path, **{"crews.yaml": bad}))
    assert (issue.file, issue.line, issue.column) == ("crews.yaml", 3, 4)
    assert "YAML syntax error" in issue.message


def test_a_misindented_agent_name_is_reported_at_its_line_not_at_the_next_agent(tmp_path: Path) -> None:
    bad = AGENTS.replace("  analyst:\n", " analyst:\n")
    [issue] = refused(write(tmp_path, **{"agents.yaml": bad}))
    assert (issue.file, issue.line) == ("agents.yaml", 2)


def test_an_over_indented_first_field_is_reported_at_its_line(tmp_path: Path) -> None:
    bad = AGENTS.replace("    role: Writer\n", "     role: Writer\n")
    [issue] = refused(write(tmp_path, **{"agents.yaml": bad}))
    assert (issue.file, issue.line) == ("agents.yaml", 8)


def test_an_unclosed_bracket_is_reported_where_it_opens(tmp_path: Path) -> None:
    bad = AGENTS.replace("    goal: Write the report\n", "    goal: [Write the report\n")
    [issue] = refused(write(tmp_path, **{"agents.yaml": bad}))
    assert (issue.file, issue.line, issue.column) == ("agents.yaml", 9, 11)
    assert "flow sequence" in issue.message


def test_typoed_field_names_get_did_you_mean(tmp_path: Path) -> None:
    agents = AGENTS.replace("    backstory: Clear\n", "    backstory: Clear\n    tols: []\n    max_iters: 3\n")
    agents = agents.replace("    backstory: Careful\n", "    backstroy: Careful\n")
    crews = CREWS.replace("        expected_output: A report\n", "        expected_ouput: A report\n")
    crews = crews.replace("    process: sequential\n", "    process: sequential\n    timeout: 30\n")
    found = {
        (i.path, i.message, i.hint) for i in refused(write(tmp_path, **{"agents.yaml": agents, "crews.yaml": crews}))
    }
    assert ("agents.analyst.backstroy", "unknown field 'backstroy'", "did you mean 'backstory'?") in found
    assert ("agents.writer.tols", "unknown field 'tols'", "did you mean 'tools'?") in found
    assert ("agents.writer.max_iters", "unknown field 'max_iters'", "did you mean 'max_iter'?") in found
    steps = (
        "crews.triage.steps[1].expected_ouput",
        "unknown field 'expected_ouput'",
        "did you mean 'expected_output'?",
    )
    assert steps in found
    assert ("crews.triage.timeout", "unknown field 'timeout'", "did you mean 'timeout_s'?") in found


def test_unknown_names_get_did_you_mean_in_the_message(tmp_path: Path) -> None:
    agents = AGENTS.replace("[search_logs]", "[search_log]").replace(
        "    backstory: Clear\n", "    backstory: Clear\n    model: ofline\n"
    )
    crews = CREWS.replace("        agent: writer\n", "        agent: wrtier\n")
    issues = refused(write(tmp_path, **{"agents.yaml": agents, "crews.yaml": crews, "extra.yaml": "agent: {}\n"}))
    messages = {str(i) for i in issues}
    assert "agents.yaml:6:13: agents.analyst.tools[0]: unknown tool 'search_log' (known tools: " in "".join(messages)
    assert any(m.endswith("did you mean 'search_logs'?") and "search_log'" in m for m in messages)
    assert (
        "agents.yaml:11:12: agents.writer.model: unknown model profile 'ofline' (known: offline); did you mean 'offline'?"
        in messages
    )
    assert any(
        m.startswith("crews.yaml:13:16: crews.triage.steps[1].agent: unknown agent 'wrtier'")
        and m.endswith("did you mean 'writer'?")
        for m in messages
    )
    assert any(
        m.startswith("extra.yaml:1:1: agent: unknown section") and m.endswith("did you mean 'agents'?")
        for m in messages
    )
    as_json = [i.as_dict() for i in issues if i.hint == "did you mean 'writer'?"]
    assert as_json and str(as_json[0]["message"]).endswith("; did you mean 'writer'?")


def _bomb(levels: int) -> str:
    lines = ['    tools: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"    x{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return "agents:\n  bomb:\n    role: R\n    goal: G\n    backstory: B\n" + "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_where_it_blows_up(tmp_path: Path) -> None:
    issues = refused(write(tmp_path, **{"agents.yaml": AGENTS + "\n", "bomb.yaml": _bomb(7)}))
    [issue] = [i for i in issues if i.file == "bomb.yaml"]
    assert "YAML refused" in issue.message and "expands to more than 200000 nodes" in issue.message
    assert issue.line == 11  # the alias on x6 that crosses the limit


def test_deep_nesting_and_nul_bytes_are_errors_with_a_position_not_crashes(tmp_path: Path) -> None:
    deep = "agents:\n  deep:\n    tools: " + "[" * 1000 + "]" * 1000 + "\n"
    nul = "agents:\n  n:\n    role: R\x00\n"
    issues = refused(write(tmp_path, **{"deep.yaml": deep, "nul.yaml": nul}))
    by_file = {i.file: i for i in issues}
    assert by_file["deep.yaml"].message == "YAML refused: nesting is deeper than 64 levels"
    assert by_file["deep.yaml"].line == 3
    assert (by_file["nul.yaml"].line, by_file["nul.yaml"].column) == (3, 12)
    assert "U+0000" in by_file["nul.yaml"].message


def test_a_file_over_the_size_limit_is_refused_without_parsing(tmp_path: Path) -> None:
    big = "# padding\n" * 110_000  # ~1.1 MB of comments
    issues = refused(write(tmp_path, **{"big.yaml": big}))
    assert [(i.file, i.line) for i in issues] == [("big.yaml", 1)]
    assert "more than the limit of 1048576 bytes" in issues[0].message or "larger than the limit" in issues[0].message


def test_a_symlink_leaving_the_config_directory_is_refused(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    write(configs)
    (configs / "env.yaml").symlink_to("/proc/self/environ")
    (tmp_path / "outside.yaml").write_text("agents: {}\n")
    (configs / "out.yaml").symlink_to(tmp_path / "outside.yaml")
    (configs / "models.txt").write_text("models:\n  default: offline\n")
    (configs / "models.yml").symlink_to(configs / "models.txt")  # stays inside: followed
    issues = refused(configs)
    assert {(i.file, i.message) for i in issues} == {
        ("env.yaml", "symlink points outside the config directory; not followed"),
        ("out.yaml", "symlink points outside the config directory; not followed"),
    }


def test_a_kubernetes_configmap_volume_is_read_once(tmp_path: Path) -> None:
    """A ConfigMap mounted as a directory: the real files sit in ``..<timestamp>/``, ``..data``
    links to it, and each visible name links into ``..data``. Reading the hidden copies too
    defined every agent twice."""
    configs = tmp_path / "configs"
    stamp = configs / "..2026_11_30_08_00_00.1"
    stamp.mkdir(parents=True)
    (configs / "..data").symlink_to(stamp.name)
    shipped = Path(__file__).resolve().parents[2] / "configs"
    for source in [shipped / "agents.yaml", shipped / "models.yaml", shipped / "crews" / "incident_triage.yaml"]:
        (stamp / source.name).write_bytes(source.read_bytes())
        (configs / source.name).symlink_to(f"..data/{source.name}")
    (configs / ".agents.yaml.swp").write_text("agents: {broken\n")  # an editor's leftovers: not config
    catalog, issues = validate_directory(configs)
    assert issues == []
    assert catalog is not None and set(catalog.crews) == {"incident_triage"}
    assert sorted(Path(f).name for f in catalog.files) == ["agents.yaml", "incident_triage.yaml", "models.yaml"]


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"a.yaml": AGENTS, "a.yaml/b.yaml": AGENTS}, "is both a file and a directory"),
        ({"x" * 300 + ".yaml": AGENTS}, "at most 255 bytes"),
        ({"a\x00.yaml": AGENTS}, "without NUL"),
        ({"\ud800.yaml": AGENTS}, "valid Unicode"),
        ({"../escape.yaml": AGENTS}, "'..'"),
        ({"/etc/x.yaml": AGENTS}, "relative paths"),
        ({"agents.yaml": "agents:\n  a:\n    role: \ud800\n"}, "not valid Unicode"),
        ({"agents.yaml": "agents:\n  a:\n    role: \x00\n"}, "U+0000"),
        ({"agents.yaml": "agents:\n  a:\n    tools: " + "[" * 5000}, "nesting is deeper than 64 levels"),
    ],
    ids=[
        "file-and-dir",
        "long-name",
        "nul-name",
        "surrogate-name",
        "dotdot",
        "absolute",
        "surrogate-text",
        "nul-text",
        "deep",
    ],
)
def test_submitted_files_are_checked_in_memory_and_never_raise(
    files: dict[str, str], problem: str, tmp_path: Path
) -> None:
    catalog, issues = validate_files(files)
    assert catalog is None
    assert any(problem in i.message for i in issues), issues
    for issue in issues:  # every issue is printable, valid UTF-8, bounded
        text = str(issue)
        text.encode("utf-8")
        assert len(issue.file) <= 120


def test_submitted_files_validate_like_a_directory(tmp_path: Path) -> None:
    files = {"agents.yaml": AGENTS, "crews/triage.yaml": CREWS}
    catalog, issues = validate_files(files)
    assert issues == [] and catalog is not None
    on_disk = write(tmp_path, **{"agents.yaml": AGENTS})
    (on_disk / "crews.yaml").unlink()
    (on_disk / "crews").mkdir()
    (on_disk / "crews" / "triage.yaml").write_text(CREWS)
    assert validate_directory(on_disk)[0].version == catalog.version  # type: ignore[union-attr]
    assert textwrap.dedent(catalog.texts["agents.yaml"]) == AGENTS
