"""Idle WebSocket memory: server RSS per open, idle watcher, with 1,000 watchers.

    python -m bench.ws_memory [--quick] [--reps 3] [--connections 1000]

crewgate: the real app under uvicorn (``bench._fanout_server`` with the default
``ws_buffer``, stall timeout and ping interval), one task created and claimed but
never given an event, so every watcher stays attached and idle. Baseline: the plain
``websockets`` server (``bench._baseline_ws``, pings every 20 s like uvicorn's),
which keeps each connection open after its first frame.

Per repetition: start the server, create the task, open and close 20 warm-up
connections (imports, caches and first-use allocations are not per socket), let it
settle, read VmRSS from /proc/PID/status, open N connections from separate
processes (``bench._watchers --hold``; each has received its first frame), settle,
read VmRSS again: (after - before) / N. Also reported: the server's CPU over 5 s
with the N sockets idle (crewgate polls the heads of all watched tasks in one query
every ``poll_interval_s``), and for crewgate the SQL statements it ran in that window.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from bench._common import Row, render_table  # noqa: E402
from bench._watchers import Child, raise_nofile, start_watchers  # noqa: E402
from bench.fanout import code_version, cpu_seconds, free_port  # noqa: E402

SECTION = "idle WebSocket memory"
CONNECTIONS = 1000
QUICK_CONNECTIONS = 200
WARMUP = 20
SETTLE_S = 3.0
IDLE_WINDOW_S = 5.0
SERVERS = {
    "crewgate": ["-m", "bench._fanout_server", "--ws-buffer", "256", "--stall-timeout", "5"],
    "websockets": ["-m", "bench._baseline_ws", "--ping-interval", "20"],
}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settled_rss(pid: int) -> float:
    """Median of three readings, SETTLE_S apart at most."""
    readings = []
    for _ in range(3):
        time.sleep(SETTLE_S / 3)
        readings.append(rss_kib(pid))
    return sorted(readings)[1]


def run_case(kind: str, connections: int, log_dir: Path) -> dict[str, Any]:
    port = free_port()
    server = Child([*SERVERS[kind], "--port", str(port)], stderr_path=log_dir / f"{kind}-memory-server.log")
    held: list[Child] = []
    try:
        pid = int(server.expect("ready", 120).split()[1])
        server.send("task")
        url = f"ws://127.0.0.1:{port}/v1/tasks/{server.expect('task ', 60).split()[1]}/events"
        warm = start_watchers(url, WARMUP, hold=True, processes=1, log_dir=log_dir)
        for child in warm:
            child.send("close")
            child.expect("closed", 60)
            child.stop()
        before = settled_rss(pid)
        held = start_watchers(url, connections, hold=True, timeout=600, log_dir=log_dir)
        after = settled_rss(pid)
        if kind == "crewgate":
            server.send("stats")  # resets the counters
            server.expect("stats ", 30)
        cpu0 = cpu_seconds(pid)
        time.sleep(IDLE_WINDOW_S)
        idle_cpu = (cpu_seconds(pid) - cpu0) / IDLE_WINDOW_S
        sql_per_s = 0.0
        if kind == "crewgate":
            server.send("stats")
            counts = json.loads(server.expect("stats ", 30).split(" ", 1)[1])
            sql_per_s = sum(v for k, v in counts.items() if k.startswith("sql ")) / IDLE_WINDOW_S
        after_idle = rss_kib(pid)
        for child in held:
            child.send("close")
        for child in held:
            child.expect("closed", 120)
    finally:
        for child in held:
            child.stop(timeout=5)
        server.stop()
    return {
        "kib_per_conn": (after - before) / connections,
        "before_mib": before / 1024,
        "after_mib": after / 1024,
        "after_idle_mib": after_idle / 1024,
        "idle_cpu_pct": idle_cpu * 100,
        "sql_per_s": sql_per_s,
    }


def run(
    quick: bool = False, *, reps: int | None = None, connections: int | None = None, verbose: bool = False
) -> list[Row]:
    raise_nofile()
    reps = reps or (1 if quick else 3)
    n = connections or (QUICK_CONNECTIONS if quick else CONNECTIONS)
    results: dict[str, list[dict[str, Any]]] = {"crewgate": [], "websockets": []}
    with tempfile.TemporaryDirectory(prefix="crewgate-wsmem-bench-") as tmp:
        for rep in range(reps):
            for kind in results:
                r = run_case(kind, n, Path(tmp))
                results[kind].append(r)
                if verbose:
                    print(
                        f"  {kind:10s} rep {rep + 1}: RSS {r['before_mib']:.1f} -> {r['after_mib']:.1f} MiB "
                        f"({r['kib_per_conn']:.1f} KiB/socket), after {IDLE_WINDOW_S:.0f} s idle "
                        f"{r['after_idle_mib']:.1f} MiB; idle CPU {r['idle_cpu_pct']:.0f}% of a core, "
                        f"{r['sql_per_s']:.0f} SQL statements/s",
                        file=sys.stderr,
                        flush=True,
                    )
    ours, base = results["crewgate"], results["websockets"]
    note = f"{n:,} idle sockets" + (f" (quick mode; the full run uses {CONNECTIONS:,})" if n != CONNECTIONS else "")
    extra = {
        kind: ", ".join(f"{r['before_mib']:.0f}->{r['after_mib']:.0f} MiB" for r in rs) for kind, rs in results.items()
    }
    extra["crewgate SQL statements/s while idle"] = ", ".join(f"{r['sql_per_s']:.0f}" for r in ours)
    common = {"section": SECTION, "baseline_name": "websockets server", "extra": extra}
    return [
        Row(
            metric="RSS per idle socket",
            unit="KiB",
            ours=[r["kib_per_conn"] for r in ours],
            baseline=[r["kib_per_conn"] for r in base],
            note=note,
            **common,
        ),
        Row(
            metric="server CPU with the sockets idle",
            unit="% of a core",
            ours=[r["idle_cpu_pct"] for r in ours],
            baseline=[r["idle_cpu_pct"] for r in base],
            note=f"{note}; over {IDLE_WINDOW_S:.0f} s; crewgate polls the watched tasks' heads once per "
            "poll_interval_s (1 s)",
            **common,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--connections", type=int)
    args = parser.parse_args()
    started = time.monotonic()
    print(f"code: {code_version()}", file=sys.stderr, flush=True)
    rows = run(args.quick, reps=args.reps, connections=args.connections, verbose=True)
    print(render_table(rows))
    for row in rows[:1]:
        print("; ".join(f"{k}: {v}" for k, v in row.extra.items()))
    print(f"idle WebSocket memory section: {time.monotonic() - started:.0f} s wall; code at the end: {code_version()}")


if __name__ == "__main__":
    main()
