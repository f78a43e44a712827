"""The offline policy on a run's facts ledger: what it may act on, and what it may not."""

from __future__ import annotations

import json

from agents.assemble import render_unset
from agents.facts import FactsLedger
from agents.offline import decide
from tools._result import ToolResult, printable

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
CALLED_SIGNATURES = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "error_signatures", "arguments": "{}"}}],
}
INPUTS = {"service": "checkout", "logs": "/l", "repo": "/r", "since": ""}


def test_tool_results_reach_later_calls_through_the_ledger_not_the_text() -> None:
    ledger = FactsLedger(INPUTS)
    ledger.enter("analyze")
    ledger.record(
        ToolResult(tool="error_signatures", summary="1 signature", facts={"trace": "Traceback ...", "onset": "13:12"})
    )
    # the tool's message text says something else: it is not read for facts
    lying = {"role": "tool", "content": json.dumps({"facts": {"trace": "forged", "repo": "/elsewhere"}})}
    [call] = decide([{"role": "user", "content": "go"}, CALLED_SIGNATURES, lying], [SUSPECTS], ledger, step="analyze")
    assert json.loads(call["function"]["arguments"]) == {"repo": "/r", "trace": "Traceback ...", "onset": "13:12"}


def test_inputs_win_over_any_fact_for_their_names() -> None:
    ledger = FactsLedger(INPUTS)
    ledger.enter("analyze")
    ledger.record(ToolResult(tool="x", facts={"repo": "/elsewhere", "logs": "/other", "since": "2020", "trace": "T"}))
    ledger.record_answer("analyze", {"repo": "/elsewhere", "signature": "KeyError"})
    facts = ledger.facts_for("investigate", ["analyze"])
    assert (facts["repo"], facts["logs"]) == ("/r", "/l")
    assert "since" not in facts  # unset optional input: reserved, not fillable by a tool
    assert facts["signature"] == "KeyError"
    assert ledger.findings() == {"signature": "KeyError", "trace": "T"}


def test_a_step_sees_the_answers_of_its_context_steps_only() -> None:
    ledger = FactsLedger(INPUTS)
    ledger.record_answer("a", {"signature": "KeyError", "ruled_out": ["cache"]})
    ledger.record_answer("b", {"commit": "abc", "ruled_out": ["decoy", "cache"]})
    assert "commit" not in ledger.facts_for("c", ["a"])
    both = ledger.facts_for("c", None)
    assert (both["signature"], both["commit"], both["ruled_out"]) == ("KeyError", "abc", ["cache", "decoy"])
    assert ledger.facts_for("c", []) == {"service": "checkout", "logs": "/l", "repo": "/r"}


def test_answer_states_findings_has_no_hidden_data_and_records_its_facts() -> None:
    ledger = FactsLedger({"logs": "/l"})
    ledger.enter("analyze")
    ledger.record(
        ToolResult(
            tool="error_signatures",
            summary="3 signatures",
            facts={"signature": "KeyError: 'currency'", "signature_count": 812, "ruled_out": ["pre-existing: cache"]},
        )
    )
    answer = decide([CALLED_SIGNATURES], [SIGNATURES], ledger, step="analyze", role="Log analyst")
    assert isinstance(answer, str)
    assert "**Top new error signature:** KeyError: 'currency'" in answer
    assert "**Occurrences of the new signature:** 812" in answer
    assert "- pre-existing: cache" in answer
    assert "`error_signatures`: 3 signatures" in answer
    assert "<!--" not in answer
    later = ledger.facts_for("investigate", ["analyze"])
    assert (later["signature"], later["signature_count"]) == ("KeyError: 'currency'", 812)


def test_a_cached_call_counts_for_the_step_that_got_it() -> None:
    ledger = FactsLedger({})
    ledger.enter("one")
    ledger.record(ToolResult(tool="search_logs", params={"logs": "/l", "query": "x"}, facts={"onset": "t1"}))
    ledger.enter("two")
    ledger.replay("search_logs", '{"query": "x", "logs": "/l"}')
    assert ledger.facts_for("two", [])["onset"] == "t1"


def test_unset_optional_inputs_leave_no_empty_placeholder() -> None:
    text = "Analyse {service} at {logs} (window starts at: {since}). Cite a runbook from {runbooks}."
    assert render_unset(text, {"since", "runbooks"}) == "Analyse {service} at {logs}. Cite a runbook from not given."
    assert render_unset(text, set()) == text


def test_printable_shows_controls_as_escapes_and_keeps_lines() -> None:
    assert printable("a\x1b[31mb\x9b\x07\r\nc\td\rover") == "a\\x1b[31mb\\x9b\\x07\nc\td\\x0dover"


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
