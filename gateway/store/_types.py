"""The store seam: what the gateway needs from its database, independent of which one.

One implementation (``gateway.store.sql.SqlStore``) serves both the embedded default
(SQLite, WAL) and PostgreSQL through SQLAlchemy 2 async; the URL chooses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from typing import Any, Protocol

__all__ = [
    "ApiKeyRecord",
    "EventInput",
    "IdempotencyConflict",
    "InputRequestRecord",
    "LeaseLost",
    "Store",
    "StoreUnavailable",
    "StoredEvent",
    "TaskRecord",
    "TaskStatus",
    "TERMINAL_STATUSES",
    "CursorMove",
    "DeliveryRecord",
    "WebhookRecord",
    "WebhookSpec",
]


class TaskStatus(StrEnum):
    queued = "queued"  # accepted (or answered), waiting for a runner
    running = "running"  # a runner claimed it
    waiting = "waiting"  # a person's answer is needed (an input request is open); no runner holds it
    completed = "completed"  # terminal: result stored
    failed = "failed"  # terminal: error_code and error say why
    cancelled = "cancelled"  # terminal: stopped on request


TERMINAL_STATUSES = frozenset({TaskStatus.completed, TaskStatus.failed, TaskStatus.cancelled})


class IdempotencyConflict(Exception):
    """An Idempotency-Key was reused with a different request body."""

    def __init__(self, key: str, task_id: str) -> None:
        self.key = key
        self.task_id = task_id
        super().__init__(f"Idempotency-Key '{key}' was already used for task {task_id} with a different request")


class StoreUnavailable(Exception):
    """The database cannot be reached, or cannot take a write (disk full, read-only, connection
    lost): a condition that passes. Nothing was changed by the call that raised it, unless the
    database lost its answer to a commit (then the change is there; a writer that knows what
    it wrote can look)."""


class LeaseLost(Exception):
    """A write for a run that no longer holds its task: another attempt has claimed it (the
    run's lease ran out) or the task has ended. Nothing was written."""

    def __init__(self, task_id: str, attempt: int) -> None:
        self.task_id = task_id
        self.attempt = attempt
        super().__init__(f"attempt {attempt} of task {task_id} no longer holds it")


@dataclass(frozen=True)
class EventInput:
    """An event to append: the store assigns ``id``, ``seq`` and ``ts``."""

    type: str
    agent: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredEvent:
    id: int  # global, increasing in commit order across all tasks
    seq: int  # per task, 1, 2, 3 … with no gaps
    task_id: str
    crew: str
    ts: datetime  # UTC, aware
    type: str
    agent: str | None
    step: str | None
    data: dict[str, Any]

    def public(self) -> dict[str, Any]:
        """The v1 wire form (docs/api.md, "Events")."""
        return {
            "v": 1,
            "id": str(self.id),
            "seq": self.seq,
            "task_id": self.task_id,
            "ts": self.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "type": self.type,
            "agent": self.agent,
            "step": self.step,
            "data": self.data,
        }

    @cached_property
    def wire(self) -> str:
        """``public()`` as compact JSON, encoded once however many watchers send it.

        Text that cannot be sent as UTF-8 (a lone surrogate in a row written before
        appends were cleaned) is written as a JSON escape instead, so no stored event
        can stop a stream.
        """
        text = json.dumps(self.public(), ensure_ascii=False, separators=(",", ":"))
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return json.dumps(self.public(), ensure_ascii=True, separators=(",", ":"))
        return text


@dataclass(frozen=True)
class TaskRecord:
    id: str  # uuid4 string
    num: int  # insertion order, for keyset paging
    crew: str
    inputs: dict[str, Any]
    status: TaskStatus
    config_version: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = None
    usage: dict[str, int] | None = None
    error_code: str | None = None
    error: str | None = None
    retry_of: str | None = None
    idempotency_key: str | None = None
    cancel_requested: bool = False
    last_seq: int = 0
    output: dict[str, Any] | None = None  # machine-readable findings of a completed task
    attempt: int = 0  # runs started: 0 while first queued, then 1, 2, ...
    lease_owner: str | None = None  # the runner holding the current attempt
    lease_expires_at: datetime | None = None  # past this, the run is presumed dead
    cancel_reason: str | None = None
    dispatched_at: datetime | None = None  # when a broker took the task (Celery dispatcher)
    checkpoint: dict[str, Any] | None = None  # where a paused run goes on from (human in the loop)


@dataclass(frozen=True)
class InputRequestRecord:
    """A question or a review a paused task waits on."""

    id: str  # uuid4 string, the request_id of the API
    task_id: str
    kind: str  # review | question
    step: str
    prompt: str
    output: str | None
    on_timeout: str  # fail | approve
    created_at: datetime
    expires_at: datetime | None = None
    status: str = "open"  # open | answered | expired | closed (the task ended otherwise)
    answer: dict[str, Any] | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: never its secret, only a SHA-256 of it."""

    id: str  # the <id> of cgk_<id>_<secret>
    name: str
    prefix: str  # shown to people, e.g. in `crewgate keys list`
    hash: str  # sha256 hex of the whole key
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class WebhookSpec:
    """A webhook a new task asks for: from the request, or from its crew's YAML."""

    url: str
    events: tuple[str, ...]
    secret: str | None = None  # given with the request (kept in the store, never shown)
    secret_env: str | None = None  # the crew's YAML names the variable that holds it
    source: str = "request"  # request | crew


@dataclass(frozen=True)
class WebhookRecord:
    """A task's webhook and its cursor over the task's event log."""

    id: str
    task_id: str
    source: str
    url: str
    events: list[str]
    secret: str | None
    secret_env: str | None
    delivered_seq: int  # every event up to here is settled (delivered, given up on, or not asked for)
    state: str  # active | done (its task ended and the terminal event is settled)
    attempt: int  # failed attempts at the event after delivered_seq
    first_failed_at: datetime | None
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to deliver one event to one webhook."""

    id: int
    webhook_id: str
    task_id: str
    seq: int
    event_type: str
    attempt: int
    status: str  # delivered | retrying | failed
    http_status: int | None
    error: str | None
    duration_ms: int
    at: datetime
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class CursorMove:
    """Where a webhook's cursor goes; ``lease_s`` None hands the cursor back."""

    delivered_seq: int
    state: str = "active"
    attempt: int = 0
    first_failed_at: datetime | None = None
    next_attempt_at: datetime | None = None
    lease_s: float | None = None


class Store(Protocol):
    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""

    async def ping(self) -> None:
        """Raise if the database does not answer."""

    async def check_writable(self) -> None:
        """Raise ``StoreUnavailable`` if the database cannot take writes: when the last write
        failed for want of the database, a small write is tried (and its success clears
        that); otherwise nothing is sent. Every method raises ``StoreUnavailable`` when the
        database cannot be reached or written."""

    async def close(self) -> None: ...

    # config snapshots: a task runs the config version it was queued with, even after restarts
    async def save_config(self, version: str, files: dict[str, str]) -> None:
        """Idempotent: saving a version that exists changes nothing."""

    async def load_config(self, version: str) -> dict[str, str] | None: ...

    # tasks
    async def create_task(
        self,
        crew: str,
        inputs: dict[str, Any],
        config_version: str,
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
        retry_of: str | None = None,
        webhooks: list[WebhookSpec] | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Insert a queued task and its ``task.queued`` event (seq 1) in one transaction,
        with a cursor at seq 0 for each of ``webhooks``.

        With an ``idempotency_key`` already used: returns (that task, False) when
        ``request_hash`` matches, raises IdempotencyConflict when it does not.
        """

    async def get_task(self, task_id: str) -> TaskRecord | None: ...

    async def list_tasks(
        self,
        *,
        status: TaskStatus | None = None,
        crew: str | None = None,
        limit: int = 50,
        before_num: int | None = None,
    ) -> list[TaskRecord]:
        """Newest first; ``before_num`` pages on (keyset on ``num``)."""

    async def tasks_with_status(self, status: TaskStatus) -> list[TaskRecord]:
        """Oldest first."""

    async def active_counts(self) -> dict[tuple[str, str], int]:
        """How many tasks are queued, running and waiting, by (crew, status): one grouped query."""

    async def claim_task(
        self, task_id: str, *, owner: str = "", lease_s: float = 30.0, attempt: int = 1
    ) -> TaskRecord | None:
        """Start ``attempt`` of a task under a lease held by ``owner`` until now + ``lease_s``,
        atomically; None when that attempt cannot start.

        Attempt 1: queued -> running (sets started_at). Attempt N > 1: only a task still
        running attempt N - 1 whose lease has run out; a ``task.restarted`` event
        (``data.attempt``) is appended in the same transaction, ``seq`` going on. However
        often one attempt is offered, only one claim of it succeeds.
        """

    async def renew_lease(self, task_id: str, attempt: int, owner: str, lease_s: float) -> bool:
        """Extend the lease of a running ``attempt`` to now + ``lease_s``; False when that
        attempt no longer holds the task (ended, or another attempt claimed it)."""

    async def release_lease(self, task_id: str, attempt: int) -> bool:
        """Hand a running attempt back: its lease ends now, so recovery starts the next one."""

    async def expired_leases(self, limit: int = 100) -> list[TaskRecord]:
        """Running tasks whose lease has run out, oldest first."""

    async def end_expired(
        self, task_id: str, attempt: int, event: EventInput, *, error_code: str, error: str
    ) -> StoredEvent | None:
        """End a task ``failed`` with ``event`` if ``attempt`` is still its attempt and its
        lease has run out; None (nothing written) otherwise."""

    async def mark_dispatched(self, task_id: str) -> None:
        """Note that a broker took the task (``dispatched_at``)."""

    async def undispatched(self, older_than_s: float, limit: int = 100) -> list[TaskRecord]:
        """Queued tasks last handed to a broker (or, never handed, created) more than
        ``older_than_s`` ago, oldest first: their message may be lost."""

    async def finish_task(
        self,
        task_id: str,
        status: TaskStatus,
        event: EventInput,
        *,
        result: str | None = None,
        usage: dict[str, int] | None = None,
        error_code: str | None = None,
        error: str | None = None,
        output: dict[str, Any] | None = None,
        attempt: int | None = None,
    ) -> StoredEvent | None:
        """Set a terminal status and append the terminal ``event`` in one transaction.

        None (and nothing written) when the task is already terminal. With ``attempt``:
        ``LeaseLost`` when another attempt holds the task.
        """

    async def request_cancel(self, task_id: str, reason: str) -> TaskRecord | None:
        """Queued: cancelled now, with a ``task.cancelled`` event. Running: cancel_requested
        and cancel_reason set. Terminal: unchanged. None when the task does not exist."""

    # human input: a paused run's request, and its answer
    async def suspend_task(
        self, task_id: str, attempt: int, request: InputRequestRecord, checkpoint: dict[str, Any]
    ) -> StoredEvent | None:
        """running -> waiting in one transaction: store ``request`` (open) and ``checkpoint``,
        end the lease, append ``input.required``. ``LeaseLost`` if another attempt holds the
        task; None when it is no longer running (ended, cancelled)."""

    async def input_requests(self, task_id: str, *, open_only: bool = False) -> list[InputRequestRecord]:
        """The task's requests, oldest first."""

    async def answer_request(
        self, task_id: str, request_id: str, answer: dict[str, Any], checkpoint: dict[str, Any], *, by: str = "person"
    ) -> StoredEvent | None:
        """waiting -> queued in one transaction, if ``request_id`` is still open: the request
        answered with ``answer``, the task's checkpoint replaced, ``input.received``
        appended. None (nothing written) when the request is not open any more."""

    async def expired_requests(self, limit: int = 100) -> list[InputRequestRecord]:
        """Open requests past their ``expires_at``, oldest first."""

    # events
    async def append(self, task_id: str, events: list[EventInput], *, attempt: int | None = None) -> list[StoredEvent]:
        """Append in order; seq continues the task's last_seq. Refuses (ValueError) to
        append to a task that is already terminal. With ``attempt``: ``LeaseLost`` (nothing
        written) when another attempt holds the task."""

    async def events_for_task(self, task_id: str, after_seq: int = 0, limit: int = 500) -> list[StoredEvent]:
        """seq > after_seq, ascending."""

    async def events_after(
        self,
        after_id: int = 0,
        limit: int = 500,
        *,
        crews: list[str] | None = None,
        types: list[str] | None = None,
    ) -> list[StoredEvent]:
        """All tasks' events with id > after_id, ascending, optionally filtered."""

    async def last_event_id(self) -> int: ...

    async def task_heads(self, task_ids: list[str]) -> dict[str, tuple[int, TaskStatus]]:
        """``(last_seq, status)`` of each existing task in ``task_ids``, in one read: how far
        each log reaches, for watchers deciding whether there is anything to read."""

    # API keys (the secret itself is never stored; see gateway.auth)
    async def create_key(self, key: ApiKeyRecord) -> None:
        """Insert a new key (its id must be new)."""

    async def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_keys(self) -> list[ApiKeyRecord]:
        """Oldest first, revoked ones included."""

    async def revoke_key(self, key_id: str) -> ApiKeyRecord | None:
        """Set ``revoked_at`` (once; revoking again keeps the first time). None when unknown."""

    async def touch_key(self, key_id: str, *, every_s: float = 60.0) -> None:
        """Note a use in ``last_used_at``, written at most once per ``every_s``."""

    async def any_keys(self) -> bool:
        """Whether a key was ever created (revoked ones count): auth is on from then on."""

    # webhooks: a cursor per task webhook over the task's log (the log is the queue)
    async def claim_webhooks(self, owner: str, lease_s: float, limit: int = 50) -> list[WebhookRecord]:
        """Active cursors with events after them, due (``next_attempt_at`` passed), not leased
        to anyone: leased to ``owner`` until now + ``lease_s``, atomically (one claimant wins)."""

    async def move_webhook(
        self, webhook_id: str, owner: str, move: CursorMove, delivery: DeliveryRecord | None = None
    ) -> bool:
        """Move a cursor ``owner`` holds, recording ``delivery`` (its ``id`` ignored) in the same
        transaction; False (nothing written) when ``owner`` no longer holds it."""

    async def release_webhooks(self, owner: str) -> int:
        """Hand back every cursor ``owner`` holds, where it is (a deliverer stopping); how many."""

    async def webhooks_for_task(self, task_id: str) -> list[WebhookRecord]: ...

    async def webhook_deliveries(self, task_id: str, limit: int = 500) -> list[DeliveryRecord]:
        """Oldest first."""
