"""Paths as a user types them: relative to the shell for `crewgate run`, relative to a root for the API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.small_incident import make_incident

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("work")
    root = workdir / "examples"  # like the README: the root is a folder of the directory the user is in
    root.mkdir()
    return {"workdir": workdir, "root": root, **make_incident(root)}


def crewgate(small: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREWGATE_ALLOWED_ROOTS": str(small["root"]), "CREWGATE_CONFIG_DIR": str(PROJECT / "configs")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=small["workdir"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_run_takes_paths_relative_to_where_it_runs(small: dict[str, Any]) -> None:
    proc = crewgate(
        small,
        "run",
        "incident_triage",
        "--json",
        "-i",
        "service=checkout",
        "-i",
        "logs=examples/incident/logs",
        "-i",
        "repo=examples/incident/repo",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "completed"
    assert out["output"]["suspect"]["sha"] == small["commit"]


def test_run_still_refuses_a_relative_path_that_leaves_the_roots(small: dict[str, Any]) -> None:
    (small["workdir"] / "elsewhere").mkdir(exist_ok=True)
    proc = crewgate(small, "run", "incident_triage", "-i", "service=checkout", "-i", "logs=elsewhere", "-i", "repo=.")
    assert proc.returncode == 2
    assert "outside the allowed roots" in proc.stderr
