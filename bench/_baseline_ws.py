"""The baseline: a plain ``websockets`` server broadcasting gateway-shaped frames.

    python -m bench._baseline_ws --port PORT [--ping-interval 20]

``websockets.asyncio.server`` on 127.0.0.1, on the same event loop uvicorn picks
for the gateway (uvloop when installed). Every connection first gets a
``task.queued`` frame (as a gateway watcher gets the replay), then stays open.
Prints ``ready PID``, then reads commands on stdin:

- ``task`` — starts a new fake task (fresh id, seq from 1) and prints ``task ID``;
- ``go N`` — broadcasts N ``agent.log`` frames, one ``websockets.broadcast`` call per
  frame and ``await asyncio.sleep(0)`` between frames, then a ``task.completed``
  frame, then closes every connection with 1000 (in the background: the close frame queues
  behind what a watcher has not read yet); prints ``done FIRST LAST``;
- ``quit`` or EOF — stops.

Frames are built as the gateway builds them (``StoredEvent.public()`` and the same
``json.dumps`` call as ``gateway.streaming.frame``), so shape and size match; unlike
the gateway, each frame is serialised once for all connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from bench._watchers import loop_factory, raise_nofile

PAD = "x" * 200


class FakeLog:
    """Numbers events the way the store does: a global id and a per-task seq."""

    def __init__(self) -> None:
        self.last_id = 0
        self.task_id = str(uuid.uuid4())
        self.seq = 0
        self.queued = ""

    def new_task(self) -> str:
        self.task_id, self.seq = str(uuid.uuid4()), 0
        self.queued = self.frame(
            "task.queued",
            {
                "crew": "incident_triage",
                "inputs": {"service": "checkout", "note": "fan-out bench"},
                "config_version": "0" * 12,
            },
        )
        return self.task_id

    def frame(self, type_: str, data: dict[str, Any]) -> str:
        self.last_id += 1
        self.seq += 1
        public = {
            "v": 1,
            "id": str(self.last_id),
            "seq": self.seq,
            "task_id": self.task_id,
            "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "type": type_,
            "agent": None,
            "step": None,
            "data": data,
        }
        return json.dumps(public, ensure_ascii=False, separators=(",", ":"))


async def run(port: int, ping_interval: float | None) -> None:
    from websockets.asyncio.server import broadcast, serve

    log = FakeLog()
    log.new_task()
    connections: set[Any] = set()
    closing: set[asyncio.Task[None]] = set()

    async def handler(ws: Any) -> None:
        await ws.send(log.queued)
        connections.add(ws)
        try:
            await ws.wait_closed()
        finally:
            connections.discard(ws)

    loop = asyncio.get_running_loop()
    async with serve(
        handler,
        "127.0.0.1",
        port,
        max_size=None,
        ping_interval=ping_interval,
        ping_timeout=ping_interval,
        close_timeout=600,
        backlog=4096,
    ):
        print(f"ready {os.getpid()}", flush=True)
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line or line == "quit":
                break
            if line == "task":
                print(f"task {log.new_task()}", flush=True)
            elif line.startswith("go "):
                n = int(line.split()[1])
                first = 0.0
                for i in range(n):
                    t = time.time()
                    first = first or t
                    broadcast(connections, log.frame("agent.log", {"t": t, "n": i, "pad": PAD}))
                    await asyncio.sleep(0)
                broadcast(connections, log.frame("task.completed", {"t": time.time()}))
                last = time.time()
                # the close frame queues behind the frames a watcher has not read yet
                closing.update(asyncio.create_task(ws.close(1000, "done")) for ws in list(connections))
                print(f"done {first!r} {last!r}", flush=True)
            else:
                print(f"failed: unknown command {line!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ping-interval", type=float, default=0, help="0: no pings (the fan-out default)")
    args = parser.parse_args()
    raise_nofile()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(run(args.port, args.ping_interval or None))


if __name__ == "__main__":
    main()
