"""Tasks: submit, list, read, cancel, retry."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status

from agents.errors import InputError, UnknownCrewError
from agents.inputs import validate_inputs
from agents.schema import CrewSpec
from gateway.api.deps import ActiveCatalogDep, DispatcherDep, EventLogDep, SettingsDep, StoreDep, scoped, task_or_404
from gateway.api.errors import ApiError
from gateway.api.schemas import TaskAccepted, TaskCreate, TaskPublic, TasksPublic, task_links, task_public
from gateway.settings import Settings
from gateway.store import TERMINAL_STATUSES as TERMINAL
from gateway.store import IdempotencyConflict, TaskRecord, TaskStatus, WebhookSpec
from gateway.webhooks.submit import HookRefused, task_webhooks

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

IDEMPOTENCY_KEY = r"^[!-~](?:[ -~]*[!-~])?$"  # printable ASCII, no blank ends
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown task or crew"},
    422: {"description": "invalid request or inputs"},
}


_NOT_READY: dict[int | str, dict[str, Any]] = {503: {"description": "no config is loaded"}}


def _accepted(record: TaskRecord, response: Response) -> TaskAccepted:
    response.headers["Location"] = f"/v1/tasks/{record.id}"
    return TaskAccepted(
        id=record.id, status=record.status, config_version=record.config_version, links=task_links(record.id)
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses={**_ERRORS, 409: {"description": "Idempotency-Key reused with another body"}, **_NOT_READY},
    dependencies=[scoped("tasks:write")],
)
async def submit_task(
    body: TaskCreate,
    response: Response,
    log: EventLogDep,
    dispatcher: DispatcherDep,
    catalog: ActiveCatalogDep,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            pattern=IDEMPOTENCY_KEY,
            description="a request sent again with the same key returns the same task",
            examples=["3d9e2c1a-deploy-1234"],
        ),
    ] = None,
) -> TaskAccepted:
    """Queue a crew run. Inputs are checked against the crew's declaration first."""
    try:
        spec = catalog.crew(body.crew)
    except UnknownCrewError as e:
        raise ApiError(404, "unknown_crew", str(e), {"known": e.known}) from e
    try:
        inputs = validate_inputs(body.crew, spec, body.inputs, roots=settings.roots)
    except InputError as e:
        details = [{"field": f"inputs.{i.field}", "message": i.message} for i in e.issues]
        raise ApiError(422, "invalid_inputs", f"invalid inputs: {e}", details) from e
    hooks = await _hooks(body, spec, settings)
    request_hash = hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
    try:
        record, created = await log.create_task(
            body.crew,
            inputs,
            catalog.version,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            webhooks=hooks,
        )
    except IdempotencyConflict as e:
        raise ApiError(409, "idempotency_conflict", str(e), {"task_id": e.task_id}) from e
    if created:
        await dispatcher.dispatch(record.id)
    return _accepted(record, response)


async def _hooks(body: TaskCreate, spec: CrewSpec, settings: Settings) -> list[WebhookSpec]:
    try:
        return await task_webhooks(body.webhook, spec, settings)
    except HookRefused as e:
        raise ApiError(422, "webhook_refused", e.message, [{"field": e.field, "message": e.message}]) from e


@router.get("", response_model=TasksPublic, dependencies=[scoped("tasks:read")])
async def list_tasks(
    store: StoreDep,
    status_filter: Annotated[TaskStatus | None, Query(alias="status")] = None,
    crew: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="next_cursor of the last page")] = None,
) -> TasksPublic:
    """Newest first, paged by an opaque cursor."""
    records = await store.list_tasks(
        status=status_filter, crew=crew, limit=limit + 1, before_num=int(cursor) if cursor else None
    )
    page = records[:limit]
    next_cursor = str(page[-1].num) if len(records) > limit else None
    return TasksPublic(data=[task_public(r) for r in page], next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskPublic, responses=_ERRORS, dependencies=[scoped("tasks:read")])
async def get_task(task_id: str, store: StoreDep) -> TaskPublic:
    return task_public(await task_or_404(store, task_id))


@router.post(
    "/{task_id}/cancel",
    response_model=TaskPublic,
    responses={**_ERRORS, 409: {"description": "the task already ended"}},
    dependencies=[scoped("tasks:write")],
)
async def cancel_task(task_id: str, store: StoreDep, log: EventLogDep) -> TaskPublic:
    """Queued: cancelled at once. Running: stops at its next model call, tool call or step."""
    record = await task_or_404(store, task_id)
    if record.status in TERMINAL:
        raise ApiError(409, "task_finished", f"task {task_id} already ended ({record.status.value})")
    updated = await log.request_cancel(task_id, "cancelled on request")
    return task_public(updated or record)


@router.post(
    "/{task_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses={**_ERRORS, 409: {"description": "the task has not ended"}, **_NOT_READY},
    dependencies=[scoped("tasks:write")],
)
async def retry_task(
    task_id: str,
    response: Response,
    store: StoreDep,
    log: EventLogDep,
    dispatcher: DispatcherDep,
    catalog: ActiveCatalogDep,
    settings: SettingsDep,
) -> TaskAccepted:
    """A new task with the same crew and inputs, on the active config (and its crew's webhook)."""
    record = await task_or_404(store, task_id)
    if record.status not in TERMINAL:
        raise ApiError(409, "task_not_finished", f"task {task_id} is still {record.status.value}")
    if record.crew not in catalog.crews:
        raise ApiError(404, "unknown_crew", f"crew '{record.crew}' is no longer configured")
    hooks = await _hooks(TaskCreate(crew=record.crew), catalog.crew(record.crew), settings)
    new, _ = await log.create_task(record.crew, record.inputs, catalog.version, retry_of=record.id, webhooks=hooks)
    await dispatcher.dispatch(new.id)
    return _accepted(new, response)
