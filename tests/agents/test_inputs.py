"""A crew's inputs are checked before anything runs: every problem named, by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.errors import InputError
from agents.inputs import validate_inputs
from agents.schema import CrewSpec

CREW = CrewSpec.model_validate(
    {
        "inputs": {
            "service": {"type": "string"},
            "logs": {"type": "path"},
            "since": {"type": "datetime", "required": False},
            "depth": {"type": "integer", "default": 3},
            "ratio": {"type": "number", "required": False},
            "strict": {"type": "boolean", "default": False},
            "env": {"type": "string", "choices": ["prod", "staging"], "default": "prod"},
        },
        "steps": [{"name": "s", "agent": "a", "description": "d", "expected_output": "o"}],
    }
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "app.log").write_text("x\n")
    return tmp_path


def fields(error: InputError) -> dict[str, str]:
    return {i.field: i.message for i in error.issues}


def test_defaults_filled_and_types_applied(root: Path) -> None:
    out = validate_inputs(
        "triage",
        CREW,
        {"service": "checkout", "logs": str(root / "logs"), "depth": "5", "strict": "yes", "since": "2026-11-20 13:00"},
        roots=[root],
    )
    assert out == {
        "service": "checkout",
        "logs": str(root / "logs"),
        "since": "2026-11-20T13:00:00Z",
        "depth": 5,
        "ratio": "",
        "strict": True,
        "env": "prod",
    }


def test_every_problem_is_reported_at_once(root: Path) -> None:
    with pytest.raises(InputError) as info:
        validate_inputs(
            "triage",
            CREW,
            {"logs": str(root / "nope"), "depth": "deep", "color": "red", "env": "dev", "since": "yesterday"},
            roots=[root],
        )
    problems = fields(info.value)
    assert set(problems) == {"service", "logs", "depth", "color", "env", "since"}
    assert problems["service"].startswith("required (string)")
    assert "does not exist under the allowed roots" in problems["logs"]
    assert problems["depth"] == "expected an integer, got 'deep'"
    assert problems["color"].startswith("unknown input for crew 'triage'")
    assert problems["env"] == "must be one of prod, staging"
    assert "ISO-8601" in problems["since"]
    assert "inputs.depth: expected an integer" in str(info.value)


def test_path_outside_roots_is_refused(root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    for given in (str(outside), str(root / ".." / outside.name), "/etc"):
        with pytest.raises(InputError) as info:
            validate_inputs("triage", CREW, {"service": "s", "logs": given}, roots=[root])
        assert "outside the allowed roots" in fields(info.value)["logs"]


def test_json_types_are_checked(root: Path) -> None:
    with pytest.raises(InputError) as info:
        validate_inputs("triage", CREW, {"service": 42, "logs": str(root), "depth": True, "ratio": "x"}, roots=[root])
    problems = fields(info.value)
    assert problems["service"] == "expected a string, got int"
    assert problems["depth"] == "expected an integer, got a boolean"
    assert problems["ratio"] == "expected a number, got 'x'"
