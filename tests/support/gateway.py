"""A real ``crewgate serve`` process on 127.0.0.1 for tests, with its own database and configs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

PROJECT = Path(__file__).resolve().parents[2]

SLOW_CREW = """\
agents:
  slow_writer:
    role: Slow writer
    goal: Write {{topic}} slowly
    backstory: Thinks a lot
    model: scripted
    max_retry_limit: 0
crews:
  slow:
    description: Several steps, each one model call to a slow scripted model
    inputs:
      topic: {{type: string}}
      steps_note: {{type: string, required: false}}
    steps:
{steps}
  slow_once:
    description: The slow crew, never run a second time
    max_attempts: 1
    inputs:
      topic: {{type: string}}
    steps:
{steps}
models:
  default: offline
  profiles:
    scripted:
      model: openai/scripted-model
      base_url: {base_url}
      api_key_env: SCRIPTED_KEY
      timeout: 30
      max_retries: 0
"""


STREAMING_CREW = """\
agents:
  streamer:
    role: Streaming writer
    goal: Write about {{topic}}
    backstory: Writes long answers
    model: streaming
    max_retry_limit: 0
crews:
  streaming:
    description: Steps answered by a model that streams every answer
    inputs:
      topic: {{type: string}}
    steps:
{steps}
models:
  default: offline
  profiles:
    streaming:
      model: openai/scripted-model
      base_url: {base_url}
      api_key_env: SCRIPTED_KEY
      stream: true
      timeout: 60
      max_retries: 0
"""


def _part_steps(agent: str, count: int) -> str:
    """YAML for ``count`` steps part_1..part_N, each one answer of ``agent``."""
    return "\n".join(
        f"      - name: part_{i}\n        agent: {agent}\n"
        f"        description: Write part {i} about {{topic}}\n        expected_output: Part {i}"
        for i in range(1, count + 1)
    )


def write_streaming_configs(target: Path, base_url: str, steps: int = 3) -> Path:
    """Only a ``streaming`` crew: ``steps`` steps, each one call to a model at ``base_url``
    that streams its answer (``llm.chunk`` events)."""
    target.mkdir(parents=True, exist_ok=True)
    body = _part_steps("streamer", steps)
    (target / "streaming.yaml").write_text(STREAMING_CREW.format(steps=body, base_url=base_url))
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_configs(target: Path, *, scripted_base_url: str | None = None, slow_steps: int = 6) -> Path:
    """The shipped configs, plus a ``slow`` crew on a scripted model when a URL is given."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(PROJECT / "configs", target)
    if scripted_base_url:
        (target / "models.yaml").unlink()  # the slow file carries the models section
        steps = _part_steps("slow_writer", slow_steps)
        (target / "slow.yaml").write_text(SLOW_CREW.format(steps=steps, base_url=scripted_base_url))
    return target


class Gateway:
    def __init__(self, workdir: Path, *, config_dir: Path, roots: Path, **settings: Any) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            {
                "CREWGATE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'crewgate.db'}",
                "CREWGATE_CONFIG_DIR": str(config_dir),
                "CREWGATE_ALLOWED_ROOTS": str(roots),
                "CREWGATE_LOG_FORMAT": "json",
                "SCRIPTED_KEY": "test-key",
            }
        )
        self.env.update({f"CREWGATE_{k.upper()}": str(v) for k, v in settings.items()})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "gateway.log"

    def start(self, timeout: float = 60) -> Gateway:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=PROJECT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gateway not ready in {timeout} s:\n{self.logs()[-3000:]}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def wait_for(predicate: Any, timeout: float = 60, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
