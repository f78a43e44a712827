"""Checkpoints are data from a store: checked on the way in, bounded, never executed when wrong.

Also: which answers fit which request, and the CrewAI behaviour resuming rests on (a crew whose
first tasks already have outputs starts at the first one without, with the same prompts).
"""

from __future__ import annotations

import contextvars
import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from agents.catalog import Catalog, load_catalog
from agents.events import EventDraft
from agents.hitl import (
    MAX_CHECKPOINT_BYTES,
    Answer,
    InputKind,
    InputNeeded,
    InputRequest,
    check_answer,
    load_checkpoint,
    resume_checkpoint,
)
from agents.inputs import validate_inputs
from agents.run import run_crew
from tests.support import small_incident

PROJECT = Path(__file__).resolve().parents[2]
CREW = "incident_triage_reviewed"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PROJECT / "configs")


@pytest.fixture(scope="module")
def paused(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real review pause of the shipped reviewed crew on a small incident."""
    root = tmp_path_factory.mktemp("hitl")
    incident = small_incident.make_incident(root)
    given = {"service": "checkout", **{k: str(incident[k]) for k in ("logs", "repo", "runbooks")}}
    inputs = validate_inputs(CREW, catalog.crew(CREW), given, roots=[root])
    with pytest.raises(InputNeeded) as e:
        run(catalog, CREW, inputs, root, None, [])
    return {"root": root, "inputs": inputs, "request": e.value.request, "checkpoint": e.value.checkpoint}


def run(catalog: Catalog, crew: str, inputs: Any, root: Path, checkpoint: Any, events: list[EventDraft]) -> Any:
    return contextvars.Context().run(
        run_crew, catalog, crew, inputs, emit=events.append, roots=[root], env=dict(os.environ), checkpoint=checkpoint
    )


def approved(paused: dict[str, Any]) -> dict[str, Any]:
    return resume_checkpoint(copy.deepcopy(paused["checkpoint"]), paused["request"], Answer(approve=True))


def test_a_checkpoint_is_plain_json_and_survives_a_round_trip(paused: dict[str, Any]) -> None:
    checkpoint = paused["checkpoint"]
    text = json.dumps(checkpoint)
    assert json.loads(text) == checkpoint
    assert len(text) < MAX_CHECKPOINT_BYTES
    assert load_checkpoint(json.loads(text)).dump() == checkpoint


def tampered(checkpoint: dict[str, Any], change: str) -> dict[str, Any]:
    cp = copy.deepcopy(checkpoint)
    if change == "raw not text":
        cp["done"][0]["raw"] = 42
    elif change == "unknown step":
        cp["done"][0]["step"] = "exfiltrate"
    elif change == "steps out of order":
        cp["done"].reverse()
    elif change == "huge string":
        cp["done"][0]["raw"] = "x" * 200_000
    elif change == "huge checkpoint":
        cp["state"]["ledger"] = cp["state"]["ledger"] * 1000
    elif change == "unknown key":
        cp["run_this"] = "rm -rf /"
    elif change == "other version":
        cp["v"] = 2
    elif change == "other crew":
        cp["crew"] = "incident_triage"
    elif change == "output of an undeclared step":
        cp["state"]["outputs"]["analyze_logs"] = {"suspect": None}
    elif change == "bad evidence":
        cp["state"]["evidence"]["frames"] = "many"
    elif change == "not a mapping":
        return ["v", 1]  # type: ignore[return-value]
    return cp


CHANGES = [
    "raw not text",
    "unknown step",
    "steps out of order",
    "huge string",
    "huge checkpoint",
    "unknown key",
    "other version",
    "other crew",
    "output of an undeclared step",
    "bad evidence",
    "not a mapping",
]


@pytest.mark.parametrize("change", CHANGES)
def test_a_tampered_checkpoint_is_a_value_error_and_nothing_runs(
    catalog: Catalog, paused: dict[str, Any], change: str
) -> None:
    events: list[EventDraft] = []
    checkpoint = tampered(approved(paused), change)
    with pytest.raises(ValueError, match="checkpoint"):
        run(catalog, CREW, paused["inputs"], paused["root"], checkpoint, events)
    assert events == []


def test_a_checkpoint_that_still_waits_for_a_person_is_not_run(catalog: Catalog, paused: dict[str, Any]) -> None:
    events: list[EventDraft] = []
    with pytest.raises(ValueError, match="waits for a person"):
        run(catalog, CREW, paused["inputs"], paused["root"], copy.deepcopy(paused["checkpoint"]), events)
    assert events == []


@pytest.mark.parametrize("change", ["raw not text", "huge string", "unknown key", "other version"])
def test_resume_checkpoint_refuses_a_tampered_checkpoint(paused: dict[str, Any], change: str) -> None:
    checkpoint = tampered(paused["checkpoint"], change)
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        resume_checkpoint(checkpoint, paused["request"], Answer(approve=True))


def test_resume_checkpoint_refuses_a_request_it_does_not_wait_for_and_an_answer_that_does_not_fit(
    paused: dict[str, Any],
) -> None:
    request: InputRequest = paused["request"]
    elsewhere = InputRequest(InputKind.review, "analyze_logs", request.prompt, request.output, None, "fail")
    question = InputRequest(InputKind.question, request.step, "Why?", None, None, "fail")
    with pytest.raises(ValueError, match="does not wait"):
        resume_checkpoint(paused["checkpoint"], elsewhere, Answer(approve=True))
    with pytest.raises(ValueError, match="does not wait"):
        resume_checkpoint(paused["checkpoint"], question, Answer(answer="because"))
    with pytest.raises(ValueError, match="feedback must be non-empty"):
        resume_checkpoint(paused["checkpoint"], request, Answer(feedback="  "))
    done = approved(paused)
    with pytest.raises(ValueError, match="does not wait"):  # answered once already
        resume_checkpoint(done, request, Answer(approve=True))


def test_approve_marks_the_step_finished_and_feedback_sends_it_back(paused: dict[str, Any]) -> None:
    request: InputRequest = paused["request"]
    done = approved(paused)
    assert [d["step"] for d in done["done"]] == ["analyze_logs", "investigate_code", "write_report"]
    assert done["done"][-1]["raw"] == request.output and "pending" not in done
    again = resume_checkpoint(copy.deepcopy(paused["checkpoint"]), request, Answer(feedback="Shorter, please."))
    assert [d["step"] for d in again["done"]] == ["analyze_logs", "investigate_code"]
    assert again["rerun"]["step"] == "write_report" and again["rerun"]["feedback"] == "Shorter, please."
    assert again["rerun"]["answer"] == request.output


REVIEW = InputRequest(InputKind.review, "write_report", "Review it", "# report", 60.0, "approve")
QUESTION = InputRequest(InputKind.question, "investigate_code", "What changed?", None, None, "fail")


@pytest.mark.parametrize(
    ("request_", "answer", "problem"),
    [
        (REVIEW, Answer(approve=True), None),
        (REVIEW, Answer(feedback="Name the deploy."), None),
        (REVIEW, Answer(feedback="x" * 8000), None),
        (REVIEW, Answer(feedback="x" * 8001), "longer than 8000"),
        (REVIEW, Answer(feedback=""), "non-empty"),
        (REVIEW, Answer(feedback=" \n "), "non-empty"),
        (REVIEW, Answer(), "non-empty"),
        (REVIEW, Answer(approve=False), "approve: false is not an answer"),
        (REVIEW, Answer(approve=True, feedback="and this"), "not both"),
        (REVIEW, Answer(answer="yes"), "not answer"),
        (QUESTION, Answer(answer="A config change at 13:05."), None),
        (QUESTION, Answer(answer="x" * 8000), None),
        (QUESTION, Answer(answer="x" * 8001), "longer than 8000"),
        (QUESTION, Answer(answer=""), "non-empty"),
        (QUESTION, Answer(), "non-empty"),
        (QUESTION, Answer(approve=True), "not approve or feedback"),
        (QUESTION, Answer(feedback="hm", answer="yes"), "not approve or feedback"),
    ],
)
def test_check_answer(request_: InputRequest, answer: Answer, problem: str | None) -> None:
    found = check_answer(request_, answer)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_crewai_starts_at_the_first_task_without_output_with_the_prompts_of_an_uninterrupted_run() -> None:
    """What resuming rests on: ``Crew._get_execution_start_index`` once ``checkpoint_kickoff_event_id``
    is set. If a CrewAI upgrade changes it, resumed runs would run finished steps again."""
    from crewai import Agent, Crew, Task
    from crewai.events.stream_context import add_stream_sink, reset_stream_sinks
    from crewai.tasks.task_output import TaskOutput

    from agents.offline import OfflineLLM

    def crew() -> tuple[Any, list[Any]]:
        llm = OfflineLLM(model="offline", inputs={"service": "checkout"})
        tasks: list[Any] = []
        for name in ("first", "second", "third"):
            agent = Agent(role=f"{name} role", goal=f"{name} goal", backstory="b", llm=llm, verbose=False)
            context = {"context": [tasks[0]]} if name == "third" else {}
            tasks.append(Task(name=name, description=f"Do {name}.", expected_output=name, agent=agent, **context))
        return Crew(agents=[t.agent for t in tasks], tasks=tasks, verbose=False, memory=False, tracing=False), tasks

    def prompts(c: Any) -> tuple[Any, dict[str, Any]]:
        seen: dict[str, Any] = {}

        def sink(_source: Any, event: Any) -> None:
            if event.type == "llm_call_started":
                seen.setdefault(event.task_name, copy.deepcopy(event.messages))

        def go() -> Any:
            token = add_stream_sink(sink)
            try:
                return c.kickoff()
            finally:
                reset_stream_sinks(token)

        return contextvars.Context().run(go), seen

    whole, tasks = crew()
    out, uninterrupted = prompts(whole)
    outputs = {t.name: t.output.raw for t in tasks}
    resumed, tasks = crew()
    for task in tasks[:2]:
        task.output = TaskOutput(
            name=task.name,
            description=task.description,
            expected_output=task.expected_output,
            raw=outputs[task.name],
            agent=task.agent.role,
        )
    resumed.checkpoint_kickoff_event_id = "resume"
    assert resumed._get_execution_start_index(tasks) == 2
    again, seen = prompts(resumed)
    assert list(seen) == ["third"]
    assert seen["third"] == uninterrupted["third"]
    assert again.raw == out.raw
