"""The API-key half of the store: keys are kept as a hash of their secret, never the secret."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, or_, select, update

from ._core import StoreCore, utcnow
from ._types import ApiKeyRecord
from .models import ApiKey

__all__ = ["ApiKeys"]

K = cast(Table, ApiKey.__table__)
KEY_FIELDS = tuple(f.name for f in dataclasses.fields(ApiKeyRecord))
KEY_COLS = tuple(K.c[name] for name in KEY_FIELDS)


def key_record(row: Any) -> ApiKeyRecord:
    values = {name: row._mapping[name] for name in KEY_FIELDS}
    values["scopes"] = list(values["scopes"] or [])
    return ApiKeyRecord(**values)


class ApiKeys(StoreCore):
    async def create_key(self, key: ApiKeyRecord) -> None:
        async with self._write() as conn:
            await conn.execute(insert(K).values(**dataclasses.asdict(key)))

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(*KEY_COLS).where(K.c.id == key_id))).first()
        return key_record(row) if row is not None else None

    async def list_keys(self) -> list[ApiKeyRecord]:
        async with self._read() as conn:
            return [key_record(row) for row in await conn.execute(select(*KEY_COLS).order_by(K.c.created_at, K.c.id))]

    async def revoke_key(self, key_id: str) -> ApiKeyRecord | None:
        stmt = update(K).where(K.c.id == key_id, K.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        async with self._write() as conn:
            await conn.execute(stmt)
        return await self.get_key(key_id)

    async def touch_key(self, key_id: str, *, every_s: float = 60.0) -> None:
        now = utcnow()
        stale = or_(K.c.last_used_at.is_(None), K.c.last_used_at < now - timedelta(seconds=every_s))
        async with self._write() as conn:
            await conn.execute(update(K).where(K.c.id == key_id, stale).values(last_used_at=now))

    async def any_keys(self) -> bool:
        async with self._read() as conn:
            return bool((await conn.execute(select(func.count()).select_from(K))).scalar())
