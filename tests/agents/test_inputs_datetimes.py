"""Datetime inputs at the edges of the calendar are refused with a message, never a crash."""

from __future__ import annotations

import pytest

from agents.errors import InputError
from agents.inputs import validate_inputs
from agents.schema import CrewSpec

CREW = CrewSpec.model_validate(
    {
        "inputs": {"since": {"type": "datetime", "required": False}},
        "steps": [{"name": "s", "agent": "a", "description": "d", "expected_output": "o"}],
    }
)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_a_timestamp_outside_the_utc_calendar_is_refused_naming_the_input(value: str) -> None:
    with pytest.raises(InputError) as info:
        validate_inputs("triage", CREW, {"since": value})
    [issue] = info.value.issues
    assert issue.field == "since"
    assert "out of range" in issue.message


def test_the_edges_that_fit_are_kept_in_utc() -> None:
    assert validate_inputs("triage", CREW, {"since": "0001-01-01T05:00:00+05:00"}) == {"since": "0001-01-01T00:00:00Z"}
    assert validate_inputs("triage", CREW, {"since": "9999-12-31T23:00:00+01:00"}) == {"since": "9999-12-31T22:00:00Z"}
