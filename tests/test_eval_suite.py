"""The scored incident suite: deterministic generation and ground truth that holds in the repos."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from examples import incidents

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C", "PATH": "/usr/bin:/bin"}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, text=True, check=True)
    return proc.stdout


def digest(case_dir: Path) -> dict[str, str]:
    """sha256 of every generated file outside .git, and the sha of every commit."""
    out = {
        str(p.relative_to(case_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(case_dir.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(case_dir).parts
    }
    out["commits"] = git(case_dir / "repo", "log", "--format=%H", "--all")
    return out


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("suite")
    expected = {name: incidents.generate(name, root / name) for name in incidents.CASES}
    return {"root": root, "expected": expected}


def test_suite_has_the_cases_the_scoring_needs(suite: dict[str, Any]) -> None:
    expected = suite["expected"]
    assert len(expected) >= 12
    stacks = " ".join(e["stack"] for e in expected.values())
    for stack in ("python", "java", "go", "node"):
        assert stack in stacks
    assert any(not e["cause_in_repo"] and e["suspect"] is None for e in expected.values())
    assert any(e["file"] and e["file"].endswith((".yaml", ".properties", ".env")) for e in expected.values())
    assert any(
        e["file"] in ("requirements.txt", "go.mod", "package.json", "package-lock.json") for e in expected.values()
    )
    for name, exp in expected.items():
        assert exp["total_lines"] >= 20_000, name
        assert any(f.endswith(".gz") for f in exp["log_files"]), name
        assert exp["decoys"], f"{name} has no decoy commit"


def test_same_seed_gives_the_same_bytes_and_shas(suite: dict[str, Any], tmp_path: Path) -> None:
    for name in incidents.CASES:
        again = tmp_path / name
        incidents.generate(name, again)
        assert digest(again) == digest(suite["root"] / name), name


def test_another_seed_changes_the_logs_not_the_repo(suite: dict[str, Any], tmp_path: Path) -> None:
    name = "py_celery"
    other = incidents.generate(name, tmp_path / name, seed=7)
    first = suite["expected"][name]
    assert other["suspect"] == first["suspect"]
    assert other["lines_by_file"] != first["lines_by_file"]


def test_expected_commit_is_in_its_repo_and_touches_the_expected_file(suite: dict[str, Any]) -> None:
    for name, exp in suite["expected"].items():
        repo = suite["root"] / name / "repo"
        for decoy in exp["decoys"]:
            assert git(repo, "cat-file", "-t", decoy["sha"]).strip() == "commit", name
            assert exp["suspect"] is None or decoy["sha"] != exp["suspect"]["sha"]
        if exp["suspect"] is None:
            assert exp["file"] is None and exp["line"] is None
            continue
        sha = exp["suspect"]["sha"]
        decoy_files = {
            f for d in exp["decoys"] for f in git(repo, "show", "--name-only", "--format=", d["sha"]).split()
        }
        assert exp["file"] in decoy_files, f"{name}: no decoy touches {exp['file']}"
        for decoy in exp["decoys"]:  # decoys come after the culprit
            subprocess.run(["git", "merge-base", "--is-ancestor", sha, decoy["sha"]], cwd=repo, env=GIT_ENV, check=True)
        assert git(repo, "log", "-1", "--format=%s", sha).strip() == exp["suspect"]["subject"], name
        touched = git(repo, "show", "--name-only", "--format=", sha).split()
        assert exp["file"] in touched, f"{name}: {sha[:7]} does not touch {exp['file']}"
        deployed = exp["deploy"]["sha"]
        text = git(repo, "show", f"{deployed}:{exp['file']}").splitlines()
        assert 1 <= exp["line"] <= len(text), name
        # the culprit is part of what was deployed
        subprocess.run(["git", "merge-base", "--is-ancestor", sha, deployed], cwd=repo, env=GIT_ENV, check=True)


def test_the_incident_starts_after_the_deploy_and_the_red_herring_before_it(suite: dict[str, Any]) -> None:
    for name, exp in suite["expected"].items():
        onset = exp["onset"]
        if exp["cause_in_repo"]:
            assert exp["deploy"]["time"] < onset, name
        logs = suite["root"] / name / "logs"
        assert {f"logs/{p.relative_to(logs)}" for p in logs.rglob("*") if p.is_file()} == set(exp["log_files"])
        assert json.loads((suite["root"] / name / "expected.json").read_text()) == exp
