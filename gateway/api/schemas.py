"""Request and response models of the v1 API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.store import TaskRecord, TaskStatus

__all__ = [
    "AgentPublic",
    "ConfigStatus",
    "ConfigValidateRequest",
    "ConfigValidateResult",
    "CrewPublic",
    "EventPage",
    "TaskAccepted",
    "TaskCreate",
    "TaskLinks",
    "TaskPublic",
    "TasksPublic",
    "task_links",
    "task_public",
]

CREW_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class TaskCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "crew": "incident_triage",
                    "inputs": {
                        "service": "checkout",
                        "logs": "examples/incident/logs",
                        "repo": "examples/incident/repo",
                    },
                }
            ]
        },
    )

    crew: str = Field(pattern=CREW_NAME, description="name of a crew (GET /v1/crews)")
    inputs: dict[str, Any] = Field(default_factory=dict, description="the crew's declared inputs")


class TaskLinks(BaseModel):
    self: str
    events: str
    websocket: str
    cancel: str
    retry: str


class TaskAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c2a1e-8d0b-4a35-9a57-3f2f3c0d9b11",
                    "status": "queued",
                    "config_version": "5031ff28b407",
                    "links": {
                        "self": "/v1/tasks/6f1c…",
                        "events": "/v1/tasks/6f1c…/events",
                        "websocket": "/v1/tasks/6f1c…/events",
                        "cancel": "/v1/tasks/6f1c…/cancel",
                        "retry": "/v1/tasks/6f1c…/retry",
                    },
                }
            ]
        }
    )

    id: str
    status: TaskStatus
    config_version: str
    links: TaskLinks


class TaskError(BaseModel):
    code: str
    message: str


class TaskPublic(BaseModel):
    id: str
    crew: str
    inputs: dict[str, Any]
    status: TaskStatus
    config_version: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = Field(default=None, description="the report, for people (Markdown)")
    output: dict[str, Any] | None = Field(
        default=None,
        description="machine-readable findings of a completed task, a JSON object: the validated answer of "
        "the crew's last step that declares an output_schema (GET /v1/crews/{name}), or, when no step declares "
        "one, the facts the run found; null until then, or when there is none",
    )
    usage: dict[str, int] | None = None
    error: TaskError | None = None
    retry_of: str | None = None
    cancel_requested: bool = False
    events: int = Field(description="events in the task's log so far (the last seq)")
    links: TaskLinks


class TasksPublic(BaseModel):
    data: list[TaskPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class EventPage(BaseModel):
    data: list[dict[str, Any]]
    next_after: int = Field(description="pass as ?after= for the next page")
    has_more: bool


class CrewStep(BaseModel):
    name: str
    agent: str
    context: list[str] | None
    output_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON Schema the step's answer must validate against (null: free text); the task's "
        "output is the validated answer of the last step that declares one",
    )


class CrewPublic(BaseModel):
    name: str
    description: str
    process: str
    steps: list[CrewStep]
    inputs: dict[str, Any] = Field(description="JSON Schema of the crew's inputs")
    config_version: str


class AgentPublic(BaseModel):
    name: str
    role: str
    goal: str
    tools: list[str]
    model: str


class ConfigValidateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"files": {"agents.yaml": "agents:\n  a:\n    role: R\n    goal: G\n    backstory: B\n"}}]
        },
    )

    files: dict[str, str] | None = Field(
        default=None, description="{relative path: YAML text}; omitted: validate the gateway's config directory"
    )


class ConfigValidateResult(BaseModel):
    ok: bool
    version: str | None
    errors: list[dict[str, Any]]


class ConfigStatus(BaseModel):
    active_version: str | None
    loaded_at: datetime | None
    directory: str
    files: list[str]
    reloads: int
    last_refused: dict[str, Any] | None


def task_links(task_id: str) -> TaskLinks:
    base = f"/v1/tasks/{task_id}"
    return TaskLinks(
        self=base, events=f"{base}/events", websocket=f"{base}/events", cancel=f"{base}/cancel", retry=f"{base}/retry"
    )


def task_public(record: TaskRecord) -> TaskPublic:
    error = (
        TaskError(code=record.error_code or "error", message=record.error or "")
        if (record.error_code or record.error)
        else None
    )
    return TaskPublic(
        id=record.id,
        crew=record.crew,
        inputs=record.inputs,
        status=record.status,
        config_version=record.config_version,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        result=record.result,
        output=record.output,
        usage=record.usage,
        error=error,
        retry_of=record.retry_of,
        cancel_requested=record.cancel_requested,
        events=record.last_seq,
        links=task_links(record.id),
    )
