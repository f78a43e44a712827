"""Engine set-up for the two supported databases, and the programmatic Alembic upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:  # alembic is imported when a migration runs, not with the store
    from alembic.config import Config

__all__ = ["MIGRATIONS_DIR", "alembic_config", "make_engine", "normalize_url", "upgrade_to_head"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Per connection. WAL is a property of the database file: SqlStore.migrate switches it on once.
SQLITE_PRAGMAS = ("busy_timeout=5000", "synchronous=NORMAL", "foreign_keys=ON")


def normalize_url(url: str | URL) -> URL:
    """The async-driver form of ``url``; plain ``sqlite://`` / ``postgresql://`` get their async driver."""
    u = make_url(url)
    backend, driver = u.get_backend_name(), u.get_driver_name()
    if backend == "sqlite":
        if driver != "aiosqlite":
            u = u.set(drivername="sqlite+aiosqlite")
        if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
            raise ValueError("the store needs an SQLite file path, e.g. sqlite+aiosqlite:///var/crewgate.db")
    elif backend == "postgresql":
        if driver != "asyncpg":
            u = u.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(
            f"unsupported database URL {u.render_as_string()!r}: use sqlite+aiosqlite or postgresql+asyncpg"
        )
    return u


def make_engine(url: str | URL, *, pool_size: int = 5, echo: bool = False) -> AsyncEngine:
    u = normalize_url(url)
    if u.get_backend_name() == "sqlite":
        if sqlite3.sqlite_version_info < (3, 35):
            raise RuntimeError(f"SQLite {sqlite3.sqlite_version} is too old: the store needs 3.35+ (RETURNING)")
        assert u.database  # normalize_url refuses an SQLite URL without a file path
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        # Reset (ROLLBACK) on check-in only when a transaction is open: see _on_reset.
        engine = create_async_engine(
            u, pool_size=pool_size, max_overflow=pool_size, pool_reset_on_return=None, echo=echo
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_async_engine(u, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True, echo=echo)


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(f"PRAGMA {pragma}")
        finally:
            cursor.close()
        # The sqlite3 module opens a transaction with "BEGIN IMMEDIATE" just before the first
        # INSERT/UPDATE/DELETE, inside that statement's own call (no extra round trip to the
        # aiosqlite thread). So a writer takes the write lock up front, waiting up to
        # busy_timeout, and never fails half-way upgrading a read lock; plain SELECTs run
        # outside any transaction and, in WAL, neither block nor are blocked. Every write
        # path starts with DML; ``SqlStore.migrate`` says BEGIN IMMEDIATE itself.
        dbapi_connection.isolation_level = "IMMEDIATE"

    @event.listens_for(engine.sync_engine, "reset")
    def _on_reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # Reads never open a transaction, so the usual unconditional ROLLBACK would cost a
        # round trip to the aiosqlite thread on every check-in for nothing.
        if dbapi_connection.driver_connection.in_transaction:
            dbapi_connection.rollback()


def alembic_config(url: str | URL) -> Config:
    """An Alembic config for the shipped migrations (no alembic.ini needed), e.g. to write
    the next revision: ``command.revision(alembic_config(url), "add x", autogenerate=True)``.
    Without a connection in ``cfg.attributes`` env.py opens its own async engine."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    u = normalize_url(url)
    cfg.set_main_option("sqlalchemy.url", u.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def upgrade_to_head(connection: Connection, url: URL) -> None:
    """Alembic ``upgrade head`` on an open (sync-facing) connection; a no-op when up to date."""
    from alembic import command

    cfg = alembic_config(url)
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
