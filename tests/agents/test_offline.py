"""The offline model's policy: which tool it calls next, with what, and what it answers."""

from __future__ import annotations

import json

from agents.offline import decide

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


def test_calls_the_first_tool_it_can_fill_from_inputs() -> None:
    out = decide([{"role": "user", "content": "go"}], [SUSPECTS, SIGNATURES], {"logs": "/l", "repo": "/r"})
    assert isinstance(out, list)
    [call] = out
    assert call["function"]["name"] == "error_signatures"  # suspect_commits lacks a trace
    assert json.loads(call["function"]["arguments"]) == {"logs": "/l"}


def test_same_conversation_same_decision() -> None:
    messages = [{"role": "user", "content": "go"}]
    inputs = {"logs": "/l", "repo": "/r"}
    assert decide(messages, [SIGNATURES, SUSPECTS], inputs) == decide(messages, [SIGNATURES, SUSPECTS], inputs)
