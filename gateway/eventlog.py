"""Writing to a task's event log from this process: store, tail, wake-up, in one place.

Everything that appends events goes through here, so the in-process tail and the
watchers' wake-up can never be skipped by one writer and not another.
"""

from __future__ import annotations

from gateway.notify import Notifier
from gateway.store import EventInput, Store, StoredEvent, TaskStatus
from gateway.streaming import EventTail

__all__ = ["EventLog"]


class EventLog:
    def __init__(self, store: Store, notifier: Notifier, tail: EventTail) -> None:
        self.store = store
        self.notifier = notifier
        self.tail = tail

    async def append(self, task_id: str, events: list[EventInput]) -> list[StoredEvent]:
        stored = await self.store.append(task_id, events)
        self.tail.add(stored)
        self.notifier.notify()
        return stored

    async def finish(self, task_id: str, status: TaskStatus, event: EventInput, **fields: object) -> StoredEvent | None:
        stored = await self.store.finish_task(task_id, status, event, **fields)  # type: ignore[arg-type]
        if stored is not None:
            self.tail.add([stored])
        self.notifier.notify()
        return stored
