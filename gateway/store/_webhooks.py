"""The webhook half of the store: a cursor per task webhook over the task's event log.

The event log is the delivery queue: a hook's pending events are those after its
``delivered_seq`` whose type it asks for, so events written by any process (a worker,
another replica) are delivered, in log order, and nothing is lost across restarts. A
deliverer claims a cursor under a lease (``claim_webhooks``); every move of the cursor
is conditional on still holding it, and records the attempt in the same transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ._core import StoreCore, T, clean_text, utcnow
from ._types import CursorMove, DeliveryRecord, WebhookRecord, WebhookSpec
from .models import WebhookCursor, WebhookDelivery

__all__ = ["Webhooks", "insert_webhooks"]

W = cast(Table, WebhookCursor.__table__)
D = cast(Table, WebhookDelivery.__table__)
WEBHOOK_FIELDS = tuple(f.name for f in dataclasses.fields(WebhookRecord))
WEBHOOK_COLS = tuple(W.c[name] for name in WEBHOOK_FIELDS)
DELIVERY_FIELDS = tuple(f.name for f in dataclasses.fields(DeliveryRecord))
DELIVERY_COLS = tuple(D.c[name] for name in DELIVERY_FIELDS)


def webhook_record(row: Any) -> WebhookRecord:
    return WebhookRecord(**{name: row._mapping[name] for name in WEBHOOK_FIELDS})


def delivery_record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(**{name: row._mapping[name] for name in DELIVERY_FIELDS})


async def insert_webhooks(conn: AsyncConnection, task_id: str, hooks: list[WebhookSpec], now: datetime) -> None:
    """A cursor at seq 0 for each of ``hooks``: part of the transaction that creates the task."""
    if not hooks:
        return
    rows = [
        dict(
            id=str(uuid.uuid4()),
            task_id=task_id,
            source=hook.source,
            url=hook.url,
            events=list(hook.events),
            secret=hook.secret,
            secret_env=hook.secret_env,
            delivered_seq=0,
            state="active",
            attempt=0,
            created_at=now,
        )
        for hook in hooks
    ]
    await conn.execute(insert(W), rows)


class Webhooks(StoreCore):
    async def claim_webhooks(self, owner: str, lease_s: float, limit: int = 50) -> list[WebhookRecord]:
        if limit <= 0:
            return []
        now = utcnow()
        free = or_(W.c.lease_expires_at.is_(None), W.c.lease_expires_at < now)
        due = or_(W.c.next_attempt_at.is_(None), W.c.next_attempt_at <= now)
        pending = (
            select(W.c.id)
            .join(T, T.c.id == W.c.task_id)
            .where(W.c.state == "active", due, free, T.c.last_seq > W.c.delivered_seq)
            .order_by(W.c.next_attempt_at.is_not(None), W.c.created_at)
            .limit(limit)
        )
        async with self._read() as conn:
            ids = [row.id for row in await conn.execute(pending)]
        if not ids:
            return []
        # the lease condition again: of two processes claiming the same row, one wins
        claim = (
            update(W)
            .where(W.c.id.in_(ids), free)
            .values(lease_owner=owner[:200], lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(*WEBHOOK_COLS)
        )
        async with self._write() as conn:
            return [webhook_record(row) for row in await conn.execute(claim)]

    async def move_webhook(
        self, webhook_id: str, owner: str, move: CursorMove, delivery: DeliveryRecord | None = None
    ) -> bool:
        now = utcnow()
        values: dict[str, Any] = dict(
            delivered_seq=move.delivered_seq,
            state=move.state,
            attempt=move.attempt,
            first_failed_at=move.first_failed_at,
            next_attempt_at=move.next_attempt_at,
            lease_expires_at=now + timedelta(seconds=move.lease_s) if move.lease_s is not None else None,
        )
        if move.lease_s is None:
            values["lease_owner"] = None
        stmt = update(W).where(W.c.id == webhook_id, W.c.lease_owner == owner[:200]).values(**values)
        async with self._write() as conn:
            moved = (await conn.execute(stmt.returning(W.c.id))).first() is not None
            if moved and delivery is not None:
                row = dataclasses.asdict(delivery)
                del row["id"]
                row["error"] = clean_text(row["error"])
                await conn.execute(insert(D).values(**row))
        return moved

    async def release_webhooks(self, owner: str) -> int:
        stmt = (
            update(W)
            .where(W.c.lease_owner == owner[:200])
            .values(lease_owner=None, lease_expires_at=None)
            .returning(W.c.id)
        )
        async with self._write() as conn:
            return len((await conn.execute(stmt)).all())

    async def webhooks_for_task(self, task_id: str) -> list[WebhookRecord]:
        stmt = select(*WEBHOOK_COLS).where(W.c.task_id == task_id).order_by(W.c.created_at, W.c.id)
        async with self._read() as conn:
            return [webhook_record(row) for row in await conn.execute(stmt)]

    async def webhook_deliveries(self, task_id: str, limit: int = 500) -> list[DeliveryRecord]:
        stmt = select(*DELIVERY_COLS).where(D.c.task_id == task_id).order_by(D.c.id).limit(max(limit, 0))
        async with self._read() as conn:
            return [delivery_record(row) for row in await conn.execute(stmt)]
