"""Background loops that must outlive a passing outage."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from gateway.eventlog import backoff

__all__ = ["POLL_BACKOFF_MAX_S", "poll_forever"]

log = structlog.get_logger("crewgate.loops")
POLL_BACKOFF_MAX_S = 10.0  # the longest wait between failed polls of the store


async def poll_forever(name: str, interval: float, check: Callable[[], Awaitable[object]]) -> None:
    """Run ``check`` every ``interval`` seconds until cancelled. A failure (the store or a
    broker unavailable) is logged and retried with backoff; it never ends the loop."""
    cap = max(interval, POLL_BACKOFF_MAX_S)
    delay, failures, delays = interval, 0, backoff(min(2 * interval, cap), cap)
    while True:
        await asyncio.sleep(delay)
        try:
            await check()
        except Exception as exc:
            failures += 1
            delay = next(delays)
            log.warning("a background poll failed", loop=name, failures=failures, retry_in_s=delay, error=str(exc))
            continue
        if failures:
            log.info("a background poll works again", loop=name, failures=failures)
        delay, failures, delays = interval, 0, backoff(min(2 * interval, cap), cap)
