"""The embedded dispatcher: a bounded pool of threads, each running one task at a time.

The database is the source of truth: a task is claimed (queued -> running) before
it runs, every event is committed before the crew goes on, and the terminal event
is written together with the terminal status. On start, tasks a crash left
``running`` end ``failed`` (code ``interrupted``) with their events kept, and
tasks left ``queued`` run.

The store may stop taking writes for a while (disk full, database restarting). The
polls that find work written elsewhere log the failure, back off and go on. A running
task's events are retried for ``store_write_timeout_s`` while the crew waits; past
that the crew stops at its next checkpoint, and the task ends ``failed`` (code
``store_unavailable``) at its last durable ``seq`` as soon as the store takes the
terminal event, which is retried for as long as the runner lives.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog

from agents.catalog import Catalog
from agents.events import TERMINAL_TYPES, EventDraft, EventType
from agents.run import RunCancelled
from gateway.configs import ConfigManager
from gateway.eventlog import EventLog, backoff
from gateway.execution import TaskOutcome, execute_task
from gateway.settings import Settings, process_env
from gateway.store import EventInput, Store, StoreUnavailable, TaskRecord, TaskStatus

__all__ = ["Runner"]

log = structlog.get_logger("crewgate.runner")
INTERRUPTED = "the gateway stopped while this task was running"
POLL_BACKOFF_MAX_S = 10.0  # the longest wait between failed polls of the store


def _input(draft: EventDraft) -> EventInput:
    return EventInput(type=str(draft.type), agent=draft.agent, step=draft.step, data=draft.data)


@dataclass(eq=False)
class _Run:
    """What the runner keeps about one task while its crew runs."""

    task_id: str
    last_seq: int  # the newest seq known durable: this runner is the task's only writer
    flag: threading.Event = field(default_factory=threading.Event)  # set: cancel at the next checkpoint
    reason: str = "cancelled on request"
    store_error: str | None = None  # set: the store would not take an event, the run stops
    unwritten: int = 0  # events the store did not take (and that are not in the log)


class Runner:
    def __init__(self, store: Store, configs: ConfigManager, settings: Settings, events: EventLog) -> None:
        self.store = store
        self.events = events
        self.configs = configs
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="crew")
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._runs: dict[str, _Run] = {}
        self._jobs: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._shutting_down = False
        self._known: set[str] = set()  # enqueued here at some point; claim_task settles races

    @property
    def running(self) -> int:
        return len(self._runs)

    async def start(self) -> None:
        if not self.settings.run_tasks:
            return  # this replica only accepts and streams
        await self.recover()
        self._loops = [
            asyncio.create_task(self._dispatch(), name="dispatch"),
            asyncio.create_task(self._poll("cancel poll", self._check_cancels), name="cancel-poll"),
            asyncio.create_task(self._poll("queue poll", self._check_queue), name="queue-poll"),
        ]

    async def stop(self) -> None:
        """Stop running tasks at their next checkpoint, as ``failed``/``interrupted``.

        A task still running after the grace period (or whose end the store would not
        take) is left ``running`` in the store and is marked interrupted by ``recover``
        on the next start.
        """
        self._shutting_down = True
        for loop_task in self._loops:
            loop_task.cancel()
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _stopping(self) -> bool:
        return self._shutting_down

    async def recover(self) -> None:
        for record in await self.store.tasks_with_status(TaskStatus.running):
            event = EventInput("task.failed", data={"code": "interrupted", "error": INTERRUPTED})
            await self.events.finish(record.id, TaskStatus.failed, event, error_code="interrupted", error=INTERRUPTED)
            log.warning("task interrupted by a restart", task_id=record.id)
        queued = await self.store.tasks_with_status(TaskStatus.queued)
        for record in queued:
            self.submit(record.id)
        if queued:
            log.info("requeued tasks after start", count=len(queued))

    def submit(self, task_id: str) -> None:
        if self.settings.run_tasks and task_id not in self._known:
            self._known.add(task_id)
            self._queue.put_nowait(task_id)

    async def _poll(self, name: str, check: Callable[[], Awaitable[None]]) -> None:
        """Run ``check`` every poll interval for as long as the runner runs. A failure (the
        store unavailable) is logged and retried with backoff; it never ends the loop."""
        interval = self.settings.poll_interval_s
        cap = max(interval, POLL_BACKOFF_MAX_S)
        delay, failures, delays = interval, 0, backoff(min(2 * interval, cap), cap)
        while True:
            await asyncio.sleep(delay)
            try:
                await check()
            except Exception as exc:
                failures += 1
                delay = next(delays)
                log.warning("polling the store failed", loop=name, failures=failures, retry_in_s=delay, error=str(exc))
                continue
            if failures:
                log.info("polling the store works again", loop=name, failures=failures)
            delay, failures, delays = interval, 0, backoff(min(2 * interval, cap), cap)

    async def _check_queue(self) -> None:
        """Pick up tasks queued by other processes (replicas started with run_tasks=false)."""
        for record in await self.store.tasks_with_status(TaskStatus.queued):
            self.submit(record.id)

    async def _check_cancels(self) -> None:
        """Cancel requests made through another process show up as a flag in the store."""
        for run in list(self._runs.values()):
            if run.flag.is_set():
                continue
            record = await self.store.get_task(run.task_id)
            if record is not None and record.cancel_requested:
                run.flag.set()

    async def cancel(self, task_id: str, reason: str = "cancelled on request") -> TaskRecord | None:
        record = await self.events.request_cancel(task_id, reason)
        run = self._runs.get(task_id)
        if record is not None and run is not None:
            run.reason = reason
            run.flag.set()
        return record

    async def _dispatch(self) -> None:
        while True:
            task_id = await self._queue.get()
            await self._slots.acquire()
            job = asyncio.create_task(self._run(task_id), name=f"task-{task_id}")
            self._jobs.add(job)
            job.add_done_callback(self._done)

    def _done(self, job: asyncio.Task[Any]) -> None:
        self._jobs.discard(job)
        self._slots.release()
        if not job.cancelled() and job.exception() is not None:
            log.error("runner job crashed", exc_info=job.exception())

    async def _run(self, task_id: str) -> None:
        try:
            record = await self.store.claim_task(task_id)
        except Exception as exc:
            self._known.discard(task_id)  # still queued: the queue poll offers it again
            log.warning("claiming a task failed; it stays queued", task_id=task_id, error=str(exc))
            return
        if record is None:
            self._known.discard(task_id)
            return  # cancelled while queued, or claimed elsewhere
        structlog.contextvars.bind_contextvars(task_id=task_id)
        try:
            await self._execute(record)
        finally:
            self._known.discard(task_id)
            structlog.contextvars.unbind_contextvars("task_id")

    async def _catalog(self, record: TaskRecord) -> Catalog | None:
        """The task's config snapshot; None when it cannot be had (the task is ended, or
        left running for the next start's recovery if the store is down at shutdown)."""
        delays = backoff()
        while True:
            try:
                return await self.configs.catalog_for(record.config_version)
            except StoreUnavailable as exc:  # a passing outage is no reason to fail the task
                if self._shutting_down:
                    log.warning("task left running: its config could not be read while stopping", error=str(exc))
                    return None
                await asyncio.sleep(next(delays))
            except Exception as e:
                message = f"config version {record.config_version} cannot be loaded: {e}"
                event = EventInput("task.failed", data={"code": "config_unavailable", "error": message})
                await self._finish(record.id, TaskStatus.failed, event, error_code="config_unavailable", error=message)
                return None

    async def _execute(self, record: TaskRecord) -> None:
        catalog = await self._catalog(record)
        if catalog is None:
            return
        run = _Run(record.id, record.last_seq)
        if record.cancel_requested:
            run.flag.set()
        self._runs[record.id] = run
        terminal: list[EventDraft] = []
        try:
            outcome = await self._work(run, record, catalog, terminal)
        finally:
            self._runs.pop(record.id, None)
        if run.store_error is not None:
            await self._finish_store_failure(run)
            return
        no_outcome = {"code": "internal", "error": "the run ended without an outcome"}
        final = terminal[-1] if terminal else EventDraft(EventType.task_failed, data=no_outcome)
        await self._finish(
            record.id,
            TaskStatus(outcome.status),
            _input(final),
            result=outcome.result,
            output=outcome.output,
            usage=outcome.usage or None,
            error_code=outcome.error_code,
            error=outcome.error,
        )

    async def _work(self, run: _Run, record: TaskRecord, catalog: Catalog, terminal: list[EventDraft]) -> TaskOutcome:
        """Run the crew on the pool; its events are appended as they come, its terminal
        event is left in ``terminal`` for the caller to write with the status."""
        loop = asyncio.get_running_loop()
        crew_timeout = catalog.crews[record.crew].timeout_s if record.crew in catalog.crews else None
        cancelled = self._stop_check(run, crew_timeout or self.settings.task_timeout_s)

        def publish(draft: EventDraft) -> None:  # called on the crew's threads
            if draft.type in TERMINAL_TYPES:
                terminal.append(draft)
            elif run.store_error is not None:
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
            )

        return await loop.run_in_executor(self._pool, contextvars.Context().run, work)

    def _stop_check(self, run: _Run, limit: float) -> Callable[[], RunCancelled | None]:
        """Why the run must stop at this checkpoint, or None; called on the crew's threads."""
        deadline = time.monotonic() + limit

        def cancelled() -> RunCancelled | None:
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
            )
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
        await self._finish(run.task_id, TaskStatus.failed, event, error_code="store_unavailable", error=message)

    async def _finish(self, task_id: str, status: TaskStatus, event: EventInput, **fields: Any) -> None:
        """Write the terminal event with the status, retrying while the store is unavailable."""
        try:
            await self.events.finish_retrying(task_id, status, event, stopping=self._stopping, **fields)
        except StoreUnavailable as exc:  # only when stopping: the next start's recover ends it
            log.warning("task left running: the store is unavailable and the runner is stopping", error=str(exc))
