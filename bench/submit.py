"""Submit: POST /v1/tasks with 50 concurrent clients, against a bare FastAPI endpoint
doing the same insert (task row + task.queued event) into the same kind of database.

The gateway runs with CREWGATE_RUN_TASKS=false, so the figure is what accepting a
task costs (validation, catalog, idempotency, store, access log), not running it.

Metrics: the same gateway again with CREWGATE_METRICS=false, in the same repetition:
the cost of counting each request (the "metrics on vs off" rows).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._common import Row, percentile, render_table
from bench._servers import BareApp, example_incident, gateway, load

CONCURRENCY = 50


def run(quick: bool = False) -> list[Row]:
    reps, total = (1, 500) if quick else (3, 3000)
    ours: dict[str, list[float]] = {"p50": [], "p99": [], "rps": []}
    base: dict[str, list[float]] = {"p50": [], "p99": [], "rps": []}
    off: dict[str, list[float]] = {"p50": [], "p99": [], "rps": []}
    with tempfile.TemporaryDirectory(prefix="crewgate-bench-submit-") as tmp:
        root = Path(tmp)
        incident = example_incident(root / "data")
        body = {
            "crew": "incident_triage",
            "inputs": {"service": "checkout", "logs": str(incident / "logs"), "repo": str(incident / "repo")},
        }
        for rep in range(reps):
            gw = gateway(root / f"gw{rep}", root / "data", run_tasks="false", log_level="INFO")
            try:
                result = load(gw.url, total, CONCURRENCY, body)
            finally:
                gw.stop()
            _record(ours, result)
            gw = gateway(root / f"gw-off{rep}", root / "data", run_tasks="false", log_level="INFO", metrics="false")
            try:
                result = load(gw.url, total, CONCURRENCY, body)
            finally:
                gw.stop()
            _record(off, result)
            bare = BareApp(root / f"bare{rep}").start()
            try:
                result = load(bare.url, total, CONCURRENCY, body)
            finally:
                bare.stop()
            _record(base, result)
    note = (
        f"{total} requests, {CONCURRENCY} concurrent clients in a separate process; SQLite; "
        f"failed requests per run: crewgate {ours['errors']}, baseline {base['errors']}"
    )
    metrics_note = (
        f"crewgate with metrics (default) vs CREWGATE_METRICS=false, same runs as above; "
        f"failed requests per run with metrics off: {off['errors']}"
    )
    return [
        Row("submit", "POST /v1/tasks p50", "ms", ours["p50"], base["p50"], "bare FastAPI + same insert", note),
        Row("submit", "p50, metrics on vs off", "ms", ours["p50"], off["p50"], "metrics off", metrics_note),
        Row("submit", "p99, metrics on vs off", "ms", ours["p99"], off["p99"], "metrics off", metrics_note),
        Row(
            "submit",
            "throughput, metrics on vs off",
            "req/s",
            ours["rps"],
            off["rps"],
            "metrics off",
            metrics_note,
            higher_is_better=True,
        ),
        Row("submit", "POST /v1/tasks p99", "ms", ours["p99"], base["p99"], "bare FastAPI + same insert", note),
        Row(
            "submit",
            "throughput",
            "req/s",
            ours["rps"],
            base["rps"],
            "bare FastAPI + same insert",
            note,
            higher_is_better=True,
        ),
    ]


def _record(into: dict[str, list[float]], result: dict) -> None:
    into.setdefault("errors", []).append(result["errors"])
    latencies = [x * 1000 for x in result["latencies"]]
    into["p50"].append(percentile(latencies, 50))
    into["p99"].append(percentile(latencies, 99))
    into["rps"].append(len(latencies) / result["elapsed"])


if __name__ == "__main__":
    print(render_table(run(quick="--quick" in sys.argv)))
