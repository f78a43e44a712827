"""CrewAI events to crewgate's public event drafts (type, agent, step, data).

The gateway adds ``v``, ``id``, ``seq``, ``task_id`` and ``ts`` when it appends a
draft to the task's event log. ``data`` stays small: long text is cut with a marker. Text in ``data`` comes from logs,
repositories and models: control characters in it are escaped (``\\x1b``), so an
event shown in a terminal or a browser cannot carry terminal escape sequences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tools._result import printable

__all__ = ["EventDraft", "EventMapper", "EventType", "TERMINAL_TYPES", "cut"]

TEXT_LIMIT = 2000
ARGS_LIMIT = 500


class EventType(StrEnum):
    task_queued = "task.queued"
    task_started = "task.started"
    task_restarted = "task.restarted"  # written by the store when a lapsed attempt is taken over
    step_started = "step.started"
    step_completed = "step.completed"
    llm_started = "llm.started"
    llm_chunk = "llm.chunk"
    llm_completed = "llm.completed"
    tool_started = "tool.started"
    tool_finished = "tool.finished"
    tool_failed = "tool.failed"
    agent_log = "agent.log"
    input_required = "input.required"  # written by the gateway when a run pauses for a person
    input_received = "input.received"  # ... and when the answer comes
    task_completed = "task.completed"
    task_failed = "task.failed"
    task_cancelled = "task.cancelled"


TERMINAL_TYPES = frozenset({EventType.task_completed, EventType.task_failed, EventType.task_cancelled})


@dataclass
class EventDraft:
    type: EventType
    agent: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def cut(text: Any, limit: int = TEXT_LIMIT) -> str:
    """``text`` as a printable string of at most about ``limit`` chars, with a marker saying how much was cut."""
    if not isinstance(text, str):
        try:
            text = json.dumps(text, default=str, ensure_ascii=False)
        except (TypeError, ValueError):
            text = str(text)
    if len(text) > limit:
        text = f"{text[:limit]}…[cut {len(text) - limit} chars]"
    return printable(text)


class EventMapper:
    """Maps one run's CrewAI events; knows the run's agent ids and step names."""

    def __init__(self, agent_keys: dict[str, str]) -> None:
        self._agent_keys = agent_keys  # str(Agent.id) -> YAML agent name
        self._step: str | None = None
        self._agent: str | None = None

    def _agent_of(self, event: Any) -> str | None:
        agent_id = getattr(event, "agent_id", None)
        if agent_id and str(agent_id) in self._agent_keys:
            return self._agent_keys[str(agent_id)]
        for attr in ("from_agent", "agent"):
            obj = getattr(event, attr, None)
            if obj is not None and str(getattr(obj, "id", "")) in self._agent_keys:
                return self._agent_keys[str(obj.id)]
        return self._agent

    def map(self, event: Any) -> EventDraft | None:
        kind = getattr(event, "type", "")
        handler = getattr(self, f"_on_{kind}", None)
        return handler(event) if handler else None

    def _on_task_started(self, event: Any) -> EventDraft:
        task = getattr(event, "task", None)
        self._step = getattr(task, "name", None) or event.task_name
        agent = getattr(task, "agent", None)
        self._agent = self._agent_keys.get(str(getattr(agent, "id", "")))
        return EventDraft(
            EventType.step_started, self._agent, self._step, {"description": cut(getattr(task, "description", ""), 500)}
        )

    def _on_task_completed(self, event: Any) -> EventDraft:
        output = getattr(event, "output", None)
        raw = getattr(output, "raw", output)
        draft = EventDraft(EventType.step_completed, self._agent, self._step, {"output": cut(raw)})
        return draft

    def _on_task_failed(self, event: Any) -> EventDraft:
        return EventDraft(
            EventType.agent_log, self._agent_of(event), self._step, {"level": "error", "message": cut(event.error, 500)}
        )

    def _on_llm_call_started(self, event: Any) -> EventDraft:
        tools = [t.get("function", t).get("name") for t in (event.tools or []) if isinstance(t, dict)]
        messages = event.messages if isinstance(event.messages, list) else [event.messages]
        return EventDraft(
            EventType.llm_started,
            self._agent_of(event),
            self._step,
            {"model": event.model, "messages": len(messages), "tools": tools},
        )

    def _on_llm_stream_chunk(self, event: Any) -> EventDraft:
        return EventDraft(
            EventType.llm_chunk, self._agent_of(event), self._step, {"chunk": printable(str(event.chunk))}
        )

    def _on_llm_call_completed(self, event: Any) -> EventDraft:
        data: dict[str, Any] = {"model": event.model}
        response = event.response
        if isinstance(response, list):
            data["tool_calls"] = [_call_name(c) for c in response]
        else:
            data["output"] = cut(response)
        if event.usage:
            data["usage"] = {k: v for k, v in event.usage.items() if isinstance(v, int)}
        return EventDraft(EventType.llm_completed, self._agent_of(event), self._step, data)

    def _on_llm_call_failed(self, event: Any) -> EventDraft:
        return EventDraft(
            EventType.agent_log,
            self._agent_of(event),
            self._step,
            {"level": "error", "message": f"model call failed: {cut(event.error, 500)}"},
        )

    def _on_tool_usage_started(self, event: Any) -> EventDraft:
        return EventDraft(
            EventType.tool_started,
            self._agent_of(event),
            self._step,
            {"tool": event.tool_name, "args": cut(event.tool_args, ARGS_LIMIT)},
        )

    def _on_tool_usage_finished(self, event: Any) -> EventDraft:
        duration = (event.finished_at - event.started_at).total_seconds() * 1000
        data = {
            "tool": event.tool_name,
            "output": cut(event.output),
            "duration_ms": round(duration, 1),
            "from_cache": bool(event.from_cache),
        }
        summary = _summary_of(event.output)
        if summary:
            data["summary"] = summary
        return EventDraft(EventType.tool_finished, self._agent_of(event), self._step, data)

    def _on_tool_usage_error(self, event: Any) -> EventDraft:
        return EventDraft(
            EventType.tool_failed,
            self._agent_of(event),
            self._step,
            {
                "tool": event.tool_name,
                "args": cut(event.tool_args, ARGS_LIMIT),
                "error": cut(event.error, 1000),
            },
        )

    _on_tool_validate_input_error = _on_tool_usage_error
    _on_tool_selection_error = _on_tool_usage_error


def _summary_of(output: Any) -> str | None:
    """The one-line summary of a crewgate tool result, when the output is one."""
    if not isinstance(output, str) or not output.startswith("{"):
        return None
    try:
        parsed = json.loads(output)
    except ValueError:
        return None
    summary = parsed.get("summary") if isinstance(parsed, dict) else None
    return cut(summary, 300) if isinstance(summary, str) and summary else None


def _call_name(call: Any) -> str:
    if isinstance(call, dict):
        return str(call.get("function", {}).get("name") or call.get("name") or "?")
    function = getattr(call, "function", None)
    return str(getattr(function, "name", None) or getattr(call, "name", "?"))
