"""``SqlStore``: the Store protocol on SQLAlchemy 2 async, for SQLite (WAL) and PostgreSQL.

Ordering guarantees:

- ``seq`` is per task and gap-free: each write bumps ``tasks.last_seq`` with a conditional
  ``UPDATE … RETURNING`` and inserts the events numbered below it, in one transaction.
- ``events.id`` increases in commit order, so a reader polling ``id > cursor`` never skips
  an event. SQLite has one writer at a time (``BEGIN IMMEDIATE``, plus an asyncio lock so
  this process's writers queue here rather than in busy_timeout). PostgreSQL hands out
  sequence values when rows are inserted, not when they commit, so every transaction that
  inserts events first takes one transaction-scoped advisory lock.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from ._core import (
    ACTIVE,
    MAX_KEY_LEN,
    MIGRATE_LOCK,
    TASK_COLS,
    C,
    T,
    clean_json,
    clean_text,
    task_record,
    utcnow,
)
from ._engine import upgrade_to_head
from ._events import EventLog
from ._input import InputRequests
from ._keys import ApiKeys
from ._types import (
    TERMINAL_STATUSES,
    EventInput,
    IdempotencyConflict,
    LeaseLost,
    StoredEvent,
    TaskRecord,
    TaskStatus,
    WebhookSpec,
)
from ._webhooks import Webhooks, insert_webhooks

__all__ = ["SqlStore"]

PROBE_PREFIX = "write-probe-"  # config_versions rows that never commit (see check_writable)
PROBE_DELETE = text("DELETE FROM config_versions WHERE version = :version")


def expired(now: datetime) -> ColumnElement[bool]:
    """The lease has run out (no lease at all: a row from before leases, presumed dead)."""
    return or_(T.c.lease_expires_at.is_(None), T.c.lease_expires_at < now)


class SqlStore(EventLog, InputRequests, ApiKeys, Webhooks):
    """One store for both databases; the URL chooses. Create with ``open_store(url)``."""

    # lifecycle

    async def migrate(self) -> None:
        if self._sqlite:
            await self._enable_wal()
        async with self._write() as conn:
            if self._sqlite:
                # Alembic starts with reads and DDL, which would not open a transaction by themselves.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(MIGRATE_LOCK)  # replicas starting together migrate one at a time
            await conn.run_sync(upgrade_to_head, self._engine.url)

    async def _enable_wal(self) -> None:
        # Switching a file to WAL needs it to itself, and SQLite answers "database is locked"
        # at once rather than waiting out busy_timeout; that only happens while two
        # connections race to switch a brand-new file, so retry briefly. Once WAL, it stays.
        for attempt in range(100):
            try:
                async with self._engine.connect() as conn:
                    mode = (await conn.exec_driver_sql("PRAGMA journal_mode=WAL")).scalar()
                if mode == "wal":
                    return
            except OperationalError as exc:
                if "locked" not in str(exc) or attempt == 99:
                    raise
            await asyncio.sleep(0.05)
        raise RuntimeError(f"SQLite would not switch {self._engine.url.database} to WAL")

    async def ping(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_writable(self) -> None:
        if self.write_failure is None:
            return  # the last write committed: nothing to send
        # A real write that leaves nothing behind: a row inserted and deleted in one
        # transaction still has its pages written at commit, so a full disk or a
        # read-only database fails it. Only after a failure, so readiness stays cheap.
        probe = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        async with self._write() as conn:
            await conn.execute(self._dialect_insert(C).values(version=probe, files={}, created_at=utcnow()))
            await conn.execute(PROBE_DELETE, {"version": probe})

    async def close(self) -> None:
        await self._engine.dispose()

    def _dialect_insert(self, table: Any) -> Any:
        return sqlite_insert(table) if self._sqlite else pg_insert(table)

    # config snapshots

    async def save_config(self, version: str, files: dict[str, str]) -> None:
        stmt = self._dialect_insert(C).values(version=version, files=files, created_at=utcnow())
        async with self._write() as conn:
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=[C.c.version]))

    async def load_config(self, version: str) -> dict[str, str] | None:
        async with self._read() as conn:
            return (await conn.execute(select(C.c.files).where(C.c.version == version))).scalar()

    # tasks

    async def create_task(
        self,
        crew: str,
        inputs: dict[str, Any],
        config_version: str,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        retry_of: str | None = None,
        webhooks: list[WebhookSpec] | None = None,
    ) -> tuple[TaskRecord, bool]:
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY_LEN:
            raise ValueError(f"an idempotency key must be 1 to {MAX_KEY_LEN} characters")
        async with self._write(events=True) as conn:
            record = await self._insert_task(
                conn, crew, inputs, config_version, idempotency_key, request_hash, retry_of
            )
            if record is not None:
                await insert_webhooks(conn, record.id, webhooks or [], record.created_at)
                return record, True
            assert idempotency_key is not None  # only a taken key makes the insert return None
            # The key is taken. ON CONFLICT waited for the other writer's commit, so the
            # winner's row is visible to this statement (PostgreSQL read committed; SQLite
            # writers are serial anyway).
            existing = await self._by_key(conn, idempotency_key)
        if existing is None:  # cannot happen: tasks are never deleted
            raise RuntimeError(f"idempotency key {idempotency_key!r} conflicted but no task holds it")
        if existing.request_hash != request_hash:
            raise IdempotencyConflict(idempotency_key, existing.id)
        return task_record(existing), False

    @staticmethod
    async def _by_key(conn: AsyncConnection, key: str) -> Any:
        stmt = select(*TASK_COLS, T.c.request_hash).where(T.c.idempotency_key == key)
        return (await conn.execute(stmt)).first()

    async def _insert_task(
        self,
        conn: AsyncConnection,
        crew: str,
        inputs: dict[str, Any],
        config_version: str,
        idempotency_key: str | None,
        request_hash: str | None,
        retry_of: str | None,
    ) -> TaskRecord | None:
        """The new task and its ``task.queued`` event; None when ``idempotency_key`` is taken."""
        now = utcnow()
        values: dict[str, Any] = dict(
            id=str(uuid.uuid4()),
            crew=crew,
            inputs=inputs,
            status=TaskStatus.queued.value,
            config_version=config_version,
            created_at=now,
            retry_of=retry_of,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            cancel_requested=False,
            last_seq=1,
        )
        stmt = self._dialect_insert(T).values(values).on_conflict_do_nothing(index_elements=[T.c.idempotency_key])
        num = (await conn.execute(stmt.returning(T.c.num))).scalar()
        if num is None:
            return None
        data: dict[str, Any] = {"crew": crew, "inputs": inputs, "config_version": config_version}
        if retry_of is not None:
            data["retry_of"] = retry_of
        await self._insert_events(conn, values["id"], crew, 1, [EventInput("task.queued", data=data)], now)
        del values["request_hash"]
        return TaskRecord(num=num, **{**values, "status": TaskStatus.queued})

    async def get_task(self, task_id: str) -> TaskRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(*TASK_COLS).where(T.c.id == task_id))).first()
        return task_record(row) if row is not None else None

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        crew: str | None = None,
        limit: int = 50,
        before_num: int | None = None,
    ) -> list[TaskRecord]:
        stmt = select(*TASK_COLS)
        if status is not None:
            stmt = stmt.where(T.c.status == TaskStatus(status).value)
        if crew is not None:
            stmt = stmt.where(T.c.crew == crew)
        if before_num is not None:
            stmt = stmt.where(T.c.num < before_num)
        stmt = stmt.order_by(T.c.num.desc()).limit(max(limit, 0))
        async with self._read() as conn:
            return [task_record(row) for row in await conn.execute(stmt)]

    async def tasks_with_status(self, status: TaskStatus) -> list[TaskRecord]:
        stmt = select(*TASK_COLS).where(T.c.status == TaskStatus(status).value).order_by(T.c.num)
        async with self._read() as conn:
            return [task_record(row) for row in await conn.execute(stmt)]

    async def active_counts(self) -> dict[tuple[str, str], int]:
        active = (TaskStatus.queued.value, TaskStatus.running.value, TaskStatus.waiting.value)
        stmt = select(T.c.crew, T.c.status, func.count()).where(T.c.status.in_(active)).group_by(T.c.crew, T.c.status)
        async with self._read() as conn:
            return {(crew, status): int(count) for crew, status, count in await conn.execute(stmt)}

    async def claim_task(
        self, task_id: str, *, owner: str = "", lease_s: float = 30.0, attempt: int = 1
    ) -> TaskRecord | None:
        now = utcnow()
        lease = dict(
            status=TaskStatus.running.value,
            attempt=attempt,
            lease_owner=owner[:200] or None,
            lease_expires_at=now + timedelta(seconds=lease_s),
        )
        async with self._write(events=attempt > 1) as conn:
            record = await self._start_queued(conn, task_id, attempt, lease, now)
            if record is None and attempt > 1:
                record = await self._restart(conn, task_id, attempt, lease, now)
        return record

    @staticmethod
    async def _start_queued(
        conn: AsyncConnection, task_id: str, attempt: int, lease: dict[str, Any], now: datetime
    ) -> TaskRecord | None:
        """A queued task starts: a new one (attempt 0 -> 1), or one a person answered, which goes
        on with its attempt (a message offering attempt N finds it at N)."""
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.status == TaskStatus.queued.value, T.c.attempt.in_((attempt - 1, attempt)))
            .values(started_at=func.coalesce(T.c.started_at, now), **{**lease, "attempt": max(attempt, 1)})
            .returning(*TASK_COLS)
        )
        row = (await conn.execute(stmt)).first()
        return task_record(row) if row is not None else None

    async def _restart(
        self, conn: AsyncConnection, task_id: str, attempt: int, lease: dict[str, Any], now: datetime
    ) -> TaskRecord | None:
        """Attempt ``attempt`` takes over from ``attempt - 1`` whose lease ran out, with a
        ``task.restarted`` event; None when that is not the state of the task."""
        before = (await conn.execute(select(T.c.lease_owner).where(T.c.id == task_id))).first()
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.status == TaskStatus.running.value, T.c.attempt == attempt - 1, expired(now))
            .values(last_seq=T.c.last_seq + 1, checkpoint=None, **lease)  # from the start
            .returning(*TASK_COLS)
        )
        row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        previous = before.lease_owner if before is not None else None
        data = {
            "attempt": attempt,
            "previous_owner": previous,
            "reason": f"attempt {attempt - 1} stopped without ending the task (its runner stopped renewing "
            "its lease); the task runs again from the start",
        }
        await self._insert_events(conn, task_id, row.crew, row.last_seq, [EventInput("task.restarted", data=data)], now)
        return task_record(row)

    async def renew_lease(self, task_id: str, attempt: int, owner: str, lease_s: float) -> bool:
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.attempt == attempt, T.c.status == TaskStatus.running.value)
            .values(lease_owner=owner[:200] or None, lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            .returning(T.c.id)
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def release_lease(self, task_id: str, attempt: int) -> bool:
        stmt = (
            update(T)
            .where(T.c.id == task_id, T.c.attempt == attempt, T.c.status == TaskStatus.running.value)
            .values(lease_expires_at=utcnow())
            .returning(T.c.id)
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def expired_leases(self, limit: int = 100) -> list[TaskRecord]:
        stmt = (
            select(*TASK_COLS)
            .where(T.c.status == TaskStatus.running.value, expired(utcnow()))
            .order_by(T.c.lease_expires_at, T.c.num)
            .limit(max(limit, 0))
        )
        async with self._read() as conn:
            return [task_record(row) for row in await conn.execute(stmt)]

    async def end_expired(
        self, task_id: str, attempt: int, event: EventInput, *, error_code: str, error: str
    ) -> StoredEvent | None:
        now = utcnow()
        where = (T.c.id == task_id, T.c.status == TaskStatus.running.value, T.c.attempt == attempt, expired(now))
        values = {"error_code": error_code, "error": clean_text(error)}
        return await self._end(TaskStatus.failed, event, where, values, now)

    async def mark_dispatched(self, task_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(update(T).where(T.c.id == task_id).values(dispatched_at=utcnow()))

    async def undispatched(self, older_than_s: float, limit: int = 100) -> list[TaskRecord]:
        since = utcnow() - timedelta(seconds=older_than_s)
        stmt = (
            select(*TASK_COLS)
            .where(T.c.status == TaskStatus.queued.value, func.coalesce(T.c.dispatched_at, T.c.created_at) < since)
            .order_by(T.c.num)
            .limit(max(limit, 0))
        )
        async with self._read() as conn:
            return [task_record(row) for row in await conn.execute(stmt)]

    async def finish_task(
        self,
        task_id: str,
        status: TaskStatus,
        event: EventInput,
        *,
        result: str | None = None,
        usage: dict[str, int] | None = None,
        error_code: str | None = None,
        error: str | None = None,
        output: dict[str, Any] | None = None,
        attempt: int | None = None,
    ) -> StoredEvent | None:
        status = TaskStatus(status)
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"finish_task needs a terminal status, not {status.value!r}")
        if event.type != f"task.{status.value}":
            raise ValueError(f"a {status.value} task ends with a 'task.{status.value}' event, not {event.type!r}")
        now = utcnow()
        values = {
            "result": clean_text(result),
            "usage": usage,
            "error_code": error_code,
            "error": clean_text(error),
            "output": clean_json(output),
        }
        where = [T.c.id == task_id, T.c.status.in_(ACTIVE)]
        if attempt is not None:
            where.append(T.c.attempt == attempt)
        stored = await self._end(status, event, tuple(where), values, now)
        if stored is None and attempt is not None:
            await self._check_lease(task_id, attempt)
        return stored

    async def _end(
        self, status: TaskStatus, event: EventInput, where: tuple[Any, ...], values: dict[str, Any], now: datetime
    ) -> StoredEvent | None:
        """Make the task matching ``where`` terminal with ``event``, in one transaction."""
        stmt = (
            update(T)
            .where(*where)
            .values(status=status.value, finished_at=now, last_seq=T.c.last_seq + 1, lease_expires_at=None, **values)
            .returning(T.c.id, T.c.last_seq, T.c.crew)
        )
        async with self._write(events=True) as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            (stored,) = await self._insert_events(conn, row.id, row.crew, row.last_seq, [event], now)
            await self._close_requests(conn, row.id)  # a waiting task ended otherwise (cancel, timeout)
        return stored

    async def _check_lease(self, task_id: str, attempt: int) -> None:
        """Raise ``LeaseLost`` if the task is active under another attempt than ``attempt``."""
        async with self._read() as conn:
            row = (await conn.execute(select(T.c.status, T.c.attempt).where(T.c.id == task_id))).first()
        if row is not None and row.status in ACTIVE and row.attempt != attempt:
            raise LeaseLost(task_id, attempt)

    async def request_cancel(self, task_id: str, reason: str) -> TaskRecord | None:
        now = utcnow()
        async with self._write(events=True) as conn:
            queued = (  # and waiting: no run holds either, so they end at once
                update(T)
                .where(T.c.id == task_id, T.c.status.in_((TaskStatus.queued.value, TaskStatus.waiting.value)))
                .values(
                    status=TaskStatus.cancelled.value, finished_at=now, cancel_requested=True, last_seq=T.c.last_seq + 1
                )
                .returning(*TASK_COLS)
            )
            row = (await conn.execute(queued)).first()
            if row is not None:
                cancelled = EventInput("task.cancelled", data={"reason": reason})
                await self._insert_events(conn, task_id, row.crew, row.last_seq, [cancelled], now)
                await self._close_requests(conn, task_id)
                return task_record(row)
            running = (
                update(T)
                .where(T.c.id == task_id, T.c.status == TaskStatus.running.value)
                .values(cancel_requested=True, cancel_reason=clean_text(reason))
                .returning(*TASK_COLS)
            )
            row = (await conn.execute(running)).first()
            if row is None:
                row = (await conn.execute(select(*TASK_COLS).where(T.c.id == task_id))).first()
        return task_record(row) if row is not None else None
