"""Load generator, run as its own process: C concurrent clients POST until N requests are done.

    python -m bench._load URL N CONCURRENCY BODY_JSON [TOKEN]
With TOKEN, every request carries ``Authorization: Bearer TOKEN``.
Prints one JSON line: per-request latencies (s), elapsed (s), errors.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def main(url: str, total: int, concurrency: int, body: dict, token: str | None = None) -> None:
    latencies: list[float] = []
    errors = 0
    remaining = [total]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60, headers=headers) as client:
        for _ in range(20):  # warm up connections and code paths
            await client.post("/v1/tasks", json=body)

        async def worker() -> None:
            nonlocal errors
            while remaining[0] > 0:
                remaining[0] -= 1
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/tasks", json=body)
                except httpx.TransportError:  # a reset or refused connection is a failed request
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    print(json.dumps({"latencies": latencies, "elapsed": elapsed, "errors": errors}))


if __name__ == "__main__":
    token = sys.argv[5] if len(sys.argv) > 5 else None
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4]), token))
