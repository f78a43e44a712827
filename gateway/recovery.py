"""Recovery: what to do with a task whose runner stopped renewing its lease.

Any process that can hand out work runs ``Recovery.sweep`` now and then. A running
task whose lease ran out is offered again as its next attempt (``task.restarted``,
from the start) while the crew's ``max_attempts`` allows; after that it ends
``failed`` with code ``interrupted``. Offers and ends are conditional in the store
(on the attempt and the lapsed lease), so sweepers in many processes at once still
start each attempt once, and never touch a task whose runner is alive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from gateway.configs import ConfigManager
from gateway.eventlog import EventLog
from gateway.store import EventInput, InputRequestRecord, TaskRecord, TaskStatus

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Recovery"]

log = structlog.get_logger("crewgate.recovery")
DEFAULT_MAX_ATTEMPTS = 2  # a crew's max_attempts when its config cannot be read


Offer = Callable[[str, int], Awaitable[None]]


class Recovery:
    def __init__(self, configs: ConfigManager, events: EventLog, offer: Offer, resume: Offer | None = None) -> None:
        self.configs = configs
        self.events = events
        self.store = events.store
        self.offer = offer  # hands a lapsed task's next attempt to a runner
        self.resume = resume or offer  # hands an answered task (a timeout approved it) to a runner

    async def sweep(self) -> int:
        """Offer or end every task whose lease ran out, and act on input requests whose time
        ran out; how many tasks were found."""
        expired = await self.store.expired_requests()
        for request in expired:
            await self._timed_out(request)
        lapsed = await self.store.expired_leases()
        for record in lapsed:
            allowed = await self._max_attempts(record)
            if record.attempt < allowed:
                log.debug("lease ran out; offering the task again", task_id=record.id, attempt=record.attempt + 1)
                await self.offer(record.id, record.attempt + 1)
            else:
                await self._give_up(record, allowed)
        return len(lapsed) + len(expired)

    async def _timed_out(self, request: InputRequestRecord) -> None:
        """A review nobody answered in time is approved (``on_timeout: approve``), anything
        else ends its task ``failed`` with code ``input_timeout``."""
        if request.kind == "review" and request.on_timeout == "approve":
            await self._approve(request)
            return
        when = f"{request.expires_at:%Y-%m-%dT%H:%M:%SZ}"
        message = f"nobody answered the {request.kind} of step '{request.step}' before {when}"
        data = {"code": "input_timeout", "error": message, "request_id": request.id}
        event = EventInput("task.failed", data=data)
        ended = await self.events.finish(
            request.task_id, TaskStatus.failed, event, error_code="input_timeout", error=message
        )
        if ended is not None:
            log.warning("task failed: its input request timed out", task_id=request.task_id, request_id=request.id)

    async def _approve(self, request: InputRequestRecord) -> None:
        from agents.hitl import Answer, InputKind, InputRequest, resume_checkpoint

        record = await self.store.get_task(request.task_id)
        if record is None:
            return
        asked = InputRequest(InputKind(request.kind), request.step, request.prompt, request.output, None, "approve")
        try:
            checkpoint = resume_checkpoint(record.checkpoint or {}, asked, Answer(approve=True))
        except ValueError as e:  # a checkpoint that is not ours: the task cannot go on
            message = f"the task cannot go on from its checkpoint: {e}"
            event = EventInput("task.failed", data={"code": "bad_checkpoint", "error": message})
            await self.events.finish(record.id, TaskStatus.failed, event, error_code="bad_checkpoint", error=message)
            return
        stored = await self.events.answer(record.id, request.id, {"approve": True}, checkpoint, by="timeout")
        if stored is not None:
            log.info("review approved by its timeout", task_id=record.id, request_id=request.id)
            await self.resume(record.id, max(record.attempt, 1))

    async def _max_attempts(self, record: TaskRecord) -> int:
        try:
            catalog = await self.configs.catalog_for(record.config_version)
        except Exception as exc:  # the run itself reports an unreadable config; here, the default
            log.warning("config of a lapsed task unreadable", task_id=record.id, error=str(exc))
            return DEFAULT_MAX_ATTEMPTS
        spec = catalog.crews.get(record.crew)
        return spec.max_attempts if spec is not None else DEFAULT_MAX_ATTEMPTS

    async def _give_up(self, record: TaskRecord, allowed: int) -> None:
        message = (
            f"the process running attempt {record.attempt} stopped without ending the task, and the crew "
            f"allows {allowed} attempt{'s' if allowed != 1 else ''} (max_attempts)"
        )
        event = EventInput("task.failed", data={"code": "interrupted", "error": message, "attempt": record.attempt})
        ended = await self.store.end_expired(record.id, record.attempt, event, error_code="interrupted", error=message)
        if ended is not None:
            self.events.written([ended])
            log.warning("task interrupted: no attempts left", task_id=record.id, attempt=record.attempt)
