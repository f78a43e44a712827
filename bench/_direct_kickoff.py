"""Baseline for the overhead section: the same crew, built and kicked off directly.

    python -m bench._direct_kickoff REPS CONFIG_DIR LOGS REPO RUNBOOKS
Prints one JSON line: seconds per run (after one warm-up run that pays for imports).
"""

from __future__ import annotations

import json
import sys
import time

import agents  # noqa: F401  (turns CrewAI telemetry off before it is imported)
from agents.assemble import build_crew
from agents.catalog import load_catalog
from agents.inputs import validate_inputs
from bench._common import touch_tree


def main() -> None:
    reps, config, logs, repo, runbooks = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    catalog = load_catalog(config)
    roots = [logs.rsplit("/incident/", 1)[0]]
    inputs = validate_inputs(
        "incident_triage",
        catalog.crew("incident_triage"),
        {"service": "checkout", "logs": logs, "repo": repo, "runbooks": runbooks},
        roots=roots,
    )
    times = []
    for i in range(reps + 1):
        touch_tree(logs)  # a first look at the logs every time, as in the gateway runs
        started = time.perf_counter()
        crew = build_crew(catalog, "incident_triage", inputs, roots=roots, env={}).crew
        output = crew.kickoff(inputs=inputs)
        elapsed = time.perf_counter() - started
        assert "584d559" in output.raw
        if i:
            times.append(elapsed)
    print(json.dumps({"seconds": times}))


if __name__ == "__main__":
    main()
