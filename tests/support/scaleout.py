"""The scale-out topology for tests: ``crewgate worker`` processes, Redis and PostgreSQL.

- ``Worker``: a real ``crewgate worker --concurrency N`` (a Celery prefork worker) in a new
  session, with its own environment and log file. ``stop()`` is SIGTERM to the main process
  (Celery's warm shutdown, as ``docker stop`` does); ``kill()`` is SIGKILL to the whole
  process group, pool processes included, as when a container or machine dies.
- ``redis_prefix``: a fixture (it needs ``tests.support.redis.redis_url`` imported beside it) giving each test its own key prefix (and so its own Celery
  queue and wake-up channel) on the shared Redis (``tests.support.redis.redis_url``); every
  key under it is deleted after.
- ``private_pg``: a fixture for a private PostgreSQL database per test, dropped after.

A Redis of a test's own, to stop and start again on the same port (an outage), is
``tests.support.redis.RedisServer``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import PROJECT

__all__ = ["Worker", "alive", "delete_prefixed_keys", "private_pg", "redis_prefix"]

READY_LINE = "worker process ready"  # logged by each pool process once it can run a crew


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
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after the test."""
    prefix = f"cgt{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefixed_keys(redis_url, prefix)


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

    def __init__(
        self,
        workdir: Path,
        *,
        config_dir: Path,
        roots: Path,
        concurrency: int = 2,
        args: tuple[str, ...] = (),
        **settings: Any,
    ) -> None:
        """``args``: more options for ``crewgate worker``."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.concurrency = concurrency
        self.args = args
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
                [sys.executable, "-m", "gateway.cli", "worker", "--concurrency", str(self.concurrency)]
                + ["--name", f"celery@{self.workdir.name}-{uuid.uuid4().hex[:6]}"]  # one host, several workers
                + list(self.args),
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
