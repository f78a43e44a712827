"""Running claimed tasks' crews in this process, each under a lease.

The database is the source of truth: a task is claimed (queued -> running, or a
lapsed attempt taken over) under a lease before it runs, every event is committed
before the crew goes on, and the terminal event is written together with the
terminal status. Every write names the run's attempt, so a run that lost its task
(its lease ran out and another process took over) cannot write a single event more.

While a crew runs, its lease is renewed every ``lease_s / 3``. A process that dies
stops renewing; recovery (``gateway.recovery``) then runs the task again from the
start, or ends it. A process that stops cleanly stops its crews at their next
checkpoint and hands their tasks back (the lease ends at once) instead of failing them.

The store may stop taking writes for a while (disk full, database restarting). A
running task's events are retried for ``store_write_timeout_s`` while the crew
waits; past that the crew stops at its next checkpoint, and the task ends ``failed``
(code ``store_unavailable``) at its last durable ``seq`` as soon as the store takes
the terminal event, which is retried for as long as the runner lives.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agents.catalog import Catalog
from agents.events import TERMINAL_TYPES, EventDraft, EventType
from agents.hitl import InputNeeded
from agents.run import RunCancelled
from gateway.configs import ConfigManager
from gateway.eventlog import EventLog, backoff
from gateway.execution import TaskOutcome, execute_task
from gateway.loops import poll_forever
from gateway.observe import observe_run
from gateway.settings import Settings, process_env
from gateway.store import EventInput, InputRequestRecord, LeaseLost, StoreUnavailable, TaskRecord, TaskStatus
from gateway.wakeups import Signal, SignalKind

__all__ = ["INTERRUPTED", "TaskRunner", "runner_name"]

log = structlog.get_logger("crewgate.runner")
INTERRUPTED = "the process running this task stopped"
LEASE_LOST = "this run no longer holds the task: its lease ran out and another attempt took over"


def runner_name() -> str:
    """Who holds a lease: host, process and a random part (a pid can be reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _input(draft: EventDraft) -> EventInput:
    return EventInput(type=str(draft.type), agent=draft.agent, step=draft.step, data=draft.data)


@dataclass(eq=False)
class _Run:
    """What the runner keeps about one task while its crew runs."""

    task_id: str
    attempt: int
    last_seq: int  # the newest seq known durable: this run is the task's only writer
    flag: threading.Event = field(default_factory=threading.Event)  # set: cancel at the next checkpoint
    reason: str = "cancelled on request"
    store_error: str | None = None  # set: the store would not take an event, the run stops
    unwritten: int = 0  # events the store did not take (and that are not in the log)
    lost: bool = False  # another attempt holds the task: stop, write nothing more


class TaskRunner:
    """Claims and runs tasks on a bounded thread pool; ``run`` is called by a dispatcher."""

    def __init__(self, settings: Settings, configs: ConfigManager, events: EventLog, *, threads: int) -> None:
        self.settings = settings
        self.configs = configs
        self.events = events
        self.store = events.store
        self.owner = runner_name()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="crew")
        self._runs: dict[str, _Run] = {}
        self._loops: list[asyncio.Task[Any]] = []
        self._checks: set[asyncio.Task[Any]] = set()
        self._shutting_down = False
        events.wakeups.subscribe(self._on_signals)

    @property
    def running(self) -> int:
        return len(self._runs)

    def busy(self, task_id: str) -> bool:
        return task_id in self._runs

    async def start(self) -> None:
        lease_s = self.settings.lease_s
        self._loops = [
            asyncio.create_task(poll_forever("lease renewal", lease_s / 3, self._renew), name="lease-renewal"),
            asyncio.create_task(
                poll_forever("cancel poll", self.settings.poll_interval_s, self._check_cancels), name="cancel-poll"
            ),
        ]

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop running crews at their next checkpoint and hand their tasks back. A crew
        still running after ``grace_s`` keeps its lease until it runs out (then recovery
        runs it again elsewhere)."""
        self._shutting_down = True
        for loop_task in self._loops:
            loop_task.cancel()
        deadline = time.monotonic() + grace_s
        while self._runs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _stopping(self) -> bool:
        return self._shutting_down

    # cancels: a wake-up (any process's cancel) or the poll, for the tasks running here

    def _on_signals(self, signals: Sequence[Signal]) -> None:
        for signal in signals:
            if signal.kind is SignalKind.cancel and signal.task_id in self._runs:
                self._spawn_check(self._check_cancel(signal.task_id))
            elif signal.kind is SignalKind.resync and self._runs:
                self._spawn_check(self._check_cancels())

    def _spawn_check(self, check: Any) -> None:
        job = asyncio.get_running_loop().create_task(check)
        self._checks.add(job)
        job.add_done_callback(self._checks.discard)

    async def _check_cancels(self) -> None:
        for task_id in list(self._runs):
            await self._check_cancel(task_id)

    async def _check_cancel(self, task_id: str) -> None:
        run = self._runs.get(task_id)
        if run is None or run.flag.is_set():
            return
        try:
            record = await self.store.get_task(task_id)
        except StoreUnavailable as exc:
            log.warning("reading a cancel request failed", task_id=task_id, error=str(exc))
            return
        if record is not None and record.cancel_requested:
            run.reason = record.cancel_reason or run.reason
            run.flag.set()

    async def _renew(self) -> None:
        for run in list(self._runs.values()):
            if run.lost:
                continue
            held = await self.store.renew_lease(run.task_id, run.attempt, self.owner, self.settings.lease_s)
            if not held and run.task_id in self._runs:
                run.lost = True
                log.warning("lease lost; the run stops", task_id=run.task_id, attempt=run.attempt)

    # running one task

    async def run(self, task_id: str, attempt: int = 1) -> None:
        """Claim ``attempt`` of the task and run it here to its end; returns at once when
        the claim fails (cancelled, ended, or another process holds it)."""
        if task_id in self._runs or self._shutting_down:
            return
        record = await self._claim(task_id, attempt)
        if record is None:
            return
        structlog.contextvars.bind_contextvars(task_id=task_id)
        try:
            await self._execute(record)
        finally:
            structlog.contextvars.unbind_contextvars("task_id")

    async def _claim(self, task_id: str, attempt: int) -> TaskRecord | None:
        try:
            record = await self.store.claim_task(
                task_id, owner=self.owner, lease_s=self.settings.lease_s, attempt=attempt
            )
            if record is not None and attempt > 1:  # show watchers here its task.restarted at once
                self.events.written(await self.store.events_for_task(task_id, record.last_seq - 1, 1))
        except StoreUnavailable as exc:
            log.warning("claiming a task failed; recovery offers it again", task_id=task_id, error=str(exc))
            return None
        if record is not None:
            log.info("task claimed", task_id=task_id, attempt=record.attempt, owner=self.owner)
        return record

    async def _catalog(self, record: TaskRecord) -> Catalog | None:
        """The task's config snapshot; None when it cannot be had (the task is ended, or
        handed back if the store is down while stopping)."""
        delays = backoff()
        while True:
            try:
                return await self.configs.catalog_for(record.config_version)
            except StoreUnavailable as exc:  # a passing outage is no reason to fail the task
                if self._shutting_down:
                    log.warning("task handed back: its config could not be read while stopping", error=str(exc))
                    return None
                await asyncio.sleep(next(delays))
            except Exception as e:
                message = f"config version {record.config_version} cannot be loaded: {e}"
                event = EventInput("task.failed", data={"code": "config_unavailable", "error": message})
                run = _Run(record.id, record.attempt, record.last_seq)
                await self._finish(run, TaskStatus.failed, event, error_code="config_unavailable", error=message)
                return None

    async def _execute(self, record: TaskRecord) -> None:
        catalog = await self._catalog(record)
        if catalog is None:
            return
        run = _Run(record.id, record.attempt, record.last_seq)
        if record.cancel_requested:
            run.reason = record.cancel_reason or run.reason
            run.flag.set()
        self._runs[record.id] = run
        terminal: list[EventDraft] = []
        try:
            outcome = await self._work(run, record, catalog, terminal)
        finally:
            self._runs.pop(record.id, None)
        await self._conclude(run, outcome, terminal)

    async def _conclude(self, run: _Run, outcome: TaskOutcome, terminal: list[EventDraft]) -> None:
        """Write the end of a run: its terminal event, or nothing when it lost its task or
        was handed back."""
        if run.lost:
            log.warning("run stopped: another attempt holds the task", attempt=run.attempt)
            return
        if run.store_error is not None:
            await self._finish_store_failure(run)
            return
        if self._shutting_down and outcome.error_code == "interrupted":
            await self._hand_back(run)
            return
        if outcome.paused is not None:
            await self._suspend(run, outcome.paused)
            return
        no_outcome = {"code": "internal", "error": "the run ended without an outcome"}
        final = terminal[-1] if terminal else EventDraft(EventType.task_failed, data=no_outcome)
        await self._finish(
            run,
            TaskStatus(outcome.status),
            _input(final),
            result=outcome.result,
            output=outcome.output,
            usage=outcome.usage or None,
            error_code=outcome.error_code,
            error=outcome.error,
        )

    async def _suspend(self, run: _Run, paused: InputNeeded) -> None:
        """The run pauses for a person: store its request and checkpoint, free its slot."""
        asked = paused.request
        now = datetime.now(UTC)
        request = InputRequestRecord(
            id=str(uuid.uuid4()),
            task_id=run.task_id,
            kind=str(asked.kind),
            step=asked.step,
            prompt=asked.prompt,
            output=asked.output,
            on_timeout=asked.on_timeout,
            created_at=now,
            expires_at=now + timedelta(seconds=asked.timeout_s) if asked.timeout_s else None,
        )
        delays = backoff()
        while True:
            try:
                await self.events.suspend(run.task_id, run.attempt, request, paused.checkpoint)
            except LeaseLost:
                log.warning("run paused after another attempt took over; its request is not written")
            except StoreUnavailable as exc:
                if not self._shutting_down:
                    await asyncio.sleep(next(delays))
                    continue
                log.warning("task left to its lease: its pause could not be written while stopping", error=str(exc))
            else:
                log.info("task waiting", request_id=request.id, kind=request.kind, step=request.step)
            return

    async def _hand_back(self, run: _Run) -> None:
        try:
            await self.store.release_lease(run.task_id, run.attempt)
            log.info("task handed back: this process is stopping", attempt=run.attempt)
        except StoreUnavailable as exc:  # its lease runs out by itself
            log.warning("task left to its lease: the store is unavailable while stopping", error=str(exc))

    async def _work(self, run: _Run, record: TaskRecord, catalog: Catalog, terminal: list[EventDraft]) -> TaskOutcome:
        """Run the crew on the pool; its events are appended as they come, its terminal
        event is left in ``terminal`` for the caller to write with the status."""
        loop = asyncio.get_running_loop()
        crew_timeout = catalog.crews[record.crew].timeout_s if record.crew in catalog.crews else None
        cancelled = self._stop_check(run, crew_timeout or self.settings.task_timeout_s)
        observer = observe_run(record.id, record.crew, record.attempt, catalog)

        def publish(draft: EventDraft) -> None:  # called on the crew's threads
            observer.see(draft)
            if draft.type in TERMINAL_TYPES:
                terminal.append(draft)
            elif run.store_error is not None or run.lost:
                run.unwritten += 1  # the log ends at run.last_seq; counted in the terminal event
            else:
                asyncio.run_coroutine_threadsafe(self._append(run, draft), loop).result()

        def work() -> TaskOutcome:
            return execute_task(
                record.id,
                catalog,
                record.crew,
                record.inputs,
                publish=publish,
                roots=self.settings.roots,
                env=process_env(),
                cancelled=cancelled,
                checkpoint=record.checkpoint,
            )

        outcome = TaskOutcome("failed", error_code="internal")
        try:
            outcome = await loop.run_in_executor(self._pool, contextvars.Context().run, work)
        finally:
            observer.close(outcome.status)
        return outcome

    def _stop_check(self, run: _Run, limit: float) -> Callable[[], RunCancelled | None]:
        """Why the run must stop at this checkpoint, or None; called on the crew's threads."""
        deadline = time.monotonic() + limit

        def cancelled() -> RunCancelled | None:
            if run.lost:
                return RunCancelled(LEASE_LOST, failure_code="lease_lost")
            if self._shutting_down:
                return RunCancelled(INTERRUPTED, failure_code="interrupted")
            if run.store_error is not None:
                return RunCancelled(run.store_error, failure_code="store_unavailable")
            if run.flag.is_set():
                return RunCancelled(run.reason)
            if time.monotonic() > deadline:
                return RunCancelled(f"the task ran past its time limit of {limit:g} s", failure_code="timeout")
            return None

        return cancelled

    async def _append(self, run: _Run, draft: EventDraft) -> None:
        try:
            stored = await self.events.append_retrying(
                run.task_id,
                [_input(draft)],
                after_seq=run.last_seq,
                budget_s=self.settings.store_write_timeout_s,
                stopping=self._stopping,
                attempt=run.attempt,
            )
        except LeaseLost:
            run.lost = True
            return
        except StoreUnavailable as exc:
            run.store_error = str(exc)
            run.unwritten += 1
            log.error(
                "task cannot write its events; it stops and fails once the store takes writes",
                task_id=run.task_id,
                last_seq=run.last_seq,
                error=run.store_error,
            )
            return
        run.last_seq = stored[-1].seq

    async def _finish_store_failure(self, run: _Run) -> None:
        message = (
            f"the store did not take this task's events for {self.settings.store_write_timeout_s:g} s "
            f"({run.store_error}); its log ends at seq {run.last_seq}, "
            f"{run.unwritten} later event(s) were not kept"
        )
        data = {"code": "store_unavailable", "error": message, "last_seq": run.last_seq, "unwritten": run.unwritten}
        event = EventInput("task.failed", data=data)
        await self._finish(run, TaskStatus.failed, event, error_code="store_unavailable", error=message)

    async def _finish(self, run: _Run, status: TaskStatus, event: EventInput, **fields: Any) -> None:
        """Write the terminal event with the status, retrying while the store is unavailable."""
        try:
            await self.events.finish_retrying(
                run.task_id, status, event, stopping=self._stopping, attempt=run.attempt, **fields
            )
        except LeaseLost:
            log.warning("run ended after another attempt took over; its end is not written", attempt=run.attempt)
        except StoreUnavailable as exc:  # only when stopping: the lease runs out and recovery takes over
            log.warning("task left to its lease: the store is unavailable and the runner is stopping", error=str(exc))
