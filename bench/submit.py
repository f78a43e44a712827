"""Submit: POST /v1/tasks with 50 concurrent clients, against a bare FastAPI endpoint
doing the same insert (task row + task.queued event) into the same kind of database.

The gateway runs with CREWGATE_RUN_TASKS=false, so the figure is what accepting a
task costs (validation, catalog, idempotency, store, access log), not running it.

Access and operations: the gateway as shipped (metrics on, rate limits counting) with an
API key required, against the same gateway with metrics, rate limits and auth off, in the
same repetition: what auth, limits and metrics cost per submit (the "… vs none" rows).
The limits are set high enough never to refuse: they count, as they would in production.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from bench._common import Row, percentile, render_table
from bench._servers import BareApp, example_incident, gateway, load

CONCURRENCY = 50
KEY = "bench-key-0123456789abcdef0123456789abcdef"
# auth on (an env key), rate limits counting (never refusing), metrics on (the default)
GUARDED = {"api_keys": KEY, "rate_limit_submit": "100000000/minute", "rate_limit_read": "100000000/minute"}
BARE = {"metrics": "false", "rate_limit_submit": "", "rate_limit_read": ""}  # none of the three


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
            gw = gateway(root / f"gw{rep}", root / "data", run_tasks="false", log_level="INFO", **GUARDED)
            try:
                result = load(gw.url, total, CONCURRENCY, body, token=KEY)
            finally:
                gw.stop()
            _record(ours, result)
            gw = gateway(root / f"gw-off{rep}", root / "data", run_tasks="false", log_level="INFO", **BARE)
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
        f"crewgate with an API key required, rate limits counting and metrics on, vs all three off; "
        f"same runs as above; failed requests per run with them off: {off['errors']}"
    )
    return [
        Row("submit", "POST /v1/tasks p50", "ms", ours["p50"], base["p50"], "bare FastAPI + same insert", note),
        Row("submit", "p50, auth + limits + metrics vs none", "ms", ours["p50"], off["p50"], "none", metrics_note),
        Row("submit", "p99, auth + limits + metrics vs none", "ms", ours["p99"], off["p99"], "none", metrics_note),
        Row(
            "submit",
            "throughput, auth + limits + metrics vs none",
            "req/s",
            ours["rps"],
            off["rps"],
            "none",
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
