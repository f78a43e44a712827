"""``crewgate validate`` given one file: the file's problems, with cross-file references resolved."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def crewgate(*args: str, config_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "CREWAI_DISABLE_TELEMETRY": "true"}
    if config_dir is not None:
        env["CREWGATE_CONFIG_DIR"] = str(config_dir)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "validate", *args],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=60,
    )


def test_validating_one_shipped_file_resolves_agents_from_the_other_files() -> None:
    proc = crewgate("configs/crews/incident_triage.yaml")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK configs/crews/incident_triage.yaml")


def test_validating_one_file_lists_only_its_problems_with_hints(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(PROJECT / "configs", configs)
    agents = configs / "agents.yaml"
    agents.write_text(agents.read_text().replace("    max_iter: 5\n", "    max_iter: 5\n    tols: []\n"))
    crews = configs / "crews" / "incident_triage.yaml"
    crews.write_text(crews.read_text().replace("agent: triage_lead", "agent: triage_led"))

    proc = crewgate(str(agents), "--json", config_dir=configs)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["ok"] is False and result["other_errors"] == 1
    [error] = result["errors"]
    assert error["path"] == "agents.triage_lead.tols"
    assert error["message"] == "unknown field 'tols'; did you mean 'tools'?"

    agents.write_text(agents.read_text().replace("    tols: []\n", ""))
    proc = crewgate(str(agents), config_dir=configs)
    assert proc.returncode == 0
    assert "OK" in proc.stdout and "1 problem(s) in other files" in proc.stdout

    proc = crewgate(str(crews), config_dir=configs)
    assert proc.returncode == 1
    assert "unknown agent 'triage_led'" in proc.stderr and "did you mean 'triage_lead'?" in proc.stderr


def test_validating_a_file_outside_the_config_directory_checks_its_own_folder(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text("agents:\n  a:\n    role: R\n    goal: G\n    backstory: B\n")
    (tmp_path / "crews.yaml").write_text(
        "crews:\n  c:\n    steps:\n      - {name: s, agent: a, description: D, expected_output: O}\n"
    )
    proc = crewgate(str(tmp_path / "crews.yaml"))
    assert proc.returncode == 0, proc.stderr
