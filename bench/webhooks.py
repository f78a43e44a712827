"""Webhook delivery throughput: tasks are stored (not run), each with a hook on
``task.queued``; one ``WebhookDeliverer`` sends them to a local receiver.

    python -m bench.webhooks [--tasks 1000] [--concurrency 16] [--database-url URL]

Prints deliveries per second from the first claim to the last recorded delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway.settings import Settings
from gateway.store import WebhookSpec, open_store
from gateway.webhooks.delivery import WebhookDeliverer
from tests.support.receiver import Receiver


async def measure(tasks: int, concurrency: int, url: str, roots: str) -> float:
    store = open_store(url)
    await store.migrate()
    with Receiver() as receiver:
        hook = [WebhookSpec(receiver.url, ("task.queued",), secret="bench")]
        for i in range(tasks):
            await store.create_task("bench", {"i": i}, "v1", webhooks=hook)
        settings = Settings(
            allowed_roots=roots,
            webhook_allowed_hosts="127.0.0.1",
            webhook_allow_private=True,
            webhook_concurrency=concurrency,
            webhook_poll_s=0.05,
        )
        deliverer = WebhookDeliverer(settings, store)
        started = time.monotonic()
        loop = asyncio.create_task(deliverer.run())
        while deliverer.delivered < tasks:
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        assert len(receiver.accepted()) == tasks, len(receiver.accepted())
    await store.close()
    return tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        rate = asyncio.run(measure(args.tasks, args.concurrency, url, tmp))
    print(f"{args.tasks} deliveries, concurrency {args.concurrency}: {rate:.0f} deliveries/s")


if __name__ == "__main__":
    main()
