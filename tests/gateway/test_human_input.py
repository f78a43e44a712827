"""Human in the loop through a real gateway process: reviews and questions, answered over
HTTP, that survive a kill -9 of the gateway, with every finished step run once.

The crew is the shipped ``incident_triage_reviewed`` on the offline model: the lead's
report waits for review; the code investigator asks a question when no commit explains
the error (a repository whose only recent commit is unrelated).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support import small_incident
from tests.support.gateway import Gateway, wait_for, write_configs

CREW = "incident_triage_reviewed"
STEPS = ["analyze_logs", "investigate_code", "write_report"]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Any:
    root = tmp_path_factory.mktemp("hitl")
    configs = write_configs(root / "configs")
    gateway = Gateway(root / "gw", config_dir=configs, roots=incident["root"], poll_interval_s=0.2).start()
    yield gateway
    gateway.stop()


def submit(gw: Gateway, incident: dict, *, crew: str = CREW) -> str:
    d = incident["dir"]
    inputs = {
        "service": "checkout",
        "logs": str(incident.get("logs", d / "logs")),
        "repo": str(incident.get("repo", d / "repo")),
    }
    with gw.client() as c:
        response = c.post("/v1/tasks", json={"crew": crew, "inputs": inputs})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def task(gw: Gateway, task_id: str) -> dict:
    with gw.client() as c:
        return c.get(f"/v1/tasks/{task_id}").json()


def events(gw: Gateway, task_id: str) -> list[dict]:
    with gw.client() as c:
        return c.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000}).json()["data"]


def waiting(gw: Gateway, task_id: str, seen: int = 0, timeout: float = 90) -> dict:
    """The task's open request, once it waits on one more request than ``seen``."""

    def asked() -> dict | None:
        record = task(gw, task_id)
        assert record["status"] not in ("completed", "failed", "cancelled"), record
        required = [e for e in events(gw, task_id) if e["type"] == "input.required"]
        if record["status"] != "waiting" or len(required) <= seen:
            return None
        with gw.client() as c:
            open_ones = c.get(f"/v1/tasks/{task_id}/input").json()["data"]
        assert len(open_ones) == 1, open_ones
        return open_ones[0]

    return wait_for(asked, timeout=timeout)


def answer(gw: Gateway, task_id: str, request_id: str, **body: Any) -> Any:
    with gw.client() as c:
        return c.post(f"/v1/tasks/{task_id}/input", json={"request_id": request_id, **body})


def ended(gw: Gateway, task_id: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (t := task(gw, task_id))["status"] in ("completed", "failed", "cancelled") and t, timeout)


def started_per_step(log: list[dict]) -> Counter[str]:
    return Counter(e["step"] for e in log if e["type"] == "step.started")


def assert_contiguous(log: list[dict]) -> None:
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))


def test_a_review_waits_and_approve_completes_with_every_step_run_once(gw: Gateway, incident: dict) -> None:
    task_id = submit(gw, incident)
    request = waiting(gw, task_id)
    assert (request["kind"], request["step"], request["status"]) == ("review", "write_report", "open")
    assert request["output"] and "checkout" in request["output"]  # the report to read
    assert task(gw, task_id)["status"] == "waiting"

    response = answer(gw, task_id, request["request_id"], approve=True)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "answered"
    done = ended(gw, task_id)
    assert done["status"] == "completed", done

    log = events(gw, task_id)
    assert_contiguous(log)
    assert started_per_step(log) == Counter({step: 1 for step in STEPS})
    types = [e["type"] for e in log]
    assert types.index("input.required") < types.index("input.received") < types.index("task.completed")
    received = next(e for e in log if e["type"] == "input.received")
    assert received["data"] == {"request_id": request["request_id"], "kind": "review", "by": "person", "approve": True}
    with gw.client() as c:
        assert c.get(f"/v1/tasks/{task_id}/input").json()["data"] == []


def test_feedback_sends_the_report_back_and_the_revision_is_reviewed_again(gw: Gateway, incident: dict) -> None:
    task_id = submit(gw, incident)
    first = waiting(gw, task_id)
    feedback = "Name the deploy that shipped the suspect commit, and say who to page."
    assert answer(gw, task_id, first["request_id"], feedback=feedback).status_code == 200

    second = waiting(gw, task_id, seen=1)
    assert second["request_id"] != first["request_id"] and second["step"] == "write_report"
    assert feedback in second["output"]  # the revision takes the feedback in
    assert answer(gw, task_id, second["request_id"], approve=True).status_code == 200
    done = ended(gw, task_id)
    assert done["status"] == "completed"
    assert feedback in done["result"]

    log = events(gw, task_id)
    assert_contiguous(log)
    assert started_per_step(log) == Counter({"analyze_logs": 1, "investigate_code": 1, "write_report": 2})


def test_a_question_is_answered_through_the_api_and_the_answer_is_used(
    gw: Gateway, incident: dict, tmp_path: Path
) -> None:
    small = small_incident.make_incident(incident["root"] / f"no-suspect-{tmp_path.name}")  # under the roots
    small_incident.make_no_suspect_repo(small["repo"])
    task_id = submit(gw, {**small, "dir": small["root"]})
    question = waiting(gw, task_id)
    assert (question["kind"], question["step"], question["output"]) == ("question", "investigate_code", None)
    assert question["prompt"].strip()

    assert answer(gw, task_id, question["request_id"], approve=True).status_code == 422  # a question takes an answer
    said = "The NewPricing feature flag was switched on at 12:40 without a deploy."
    assert answer(gw, task_id, question["request_id"], answer=said).status_code == 200
    review = waiting(gw, task_id, seen=1)
    assert review["kind"] == "review"
    assert answer(gw, task_id, review["request_id"], approve=True).status_code == 200
    done = ended(gw, task_id)
    assert done["status"] == "completed", done
    assert "NewPricing feature flag" in done["result"]
    log = events(gw, task_id)
    assert_contiguous(log)
    # the asking step ran again from its start with the answer; the step before it did not
    assert started_per_step(log) == Counter({"analyze_logs": 1, "investigate_code": 2, "write_report": 1})


def test_an_answer_counts_once_and_a_different_one_is_refused(gw: Gateway, incident: dict) -> None:
    task_id = submit(gw, incident)
    request = waiting(gw, task_id)
    with gw.client() as c:
        unknown = c.post(f"/v1/tasks/{task_id}/input", json={"request_id": "nope", "approve": True})
        nothing = c.post(f"/v1/tasks/{task_id}/input", json={"request_id": request["request_id"]})
        both = c.post(
            f"/v1/tasks/{task_id}/input", json={"request_id": request["request_id"], "approve": True, "answer": "x"}
        )
        extra = c.post(f"/v1/tasks/{task_id}/input", json={"request_id": request["request_id"], "approved": True})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_request"
    assert nothing.status_code == 422 and both.status_code == 422 and extra.status_code == 422
    assert task(gw, task_id)["status"] == "waiting"  # nothing changed

    first = answer(gw, task_id, request["request_id"], approve=True)
    again = answer(gw, task_id, request["request_id"], approve=True)
    other = answer(gw, task_id, request["request_id"], feedback="redo it")
    assert first.status_code == 200 and again.status_code == 200
    assert again.json() == first.json()  # a repeat is a no-op
    assert other.status_code == 409 and other.json()["error"]["code"] == "already_answered"
    assert ended(gw, task_id)["status"] == "completed"
    log = events(gw, task_id)
    assert [e["type"] for e in log].count("input.received") == 1
    with gw.client() as c:
        missing = c.get("/v1/tasks/00000000-0000-4000-8000-000000000000/input")
    assert missing.status_code == 404


def test_cancel_while_waiting_ends_the_task_and_closes_its_request(gw: Gateway, incident: dict) -> None:
    task_id = submit(gw, incident)
    request = waiting(gw, task_id)
    with gw.client() as c:
        cancelled = c.post(f"/v1/tasks/{task_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    log = events(gw, task_id)
    assert log[-1]["type"] == "task.cancelled"
    late = answer(gw, task_id, request["request_id"], approve=True)
    assert late.status_code == 409 and late.json()["error"]["code"] == "request_closed"
    assert task(gw, task_id)["status"] == "cancelled"


@pytest.mark.parametrize(("policy", "status"), [("approve", "completed"), ("fail", "failed")])
def test_a_review_nobody_answers_follows_its_on_timeout(
    tmp_path: Path, incident: dict, policy: str, status: str
) -> None:
    configs = write_configs(tmp_path / "configs")
    crew = configs / "crews" / "incident_triage_reviewed.yaml"
    text = crew.read_text()
    assert "human_input_timeout_s: 3600\n        on_timeout: fail" in text
    crew.write_text(
        text.replace(
            "human_input_timeout_s: 3600\n        on_timeout: fail",
            f"human_input_timeout_s: 1\n        on_timeout: {policy}",
        )
    )
    gw = Gateway(tmp_path / "gw", config_dir=configs, roots=incident["root"], lease_s=2, poll_interval_s=0.2).start()
    try:
        task_id = submit(gw, incident)
        request = waiting(gw, task_id)
        assert request["expires_at"] is not None and request["on_timeout"] == policy
        done = ended(gw, task_id, timeout=60)
        assert done["status"] == status, done
        log = events(gw, task_id)
        assert_contiguous(log)
        if policy == "approve":
            received = next(e for e in log if e["type"] == "input.received")
            assert received["data"]["by"] == "timeout" and received["data"]["approve"] is True
        else:
            assert done["error"]["code"] == "input_timeout"
            assert log[-1]["data"]["request_id"] == request["request_id"]
        late = answer(gw, task_id, request["request_id"], approve=True)
        assert late.status_code == (200 if policy == "approve" else 409)  # approve: the same answer, a no-op
    finally:
        gw.stop()


def test_kill_9_while_waiting_then_the_answer_resumes_it_with_each_step_started_once(
    tmp_path: Path, incident: dict
) -> None:
    configs = write_configs(tmp_path / "configs")
    gw = Gateway(tmp_path / "gw", config_dir=configs, roots=incident["root"], lease_s=2, poll_interval_s=0.2).start()
    try:
        task_id = submit(gw, incident)
        request = waiting(gw, task_id)
        before = events(gw, task_id)
        gw.kill()

        gw.start()  # a new process: the request is still open, no run holds the task
        with gw.client() as c:
            still = c.get(f"/v1/tasks/{task_id}/input").json()["data"]
        assert [r["request_id"] for r in still] == [request["request_id"]]
        assert task(gw, task_id)["status"] == "waiting"
        assert answer(gw, task_id, request["request_id"], approve=True).status_code == 200
        done = ended(gw, task_id)
        assert done["status"] == "completed", done
        log = events(gw, task_id)
        assert log[: len(before)] == before
        assert_contiguous(log)
        assert started_per_step(log) == Counter({step: 1 for step in STEPS})
        assert not any(e["type"] == "task.restarted" for e in log)  # waiting is not running: nothing to restart
    finally:
        gw.stop()
