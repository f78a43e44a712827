"""``crewgate run`` and the top level as a user meets them: argument errors, help, version, progress."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from tests.support.small_incident import make_incident

PROJECT = Path(__file__).resolve().parents[2]
SPINNER_FRAMES = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def triage_args(incident: dict[str, Any]) -> list[str]:
    return [
        "run",
        "incident_triage",
        "-i",
        "service=checkout",
        "-i",
        f"logs={incident['logs']}",
        "-i",
        f"repo={incident['repo']}",
    ]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_incident(tmp_path_factory.mktemp("small"))


def test_input_without_equals_sign_names_it_and_the_expected_form() -> None:
    result = invoke("run", "incident_triage", "-i", "service", "checkout", "-i", "logs=/tmp")
    assert result.exit_code == 2
    assert "-i/--input 'service': expected key=value" in result.output
    assert "did you mean -i service=checkout?" in result.output
    assert "unexpected extra argument" not in result.output.lower()


def test_a_stray_argument_is_named() -> None:
    result = invoke("run", "incident_triage", "-i", "service=checkout", "oops")
    assert result.exit_code == 2
    assert "unexpected argument 'oops': inputs are given as -i key=value" in result.output


def test_an_input_given_twice_is_refused() -> None:
    result = invoke("run", "incident_triage", "-i", "service=checkout", "-i", "service=")
    assert result.exit_code == 2
    assert "-i/--input 'service' is given more than once" in result.output


def test_json_and_quiet_are_flags_in_help() -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    for flag in ("--json", "--quiet"):
        [line] = [ln for ln in result.output.splitlines() if flag in ln]
        assert "<bool>" not in line, line
    assert "KEY=VALUE" in result.output


def test_version_comes_from_the_package_and_does_not_import_crewai() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom gateway.cli import app\n"
        "r = CliRunner().invoke(app, ['--version'])\nassert r.exit_code == 0, r.output\nprint(r.output.strip())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('crewai', 'litellm', 'openai')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"crewgate {version('crewgate')}", "[]"]


def test_loading_crewai_is_said_on_a_plain_line_when_not_a_terminal(small: dict[str, Any]) -> None:
    env = {**os.environ, "CREWGATE_ALLOWED_ROOTS": str(small["root"])}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *triage_args(small), "--json"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert "loading CrewAI…" in lines
    started = next(i for i, line in enumerate(lines) if "task started" in line)
    assert lines.index("loading CrewAI…") < started
    out = json.loads(proc.stdout)
    assert set(out) == {"task_id", "status", "result", "output", "usage", "events"}
    assert out["output"]["suspect"]["sha"] == small["commit"]


def test_loading_crewai_shows_a_spinner_on_a_terminal(small: dict[str, Any]) -> None:
    env = {**os.environ, "CREWGATE_ALLOWED_ROOTS": str(small["root"]), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *triage_args(small)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=child,
        cwd=PROJECT,
        env=env,
    )
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the child closed its end
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    text = seen.decode("utf-8", "replace")
    assert "loading CrewAI…" in text
    assert SPINNER_FRAMES & set(text)
