"""Run one crew to completion, turning CrewAI's events into public event drafts.

The sink is CrewAI's context-scoped stream sink: it is called synchronously at
emit time and only for events of this run, even when other runs share the process.
Tool calls may run on CrewAI's worker threads (which copy the context), so the
sink serialises on a lock to keep one run's events in one order.

The sink also tells the run's facts ledger which step is running, and, when CrewAI
answers a tool call from its cache (the tool does not run), that the earlier
identical call's facts count for this step too. The outcome carries the report
(``result``, for people) and the findings (``output``, for machines): the validated
answer of the last step that declares an ``output_schema``, or, in a crew where no
step declares one, every fact the ledger holds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.assemble import AssembledCrew, build_crew
from agents.catalog import Catalog
from agents.events import EventDraft, EventMapper, EventType
from agents.facts import FactsLedger
from agents.hitl import Checkpoint, InputNeeded, Progress, QuestionAsked, load_checkpoint
from agents.outputs import BadOutputError
from agents.prices import COST_DECIMALS, Prices
from tools._result import printable

__all__ = ["BadOutputError", "InputNeeded", "RunCancelled", "RunOutcome", "run_crew"]

_CHECKPOINTS = frozenset({EventType.step_started, EventType.llm_started, EventType.tool_started})


class RunCancelled(BaseException):  # noqa: N818 - a control-flow signal, like KeyboardInterrupt
    """Raised inside a run at its next step, model call or tool call once cancel is asked.

    A BaseException so that CrewAI's ``except Exception`` blocks let it through.
    """

    def __init__(self, reason: str = "cancelled", *, failure_code: str | None = None) -> None:
        self.reason = reason
        # None: the task was cancelled on request; otherwise it failed with this code
        # ("timeout" past its time limit, "interrupted" when the gateway shut down)
        self.failure_code = failure_code
        super().__init__(reason)


@dataclass
class RunOutcome:
    result: str  # the report a person reads (control characters escaped)
    usage: dict[str, int] = field(default_factory=dict)
    output: dict[str, Any] | None = None  # machine-readable findings: a JSON object, or None
    cost_usd: float = 0.0  # the model calls of this run, at their profiles' prices


def run_crew(
    catalog: Catalog,
    crew_name: str,
    inputs: Mapping[str, Any],
    *,
    emit: Callable[[EventDraft], None],
    roots: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str],
    cancelled: Callable[[], RunCancelled | None] = lambda: None,
    checkpoint: dict[str, Any] | None = None,
) -> RunOutcome:
    """Build a fresh crew and kick it off; ``cancelled()`` returns why to stop, or None.

    Raises ``agents.hitl.InputNeeded`` when the run pauses for a person. With a
    ``checkpoint`` (from ``agents.hitl.resume_checkpoint``), the finished steps are not
    run again; a corrupt checkpoint is a ValueError, before anything runs. Call it in a
    fresh ``contextvars.Context``: an interrupted kickoff leaves CrewAI's event scope set.
    """
    from crewai.events.stream_context import add_stream_sink, reset_stream_sinks

    resumed = _resumed(catalog, crew_name, checkpoint)
    assembled = build_crew(catalog, crew_name, inputs, roots=roots, env=env)
    progress = Progress(assembled, catalog.crew(crew_name), crew_name, resumed)
    if progress.finished:  # the last step was approved: nothing is left to run
        return RunOutcome(result=progress.result(), usage={}, output=_output(assembled))
    mapper = EventMapper(assembled.agent_keys)
    lock = threading.Lock()
    usage: dict[str, int] = {}
    prices = Prices(catalog)
    cost = 0.0  # of this run's model calls, summed in the sink

    ledger = assembled.ledger

    def sink(_source: Any, event: Any) -> None:
        nonlocal cost
        with lock:
            draft = mapper.map(event)
            if draft is None:
                return
            _note(ledger, draft, event)
            if draft.type is EventType.step_started:
                progress.started(draft.step)
            if draft.type is EventType.llm_completed:
                _count(usage, draft)
                cost += _priced(prices, draft)
            if draft.type in _CHECKPOINTS:
                stop = cancelled()
                if stop is not None:
                    raise stop
            emit(draft)
            if draft.type is EventType.step_completed:
                progress.completed(draft.step, getattr(event, "output", None))  # may pause for a review

    stop = cancelled()
    if stop is not None:
        raise stop
    token = add_stream_sink(sink)
    try:
        output = _kickoff(assembled, inputs, progress)
    finally:
        reset_stream_sinks(token)
    if not usage.get("total_tokens"):  # a provider that reports usage only on the crew output
        usage.update(_crew_usage(output))
    return RunOutcome(
        result=printable(str(output.raw)), usage=usage, output=_output(assembled), cost_usd=round(cost, COST_DECIMALS)
    )


def _resumed(catalog: Catalog, crew_name: str, checkpoint: dict[str, Any] | None) -> Checkpoint | None:
    """The checkpoint checked for shape and against the crew (ValueError if it does not fit)."""
    if checkpoint is None:
        return None
    resumed = load_checkpoint(checkpoint, catalog.crew(crew_name), crew_name)
    if resumed.pending is not None:
        raise ValueError("the checkpoint still waits for a person; resume it with its answer first")
    return resumed


def _count(usage: dict[str, int], draft: EventDraft) -> None:
    usage["model_calls"] = usage.get("model_calls", 0) + 1
    for key, value in (draft.data.get("usage") or {}).items():
        usage[key] = usage.get(key, 0) + value


def _priced(prices: Prices, draft: EventDraft) -> float:
    """Put the call's cost on its llm.completed draft (``data.cost_usd``, when it reports usage)."""
    usage = draft.data.get("usage")
    if not usage:
        return 0.0
    cost = prices.cost(draft.agent, str(draft.data.get("model") or ""), usage)
    draft.data["cost_usd"] = cost
    return cost


def _kickoff(assembled: AssembledCrew, inputs: Mapping[str, Any], progress: Progress) -> Any:
    """Kick the crew off (a step re-run with feedback starts from its conversation); a question
    for a person pauses the run."""
    from crewai.core.providers.human_input import reset_provider, set_provider

    provider = progress.provider()
    provider_token = set_provider(provider) if provider is not None else None
    try:
        return _kickoff_crew(assembled, inputs)
    except QuestionAsked as asked:
        raise progress.question(asked) from None
    finally:
        if provider_token is not None:
            reset_provider(provider_token)


def _kickoff_crew(assembled: AssembledCrew, inputs: Mapping[str, Any]) -> Any:
    try:
        return assembled.crew.kickoff(inputs=dict(inputs))
    except Exception as e:
        failure = assembled.outputs.failure
        if failure is not None:  # CrewAI's generic guardrail error; say which step and what was wrong
            raise failure from e
        raise


def _output(assembled: AssembledCrew) -> dict[str, Any] | None:
    """The validated object of the last step that declares a shape; without one, the ledger's findings."""
    if assembled.outputs.declared:
        return assembled.outputs.final()
    return assembled.ledger.findings()


def _note(ledger: FactsLedger, draft: EventDraft, event: Any) -> None:
    """Tell the ledger which step runs, and about tool calls CrewAI answered from its cache."""
    if draft.type is EventType.step_started:
        ledger.enter(draft.step)
    elif draft.type is EventType.tool_finished and getattr(event, "from_cache", False):
        ledger.replay(str(event.tool_name), getattr(event, "tool_args", None))


def _crew_usage(output: Any) -> dict[str, int]:
    metrics = getattr(output, "token_usage", None)
    if metrics is None:
        return {}
    return {k: v for k, v in metrics.model_dump().items() if isinstance(v, int)}
