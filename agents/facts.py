"""One run's facts ledger: findings passed between tools, steps and the offline model out of band.

A ledger is made by the assembly for exactly one run and shared by reference with the
run's tools (each records the ``ToolResult`` of every call) and with the offline model
(which reads the facts it acts on and records the facts its answer for a step ends
with). Nothing here is ever parsed back out of text that a log, a tool or a model
produced, so content cannot steer which tool runs with which arguments.

The crew's validated inputs win over any fact for their names: a tool or an answer
that reports ``repo``, ``logs`` or any other input name is ignored for that key, so no
tool can send another to a different root than the one checked at submit time.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tools._result import ToolResult, clip, printable

__all__ = ["FactsLedger", "ToolRecord", "merge_facts"]

# internal working values of the offline policy, not findings
_INTERNAL_PREFIXES = ("line_window",)
# bounds on the machine-readable output of a task
OUTPUT_STRING_LIMIT = 8000
OUTPUT_LIST_LIMIT = 50
OUTPUT_KEYS_LIMIT = 100
OUTPUT_DEPTH_LIMIT = 6


@dataclass(frozen=True)
class ToolRecord:
    """One tool call's result, as the tool returned it (facts less reserved names)."""

    step: str | None
    tool: str
    params: dict[str, Any]
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    kind: str  # "tool" | "answer"
    step: str | None
    facts: dict[str, Any]
    record: ToolRecord | None = None


class FactsLedger:
    """Facts of one run, in the order they were found. Thread-safe: tools may run on worker threads."""

    def __init__(self, inputs: Mapping[str, Any]) -> None:
        self._inputs = dict(inputs)
        self._reserved = frozenset(self._inputs)
        self._lock = threading.Lock()
        self._step: str | None = None
        self._entries: list[_Entry] = []

    @property
    def inputs(self) -> dict[str, Any]:
        """The crew's validated inputs (every declared name; "" when an optional one is unset)."""
        return dict(self._inputs)

    def enter(self, step: str | None) -> None:
        """The step now running: tool results recorded from here on belong to it."""
        with self._lock:
            self._step = step

    def record(self, result: ToolResult) -> None:
        """A tool's result (``tools._result.FactsSink``)."""
        facts = self._admit(result.facts)
        with self._lock:
            record = ToolRecord(self._step, result.tool, copy.deepcopy(result.params), result.summary, facts)
            self._entries.append(_Entry("tool", self._step, facts, record))

    def replay(self, tool: str, params: Mapping[str, Any] | str | None) -> None:
        """A call answered from CrewAI's tool cache: the earlier identical call's facts count again, for this step."""
        wanted = _canonical(params)
        with self._lock:
            earlier = [e.record for e in self._entries if e.record is not None and e.record.tool == tool]
            match = next((r for r in reversed(earlier) if _canonical(r.params) == wanted), None)
            if match is None:
                return
            record = ToolRecord(self._step, match.tool, match.params, match.summary, match.facts)
            self._entries.append(_Entry("tool", self._step, match.facts, record))

    def record_answer(self, step: str | None, facts: Mapping[str, Any]) -> None:
        """The facts a step's answer ends with, for the steps that take it as context
        (the offline policy's internal working values left out)."""
        admitted = self._admit({k: v for k, v in facts.items() if not str(k).startswith(_INTERNAL_PREFIXES)})
        with self._lock:
            self._entries.append(_Entry("answer", step, admitted))

    def tool_records(self, step: str | None) -> list[ToolRecord]:
        with self._lock:
            return [e.record for e in self._entries if e.record is not None and e.step == step]

    def facts_for(self, step: str | None, context: Sequence[str] | None = None) -> dict[str, Any]:
        """What ``step`` may act on: the answers of its context steps (None: every other step
        answered so far), its own tool results, and the inputs over all of them."""
        with self._lock:
            entries = list(self._entries)
        wanted = None if context is None else set(context)
        chosen = [
            e.facts
            for e in entries
            if (e.kind == "tool" and e.step == step)
            or (e.kind == "answer" and e.step != step and (wanted is None or e.step in wanted))
        ]
        facts = merge_facts(chosen)
        facts.update({k: v for k, v in self._inputs.items() if v not in ("", None)})
        return facts

    def findings(self) -> dict[str, Any] | None:
        """The run's machine-readable findings: every fact found, bounded, inputs left out; None if none."""
        with self._lock:
            entries = list(self._entries)
        facts = merge_facts(e.facts for e in entries)
        out = {
            printable(str(k)): _bounded(v, OUTPUT_DEPTH_LIMIT)
            for k, v in facts.items()
            if not str(k).startswith(_INTERNAL_PREFIXES)
        }
        return dict(list(out.items())[:OUTPUT_KEYS_LIMIT]) or None

    def state(self) -> list[dict[str, Any]]:
        """The entries as plain JSON data (``restore`` takes them back): a snapshot for a paused run."""
        with self._lock:
            entries = list(self._entries)
        return [_plain(e) for e in entries]

    def restore(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Replace the entries with a snapshot from ``state`` (already checked for shape); facts for
        the names of inputs are dropped again, so a stored snapshot cannot redirect a tool either."""
        restored = []
        for item in entries:
            facts = self._admit(item.get("facts") or {})
            record = None
            if item["kind"] == "tool":
                params = copy.deepcopy(dict(item.get("params") or {}))
                record = ToolRecord(
                    item.get("step"), str(item.get("tool")), params, str(item.get("summary") or ""), facts
                )
            restored.append(_Entry(item["kind"], item.get("step"), facts, record))
        with self._lock:
            self._entries = restored

    def _admit(self, facts: Mapping[str, Any]) -> dict[str, Any]:
        """Facts less the names reserved for inputs and empty values; a deep copy, so no tool can change them later."""
        return {
            k: copy.deepcopy(v) for k, v in facts.items() if k not in self._reserved and v not in ("", None, [], {})
        }


def _plain(entry: _Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": entry.kind, "step": entry.step, "facts": _json_data(entry.facts)}
    if entry.record is not None:
        out.update(tool=entry.record.tool, params=_json_data(entry.record.params), summary=entry.record.summary)
    return out


def _json_data(value: Any) -> Any:
    """``value`` as plain JSON data (anything else as its string)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def merge_facts(found: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Later values win; ``ruled_out`` lists are joined, each item once, in order."""
    facts: dict[str, Any] = {}
    ruled_out: list[str] = []
    for item in found:
        for key, value in item.items():
            if key == "ruled_out":
                ruled_out += [r for r in (value if isinstance(value, list) else []) if r not in ruled_out]
            else:
                facts[key] = value
    if ruled_out:
        facts["ruled_out"] = ruled_out
    return facts


def _canonical(params: Mapping[str, Any] | str | None) -> str:
    """One spelling of a call's arguments, whether given as a mapping or as JSON text."""
    value: Any = params
    if isinstance(params, str):
        try:
            value = json.loads(params)
        except ValueError:
            return params
    if not isinstance(value, Mapping):
        return json.dumps(value, default=str)
    return json.dumps({k: v for k, v in value.items() if v is not None}, sort_keys=True, default=str)


def _bounded(value: Any, depth: int) -> Any:
    """A JSON value of bounded size with printable strings."""
    if isinstance(value, str):
        return clip(printable(value), OUTPUT_STRING_LIMIT)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if depth <= 0:
        return clip(printable(json.dumps(value, default=str, ensure_ascii=False)), OUTPUT_STRING_LIMIT)
    if isinstance(value, Mapping):
        items = list(value.items())[:OUTPUT_KEYS_LIMIT]
        return {printable(str(k)): _bounded(v, depth - 1) for k, v in items}
    if isinstance(value, list | tuple):
        return [_bounded(v, depth - 1) for v in value[:OUTPUT_LIST_LIMIT]]
    return clip(printable(str(value)), OUTPUT_STRING_LIMIT)
