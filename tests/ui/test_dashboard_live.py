"""The dashboard following a task live through a dropped connection, and signed in with
scoped keys: a read-only key sees no submit or answer controls."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from tests.gateway.test_keys import create_key
from tests.support import small_incident
from tests.support.browser import BrowserLog
from tests.support.gateway import wait_for, write_configs, write_streaming_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text
from tests.support.tcp_proxy import TcpProxy
from tests.ui.dashboard import (
    RUN_TIMEOUT_MS,
    assert_every_event_once,
    ended,
    open_task_view,
    seqs_shown,
    start_gateway,
    task_of,
    wait_until_ended,
)

ANSWER = "A streamed answer, eight characters a chunk, every one of them in order. " * 6
STEPS = 6


def test_the_task_view_resumes_after_a_dropped_connection_with_no_event_twice_or_missing(
    page: Page, browser_log: BrowserLog, tmp_path: Path
) -> None:
    model = ScriptedModel(default=text(ANSWER), delay_s=0.4)
    with ScriptedServer(model) as llm:
        configs = write_streaming_configs(tmp_path / "configs", llm.base_url, steps=STEPS)
        gateway = start_gateway(tmp_path / "gw", configs, tmp_path)
        try:
            with TcpProxy(gateway.port) as proxy, gateway.client() as client:
                task_id = client.post("/v1/tasks", json={"crew": "streaming", "inputs": {"topic": "x"}}).json()["id"]
                page.goto(f"{proxy.url}/ui/#/tasks/{task_id}")
                assert open_task_view(page) == task_id
                # part of the run is on the page, the rest is still to come: cut the network
                wait_for(lambda: len(seqs_shown(page)) >= 40, timeout=RUN_TIMEOUT_MS / 1000)
                proxy.sever()
                assert task_of(client, task_id)["status"] == "running"
                connection = page.locator("[data-testid=connection]")
                expect(connection).to_have_attribute("data-reconnects", re.compile(r"^[1-9]"), timeout=10_000)
                wait_until_ended(page)
                assert_every_event_once(page, client, task_id)
        finally:
            gateway.stop()
    # every step's model text, streamed in 8-character chunks across the cut, reads whole
    streamed = page.locator("[data-testid=stream-text]").all_inner_texts()
    assert streamed == [ANSWER] * STEPS
    # the page came back with after=<the last seq it showed>, not from the start
    sockets = [u for u in browser_log.websockets if f"/v1/tasks/{task_id}/events" in u]
    afters = [int(parse_qs(urlsplit(u).query)["after"][0]) for u in sockets]
    assert len(afters) >= 2 and afters[0] == 0 and afters[-1] > 0, afters
    assert not browser_log.page_errors


def _sign_in(page: Page, key: str) -> None:
    form = page.locator("[data-testid=signin]")
    expect(form).to_be_visible()
    form.locator("input[name=key]").fill(key)
    form.get_by_role("button", name="Sign in").click()
    expect(form).to_have_count(0)


def test_a_read_only_key_sees_no_submit_or_answer_controls_and_an_admin_key_answers(page: Page, tmp_path: Path) -> None:
    incident = small_incident.make_incident(tmp_path / "roots")
    configs = write_configs(tmp_path / "configs")
    gateway = start_gateway(tmp_path / "gw", configs, tmp_path / "roots", jwt_secret="s" * 40)
    try:
        db = gateway.env["CREWGATE_DATABASE_URL"]
        admin = create_key(db, "on-call", "admin")
        reader = create_key(db, "wallboard", "tasks:read,events:read,configs:read")
        inputs = {"service": "checkout", "logs": str(incident["logs"]), "repo": str(incident["repo"])}
        headers = {"Authorization": f"Bearer {admin}"}
        with gateway.client() as client:
            body = {"crew": "incident_triage_reviewed", "inputs": inputs}
            task_id = client.post("/v1/tasks", json=body, headers=headers).json()["id"]

        page.goto(f"{gateway.url}/ui/")
        page.locator("[data-testid=signin] input[name=key]").fill("cgk_0123456789abcdef_" + "x" * 43)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("[data-testid=signin] .error")).to_contain_text("not valid")

        _sign_in(page, reader)
        expect(page.locator("[data-testid=whoami]")).to_contain_text("tasks:read")
        token = page.evaluate("sessionStorage.getItem('crewgate.token')")
        assert token.count(".") == 2 and token != reader  # a short-lived JWT, not the key
        assert page.evaluate("localStorage.length") == 0
        waiting = page.locator(f"[data-testid=waiting] li[data-task-id='{task_id}']")
        expect(waiting).to_be_visible(timeout=RUN_TIMEOUT_MS)
        expect(page.locator("[data-testid=task-list]")).to_be_visible()
        assert page.locator("[data-testid=start-form]").count() == 0
        assert waiting.get_by_role("link", name="Answer").count() == 0

        page.goto(f"{gateway.url}/ui/#/tasks/{task_id}")
        review = page.locator("[data-testid=input-request] [data-kind=review]")
        expect(review).to_contain_text("needs a key with the input:write scope")
        assert review.locator("button, textarea").count() == 0
        assert page.get_by_role("button", name="Cancel").count() == 0

        page.get_by_role("button", name="Sign out").click()
        assert page.evaluate("sessionStorage.getItem('crewgate.token')") is None
        _sign_in(page, admin)
        page.goto(f"{gateway.url}/ui/#/tasks/{task_id}")
        review.get_by_role("button", name="Approve").click()
        wait_until_ended(page)
        page.goto(f"{gateway.url}/ui/#/tasks")
        expect(page.locator("[data-testid=start-form]")).to_be_visible()
        with gateway.client() as client:
            assert client.get(f"/v1/tasks/{task_id}", headers=headers).json()["status"] == "completed"
    finally:
        gateway.stop()


def test_the_task_list_follows_the_firehose_across_a_dropped_connection(
    page: Page, browser_log: BrowserLog, tmp_path: Path
) -> None:
    model = ScriptedModel(default=text("Part written."), delay_s=0.3)
    with ScriptedServer(model) as llm:
        configs = write_streaming_configs(tmp_path / "configs", llm.base_url, steps=4)
        gateway = start_gateway(tmp_path / "gw", configs, tmp_path)
        try:
            with TcpProxy(gateway.port) as proxy, gateway.client() as client:
                page.goto(f"{proxy.url}/ui/#/tasks")
                expect(page.locator("[data-testid=connection]")).to_have_text("live")

                def submit(topic: str) -> str:
                    body = {"crew": "streaming", "inputs": {"topic": topic}}
                    return str(client.post("/v1/tasks", json=body).json()["id"])

                first = [submit(f"before {i}") for i in range(3)]
                rows = page.locator("[data-testid=task-list] tbody tr")
                expect(rows).to_have_count(3)
                proxy.sever()
                later = [submit(f"while cut {i}") for i in range(2)]  # made while the page is cut off
                for task_id in first + later:
                    done = ended(client, task_id)
                    row = page.locator(f"[data-testid=task-list] tr[data-task-id='{task_id}']")
                    expect(row.locator(".status")).to_have_text("completed", timeout=RUN_TIMEOUT_MS)
                    expect(row.locator("td").nth(6)).to_have_text(f"{done['usage']['total_tokens']:,}")
                    expect(row.locator("td").nth(3)).to_contain_text("while cut" if task_id in later else "before")
                expect(rows).to_have_count(5)
                # filters: by service text, by status, by crew
                page.locator("input[name=service]").fill("while cut")
                expect(page.locator("[data-testid=task-list] tbody tr:not([hidden])")).to_have_count(2)
                page.locator("input[name=service]").fill("")
                page.locator("select[name=status]").select_option("failed")
                expect(page.locator("[data-testid=task-list] tbody tr:not([hidden])")).to_have_count(0)
                expect(page.get_by_text("No tasks match.")).to_be_visible()
                page.locator("select[name=status]").select_option("completed")
                page.get_by_label("crew filter").select_option("streaming")
                expect(page.locator("[data-testid=task-list] tbody tr:not([hidden])")).to_have_count(5)
        finally:
            gateway.stop()
    firehose = [u for u in browser_log.websockets if "/v1/events" in u]
    assert len(firehose) >= 2, firehose  # it came back after the cut
    assert not browser_log.page_errors
