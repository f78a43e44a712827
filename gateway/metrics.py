"""Prometheus metrics: every metric object in one place, what records them, and the scrape.

Metric objects live here and nowhere else; a part of the gateway that counts something
imports its metric from this module (add new ones below, named ``crewgate_…``, with
labels whose values are bounded: crew, agent, step, model, status, kind; never a task
id or a raw path). Record only when ``enabled()``: ``CREWGATE_METRICS=false`` turns
every recording into a no-op and ``GET /metrics`` into a 404.

Several processes (uvicorn workers, Celery pool processes): prometheus-client's
multiprocess mode, chosen by the library itself when ``PROMETHEUS_MULTIPROC_DIR`` is
set before it is imported. Each process then writes its values to files in that
directory and ``GET /metrics`` sums them (``MultiProcessCollector``). Counters and
histograms are summed; the watcher gauge is ``livesum`` (processes that exited are
left out once ``mark_process_dead`` ran for them).

The task gauges (queued, running, waiting) are not kept by any process: they are read
from the store when ``/metrics`` is scraped, with one grouped query, cached for
``STORE_TTL_S`` so scrapes from several Prometheus servers cost one query.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric

__all__ = [
    "CONTENT_TYPE_LATEST",
    "EVENT_LAG",
    "HTTP_DURATION",
    "HTTP_REQUESTS",
    "LLM_CALLS",
    "LLM_COST",
    "LLM_TOKENS",
    "STEP_DURATION",
    "TASKS",
    "TASK_DURATION",
    "TOOL_CALLS",
    "WATCHERS",
    "Watcher",
    "HttpMetrics",
    "Scrape",
    "configure",
    "enabled",
    "mark_dead",
    "multiprocess_mode",
    "serve_multiprocess",
    "watching",
]

# the *_created series double the output and nobody here reads them
disable_created_metrics()  # type: ignore[no-untyped-call]
STORE_TTL_S = 1.0
log = structlog.get_logger("crewgate.metrics")
ACTIVE_STATUSES = ("queued", "running", "waiting")
# seconds: a request is milliseconds, a crew minutes
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)

# HTTP (gateway processes). ``route`` is the route's template (/v1/tasks/{task_id}), never the path.
HTTP_REQUESTS = Counter(
    "crewgate_http_requests_total", "HTTP requests answered, by route template", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "crewgate_http_request_duration_seconds",
    "time from a request's arrival to its last response byte (an SSE stream: its whole life)",
    ["route", "method"],
    buckets=_FAST,
)
# tasks: counted where their terminal event is committed (the runner's process; a gateway for
# a task cancelled while queued or waiting, or ended by recovery)
TASKS = Counter("crewgate_tasks_total", "tasks that reached a terminal status", ["crew", "status"])
TASK_DURATION = Histogram(
    "crewgate_task_duration_seconds",
    "running time of the run that ended a task (a resumed task: its last run), by terminal status",
    ["crew", "status"],
    buckets=_SLOW,
)
STEP_DURATION = Histogram(
    "crewgate_step_duration_seconds", "step.started to step.completed", ["crew", "step"], buckets=_SLOW
)
LLM_CALLS = Counter("crewgate_llm_calls_total", "model calls completed", ["crew", "agent", "model"])
LLM_TOKENS = Counter("crewgate_llm_tokens_total", "tokens reported by model calls", ["crew", "agent", "model", "kind"])
LLM_COST = Counter(
    "crewgate_llm_cost_usd_total",
    "estimated cost of model calls, from the profile's price_per_1m_*_tokens (0 when unset)",
    ["crew", "agent", "model"],
)
TOOL_CALLS = Counter("crewgate_tool_calls_total", "tool calls, by outcome", ["crew", "tool", "outcome"])
# watchers (gateway processes)
WATCHERS = Gauge("crewgate_watchers", "open event streams, by kind", ["kind"], multiprocess_mode="livesum")
EVENT_LAG = Histogram(
    "crewgate_event_delivery_lag_seconds",
    "an event's ts to its frame sent, for events appended while the watcher was open",
    ["kind"],
    buckets=_FAST,
)

WEBHOOK_DELIVERIES = Counter(
    "crewgate_webhook_deliveries_total",
    "webhook delivery attempts, by outcome (delivered, retrying, failed) and event type",
    ["status", "event_type"],
)
WEBHOOK_DURATION = Histogram(
    "crewgate_webhook_delivery_duration_seconds", "one webhook delivery attempt, answer or failure", buckets=_FAST
)

_enabled = True


def configure(on: bool) -> None:
    """``CREWGATE_METRICS``: off, nothing is recorded (for this process)."""
    global _enabled
    _enabled = on


def enabled() -> bool:
    return _enabled


def multiprocess_mode() -> bool:
    """True when prometheus-client writes to ``PROMETHEUS_MULTIPROC_DIR`` (decided at its import)."""
    return values.ValueClass is not values.MutexValue


def mark_dead(pid: int | None = None) -> None:
    """A process that exits drops out of the ``livesum`` gauges (multiprocess mode only)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


class Watcher:
    """Counts one open stream; observes the lag of events appended after it opened."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.opened = time.time()

    def sent(self, ts: float) -> None:
        if _enabled and ts >= self.opened:
            EVENT_LAG.labels(self.kind).observe(max(time.time() - ts, 0.0))


class watching:  # noqa: N801 - used as a context manager, like contextlib's
    """``with watching("websocket") as w: … w.sent(event.ts.timestamp())``."""

    def __init__(self, kind: str) -> None:
        self.watcher = Watcher(kind)

    def __enter__(self) -> Watcher:
        if _enabled:
            WATCHERS.labels(self.watcher.kind).inc()
        return self.watcher

    def __exit__(self, *_: object) -> None:
        if _enabled:
            WATCHERS.labels(self.watcher.kind).dec()


def task_ended(crew: str, status: str) -> None:
    if _enabled:
        TASKS.labels(crew, status).inc()


# HTTP


def _route_of(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class HttpMetrics:
    """ASGI middleware: counts each HTTP request by route template, method and status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not _enabled:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # what the client gets when the app raises

        async def counted_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted_send)
        finally:
            route, method = _route_of(scope), scope.get("method", "")
            HTTP_REQUESTS.labels(route, method, str(status[0])).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


# the scrape

ActiveCounts = Callable[[], Awaitable[dict[tuple[str, str], int]]]


class _StoreGauges:
    """``crewgate_tasks_active{crew,status}`` from the last store read."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.crews: Iterable[str] = ()

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "crewgate_tasks_active",
            "tasks queued (the queue depth), running or waiting for a person, read from the store at scrape time",
            labels=["crew", "status"],
        )
        crews = sorted({c for c, _ in self.counts} | set(self.crews))
        for crew in crews:
            for status in ACTIVE_STATUSES:
                family.add_metric([crew, status], self.counts.get((crew, status), 0))
        yield family


class _Default:
    """This process's own metrics (the default registry), beside the store gauges."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def serve_multiprocess(port: int, host: str) -> None:
    """An HTTP server on a thread (``crewgate worker --metrics-port``): the metrics of every
    process writing to ``PROMETHEUS_MULTIPROC_DIR``, this worker's pool processes."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)


class Scrape:
    """What ``GET /metrics`` answers, for one gateway."""

    def __init__(self, active_counts: ActiveCounts, crews: Callable[[], Iterable[str]]) -> None:
        self._active_counts = active_counts
        self._crews = crews
        self._gauges = _StoreGauges()
        self._read_at = -STORE_TTL_S
        self._lock = asyncio.Lock()
        self._render_lock = threading.Lock()
        self.registry = CollectorRegistry(auto_describe=False)
        if multiprocess_mode():
            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        else:
            self.registry.register(_Default())
        self.registry.register(self._gauges)

    async def _refresh(self) -> None:
        async with self._lock:  # concurrent scrapes share one read
            if time.monotonic() - self._read_at < STORE_TTL_S:
                return
            self._read_at = time.monotonic()  # a failed read is tried again a second later, not per scrape
            self._gauges.crews = tuple(self._crews())
            try:
                self._gauges.counts = await self._active_counts()
            except Exception as exc:  # the process's own metrics are still worth answering with
                log.warning("reading the task gauges failed; the last values are shown", error=str(exc)[:300])

    async def render(self) -> bytes:
        await self._refresh()
        return await asyncio.to_thread(self._render)

    def _render(self) -> bytes:
        with self._render_lock:
            return generate_latest(self.registry)
