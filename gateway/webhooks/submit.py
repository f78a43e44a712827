"""The webhooks a new task gets: its request's, and its crew's YAML one; checked at submit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.store import WebhookSpec
from gateway.webhooks.policy import Refused, check_url, resolve

if TYPE_CHECKING:
    from agents.schema import CrewSpec
    from gateway.api.schemas import WebhookRequest
    from gateway.settings import Settings

__all__ = ["HookRefused", "task_webhooks"]


class HookRefused(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(message)


async def _checked(field: str, url: str, settings: Settings) -> None:
    try:
        await resolve(check_url(url, settings.webhook_hosts), allow_private=settings.webhook_allow_private)
    except Refused as exc:
        raise HookRefused(field, str(exc)) from None


async def task_webhooks(request: WebhookRequest | None, crew: CrewSpec, settings: Settings) -> list[WebhookSpec]:
    """What to store with the task; ``HookRefused`` names the field whose URL may not be called."""
    hooks: list[WebhookSpec] = []
    if request is not None:
        await _checked("webhook.url", request.url, settings)
        events = tuple(dict.fromkeys(e.value for e in request.events))
        hooks.append(WebhookSpec(request.url, events, secret=request.secret, source="request"))
    if crew.webhook is not None:
        await _checked("crew.webhook.url", crew.webhook.url, settings)
        events = tuple(dict.fromkeys(e.value for e in crew.webhook.events))
        hooks.append(WebhookSpec(crew.webhook.url, events, secret_env=crew.webhook.secret_env, source="crew"))
    return hooks
