"""Redis wake-ups: publish -> handler latency between two processes on one machine.

    python -m bench.wakeups_latency [--url redis://127.0.0.1:6379/0] [--n 1000]

A receiver process subscribes; this process publishes ``n`` signals one at a time (one
batch each, 1 ms apart: the latency of a lone wake-up) and then ``n`` in a burst (back
to back without yielding: they coalesce into few messages). Each signal carries its
send time (CLOCK_MONOTONIC, shared by all processes on Linux) in its task id; the
receiver prints p50/p99/max per phase. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence

from gateway.wakeups import Signal, SignalKind
from gateway.wakeups.redis import RedisWakeups


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def receive(url: str, channel: str, n: int) -> None:
    latencies: dict[str, list[float]] = {"lone": [], "burst": []}
    batches = {"lone": 0, "burst": 0}
    done = asyncio.Event()
    ready = asyncio.Event()

    def handler(signals: Sequence[Signal]) -> None:
        now = time.monotonic_ns()
        if signals[0].kind == SignalKind.resync:
            ready.set()
            return
        phase = "lone" if signals[0].seq == 0 else "burst"
        batches[phase] += 1
        for signal in signals:
            latencies[phase].append((now - int(signal.task_id)) / 1e6)
        if len(latencies["burst"]) >= n:
            done.set()

    wakeups = RedisWakeups(url, channel=channel)
    wakeups.subscribe(handler)
    await wakeups.start()
    await ready.wait()
    print("ready", flush=True)
    try:
        await asyncio.wait_for(done.wait(), 60)
    finally:
        await wakeups.close()
    report = {
        phase: {
            "signals": len(ms),
            "messages": batches[phase],
            "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(_pct(ms, 0.99), 3),
            "max_ms": round(max(ms), 3),
        }
        for phase, ms in latencies.items()
    }
    print(json.dumps(report, indent=2))


async def send(url: str, channel: str, n: int) -> None:
    wakeups = RedisWakeups(url, channel=channel)
    await wakeups.start()
    while not wakeups.status()["connected"]:
        await asyncio.sleep(0.01)
    for _ in range(n):  # lone: each its own batch and message
        wakeups.publish([Signal(SignalKind.appended, str(time.monotonic_ns()), seq=0)])
        await asyncio.sleep(0.001)
    for i in range(n):  # burst: all queued before the sender runs
        wakeups.publish([Signal(SignalKind.appended, str(time.monotonic_ns()), seq=i + 1)])
    await asyncio.sleep(0.5)
    print("sender status:", wakeups.status(), file=sys.stderr)
    await wakeups.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--receive", metavar="CHANNEL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        asyncio.run(receive(args.url, args.receive, args.n))
        return
    channel = f"crewgate-bench-{uuid.uuid4().hex}:wakeups"
    command = [sys.executable, "-m", "bench.wakeups_latency", "--url", args.url, "--n", str(args.n)]
    with subprocess.Popen([*command, "--receive", channel], stdout=subprocess.PIPE, text=True) as receiver:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "ready":
            raise SystemExit("the receiver did not subscribe")
        asyncio.run(send(args.url, channel, args.n))
        print(receiver.stdout.read(), end="")


if __name__ == "__main__":
    main()
