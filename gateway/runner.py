"""The embedded dispatcher: a bounded pool of threads, each running one task at a time.

The database is the source of truth: a task is claimed (queued -> running) before
it runs, every event is committed before the crew goes on, and the terminal event
is written together with the terminal status. On start, tasks a crash left
``running`` end ``failed`` (code ``interrupted``) with their events kept, and
tasks left ``queued`` run.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog

from agents.events import TERMINAL_TYPES, EventDraft, EventType
from agents.run import RunCancelled
from gateway.configs import ConfigManager
from gateway.eventlog import EventLog
from gateway.execution import TaskOutcome, execute_task
from gateway.settings import Settings, process_env
from gateway.store import EventInput, Store, TaskRecord, TaskStatus

__all__ = ["Runner"]

log = structlog.get_logger("crewgate.runner")
INTERRUPTED = "the gateway stopped while this task was running"


def _input(draft: EventDraft) -> EventInput:
    return EventInput(type=str(draft.type), agent=draft.agent, step=draft.step, data=draft.data)


class Runner:
    def __init__(self, store: Store, configs: ConfigManager, settings: Settings, events: EventLog) -> None:
        self.store = store
        self.events = events
        self.configs = configs
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="crew")
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._flags: dict[str, threading.Event] = {}
        self._reasons: dict[str, str] = {}
        self._jobs: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []
        self._shutting_down = False
        self._known: set[str] = set()  # enqueued here at some point; claim_task settles races

    @property
    def running(self) -> int:
        return len(self._flags)

    async def start(self) -> None:
        if not self.settings.run_tasks:
            return  # this replica only accepts and streams
        await self.recover()
        self._loops = [
            asyncio.create_task(self._dispatch(), name="dispatch"),
            asyncio.create_task(self._watch_cancels(), name="cancel-poll"),
            asyncio.create_task(self._watch_queue(), name="queue-poll"),
        ]

    async def stop(self) -> None:
        """Stop running tasks at their next checkpoint, as ``failed``/``interrupted``.

        A task still running after the grace period is left ``running`` in the store
        and is marked interrupted by ``recover`` on the next start.
        """
        self._shutting_down = True
        for loop_task in self._loops:
            loop_task.cancel()
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

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

    async def _watch_queue(self) -> None:
        """Pick up tasks queued by other processes (replicas started with run_tasks=false)."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            for record in await self.store.tasks_with_status(TaskStatus.queued):
                self.submit(record.id)

    async def cancel(self, task_id: str, reason: str = "cancelled on request") -> TaskRecord | None:
        record = await self.events.request_cancel(task_id, reason)
        if record is not None and task_id in self._flags:
            self._reasons[task_id] = reason
            self._flags[task_id].set()
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

    async def _watch_cancels(self) -> None:
        """Cancel requests made through another process show up as a flag in the store."""
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            for task_id, flag in list(self._flags.items()):
                if flag.is_set():
                    continue
                record = await self.store.get_task(task_id)
                if record is not None and record.cancel_requested:
                    self._reasons.setdefault(task_id, "cancelled on request")
                    flag.set()

    async def _run(self, task_id: str) -> None:
        record = await self.store.claim_task(task_id)
        if record is None:
            self._known.discard(task_id)
            return  # cancelled while queued, or claimed elsewhere
        loop = asyncio.get_running_loop()
        structlog.contextvars.bind_contextvars(task_id=task_id)
        try:
            catalog = await self.configs.catalog_for(record.config_version)
        except Exception as e:
            message = f"config version {record.config_version} cannot be loaded: {e}"
            await self.events.finish(
                task_id,
                TaskStatus.failed,
                EventInput("task.failed", data={"code": "config_unavailable", "error": message}),
                error_code="config_unavailable",
                error=message,
            )
            return
        crew_timeout = catalog.crews[record.crew].timeout_s if record.crew in catalog.crews else None
        limit = crew_timeout or self.settings.task_timeout_s
        deadline = time.monotonic() + limit
        flag = threading.Event()
        if record.cancel_requested:
            flag.set()
        self._flags[task_id] = flag
        terminal: list[EventDraft] = []

        def publish(draft: EventDraft) -> None:  # called on the crew's threads
            if draft.type in TERMINAL_TYPES:
                terminal.append(draft)
                return
            asyncio.run_coroutine_threadsafe(self._append(task_id, draft), loop).result()

        def cancelled() -> RunCancelled | None:
            if self._shutting_down:
                return RunCancelled(INTERRUPTED, failure_code="interrupted")
            if flag.is_set():
                return RunCancelled(self._reasons.get(task_id, "cancelled on request"))
            if time.monotonic() > deadline:
                return RunCancelled(f"the task ran past its time limit of {limit:g} s", failure_code="timeout")
            return None

        def work() -> TaskOutcome:
            return execute_task(
                task_id,
                catalog,
                record.crew,
                record.inputs,
                publish=publish,
                roots=self.settings.roots,
                env=process_env(),
                cancelled=cancelled,
            )

        try:
            outcome = await loop.run_in_executor(self._pool, contextvars.Context().run, work)
        finally:
            self._flags.pop(task_id, None)
            self._reasons.pop(task_id, None)
            self._known.discard(task_id)
        final = (
            terminal[-1]
            if terminal
            else EventDraft(
                EventType.task_failed, data={"code": "internal", "error": "the run ended without an outcome"}
            )
        )
        await self.events.finish(
            task_id,
            TaskStatus(outcome.status),
            _input(final),
            result=outcome.result,
            usage=outcome.usage or None,
            error_code=outcome.error_code,
            error=outcome.error,
        )
        structlog.contextvars.unbind_contextvars("task_id")

    async def _append(self, task_id: str, draft: EventDraft) -> None:
        await self.events.append(task_id, [_input(draft)])
