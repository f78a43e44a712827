"""In-process wake-ups for watchers: "the log has grown, read it again".

Watchers take the current signal, read the log, and wait on that signal only if
they found nothing new, so an append between the read and the wait is never
missed. Appends made by another process are found by the periodic re-read
(``poll_interval_s``) that every wait is bounded by.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Notifier"]


class Notifier:
    def __init__(self) -> None:
        self._signal = asyncio.Event()

    def current(self) -> asyncio.Event:
        return self._signal

    def notify(self) -> None:
        """Wake every waiter; call on the event loop's thread."""
        signal, self._signal = self._signal, asyncio.Event()
        signal.set()

    @staticmethod
    async def wait(signal: asyncio.Event, timeout: float) -> bool:
        """True when woken by a local append, False when the timeout passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), timeout)
            return True
        return False
