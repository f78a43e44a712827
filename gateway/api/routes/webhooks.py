"""A task's webhooks and their delivery attempts (secrets are never shown)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.deps import StoreDep, scoped, task_or_404
from gateway.store import DeliveryRecord, WebhookRecord
from gateway.webhooks.delivery import delivery_id

router = APIRouter(prefix="/v1/tasks", tags=["webhooks"])
MAX_DELIVERIES = 1000


class DeliveryPublic(BaseModel):
    delivery_id: str = Field(description="the Crewgate-Delivery header: the same for every attempt at one event")
    seq: int
    event_type: str
    attempt: int
    status: str = Field(description="delivered, retrying (another attempt at next_attempt_at) or failed")
    http_status: int | None
    error: str | None
    duration_ms: int
    at: datetime
    next_attempt_at: datetime | None


class WebhookPublic(BaseModel):
    id: str
    source: str = Field(description="request: POST /v1/tasks; crew: the crew's YAML")
    url: str
    events: list[str]
    signed: bool = Field(description="deliveries carry Crewgate-Signature")
    state: str = Field(description="active, or done once the task's terminal event is settled")
    delivered_seq: int = Field(description="every event up to this seq is settled")
    attempt: int = Field(description="failed attempts at the next event so far")
    next_attempt_at: datetime | None
    deliveries: list[DeliveryPublic]


class TaskWebhooks(BaseModel):
    data: list[WebhookPublic]


def _delivery(hook: WebhookRecord, d: DeliveryRecord) -> DeliveryPublic:
    return DeliveryPublic(
        delivery_id=delivery_id(hook, d.seq),
        seq=d.seq,
        event_type=d.event_type,
        attempt=d.attempt,
        status=d.status,
        http_status=d.http_status,
        error=d.error,
        duration_ms=d.duration_ms,
        at=d.at,
        next_attempt_at=d.next_attempt_at,
    )


def _public(hook: WebhookRecord, deliveries: list[DeliveryRecord]) -> WebhookPublic:
    return WebhookPublic(
        id=hook.id,
        source=hook.source,
        url=hook.url,
        events=hook.events,
        signed=bool(hook.secret or hook.secret_env),
        state=hook.state,
        delivered_seq=hook.delivered_seq,
        attempt=hook.attempt,
        next_attempt_at=hook.next_attempt_at,
        deliveries=[_delivery(hook, d) for d in deliveries if d.webhook_id == hook.id],
    )


_ERRORS: dict[int | str, dict[str, Any]] = {404: {"description": "unknown task"}}


@router.get("/{task_id}/webhooks", response_model=TaskWebhooks, responses=_ERRORS, dependencies=[scoped("tasks:read")])
async def task_webhooks(task_id: str, store: StoreDep) -> TaskWebhooks:
    """The task's webhooks, each with its delivery attempts (oldest first, the first 1000)."""
    await task_or_404(store, task_id)
    hooks = await store.webhooks_for_task(task_id)
    deliveries = await store.webhook_deliveries(task_id, MAX_DELIVERIES) if hooks else []
    return TaskWebhooks(data=[_public(h, deliveries) for h in hooks])
