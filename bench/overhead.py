"""Overhead: what the gateway adds around the work itself.

1. One triage task end to end through the gateway (POST, then its events over
   WebSocket until the terminal one) against building and kicking off the same
   crew directly in a process, both with the offline model, both warmed up.
2. 50 concurrent tasks against a scripted OpenAI-compatible model that takes 200 ms
   per call: the wall time of all 50 against the wall time of one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

from bench._common import PROJECT, Row, render_table, touch_tree
from bench._servers import example_incident
from bench.fanout import cpu_seconds
from tests.support.gateway import Gateway, write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text

SCRIPTED_CREW = """\
agents:
  writer:
    role: Writer
    goal: Write about {topic}
    backstory: Writes
    model: scripted
    max_retry_limit: 0
crews:
  three_calls:
    inputs:
      topic: {type: string}
    steps:
      - {name: outline, agent: writer, description: "Outline {topic}", expected_output: An outline}
      - {name: draft, agent: writer, description: "Draft {topic}", expected_output: A draft}
      - {name: polish, agent: writer, description: "Polish {topic}", expected_output: A text}
models:
  default: offline
  profiles:
    scripted: {model: openai/scripted-model, base_url: BASE_URL, api_key_env: SCRIPTED_KEY, timeout: 60, max_retries: 0}
"""


def _run_and_watch(gw: Gateway, body: dict) -> float:
    started = time.perf_counter()
    task_id = httpx.post(f"{gw.url}/v1/tasks", json=body, timeout=30).json()["id"]
    with connect(f"{gw.ws_url}/v1/tasks/{task_id}/events", open_timeout=10) as ws:
        for message in ws:
            event = json.loads(message)
            if event["type"] in ("task.completed", "task.failed", "task.cancelled"):
                if event["type"] != "task.completed":
                    raise SystemExit(f"task ended {event['type']}: {event['data']}")
                break
    return time.perf_counter() - started


def _many(gw: Gateway, body: dict, tasks: int, cpu: list[float]) -> float:
    """Submit ``tasks`` tasks at once and wait for all their terminal events on the firehose
    (one socket: polling 50 tasks' status would load the server being measured)."""
    terminal = "task.completed,task.failed,task.cancelled"
    with (
        connect(f"{gw.ws_url}/v1/events?after=-1&type={terminal}", open_timeout=10) as ws,
        httpx.Client(base_url=gw.url, timeout=30) as client,
    ):
        started, cpu_before = time.perf_counter(), cpu_seconds(gw.proc.pid)
        ids = {client.post("/v1/tasks", json=body).json()["id"] for _ in range(tasks)}
        ended: dict[str, str] = {}
        for message in ws:
            event = json.loads(message)
            if event["task_id"] in ids:
                ended[event["task_id"]] = event["type"]
                if len(ended) == len(ids):
                    break
        elapsed = time.perf_counter() - started
        cpu.append(cpu_seconds(gw.proc.pid) - cpu_before)
    failed = [t for t, kind in ended.items() if kind != "task.completed"]
    if failed:
        raise SystemExit(f"{len(failed)} of {tasks} concurrent tasks did not complete")
    return elapsed


def end_to_end(root: Path, reps: int) -> Row:
    incident = example_incident(root / "data")
    body = {
        "crew": "incident_triage",
        "inputs": {
            "service": "checkout",
            "logs": str(incident / "logs"),
            "repo": str(incident / "repo"),
            "runbooks": str(incident / "runbooks"),
        },
    }
    gw = Gateway(
        root / "gw", config_dir=write_configs(root / "gw-configs"), roots=root / "data", reload="false"
    ).start()
    try:
        ours = []
        for i in range(reps + 1):  # the first is a warm-up: imports CrewAI
            touch_tree(incident / "logs")  # parsed afresh every run (the log tools remember parses)
            elapsed = _run_and_watch(gw, body)
            if i:
                ours.append(elapsed)
    finally:
        gw.stop()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench._direct_kickoff",
            str(reps),
            str(PROJECT / "configs"),
            str(incident / "logs"),
            str(incident / "repo"),
            str(incident / "runbooks"),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    direct = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    return Row(
        "overhead",
        "one triage, end to end",
        "s",
        ours,
        direct,
        "direct crew.kickoff()",
        "offline model; gateway: POST → terminal event over WebSocket; both warmed up",
    )


def concurrent(root: Path, reps: int, tasks: int) -> Row:
    model = ScriptedModel(default=text("Done."), delay_s=0.2)
    with ScriptedServer(model) as server:
        configs = write_configs(root / "cc-configs")
        (configs / "models.yaml").unlink()
        (configs / "scripted.yaml").write_text(textwrap.dedent(SCRIPTED_CREW).replace("BASE_URL", server.base_url))
        gw = Gateway(
            root / "cc", config_dir=configs, roots=root / "data", reload="false", max_concurrency=tasks
        ).start()
        try:
            body = {"crew": "three_calls", "inputs": {"topic": "latency"}}
            _run_and_watch(gw, body)  # warm-up
            one = [_run_and_watch(gw, body) for _ in range(reps)]
            cpu: list[float] = []
            many = [_many(gw, body, tasks, cpu) for _ in range(reps)]
        finally:
            gw.stop()
    busy = ", ".join(f"{c:.1f} s ({c / w:.0%} of a core)" for c, w in zip(cpu, many, strict=True))
    return Row(
        "overhead",
        f"{tasks} concurrent tasks, wall",
        "s",
        many,
        one,
        "one task alone",
        "3 model calls per task, 200 ms each; max_concurrency = tasks; ideal ratio 1.0; "
        f"gateway CPU per repetition: {busy}",
    )


def run(quick: bool = False) -> list[Row]:
    reps = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="crewgate-bench-overhead-") as tmp:
        root = Path(tmp)
        return [end_to_end(root, reps), concurrent(root, reps, 10 if quick else 50)]


if __name__ == "__main__":
    print(render_table(run(quick="--quick" in sys.argv)))
