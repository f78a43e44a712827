"""Request and response models of the v1 API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.events import EventType
from gateway.store import InputRequestRecord, TaskRecord, TaskStatus

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
    "WebhookRequest",
    "task_links",
    "task_public",
]

CREW_NAME = r"^[a-z][a-z0-9_]{0,63}$"


MAX_WEBHOOK_EVENTS = 20


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://",
        description="http(s) URL on a host in CREWGATE_WEBHOOK_ALLOWED_HOSTS",
    )
    events: list[EventType] = Field(
        min_length=1, max_length=MAX_WEBHOOK_EVENTS, description="event types to send (docs/api.md, Events)"
    )
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="signs each delivery (Crewgate-Signature); kept in the store, never shown",
    )


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
    webhook: WebhookRequest | None = Field(default=None, description="POST these events of the task to a URL")


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


_TASK_ID = "6f1c2a1e-8d0b-4a35-9a57-3f2f3c0d9b11"
_LINKS = {
    "self": f"/v1/tasks/{_TASK_ID}",
    "events": f"/v1/tasks/{_TASK_ID}/events",
    "websocket": f"/v1/tasks/{_TASK_ID}/events",
    "cancel": f"/v1/tasks/{_TASK_ID}/cancel",
    "retry": f"/v1/tasks/{_TASK_ID}/retry",
}
_TASK_EXAMPLE: dict[str, Any] = {
    "id": _TASK_ID,
    "crew": "incident_triage",
    "inputs": {"service": "checkout", "logs": "/srv/incidents/42/logs", "repo": "/srv/repos/checkout"},
    "status": "completed",
    "config_version": "5031ff28b407",
    "created_at": "2026-11-22T10:00:00.123456Z",
    "started_at": "2026-11-22T10:00:00.200000Z",
    "finished_at": "2026-11-22T10:01:12.000000Z",
    "result": "## Incident report\n…",
    "usage": {"prompt_tokens": 5120, "completion_tokens": 830, "total_tokens": 5950},
    "error": None,
    "retry_of": None,
    "cancel_requested": False,
    "events": 42,
    "links": _LINKS,
}


class TaskPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TASK_EXAMPLE]})

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
    attempt: int = Field(
        default=0,
        description="runs started (0 while first queued); above 1 when a runner died and the task ran again "
        "(a task.restarted event marks each)",
    )
    links: TaskLinks


class TasksPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"data": [_TASK_EXAMPLE], "next_cursor": "17"}]})

    data: list[TaskPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


class EventPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "data": [
                        {
                            "v": 1,
                            "id": "1042",
                            "seq": 7,
                            "task_id": _TASK_ID,
                            "ts": "2026-11-22T10:00:00.123456Z",
                            "type": "tool.finished",
                            "agent": "log_analyst",
                            "step": "analyze_logs",
                            "data": {"tool": "error_signatures", "output": "…", "duration_ms": 41},
                        }
                    ],
                    "next_after": 7,
                    "has_more": False,
                }
            ]
        }
    )

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


class ConfigScanState(BaseModel):
    state: Literal["valid", "invalid"] = Field(description="the directory as the last scan found it")
    checked_at: datetime
    version: str | None = Field(description="the version the files on disk would have (null when invalid)")
    errors: list[dict[str, Any]] = Field(description="its current problems (the first 20)")
    error_count: int


class ConfigActive(BaseModel):
    version: str = Field(description="the config new tasks run with")
    loaded_at: datetime | None
    files: list[str] = Field(description="relative to the config directory")


class ConfigHistoryEntry(BaseModel):
    at: datetime
    outcome: Literal["loaded", "refused", "restored"] = Field(
        description="loaded: became active; refused: an edit with errors; restored: valid again, same version"
    )
    version: str | None
    errors: list[dict[str, Any]] | None = None
    error_count: int | None = None


class ConfigWatcher(BaseModel):
    state: Literal["off", "watching", "restarting", "stopped"]
    watching: bool = Field(description="edits are being picked up right now")
    restarts: int
    last_error: str | None


class ConfigStatus(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "directory": "configs",
                    "current": {
                        "state": "valid",
                        "checked_at": "2026-11-30T05:40:02Z",
                        "version": "5031ff28b407",
                        "errors": [],
                        "error_count": 0,
                    },
                    "active": {"version": "5031ff28b407", "loaded_at": "2026-11-30T05:40:02Z", "files": ["a.yaml"]},
                    "history": [
                        {"at": "2026-11-30T05:40:02Z", "outcome": "restored", "version": "5031ff28b407"},
                        {
                            "at": "2026-11-30T05:39:40Z",
                            "outcome": "refused",
                            "version": None,
                            "error_count": 1,
                            "errors": [{"file": "a.yaml", "line": 3, "column": 5, "path": "", "message": "…"}],
                        },
                    ],
                    "watcher": {"state": "watching", "watching": True, "restarts": 0, "last_error": None},
                    "active_version": "5031ff28b407",
                    "loaded_at": "2026-11-30T05:40:02Z",
                    "files": ["a.yaml"],
                    "reloads": 0,
                    "last_refused": None,
                }
            ]
        }
    )

    directory: str = Field(description="the config directory, relative to the project (or its name)")
    current: ConfigScanState | None
    active: ConfigActive | None
    history: list[ConfigHistoryEntry] = Field(description="recent loads and refusals, newest first (at most 50)")
    watcher: ConfigWatcher
    active_version: str | None = Field(description="same as active.version")
    loaded_at: datetime | None = Field(description="same as active.loaded_at")
    files: list[str] = Field(description="same as active.files")
    reloads: int = Field(description="versions activated by hot reload since start")
    last_refused: dict[str, Any] | None = Field(
        description="the refusal that still stands: null once the directory is valid again"
    )


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
        attempt=record.attempt,
        links=task_links(record.id),
    )


class InputRequestPublic(BaseModel):
    request_id: str
    task_id: str
    kind: str = Field(description="review: approve or send back the step's answer; question: answer the agent")
    step: str = Field(description="the step that asked")
    prompt: str
    output: str | None = Field(default=None, description="review: the step's answer to look at")
    status: str = Field(description="open, answered, expired, or closed (the task ended otherwise)")
    created_at: datetime
    expires_at: datetime | None = None
    on_timeout: str = Field(description="what happens at expires_at: fail the task, or approve")
    answer: dict[str, Any] | None = None
    answered_at: datetime | None = None


class InputRequestsPublic(BaseModel):
    data: list[InputRequestPublic]


class InputAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64, description="from input.required or GET …/input")
    approve: bool | None = Field(default=None, description="review: true to accept the step's answer")
    feedback: str | None = Field(
        default=None, min_length=1, max_length=8000, description="review: send the step back to its agent with this"
    )
    answer: str | None = Field(default=None, min_length=1, max_length=8000, description="question: the answer")

    def answer_dict(self) -> dict[str, Any]:
        """The given fields only: what is stored, and what a repeat is compared with."""
        return self.model_dump(exclude={"request_id"}, exclude_none=True)

    def to_answer(self) -> Any:
        from agents.hitl import Answer

        return Answer(approve=self.approve, feedback=self.feedback, answer=self.answer)


def request_public(record: InputRequestRecord) -> InputRequestPublic:
    return InputRequestPublic(
        request_id=record.id,
        task_id=record.task_id,
        kind=record.kind,
        step=record.step,
        prompt=record.prompt,
        output=record.output,
        status=record.status,
        created_at=record.created_at,
        expires_at=record.expires_at,
        on_timeout=record.on_timeout,
        answer=record.answer,
        answered_at=record.answered_at,
    )
