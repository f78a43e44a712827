"""Event streams: WebSocket per task, WebSocket firehose, SSE and JSON pages.

All of them read the same event log (see ``gateway.streaming``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket
from fastapi.responses import StreamingResponse

from gateway import metrics
from gateway.api.boundary import refuse_unstorable_text, unstorable_fields
from gateway.api.deps import (
    EventLogDep,
    SettingsDep,
    StoreDep,
    authenticate,
    scoped,
    task_or_404,
    websocket_principal,
    websocket_services,
)
from gateway.api.errors import ApiError
from gateway.api.ratelimit import admit_socket, rate_limited
from gateway.api.schemas import EventPage
from gateway.store import StoredEvent
from gateway.streaming import CLOSE_BAD_REQUEST, close_reason, firehose_events, frame, pump, task_events

router = APIRouter(tags=["events"])

CLOSE_UNKNOWN_TASK = 4404
MAX_SEQ = 2**31 - 1  # seq is a 32-bit integer in the store
MAX_ID = 2**63 - 1  # event ids are 64-bit


@router.get(
    "/v1/tasks/{task_id}/events",
    response_model=EventPage,
    dependencies=[Depends(authenticate), Depends(rate_limited), Depends(refuse_unstorable_text), scoped("events:read")],
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "JSON page, or SSE when the client accepts text/event-stream",
        },
        404: {"description": "unknown task"},
        422: {"description": "an invalid after, limit or Last-Event-ID, or an unknown query parameter"},
        429: {"description": "the caller's read rate limit is spent"},
    },
)
async def task_events_http(
    task_id: str,
    request: Request,
    store: StoreDep,
    log: EventLogDep,
    settings: SettingsDep,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="only events with seq > after")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    last_event_id: Annotated[str | None, Header(description="SSE resume point (a seq)")] = None,
) -> EventPage | StreamingResponse:
    """The task's events: SSE (``id:`` is the seq) or a JSON page."""
    await task_or_404(store, task_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        start = after
        if last_event_id is not None:
            if not last_event_id.strip().isdigit() or int(last_event_id) > MAX_SEQ:
                raise ApiError(
                    422,
                    "validation_error",
                    "Last-Event-ID must be a seq (an integer)",
                    [{"field": "header.last-event-id", "message": "not an integer"}],
                )
            start = int(last_event_id)
        stream = _sse(request, task_events(log, task_id, start), settings.sse_keepalive_s)
        return StreamingResponse(
            stream, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )
    events = await store.events_for_task(task_id, after, limit + 1)
    page = events[:limit]
    return EventPage(
        data=[e.public() for e in page], next_after=page[-1].seq if page else after, has_more=len(events) > limit
    )


async def _sse(request: Request, events: AsyncIterator[StoredEvent], keepalive_s: float) -> AsyncIterator[str]:
    with metrics.watching("sse") as watcher:
        async for chunk in _sse_frames(request, events, keepalive_s, watcher):
            yield chunk


async def _sse_frames(
    request: Request, events: AsyncIterator[StoredEvent], keepalive_s: float, watcher: metrics.Watcher
) -> AsyncIterator[str]:
    yield "retry: 1000\n\n"
    iterator = events.__aiter__()
    pending: asyncio.Task[StoredEvent] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(iterator.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=keepalive_s)
            if await request.is_disconnected():
                return
            if not done:
                yield ": keep-alive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            finally:
                pending = None
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {frame(event)}\n\n"
            watcher.sent(event.ts.timestamp())
    finally:
        if pending is not None:
            pending.cancel()


async def _admitted(websocket: WebSocket, token: str | None) -> bool:
    """Accept, then check the token, its scope and the values; close with a 44xx code when refused."""
    await websocket.accept()
    if await websocket_principal(websocket, token, ["events:read"]) is None:
        return False
    bad = unstorable_fields(websocket)
    if bad:
        (where, name), problem = bad[0]
        await websocket.close(code=CLOSE_BAD_REQUEST, reason=close_reason(f"{where}.{name}: {problem}"))
        return False
    return await admit_socket(websocket)


@router.websocket("/v1/tasks/{task_id}/events")
async def task_events_ws(
    websocket: WebSocket,
    task_id: str,
    after: Annotated[int, Query(le=MAX_SEQ)] = 0,
    token: str | None = None,
) -> None:
    """Replays events with seq > ``after``, then live ones; closes 1000 after the terminal event."""
    if not await _admitted(websocket, token):
        return
    services = websocket_services(websocket)
    after = max(after, 0)
    if await services.store.get_task(task_id) is None:
        await websocket.close(code=CLOSE_UNKNOWN_TASK, reason=close_reason(f"no task with id '{task_id}'"))
        return
    settings = services.settings
    events = task_events(services.events, task_id, after)
    await pump(
        websocket,
        events,
        buffer=settings.ws_buffer,
        stall_timeout_s=settings.ws_stall_timeout_s,
        cursor_name="seq",
        cursor_of=lambda e: e.seq,
        context={"task_id": task_id},
    )


@router.websocket("/v1/events")
async def firehose_ws(
    websocket: WebSocket,
    after: Annotated[int, Query(le=MAX_ID)] = 0,
    crew: str | None = None,
    type: str | None = None,  # noqa: A002
    token: str | None = None,
) -> None:
    """Every task's events with id > ``after``; ``crew`` and ``type`` take comma-separated lists."""
    if not await _admitted(websocket, token):
        return
    services = websocket_services(websocket)
    if after == -1:
        after = await services.store.last_event_id()  # only what happens from now on
    crews = [c for c in (crew or "").split(",") if c] or None
    types = [t for t in (type or "").split(",") if t] or None
    settings = services.settings
    events = firehose_events(services.events, max(after, 0), crews=crews, types=types)
    await pump(
        websocket,
        events,
        buffer=settings.ws_buffer,
        stall_timeout_s=settings.ws_stall_timeout_s,
        cursor_name="id",
        cursor_of=lambda e: e.id,
        context={"firehose": True, "crews": crews, "types": types},
        kind="firehose",
    )
