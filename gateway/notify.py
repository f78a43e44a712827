"""What watchers wait on: a wake-up signal, and how far each watched log reaches.

Watchers take their task's signal (firehoses: the notifier's), check the heads, and
wait on that signal only if there is nothing new to read, so a change between the check and the wait is never
missed (everything here runs on the event loop's thread).

Appends made by this process update the heads and wake watchers at once (see
``gateway.eventlog``). Appends made by another process are found by one poll every
``poll_interval_s`` for all watched tasks together: a thousand idle watchers of one
task cost one small query per interval, not a thousand log reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import structlog

from agents.events import TERMINAL_TYPES
from gateway.store import TERMINAL_STATUSES, Store, StoredEvent, StoreUnavailable, TaskStatus
from gateway.wakeups import Signal, SignalKind

__all__ = ["TERMINAL", "Head", "LogHeads", "Notifier"]

log = structlog.get_logger("crewgate.notify")
TERMINAL = frozenset(str(t) for t in TERMINAL_TYPES)
POLL_CHUNK = 500  # task ids per query


class Notifier:
    def __init__(self) -> None:
        self._signal = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._signal

    def notify(self) -> None:
        """Wake every waiter; call on the event loop's thread."""
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()


@dataclass
class Head:
    last_seq: int  # events 1..last_seq are committed
    ended: bool  # the task is terminal: nothing follows last_seq


class LogHeads:
    """The newest committed seq of every watched task, and the newest event id.

    Only ever moves forward, and only from committed data, so a watcher whose cursor
    has reached a head has read everything there is.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.notifier = Notifier()  # firehose watchers: set when ``last_id`` moves
        self._watchers: Counter[str] = Counter()
        self._heads: dict[str, Head] = {}
        self._signals: dict[str, asyncio.Event] = {}  # per watched task: set when its head moves
        self._firehoses = 0
        self.last_id = 0  # newest event id known to be committed
        self._poll_now: asyncio.Task[None] | None = None

    def get(self, task_id: str) -> Head | None:
        return self._heads.get(task_id)

    def signal(self, task_id: str) -> asyncio.Event:
        """What a watcher of ``task_id`` waits on; set when that task's head moves, so an
        append to one task does not wake the watchers of every other."""
        signal = self._signals.get(task_id)
        if signal is None:
            signal = self._signals[task_id] = asyncio.Event()
        return signal

    def _wake(self, task_id: str) -> None:
        signal = self._signals.pop(task_id, None)
        if signal is not None:
            signal.set()

    @contextlib.contextmanager
    def watching(self, task_id: str) -> Iterator[None]:
        """Keep ``task_id``'s head current while the block runs."""
        self._watchers[task_id] += 1
        try:
            yield
        finally:
            self._watchers[task_id] -= 1
            if self._watchers[task_id] <= 0:
                del self._watchers[task_id]
                self._heads.pop(task_id, None)
                self._signals.pop(task_id, None)

    @contextlib.contextmanager
    def watching_all(self) -> Iterator[None]:
        """Keep ``last_id`` current (a firehose watcher) while the block runs."""
        self._firehoses += 1
        try:
            yield
        finally:
            self._firehoses -= 1

    def set(self, task_id: str, last_seq: int, status: TaskStatus | str) -> bool:
        """Move a watched task's head forward (from a task record); True when it moved."""
        return self._advance(task_id, last_seq, TaskStatus(status) in TERMINAL_STATUSES)

    def _advance(self, task_id: str, last_seq: int, ended: bool) -> bool:
        if task_id not in self._watchers:
            return False
        head = self._heads.get(task_id)
        if head is None:
            self._heads[task_id] = Head(last_seq, ended)
        elif last_seq > head.last_seq or (ended and not head.ended):
            head.last_seq = max(head.last_seq, last_seq)
            head.ended = head.ended or ended
        else:
            return False
        self._wake(task_id)
        return True

    def note(self, events: Iterable[StoredEvent]) -> None:
        """Committed events appended by this process: wake their watchers and the firehoses."""
        newest = self.last_id
        for event in events:
            newest = max(newest, event.id)
            self._advance(event.task_id, event.seq, event.type in TERMINAL)
        self._move_last_id(newest)

    def _move_last_id(self, newest: int) -> bool:
        if newest <= self.last_id:
            return False
        self.last_id = newest
        self.notifier.notify()
        return True

    def on_signals(self, signals: Sequence[Signal]) -> None:
        """Wake-ups (``gateway.wakeups``): another process committed events, or wake-ups may
        have been lost and the store must be looked at now."""
        for signal in signals:
            if signal.kind is SignalKind.appended:
                self._advance(signal.task_id, signal.seq, signal.ended)
                self._move_last_id(signal.event_id)
            elif signal.kind is SignalKind.resync and self._poll_now is None:
                self._poll_now = asyncio.get_running_loop().create_task(self._resync(), name="heads-resync")

    async def _resync(self) -> None:
        try:
            await self.poll()
        except Exception as exc:  # the regular poll goes on regardless
            log.warning("reading the heads after a wake-up gap failed", error=str(exc))
        finally:
            self._poll_now = None

    async def refresh_last_id(self) -> bool:
        """Read the newest event id if a firehose is open (after a write whose ids are
        unknown); True when it moved."""
        return bool(self._firehoses) and self._move_last_id(await self.store.last_event_id())

    async def poll(self) -> bool:
        """Read the heads of all watched tasks (and the newest id, if a firehose is open)
        and wake the watchers of whatever moved. True when something moved."""
        moved = False
        ids = list(self._watchers)
        for start in range(0, len(ids), POLL_CHUNK):
            heads = await self.store.task_heads(ids[start : start + POLL_CHUNK])
            for task_id, (last_seq, status) in heads.items():
                moved = self.set(task_id, last_seq, status) or moved
        return await self.refresh_last_id() or moved

    async def run(self, interval_s: float) -> None:
        """Poll forever; a failed poll is logged and retried at the next interval."""
        while True:
            await asyncio.sleep(interval_s)
            if not self._watchers and not self._firehoses:
                continue
            try:
                await self.poll()
            except StoreUnavailable as exc:  # an outage: one line per poll, no traceback
                log.warning("polling the event log failed", error=str(exc))
            except Exception:
                log.exception("polling the event log failed")
