"""``require_service``: a missing service skips its tests with one summary line, or fails them
when CI or CREWGATE_TEST_REQUIRE asks for it. Each case runs pytest on a tiny file in a
subprocess (plugin autoload off, so it starts fast)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

TINY_TESTS = """
from pathlib import Path

import pytest

from tests.support.services import require_service

PROBES = Path(__file__).with_name("probes.log")


def down():
    with PROBES.open("a") as f:
        f.write("probe\\n")
    return "nothing listens on 127.0.0.1:1"


@pytest.fixture
def fakedb():
    require_service("fakedb", down, "set FAKEDB_URL to a running fakedb")


@pytest.fixture
def upsvc():
    require_service("upsvc", lambda: None, "nothing to do")


def test_needs_fakedb_one(fakedb):
    pass


def test_needs_fakedb_two(fakedb):
    pass


def test_needs_a_running_service(upsvc):
    pass


def test_needs_nothing():
    pass
"""


def run_tiny(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], int]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.support.services"]\n')
    (tmp_path / "test_tiny.py").write_text(TINY_TESTS)
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "CREWGATE_TEST_REQUIRE", "PYTEST_ADDOPTS")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(PROJECT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    probes = tmp_path / "probes.log"
    return proc, len(probes.read_text().splitlines()) if probes.exists() else 0


@pytest.mark.parametrize(
    "env",
    [{}, {"CI": ""}, {"CI": "0"}, {"CI": "false"}, {"CREWGATE_TEST_REQUIRE": "redis,chromium"}],
    ids=["no-env", "CI-empty", "CI-0", "CI-false", "require-others"],
)
def test_a_missing_service_skips_its_tests_and_says_how_to_run_them(tmp_path: Path, env: dict[str, str]):
    proc, probes = run_tiny(tmp_path, **env)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "2 passed, 2 skipped" in out
    summary = [line for line in out.splitlines() if "fakedb" in line]
    assert summary == [
        "SKIPPED 2 tests that need fakedb: nothing listens on 127.0.0.1:1. To run them: set FAKEDB_URL to a running fakedb"
    ]
    assert "upsvc" not in out
    assert probes == 1  # probed once for the session, not once per test


@pytest.mark.parametrize(
    ("env", "because"),
    [
        ({"CI": "true"}, "CI is set"),
        ({"CI": "1"}, "CI is set"),
        ({"CREWGATE_TEST_REQUIRE": "redis, fakedb"}, "CREWGATE_TEST_REQUIRE lists it"),
        ({"CREWGATE_TEST_REQUIRE": "all"}, "CREWGATE_TEST_REQUIRE lists it"),
    ],
    ids=["CI-true", "CI-1", "require-listed", "require-all"],
)
def test_a_required_missing_service_fails_its_tests_loudly(tmp_path: Path, env: dict[str, str], because: str):
    proc, probes = run_tiny(tmp_path, **env)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "2 passed, 2 errors" in out
    assert (
        f"fakedb is required ({because}) but unavailable: nothing listens on 127.0.0.1:1. "
        "To fix: set FAKEDB_URL to a running fakedb"
    ) in out
    assert "SKIPPED" not in out
    assert probes == 1
