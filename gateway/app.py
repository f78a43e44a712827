"""The FastAPI application and its lifespan: store, configs, runner, reload watcher."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.deps import Services
from gateway.api.errors import error_body, install_error_handlers
from gateway.api.main import api_router
from gateway.configs import ConfigManager
from gateway.eventlog import EventLog
from gateway.runner import Runner
from gateway.settings import Settings, get_settings
from gateway.store import open_store

__all__ = ["create_app"]

log = structlog.get_logger("crewgate.app")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, declared or streamed."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # raised while the route reads its body: the HTTP error handler answers 413
                    raise StarletteHTTPException(413, f"request body is larger than {self.limit} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _too_large(self, send: Any) -> None:
        import json

        body = json.dumps(error_body("request_too_large", f"request body is larger than {self.limit} bytes")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.database_url)
        await store.migrate()
        configs = ConfigManager.from_settings(settings, store)
        await configs.load()
        events = EventLog(store)
        runner = Runner(store, configs, settings, events)
        app.state.services = Services(settings, store, configs, runner, events)
        await runner.start()
        stop = asyncio.Event()
        heads = asyncio.create_task(events.heads.run(settings.poll_interval_s), name="heads-poll")
        watcher = asyncio.create_task(configs.watch(stop)) if settings.reload else None
        log.info(
            "gateway ready",
            config_version=configs.active.version if configs.active else None,
            database=settings.database_url.split("://", 1)[0],
            max_concurrency=settings.max_concurrency,
        )
        try:
            yield
        finally:
            stop.set()
            for loop_task in (heads, watcher):
                if loop_task is not None:
                    loop_task.cancel()
            await asyncio.gather(*(t for t in (heads, watcher) if t is not None), return_exceptions=True)
            await runner.stop()
            await configs.close()
            await store.close()

    app = FastAPI(
        title="crewgate",
        version="0.1.0",
        summary="Runs CrewAI crews defined in YAML and streams what every agent does.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(api_router)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    return app
