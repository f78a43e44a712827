"""RSS of a gateway process across many sequential triage tasks (the offline model).

    python -m bench.memory_tasks [--tasks 300]

Starts ``crewgate serve`` on 127.0.0.1 with a fresh SQLite store, runs the shipped
incident_triage crew on the example incident one task at a time, and prints the
server's resident memory after selected tasks, with the growth per task between
the 50th and the last task (the first tasks pay for imports and caches).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from tests.support.gateway import Gateway, write_configs  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def ensure_example(root: Path) -> Path:
    target = root / "incident"
    subprocess.run(
        [sys.executable, str(PROJECT / "examples" / "generate_incident.py"), "--out", str(target)],
        check=True,
        capture_output=True,
    )
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crewgate-bench-") as tmp:
        work = Path(tmp)
        incident = ensure_example(work / "data")
        gw = Gateway(
            work, config_dir=write_configs(work / "configs"), roots=work / "data", log_level="WARNING", reload="false"
        ).start()
        assert gw.proc is not None
        inputs = {
            "service": "checkout",
            "logs": str(incident / "logs"),
            "repo": str(incident / "repo"),
            "runbooks": str(incident / "runbooks"),
        }
        marks = sorted({1, 10, 50, 100, 150, 200, 250, args.tasks} & set(range(1, args.tasks + 1)))
        samples: dict[int, float] = {0: rss_mib(gw.proc.pid)}
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=gw.url, timeout=60) as client:
                for n in range(1, args.tasks + 1):
                    task_id = client.post("/v1/tasks", json={"crew": "incident_triage", "inputs": inputs}).json()["id"]
                    while (status := client.get(f"/v1/tasks/{task_id}").json()["status"]) in ("queued", "running"):
                        time.sleep(0.02)
                    if status != "completed":
                        raise SystemExit(f"task {n} ended {status}")
                    if n in marks:
                        samples[n] = rss_mib(gw.proc.pid)
                        print(f"after {n:4d} tasks: RSS {samples[n]:7.1f} MiB", flush=True)
        finally:
            gw.stop()
        elapsed = time.perf_counter() - started
        base = 50 if args.tasks > 50 else 1
        growth = (samples[args.tasks] - samples[base]) / max(1, args.tasks - base) * 1024
        print(
            f"{args.tasks} tasks in {elapsed:.0f} s ({elapsed / args.tasks:.2f} s each); "
            f"RSS idle {samples[0]:.0f} MiB, after {base}: {samples[base]:.0f} MiB, "
            f"after {args.tasks}: {samples[args.tasks]:.0f} MiB; {growth:.1f} KiB per task after task {base}"
        )


if __name__ == "__main__":
    main()
