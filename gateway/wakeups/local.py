"""Wake-ups within one process: the embedded default."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence

import structlog

from gateway.wakeups import Handler, Signal

__all__ = ["LocalWakeups"]

log = structlog.get_logger("crewgate.wakeups")


class LocalWakeups:
    """Hands each published batch straight to this process's handlers."""

    def __init__(self) -> None:
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._handlers: list[Handler] = []

    @property
    def origin(self) -> str:
        return self._origin

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, signals: Sequence[Signal]) -> None:
        if not signals:
            return
        for handler in self._handlers:
            try:
                handler(signals)
            except Exception:  # one broken handler must not stop a write or the others
                log.exception("a wake-up handler failed")

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    def status(self) -> dict[str, object]:
        return {"kind": "local", "connected": True}
