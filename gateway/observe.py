"""Watching a run's own event stream for metrics and traces, in the process running its crew.

The runner hands every event draft of a run to ``RunObserver.see`` before it is
appended (on the crew's threads, in emission order), and calls ``close`` when the run
ends, however it ends. Nothing here writes to the store or blocks: counting a few
labels, and starting or ending spans that the tracing exporter sends from a thread of
its own.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from agents.catalog import Catalog
from agents.events import EventDraft, EventType
from gateway import metrics
from gateway.tracing import RunTrace, tracer

__all__ = ["RunObserver", "observe_run"]

_STATUS_OF = {
    EventType.task_completed: "completed",
    EventType.task_failed: "failed",
    EventType.task_cancelled: "cancelled",
}


class RunMetrics:
    """Step durations, model calls, tokens, cost and tool calls of one run."""

    def __init__(self, crew: str) -> None:
        self.crew = crew
        self.started = time.perf_counter()
        self._steps: dict[str, float] = {}

    def see(self, draft: EventDraft) -> None:
        handler = _HANDLERS.get(draft.type)
        if handler is not None:
            handler(self, draft)

    def _step_started(self, draft: EventDraft) -> None:
        self._steps[draft.step or ""] = time.perf_counter()

    def _step_completed(self, draft: EventDraft) -> None:
        began = self._steps.pop(draft.step or "", None)
        if began is not None:
            metrics.STEP_DURATION.labels(self.crew, draft.step or "").observe(time.perf_counter() - began)

    def _llm_completed(self, draft: EventDraft) -> None:
        agent, model = draft.agent or "", str(draft.data.get("model") or "")
        usage = draft.data.get("usage") or {}
        prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        metrics.LLM_CALLS.labels(self.crew, agent, model).inc()
        metrics.LLM_TOKENS.labels(self.crew, agent, model, "prompt").inc(prompt)
        metrics.LLM_TOKENS.labels(self.crew, agent, model, "completion").inc(completion)
        cost = float(draft.data.get("cost_usd") or 0.0)  # priced by the run (agents.prices) before it was stored
        metrics.LLM_COST.labels(self.crew, agent, model).inc(cost)

    def _tool(self, draft: EventDraft) -> None:
        outcome = "failed" if draft.type is EventType.tool_failed else "finished"
        metrics.TOOL_CALLS.labels(self.crew, str(draft.data.get("tool") or ""), outcome).inc()

    def _ended(self, draft: EventDraft) -> None:
        elapsed = time.perf_counter() - self.started
        metrics.TASK_DURATION.labels(self.crew, _STATUS_OF[draft.type]).observe(elapsed)


_HANDLERS: dict[EventType, Any] = {
    EventType.step_started: RunMetrics._step_started,
    EventType.step_completed: RunMetrics._step_completed,
    EventType.llm_completed: RunMetrics._llm_completed,
    EventType.tool_finished: RunMetrics._tool,
    EventType.tool_failed: RunMetrics._tool,
    **{t: RunMetrics._ended for t in _STATUS_OF},
}


class RunObserver:
    """Metrics (unless ``CREWGATE_METRICS=false``) and a trace (when a tracer is set up) of one run."""

    def __init__(self, metrics_of: RunMetrics | None, trace: RunTrace | None) -> None:
        self._metrics = metrics_of
        self._trace = trace
        self._lock = threading.Lock()  # CrewAI may emit from more than one thread

    def see(self, draft: EventDraft) -> None:
        with self._lock:
            if self._metrics is not None:
                self._metrics.see(draft)
            if self._trace is not None:
                self._trace.see(draft)

    def close(self, status: str) -> None:
        """The run ended (``status``: completed, failed, cancelled, waiting, interrupted…)."""
        with self._lock:
            if self._trace is not None:
                self._trace.close(status)


def observe_run(task_id: str, crew: str, attempt: int, catalog: Catalog) -> RunObserver:
    active = tracer()
    trace = RunTrace(active, task_id, crew, attempt, catalog.version) if active is not None else None
    return RunObserver(RunMetrics(crew) if metrics.enabled() else None, trace)
