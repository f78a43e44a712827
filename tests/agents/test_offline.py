"""The offline model's policy: which tool it calls next, with what, and what it answers."""

from __future__ import annotations

import json

from agents.offline import decide, gather_facts

SIGNATURES = {
    "type": "function",
    "function": {
        "name": "error_signatures",
        "parameters": {
            "type": "object",
            "required": ["logs", "limit"],
            "properties": {"logs": {"type": "string"}, "limit": {"type": "integer", "default": 10}},
        },
    },
}
SUSPECTS = {
    "type": "function",
    "function": {
        "name": "suspect_commits",
        "parameters": {
            "type": "object",
            "required": ["repo", "trace", "onset"],
            "properties": {
                "repo": {"type": "string"},
                "trace": {"type": "string"},
                "onset": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
        },
    },
}


def tool_message(facts: dict, summary: str = "found things") -> dict:
    return {
        "role": "tool",
        "tool_call_id": "c1",
        "name": "x",
        "content": json.dumps({"tool": "error_signatures", "summary": summary, "facts": facts}),
    }


def test_calls_the_first_tool_it_can_fill_from_inputs() -> None:
    out = decide([{"role": "user", "content": "go"}], [SUSPECTS, SIGNATURES], {"logs": "/l", "repo": "/r"})
    assert isinstance(out, list)
    [call] = out
    assert call["function"]["name"] == "error_signatures"  # suspect_commits lacks a trace
    assert json.loads(call["function"]["arguments"]) == {"logs": "/l"}


def test_tool_results_supply_later_arguments() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "error_signatures", "arguments": "{}"}}
            ],
        },
        tool_message({"trace": "Traceback ...", "onset": "2026-11-20T13:12:00Z", "signature": "KeyError"}),
    ]
    [call] = decide(messages, [SIGNATURES, SUSPECTS], {"logs": "/l", "repo": "/r"})
    assert call["function"]["name"] == "suspect_commits"
    assert json.loads(call["function"]["arguments"]) == {
        "repo": "/r",
        "trace": "Traceback ...",
        "onset": "2026-11-20T13:12:00Z",
    }


def test_answer_states_findings_and_carries_facts_to_the_next_step() -> None:
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "error_signatures", "arguments": "{}"}}
            ],
        },
        tool_message(
            {
                "signature": "KeyError: 'currency'",
                "signature_count": 812,
                "ruled_out": ["pre-existing: cache timeout (40 since 09:00)"],
            },
            "3 signatures",
        ),
    ]
    answer = decide(messages, [SIGNATURES], {"logs": "/l"}, role="Log analyst")
    assert isinstance(answer, str)
    assert "**Top new error signature:** KeyError: 'currency'" in answer
    assert "**Occurrences of the new signature:** 812" in answer
    assert "- pre-existing: cache timeout (40 since 09:00)" in answer
    assert "`error_signatures`: 3 signatures" in answer
    # the next step's prompt contains this answer as context: its facts come back
    assert "<!-- crewgate:facts " in answer
    facts = gather_facts([{"role": "user", "content": f"context:\n{answer}"}], {})
    assert facts["signature"] == "KeyError: 'currency'"
    assert facts["signature_count"] == 812
    assert facts["ruled_out"] == ["pre-existing: cache timeout (40 since 09:00)"]


def test_same_conversation_same_decision() -> None:
    messages = [{"role": "user", "content": "go"}]
    inputs = {"logs": "/l", "repo": "/r"}
    assert decide(messages, [SIGNATURES, SUSPECTS], inputs) == decide(messages, [SIGNATURES, SUSPECTS], inputs)
