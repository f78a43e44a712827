"""The task store and event log: one SQLAlchemy implementation for SQLite and PostgreSQL.

store = open_store(settings.database_url)
await store.migrate()
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from ._core import UNSTORABLE, storable
from ._types import (
    TERMINAL_STATUSES,
    ApiKeyRecord,
    CursorMove,
    DeliveryRecord,
    EventInput,
    IdempotencyConflict,
    InputRequestRecord,
    LeaseLost,
    Store,
    StoredEvent,
    StoreUnavailable,
    TaskRecord,
    TaskStatus,
    WebhookRecord,
    WebhookSpec,
)
from .sql import SqlStore

__all__ = [
    "TERMINAL_STATUSES",
    "UNSTORABLE",
    "ApiKeyRecord",
    "EventInput",
    "IdempotencyConflict",
    "InputRequestRecord",
    "LeaseLost",
    "SqlStore",
    "Store",
    "StoredEvent",
    "StoreUnavailable",
    "TaskRecord",
    "TaskStatus",
    "CursorMove",
    "DeliveryRecord",
    "WebhookRecord",
    "WebhookSpec",
    "open_store",
    "storable",
]


def open_store(url: str | URL, *, pool_size: int = 5) -> SqlStore:
    """A store for an async SQLAlchemy URL (``sqlite+aiosqlite:///path.db`` creates the
    parent directory; ``postgresql+asyncpg://user@host/db``). Call ``await store.migrate()``
    before use. Nothing connects until the first call."""
    return SqlStore(url, pool_size=pool_size)
