"""``crewgate worker``: a Celery worker that runs crews, one per pool process.

Each pool process keeps one ``WorkerRuntime``: an event loop on a thread of its own,
holding the store, the wake-ups (to hear cancels at once), a ``TaskRunner`` with one
crew thread, and the Celery dispatcher's recovery sweeps. The Celery task only says
"run attempt N of task T"; the runtime claims that attempt under a lease and runs it,
so a message the broker delivers twice runs once, and a worker that dies mid-task has
its task run again elsewhere when its lease runs out (``gateway.recovery``).

Settings that matter here (see the README): ``acks_late`` (a message is acknowledged
when its crew ended), ``worker_prefetch_multiplier=1`` and ``reject_on_worker_lost``.
SIGTERM is Celery's warm shutdown: the worker takes no new message and finishes the
crews it runs; a worker killed before they finish leaves their leases to run out.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import structlog

from gateway import metrics
from gateway.configs import ConfigManager
from gateway.dispatch.celery import RUN_TASK, CeleryDispatcher, celery_for
from gateway.eventlog import EventLog
from gateway.runner import TaskRunner
from gateway.settings import Settings, get_settings
from gateway.store import open_store
from gateway.tracing import setup_tracing, shutdown_tracing
from gateway.wakeups import open_wakeups
from gateway.webhooks.delivery import WebhookDeliverer

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["WorkerRuntime", "make_worker_app", "start_worker"]

log = structlog.get_logger("crewgate.worker")
T = TypeVar("T")
TASK_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MAX_ATTEMPT = 100
CHILD_START_S = 120.0  # a pool process imports CrewAI before it says it is up


class WorkerRuntime:
    """Everything a pool process needs to run tasks, on an event loop of its own."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.model_copy(update={"reload": False})
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="crewgate-loop", daemon=True)
        self._thread.start()
        self._call(self._open())

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def _open(self) -> None:
        settings = self.settings
        metrics.configure(settings.metrics)
        setup_tracing(settings.otel_endpoint, service="crewgate-worker")
        self.store = open_store(settings.database_url, pool_size=2)
        await self.store.migrate()  # a no-op when the migration step ran; safe when it did not
        self.configs = ConfigManager.from_settings(settings, self.store)  # snapshots come from the store
        self.wakeups = open_wakeups(settings)
        await self.wakeups.start()
        self.events = EventLog(self.store, wakeups=self.wakeups)
        self.runner = TaskRunner(settings, self.configs, self.events, threads=1)
        await self.runner.start()
        self.dispatcher = CeleryDispatcher(settings, self.configs, self.events)  # recovery and resends
        await self.dispatcher.start()
        self.webhooks: asyncio.Task[None] | None = None
        if settings.webhook_deliver:  # deliverers anywhere share the work: a lease per task webhook
            deliverer = WebhookDeliverer(settings, self.store)
            self.wakeups.subscribe(deliverer.on_signals)
            self.webhooks = asyncio.create_task(deliverer.run(), name="webhooks")
        log.info("worker process ready", owner=self.runner.owner, wakeups=self.wakeups.status()["kind"])

    def run(self, task_id: str, attempt: int) -> None:
        self._call(self.runner.run(task_id, attempt))

    def close(self) -> None:
        try:
            self._call(self._close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)

    async def _close(self) -> None:
        if self.webhooks is not None:
            self.webhooks.cancel()
            await asyncio.gather(self.webhooks, return_exceptions=True)
        await self.runner.stop()
        shutdown_tracing()
        metrics.mark_dead()
        await self.dispatcher.stop()
        await self.wakeups.close()
        await self.store.close()


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def runtime() -> WorkerRuntime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = WorkerRuntime(get_settings())
        return _runtime


def run_task(task_id: object, attempt: object = 1) -> None:
    """The Celery task. Its arguments come off the broker: checked, never trusted."""
    if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
        log.warning("message ignored: not a task id", task_id=repr(task_id)[:80])
        return
    if not isinstance(attempt, int) or isinstance(attempt, bool) or not 1 <= attempt <= MAX_ATTEMPT:
        log.warning("message ignored: not an attempt number", task_id=task_id, attempt=repr(attempt)[:40])
        return
    runtime().run(task_id, attempt)


def _process_init(**_: Any) -> None:
    """In each new pool process: connect, and import CrewAI before the first task needs it."""
    import crewai  # noqa: F401 - CrewAI's slow import (seconds), paid once per process before it takes work

    import agents.run  # noqa: F401 - imports CrewAI lazily: on its own it would leave the cost to the first task

    runtime()


def _process_shutdown(**_: Any) -> None:
    global _runtime
    with _runtime_lock:
        current, _runtime = _runtime, None
    if current is not None:
        current.close()


def make_worker_app(settings: Settings) -> Celery:
    """The Celery app with the task registered and the pool-process hooks connected."""
    from celery.signals import worker_process_init, worker_process_shutdown

    app = celery_for(settings)
    app.conf.worker_proc_alive_timeout = CHILD_START_S
    app.task(name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)(run_task)
    worker_process_init.connect(_process_init, weak=False)
    worker_process_shutdown.connect(_process_shutdown, weak=False)
    return app


def start_worker(settings: Settings, concurrency: int, *, name: str | None = None, loglevel: str = "INFO") -> int:
    """Run a worker until it is stopped; its exit code. ``name``: the Celery node name,
    ``celery@<host>`` by default (what ``celery inspect ping --destination`` names)."""
    import socket

    app = make_worker_app(settings)
    worker = app.Worker(
        concurrency=concurrency,
        pool="prefork",
        loglevel=loglevel,
        hostname=name or f"celery@{socket.gethostname()}",
        without_mingle=True,
        without_gossip=True,
        without_heartbeat=True,
    )
    worker.start()
    return int(getattr(worker, "exitcode", 0) or 0)


def __getattr__(name: str) -> Any:
    """``gateway.worker:celery_app`` for Celery's own commands (``celery --app … inspect ping``)."""
    if name == "celery_app":
        return make_worker_app(get_settings())
    raise AttributeError(name)
