import os

# CrewAI must never phone home from tests; set before anything imports it.
os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_DISABLE_TRACKING", "true")
os.environ.setdefault("OTEL_SDK_DISABLED", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
# The suite polls its gateways faster than the default rate limits allow; tests of the
# limits (tests/gateway/test_rate_limits.py) set their own.
os.environ.setdefault("CREWGATE_RATE_LIMIT_SUBMIT", "")
os.environ.setdefault("CREWGATE_RATE_LIMIT_READ", "")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

PROJECT = Path(__file__).resolve().parent.parent

# Summarises tests skipped for a missing service (PostgreSQL, Redis...) in one line each.
pytest_plugins = ["tests.support.services"]


@pytest.fixture(scope="session")
def incident(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shipped example incident, generated once per test session into a temp dir."""
    root = tmp_path_factory.mktemp("example")
    out = root / "incident"
    subprocess.run(
        [sys.executable, str(PROJECT / "examples" / "generate_incident.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    expected = json.loads((out / "expected.json").read_text())
    return {"root": root, "dir": out, "expected": expected}
