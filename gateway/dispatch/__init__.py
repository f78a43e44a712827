"""The dispatcher seam: how a stored task reaches a process that runs its crew.

Implementations, beside this Protocol:

- ``EmbeddedDispatcher`` (``gateway.dispatch.embedded``): a bounded pool of threads in
  the gateway itself; the one-command default.
- ``CeleryDispatcher`` (``gateway.dispatch.celery``): a message per task on a Celery
  broker (Redis or RabbitMQ), run by ``crewgate worker`` processes; the gateway runs no crews.

Whichever it is, the store stays the truth: a task is ``queued`` before it is
dispatched, a runner claims it under a lease before it runs (so a message delivered
twice runs it once), and recovery (``gateway.recovery``) offers again what a dead
runner or a lost message left behind. ``open_dispatcher`` chooses by settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.configs import ConfigManager
    from gateway.eventlog import EventLog
    from gateway.settings import Settings

__all__ = ["Dispatcher", "open_dispatcher"]


class Dispatcher(Protocol):
    @property
    def running(self) -> int:
        """Tasks whose crews run in this process now."""

    async def start(self) -> None:
        """Begin taking work (and offering again what a crash left)."""

    async def stop(self) -> None:
        """Stop; crews running here stop at their next checkpoint and hand their tasks back."""

    async def dispatch(self, task_id: str, attempt: int = 1) -> None:
        """Hand ``attempt`` of a stored task to a runner. Never raises because the broker is
        down: the task stays in the store and recovery offers it again."""

    async def check(self) -> None:
        """Raise if this dispatcher cannot hand out work now (its broker is unreachable)."""

    def status(self) -> dict[str, object]:
        """For /readyz: ``{"kind": ..., ...}``."""


def open_dispatcher(settings: Settings, configs: ConfigManager, events: EventLog) -> Dispatcher:
    """``CREWGATE_DISPATCHER``: ``embedded`` (default) or ``celery``."""
    if settings.dispatcher == "celery":
        from gateway.dispatch.celery import CeleryDispatcher

        return CeleryDispatcher(settings, configs, events)
    from gateway.dispatch.embedded import EmbeddedDispatcher

    return EmbeddedDispatcher(settings, configs, events)
