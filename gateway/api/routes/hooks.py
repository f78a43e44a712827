"""Incoming hooks: Alertmanager's webhook starts the crews its alerts are mapped to.

A crew maps alerts in its YAML (``alerts: [{match: {alertname: …}, inputs: {service:
"{labels.service}"}}]``). Each firing alert starts, per matching crew, one task, made
idempotent on the alert's fingerprint and ``startsAt`` by the Idempotency-Key machinery
of ``POST /v1/tasks``: Alertmanager repeating a notification starts nothing new.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from agents.catalog import Catalog
from agents.errors import InputError
from agents.inputs import validate_inputs
from agents.schema import ALERT_FIELD, AlertRoute, CrewSpec
from gateway.api.deps import ActiveCatalogDep, DispatcherDep, EventLogDep, SettingsDep, scoped
from gateway.dispatch import Dispatcher
from gateway.eventlog import EventLog
from gateway.settings import Settings
from gateway.store import IdempotencyConflict
from gateway.webhooks.submit import HookRefused, task_webhooks

router = APIRouter(prefix="/v1/hooks", tags=["hooks"])

Label = Annotated[str, StringConstraints(max_length=256)]
Value = Annotated[str, StringConstraints(max_length=8192)]
Labels = Annotated[dict[Label, Value], Field(max_length=64)]


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    startsAt: str = Field(default="", max_length=64)  # noqa: N815 - Alertmanager's names
    endsAt: str = Field(default="", max_length=64)  # noqa: N815
    generatorURL: str = Field(default="", max_length=4096)  # noqa: N815
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class AlertmanagerPayload(BaseModel):
    """Alertmanager's webhook body (version 4); fields not used here are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    version: str = Field(default="4", max_length=8)
    receiver: str = Field(default="", max_length=256)
    status: Literal["firing", "resolved"]
    alerts: list[Alert] = Field(max_length=200)
    groupLabels: Labels = Field(default_factory=dict)  # noqa: N815
    commonLabels: Labels = Field(default_factory=dict)  # noqa: N815
    commonAnnotations: Labels = Field(default_factory=dict)  # noqa: N815
    externalURL: str = Field(default="", max_length=4096)  # noqa: N815
    groupKey: str = Field(default="", max_length=4096)  # noqa: N815
    truncatedAlerts: int = Field(default=0, ge=0)  # noqa: N815


class Started(BaseModel):
    task_id: str
    crew: str
    fingerprint: str


class Skipped(BaseModel):
    fingerprint: str
    crew: str | None = None
    reason: Literal["resolved", "no_mapping", "duplicate", "invalid_inputs", "webhook_refused"]
    task_id: str | None = Field(default=None, description="duplicate: the task the alert started before")
    message: str = ""


class AlertsAccepted(BaseModel):
    started: list[Started]
    skipped: list[Skipped]


def _route(spec: CrewSpec, alert: Alert) -> AlertRoute | None:
    for route in spec.alerts:
        if all(alert.labels.get(k) == v for k, v in route.match.items()):
            return route
    return None


def _render(route: AlertRoute, alert: Alert) -> dict[str, Any]:
    def value(m: Any) -> str:
        source = alert.labels if m.group(1) == "labels" else alert.annotations
        return source.get(m.group(2), "")

    return {name: ALERT_FIELD.sub(value, template) for name, template in route.inputs.items()}


class _Starter:
    """Starts the tasks of one payload and says what became of each alert."""

    def __init__(self, catalog: Catalog, log: EventLog, dispatcher: Dispatcher, settings: Settings) -> None:
        self.catalog = catalog
        self.log = log
        self.dispatcher = dispatcher
        self.settings = settings
        self.result = AlertsAccepted(started=[], skipped=[])

    async def alert(self, alert: Alert) -> None:
        if alert.status != "firing":
            self.result.skipped.append(Skipped(fingerprint=alert.fingerprint, reason="resolved"))
            return
        matched = [(name, spec, _route(spec, alert)) for name, spec in sorted(self.catalog.crews.items())]
        routes = [(name, spec, route) for name, spec, route in matched if route is not None]
        if not routes:
            self.result.skipped.append(Skipped(fingerprint=alert.fingerprint, reason="no_mapping"))
        for name, spec, route in routes:
            await self._start(alert, name, spec, route)

    async def _start(self, alert: Alert, name: str, spec: CrewSpec, route: AlertRoute) -> None:
        skip = Skipped(fingerprint=alert.fingerprint, crew=name, reason="invalid_inputs")
        try:
            inputs = validate_inputs(name, spec, _render(route, alert), roots=self.settings.roots)
            hooks = await task_webhooks(None, spec, self.settings)
        except InputError as e:
            self.result.skipped.append(skip.model_copy(update={"message": f"invalid inputs: {e}"[:1000]}))
            return
        except HookRefused as e:
            self.result.skipped.append(skip.model_copy(update={"reason": "webhook_refused", "message": e.message}))
            return
        key = f"alertmanager:{name}:{alert.fingerprint}:{_digest(alert.startsAt)[:16]}"
        request_hash = _digest(json.dumps({"crew": name, "inputs": inputs}, sort_keys=True))
        try:
            record, created = await self.log.create_task(
                name, inputs, self.catalog.version, idempotency_key=key, request_hash=request_hash, webhooks=hooks
            )
        except IdempotencyConflict as e:  # started before, from other inputs (the mapping changed since)
            self.result.skipped.append(skip.model_copy(update={"reason": "duplicate", "task_id": e.task_id}))
            return
        if not created:
            self.result.skipped.append(skip.model_copy(update={"reason": "duplicate", "task_id": record.id}))
            return
        await self.dispatcher.dispatch(record.id)
        self.result.started.append(Started(task_id=record.id, crew=name, fingerprint=alert.fingerprint))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@router.post(
    "/alertmanager",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AlertsAccepted,
    dependencies=[scoped("tasks:write")],  # it starts tasks
)
async def alertmanager(
    payload: AlertmanagerPayload,
    log: EventLogDep,
    dispatcher: DispatcherDep,
    catalog: ActiveCatalogDep,
    settings: SettingsDep,
) -> AlertsAccepted:
    """Start the crew mapped to each firing alert (once per alert fingerprint and startsAt)."""
    starter = _Starter(catalog, log, dispatcher, settings)
    for alert in payload.alerts:
        await starter.alert(alert)
    return starter.result
