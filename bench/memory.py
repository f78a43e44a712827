"""Memory: the gateway's RSS after 500 sequential tasks against after 50.

Uses a one-step crew (the triage lead searching the example's runbooks, offline
model) so 500 real CrewAI kickoffs fit in a couple of minutes; each task still builds
a fresh Crew, Agent, LLM and tool and runs CrewAI's full agent loop.
bench/memory_tasks.py runs the full three-agent triage for longer soaks.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench._common import Row, render_table
from bench._servers import example_incident
from bench.memory_tasks import rss_mib
from tests.support.gateway import Gateway, write_configs

LOOKUP = """\
crews:
  runbook_lookup:
    inputs:
      runbooks: {type: path}
      service: {type: string, default: checkout}
    steps:
      - name: lookup
        agent: triage_lead
        description: Find the runbook for {service} in {runbooks}
        expected_output: A runbook section
"""


def run(quick: bool = False) -> list[Row]:
    total, base_at = (100, 10) if quick else (500, 50)
    with tempfile.TemporaryDirectory(prefix="crewgate-bench-memory-") as tmp:
        root = Path(tmp)
        incident = example_incident(root / "data")
        configs = write_configs(root / "configs")
        (configs / "lookup.yaml").write_text(LOOKUP)
        gw = Gateway(root, config_dir=configs, roots=root / "data", reload="false", log_level="WARNING").start()
        assert gw.proc is not None
        samples: dict[int, float] = {}
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=gw.url, timeout=60) as client:
                body = {"crew": "runbook_lookup", "inputs": {"runbooks": str(incident / "runbooks")}}
                for n in range(1, total + 1):
                    task_id = client.post("/v1/tasks", json=body).json()["id"]
                    while client.get(f"/v1/tasks/{task_id}").json()["status"] in ("queued", "running"):
                        time.sleep(0.01)
                    if n in (base_at, total):
                        samples[n] = rss_mib(gw.proc.pid)
        finally:
            gw.stop()
        elapsed = time.perf_counter() - started
    growth = (samples[total] - samples[base_at]) / (total - base_at) * 1024
    note = (
        f"one process, tasks one after another ({elapsed:.0f} s); "
        f"{growth:.1f} KiB per task after task {base_at}; single run"
    )
    return [
        Row(
            "memory",
            f"RSS after {total} tasks",
            "MiB",
            [samples[total]],
            [samples[base_at]],
            f"after {base_at} tasks",
            note,
        )
    ]


if __name__ == "__main__":
    print(render_table(run(quick="--quick" in sys.argv)))
