"""What a waiting task costs: a gateway's memory and threads with 100 tasks waiting for a
person, against the same gateway with one task waiting, and against the same number of tasks
that have completed (the baseline in the same run).

    python -m bench.waiting [--tasks 100]

Starts ``crewgate serve`` on 127.0.0.1 with a fresh SQLite store and the shipped
``incident_triage_reviewed`` crew on the offline model (every task waits for review of its
report), waits until every task is ``waiting``, and reads the server's RSS and thread count
from /proc. Then approves them all and reads both again once they completed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from bench.memory_tasks import ensure_example, rss_mib  # noqa: E402
from tests.support.gateway import Gateway, write_configs  # noqa: E402

CREW = "incident_triage_reviewed"


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("no Threads")


def wait_statuses(client: httpx.Client, ids: list[str], wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ids)
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} tasks never reached {wanted}")
        pending = {i for i in pending if client.get(f"/v1/tasks/{i}").json()["status"] != wanted}
        time.sleep(0.2)


def snapshot(pid: int) -> tuple[float, int]:
    time.sleep(1.0)  # let the pool's threads settle
    return rss_mib(pid), threads(pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        incident = ensure_example(root)
        gw = Gateway(root / "gw", config_dir=write_configs(root / "configs"), roots=root, max_concurrency=4).start()
        try:
            inputs = {"service": "checkout", "logs": str(incident / "logs"), "repo": str(incident / "repo")}
            with httpx.Client(base_url=gw.url, timeout=30) as c:
                first = c.post("/v1/tasks", json={"crew": CREW, "inputs": inputs}).json()["id"]
                wait_statuses(c, [first], "waiting", 120)
                assert gw.proc is not None
                one = snapshot(gw.proc.pid)
                started = time.perf_counter()
                ids = [
                    c.post("/v1/tasks", json={"crew": CREW, "inputs": inputs}).json()["id"]
                    for _ in range(args.tasks - 1)
                ]
                wait_statuses(c, ids, "waiting", 600)
                took = time.perf_counter() - started
                many = snapshot(gw.proc.pid)
                for task_id in [first, *ids]:
                    request = c.get(f"/v1/tasks/{task_id}/input").json()["data"][0]
                    c.post(f"/v1/tasks/{task_id}/input", json={"request_id": request["request_id"], "approve": True})
                wait_statuses(c, [first, *ids], "completed", 600)
                done = snapshot(gw.proc.pid)
        finally:
            gw.stop()
    per_task_kib = (many[0] - one[0]) * 1024 / max(args.tasks - 1, 1)
    print(f"{args.tasks} tasks reached waiting in {took:.1f} s (max_concurrency 4)")
    print(f"{'state':<32} {'RSS (MiB)':>10} {'threads':>8}")
    print(f"{'1 task waiting':<32} {one[0]:>10.1f} {one[1]:>8}")
    print(f"{f'{args.tasks} tasks waiting':<32} {many[0]:>10.1f} {many[1]:>8}")
    print(f"{f'{args.tasks} tasks completed (baseline)':<32} {done[0]:>10.1f} {done[1]:>8}")
    print(f"per waiting task: {per_task_kib:.1f} KiB of RSS, {(many[1] - one[1]) / max(args.tasks - 1, 1):.2f} threads")
    print(f"ratio waiting ÷ completed: RSS {many[0] / done[0]:.2f}×, threads {many[1] / done[1]:.2f}×")


if __name__ == "__main__":
    main()
