"""Start-up: `crewgate validate`, and `crewgate serve` until /readyz answers 200."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._common import PROJECT, Row, render_table
from tests.support.gateway import free_port, write_configs

CREWGATE = [sys.executable, "-m", "gateway.cli"]


def _wall(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - started


def _until_ready(command: list[str], url: str, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"{command} exited with {proc.returncode}")
            time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def run(quick: bool = False) -> list[Row]:
    import os

    reps = 3 if quick else 7
    validate = [_wall([*CREWGATE, "validate"]) for _ in range(reps)]
    bare_python = [_wall([sys.executable, "-c", "pass"]) for _ in range(reps)]
    import_crewai = [_wall([sys.executable, "-c", "import agents, crewai"]) for _ in range(min(reps, 3))]
    serve, bare = [], []
    with tempfile.TemporaryDirectory(prefix="crewgate-bench-startup-") as tmp:
        root = Path(tmp)
        configs = write_configs(root / "configs")
        for rep in range(reps):
            port = free_port()
            env = dict(
                os.environ,
                CREWGATE_DATABASE_URL=f"sqlite+aiosqlite:///{root / f'gw{rep}.db'}",
                CREWGATE_CONFIG_DIR=str(configs),
                CREWGATE_LOG_LEVEL="WARNING",
            )
            serve.append(
                _until_ready([*CREWGATE, "serve", "--port", str(port)], f"http://127.0.0.1:{port}/readyz", env)
            )
            port = free_port()
            bare.append(
                _until_ready(
                    [
                        sys.executable,
                        "-m",
                        "bench._bare_app",
                        str(port),
                        f"sqlite+aiosqlite:///{root / f'bare{rep}.db'}",
                    ],
                    f"http://127.0.0.1:{port}/readyz",
                )
            )
    return [
        Row(
            "start-up",
            "crewgate validate",
            "s",
            validate,
            bare_python,
            "python -c pass",
            "wall time of the whole process; the shipped configs",
        ),
        Row(
            "start-up",
            "crewgate validate",
            "s",
            validate,
            import_crewai,
            "import crewai",
            "what validate would cost if it imported CrewAI",
        ),
        Row(
            "start-up",
            "serve → /readyz 200",
            "s",
            serve,
            bare,
            "bare FastAPI app → ready",
            "fresh SQLite: migrations, config load, runner start",
        ),
    ]


if __name__ == "__main__":
    print(render_table(run(quick="--quick" in sys.argv)))
