"""Human input from the command line: ``crewgate run`` answering its own pauses, and
``crewgate answer`` answering a task that runs in a gateway."""

from __future__ import annotations

import contextvars
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.prompt import Prompt

from agents.events import EventDraft, EventType
from gateway.execution import TaskOutcome

__all__ = ["OnInput", "answer_remote", "run_answering"]

OnInput = str  # "ask" (a terminal), "approve", "fail"
Execute = Callable[[dict[str, Any] | None], TaskOutcome]


def run_answering(
    execute: Execute, publish: Callable[[EventDraft], None], on_input: OnInput, console: Console
) -> TaskOutcome:
    """Run, and each time the run pauses, answer it (``on_input``) and run on from its
    checkpoint; each run in a fresh context, as a process resuming it would."""
    from agents.hitl import resume_checkpoint

    outcome = contextvars.Context().run(execute, None)
    while outcome.paused is not None:
        asked, checkpoint = outcome.paused.request, outcome.paused.checkpoint
        request_id = str(uuid.uuid4())
        publish(_required(request_id, asked))
        answer = _decide(asked, on_input, console)
        if answer is None:
            message = f"the run asked for a {asked.kind} of step '{asked.step}' and --on-input is fail"
            publish(EventDraft(EventType.task_failed, data={"code": "input_unavailable", "error": message}))
            return TaskOutcome("failed", error_code="input_unavailable", error=message)
        given = {k: v for k, v in vars(answer).items() if v is not None}
        by = "person" if on_input == "ask" else "policy"
        publish(
            EventDraft(
                EventType.input_received,
                step=asked.step,
                data={"request_id": request_id, "kind": str(asked.kind), "by": by, **given},
            )
        )
        outcome = contextvars.Context().run(execute, resume_checkpoint(checkpoint, asked, answer))
    return outcome


def _required(request_id: str, asked: Any) -> EventDraft:
    data: dict[str, Any] = {"request_id": request_id, "kind": str(asked.kind), "prompt": asked.prompt}
    if asked.output is not None:
        data["output"] = asked.output
    return EventDraft(EventType.input_required, step=asked.step, data=data)


def _decide(asked: Any, on_input: OnInput, console: Console) -> Any:
    """The answer to give, or None to fail the task."""
    from agents.hitl import Answer

    if on_input == "approve":
        return Answer(approve=True) if str(asked.kind) == "review" else None
    if on_input == "fail":
        return None
    return _ask_on_terminal(asked, console)


def _ask_on_terminal(asked: Any, console: Console) -> Any:
    from agents.hitl import Answer

    console.rule(f"[bold]input needed[/] — step {asked.step}")
    if asked.output:
        console.print(asked.output, markup=False, highlight=False)
    console.print(asked.prompt, markup=False, highlight=False)
    if str(asked.kind) == "question":
        return Answer(answer=_non_empty(console, "answer"))
    choice = Prompt.ask("approve or send back with feedback", choices=["approve", "feedback"], console=console)
    if choice == "approve":
        return Answer(approve=True)
    return Answer(feedback=_non_empty(console, "feedback"))


def _non_empty(console: Console, label: str) -> str:
    while True:
        text = Prompt.ask(label, console=console).strip()
        if text:
            return text[:8000]


def default_on_input() -> OnInput:
    """On a terminal, ask; otherwise fail (no one could answer)."""
    return "ask" if sys.stdin.isatty() else "fail"


def answer_remote(
    base_url: str,
    task_id: str,
    body: dict[str, Any],
    *,
    token: str | None,
    request_id: str | None,
    timeout_s: float = 30.0,
) -> tuple[int, dict[str, Any]]:
    """POST the answer to a gateway; without ``request_id``, to the task's only open request."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s) as client:
        if request_id is None:
            listed = client.get(f"/v1/tasks/{task_id}/input")
            if listed.status_code != 200:
                return listed.status_code, _json(listed)
            open_ones = listed.json().get("data", [])
            if len(open_ones) != 1:
                return 409, {"error": {"code": "no_single_request", "message": f"{len(open_ones)} open requests"}}
            request_id = str(open_ones[0]["request_id"])
        answered = client.post(f"/v1/tasks/{task_id}/input", json={"request_id": request_id, **body})
        return answered.status_code, _json(answered)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"error": {"code": "not_json", "message": response.text[:300]}}
    return data if isinstance(data, dict) else {"data": data}
