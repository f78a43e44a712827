"""Path and text inputs: resolved only under the allowed roots, bounded, and refused with
a message that names the input as given and tells nothing about the server's files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agents.errors import InputError
from agents.inputs import validate_inputs
from agents.schema import CrewSpec

CREW = CrewSpec.model_validate(
    {
        "inputs": {
            "logs": {"type": "path"},
            "note": {"type": "string", "required": False},
            "ticket": {"type": "string", "required": False, "max_length": 12},
            "depth": {"type": "integer", "required": False},
        },
        "steps": [{"name": "s", "agent": "a", "description": "d", "expected_output": "o"}],
    }
)


@pytest.fixture
def roots(tmp_path: Path) -> list[Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    (first / "logs").mkdir(parents=True)
    (second / "only-here").mkdir(parents=True)
    return [first, second]


def problem(roots: list[Path], **inputs: object) -> dict[str, str]:
    with pytest.raises(InputError) as info:
        validate_inputs("triage", CREW, inputs, roots=roots)
    return {i.field: i.message for i in info.value.issues}


def test_relative_paths_resolve_against_the_roots_never_the_working_directory(
    roots: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "server-cwd"
    (cwd / "secret").mkdir(parents=True)
    monkeypatch.chdir(cwd)
    assert validate_inputs("triage", CREW, {"logs": "logs"}, roots=roots)["logs"] == str(roots[0] / "logs")
    assert validate_inputs("triage", CREW, {"logs": "only-here"}, roots=roots)["logs"] == str(roots[1] / "only-here")
    # "secret" exists in the working directory, "absent" nowhere: the answers must not differ
    secret = problem(roots, logs="secret")["logs"]
    absent = problem(roots, logs="absent")["logs"]
    assert secret == "'secret' does not exist under the allowed roots"
    assert absent == secret.replace("secret", "absent")


def test_messages_reveal_neither_the_roots_nor_what_exists_outside(roots: list[Path], tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("x")
    messages = {
        given: problem(roots, logs=given)["logs"]
        for given in (
            str(tmp_path / "outside.txt"),
            str(tmp_path / "no-such-file.txt"),
            "/etc/shadow",
            "/etc/no-such-file",
            sys.executable,
            "../outside.txt",
            "logs/../../../outside.txt",
        )
    }
    for given, message in messages.items():
        assert message == f"'{given}' is outside the allowed roots; tools may only read under CREWGATE_ALLOWED_ROOTS"
        assert str(tmp_path) not in message.replace(given, "")
    missing = problem(roots, logs=str(roots[0] / "nope"))["logs"]
    assert str(roots[1]) not in missing and missing.endswith("does not exist under the allowed roots")


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ("a" * 300 + "/x", "longer than 255 bytes"),
        ("~nosuchuser/x", "'~' is not expanded"),
        ("~/logs", "'~' is not expanded"),
        ("logs\x00/x", "NUL"),
        ("logs/\ud800", "unpaired surrogate"),
        ("x/" * 2100, "too long"),
    ],
)
def test_hostile_path_text_is_a_clean_input_error(roots: list[Path], given: str, needle: str) -> None:
    assert needle in problem(roots, logs=given)["logs"]


def test_text_inputs_are_bounded_and_clean(roots: list[Path]) -> None:
    issues = problem(
        roots,
        logs="logs",
        note="x" * 900_000,
        ticket="INC-1234567890",
        depth="9" * 5000,
    )
    assert issues["note"] == "too long: 900,000 characters (at most 4,096)"
    assert issues["ticket"] == "too long: 14 characters (at most 12)"
    assert issues["depth"] == "too long: 5,000 characters (at most 4,096)"
    assert "\x00" not in problem(roots, logs="logs", note="a\x00b")["note"]
    assert "unpaired surrogate" in problem(roots, logs="logs", note="\udc80")["note"]
    ok = validate_inputs("triage", CREW, {"logs": "logs", "note": "n" * 4096, "ticket": "INC-1"}, roots=roots)
    assert len(ok["note"]) == 4096
