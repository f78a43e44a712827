"""Human input: the open requests of a waiting task, and answering one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from gateway.api.deps import DispatcherDep, EventLogDep, StoreDep, scoped, task_or_404
from gateway.api.errors import ApiError
from gateway.api.schemas import InputAnswer, InputRequestPublic, InputRequestsPublic, request_public
from gateway.store import InputRequestRecord

router = APIRouter(prefix="/v1/tasks", tags=["input"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown task or request"},
    409: {"description": "the request was answered differently, expired, or closed"},
    422: {"description": "an answer that does not fit its request (a review: approve or feedback; a question: answer)"},
}


@router.get(
    "/{task_id}/input",
    response_model=InputRequestsPublic,
    responses={404: _ERRORS[404]},
    dependencies=[scoped("tasks:read")],
)
async def open_requests(task_id: str, store: StoreDep) -> InputRequestsPublic:
    """What the task waits for: its open requests (none unless it is ``waiting``)."""
    await task_or_404(store, task_id)
    return InputRequestsPublic(data=[request_public(r) for r in await store.input_requests(task_id, open_only=True)])


@router.post(
    "/{task_id}/input", response_model=InputRequestPublic, responses=_ERRORS, dependencies=[scoped("input:write")]
)
async def answer(
    task_id: str, body: InputAnswer, store: StoreDep, log: EventLogDep, dispatcher: DispatcherDep
) -> InputRequestPublic:
    """Answer an open request once. The same answer again is a no-op (200); another answer
    to an answered request is 409. The task resumes, on any process, from the step that asked."""
    from agents.hitl import resume_checkpoint

    record = await task_or_404(store, task_id)
    request = await _request(store, task_id, body.request_id)
    given = body.answer_dict()
    settled = _settled(request, given)
    if settled is not None:
        return settled
    asked = _asked(request)
    problem = _check(asked, body)
    if problem is not None:
        raise ApiError(422, "invalid_answer", problem, [{"field": "body", "message": problem}])
    try:
        checkpoint = resume_checkpoint(record.checkpoint or {}, asked, body.to_answer())
    except ValueError as e:  # the stored checkpoint does not wait for this request (it is not ours)
        raise ApiError(409, "cannot_resume", f"task {task_id} cannot go on from its checkpoint: {e}") from e
    stored = await log.answer(task_id, request.id, given, checkpoint)
    if stored is None:  # answered (or closed) meanwhile by another request: judge against that
        request = await _request(store, task_id, body.request_id)
        settled = _settled(request, given)
        if settled is None:
            raise _conflict(request)
        return settled
    await dispatcher.dispatch(task_id, max(record.attempt, 1))
    return request_public(await _request(store, task_id, body.request_id))


async def _request(store: StoreDep, task_id: str, request_id: str) -> InputRequestRecord:
    for request in await store.input_requests(task_id):
        if request.id == request_id:
            return request
    raise ApiError(404, "unknown_request", f"task {task_id} has no input request '{request_id}'")


def _settled(request: InputRequestRecord, given: dict[str, Any]) -> InputRequestPublic | None:
    """The request as it is, for a repeat of its answer; an error for any other state but open."""
    if request.status == "answered":
        if request.answer == given:
            return request_public(request)
        raise _conflict(request)
    if request.status != "open":
        raise _conflict(request)
    if request.expires_at is not None and request.expires_at <= datetime.now(UTC):
        raise ApiError(
            409, "request_expired", f"input request {request.id} expired at {request.expires_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    return None


def _conflict(request: InputRequestRecord) -> ApiError:
    if request.status == "answered":
        return ApiError(
            409,
            "already_answered",
            f"input request {request.id} was already answered differently",
            {"answer": request.answer},
        )
    return ApiError(409, f"request_{request.status}", f"input request {request.id} is {request.status}")


def _asked(request: InputRequestRecord) -> Any:
    from agents.hitl import InputKind, InputRequest

    return InputRequest(
        kind=InputKind(request.kind),
        step=request.step,
        prompt=request.prompt,
        output=request.output,
        timeout_s=None,
        on_timeout=request.on_timeout,
    )


def _check(asked: Any, body: InputAnswer) -> str | None:
    from agents.hitl import check_answer

    return check_answer(asked, body.to_answer())
