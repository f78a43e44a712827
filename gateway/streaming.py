"""Reading the event log as a stream: replay from a cursor, then live, from one source.

Watchers never receive events from a socket-side buffer the producer fills; they
read the log. So a watcher that drops off and comes back with ``after=`` misses
nothing, and replay and live share one cursor: no gap and no duplicate at the seam.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from enum import Enum
from itertools import islice
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from agents.events import TERMINAL_TYPES
from gateway.notify import Notifier
from gateway.store import TERMINAL_STATUSES, Store, StoredEvent

__all__ = ["EventTail", "WatcherState", "firehose_events", "pump", "task_events"]

log = structlog.get_logger("crewgate.streaming")
PAGE = 500
CLOSE_WAIT_S = 30.0
TERMINAL = frozenset(str(t) for t in TERMINAL_TYPES)


class WatcherState(Enum):
    streaming = "streaming"  # sending frames
    lagging = "lagging"  # buffer stayed full: closed with 1013
    finished = "finished"  # terminal event sent: closed with 1000
    gone = "gone"  # the client went away


class EventTail:
    """The most recent events of recently active tasks, as appended by this process.

    Watchers woken by a local append read from here instead of the database. The tail
    answers only when it holds the next seq contiguously, so it never hides a gap:
    anything it cannot prove complete (events written by another process, evicted
    tasks, a watcher far behind) is read from the log.
    """

    def __init__(self, per_task: int = 2048, tasks: int = 1024) -> None:
        self.per_task = per_task
        self.tasks = tasks
        self._tails: OrderedDict[str, deque[StoredEvent]] = OrderedDict()

    def add(self, events: list[StoredEvent]) -> None:
        for event in events:
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
        # seqs in a tail are contiguous, so the first wanted one sits at a known index
        return list(islice(tail, seq + 1 - tail[0].seq, None))


async def task_events(store: Store, notifier: Notifier, task_id: str, after: int,
                      poll_s: float, tail: EventTail | None = None) -> AsyncIterator[StoredEvent]:
    """Events of one task with seq > ``after``, replayed then live, ending after the terminal one."""
    cursor = after
    from_log = True  # the first read, and every read after a quiet wait, goes to the log
    while True:
        signal = notifier.current()
        batch = None if from_log or tail is None else tail.after(task_id, cursor)
        read_log = batch is None
        if read_log:
            batch = await store.events_for_task(task_id, cursor, PAGE)
        for event in batch:
            cursor = event.seq
            yield event
            if event.type in TERMINAL:
                return
        if len(batch) >= PAGE:
            from_log = True
            continue
        if not batch and read_log:
            record = await store.get_task(task_id)
            if record is not None and record.last_seq <= cursor and record.status in TERMINAL_STATUSES:
                return  # terminal event already behind the cursor
        if batch:
            from_log = False  # more may have arrived meanwhile; the tail answers or defers to the log
            continue
        woken = await notifier.wait(signal, poll_s)
        from_log = not woken


async def firehose_events(store: Store, notifier: Notifier, after: int, poll_s: float, *,
                          crews: list[str] | None, types: list[str] | None) -> AsyncIterator[StoredEvent]:
    """Every task's events with id > ``after``, forever."""
    cursor = after
    while True:
        signal = notifier.current()
        batch = await store.events_after(cursor, PAGE, crews=crews, types=types)
        for event in batch:
            cursor = event.id
            yield event
        if len(batch) < PAGE:
            if batch:
                continue
            await notifier.wait(signal, poll_s)


def frame(event: StoredEvent) -> str:
    return json.dumps(event.public(), ensure_ascii=False, separators=(",", ":"))


async def pump(websocket: WebSocket, events: AsyncIterator[StoredEvent], *, buffer: int,
               stall_timeout_s: float, cursor_name: str, cursor_of: Any) -> WatcherState:
    """Send ``events`` to the socket through a bounded buffer.

    A reader fills the buffer from the log; a writer drains it to the socket. If the
    buffer stays full for ``stall_timeout_s`` the watcher is too slow: it is closed
    with 1013 and a reason naming the last cursor it received, to resume from.
    """
    queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(maxsize=buffer)
    last: list[Any] = [None]

    async def read() -> WatcherState:
        async for event in events:
            try:
                await asyncio.wait_for(queue.put(event), stall_timeout_s)
            except TimeoutError:
                return WatcherState.lagging
        await queue.put(None)
        return WatcherState.finished

    async def write() -> WatcherState:
        while True:
            event = await queue.get()
            if event is None:
                return WatcherState.finished
            # uvicorn writes the frame only once the socket is writable, so a send that is
            # cancelled while waiting wrote nothing: record the cursor after it returns
            await websocket.send_text(frame(event))
            last[0] = cursor_of(event)

    async def listen() -> WatcherState:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        return WatcherState.gone

    reader, writer, listener = (asyncio.create_task(read()), asyncio.create_task(write()),
                                asyncio.create_task(listen()))
    try:
        done, _ = await asyncio.wait({reader, writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        if reader in done and reader.exception() is None and reader.result() is WatcherState.finished:
            # the log is exhausted; the writer still has to drain the buffer
            done, _ = await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        if writer in done:
            state = WatcherState.finished if writer.exception() is None else WatcherState.gone
        elif reader in done:
            if reader.exception() is not None:
                log.error("watcher stream failed", exc_info=reader.exception())
            state = reader.result() if reader.exception() is None else WatcherState.gone
        else:
            state = WatcherState.gone
    finally:
        for t in (reader, writer, listener):
            t.cancel()
        await asyncio.gather(reader, writer, listener, return_exceptions=True)

    if websocket.application_state == WebSocketState.CONNECTED and state is not WatcherState.gone:
        if state is WatcherState.lagging:
            resume = last[0] if last[0] is not None else "none"
            code, reason = 1013, f"watcher too slow; last {cursor_name} {resume}; reconnect with after={resume}"
            log.info("watcher dropped for lagging", last=resume)
        else:
            code, reason = 1000, "done"
        # the close frame queues behind what the client has not read yet; give a slow
        # client time to reach it before the connection is dropped
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code=code, reason=reason[:120]), CLOSE_WAIT_S)
    return state
