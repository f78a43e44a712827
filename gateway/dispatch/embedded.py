"""The embedded dispatcher: crews run on a bounded thread pool inside the gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from gateway.configs import ConfigManager
from gateway.eventlog import EventLog
from gateway.loops import poll_forever
from gateway.recovery import Recovery
from gateway.runner import TaskRunner
from gateway.settings import Settings
from gateway.store import StoreUnavailable, TaskStatus

__all__ = ["EmbeddedDispatcher"]

log = structlog.get_logger("crewgate.dispatch")


class EmbeddedDispatcher:
    """A queue in front of a ``TaskRunner`` with ``max_concurrency`` slots.

    Tasks queued through another process on the same database (a replica with
    ``run_tasks=false``) are found by the queue poll; lapsed leases by recovery. With
    ``run_tasks=false`` this process runs nothing and dispatches nothing.
    """

    def __init__(self, settings: Settings, configs: ConfigManager, events: EventLog) -> None:
        self.settings = settings
        self.store = events.store
        self.runner = TaskRunner(settings, configs, events, threads=settings.max_concurrency)
        self.recovery = Recovery(configs, events, self.dispatch)
        self._queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        self._known: set[tuple[str, int]] = set()  # offered here and not yet done; claims settle races
        self._jobs: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[Any]] = []

    @property
    def running(self) -> int:
        return self.runner.running

    async def start(self) -> None:
        if not self.settings.run_tasks:
            return  # this replica only accepts and streams
        await self.runner.start()
        for check in (self.recovery.sweep, self._check_queue):
            try:
                await check()
            except StoreUnavailable as exc:  # the polls below try again
                log.warning("looking for work at start failed", error=str(exc))
        sweep_s = min(self.settings.lease_s / 2, 5.0)
        self._loops = [
            asyncio.create_task(self._dispatch_loop(), name="dispatch"),
            asyncio.create_task(poll_forever("queue poll", self.settings.poll_interval_s, self._check_queue)),
            asyncio.create_task(poll_forever("recovery", sweep_s, self.recovery.sweep), name="recovery"),
        ]

    async def stop(self) -> None:
        for loop_task in self._loops:
            loop_task.cancel()
        await self.runner.stop()
        if self._jobs:
            await asyncio.wait(self._jobs, timeout=5)

    async def dispatch(self, task_id: str, attempt: int = 1) -> None:
        if self.settings.run_tasks and (task_id, attempt) not in self._known:
            self._known.add((task_id, attempt))
            self._queue.put_nowait((task_id, attempt))

    async def check(self) -> None:
        return None

    def status(self) -> dict[str, object]:
        return {
            "kind": "embedded",
            "runs_tasks": self.settings.run_tasks,
            "running": self.running,
            "max_concurrency": self.settings.max_concurrency,
        }

    async def _check_queue(self) -> None:
        """Pick up tasks queued by other processes (replicas started with run_tasks=false)."""
        for record in await self.store.tasks_with_status(TaskStatus.queued):
            await self.dispatch(record.id, max(record.attempt, 1))  # an answered task goes on with its attempt

    async def _dispatch_loop(self) -> None:
        while True:
            task_id, attempt = await self._queue.get()
            await self._slots.acquire()
            job = asyncio.create_task(self._run(task_id, attempt), name=f"task-{task_id}")
            self._jobs.add(job)
            job.add_done_callback(self._done)

    async def _run(self, task_id: str, attempt: int) -> None:
        try:
            await self.runner.run(task_id, attempt)
        finally:
            self._known.discard((task_id, attempt))

    def _done(self, job: asyncio.Task[Any]) -> None:
        self._jobs.discard(job)
        self._slots.release()
        if not job.cancelled() and job.exception() is not None:
            log.error("runner job crashed", exc_info=job.exception())
