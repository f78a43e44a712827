"""The human-input half of the store: a paused run's request and checkpoint, and the answer."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ._core import R, StoreCore, T, clean_json, clean_text, utcnow
from ._types import EventInput, InputRequestRecord, LeaseLost, StoredEvent, TaskStatus

__all__ = ["InputRequests"]

REQUEST_FIELDS = tuple(f.name for f in dataclasses.fields(InputRequestRecord))
REQUEST_COLS = tuple(R.c[name] for name in REQUEST_FIELDS)


def request_record(row: Any) -> InputRequestRecord:
    return InputRequestRecord(**{name: row._mapping[name] for name in REQUEST_FIELDS})


def required_event(request: InputRequestRecord) -> EventInput:
    data: dict[str, Any] = {"request_id": request.id, "kind": request.kind, "prompt": request.prompt}
    if request.output is not None:
        data["output"] = request.output
    if request.expires_at is not None:
        data["expires_at"] = request.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return EventInput("input.required", step=request.step, data=data)


class InputRequests(StoreCore):
    async def suspend_task(
        self, task_id: str, attempt: int, request: InputRequestRecord, checkpoint: dict[str, Any]
    ) -> StoredEvent | None:
        request = dataclasses.replace(
            request, prompt=clean_text(request.prompt) or "", output=clean_text(request.output)
        )
        pause = (
            update(T)
            .where(T.c.id == task_id, T.c.status == TaskStatus.running.value, T.c.attempt == attempt)
            .values(
                status=TaskStatus.waiting.value,
                checkpoint=clean_json(checkpoint),
                lease_owner=None,
                lease_expires_at=None,
                last_seq=T.c.last_seq + 1,
            )
            .returning(T.c.last_seq, T.c.crew)
        )
        now = utcnow()
        async with self._write(events=True) as conn:
            row = (await conn.execute(pause)).first()
            if row is None:
                await self._why_not_running(conn, task_id, attempt)
                return None
            await conn.execute(insert(R).values(**dataclasses.asdict(request)))
            (stored,) = await self._insert_events(conn, task_id, row.crew, row.last_seq, [required_event(request)], now)
        return stored

    @staticmethod
    async def _why_not_running(conn: AsyncConnection, task_id: str, attempt: int) -> None:
        row = (await conn.execute(select(T.c.status, T.c.attempt).where(T.c.id == task_id))).first()
        if row is not None and row.status == TaskStatus.running.value and row.attempt != attempt:
            raise LeaseLost(task_id, attempt)

    async def input_requests(self, task_id: str, *, open_only: bool = False) -> list[InputRequestRecord]:
        stmt = select(*REQUEST_COLS).where(R.c.task_id == task_id)
        if open_only:
            stmt = stmt.where(R.c.status == "open")
        async with self._read() as conn:
            return [request_record(row) for row in await conn.execute(stmt.order_by(R.c.created_at, R.c.id))]

    async def answer_request(
        self, task_id: str, request_id: str, answer: dict[str, Any], checkpoint: dict[str, Any], *, by: str = "person"
    ) -> StoredEvent | None:
        now = utcnow()
        answer = clean_json(answer)
        close = (
            update(R)
            .where(R.c.id == request_id, R.c.task_id == task_id, R.c.status == "open")
            .values(status="answered", answer=answer, answered_at=now)
            .returning(R.c.kind, R.c.step)
        )
        resume = (
            update(T)
            .where(T.c.id == task_id, T.c.status == TaskStatus.waiting.value)
            .values(status=TaskStatus.queued.value, checkpoint=clean_json(checkpoint), last_seq=T.c.last_seq + 1)
            .returning(T.c.last_seq, T.c.crew)
        )
        async with self._write(events=True) as conn:
            request = (await conn.execute(close)).first()
            if request is None:
                return None
            row = (await conn.execute(resume)).first()
            if row is None:  # cannot be: a task with an open request is waiting
                raise RuntimeError(f"task {task_id} has an open request but is not waiting")
            data = {"request_id": request_id, "kind": request.kind, "by": by, **answer}
            event = EventInput("input.received", step=request.step, data=data)
            (stored,) = await self._insert_events(conn, task_id, row.crew, row.last_seq, [event], now)
        return stored

    async def expired_requests(self, limit: int = 100) -> list[InputRequestRecord]:
        stmt = (
            select(*REQUEST_COLS)
            .where(R.c.status == "open", R.c.expires_at.is_not(None), R.c.expires_at < utcnow())
            .order_by(R.c.expires_at)
            .limit(max(limit, 0))
        )
        async with self._read() as conn:
            return [request_record(row) for row in await conn.execute(stmt)]

    @staticmethod
    async def _close_requests(conn: AsyncConnection, task_id: str, status: str = "closed") -> None:
        """Open requests of a task that ended otherwise (cancelled, timed out, failed)."""
        await conn.execute(update(R).where(R.c.task_id == task_id, R.c.status == "open").values(status=status))
