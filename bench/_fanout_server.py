"""The real gateway app under uvicorn, with an in-process emitter driven by stdin.

    python -m bench._fanout_server --port PORT [--ws-buffer 1000000] [--stall-timeout 3600]

Builds ``gateway.app.create_app(Settings(...))`` with a fresh SQLite database in a
temporary directory and the repository's ``configs/``, and serves it with uvicorn
exactly as ``crewgate serve`` does (``ws="websockets-sansio"``, the same ping
settings, uvicorn's default event loop). Prints ``ready PID`` once listening. Then,
one command per line on stdin:

- ``task`` — creates an ``incident_triage`` task through the store and claims it
  (``running``, as the runner does before a run; the runner only picks up queued
  tasks, so nothing but the emitter writes to it); prints ``task ID``;
- ``go N`` — appends N ``agent.log`` events to the last task, one
  ``EventLog.append`` call per event as the runner does, with data
  ``{"t": time.time(), "n": i, "pad": "x" * 200}``; then ``EventLog.finish``
  (completed, ``task.completed`` with ``{"t": ...}``); prints
  ``done FIRST_EMIT LAST_EMIT`` (``time.time()`` values);
- ``stats`` — prints ``stats {JSON}``: database connections opened, pool checkouts
  and SQL statements (by verb and table) since the last ``go``;
- ``quit`` or EOF — shuts the server down.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._watchers import raise_nofile

PROJECT = Path(__file__).resolve().parent.parent
PAD = "x" * 200


def writer(services: Any) -> tuple[str, Any, Any]:
    """How the runner writes events in this version of the gateway: through
    ``services.events`` (store + in-process tail + notify) when it exists, else
    ``store.append``/``finish_task`` followed by ``notifier.notify()``."""
    events = getattr(services, "events", None)
    if events is not None:
        return "EventLog", events.append, events.finish
    store, notifier = services.store, services.notifier

    async def append(task_id: str, batch: list[Any]) -> Any:
        stored = await store.append(task_id, batch)
        notifier.notify()
        return stored

    async def finish(task_id: str, status: Any, event: Any) -> Any:
        stored = await store.finish_task(task_id, status, event)
        notifier.notify()
        return stored

    return "store+notify", append, finish


async def emit(services: Any, task_id: str, n: int) -> tuple[float, float]:
    from gateway.store import EventInput, TaskStatus

    _, append, finish = writer(services)
    first = 0.0
    for i in range(n):
        t = time.time()
        if not first:
            first = t
        await append(task_id, [EventInput("agent.log", data={"t": t, "n": i, "pad": PAD})])
    t = time.time()
    first = first or t
    await finish(task_id, TaskStatus.completed, EventInput("task.completed", data={"t": t}))
    return first, time.time()


class DbCounters:
    """Counts what the store asks of the database (SQLAlchemy engine events; read-only)."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.counts: collections.Counter[str] = collections.Counter()
        sync = engine.sync_engine
        event.listen(sync, "connect", lambda *_: self.counts.update(["new_connections"]))
        event.listen(sync, "checkout", lambda *_: self.counts.update(["checkouts"]))
        event.listen(sync, "before_cursor_execute", self._statement)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        verb = words[0].upper() if words else "?"
        pairs = zip(words[1:], words[:-1], strict=True)
        table = next((w for w, prev in pairs if prev.upper() in ("FROM", "INTO", "UPDATE")), "")
        self.counts[f"sql {verb} {table}".strip()] += 1

    def take(self) -> dict[str, int]:
        out, self.counts = dict(self.counts), collections.Counter()
        return out


async def commands(server: Any, app: Any) -> None:
    loop = asyncio.get_running_loop()
    task_id: str | None = None
    counters: DbCounters | None = None
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if not line or line == "quit":
            break
        services = app.state.services
        if counters is None:
            counters = DbCounters(services.store.engine)
        if line == "writer":
            print(f"writer {writer(services)[0]}", flush=True)
        elif line == "stats":
            print(f"stats {json.dumps(counters.take())}", flush=True)
        elif line == "task":
            record, _ = await services.store.create_task(
                "incident_triage", {"service": "checkout", "note": "fan-out bench"}, services.configs.active.version
            )
            task_id = record.id
            # claimed (running) at once, as the runner would: the runner's queue poll only
            # picks up queued tasks, so nothing but the emitter writes to this one
            await services.store.claim_task(task_id)
            print(f"task {task_id}", flush=True)
        elif line.startswith("go "):
            if task_id is None:
                print("failed: no task", flush=True)
                continue
            counters.take()  # count the emission only
            try:
                first, last = await emit(services, task_id, int(line.split()[1]))
            except Exception as e:  # noqa: BLE001 - reported to the harness
                print(f"failed: emit: {e!r}", flush=True)
                continue
            print(f"done {first!r} {last!r}", flush=True)
        else:
            print(f"failed: unknown command {line!r}", flush=True)
    server.should_exit = True


async def serve(server: Any, app: Any) -> None:
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    print(f"ready {os.getpid()}", flush=True)
    control = asyncio.create_task(commands(server, app))
    await asyncio.wait({serving, control}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    await serving
    control.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ws-buffer", type=int, default=1_000_000)
    parser.add_argument("--stall-timeout", type=float, default=3600.0)
    args = parser.parse_args()
    raise_nofile()

    import uvicorn

    from gateway.app import create_app
    from gateway.logs import configure_logging
    from gateway.settings import Settings

    with tempfile.TemporaryDirectory(prefix="crewgate-fanout-") as tmp:
        roots = Path(tmp) / "roots"
        roots.mkdir()
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'crewgate.db'}",
            config_dir=PROJECT / "configs",
            allowed_roots=str(roots),
            reload=False,
            ws_buffer=args.ws_buffer,
            ws_stall_timeout_s=args.stall_timeout,
            log_level="WARNING",
            log_format="json",
        )
        configure_logging(settings.log_level, settings.log_format)  # stderr; stdout is the protocol
        app = create_app(settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=args.port,
            ws="websockets-sansio",
            log_level="warning",
            lifespan="on",
            log_config=None,
            ws_ping_interval=settings.ws_ping_interval_s,
            ws_ping_timeout=settings.ws_ping_interval_s,
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(serve(server, app))


if __name__ == "__main__":
    main()
