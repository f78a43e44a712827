"""Fan-out: one task's events to 1, 100 and 1,000 WebSocket watchers.

    python -m bench.fanout [--quick] [--reps 3] [--watchers 1,100,1000] [--events 1=10000,100=500]
    python -m bench.fanout --profile /tmp/fanout [--profile-watchers 100] [--profile-seconds 20]

crewgate: the real app under uvicorn (``bench._fanout_server``), an in-process emitter
appending one ``agent.log`` event per ``store.append`` call plus a notify, as the
runner does. Baseline: a plain ``websockets`` server (``bench._baseline_ws``)
broadcasting frames of the same shape and size, one ``broadcast`` call per frame, as
fast as it can. Watchers are separate processes (``bench._watchers``): P = min(4, n)
processes hold n connections, all attached (the ``task.queued`` replay received)
before emission starts.

- delivered/s = frames received by all watchers / (last receive - first emit)
- latency = receive time - the ``t`` the emitter put in the event (``time.time()``)

Event counts per watcher count are in ``EVENTS``; where they are below 10,000 the
row's note says so and why. ``--profile`` runs the crewgate case once under
``py-spy record --gil`` and prints where the server's time goes.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from bench._common import Row, render_table  # noqa: E402
from bench._watchers import Child, collect, hist_percentile, raise_nofile, start_watchers  # noqa: E402

SECTION = "fan-out"
WATCHERS = (1, 100, 1000)
TARGET_EVENTS = 10_000
# Measured before choosing (2 cores): with watchers sharing one poll of task heads and
# the in-process tail (fa8ebe4) crewgate delivers ~33-36k frames/s in total at 100 or
# 1,000 watchers. 10,000 events to 1,000 watchers (10M frames) would take ~5 min per
# repetition, so that case uses 1,000 events (1M frames, like 100 x 10,000); the row says so.
EVENTS = {1: 10_000, 100: 10_000, 1000: 1_000}
QUICK_EVENTS = {1: 1_000, 100: 100, 1000: 20}
REASON = (
    "crewgate delivers ~35k frames/s at 1,000 watchers on 2 cores, so 10,000 events "
    "(10M frames) would take ~5 min per repetition"
)
CASE_TIMEOUT = 1800.0
SERVERS = {"crewgate": "bench._fanout_server", "websockets": "bench._baseline_ws"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """user + system CPU of a process (or one of its threads), in seconds."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime, stime in clock ticks (USER_HZ = 100)


def machine_busy() -> float:
    """CPU seconds all processes have used since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / 100


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per live thread, keyed ``comm/tid`` (the event loop's thread is ``main``)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
            out[f"{comm}/{task.name}"] = cpu_seconds(pid, int(task.name))
        except OSError:
            pass
    return out


def code_version() -> str:
    """The commit measured, and the gateway files that differ from it (others edit while we run)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True).stdout

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "gateway", "agents").splitlines() if line]
    return git("log", "-1", "--format=%h %s").strip() + (f" + uncommitted: {', '.join(dirty)}" if dirty else "")


def run_case(kind: str, watchers: int, events: int, log_dir: Path, *, spy: list[str] | None = None) -> dict[str, Any]:
    """One repetition: start a server, attach watchers, emit, collect. Returns the measurements."""
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-{watchers}-", dir=log_dir))
    server = Child(["-m", SERVERS[kind], "--port", str(port)], stderr_path=log_dir / "server.log")
    children: list[Child] = []
    profiler: subprocess.Popen[bytes] | None = None
    try:
        pid = int(server.expect("ready", 120).split()[1])
        writer = ""
        if kind == "crewgate":
            server.send("writer")
            writer = server.expect("writer ", 60).split()[1]
        server.send("task")
        task_id = server.expect("task ", 60).split()[1]
        attach = time.monotonic()
        children = start_watchers(
            f"ws://127.0.0.1:{port}/v1/tasks/{task_id}/events", watchers, timeout=600, log_dir=log_dir
        )
        attach = time.monotonic() - attach
        cpu0, threads0, busy0, wall0 = cpu_seconds(pid), thread_cpu(pid), machine_busy(), time.monotonic()
        if spy:
            profiler = subprocess.Popen([*spy, "--pid", str(pid)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        server.send(f"go {events}")
        first, last_emit = map(float, server.expect("done ", CASE_TIMEOUT).split()[1:])
        stats = collect(children, CASE_TIMEOUT)
        cpu, busy, wall = cpu_seconds(pid) - cpu0, machine_busy() - busy0, time.monotonic() - wall0
        threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(pid).items()}
        db: dict[str, int] = {}
        if kind == "crewgate":
            server.send("stats")
            db = json.loads(server.expect("stats ", 60).split(" ", 1)[1])
        if profiler is not None:
            profiler.wait(timeout=600)
    finally:
        for child in children:
            child.stop(timeout=2)
        server.stop()
    span = stats["last"] - first
    kept = None
    if stats["count"] != watchers * (events + 1):  # keep the logs of a run that lost frames
        kept = Path(tempfile.gettempdir()) / f"crewgate-fanout-lost-{log_dir.name}"
        shutil.copytree(log_dir, kept)
    return {
        "delivered_per_s": stats["count"] / span if span > 0 else float("nan"),
        "p50": hist_percentile(stats["hist"], 50),
        "p99": hist_percentile(stats["hist"], 99),
        "count": stats["count"],
        "expected": watchers * (events + 1),
        "emit_s": last_emit - first,
        "span_s": span,
        "attach_s": attach,
        "server_cpu": cpu / wall if wall else 0.0,
        "wall_s": wall,
        "watcher_cpu": stats["cpu_s"] / wall if wall else 0.0,
        "other_cpu": max(0.0, busy - cpu - stats["cpu_s"]) / wall if wall else 0.0,
        "threads": threads,
        "errors": stats["errors"],
        "close_codes": dict(stats["close_codes"]),
        "db": db,
        "logs": str(kept) if kept else None,
        "writer": writer,
    }


def run(
    quick: bool = False,
    *,
    reps: int | None = None,
    watchers: tuple[int, ...] = WATCHERS,
    events: dict[int, int] | None = None,
    verbose: bool = False,
) -> list[Row]:
    raise_nofile()
    reps = reps or (1 if quick else 3)
    sizes = events or (QUICK_EVENTS if quick else EVENTS)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="crewgate-fanout-bench-") as tmp:
        for n in watchers:
            n_events = sizes.get(n, TARGET_EVENTS)
            results: dict[str, list[dict[str, Any]]] = {"crewgate": [], "websockets": []}
            for rep in range(reps):
                for kind in results:  # interleaved, so drift hits both alike
                    r = run_case(kind, n, n_events, Path(tmp))
                    results[kind].append(r)
                    if verbose:
                        print(
                            f"  {kind:10s} {n:5d} watchers x {n_events} events rep {rep + 1}: "
                            f"{r['delivered_per_s']:,.0f} frames/s, p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
                            f"emit {r['emit_s']:.1f} s, span {r['span_s']:.1f} s, attach {r['attach_s']:.1f} s, "
                            f"CPU server {r['server_cpu']:.2f} + watchers {r['watcher_cpu']:.2f} "
                            f"+ everything else {r['other_cpu']:.2f} cores, frames {r['count']}/{r['expected']}"
                            + (
                                ""
                                if r["count"] == r["expected"]
                                else f" MISSING; close codes {r['close_codes']}, errors {r['errors']}, logs {r['logs']}"
                            ),
                            file=sys.stderr,
                            flush=True,
                        )
            rows += _rows(n, n_events, reps, quick, results)
    return rows


def _rows(n: int, n_events: int, reps: int, quick: bool, results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    ours, base = results["crewgate"], results["websockets"]
    note = f"{n_events:,} events/rep"
    if n_events < TARGET_EVENTS:
        note += " (quick mode)" if quick else f" (not 10,000: {REASON})"
    lost = [r["expected"] - r["count"] for r in ours + base if r["count"] != r["expected"]]
    if lost:
        note += f"; FRAMES MISSING in {len(lost)} run(s): {lost}"
    extra = {
        "crewgate server CPU (cores)": ", ".join(f"{r['server_cpu']:.2f}" for r in ours),
        "websockets server CPU (cores)": ", ".join(f"{r['server_cpu']:.2f}" for r in base),
        "watcher processes CPU (cores), crewgate | websockets": ", ".join(f"{r['watcher_cpu']:.2f}" for r in ours)
        + " | "
        + ", ".join(f"{r['watcher_cpu']:.2f}" for r in base),
        "CPU of everything else on the machine (cores), crewgate | websockets runs": ", ".join(
            f"{r['other_cpu']:.2f}" for r in ours
        )
        + " | "
        + ", ".join(f"{r['other_cpu']:.2f}" for r in base),
        "crewgate emit s": ", ".join(f"{r['emit_s']:.1f}" for r in ours),
        "websockets emit s": ", ".join(f"{r['emit_s']:.2f}" for r in base),
        "crewgate SQL statements per event": ", ".join(_per_event(r, n_events) for r in ours),
    }
    common = {"section": SECTION, "baseline_name": "websockets.broadcast", "note": note, "extra": extra}
    return [
        Row(
            metric=f"{n:,} watchers: delivered/s",
            unit="frames/s",
            higher_is_better=True,
            ours=[r["delivered_per_s"] for r in ours],
            baseline=[r["delivered_per_s"] for r in base],
            **common,
        ),
        Row(
            metric=f"{n:,} watchers: latency p50",
            unit="ms",
            ours=[r["p50"] for r in ours],
            baseline=[r["p50"] for r in base],
            **common,
        ),
        Row(
            metric=f"{n:,} watchers: latency p99",
            unit="ms",
            ours=[r["p99"] for r in ours],
            baseline=[r["p99"] for r in base],
            **common,
        ),
    ]


def _per_event(r: dict[str, Any], events: int) -> str:
    sql = sum(v for k, v in r["db"].items() if k.startswith("sql "))
    return (
        f"{sql / (events + 1):.1f} ({r['db'].get('checkouts', 0) / (events + 1):.1f} pool checkouts, "
        f"{r['db'].get('new_connections', 0)} connections opened)"
    )


def profile(out: Path, watchers: int, events: int, seconds: int) -> None:
    """One crewgate case under py-spy (GIL holder, 100 Hz); prints CPU per thread and hot spots."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = out.with_suffix(".txt")
    spy = [py_spy, "record", "--gil", "-r", "100", "-d", str(seconds), "-f", "raw", "-o", str(raw)]
    print(f"code: {code_version()}")
    with tempfile.TemporaryDirectory(prefix="crewgate-fanout-profile-") as tmp:
        r = run_case("crewgate", watchers, events, Path(tmp), spy=spy)
    print(
        f"{watchers} watchers x {events} events: {r['delivered_per_s']:,.0f} frames/s, emit {r['emit_s']:.1f} s, "
        f"CPU: server {r['server_cpu']:.2f} cores, watcher processes {r['watcher_cpu']:.2f} cores"
    )
    main_cpu = sum(v for k, v in r["threads"].items() if k.startswith("main/"))
    process_cpu = r["server_cpu"] * r["wall_s"]
    print(
        f"server CPU {process_cpu:.1f} s over {r['wall_s']:.1f} s: event-loop thread {main_cpu:.1f} s, "
        f"other threads (aiosqlite connections, incl. ones that exited) {process_cpu - main_cpu:.1f} s"
    )
    print(
        f"database during emission ({events + 1} events): {_per_event(r, events)} per event; "
        + ", ".join(f"{k}: {v}" for k, v in sorted(r["db"].items(), key=lambda kv: -kv[1]))
    )
    _hot_spots(raw)


AREAS = (
    ("events_for_task", "watchers reading the log (events_for_task)"),
    ("get_task", "watchers re-reading the task (get_task)"),
    ("EventTail", "watchers reading the in-process tail (EventTail)"),
    ("EventLog.append", "emitter: append"),
    ("finish", "emitter: finish"),
    ("pump.<locals>.write", "sending frames (pump.write)"),
    ("sqlalchemy/", "SQLAlchemy/aiosqlite in a greenlet (stack cut at the greenlet)"),
    ("aiosqlite/", "SQLAlchemy/aiosqlite in a greenlet (stack cut at the greenlet)"),
    ("uvicorn/", "uvicorn/websockets protocol"),
    ("websockets/", "uvicorn/websockets protocol"),
)


def _hot_spots(raw: Path, top: int = 25) -> None:
    inclusive: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    areas: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [
            re.sub(r" \((?:.*site-packages/|.*/work/main/|.*/lib/python3\.\d+/)?(.*?):\d+\)$", r" (\1)", f)
            for f in stack.split(";")
            if f
        ]
        n = int(count)
        total += n
        leaf[frames[-1] if frames else "?"] += n
        area = next((area for key, area in AREAS if any(key in f for f in frames)), "other Python")
        areas[area if frames else "no Python frame (uvloop, C code)"] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"py-spy: {total} samples with the GIL held ({raw})")
    print("by area (first match wins): " + ", ".join(f"{k} {v / total:.0%}" for k, v in areas.most_common()))
    print("inclusive (share of GIL-held samples):")
    for name, n in inclusive.most_common(top):
        print(f"  {n / total:6.1%}  {name}")
    print("self:")
    for name, n in leaf.most_common(top // 2):
        print(f"  {n / total:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int)
    parser.add_argument("--watchers", default=",".join(map(str, WATCHERS)))
    parser.add_argument("--events", help="per watcher count, e.g. 1=10000,100=500,1000=100")
    parser.add_argument("--profile", type=Path, help="profile one crewgate case; raw py-spy stacks to PROFILE.txt")
    parser.add_argument("--profile-watchers", type=int, default=100)
    parser.add_argument("--profile-events", type=int, default=300)
    parser.add_argument("--profile-seconds", type=int, default=20)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.profile_watchers, args.profile_events, args.profile_seconds)
        return
    events = dict(tuple(map(int, p.split("="))) for p in args.events.split(",")) if args.events else None
    started = time.monotonic()
    print(f"code: {code_version()}", file=sys.stderr, flush=True)
    rows = run(
        args.quick,
        reps=args.reps,
        watchers=tuple(int(w) for w in args.watchers.split(",")),
        events=events,
        verbose=True,
    )
    print(render_table(rows))
    for row in rows[::3]:
        print(f"{row.metric.split(':')[0]}: " + "; ".join(f"{k}: {v}" for k, v in row.extra.items()))
    print(f"fan-out section: {time.monotonic() - started:.0f} s wall; code at the end: {code_version()}")


if __name__ == "__main__":
    main()
