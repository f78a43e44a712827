"""Redis for tests: the shared server (``redis_url``) and private servers a test may kill.

``redis_url`` is a fixture: import it into a test module (``from tests.support.redis import
redis_url``) to use it. It probes ``CREWGATE_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``) once per session; without Redis the tests skip, or fail
when required (see ``tests/support/services.py``). Tests sharing it must use unique
channel and key names (a uuid) so that parallel runs do not see each other.

``RedisServer`` runs a private ``redis-server`` on a free port, for tests that stop and
restart it (an outage); ``require_redis_server()`` skips or fails when the binary is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.services import require_service

__all__ = ["REDIS_URL", "RedisServer", "free_port", "redis_server", "redis_url", "require_redis_server"]

REDIS_URL = os.environ.get("CREWGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_HOW_TO = "start Redis on 127.0.0.1:6379, or set CREWGATE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
SERVER_HOW_TO = "install redis-server (e.g. `apt-get install redis-server`) so that it is on PATH"


def _ping(host: str, port: int, timeout: float = 0.5) -> str | None:
    """None when a Redis answers PING at host:port within ``timeout``, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"not reachable at {host}:{port} ({type(exc).__name__}: {exc})"
    if not reply.startswith((b"+PONG", b"-NOAUTH")):  # a password-protected Redis is still a Redis
        return f"{host}:{port} does not answer like Redis ({reply[:40]!r})"
    return None


def _probe_redis() -> str | None:
    parts = urlsplit(REDIS_URL)
    return _ping(parts.hostname or "127.0.0.1", parts.port or 6379)


@pytest.fixture
def redis_url() -> str:
    """The shared test Redis; skip (or fail, when required) if it is not up."""
    require_service("redis", _probe_redis, REDIS_HOW_TO)
    return REDIS_URL


def require_redis_server() -> str:
    """The path of ``redis-server``; skip (or fail, when required) if it is not installed."""
    require_service(
        "redis-server", lambda: None if shutil.which("redis-server") else "no redis-server on PATH", SERVER_HOW_TO
    )
    path = shutil.which("redis-server")
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A private, memory-only ``redis-server`` on 127.0.0.1 that a test can kill and restart
    on the same port (its clients then see the outage and the recovery a real one causes)."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while (why := _ping("127.0.0.1", self.port)) is not None:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {why}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer within {timeout} s: {why}")
            time.sleep(0.05)

    def pause(self) -> None:
        """SIGSTOP: connections stay open and the kernel still accepts new ones, but nothing
        answers, as with a hung server or a network that silently drops packets."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no goodbye to its clients, as when a machine or container dies."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A started private ``redis-server``, killed after the test."""
    server = RedisServer(require_redis_server(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
