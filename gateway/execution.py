"""Execute one task in this process: stamp events, run the crew, end in a terminal event.

Used by the CLI and by the gateway's runners. The caller provides ``publish``, which
receives each finished public event (with ``v``, ``id``, ``seq``, ``ts``) in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from agents.catalog import Catalog
from agents.events import EventDraft, EventType
from agents.failures import describe_failure
from agents.hitl import InputNeeded
from agents.run import RunCancelled, run_crew
from tools._result import printable

__all__ = ["TaskOutcome", "execute_task"]

log = structlog.get_logger("crewgate.execution")


@dataclass
class TaskOutcome:
    status: str  # completed | failed | cancelled | waiting (a person's input is needed: see ``paused``)
    result: str | None = None  # the report, for people
    output: dict[str, Any] | None = None  # machine-readable findings (a JSON object), when completed
    usage: dict[str, int] = field(default_factory=dict)
    error_code: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    paused: InputNeeded | None = None  # waiting: what the run needs, and where it goes on from


def execute_task(
    task_id: str,
    catalog: Catalog,
    crew: str,
    inputs: Mapping[str, Any],
    *,
    publish: Callable[[EventDraft], None],
    roots: Sequence[Path],
    env: Mapping[str, str],
    cancelled: Callable[[], RunCancelled | None] = lambda: None,
    checkpoint: dict[str, Any] | None = None,
) -> TaskOutcome:
    """Run the crew (from ``checkpoint``, where a paused run stopped, when given); emits
    task.started (not on a resume), the crew's events, and exactly one terminal event, or
    none when the run pauses for a person (status ``waiting``)."""
    started = time.perf_counter()
    bound = structlog.contextvars.bound_contextvars(task_id=task_id, crew=crew, config_version=catalog.version)
    with bound:
        if checkpoint is None:
            publish(EventDraft(EventType.task_started, data={"crew": crew, "config_version": catalog.version}))
            log.info("task started")
        else:
            log.info("task resumed")
        try:
            outcome = run_crew(
                catalog, crew, inputs, emit=publish, roots=roots, env=env, cancelled=cancelled, checkpoint=checkpoint
            )
        except InputNeeded as e:
            log.info("task waits for a person", kind=str(e.request.kind), step=e.request.step)
            return TaskOutcome("waiting", paused=e, duration_s=time.perf_counter() - started)
        except RunCancelled as e:
            elapsed = time.perf_counter() - started
            if e.failure_code:
                publish(EventDraft(EventType.task_failed, data={"code": e.failure_code, "error": e.reason}))
                log.warning("task stopped", code=e.failure_code, error=e.reason)
                return TaskOutcome("failed", error_code=e.failure_code, error=e.reason, duration_s=elapsed)
            publish(EventDraft(EventType.task_cancelled, data={"reason": e.reason}))
            log.info("task cancelled", reason=e.reason)
            return TaskOutcome("cancelled", error_code="cancelled", error=e.reason, duration_s=elapsed)
        except Exception as e:  # any failure of the crew ends the task, with a reason
            code, message = describe_failure(e)
            message = printable(message)  # may quote a model's or a tool's text
            elapsed = time.perf_counter() - started
            publish(EventDraft(EventType.task_failed, data={"code": code, "error": message}))
            log.warning("task failed", code=code, error=message, exc_info=code == "crew_error")
            return TaskOutcome("failed", error_code=code, error=message, duration_s=elapsed)
        elapsed = time.perf_counter() - started
        done = {"usage": outcome.usage, "cost_usd": outcome.cost_usd, "duration_ms": round(elapsed * 1000)}
        publish(EventDraft(EventType.task_completed, data=done))
        log.info("task completed", duration_s=round(elapsed, 3), total_tokens=outcome.usage.get("total_tokens"))
        return TaskOutcome(
            "completed", result=outcome.result, output=outcome.output, usage=outcome.usage, duration_s=elapsed
        )
