"""Plumbing shared by the store's parts: tables, row mapping, the write transaction."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ._engine import make_engine
from ._types import TERMINAL_STATUSES, EventInput, StoredEvent, StoreUnavailable, TaskRecord, TaskStatus
from .models import ConfigVersion, Event, InputRequest, Task

# Declarative models type __table__ as FromClause; these are the mapped Tables.
T = cast(Table, Task.__table__)
R = cast(Table, InputRequest.__table__)
E = cast(Table, Event.__table__)
C = cast(Table, ConfigVersion.__table__)

ACTIVE = (TaskStatus.queued.value, TaskStatus.running.value, TaskStatus.waiting.value)
TERMINAL_EVENT_TYPES = frozenset(f"task.{s.value}" for s in TERMINAL_STATUSES)
MAX_KEY_LEN = 255

# pg_advisory_xact_lock keys (arbitrary constants, "crewgate" in spirit).
EVENTS_LOCK = text("SELECT pg_advisory_xact_lock(7301415234001)")
MIGRATE_LOCK = text("SELECT pg_advisory_xact_lock(7301415234002)")

TASK_FIELDS = tuple(f.name for f in dataclasses.fields(TaskRecord))
TASK_COLS = tuple(T.c[name] for name in TASK_FIELDS)
EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(StoredEvent))
EVENT_COLS = tuple(E.c[name] for name in EVENT_FIELDS)

INSERT_EVENT = insert(E)
INSERT_EVENTS = insert(E).returning(E.c.id, E.c.task_id, E.c.seq, sort_by_parameter_order=True)


# What the database (or the way to it) failing looks like, as opposed to a bad statement.
# SQLite reports disk full, I/O errors and "database is locked" as OperationalError; the
# drivers raise OSError (refused, reset) and their own errors while connecting.
UNAVAILABLE_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    OSError,  # includes ConnectionError and TimeoutError
)
MAX_REASON = 300


def unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database cannot be reached or written right now."""
    if isinstance(error, (StoreUnavailable, *UNAVAILABLE_ERRORS)):
        return True
    # No statement: it came from connecting, committing or rolling back (asyncpg's "not
    # accepting connections", say), not from anything the store asked for.
    return isinstance(error, sa_exc.DBAPIError) and (error.connection_invalidated or error.statement is None)


def reason(error: BaseException) -> str:
    """A short, single-line account of a database failure, without SQL or parameters."""
    if isinstance(error, StoreUnavailable):
        return str(error)
    inner = error.orig if isinstance(error, sa_exc.DBAPIError) and error.orig is not None else error
    text_ = " ".join(str(inner).split()) or type(inner).__name__
    return f"{type(inner).__name__}: {text_}"[:MAX_REASON]


def utcnow() -> datetime:
    return datetime.now(UTC)


# what cannot be encoded as UTF-8 (a lone UTF-16 surrogate) or kept in a PostgreSQL text (NUL)
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable_text(text: str) -> str:
    if not UNSTORABLE.search(text):
        return text
    # a surrogate pair that arrived as two code points is joined; a lone half becomes U+FFFD
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", "\ufffd")


def storable(value: Any) -> Any:
    """``value`` with every string (keys too) made storable and sendable, as near the original
    as possible. Text from tools and models is bytes from outside: one bad character in an
    event must not make the event, or every stream that reaches it, fail to encode."""
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


def clean_text(value: str | None) -> str | None:
    """Text the store can keep: PostgreSQL text cannot hold NUL, and no database can send a lone surrogate."""
    return _storable_text(value) if value else value


clean_json = storable  # the same for every string inside a JSON value (keys too)


def task_record(row: Any) -> TaskRecord:
    m: Mapping[str, Any] = row._mapping
    values = {name: m[name] for name in TASK_FIELDS}
    values["status"] = TaskStatus(values["status"])
    values["cancel_requested"] = bool(values["cancel_requested"])
    return TaskRecord(**values)


def stored_event(row: Any) -> StoredEvent:
    return StoredEvent(**{name: row._mapping[name] for name in EVENT_FIELDS})


class StoreCore:
    """Engine, connections and the write transaction; shared by the event log and the task store."""

    def __init__(self, url: str | URL, *, pool_size: int = 5, echo: bool = False) -> None:
        self._engine = make_engine(url, pool_size=pool_size, echo=echo)
        self._sqlite = self._engine.dialect.name == "sqlite"
        # PostgreSQL reads skip BEGIN/COMMIT; SQLite reads are outside transactions anyway.
        self._reader = self._engine if self._sqlite else self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._write_lock = asyncio.Lock()
        self.write_failure: str | None = None  # why the last write failed, until one succeeds

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; the database failing surfaces as ``StoreUnavailable``."""
        try:
            async with self._reader.connect() as conn:
                yield conn
        except Exception as exc:
            if unavailable(exc) and not isinstance(exc, StoreUnavailable):
                raise StoreUnavailable(f"the store cannot be read: {reason(exc)}") from exc
            raise

    @asynccontextmanager
    async def _write(self, *, events: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction; the database failing surfaces as ``StoreUnavailable`` and is
        remembered in ``write_failure`` until a write commits (readiness reads it)."""
        try:
            async with self._transaction(events=events) as conn:
                yield conn
        except Exception as exc:
            if not unavailable(exc):
                raise
            self.write_failure = reason(exc)
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(f"the store cannot take writes: {self.write_failure}") from exc
        self.write_failure = None

    @asynccontextmanager
    async def _transaction(self, *, events: bool = False) -> AsyncIterator[AsyncConnection]:
        """A write transaction. ``events``: it inserts events, so it must commit in id order.

        SQLite: one writer at a time anyway (BEGIN IMMEDIATE); the lock makes this process's
        writers queue here instead of sleeping in busy_timeout. PostgreSQL: the advisory lock
        orders event writers across processes; the local lock keeps waiting writers from
        each holding a pooled connection (which readers need) while they wait.
        """
        if self._sqlite:
            async with self._write_lock, self._engine.begin() as conn:
                yield conn
        elif events:
            async with self._write_lock, self._engine.begin() as conn:
                await conn.execute(EVENTS_LOCK)
                yield conn
        else:
            async with self._engine.begin() as conn:
                yield conn

    @staticmethod
    async def _insert_events(
        conn: AsyncConnection, task_id: str, crew: str, last_seq: int, events: Sequence[EventInput], ts: datetime
    ) -> list[StoredEvent]:
        rows = event_rows(task_id, crew, last_seq - len(events) + 1, events, ts)
        ids = await insert_event_rows(conn, rows)
        return [StoredEvent(id=ids[(task_id, r["seq"])], **r) for r in rows]


def event_rows(
    task_id: str, crew: str, first_seq: int, events: Sequence[EventInput], ts: datetime
) -> list[dict[str, Any]]:
    return [
        dict(
            task_id=task_id,
            crew=crew,
            seq=first_seq + i,
            ts=ts,
            type=ev.type,
            agent=ev.agent,
            step=ev.step,
            data=ev.data,
        )
        for i, ev in enumerate(events)
    ]


async def insert_event_rows(conn: AsyncConnection, rows: list[dict[str, Any]]) -> dict[tuple[str, int], int]:
    """Insert ``rows`` in order (ids increase along the list); their ids by (task_id, seq)."""
    if not rows:
        return {}
    if len(rows) == 1:  # the common case; SQLite then needs no RETURNING round trip (lastrowid)
        row = rows[0]
        key = (await conn.execute(INSERT_EVENT, row)).inserted_primary_key
        assert key is not None  # a single-row INSERT always reports its primary key
        return {(row["task_id"], row["seq"]): key[0]}
    # one cached statement, sent as an executemany ("insertmanyvalues" batches), RETURNING in row order
    result = await conn.execute(INSERT_EVENTS, rows)
    return {(task_id, seq): id_ for id_, task_id, seq in result}
