"""The scale-out topology for tests: ``crewgate worker`` processes, Redis and PostgreSQL.

- ``Worker``: a real ``crewgate worker --concurrency N`` (a Celery prefork worker) in a new
  session, with its own environment and log file. ``stop()`` is SIGTERM to the main process
  (Celery's warm shutdown, as ``docker stop`` does); ``kill()`` is SIGKILL to the whole
  process group, pool processes included, as when a container or machine dies.
- ``redis_prefix``: a fixture giving each test its own key prefix (and so its own Celery
  queue and wake-up channel) on the shared Redis; every key under it is deleted after.
- ``shared_redis``: a fixture for the shared Redis on 127.0.0.1:6379 (skip, or fail under CI,
  when it is not up).
- ``PrivateRedis``: a memory-only ``redis-server`` of a test's own on a free port, which the
  test may ``stop()`` and ``start()`` again on the same port (a broker outage).
- ``private_pg``: a fixture for a private PostgreSQL database per test, dropped after.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import PROJECT, free_port
from tests.support.services import require_service

__all__ = [
    "REDIS_HOST",
    "REDIS_PORT",
    "PrivateRedis",
    "Worker",
    "delete_prefixed_keys",
    "private_pg",
    "redis_prefix",
    "shared_redis",
]

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_HOW_TO = "start Redis on 127.0.0.1:6379 (e.g. `redis-server --daemonize yes`)"
SERVER_HOW_TO = "install redis-server so that it is on PATH (e.g. `apt-get install redis-server`)"
READY_LINE = "worker process ready"  # logged by each pool process once it can run a crew


def ping_redis(host: str, port: int, timeout: float = 0.5) -> str | None:
    """None when a Redis answers PING at host:port within ``timeout``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"not reachable at {host}:{port} ({type(exc).__name__}: {exc})"
    if not reply.startswith(b"+PONG"):
        return f"{host}:{port} does not answer PING like Redis ({reply[:40]!r})"
    return None


@pytest.fixture
def shared_redis() -> str:
    """The URL of the shared Redis; the test skips (or fails under CI) when it is down."""
    require_service("redis", lambda: ping_redis(REDIS_HOST, REDIS_PORT), REDIS_HOW_TO)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


def delete_prefixed_keys(url: str, prefix: str) -> int:
    """Delete every key starting with ``prefix`` (SCAN, then DEL); how many there were."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix(shared_redis: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted after the test."""
    prefix = f"cgt{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefixed_keys(shared_redis, prefix)


@pytest.fixture
def private_pg() -> Iterator[str]:
    """A PostgreSQL database of this test's own (async URL), dropped after it."""
    from tests.gateway.conftest import _admin, _new_pg_database

    name, url = _new_pg_database()
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Worker:
    """A ``crewgate worker`` subprocess in a session of its own."""

    def __init__(self, workdir: Path, *, config_dir: Path, roots: Path, concurrency: int = 2, **settings: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.concurrency = concurrency
        self.env = dict(os.environ)
        self.env.update(
            {
                "CREWGATE_CONFIG_DIR": str(config_dir),
                "CREWGATE_ALLOWED_ROOTS": str(roots),
                "CREWGATE_LOG_FORMAT": "json",
                "SCRIPTED_KEY": "test-key",
                "CREWAI_DISABLE_TELEMETRY": "true",
                "OTEL_SDK_DISABLED": "true",
            }
        )
        self.env.update({f"CREWGATE_{k.upper()}": str(v) for k, v in settings.items()})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "worker.log"
        self.started_at_line = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def pool_pids(self) -> list[int]:
        """The pids of the pool processes (the main process's children)."""
        return _children(self.pid) if self.proc is not None else []

    def start(self, timeout: float = 120) -> Worker:
        """Start, and return once every pool process said it is ready."""
        return self.launch().wait_ready(timeout)

    def launch(self) -> Worker:
        """Start without waiting (start several at once, then ``wait_ready`` each)."""
        self.started_at_line = len(self.logs().splitlines())
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "worker", "--concurrency", str(self.concurrency)],
                cwd=PROJECT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 120) -> Worker:
        assert self.proc is not None, "not launched"
        deadline = time.monotonic() + timeout
        while self.ready_processes() < self.concurrency:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready in {timeout} s:\n{self.logs()[-3000:]}")
            time.sleep(0.1)
        return self

    def ready_processes(self) -> int:
        """Pool processes that said they are ready since the last start."""
        lines = self.logs().splitlines()[self.started_at_line :]
        return sum(READY_LINE in line for line in lines)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON log lines (Celery's own lines are plain text and left out)."""
        entries = []
        for line in self.logs().splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries

    def kill(self) -> list[int]:
        """SIGKILL to the whole process group, as in a container kill; the pids it had."""
        assert self.proc is not None, "not started"
        pids = [self.pid, *self.pool_pids()]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pids

    def stop(self, timeout: float = 90) -> int | None:
        """SIGTERM to the main process (warm shutdown) and wait; SIGKILL to the group if it
        does not exit in ``timeout``. Its exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def ensure_dead(self) -> None:
        """After a test: nothing of this worker left running."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.stop(timeout=20)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # pool processes a warm shutdown left behind


class PrivateRedis:
    """A memory-only ``redis-server`` of a test's own on a free port; ``stop()`` and
    ``start()`` again keep the port, so clients see an outage and then the same server."""

    def __init__(self, workdir: Path) -> None:
        require_service(
            "redis-server", lambda: None if shutil.which("redis-server") else "no redis-server on PATH", SERVER_HOW_TO
        )
        self.binary = shutil.which("redis-server") or "redis-server"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> PrivateRedis:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.workdir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, *args, "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while (why := ping_redis("127.0.0.1", self.port)) is not None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {why}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {timeout} s: {why}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """SIGKILL: its clients get no goodbye, and (memory only) every message is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
