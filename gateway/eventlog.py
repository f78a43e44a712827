"""Writing to a task's event log from this process: store, tail, heads, wake-up, in one place.

Everything that appends events goes through here, so the in-process tail, the
watched heads and the watchers' wake-up can never be skipped by one writer and not
another.

A runner writes through ``append_retrying`` and ``finish_retrying``: while the store
cannot take writes (disk full, database restarting) they retry with backoff, so a
short outage only pauses a task, and a task's terminal event is never given up on
while the runner lives. Nothing is added to the path of a write that succeeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import structlog

from gateway import metrics
from gateway.notify import TERMINAL, LogHeads
from gateway.store import (
    UNSTORABLE,
    EventInput,
    InputRequestRecord,
    Store,
    StoredEvent,
    StoreUnavailable,
    TaskRecord,
    TaskStatus,
    storable,
)
from gateway.wakeups import Signal, SignalKind, Wakeups
from gateway.wakeups.local import LocalWakeups

__all__ = ["UNSTORABLE", "EventLog", "EventTail", "backoff", "storable"]

log = structlog.get_logger("crewgate.eventlog")
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 1.0
_OPEN = (TaskStatus.queued, TaskStatus.waiting)  # a cancel ends these at once


def backoff(first: float = RETRY_FIRST_S, most: float = RETRY_MAX_S) -> Iterator[float]:
    """Delays between retries: doubling from ``first``, then ``most`` for ever."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, most)


def _storable_event(event: EventInput) -> EventInput:
    return dataclasses.replace(
        event,
        type=storable(event.type),
        agent=storable(event.agent),
        step=storable(event.step),
        data=storable(event.data),
    )


class EventTail:
    """The most recent events of recently active tasks, as appended by this process.

    Watchers woken by a local append read from here instead of the database. The tail
    answers only when it holds the next seq contiguously, so it never hides a gap:
    anything it cannot prove complete (events written by another process, evicted
    tasks, a watcher far behind) is read from the log.
    """

    def __init__(self, per_task: int = 2048, tasks: int = 1024, recent: int = 4096) -> None:
        self.per_task = per_task
        self.tasks = tasks
        self._tails: OrderedDict[str, deque[StoredEvent]] = OrderedDict()
        self._recent: deque[StoredEvent] = deque(maxlen=recent)  # all tasks, contiguous ids

    def add(self, events: list[StoredEvent]) -> None:
        for event in events:
            if self._recent and event.id != self._recent[-1].id + 1:
                self._recent.clear()  # an id written elsewhere (or out of order): start over
            self._recent.append(event)
            tail = self._tails.get(event.task_id)
            if tail is None:
                tail = self._tails[event.task_id] = deque(maxlen=self.per_task)
                while len(self._tails) > self.tasks:
                    self._tails.popitem(last=False)
            elif tail and event.seq != tail[-1].seq + 1:
                tail.clear()  # a gap (another writer): start over from here
            tail.append(event)
            self._tails.move_to_end(event.task_id)

    def after(self, task_id: str, seq: int) -> list[StoredEvent] | None:
        """Events with seq > ``seq`` if the tail can vouch for them, else None."""
        tail = self._tails.get(task_id)
        if not tail or tail[0].seq > seq + 1:
            return None
        if tail[-1].seq <= seq:
            return []
        return _newest(tail, tail[-1].seq - seq)  # seqs in a tail are contiguous

    def after_id(self, event_id: int) -> list[StoredEvent] | None:
        """Every task's events with id > ``event_id`` if the tail can vouch for them, else None."""
        recent = self._recent
        if not recent or recent[0].id > event_id + 1:
            return None
        return _newest(recent, recent[-1].id - event_id)  # ids in it are contiguous


def _newest(items: deque[StoredEvent], count: int) -> list[StoredEvent]:
    """The last ``count`` items, oldest first; watchers want a tail's newest few, so walk
    in from the right rather than the left."""
    wanted = list(islice(reversed(items), max(count, 0)))
    wanted.reverse()
    return wanted


class EventLog:
    """The store's event log plus this process's view of it, shared by writers and watchers.

    Every committed write is announced on ``wakeups``, so watchers and runners in other
    processes look at the store now rather than at their next poll.
    """

    def __init__(self, store: Store, *, tail: EventTail | None = None, wakeups: Wakeups | None = None) -> None:
        self.store = store
        self.tail = tail or EventTail()
        self.wakeups = wakeups or LocalWakeups()
        self.heads = LogHeads(store)  # moving a head wakes that task's watchers
        self.wakeups.subscribe(self.heads.on_signals)

    def _written(self, stored: list[StoredEvent]) -> None:
        if not stored:
            return
        self.tail.add(stored)
        self.heads.note(stored)
        for event in stored:
            if event.type in TERMINAL:  # every terminal write but a cancel while queued passes here
                metrics.task_ended(event.crew, event.type.removeprefix("task."))
        self.wakeups.publish(appended(stored, self.wakeups.origin))

    # Every event written below passes its text through ``storable``, the one place between
    # text from outside (tools, models) and the log every reader renders; the store cleans a
    # finished task's result, error and output the same way.

    async def append(self, task_id: str, events: list[EventInput], *, attempt: int | None = None) -> list[StoredEvent]:
        stored = await self.store.append(task_id, [_storable_event(e) for e in events], attempt=attempt)
        self._written(stored)
        return stored

    def written(self, stored: list[StoredEvent]) -> None:
        """Events committed by a store call made outside this log (a claim's ``task.restarted``)."""
        self._written(stored)

    async def finish(self, task_id: str, status: TaskStatus, event: EventInput, **fields: Any) -> StoredEvent | None:
        stored = await self.store.finish_task(
            task_id,
            status,
            _storable_event(event),
            **fields,
        )
        self._written([stored] if stored is not None else [])
        return stored

    async def append_retrying(
        self,
        task_id: str,
        events: list[EventInput],
        *,
        after_seq: int,
        budget_s: float,
        stopping: Callable[[], bool],
        attempt: int | None = None,
    ) -> list[StoredEvent]:
        """``append``, retried with backoff while the store is unavailable, for up to
        ``budget_s`` (or until ``stopping()``); then the last ``StoreUnavailable`` is raised.

        For a task's only writer, whose last durable seq is ``after_seq``: an attempt whose
        commit went through although its answer was lost is found, not written twice.
        """
        deadline = time.monotonic() + budget_s
        delays = backoff()
        try:
            return await self.append(task_id, events, attempt=attempt)
        except StoreUnavailable as exc:
            error = exc
        log.warning("the store did not take a task's events; retrying", task_id=task_id, error=str(error))
        attempts = 1
        while True:
            delay = next(delays)
            if stopping() or time.monotonic() + delay > deadline:
                raise error
            await asyncio.sleep(delay)
            attempts += 1
            try:
                stored = await self._append_again(task_id, events, after_seq, attempt)
            except StoreUnavailable as exc:
                error = exc
                continue
            log.info("the store took a task's events again", task_id=task_id, attempts=attempts)
            return stored

    async def _append_again(
        self, task_id: str, events: list[EventInput], after_seq: int, attempt: int | None
    ) -> list[StoredEvent]:
        landed = await self.store.events_for_task(task_id, after_seq, len(events))
        if landed and [e.type for e in landed] == [e.type for e in events]:
            self._written(landed)  # an earlier attempt committed; only its answer was lost
            return landed
        return await self.append(task_id, events, attempt=attempt)

    async def finish_retrying(
        self, task_id: str, status: TaskStatus, event: EventInput, *, stopping: Callable[[], bool], **fields: Any
    ) -> StoredEvent | None:
        """``finish``, retried with backoff for as long as the store is unavailable, unless
        ``stopping()``: the terminal event (and with it the status) must reach the log, or
        the task's watchers wait for ever."""
        delays = backoff()
        attempts = 0
        while True:
            attempts += 1
            try:
                stored = await self.finish(task_id, status, event, **fields)
            except StoreUnavailable as exc:
                if stopping():
                    raise
                if attempts == 1:
                    log.warning("the store did not take a task's end; retrying", task_id=task_id, error=str(exc))
                await asyncio.sleep(next(delays))
                continue
            if attempts > 1:
                log.info("the store took a task's end", task_id=task_id, attempts=attempts)
            return stored

    async def suspend(
        self, task_id: str, attempt: int, request: InputRequestRecord, checkpoint: dict[str, Any]
    ) -> StoredEvent | None:
        """``Store.suspend_task``: the run pauses, ``input.required`` is shown to watchers."""
        stored = await self.store.suspend_task(task_id, attempt, request, storable(checkpoint))
        self._written([stored] if stored is not None else [])
        return stored

    async def answer(
        self, task_id: str, request_id: str, answer: dict[str, Any], checkpoint: dict[str, Any], *, by: str = "person"
    ) -> StoredEvent | None:
        """``Store.answer_request``: ``input.received`` is shown to watchers."""
        stored = await self.store.answer_request(task_id, request_id, storable(answer), storable(checkpoint), by=by)
        self._written([stored] if stored is not None else [])
        return stored

    async def create_task(
        self, crew: str, inputs: dict[str, Any], config_version: str, **options: Any
    ) -> tuple[TaskRecord, bool]:
        """``Store.create_task``; then firehose watchers are shown its ``task.queued`` event."""
        record, created = await self.store.create_task(crew, storable(inputs), config_version, **options)
        if created:
            await self.heads.refresh_last_id()
        return record, created

    async def request_cancel(self, task_id: str, reason: str) -> TaskRecord | None:
        """A queued task is cancelled at once (its ``task.cancelled`` event is written
        here); a running one is flagged for its runner."""
        before = await self.store.get_task(task_id) if metrics.enabled() else None
        record = await self.store.request_cancel(task_id, storable(reason))
        if record is None:
            return None
        ended_here = record.status is TaskStatus.cancelled and before is not None and before.status in _OPEN
        if ended_here:
            metrics.task_ended(record.crew, TaskStatus.cancelled.value)  # cancelled while queued or waiting
        self.heads.set(record.id, record.last_seq, record.status)
        await self.heads.refresh_last_id()
        origin = self.wakeups.origin
        if record.status is TaskStatus.running:  # its runner, wherever it is, stops at its next checkpoint
            self.wakeups.publish([Signal(SignalKind.cancel, record.id, origin=origin)])
        else:  # cancelled while queued: its task.cancelled is in the log
            ended = Signal(SignalKind.appended, record.id, seq=record.last_seq, ended=True, origin=origin)
            self.wakeups.publish([ended])
        return record


def appended(stored: list[StoredEvent], origin: str) -> list[Signal]:
    """One ``appended`` signal per task in ``stored``: its newest seq, and the newest id of all."""
    newest: dict[str, StoredEvent] = {}
    for event in stored:
        if event.task_id not in newest or event.seq > newest[event.task_id].seq:
            newest[event.task_id] = event
    last_id = max(e.id for e in stored)
    return [
        Signal(SignalKind.appended, e.task_id, seq=e.seq, event_id=last_id, ended=e.type in TERMINAL, origin=origin)
        for e in newest.values()
    ]
