"""The Celery dispatcher: a message per task attempt on a broker; ``crewgate worker``
processes run the crews (``gateway.worker``), and this process runs none.

A message says only "run attempt N of task T". The store decides whether it runs: a
worker claims the attempt under a lease, so a message delivered twice (Redis after a
visibility timeout, RabbitMQ after a lost connection, a recovery sweep racing a
redelivery) starts the attempt once, and a stale one is acknowledged and dropped.
Nothing lives only in the broker: a task still queued ``redispatch_s`` after it was
sent (or whose send failed) is sent again by the sweep here, so a broker that lost
its messages (Redis restarted without persistence) loses no task.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import structlog

from gateway.configs import ConfigManager
from gateway.eventlog import EventLog
from gateway.loops import poll_forever
from gateway.recovery import Recovery
from gateway.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["RUN_TASK", "CeleryDispatcher", "celery_for", "queue_name"]

OFFERS_KEPT = 10_000  # restart offers remembered per process before old ones are forgotten

log = structlog.get_logger("crewgate.dispatch")
RUN_TASK = "crewgate.run"  # the Celery task name workers register


def queue_name(settings: Settings) -> str:
    return f"{settings.redis_prefix}.tasks"


def celery_for(settings: Settings) -> Celery:
    """The Celery app both sides use: gateways send with it, workers consume with it."""
    from celery import Celery
    from kombu import Queue

    if not settings.broker:
        raise ValueError("CREWGATE_DISPATCHER=celery needs CREWGATE_BROKER_URL (or CREWGATE_REDIS_URL)")
    app = Celery("crewgate", broker=settings.broker, set_as_current=False)
    queue = queue_name(settings)
    app.conf.update(
        task_queues=[Queue(queue, routing_key=queue)],
        task_default_queue=queue,
        task_default_routing_key=queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # results live in the store
        task_acks_late=True,  # a message is acknowledged when its crew has ended, not when it starts
        task_reject_on_worker_lost=True,  # a pool process that dies gives its message back
        worker_prefetch_multiplier=1,  # a worker holds no message it cannot start now
        # a broker blip must not stop crews that are running: they write to the store, not the
        # broker (Celery 6 turns this on by default; its ack is lost, the claim drops a redelivery)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        # Redis: a message unacknowledged this long is delivered again. Leases make a second
        # delivery harmless (its claim fails), and recovery re-offers a dead worker's task
        # after lease_s, so this is only a backstop: keep it above the longest task.
        broker_transport_options={
            "visibility_timeout": max(3600, int(settings.task_timeout_s * 2)),
            "global_keyprefix": f"{settings.redis_prefix}:",
        },
    )
    return app


class CeleryDispatcher:
    """Sends each attempt as a message; runs recovery and re-sends what a failed send left."""

    def __init__(self, settings: Settings, configs: ConfigManager, events: EventLog) -> None:
        self.settings = settings
        self.store = events.store
        self.app = celery_for(settings)
        self.recovery = Recovery(configs, events, self._offer_restart, self.dispatch)
        self._loops: list[asyncio.Task[Any]] = []
        self._offered: dict[tuple[str, int], float] = {}  # restart offers sent from here, when
        self.sent = 0
        self.send_failures = 0

    @property
    def running(self) -> int:
        return 0  # crews run on workers

    async def start(self) -> None:
        sweep_s = min(self.settings.lease_s / 2, 5.0)
        resend_s = min(self.settings.redispatch_s / 2, 10.0)
        self._loops = [
            asyncio.create_task(poll_forever("recovery", sweep_s, self.recovery.sweep), name="recovery"),
            asyncio.create_task(poll_forever("resend", resend_s, self._resend), name="resend"),
        ]

    async def stop(self) -> None:
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        await asyncio.to_thread(self.app.close)

    async def dispatch(self, task_id: str, attempt: int = 1) -> None:
        if await self._send_logged(task_id, attempt):
            await self.store.mark_dispatched(task_id)  # the resend sweep leaves it alone for a while

    async def _send_logged(self, task_id: str, attempt: int) -> bool:
        try:
            await asyncio.to_thread(self._send, task_id, attempt)
        except Exception as exc:  # the broker is down: the resend sweep or recovery tries again
            self.send_failures += 1
            log.warning("the broker did not take a task; it is sent again later", task_id=task_id, error=str(exc))
            return False
        self.sent += 1
        return True

    async def _offer_restart(self, task_id: str, attempt: int) -> None:
        """Recovery's offer of a lapsed task's next attempt, sent once per ``redispatch_s``."""
        if self._offered_lately(task_id, attempt):
            return
        if await self._send_logged(task_id, attempt):
            log.info("lease ran out; the task's next attempt is sent", task_id=task_id, attempt=attempt)
            self._offered[(task_id, attempt)] = time.monotonic()

    def _offered_lately(self, task_id: str, attempt: int) -> bool:
        """True when this process sent that restart less than ``redispatch_s`` ago.

        Recovery offers a lapsed task on every sweep until a worker claims it, and a
        restart waits in the queue behind the backlog: without this, each sweep sent one
        more message for it (dozens a minute per process). A lost restart message is
        sent again after ``redispatch_s``, as a lost first one is by the resend sweep."""
        now = time.monotonic()
        if len(self._offered) > OFFERS_KEPT:
            self._offered = {k: t for k, t in self._offered.items() if now - t < self.settings.redispatch_s}
        sent = self._offered.get((task_id, attempt))
        return sent is not None and now - sent < self.settings.redispatch_s

    def _send(self, task_id: str, attempt: int) -> None:
        self.app.send_task(RUN_TASK, args=[task_id, attempt], retry=True)

    async def _resend(self) -> None:
        """Send the queued tasks whose message never left (the broker was down), and those sent
        ``redispatch_s`` ago and still queued while the broker's queue is empty: their message
        was lost (behind a backlog they are only waiting)."""
        stale = await self.store.undispatched(self.settings.redispatch_s)
        unsent = [record for record in stale if record.dispatched_at is None]
        if len(unsent) < len(stale) and not await asyncio.to_thread(self._queue_depth):
            unsent = stale
        for record in unsent:
            log.info("sending a queued task again", task_id=record.id, dispatched_at=str(record.dispatched_at))
            await self.dispatch(record.id, max(record.attempt, 1))

    def _queue_depth(self) -> int:
        """Messages waiting in the broker's queue (not those workers hold)."""
        queue = queue_name(self.settings)
        with self.app.connection_for_write() as conn:
            channel: Any = conn.default_channel
            if hasattr(channel, "_size"):  # kombu's virtual transports (Redis): the list's length
                return int(channel._size(queue))
            return int(channel.queue_declare(queue=queue, passive=True).message_count)  # AMQP

    async def check(self) -> None:
        """Raise if the broker does not answer within a few seconds."""
        await asyncio.wait_for(asyncio.to_thread(self._ping), timeout=5)

    def _ping(self) -> None:
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)

    def status(self) -> dict[str, object]:
        return {
            "kind": "celery",
            "queue": queue_name(self.settings),
            "sent": self.sent,
            "send_failures": self.send_failures,
        }
