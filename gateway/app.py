"""The FastAPI application and its lifespan: store, configs, runner, reload watcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway import metrics
from gateway.api.deps import Services
from gateway.api.errors import error_body, install_error_handlers
from gateway.api.main import api_router
from gateway.api.openapi import install_openapi
from gateway.api.ratelimit import LimitHeaders
from gateway.configs import ConfigManager
from gateway.dispatch import open_dispatcher
from gateway.eventlog import EventLog
from gateway.ratelimits import Limits
from gateway.settings import Settings, get_settings
from gateway.store import Store, open_store
from gateway.tracing import setup_tracing, shutdown_tracing
from gateway.ui import install_ui
from gateway.wakeups import open_wakeups
from gateway.webhooks.delivery import WebhookDeliverer

__all__ = ["BoundedHttpProtocol", "BoundedWebSocketProtocol", "RedactSecrets", "bounded_http_protocol", "create_app"]

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


class RedactSecrets(logging.Filter):
    """Blanks ``token=`` values in log lines: uvicorn logs each request and WebSocket with
    its query string, and a WebSocket carries its API key there."""

    _TOKEN = re.compile(r"(?i)([?&;](?:access_)?token=)[^&#\s\"']*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._TOKEN.sub(r"\1[redacted]", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._TOKEN.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args)
        return True

    @classmethod
    def install(cls) -> None:
        """On the loggers uvicorn writes request lines to (access) and WebSocket lines to (error)."""
        for name in ("uvicorn.access", "uvicorn.error"):
            logger = logging.getLogger(name)
            if not any(isinstance(f, cls) for f in logger.filters):
                logger.addFilter(cls())


class BoundedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, answering handshakes it cannot parse.

    websockets refuses a request line or header over its limits (8 KiB a line, 128
    headers) and queues a 414/431 answer, but uvicorn never sends it nor closes: each
    such connection was held open for good. Here the answer is sent and the connection closed.
    """

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.handshake_exc is not None and not self.handshake_complete:
            log.info("websocket handshake refused", reason=str(self.conn.handshake_exc)[:200])
            self.handshake_complete = True
            self.transport.write(b"".join(self.conn.data_to_send()))
            self.transport.close()


class _HeadTooLarge(Exception):
    """Raised in a parser callback: httptools reports it, and uvicorn answers 400 and closes."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a bound on each request head: its size and the time it
    may take to arrive. uvicorn has neither, so a client sending a head slowly, or an
    endless one, held a connection (and a file descriptor) for as long as it liked; every
    WebSocket handshake is such a head before it reaches the app and its auth."""

    head_timeout_s: float = 10.0
    max_head_bytes: int = 65_536

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        super().connection_made(transport)
        self._start_head_timer()

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            log.info("request head too slow; connection closed", client=self.client, limit_s=self.head_timeout_s)
            self.transport.close()

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self.max_head_bytes:
            raise _HeadTooLarge(f"request head is larger than {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head_timer()  # a keep-alive connection's next request

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)


def bounded_http_protocol(settings: Settings) -> type[BoundedHttpProtocol]:
    """The HTTP protocol class for uvicorn, with this gateway's limits."""
    limits = {"head_timeout_s": settings.request_head_timeout_s, "max_head_bytes": settings.max_request_head_bytes}
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), limits)


def _start_webhooks(settings: Settings, events: EventLog) -> asyncio.Task[None] | None:
    """The webhook deliverer of this process (``CREWGATE_WEBHOOK_DELIVER``), woken by appends."""
    if not settings.webhook_deliver:
        return None
    deliverer = WebhookDeliverer(settings, events.store)
    events.wakeups.subscribe(deliverer.on_signals)
    return asyncio.create_task(deliverer.run(), name="webhooks")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_store(settings.database_url)
        await store.migrate()
        configs = ConfigManager.from_settings(settings, store)
        await configs.load()
        wakeups = open_wakeups(settings)
        await wakeups.start()
        events = EventLog(store, wakeups=wakeups)
        dispatcher = open_dispatcher(settings, configs, events)
        app.state.services = Services(settings, store, configs, dispatcher, events)
        app.state.limits = limits = Limits(settings)
        await limits.start()
        app.state.scrape = _scrape(store, configs)
        setup_tracing(settings.otel_endpoint)
        await dispatcher.start()
        stop = asyncio.Event()
        heads = asyncio.create_task(events.heads.run(settings.poll_interval_s), name="heads-poll")
        watcher = asyncio.create_task(configs.watch(stop)) if settings.reload else None
        hooks = _start_webhooks(settings, events)
        log.info(
            "gateway ready",
            config_version=configs.active.version if configs.active else None,
            database=settings.database_url.split("://", 1)[0],
            dispatcher=dispatcher.status(),
            wakeups=wakeups.status()["kind"],
        )
        try:
            yield
        finally:
            stop.set()
            for loop_task in (heads, watcher, hooks):
                if loop_task is not None:
                    loop_task.cancel()
            await asyncio.gather(*(t for t in (heads, watcher, hooks) if t is not None), return_exceptions=True)
            await limits.close()
            await dispatcher.stop()
            shutdown_tracing()
            metrics.mark_dead()  # multiprocess mode: this process's watchers leave the sums
            await wakeups.close()
            await configs.close()
            await store.close()

    # /docs and /redoc from assets installed with the package: they work with no network
    app = FastAPIOffline(
        title="crewgate",
        version="0.1.0",
        summary="Runs CrewAI crews defined in YAML and streams what every agent does.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
    )
    install_error_handlers(app)
    app.include_router(api_router)
    metrics.configure(settings.metrics)
    if settings.metrics:
        app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    install_openapi(app, settings)
    install_ui(app)
    RedactSecrets.install()
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(LimitHeaders)
    if settings.metrics:
        app.add_middleware(metrics.HttpMetrics)  # outermost: it sees every answer, a 413 too
    return app


def _scrape(store: Store, configs: ConfigManager) -> metrics.Scrape:
    return metrics.Scrape(store.active_counts, lambda: sorted(configs.active.crews) if configs.active else [])


async def _metrics(request: Request) -> Response:
    """Prometheus text format: this process's metrics (all processes' in multiprocess mode)
    and the task gauges read from the store."""
    scrape: metrics.Scrape = request.app.state.scrape
    return Response(await scrape.render(), media_type=metrics.CONTENT_TYPE_LATEST)
