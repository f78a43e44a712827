"""Start and stop the servers the benchmarks compare."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench._common import PROJECT
from tests.support.gateway import Gateway, free_port, write_configs

__all__ = ["BareApp", "example_incident", "gateway", "load"]


def example_incident(root: Path) -> Path:
    target = root / "incident"
    if not (target / "expected.json").exists():
        subprocess.run(
            [sys.executable, str(PROJECT / "examples" / "generate_incident.py"), "--out", str(target)],
            check=True,
            capture_output=True,
        )
    return target


def gateway(work: Path, roots: Path, **settings: object) -> Gateway:
    work.mkdir(parents=True, exist_ok=True)
    settings.setdefault("reload", "false")
    return Gateway(work, config_dir=write_configs(work / "configs"), roots=roots, **settings).start()


class BareApp:
    def __init__(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = f"sqlite+aiosqlite:///{work / 'bare.db'}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BareApp:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._bare_app", str(self.port), self.db],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("bare app did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def load(url: str, total: int, concurrency: int, body: dict, token: str | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench._load", url, str(total), str(concurrency), json.dumps(body)]
        + ([token] if token else []),
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
