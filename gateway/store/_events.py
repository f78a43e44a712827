"""The event log half of the store: appends and cursor reads."""

from __future__ import annotations

from sqlalchemy import Integer, bindparam, func, select, update

from ._core import ACTIVE, EVENT_COLS, TERMINAL_EVENT_TYPES, E, StoreCore, T, stored_event, utcnow
from ._types import EventInput, StoredEvent, TaskStatus

# Reserve n seqs on a task that is still active; None when it is terminal (or missing).
BUMP_SEQ = (
    update(T)
    .where(T.c.id == bindparam("p_id"), T.c.status.in_(ACTIVE))
    .values(last_seq=T.c.last_seq + bindparam("p_n", type_=Integer))
    .returning(T.c.last_seq, T.c.crew)
)

# How far each log reaches, for many tasks in one statement (an "expanding" IN list).
HEADS = select(T.c.id, T.c.last_seq, T.c.status).where(T.c.id.in_(bindparam("p_ids", expanding=True)))


class EventLog(StoreCore):
    """Per-task ``seq`` and global ``id`` assignment, and the two cursor reads."""

    async def append(self, task_id: str, events: list[EventInput]) -> list[StoredEvent]:
        if not events:
            return []
        for ev in events:
            if ev.type in TERMINAL_EVENT_TYPES:
                raise ValueError(f"{ev.type!r} ends a task: use finish_task (or request_cancel)")
        async with self._write(events=True) as conn:
            row = (await conn.execute(BUMP_SEQ, {"p_id": task_id, "p_n": len(events)})).first()
            if row is None:
                status = (await conn.execute(select(T.c.status).where(T.c.id == task_id))).scalar()
                if status is None:
                    raise ValueError(f"no task {task_id}")
                raise ValueError(f"task {task_id} is {status}: no events can follow its terminal event")
            return await self._insert_events(conn, task_id, row.crew, row.last_seq, events, utcnow())

    async def events_for_task(self, task_id: str, after_seq: int = 0, limit: int = 500) -> list[StoredEvent]:
        stmt = (
            select(*EVENT_COLS)
            .where(E.c.task_id == task_id, E.c.seq > after_seq)
            .order_by(E.c.seq)
            .limit(max(limit, 0))
        )
        async with self._reader.connect() as conn:
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
        async with self._reader.connect() as conn:
            return [stored_event(row) for row in await conn.execute(stmt)]

    async def task_heads(self, task_ids: list[str]) -> dict[str, tuple[int, TaskStatus]]:
        if not task_ids:
            return {}
        async with self._reader.connect() as conn:
            rows = await conn.execute(HEADS, {"p_ids": list(task_ids)})
            return {row.id: (row.last_seq, TaskStatus(row.status)) for row in rows}

    async def last_event_id(self) -> int:
        async with self._reader.connect() as conn:
            return (await conn.execute(select(func.coalesce(func.max(E.c.id), 0)))).scalar_one()
