"""Database fixtures shared by the store and streaming tests: SQLite (a temp file) and PostgreSQL.

PostgreSQL tests use a fresh database per session on ``CREWGATE_TEST_POSTGRES_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``, the admin connection used to
create and drop it). If PostgreSQL is not reachable they are skipped, and the run says so
in one line; with ``CI`` set or ``CREWGATE_TEST_REQUIRE=postgres`` they fail instead
(see ``tests/support/services.py``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gateway.store import open_store
from tests.support.services import require_service

PG_ADMIN_URL = os.environ.get("CREWGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgresql"]


PG_HOW_TO = (
    "start PostgreSQL, or set CREWGATE_TEST_POSTGRES_URL to an admin connection that may create databases "
    "(default postgresql://postgres@127.0.0.1:5432/postgres)"
)


def _admin(sql: str, timeout: float = 5) -> None:
    """Run one statement on the PostgreSQL admin database, from a thread with its own loop."""

    async def run() -> None:
        conn = await asyncpg.connect(
            make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(False), timeout=timeout
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def _probe_postgres() -> str | None:
    """None when the admin connection answers within a short timeout, else why not."""
    try:
        _admin("SELECT 1", timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        shown = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
        return f"not reachable at {shown} ({type(exc).__name__}: {exc})"
    return None


def _new_pg_database() -> tuple[str, str]:
    require_service("postgres", _probe_postgres, PG_HOW_TO)
    name = f"crewgate_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return name, url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url():
    name, url = _new_pg_database()
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/var/crewgate.db"
    return request.getfixturevalue("pg_url")


_migrated: set[str] = set()


@pytest.fixture
async def store(store_url: str):
    s = open_store(store_url)
    if store_url not in _migrated:
        await s.migrate()
        _migrated.add(store_url)
    if s.dialect == "postgresql":  # one database per session: start each test empty
        async with s.engine.begin() as conn:
            await conn.execute(
                text(
                    "TRUNCATE api_keys, webhook_deliveries, webhook_cursors, input_requests, events, tasks, "
                    "config_versions RESTART IDENTITY"
                )
            )
    yield s
    await s.close()


@pytest.fixture(params=BACKENDS)
def fresh_url(request, tmp_path: Path):
    """An empty, never-migrated database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/fresh/new.db"
        return
    name, url = _new_pg_database()
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
