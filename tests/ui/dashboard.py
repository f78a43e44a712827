"""What the dashboard tests share: a gateway for them, and reading the page back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from tests.support.gateway import Gateway, wait_for

RUN_TIMEOUT_MS = 90_000
TERMINAL = ("completed", "failed", "cancelled")


def start_gateway(workdir: Path, configs: Path, roots: Path, **settings: Any) -> Gateway:
    """A ``crewgate serve`` process (tests/conftest.py turns the rate limits off for the suite)."""
    return Gateway(workdir, config_dir=configs, roots=roots, poll_interval_s=0.2, **settings).start()


def seqs_shown(page: Page) -> list[int]:
    """The seq of every event the timeline shows, in page order (each event is one element)."""
    values = page.eval_on_selector_all("[data-testid=timeline] [data-seq]", "els => els.map(e => e.dataset.seq)")
    return [int(v) for v in values]


def events_of(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    return list(client.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000}).json()["data"])


def task_of(client: httpx.Client, task_id: str) -> dict[str, Any]:
    return dict(client.get(f"/v1/tasks/{task_id}").json())


def ended(client: httpx.Client, task_id: str, timeout: float = 90) -> dict[str, Any]:
    return dict(wait_for(lambda: (t := task_of(client, task_id))["status"] in TERMINAL and t, timeout=timeout))


def open_task_view(page: Page) -> str:
    """The id of the task the page shows, once it shows one."""
    view = page.locator("[data-testid=task-view]")
    expect(view).to_be_visible(timeout=10_000)
    task_id = view.get_attribute("data-task-id")
    assert task_id
    return task_id


def wait_until_ended(page: Page, status: str = "completed") -> None:
    """The page shows the task ended with ``status`` and its stream closed."""
    expect(page.locator("[data-testid=task-status]")).to_have_text(status, timeout=RUN_TIMEOUT_MS)
    expect(page.locator("[data-testid=connection]")).to_have_text("ended", timeout=RUN_TIMEOUT_MS)


def assert_every_event_once(page: Page, client: httpx.Client, task_id: str) -> int:
    """The timeline shows each of the task's events exactly once: 1..N of the log, none twice,
    none missing (grouped by step, so not always in seq order on the page)."""
    log = events_of(client, task_id)
    wanted = list(range(1, len(log) + 1))
    assert [e["seq"] for e in log] == wanted
    expect(page.locator("[data-testid=timeline] [data-seq]")).to_have_count(len(log), timeout=10_000)
    shown = seqs_shown(page)
    assert sorted(shown) == wanted, f"twice: {sorted({s for s in shown if shown.count(s) > 1})}"
    return len(log)


def grouped(number: int) -> str:
    """A token count as the page prints it (1,234)."""
    return f"{number:,}"


def fill_start_form(page: Page, crew: str, inputs: dict[str, str]) -> None:
    form = page.locator("[data-testid=start-form]")
    form.locator("select[name=crew]").select_option(crew)
    expect(form).to_have_attribute("data-crew", crew)  # its fields are on the page
    for name, value in inputs.items():
        form.locator(f"[name='inputs.{name}']").fill(value)
    form.locator("button[type=submit]").click()
