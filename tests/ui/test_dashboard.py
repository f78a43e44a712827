"""The dashboard in headless Chromium against a real gateway: start a triage from the form and
watch it to its report, answer a person's questions from the page, hostile log text shown as
text, and the configs view. Every test also fails if the page reached any host but 127.0.0.1
(the ``page`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support import small_incident
from tests.support.browser import BrowserLog
from tests.support.gateway import Gateway, write_configs
from tests.ui.dashboard import (
    RUN_TIMEOUT_MS,
    assert_every_event_once,
    ended,
    events_of,
    fill_start_form,
    grouped,
    open_task_view,
    start_gateway,
    task_of,
    wait_until_ended,
)

AGENTS = ["log_analyst", "code_investigator", "triage_lead"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-incidents")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, roots: Path) -> Iterator[Gateway]:
    base = tmp_path_factory.mktemp("ui-gw")
    gateway = start_gateway(base / "gw", write_configs(base / "configs"), roots)
    yield gateway
    gateway.stop()


def _inputs(incident: dict[str, Any]) -> dict[str, str]:
    return {"service": "checkout", "logs": str(incident["logs"]), "repo": str(incident["repo"])}


def test_a_triage_is_started_from_the_form_and_watched_to_its_report(
    page: Page, browser_log: BrowserLog, gw: Gateway, roots: Path
) -> None:
    incident = small_incident.make_incident(roots / "watched")
    page.goto(f"{gw.url}/")
    assert page.url == f"{gw.url}/ui/"
    # a path outside the allowed roots: the server's 422 shows on that field, and no task is made
    fill_start_form(page, "incident_triage", {**_inputs(incident), "logs": "/etc"})
    logs_error = page.locator("[data-field='inputs.logs'] .field-error")
    expect(logs_error).to_be_visible()
    expect(logs_error).to_contain_text("allowed roots")
    expect(page.locator("[data-field='inputs.service'] .field-error")).to_be_hidden()
    with gw.client() as client:
        assert client.get("/v1/tasks").json()["data"] == []

    page.locator("[name='inputs.logs']").fill(str(incident["logs"]))
    page.locator("[data-testid=start-form] button[type=submit]").click()
    task_id = open_task_view(page)
    wait_until_ended(page)

    with gw.client() as client:
        task = task_of(client, task_id)
        assert task["status"] == "completed"
        count = assert_every_event_once(page, client, task_id)
        log = events_of(client, task_id)
    # the report, rendered; the findings card names the commit, the line, the signature, the onset
    report = page.locator("[data-testid=report]")
    expect(report.locator("h1, h2").first).to_be_visible()
    expect(report).to_contain_text(incident["commit"][:12])
    findings = page.locator("[data-testid=findings]")
    expect(findings.locator("[data-finding=suspect]")).to_contain_text(incident["commit"][:12])
    expect(findings.locator("[data-finding=file]")).to_have_text(incident["file_line"])
    expect(findings.locator("[data-finding=signature]")).to_contain_text("KeyError: 'currency'")
    expect(findings.locator("[data-finding=onset]")).to_have_text(incident["onset"])
    # tokens per agent add up to what the task used
    usage = page.locator("[data-testid=agent-usage]")
    for agent in AGENTS:
        expect(usage.locator(f"tr[data-agent={agent}]")).to_be_visible()
    expect(usage.locator("tfoot td").nth(4)).to_have_text(grouped(task["usage"]["total_tokens"]))
    # each tool call: its arguments, its one-line summary, how long it took
    tools = [e for e in log if e["type"] == "tool.finished"]
    first = page.locator(f"[data-testid=timeline] [data-seq='{tools[0]['seq']}']")
    expect(first).to_contain_text(tools[0]["data"]["summary"][:60])
    expect(first.locator("xpath=..").locator(".args")).to_contain_text("logs=")
    assert len(tools) == page.locator("[data-testid=timeline] .end[data-type='tool.finished']").count()
    assert count == task["events"]

    # the list shows it, live-updated and with its tokens
    page.goto(f"{gw.url}/ui/#/tasks")
    row = page.locator(f"[data-testid=task-list] tr[data-task-id='{task_id}']")
    expect(row.locator(".status")).to_have_text("completed")
    expect(row).to_contain_text(grouped(task["usage"]["total_tokens"]))
    assert not browser_log.page_errors


def test_log_lines_and_model_text_with_markup_show_as_text(
    page: Page, browser_log: BrowserLog, gw: Gateway, roots: Path
) -> None:
    image = "<img src=x onerror=window.__pwned=1>"
    script = "<script>window.__pwned=2</script>"
    incident = small_incident.make_incident(
        roots / "hostile",
        exception=f"KeyError: '{image}'",
        new_error_message=f"{script} payment failed",
        extra_log_line=f'<a href="javascript:window.__pwned=3">retry</a> {image}',
    )
    with gw.client() as client:
        task_id = client.post("/v1/tasks", json={"crew": "incident_triage", "inputs": _inputs(incident)}).json()["id"]
        ended(client, task_id)
    page.goto(f"{gw.url}/ui/#/tasks/{task_id}")
    wait_until_ended(page)
    main = page.locator("main")
    # the hostile text is on the page as text: in the findings card, the report, and tool summaries
    expect(page.locator("[data-finding=signature]")).to_contain_text("<img src=x onerror=")
    expect(page.locator("[data-testid=report]")).to_contain_text("<img src=x onerror=")
    expect(page.locator("[data-testid=timeline]")).to_contain_text("<img src=x onerror=")
    page.locator("[data-testid=timeline] details").evaluate_all("els => els.forEach(d => d.open = true)")
    expect(page.locator("[data-testid=timeline]")).to_contain_text("<script>window.__pwned=2</script>")
    # ... and never markup: no image, script, or javascript: link came of it, and nothing ran
    assert main.locator("img, script, iframe, svg, object, embed").count() == 0
    assert main.locator("[onerror], [onclick], a[href^='javascript']").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert not browser_log.page_errors


def test_a_question_feedback_and_approval_are_answered_from_the_page(page: Page, gw: Gateway, roots: Path) -> None:
    incident = small_incident.make_incident(roots / "asks")
    small_incident.make_no_suspect_repo(incident["repo"])  # no commit explains it: the agent asks
    page.goto(f"{gw.url}/ui/#/tasks")
    expect(page.locator("[data-testid=task-list]")).to_be_visible()
    with gw.client() as client:
        body = {"crew": "incident_triage_reviewed", "inputs": _inputs(incident)}
        task_id = client.post("/v1/tasks", json=body).json()["id"]
    # the waiting task is shown first, with a way to answer it
    waiting = page.locator(f"[data-testid=waiting] li[data-task-id='{task_id}']")
    expect(waiting).to_be_visible(timeout=RUN_TIMEOUT_MS)
    waiting.get_by_role("link", name="Answer").click()
    assert open_task_view(page) == task_id

    panel = page.locator("[data-testid=input-request]")
    question = panel.locator("[data-kind=question]")
    expect(question).to_be_visible(timeout=RUN_TIMEOUT_MS)
    said = "The NewPricing feature flag was switched on at 12:40 without a deploy."
    question.locator("textarea[name=answer]").fill(said)
    question.get_by_role("button", name="Answer").click()

    review = panel.locator("[data-kind=review]")
    expect(review).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(review.locator(".review-output")).to_contain_text("NewPricing")
    feedback = "Say who to page for checkout."
    review.locator("textarea[name=feedback]").fill(feedback)
    review.get_by_role("button", name="Send back with feedback").click()
    # the step runs again with the feedback and is reviewed once more
    again = page.locator("[data-testid=input-request] [data-kind=review]")
    expect(again.locator(".review-output")).to_contain_text(feedback, timeout=RUN_TIMEOUT_MS)
    again.get_by_role("button", name="Approve").click()

    wait_until_ended(page)
    expect(page.locator("[data-testid=input-request]")).to_be_hidden()
    expect(page.locator("[data-testid=report]")).to_contain_text(feedback)
    with gw.client() as client:
        answers = [e["data"] for e in events_of(client, task_id) if e["type"] == "input.received"]
        assert_every_event_once(page, client, task_id)
    given = [{k: v for k, v in a.items() if k in ("answer", "feedback", "approve")} for a in answers]
    assert given == [{"answer": said}, {"feedback": feedback}, {"approve": True}]
    assert {a["by"] for a in answers} == {"person"}


def test_the_configs_view_shows_the_active_version_and_errors_with_file_and_line(
    page: Page, tmp_path: Path, roots: Path
) -> None:
    configs = write_configs(tmp_path / "configs")
    gateway = start_gateway(tmp_path / "gw", configs, roots, reload=True, reload_interval_s=0.2)
    try:
        with gateway.client() as client:
            version = client.get("/v1/configs/status").json()["active_version"]
        page.goto(f"{gateway.url}/ui/#/configs")
        expect(page.locator("[data-testid=config-version]")).to_have_text(version)
        expect(page.locator("[data-testid=config-crews] [data-crew=incident_triage]")).to_be_visible()
        expect(page.locator("[data-testid=config-agents]")).to_contain_text("log_analyst")
        # a broken edit on disk: shown with its file and line; new tasks keep the version they had
        broken = configs / "crews" / "broken.yaml"
        broken.write_text(
            "crews:\n  broken:\n    description: x\n    steps:\n      - name: a\n        agent: nobody\n"
            "        description: d\n        expected_output: e\n"
        )
        errors = page.locator("[data-testid=config-errors]")
        expect(errors).to_be_visible(timeout=20_000)
        expect(errors).to_contain_text("crews/broken.yaml:6")
        expect(errors).to_contain_text("nobody")
        expect(page.locator("[data-testid=config-version]")).to_have_text(version)
    finally:
        gateway.stop()
