"""The gateway app in this process: ``create_app(settings)`` with its lifespan, behind httpx.

For routes that need no separate process (no kill -9, replicas or WebSockets): the real app,
store, runner and config watcher, without a server start and a fresh CrewAI import per test.
``httpx.ASGITransport`` does not run the lifespan, so this enters it around the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

from gateway.app import create_app
from gateway.settings import Settings

__all__ = ["app_client", "eventually", "inprocess_settings"]

T = TypeVar("T")


def inprocess_settings(workdir: Path, *, config_dir: Path, roots: Path, **overrides: Any) -> Settings:
    """Settings like ``tests.support.gateway.Gateway`` gives its process: own SQLite file, configs, roots."""
    workdir.mkdir(parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{workdir / 'crewgate.db'}",
        "config_dir": config_dir,
        "allowed_roots": str(roots),
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the app, started (store migrated, runner and watcher running) and stopped around it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://crewgate.test", timeout=30) as client:
            yield client


async def eventually(probe: Callable[[], Awaitable[T]], timeout: float = 60, interval: float = 0.05) -> T:
    """The first truthy value of ``probe()``, polled until ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s")
