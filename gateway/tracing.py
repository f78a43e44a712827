"""OpenTelemetry traces of runs, built from our own event stream, sent with OTLP/HTTP.

On only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (``Settings.otel_endpoint``); unset,
nothing here is imported and nothing touches the network. One trace per run of a task:

    task <crew>                 task_id, crew, attempt, config_version, status
      step <step>               step, agent
        llm <model>             model, agent, prompt/completion tokens
        tool <tool>             tool, agent, outcome

Spans are started and ended from the run's events (``step.started`` …), in the
process running the crew, and exported by a ``BatchSpanProcessor`` thread.

CrewAI's own telemetry stays off: ``agents/__init__`` sets ``CREWAI_DISABLE_TELEMETRY``
and ``OTEL_SDK_DISABLED=true`` before CrewAI is imported. The SDK reads
``OTEL_SDK_DISABLED`` once, in ``TracerProvider.__init__``, and would make our provider
record nothing too, so ours is built explicitly, never installed as the global provider
(CrewAI's code cannot reach it), and its ``_disabled`` flag is cleared — the SDK offers
no public switch; CrewAI's own tracing does the same (``crewai.telemetry.tracing.session``).
A probe span checks that the provider records; if a later SDK ignores the override,
a warning says so and runs are not traced. ``tests/gateway/test_tracing.py`` pins it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import structlog

from agents.events import EventDraft, EventType

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ["RunTrace", "setup_tracing", "shutdown_tracing", "tracer"]

log = structlog.get_logger("crewgate.tracing")

_provider: TracerProvider | None = None
_tracer: Tracer | None = None
_lock = threading.Lock()


def _traces_url(endpoint: str) -> str:
    """``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL: traces go to ``<base>/v1/traces``."""
    return endpoint.rstrip("/") + "/v1/traces"


def _build(endpoint: str, service: str) -> TracerProvider | None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    provider._disabled = False  # set from OTEL_SDK_DISABLED, which is meant for CrewAI (see above)
    probe = provider.get_tracer(__name__).start_span("crewgate.probe")
    recording = probe.is_recording()
    if not recording:
        log.warning("this OpenTelemetry SDK ignores crewgate's override of OTEL_SDK_DISABLED; runs are not traced")
        provider.shutdown()
        return None
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint))))
    return provider


def setup_tracing(endpoint: str, service: str = "crewgate") -> bool:
    """Start exporting runs' traces to ``endpoint`` (once per process); False when off."""
    global _provider, _tracer
    if not endpoint:
        return False
    with _lock:
        if _provider is None:
            _provider = _build(endpoint, service)
            _tracer = _provider.get_tracer("crewgate") if _provider is not None else None
            if _provider is not None:
                log.info("tracing runs", endpoint=_traces_url(endpoint))
    return _provider is not None


def shutdown_tracing() -> None:
    """Send what is buffered and stop (a process that stops, or a pool process that exits)."""
    global _provider, _tracer
    with _lock:
        provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def tracer() -> Tracer | None:
    return _tracer


_TERMINAL = {
    EventType.task_completed: "completed",
    EventType.task_failed: "failed",
    EventType.task_cancelled: "cancelled",
}


class RunTrace:
    """The spans of one run, opened and closed by its events. Called under the observer's lock."""

    def __init__(self, tracer_: Tracer, task_id: str, crew: str, attempt: int, config_version: str) -> None:
        self._tracer = tracer_
        self._base = {"crewgate.task_id": task_id, "crewgate.crew": crew}
        attributes: dict[str, str | int] = {
            **self._base,
            "crewgate.attempt": attempt,
            "crewgate.config_version": config_version,
        }
        self._task = tracer_.start_span(f"task {crew}", attributes=attributes)
        self._steps: dict[str, Span] = {}
        self._llm: dict[str, Span] = {}  # by agent: one open model call each
        self._tools: dict[tuple[str, str], Span] = {}  # by (agent, tool)
        self._closed = False

    def _child(self, parent: Span, name: str, attributes: dict[str, Any]) -> Span:
        from opentelemetry import trace

        context = trace.set_span_in_context(parent)
        return self._tracer.start_span(name, context=context, attributes={**self._base, **attributes})

    def _parent(self, draft: EventDraft) -> Span:
        return self._steps.get(draft.step or "") or self._task

    def see(self, draft: EventDraft) -> None:
        if self._closed:
            return
        handler = _SPANS.get(draft.type)
        if handler is not None:
            handler(self, draft)

    def _step_started(self, draft: EventDraft) -> None:
        step = draft.step or ""
        attributes = {"crewgate.step": step, "crewgate.agent": draft.agent or ""}
        self._steps[step] = self._child(self._task, f"step {step}", attributes)

    def _step_completed(self, draft: EventDraft) -> None:
        span = self._steps.pop(draft.step or "", None)
        if span is not None:
            span.end()

    def _llm_started(self, draft: EventDraft) -> None:
        model = str(draft.data.get("model") or "")
        attributes = {
            "crewgate.step": draft.step or "",
            "crewgate.agent": draft.agent or "",
            "gen_ai.request.model": model,
        }
        self._end(self._llm.pop(draft.agent or "", None))
        self._llm[draft.agent or ""] = self._child(self._parent(draft), f"llm {model}", attributes)

    def _llm_completed(self, draft: EventDraft) -> None:
        span = self._llm.pop(draft.agent or "", None)
        if span is None:
            return
        usage = draft.data.get("usage") or {}
        span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("prompt_tokens") or 0))
        span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("completion_tokens") or 0))
        calls = draft.data.get("tool_calls")
        if isinstance(calls, list):
            span.set_attribute("crewgate.tool_calls", [str(c) for c in calls])
        span.end()

    def _tool_started(self, draft: EventDraft) -> None:
        tool = str(draft.data.get("tool") or "")
        attributes = {"crewgate.step": draft.step or "", "crewgate.agent": draft.agent or "", "crewgate.tool": tool}
        self._tools[(draft.agent or "", tool)] = self._child(self._parent(draft), f"tool {tool}", attributes)

    def _tool_ended(self, draft: EventDraft) -> None:
        from opentelemetry.trace import Status, StatusCode

        span = self._tools.pop((draft.agent or "", str(draft.data.get("tool") or "")), None)
        if span is None:
            return
        failed = draft.type is EventType.tool_failed
        span.set_attribute("crewgate.outcome", "failed" if failed else "finished")
        if failed:
            span.set_status(Status(StatusCode.ERROR, str(draft.data.get("error") or "")[:200]))
        span.end()

    def _ended(self, draft: EventDraft) -> None:
        from opentelemetry.trace import Status, StatusCode

        if draft.type is EventType.task_failed:
            self._task.set_status(Status(StatusCode.ERROR, str(draft.data.get("code") or "failed")))
        self.close(_TERMINAL[draft.type])

    @staticmethod
    def _end(span: Span | None) -> None:
        if span is not None:
            span.end()

    def close(self, status: str) -> None:
        """End every open span, the task's last (a paused or stopped run: with its status)."""
        if self._closed:
            return
        self._closed = True
        for span in [*self._tools.values(), *self._llm.values(), *self._steps.values()]:
            span.end()
        self._task.set_attribute("crewgate.status", status)
        self._task.end()


_SPANS: dict[EventType, Any] = {
    EventType.step_started: RunTrace._step_started,
    EventType.step_completed: RunTrace._step_completed,
    EventType.llm_started: RunTrace._llm_started,
    EventType.llm_completed: RunTrace._llm_completed,
    EventType.tool_started: RunTrace._tool_started,
    EventType.tool_finished: RunTrace._tool_ended,
    EventType.tool_failed: RunTrace._tool_ended,
    **{t: RunTrace._ended for t in _TERMINAL},
}
