"""``crewgate run --json`` carries the step's validated output, or the bad_output failure and its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_output_schema import BAD, CONFIG, GOOD
from tests.support.llm_server import ScriptedModel, ScriptedServer, text

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    scripted = ScriptedModel()
    with ScriptedServer(scripted) as server:
        scripted.base_url = server.base_url  # type: ignore[attr-defined]
        yield scripted


def run_json(tmp_path: Path, model: ScriptedModel) -> tuple[int, dict[str, Any]]:
    config = tmp_path / "configs"
    config.mkdir()
    body = textwrap.dedent(CONFIG).format(base_url=model.base_url, retries=1)  # type: ignore[attr-defined]
    (config / "all.yaml").write_text(body)
    env = {**os.environ, "CREWGATE_ALLOWED_ROOTS": str(tmp_path), "SCRIPTED_KEY": "k"}
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "run", "ask", "-q", "--json", "-c", str(config), "-i", "question=why"],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env,
        timeout=180,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_run_json_carries_the_validated_output(tmp_path: Path, model: ScriptedModel) -> None:
    model.script = [text("not json"), text(json.dumps(GOOD))]
    code, out = run_json(tmp_path, model)
    assert code == 0 and out["status"] == "completed"
    assert out["output"] == GOOD
    assert "error" not in out


def test_run_json_says_why_the_shape_was_refused(tmp_path: Path, model: ScriptedModel) -> None:
    model.script = [text(json.dumps(BAD)), text(json.dumps(BAD))]
    code, out = run_json(tmp_path, model)
    assert code == 1 and out["status"] == "failed" and out["output"] is None
    assert out["error"]["code"] == "bad_output"
    assert "confidence" in out["error"]["message"] and "'very'" in out["error"]["message"]
    assert out["events"][-1]["type"] == "task.failed" and out["events"][-1]["data"]["code"] == "bad_output"
