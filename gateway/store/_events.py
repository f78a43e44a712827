"""The event log half of the store: appends and cursor reads."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ._core import (
    ACTIVE,
    EVENT_COLS,
    TERMINAL_EVENT_TYPES,
    E,
    StoreCore,
    T,
    event_rows,
    insert_event_rows,
    stored_event,
    utcnow,
)
from ._types import EventInput, LeaseLost, StoredEvent, TaskStatus


@dataclass(eq=False)
class _Append:
    """One ``append`` call waiting for the next group commit."""

    task_id: str
    events: list[EventInput]
    done: asyncio.Future[list[StoredEvent]]
    attempt: int | None  # the run writing: refused (LeaseLost) unless it is the task's attempt
    rows: list[dict[str, Any]] = field(default_factory=list)
    stored: list[StoredEvent] = field(default_factory=list)


SHUT_DOWN = "the event log was shut down before this append was written"


def _refusal(item: _Append, status: str | None) -> Exception:
    """Why ``item`` could not be appended: no such task, a terminal task, or a stale attempt."""
    if status is None:
        return ValueError(f"no task {item.task_id}")
    if status in ACTIVE and item.attempt is not None:
        return LeaseLost(item.task_id, item.attempt)
    return ValueError(f"task {item.task_id} is {status}: no events can follow its terminal event")


# How far each log reaches, for many tasks in one statement (an "expanding" IN list).
HEADS = select(T.c.id, T.c.last_seq, T.c.status).where(T.c.id.in_(bindparam("p_ids", expanding=True)))


class EventLog(StoreCore):
    """Per-task ``seq`` and global ``id`` assignment, and the cursor reads.

    Appends are group-committed: while one write transaction is in flight, appends from
    every task queue up and the next transaction writes all of them (one seq update,
    one insert, one commit), so fifty tasks emitting at once do not queue fifty commits
    in front of everything else that writes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: list[_Append] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(self, task_id: str, events: list[EventInput], *, attempt: int | None = None) -> list[StoredEvent]:
        if not events:
            return []
        for ev in events:
            if ev.type in TERMINAL_EVENT_TYPES:
                raise ValueError(f"{ev.type!r} ends a task: use finish_task (or request_cancel)")
        item = _Append(task_id, list(events), asyncio.get_running_loop().create_future(), attempt)
        self._pending.append(item)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="event-log-flush")
        # shielded: once queued the append happens; a cancelled caller just stops waiting
        return await asyncio.shield(item.done)

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with self._write(events=True) as conn:
                        await self._append_batch(conn, batch)
                except BaseException as exc:
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(SHUT_DOWN))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for item in batch:
                    if not item.done.done():
                        item.done.set_result(item.stored)
        finally:
            self._flusher = None
            stranded, self._pending = self._pending, []  # only when the flush itself was cancelled
            for item in stranded:
                item.done.set_exception(RuntimeError(SHUT_DOWN))

    async def _append_batch(self, conn: AsyncConnection, batch: list[_Append]) -> None:
        """Every append of ``batch`` in one transaction; one that cannot be written (its
        task is terminal or unknown) fails alone, the others are written."""
        wanted: dict[str, int] = {}
        fences: dict[str, int] = {}
        for item in batch:
            wanted[item.task_id] = wanted.get(item.task_id, 0) + len(item.events)
            if item.attempt is not None:
                fences[item.task_id] = item.attempt
        bump = update(T).where(T.c.id.in_(list(wanted)), T.c.status.in_(ACTIVE))
        if fences:
            bump = bump.where(T.c.attempt == case(fences, value=T.c.id, else_=T.c.attempt))
        bump = bump.values(last_seq=T.c.last_seq + case(wanted, value=T.c.id, else_=0)).returning(
            T.c.id, T.c.last_seq, T.c.crew
        )
        bumped = {row.id: row for row in await conn.execute(bump)}
        missing = [task_id for task_id in wanted if task_id not in bumped]
        statuses: dict[str, str] = {}
        if missing:
            rows = await conn.execute(select(T.c.id, T.c.status).where(T.c.id.in_(missing)))
            statuses = {row.id: row.status for row in rows}
        # number each task's appends in queue order, below the task's new last_seq
        next_seq = {task_id: row.last_seq - wanted[task_id] + 1 for task_id, row in bumped.items()}
        rows_out: list[dict[str, Any]] = []
        now = utcnow()
        for item in batch:
            row = bumped.get(item.task_id)
            if row is None:
                item.done.set_exception(_refusal(item, statuses.get(item.task_id)))
                continue
            first = next_seq[item.task_id]
            next_seq[item.task_id] = first + len(item.events)
            item.rows = event_rows(item.task_id, row.crew, first, item.events, now)
            rows_out.extend(item.rows)
        ids = await insert_event_rows(conn, rows_out)
        for item in batch:
            item.stored = [StoredEvent(id=ids[(r["task_id"], r["seq"])], **r) for r in item.rows]

    async def events_for_task(self, task_id: str, after_seq: int = 0, limit: int = 500) -> list[StoredEvent]:
        stmt = (
            select(*EVENT_COLS)
            .where(E.c.task_id == task_id, E.c.seq > after_seq)
            .order_by(E.c.seq)
            .limit(max(limit, 0))
        )
        async with self._read() as conn:
            return [stored_event(row) for row in await conn.execute(stmt)]

    async def events_after(
        self,
        after_id: int = 0,
        limit: int = 500,
        *,
        crews: list[str] | None = None,
        types: list[str] | None = None,
    ) -> list[StoredEvent]:
        """Empty ``crews`` / ``types`` lists mean "no filter", like None."""
        stmt = select(*EVENT_COLS).where(E.c.id > after_id)
        if crews:
            stmt = stmt.where(E.c.crew.in_(crews))
        if types:
            stmt = stmt.where(E.c.type.in_(types))
        stmt = stmt.order_by(E.c.id).limit(max(limit, 0))
        async with self._read() as conn:
            return [stored_event(row) for row in await conn.execute(stmt)]

    async def task_heads(self, task_ids: list[str]) -> dict[str, tuple[int, TaskStatus]]:
        if not task_ids:
            return {}
        async with self._read() as conn:
            rows = await conn.execute(HEADS, {"p_ids": list(task_ids)})
            return {row.id: (row.last_seq, TaskStatus(row.status)) for row in rows}

    async def last_event_id(self) -> int:
        async with self._read() as conn:
            last: int = (await conn.execute(select(func.coalesce(func.max(E.c.id), 0)))).scalar_one()
            return last
