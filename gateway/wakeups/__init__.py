"""The wake-up seam: telling every process that something changed in the store.

A wake-up says only *that* something happened (events appended to a task, a cancel
asked for, an answer given) so that waiting watchers and runners look at the store
now instead of at their next poll. It is never the only copy of anything: the store
is the truth, and every process still polls it as a fallback, so a lost wake-up (the
broker restarting, a full buffer) delays, and never loses, an event or a cancel.

Implementations, beside this Protocol:

- ``LocalWakeups`` (``gateway.wakeups.local``): within one process; the embedded default.
- ``RedisWakeups`` (``gateway.wakeups.redis``): Redis pub/sub, across processes and machines.
- ``PostgresWakeups`` (``gateway.wakeups.postgres``): LISTEN/NOTIFY, the same without Redis.

``open_wakeups(settings)`` chooses by settings; nothing else knows which is in use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = ["Handler", "Signal", "SignalKind", "Wakeups", "open_wakeups"]


class SignalKind(StrEnum):
    appended = "appended"  # events committed to a task's log (seq, event_id, ended say how far)
    cancel = "cancel"  # a cancel was asked for a running task
    answer = "answer"  # a person answered a task's input request
    resync = "resync"  # wake-ups may have been missed (a reconnect): look at the store now


@dataclass(frozen=True)
class Signal:
    kind: SignalKind
    task_id: str = ""
    seq: int = 0  # appended: the task's newest committed seq
    event_id: int = 0  # appended: the newest committed event id
    ended: bool = False  # appended: the task is terminal
    origin: str = ""  # the process that published it (its ``Wakeups.origin``)


Handler = Callable[[Sequence[Signal]], None]


class Wakeups(Protocol):
    @property
    def origin(self) -> str:
        """This process's name on the wire: handlers can skip what it published itself."""

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler`` on the event loop's thread with each batch of signals: this
        process's own at once, from ``publish``; other processes' as they arrive. Handlers
        must be quick and must not raise."""

    def publish(self, signals: Sequence[Signal]) -> None:
        """Send ``signals`` to every subscribed process; call on the event loop's thread.

        Never blocks and never raises: a wake-up that cannot be sent is dropped (and the
        poll finds the change), so a broker outage cannot slow or fail a write."""

    async def start(self) -> None:
        """Connect (in the background: returns at once even if the broker is down)."""

    async def close(self) -> None: ...

    def status(self) -> dict[str, object]:
        """For /readyz: ``{"kind": ..., "connected": bool, ...}``. A disconnected broker
        does not make a process unready: streams stay correct on the poll."""


def open_wakeups(settings: Settings) -> Wakeups:
    """By ``CREWGATE_WAKEUPS``: ``auto`` is Redis pub/sub when ``CREWGATE_REDIS_URL`` is set,
    else in-process; ``postgres`` (asked for by name: it holds two more connections per
    process) is LISTEN/NOTIFY on the store's PostgreSQL database. A choice its settings
    cannot serve is a ``ValueError`` at start-up, not a silent fall back to the poll."""
    mode = settings.wakeups
    if mode == "auto":
        mode = "redis" if settings.redis_url else "local"
    if mode == "redis":
        if not settings.redis_url:
            raise ValueError("CREWGATE_WAKEUPS=redis needs CREWGATE_REDIS_URL")
        from gateway.wakeups.redis import RedisWakeups

        return RedisWakeups(settings.redis_url, channel=f"{settings.redis_prefix}:wakeups")
    if mode == "postgres":
        from gateway.wakeups.postgres import MAX_CHANNEL_BYTES, PostgresWakeups, asyncpg_dsn, is_postgres

        if not is_postgres(settings.database_url):
            raise ValueError("CREWGATE_WAKEUPS=postgres needs a PostgreSQL CREWGATE_DATABASE_URL")
        channel = f"{settings.redis_prefix}:wakeups"[-MAX_CHANNEL_BYTES:]  # the prefix's pattern is ASCII
        return PostgresWakeups(asyncpg_dsn(settings.database_url), channel=channel)
    from gateway.wakeups.local import LocalWakeups

    return LocalWakeups()
