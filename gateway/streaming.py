"""Reading the event log as a stream: replay from a cursor, then live, from one source.

Watchers never receive events from a socket-side buffer the producer fills; they
read the log. So a watcher that drops off and comes back with ``after=`` misses
nothing, and replay and live share one cursor: no gap and no duplicate at the seam.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import Enum
from typing import Any

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from uvicorn.protocols.utils import ClientDisconnected

from agents.events import TERMINAL_TYPES
from gateway import metrics
from gateway.eventlog import EventLog
from gateway.store import StoredEvent

__all__ = ["CLOSE_BAD_REQUEST", "WatcherState", "close_reason", "firehose_events", "frame", "pump", "task_events"]

logger = structlog.get_logger("crewgate.streaming")
PAGE = 500
CLOSE_WAIT_S = 30.0
TERMINAL = frozenset(str(t) for t in TERMINAL_TYPES)


class WatcherState(Enum):
    streaming = "streaming"  # sending frames
    lagging = "lagging"  # buffer stayed full: closed with 1013
    finished = "finished"  # terminal event sent: closed with 1000
    gone = "gone"  # the client went away
    failed = "failed"  # reading or sending failed on our side: logged, closed with 1011


CLOSE_INTERNAL_ERROR = 1011
CLOSE_BAD_REQUEST = 4400  # a parameter that is invalid or cannot be stored
# how a send fails when the client has gone: not our failure, nothing to log
_GONE = (WebSocketDisconnect, ClientDisconnected, ConnectionError)


async def task_events(log: EventLog, task_id: str, after: int) -> AsyncIterator[StoredEvent]:
    """Events of one task with seq > ``after``, replayed then live, ending after the terminal one."""
    store, heads, tail = log.store, log.heads, log.tail
    cursor = after
    with heads.watching(task_id):
        record = await store.get_task(task_id)
        if record is None:
            return
        heads.set(task_id, record.last_seq, record.status)
        while True:
            signal = heads.signal(task_id)
            head = heads.get(task_id)
            assert head is not None  # kept while watching, and set above
            if head.last_seq <= cursor:
                if head.ended:
                    return  # the terminal event is behind the cursor
                await signal.wait()  # a local append, or the shared poll, moves the head
                continue
            # the tail serves watchers that keep up with local appends; anything it cannot
            # vouch for up to the head (another process wrote it, or it fell out) is read
            batch = tail.after(task_id, cursor)
            if not batch or batch[-1].seq < min(head.last_seq, cursor + PAGE):
                batch = await store.events_for_task(task_id, cursor, PAGE)
                if not batch:  # the head is ahead of the log: cannot happen with one database
                    logger.warning("task head ahead of its log", task_id=task_id, head=head.last_seq, cursor=cursor)
                    await asyncio.sleep(1.0)
                    continue
            for event in batch:
                cursor = event.seq
                yield event
                if event.type in TERMINAL:
                    return


async def firehose_events(
    log: EventLog, after: int, *, crews: list[str] | None, types: list[str] | None
) -> AsyncIterator[StoredEvent]:
    """Every task's events with id > ``after``, forever."""
    store, heads, tail = log.store, log.heads, log.tail
    cursor = scanned = after  # scanned: every event up to here was looked at (filters skip some)
    crew_set, type_set = frozenset(crews or ()), frozenset(types or ())
    with heads.watching_all():
        heads.last_id = max(heads.last_id, await store.last_event_id())
        while True:
            signal = heads.notifier.current()
            known = heads.last_id
            if known <= scanned:
                await signal.wait()
                continue
            recent = tail.after_id(scanned)
            if recent and recent[-1].id >= known:  # this process wrote them all: filter in memory
                for event in recent:
                    if (not crew_set or event.crew in crew_set) and (not type_set or event.type in type_set):
                        cursor = event.id
                        yield event
                scanned = recent[-1].id
                continue
            batch = await store.events_after(cursor, PAGE, crews=crews, types=types)
            for event in batch:
                cursor = event.id
                yield event
            # everything committed up to ``known`` was visible to that read
            scanned = cursor if len(batch) >= PAGE else max(known, cursor)


def close_reason(text: str) -> str:
    """``text`` cut to what a close frame may carry (123 bytes of UTF-8): a longer reason
    makes the close itself fail, and the socket drops without any code."""
    encoded = text.encode("utf-8", "replace")
    return encoded[:123].decode("utf-8", "ignore") if len(encoded) > 123 else text


def frame(event: StoredEvent) -> str:
    return event.wire


async def pump(
    websocket: WebSocket,
    events: AsyncIterator[StoredEvent],
    *,
    buffer: int,
    stall_timeout_s: float,
    cursor_name: str,
    cursor_of: Any,
    context: dict[str, Any] | None = None,
    kind: str = "websocket",
) -> WatcherState:
    """Send ``events`` to the socket through a bounded buffer.

    A reader fills the buffer from the log; a writer drains it to the socket. If the
    buffer stays full for ``stall_timeout_s`` the watcher is too slow: it is closed
    with 1013 and a reason naming the last cursor it received, to resume from. If
    reading the log or sending a frame fails, the failure is logged with ``context``
    (the task id) and the socket closed with 1011, never dropped without a code.
    ``kind`` labels the watcher in the metrics (``crewgate_watchers``).
    """
    with metrics.watching(kind) as watcher:
        return await _pump(websocket, events, buffer, stall_timeout_s, cursor_name, cursor_of, context, watcher)


async def _pump(
    websocket: WebSocket,
    events: AsyncIterator[StoredEvent],
    buffer: int,
    stall_timeout_s: float,
    cursor_name: str,
    cursor_of: Any,
    context: dict[str, Any] | None,
    watcher: metrics.Watcher,
) -> WatcherState:
    queue: asyncio.Queue[StoredEvent | None] = asyncio.Queue(maxsize=buffer)
    last: list[Any] = [None]

    async def read() -> WatcherState:
        async for event in events:
            if not queue.full():
                queue.put_nowait(event)  # the common case: no timer
                continue
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
            watcher.sent(event.ts.timestamp())

    async def listen() -> WatcherState:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
        return WatcherState.gone

    reader, writer, listener = (
        asyncio.create_task(read()),
        asyncio.create_task(write()),
        asyncio.create_task(listen()),
    )
    try:
        done, _ = await asyncio.wait({reader, writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        if reader in done and reader.exception() is None and reader.result() is WatcherState.finished:
            # the log is exhausted; the writer still has to drain the buffer
            done, _ = await asyncio.wait({writer, listener}, return_when=asyncio.FIRST_COMPLETED)
        state = _outcome(writer if writer in done else reader if reader in done else None, context or {})
    finally:
        for t in (reader, writer, listener):
            t.cancel()
        await asyncio.gather(reader, writer, listener, return_exceptions=True)
    await _close(websocket, state, cursor_name, last[0])
    return state


def _outcome(task: asyncio.Task[WatcherState] | None, context: dict[str, Any]) -> WatcherState:
    """How the watcher ended, from the reader or writer task that ended it (None: the listener)."""
    if task is None:
        return WatcherState.gone
    exc = task.exception()
    if exc is None:
        return task.result()
    if isinstance(exc, _GONE):
        return WatcherState.gone
    logger.error("watcher stream failed", **context, error=type(exc).__name__, exc_info=exc)
    return WatcherState.failed


async def _close(websocket: WebSocket, state: WatcherState, cursor_name: str, last: Any) -> None:
    if websocket.application_state != WebSocketState.CONNECTED or state is WatcherState.gone:
        return
    if state is WatcherState.lagging:
        resume = last if last is not None else "none"
        code, reason = 1013, f"watcher too slow; last {cursor_name} {resume}; reconnect with after={resume}"
        logger.info("watcher dropped for lagging", last=resume)
    elif state is WatcherState.failed:
        resume = last if last is not None else "none"
        code, reason = CLOSE_INTERNAL_ERROR, f"internal error after {cursor_name} {resume}"
    else:
        code, reason = 1000, "done"
    # the close frame queues behind what the client has not read yet; give a slow
    # client time to reach it before the connection is dropped
    with contextlib.suppress(Exception):
        await asyncio.wait_for(websocket.close(code=code, reason=close_reason(reason)), CLOSE_WAIT_S)
