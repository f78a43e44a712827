"""Human in the loop on the real CrewAI loop with the offline model: pause, store, resume.

Each run goes through ``run_crew`` in a fresh ``contextvars.Context`` (as the gateway runs
it), and every checkpoint goes through ``json.dumps``/``json.loads`` before it is resumed,
as the store will do. ``incident_triage_reviewed`` has its report reviewed, and its code
investigator may ask a person when no commit explains the error.
"""

from __future__ import annotations

import contextvars
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.catalog import Catalog, load_catalog, validate_texts
from agents.events import EventDraft, EventType
from agents.hitl import Answer, InputKind, InputNeeded, InputRequest, resume_checkpoint
from agents.inputs import validate_inputs
from agents.run import RunOutcome, run_crew
from tests.support import small_incident

PROJECT = Path(__file__).resolve().parents[2]
CREW = "incident_triage_reviewed"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(PROJECT / "configs")


class Runs:
    """Runs of one crew on one incident, each in a fresh context; every event of every run kept."""

    def __init__(self, catalog: Catalog, incident: dict[str, Any], crew: str = CREW) -> None:
        self.catalog, self.crew, self.root = catalog, crew, incident["root"]
        given = {k: str(incident[k]) for k in ("logs", "repo", "runbooks")}
        self.inputs = validate_inputs(crew, catalog.crew(crew), {"service": "checkout", **given}, roots=[self.root])
        self.runs: list[list[EventDraft]] = []

    def run(self, checkpoint: dict[str, Any] | None = None) -> RunOutcome:
        events: list[EventDraft] = []
        self.runs.append(events)
        return contextvars.Context().run(
            run_crew,
            self.catalog,
            self.crew,
            self.inputs,
            emit=events.append,
            roots=[self.root],
            env=dict(os.environ),
            checkpoint=checkpoint,
        )

    def pause(self, checkpoint: dict[str, Any] | None = None) -> tuple[InputRequest, dict[str, Any]]:
        """Run; it must pause. The request and the checkpoint as it comes back from a store."""
        with pytest.raises(InputNeeded) as paused:
            self.run(checkpoint)
        return paused.value.request, json.loads(json.dumps(paused.value.checkpoint))

    def started(self, run: int | None = None) -> Counter[str | None]:
        runs = self.runs if run is None else [self.runs[run]]
        return Counter(e.step for events in runs for e in events if e.type is EventType.step_started)

    def tools(self, run: int) -> list[str]:
        return [e.data["tool"] for e in self.runs[run] if e.type is EventType.tool_started]

    def completed(self, run: int, step: str) -> str:
        [output] = [e.data["output"] for e in self.runs[run] if e.type is EventType.step_completed and e.step == step]
        return str(output)


STEPS = ["analyze_logs", "investigate_code", "write_report"]


def test_a_reviewed_step_pauses_with_its_answer_and_approve_completes_without_running_a_step_twice(
    catalog: Catalog, tmp_path: Path
) -> None:
    incident = small_incident.make_incident(tmp_path)
    runs = Runs(catalog, incident)
    request, checkpoint = runs.pause()

    assert request.kind is InputKind.review and request.step == "write_report"
    assert request.output is not None and incident["commit"][:12] in request.output
    assert request.output.startswith("# checkout")
    assert (request.timeout_s, request.on_timeout) == (3600, "fail")
    assert "write_report" in request.prompt
    assert runs.started(0) == Counter(STEPS)

    outcome = runs.run(resume_checkpoint(checkpoint, request, Answer(approve=True)))

    assert outcome.result == request.output  # the approved report is the task's result
    assert outcome.output is not None and outcome.output["suspect"]["sha"] == incident["commit"]
    assert runs.started() == Counter(STEPS)  # across both runs: each step exactly once
    assert runs.runs[1] == []  # the reviewed step was the last: nothing left to run


def test_feedback_runs_the_step_again_with_it_and_asks_for_review_again(catalog: Catalog, tmp_path: Path) -> None:
    incident = small_incident.make_incident(tmp_path)
    runs = Runs(catalog, incident)
    first, checkpoint = runs.pause()
    feedback = "Say which release to roll back, and <b>who</b> should do it."

    again, checkpoint = runs.pause(resume_checkpoint(checkpoint, first, Answer(feedback=feedback)))

    assert again.kind is InputKind.review and again.step == "write_report"
    assert again.output is not None and first.output is not None
    assert "## Reviewer feedback" in again.output and "## Reviewer feedback" not in first.output
    assert "> Say which release to roll back, and \\<b\\>who\\</b\\> should do it." in again.output
    assert again.output.startswith(first.output.rstrip("\n"))  # the report itself is the same, revised
    assert runs.started(1) == Counter({"write_report": 1})  # only the reviewed step ran again
    assert runs.tools(1) == []  # its tool calls are in its conversation: not run again

    outcome = runs.run(resume_checkpoint(checkpoint, again, Answer(approve=True)))

    assert feedback.split(",")[0] in outcome.result and outcome.result == again.output
    assert runs.started() == Counter({"analyze_logs": 1, "investigate_code": 1, "write_report": 2})


def test_ask_human_pauses_when_no_commit_explains_the_error_and_the_answer_is_used(
    catalog: Catalog, tmp_path: Path
) -> None:
    incident = small_incident.make_incident(tmp_path)
    small_incident.make_no_suspect_repo(incident["repo"])
    runs = Runs(catalog, incident)
    question, checkpoint = runs.pause()

    assert question.kind is InputKind.question and question.step == "investigate_code"
    assert question.prompt.startswith("No commit in the repository explains the new error `KeyError: 'currency'`")
    assert (question.output, question.timeout_s, question.on_timeout) == (None, None, "fail")
    assert runs.started(0) == Counter({"analyze_logs": 1, "investigate_code": 1})

    answer = "The FX partner rotated its TLS certificate at 13:05."
    review, checkpoint = runs.pause(resume_checkpoint(checkpoint, question, Answer(answer=answer)))

    # the asking step ran again from its start (its tools too), the steps before it did not
    assert runs.started(1) == Counter({"investigate_code": 1, "write_report": 1})
    assert runs.tools(1)[:2] == ["map_stack_frames", "suspect_commits"] and "ask_human" in runs.tools(1)
    assert f"**Answer from a person:** {answer}" in runs.completed(1, "investigate_code")
    assert review.kind is InputKind.review and review.output is not None and answer in review.output

    outcome = runs.run(resume_checkpoint(checkpoint, review, Answer(approve=True)))
    assert answer in outcome.result
    assert runs.started() == Counter({"analyze_logs": 1, "investigate_code": 2, "write_report": 1})


def test_a_stored_answer_to_another_question_is_not_used_the_run_asks_again(catalog: Catalog, tmp_path: Path) -> None:
    incident = small_incident.make_incident(tmp_path)
    small_incident.make_no_suspect_repo(incident["repo"])
    runs = Runs(catalog, incident)
    question, checkpoint = runs.pause()
    resumed = resume_checkpoint(checkpoint, question, Answer(answer="a certificate rotation"))
    resumed["answers"][0]["question"] = "Was it the database?"

    again, _ = runs.pause(resumed)

    assert (again.kind, again.step, again.prompt) == (question.kind, question.step, question.prompt)
    assert runs.started(1) == Counter({"investigate_code": 1})


def test_only_an_agent_with_the_tool_asks(catalog: Catalog, tmp_path: Path) -> None:
    incident = small_incident.make_incident(tmp_path)
    small_incident.make_no_suspect_repo(incident["repo"])
    runs = Runs(catalog, incident, crew="incident_triage")

    outcome = runs.run()

    assert "No root cause found" in outcome.result
    assert "ask_human" not in runs.tools(0)


def test_approving_a_step_in_the_middle_resumes_at_the_next_step_with_its_answer_as_context(
    catalog: Catalog, tmp_path: Path
) -> None:
    reviewed = catalog.texts["crews/incident_triage_reviewed.yaml"]
    moved = reviewed.replace(
        "        human_input: true\n        human_input_timeout_s: 3600\n        on_timeout: fail\n", ""
    ).replace(
        "          commits ruled out with the reason.\n",
        "          commits ruled out with the reason.\n        human_input: true\n",
    )
    assert moved.count("human_input: true") == 1
    middle, issues = validate_texts({**catalog.texts, "crews/incident_triage_reviewed.yaml": moved})
    assert middle is not None, issues
    incident = small_incident.make_incident(tmp_path)
    runs = Runs(middle, incident)
    request, checkpoint = runs.pause()
    assert (request.step, request.timeout_s, request.on_timeout) == ("investigate_code", None, "fail")
    assert request.output is not None and request.output.startswith("## Code investigator for checkout")

    outcome = runs.run(resume_checkpoint(checkpoint, request, Answer(approve=True)))

    assert runs.started(1) == Counter({"write_report": 1})
    assert outcome.output is not None and outcome.output["suspect"]["sha"] == incident["commit"]
    assert incident["file_line"] in outcome.result
