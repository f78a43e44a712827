"""Scale-out: crews on Celery worker processes against crews in the gateway.

    python -m bench.run --only scaleout [--quick]      (or: python -m bench.scaleout [--quick])

1. 50 concurrent tasks (overhead.py's crew: 3 model calls of 200 ms to a scripted
   model), wall time from the first submit to the last terminal event, against one
   task alone on the same setup: embedded (max_concurrency = 50) and Celery with a
   ``crewgate worker --concurrency N`` of 1, 2 and 4 pool processes. A pool process
   runs one crew at a time, so N processes need ~50 / N rounds: that is the design,
   and the rows say so. Each setup also gets a "wall ÷ CPU floor" row: the CPU
   seconds all its processes used (gateway, worker and its pool processes, the
   PostgreSQL backends serving its database) divided by the cores, the shortest wall
   time the machine could do that work in.
2. Emit → watcher latency: receive time minus the event's ``ts`` (the writer's clock,
   this machine) for each event a WebSocket watcher of the task (``/v1/tasks/{id}/events``)
   received live, over several tasks, 2 at a time. Same process (embedded: the crew
   runs in the gateway serving the watcher) against cross process (a worker commits,
   the gateway's watcher hears of it: CREWGATE_WAKEUPS=redis, =postgres (LISTEN/NOTIFY,
   when the database is PostgreSQL) and =local, where only the poll finds it,
   CREWGATE_POLL_INTERVAL_S = 1). The throughput rows' Celery setups use Redis wake-ups.

Each setup has its own database: a private PostgreSQL database if 127.0.0.1:5432
answers (dropped after), else a SQLite file shared by gateway and worker; and its own
CREWGATE_REDIS_PREFIX on 127.0.0.1:6379 (its keys deleted after).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from bench._common import Row, percentile, render_table
from bench._scaleout_setup import Setup, cpu_used, setup
from bench._servers import example_incident
from bench.fanout import machine_busy
from bench.overhead import SCRIPTED_CREW, _run_and_watch
from tests.support.gateway import write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text

SECTION = "scaleout"
TERMINAL = ("task.completed", "task.failed", "task.cancelled")
BODY = {"crew": "three_calls", "inputs": {"topic": "latency"}}
CORES = os.cpu_count() or 1
PROCESSES = (1, 2, 4)
LATENCY_PROCESSES = 2
LATENCY_PARALLEL = 2
WAIT_S = 900.0


@dataclass
class Sizes:
    reps: int
    tasks: int  # concurrent tasks
    latency_tasks: int

    @classmethod
    def of(cls, quick: bool) -> Sizes:
        return cls(1, 10, 6) if quick else cls(3, 50, 20)


@dataclass
class Throughput:
    """One setup's figures: one task alone, all tasks at once, and the CPU they took."""

    setup: str
    db: str
    wake: str
    one: list[float] = field(default_factory=list)
    many: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # our processes, per repetition
    others: list[float] = field(default_factory=list)  # the rest of the machine, per repetition

    @property
    def processes_measured(self) -> str:
        backends = " + PostgreSQL backends" if self.db == "PostgreSQL" else ""
        return ("gateway" if self.setup == "embedded" else "gateway + worker + its pool processes") + backends


# --- measuring -----------------------------------------------------------------------------


def _recv(ws: Any, deadline: float) -> dict[str, Any]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no terminal event in time")
    return dict(json.loads(ws.recv(timeout=remaining)))


def _all_at_once(s: Setup, tasks: int) -> tuple[float, float, float]:
    """Submit ``tasks`` at once, wait for each one's terminal event on the firehose (one
    socket); the wall time, our processes' CPU seconds and the rest of the machine's."""
    url = f"{s.gateway.ws_url}/v1/events?after=-1&type={','.join(TERMINAL)}"
    with connect(url, open_timeout=10) as ws, httpx.Client(base_url=s.gateway.url, timeout=30) as client:
        cpu_before, machine_before = s.cpu(), machine_busy()
        started = time.perf_counter()
        ids = {client.post("/v1/tasks", json=BODY).json()["id"] for _ in range(tasks)}
        ended: dict[str, str] = {}
        deadline = time.monotonic() + WAIT_S
        while len(ended) < len(ids):
            event = _recv(ws, deadline)
            if event["task_id"] in ids:
                ended[event["task_id"]] = event["type"]
        elapsed = time.perf_counter() - started
        cpu_after, machine_after = s.cpu(), machine_busy()
    failed = sorted(kind for kind in ended.values() if kind != "task.completed")
    if failed:
        raise SystemExit(f"{len(failed)} of {tasks} concurrent tasks did not complete: {failed[:3]}")
    ours = cpu_used(cpu_before, cpu_after)
    return elapsed, ours, max(0.0, machine_after - machine_before - ours)


def throughput(s: Setup, sizes: Sizes) -> Throughput:
    result = Throughput(s.label, s.db.kind, s.wake_label)
    _all_at_once(s, max(2, 2 * s.processes))  # warm-up: every pool process runs a crew once
    _run_and_watch(s.gateway, BODY)
    result.one = [_run_and_watch(s.gateway, BODY) for _ in range(sizes.reps)]
    for _ in range(sizes.reps):
        wall, cpu, others = _all_at_once(s, sizes.tasks)
        result.many.append(wall)
        result.cpu.append(cpu)
        result.others.append(others)
    return result


def _epoch(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _watch_one(s: Setup, client: httpx.Client) -> list[float]:
    """Run one task and watch it; the latency of each event committed after the watcher
    attached (those before it are replayed, not delivered live)."""
    task_id = client.post("/v1/tasks", json=BODY).json()["id"]
    latencies = []
    with connect(f"{s.gateway.ws_url}/v1/tasks/{task_id}/events", open_timeout=10) as ws:
        attached = time.time()
        deadline = time.monotonic() + WAIT_S
        while True:
            event = _recv(ws, deadline)
            received = time.time()
            if _epoch(event["ts"]) >= attached:
                latencies.append(received - _epoch(event["ts"]))
            if event["type"] in TERMINAL:
                if event["type"] != "task.completed":
                    raise SystemExit(f"task ended {event['type']}: {event['data']}")
                return latencies


def latency(s: Setup, sizes: Sizes) -> list[list[float]]:
    """Per repetition, the latencies (s) of all live events of ``latency_tasks`` tasks."""
    _all_at_once(s, max(2, 2 * s.processes))  # warm-up
    reps = []
    with httpx.Client(base_url=s.gateway.url, timeout=30) as client, ThreadPoolExecutor(LATENCY_PARALLEL) as pool:
        for _ in range(sizes.reps):
            per_task = pool.map(lambda _: _watch_one(s, client), range(sizes.latency_tasks))
            reps.append([value for task in per_task for value in task])
    return reps


# --- rows ----------------------------------------------------------------------------------


def _throughput_rows(t: Throughput, tasks: int, processes: int) -> list[Row]:
    if processes:
        rounds = -(-tasks // processes)
        per_round = statistics.median(t.many) / rounds
        shape = f"one crew per pool process: {rounds} rounds, ideal ratio ≈ {rounds}; {per_round:.2f} s per round"
    else:
        shape = "max_concurrency = tasks, ideal ratio 1.0"
    floors = [cpu / CORES for cpu in t.cpu]
    busy = ", ".join(f"{c:.1f}" for c in t.cpu)
    others = ", ".join(f"{o:.1f}" for o in t.others)
    where = f"{t.db}; wake-ups: {t.wake}"
    return [
        Row(
            SECTION,
            f"{tasks} concurrent tasks, wall — {t.setup}",
            "s",
            t.many,
            t.one,
            "one task alone",
            f"3 model calls per task, 200 ms each; {shape}; {where}",
        ),
        Row(
            SECTION,
            f"{tasks} concurrent tasks, wall ÷ CPU floor — {t.setup}",
            "s",
            t.many,
            floors,
            f"CPU s ÷ {CORES} cores",
            f"CPU s per rep of {t.processes_measured}: {busy}; other processes on the machine meanwhile "
            f"(not ours: a shared machine): {others} CPU s; the wall cannot go below one task alone either",
        ),
    ]


def _latency_rows(cross: list[list[float]], same: list[list[float]], wake: str, events: str) -> list[Row]:
    rows = []
    for q in (50, 99):
        rows.append(
            Row(
                SECTION,
                f"emit → watcher p{q}, worker → gateway ({wake})",
                "ms",
                [percentile(rep, q) * 1000 for rep in cross],
                [percentile(rep, q) * 1000 for rep in same],
                "same process (embedded)",
                f"receive − event ts, live events of a per-task watcher, {LATENCY_PARALLEL} tasks at a time; "
                f"{events}; {LATENCY_PROCESSES} worker processes",
            )
        )
    return rows


def _events(reps: list[list[float]]) -> str:
    return "events per rep: " + ", ".join(str(len(rep)) for rep in reps)


# --- the section ---------------------------------------------------------------------------


def _configs(root: Path, base_url: str) -> Path:
    configs = write_configs(root / "configs")
    (configs / "models.yaml").unlink()
    (configs / "scripted.yaml").write_text(textwrap.dedent(SCRIPTED_CREW).replace("BASE_URL", base_url))
    return configs


def _measure(root: Path, configs: Path, sizes: Sizes) -> list[Row]:
    data = root / "data"
    example_incident(data)  # the allowed root the gateway checks exists
    rows: list[Row] = []
    with setup(root / "embedded", configs, data, kind="embedded") as s:
        print(f"  {s.label} ({s.db.kind})", flush=True)
        rows += _throughput_rows(throughput(s, sizes), sizes.tasks, 0)
        same = latency(s, sizes)
        database = s.db.kind
    cross: dict[str, list[list[float]]] = {}
    for n in PROCESSES:
        with setup(root / f"celery-{n}", configs, data, kind="celery", processes=n, wakeups="redis") as s:
            print(f"  {s.label} ({s.db.kind}, wake-ups: {s.wake_label})", flush=True)
            rows += _throughput_rows(throughput(s, sizes), sizes.tasks, n)
            if n == LATENCY_PROCESSES:
                cross[s.wake_label] = latency(s, sizes)
    others = ["local", "postgres"] if database == "PostgreSQL" else ["local"]
    for wakeups in others:
        with setup(
            root / f"celery-{wakeups}", configs, data, kind="celery", processes=LATENCY_PROCESSES, wakeups=wakeups
        ) as s:
            print(f"  {s.label} ({s.db.kind}, wake-ups: {s.wake_label})", flush=True)
            cross[s.wake_label] = latency(s, sizes)
    for label, reps in cross.items():
        rows += _latency_rows(reps, same, label, f"{_events(reps)} (same process: {_events(same)[16:]})")
    return rows


def _exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(quick: bool = False) -> list[Row]:
    sizes = Sizes.of(quick)
    previous = signal.signal(signal.SIGTERM, _exit)  # SIGTERM unwinds too: workers, databases, keys go
    try:
        with (
            tempfile.TemporaryDirectory(prefix="crewgate-bench-scaleout-") as tmp,
            ScriptedServer(ScriptedModel(default=text("Done."), delay_s=0.2)) as server,
        ):
            root = Path(tmp)
            return _measure(root, _configs(root, server.base_url), sizes)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    print(render_table(run(quick="--quick" in sys.argv)))
