"""The processes the scale-out benchmark measures: a database, a gateway, a Celery worker.

Everything started here is stopped here: workers run in a session of their own and
are stopped by process group (SIGTERM, then SIGKILL), the PostgreSQL database is
dropped and the Redis keys under the run's prefix are deleted, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import PROJECT
from tests.support.gateway import Gateway

__all__ = ["REDIS_URL", "WAKE_LABELS", "Database", "Setup", "cpu_snapshot", "cpu_used", "database", "setup"]

REDIS_URL = os.environ.get("CREWGATE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get("CREWGATE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
QUIET = {"CREWAI_DISABLE_TELEMETRY": "true", "OTEL_SDK_DISABLED": "true", "SCRIPTED_KEY": "bench-key"}
WORKER_START_S = 180.0


WAKE_LABELS = {  # CREWGATE_WAKEUPS: how a gateway hears of events a worker committed
    "local": "poll only, 1 s",
    "redis": "Redis wake-ups",
    "postgres": "PostgreSQL LISTEN/NOTIFY wake-ups",
}


# --- the database --------------------------------------------------------------------------


def _pg(sql: str, timeout: float = 5) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(PG_ADMIN_URL, timeout=timeout)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    # On a thread of its own: asyncio.run on the main thread takes over SIGINT, and a
    # Ctrl-C landing in asyncpg's connect is swallowed there (the run then goes on).
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _pg_reachable() -> bool:
    try:
        _pg("SELECT 1", timeout=3)
    except Exception:  # noqa: BLE001 - any failure means: use SQLite
        return False
    return True


@dataclass
class Database:
    kind: str  # "PostgreSQL" or "SQLite"
    url: str
    name: str = ""  # the PostgreSQL database's name

    def backend_pids(self) -> list[int]:
        """The PostgreSQL server processes serving this database (none for SQLite)."""
        if self.kind != "PostgreSQL":
            return []
        rows = _pg(f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.name}'")
        return [int(r["pid"]) for r in rows]


@contextmanager
def database(work: Path) -> Iterator[Database]:
    """A private PostgreSQL database if the server answers (dropped after), else a SQLite file."""
    if not _pg_reachable():
        yield Database("SQLite", f"sqlite+aiosqlite:///{work / 'shared.db'}")
        return
    name = f"crewgate_bench_{uuid.uuid4().hex[:12]}"
    _pg(f'CREATE DATABASE "{name}"')
    try:
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        yield Database("PostgreSQL", f"{base}/{name}", name)
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Redis keys ----------------------------------------------------------------------------


def redis_keys(prefix: str) -> list[bytes]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(match=f"*{prefix}*", count=1000))
    finally:
        client.close()


def delete_redis_keys(prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


# --- CPU of process trees ------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds) of a process, or None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(roots: list[int], extra: list[int]) -> dict[int, float]:
    """CPU seconds per process: ``roots`` and all their descendants, plus ``extra`` pids."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = found
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    chosen, todo = set(extra), list(roots)
    while todo:
        pid = todo.pop()
        chosen.add(pid)
        todo += children.get(pid, [])
    return {pid: stats[pid][1] for pid in chosen if pid in stats}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two snapshots (a process new in ``after`` counts in full)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# --- the processes -------------------------------------------------------------------------


@dataclass
class Setup:
    """A gateway, and for ``celery`` a worker with ``processes`` pool processes, on one database."""

    kind: str  # "embedded" or "celery"
    processes: int
    wakeups: str  # CREWGATE_WAKEUPS: local, redis or postgres
    db: Database
    gateway: Gateway
    prefix: str = ""
    worker: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        if self.kind == "embedded":
            return "embedded"
        return f"celery, {self.processes} worker process{'es' if self.processes > 1 else ''}"

    @property
    def wake_label(self) -> str:
        if self.kind == "embedded":
            return "same process"
        return WAKE_LABELS[self.wakeups]

    def roots(self) -> list[int]:
        pids = [self.gateway.proc.pid] if self.gateway.proc else []
        return pids + ([self.worker.pid] if self.worker else [])

    def cpu(self) -> dict[int, float]:
        return cpu_snapshot(self.roots(), self.db.backend_pids())


def _settings(kind: str, db: Database, prefix: str, wakeups: str, max_concurrency: int) -> dict[str, object]:
    settings: dict[str, object] = {"reload": "false", "database_url": db.url, "max_concurrency": max_concurrency}
    if kind == "celery":
        settings.update(dispatcher="celery", broker_url=REDIS_URL, redis_prefix=prefix)
    settings["wakeups"] = wakeups
    settings["redis_url"] = REDIS_URL if wakeups == "redis" else ""
    settings["redis_prefix"] = prefix
    return settings


def _start_worker(gw: Gateway, processes: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "worker", "--concurrency", str(processes)],
            cwd=PROJECT,
            env=gw.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its pool processes
        )


def _wait_worker_ready(worker: subprocess.Popen[bytes], processes: int, log: Path) -> None:
    """Until each pool process has said it is ready (it imported CrewAI and connected)."""
    deadline = time.monotonic() + WORKER_START_S
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if log.read_text(errors="replace").count("worker process ready") >= processes:
            return
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready in {WORKER_START_S:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM the worker (Celery's warm shutdown: it stops its pool processes), then
    SIGKILL its whole process group, so no pool process outlives it."""
    with suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextmanager
def setup(
    work: Path, configs: Path, roots: Path, *, kind: str, processes: int = 0, wakeups: str = "local"
) -> Iterator[Setup]:
    """Start a database, a gateway and (celery) a worker; stop and remove all of it after."""
    work.mkdir(parents=True, exist_ok=True)
    prefix = f"crewgate-bench-{uuid.uuid4().hex[:12]}"
    with database(work) as db:
        settings = _settings(kind, db, prefix, wakeups, max_concurrency=50)
        gw = Gateway(work / "gw", config_dir=configs, roots=roots, **settings)
        gw.env.update(QUIET)
        current = Setup(kind, processes, wakeups, db, gw, prefix)
        try:
            gw.start()
            if kind == "celery":
                log = work / "worker.log"
                current.logs.append(log)
                current.worker = _start_worker(gw, processes, log)
                _wait_worker_ready(current.worker, processes, log)
            yield current
        finally:
            _teardown(current)


def _teardown(current: Setup) -> None:
    try:
        if current.worker is not None:
            stop_group(current.worker)
    finally:
        try:
            current.gateway.stop()
        finally:
            if current.prefix:
                delete_redis_keys(current.prefix)
                left = redis_keys(current.prefix)
                if left:
                    raise RuntimeError(f"Redis keys left under {current.prefix}: {left[:5]}")
