"""WebSocket watcher processes for the fan-out and memory benchmarks, and the plumbing
the harness uses to drive child processes line by line.

Run as a process (the harness does this)::

    python -m bench._watchers --url ws://127.0.0.1:PORT/v1/tasks/ID/events --count 250 [--hold]

It opens ``count`` connections (``websockets.asyncio.client``), waits until each has
received its first frame (the ``task.queued`` replay), prints ``ready N``, then:

- default: reads every connection until its terminal frame (``task.completed``) or
  close, recording for every frame ``now - data["t"]`` into a log-scale histogram
  (1 % wide buckets), and prints one JSON line of stats;
- ``--hold``: keeps the sockets open and idle until a line (or EOF) on stdin, then
  closes them and prints ``closed``.

Latency uses ``time.time()``: server and watchers share the machine's clock.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
BUCKET = 1.01  # histogram bucket width: latencies within 1 % share a bucket
_LOG_BUCKET = math.log(BUCKET)
TERMINAL = frozenset({"task.completed", "task.failed", "task.cancelled"})
CONNECT_CONCURRENCY = 64


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        return None
    return uvloop.new_event_loop


# --------------------------------------------------------------------- histograms


def bucket_of(seconds: float) -> int:
    micros = seconds * 1e6
    return int(math.log(micros) / _LOG_BUCKET) if micros > 1 else 0


def bucket_ms(bucket: int) -> float:
    """The bucket's geometric middle, in milliseconds."""
    return BUCKET ** (bucket + 0.5) / 1000


def hist_percentile(hist: dict[int, int], q: float) -> float:
    """Nearest-rank percentile (as bench._common.percentile) over a histogram, in ms."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank = max(1, min(total, round(q / 100 * total + 0.5)))
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return bucket_ms(bucket)
    return bucket_ms(max(hist))


# --------------------------------------------------------------------- watcher process


async def _watch(
    url: str,
    connected: asyncio.Event,
    ready: list[int],
    total: int,
    stats: dict[str, Any],
    hist: Counter[int],
    gate: asyncio.Semaphore,
    hold: asyncio.Event | None,
) -> None:
    from websockets.asyncio.client import connect

    try:
        import orjson

        loads = orjson.loads
    except ImportError:  # pragma: no cover
        loads = json.loads
    async with gate:
        ws = await connect(
            url, max_size=None, compression=None, ping_interval=None, open_timeout=120, close_timeout=5, max_queue=None
        )
        await ws.recv()  # the task.queued replay: this watcher is attached
    ready[0] += 1
    if ready[0] == total:
        connected.set()
    count = 0
    first = last = 0.0
    try:
        if hold is not None:
            await hold.wait()
            return
        async for message in ws:
            now = time.time()
            event = loads(message)
            t = event["data"].get("t")
            if t is not None:
                hist[bucket_of(now - t)] += 1
            count += 1
            if not first:
                first = now
            last = now
            if event["type"] in TERMINAL:
                break
    finally:  # a connection that failed half-way still reports what it received
        stats["count"] += count
        if first:
            stats["first"] = min(stats["first"] or first, first)
        stats["last"] = max(stats["last"], last)
        if hold is None:
            code = str(ws.close_code)
            stats["close_codes"][code] = stats["close_codes"].get(code, 0) + 1
        await ws.close()


async def watcher_main(url: str, count: int, hold: bool) -> None:
    connected = asyncio.Event()
    ready = [0]
    stats: dict[str, Any] = {"count": 0, "first": 0.0, "last": 0.0, "close_codes": {}, "errors": []}
    hist: Counter[int] = Counter()
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    release = asyncio.Event() if hold else None
    jobs = [asyncio.create_task(_watch(url, connected, ready, count, stats, hist, gate, release)) for _ in range(count)]
    waiter = asyncio.create_task(connected.wait())
    done, _ = await asyncio.wait({waiter, *jobs}, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:  # a connection failed before all were attached
        failed = [j for j in done if j.exception() is not None]
        print(f"failed {failed[0].exception()!r}" if failed else "failed early", flush=True)
        for job in jobs:
            job.cancel()
        return
    print(f"ready {ready[0]}", flush=True)
    cpu_at_ready = time.process_time()
    if release is not None:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        release.set()
    results = await asyncio.gather(*jobs, return_exceptions=True)
    if release is not None:
        print("closed", flush=True)
        return
    stats["cpu_s"] = time.process_time() - cpu_at_ready  # this process, from "ready" to the end
    stats["errors"] = [repr(r) for r in results if isinstance(r, BaseException)][:5]
    stats["hist"] = {str(k): v for k, v in hist.items()}
    print(json.dumps(stats), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--hold", action="store_true", help="keep the sockets idle until a line on stdin")
    args = parser.parse_args()
    raise_nofile()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(watcher_main(args.url, args.count, args.hold))


# --------------------------------------------------------------------- harness side


class Child:
    """A child process spoken to by lines on stdin and read by lines on stdout."""

    def __init__(self, argv: Sequence[str], *, stderr_path: Path | None = None) -> None:
        self._err = stderr_path.open("ab") if stderr_path else subprocess.DEVNULL
        self.stderr_path = stderr_path
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=PROJECT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, timeout: float) -> str:
        """The next stdout line starting with ``prefix`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no '{prefix}' line from {self.proc.args!r} in {timeout:.0f} s{self._tail()}")
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError(f"{self.proc.args!r} exited ({self.proc.wait()}) before '{prefix}'{self._tail()}")
            if line.startswith(prefix):
                return line
            if line.startswith("failed"):
                raise RuntimeError(f"{self.proc.args!r}: {line}{self._tail()}")

    def _tail(self) -> str:
        if self.stderr_path and self.stderr_path.exists():
            return "\n" + self.stderr_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
        if self._err is not subprocess.DEVNULL:
            self._err.close()


def start_watchers(
    url: str, n: int, *, hold: bool = False, processes: int = 4, timeout: float = 300, log_dir: Path | None = None
) -> list[Child]:
    """P = min(processes, n) watcher processes holding ``n`` connections between them, all attached."""
    procs = max(1, min(processes, n))
    counts = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    children = [
        Child(
            ["-m", "bench._watchers", "--url", url, "--count", str(c), *(["--hold"] if hold else [])],
            stderr_path=(log_dir / f"watchers-{i}.log") if log_dir else None,
        )
        for i, c in enumerate(counts)
    ]
    try:
        for child in children:
            child.expect("ready", timeout)
    except BaseException:
        for child in children:
            child.stop(timeout=1)
        raise
    return children


def collect(children: list[Child], timeout: float) -> dict[str, Any]:
    """Merge the stats lines of finished (non-hold) watcher processes."""
    total: dict[str, Any] = {
        "count": 0,
        "first": 0.0,
        "last": 0.0,
        "close_codes": Counter(),
        "errors": [],
        "hist": Counter(),
        "cpu_s": 0.0,
    }
    deadline = time.monotonic() + timeout
    for child in children:
        line = child.expect("{", max(1.0, deadline - time.monotonic()))
        stats = json.loads(line)
        total["count"] += stats["count"]
        if stats["first"]:
            total["first"] = min(total["first"] or stats["first"], stats["first"])
        total["last"] = max(total["last"], stats["last"])
        total["close_codes"].update(stats["close_codes"])
        total["errors"] += stats["errors"]
        total["cpu_s"] += stats.get("cpu_s", 0.0)
        total["hist"].update({int(k): v for k, v in stats["hist"].items()})
        child.stop()
    return total


if __name__ == "__main__":
    main()
