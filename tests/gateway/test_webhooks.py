"""Webhooks against real gateway processes and a real receiver on 127.0.0.1.

The event log is the delivery queue: these tests check that every event a hook asks for
arrives once, in log order, signed, through receiver failures and a gateway kill -9.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_metrics import scrape, total
from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.inprocess import app_client, eventually, inprocess_settings
from tests.support.llm_server import ScriptedModel, ScriptedServer, text
from tests.support.receiver import Hit, Receiver

ASKED = ["task.started", "step.completed", "task.completed"]
SECRET = "s3cret-for-tests"
HOOK_SETTINGS: dict[str, Any] = {
    "webhook_allowed_hosts": "127.0.0.1",
    "webhook_allow_private": "true",
    "webhook_retry_base_s": 0.05,
    "webhook_retry_max_s": 0.3,
    "webhook_poll_s": 0.2,
}


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(ScriptedModel(default=text("A paragraph."), delay_s=0.05)) as server:
        yield server


def submit(gw: Gateway, receiver: Receiver, topic: str) -> str:
    body = {
        "crew": "slow",
        "inputs": {"topic": topic},
        "webhook": {"url": receiver.url, "events": ASKED, "secret": SECRET},
    }
    with gw.client() as c:
        response = c.post("/v1/tasks", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def asked_events(gw: Gateway, task_id: str, asked: list[str]) -> list[dict[str, Any]]:
    with gw.client() as c:
        data = c.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000}).json()["data"]
    return [e for e in data if e["type"] in asked]


def by_task(hits: list[Hit]) -> dict[str, list[Hit]]:
    grouped: dict[str, list[Hit]] = defaultdict(list)
    for hit in hits:
        grouped[hit.event["task_id"]].append(hit)
    return grouped


def completed_delivered(receiver: Receiver, task_ids: list[str]) -> bool:
    done = {h.event["task_id"] for h in receiver.accepted() if h.event["type"] == "task.completed"}
    return done >= set(task_ids)


def check_task(gw: Gateway, task_id: str, hits: list[Hit], asked: list[str] = ASKED) -> int:
    """Every asked event of the task arrived, first arrivals in log order, signed, the body the
    logged event; returns how many arrived more than once."""
    expected = asked_events(gw, task_id, asked)
    first: dict[str, Hit] = {}
    for hit in hits:
        first.setdefault(hit.delivery, hit)
        assert hit.signed_by(SECRET)
        assert hit.headers["crewgate-event"] == hit.event["type"]
    arrived = [h.event for h in first.values()]
    assert arrived == expected
    return len(hits) - len(first)


def test_failed_deliveries_are_retried_then_each_event_arrives_once_signed_in_order(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url, slow_steps=3)
    with Receiver(lambda n, _p: (500, {}) if n < 3 else (204, {})) as receiver:
        gw = Gateway(tmp_path / "gw", config_dir=configs, roots=incident["root"], **HOOK_SETTINGS).start()
        try:
            task_id = submit(gw, receiver, "retries")
            wait_for(lambda: completed_delivered(receiver, [task_id]), timeout=60)
            accepted = receiver.accepted()
            assert check_task(gw, task_id, accepted) == 0  # no duplicate on the happy path
            failed = [h for h in receiver.all() if h.status == 500]
            assert len(failed) == 3
            # a retry carries the same delivery id as the attempt it repeats
            assert {h.delivery for h in failed} <= {h.delivery for h in accepted}
            with gw.client() as c:
                hooks = c.get(f"/v1/tasks/{task_id}/webhooks").json()["data"]
            samples = scrape(gw.url)
        finally:
            gw.stop()
    (hook,) = hooks
    assert hook["signed"] is True and SECRET not in str(hooks)
    statuses = Counter(d["status"] for d in hook["deliveries"])
    assert statuses == {"retrying": 3, "delivered": len(accepted)}
    # Prometheus counts the same attempts
    assert total(samples, "crewgate_webhook_deliveries_total", status="retrying") == 3
    assert total(samples, "crewgate_webhook_deliveries_total", status="delivered") == len(accepted)
    assert hook["state"] == "done"


def test_deliveries_pending_at_a_kill_9_are_sent_after_the_restart(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url, slow_steps=2)
    accepting = {"on": False}
    settings = {**HOOK_SETTINGS, "webhook_max_attempts": 100}  # the receiver is down for a while
    with Receiver(lambda _n, _p: (204, {}) if accepting["on"] else (503, {})) as receiver:
        gw = Gateway(tmp_path / "gw", config_dir=configs, roots=incident["root"], **settings).start()
        try:
            task_id = submit(gw, receiver, "pending")
            wait_for(lambda: any(h.event["task_id"] == task_id for h in receiver.all()), timeout=60)
            with gw.client() as c:
                wait_for(lambda: c.get(f"/v1/tasks/{task_id}").json()["status"] == "completed", timeout=60)
            gw.kill()
            assert receiver.accepted() == []
            accepting["on"] = True
            gw.start()
            wait_for(lambda: completed_delivered(receiver, [task_id]), timeout=60)
            assert check_task(gw, task_id, receiver.accepted()) == 0
        finally:
            gw.stop()


# the heaviest tests of the suite: about 80 s alone, several times that beside the other worker's
# servers and browser on 2 cores; the limit is a hang guard, not a speed check
@pytest.mark.timeout(900)
def test_fifty_tasks_every_asked_event_arrives_in_order_across_a_kill_9(
    tmp_path: Path, incident: dict, scripted: ScriptedServer
) -> None:
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url, slow_steps=2)
    with Receiver() as receiver:
        gw = Gateway(
            tmp_path / "gw", config_dir=configs, roots=incident["root"], max_concurrency=8, lease_s=2, **HOOK_SETTINGS
        ).start()
        try:
            task_ids = [submit(gw, receiver, f"topic {i}") for i in range(50)]
            wait_for(lambda: len(receiver.accepted()) >= 40, timeout=120)
            gw.kill()
            gw.start()
            wait_for(lambda: completed_delivered(receiver, task_ids), timeout=300)
            grouped = by_task(receiver.accepted())
            duplicates = sum(check_task(gw, task_id, grouped[task_id]) for task_id in task_ids)
        finally:
            gw.stop()
    # at-least-once across the crash: only a delivery in flight at the kill (one per task hook at
    # most, and at most webhook_concurrency of them) may arrive twice
    assert duplicates <= 16
    print(f"deliveries: {len(receiver.accepted())}, duplicates after the kill: {duplicates}")


def test_a_waiting_task_keeps_its_webhook_across_a_kill_9_and_the_resume(tmp_path: Path, incident: dict) -> None:
    asked = ["input.required", "input.received", "task.completed"]
    configs = write_configs(tmp_path / "configs")
    hook = {"url": "", "events": asked, "secret": SECRET}
    with Receiver() as receiver:
        hook["url"] = receiver.url
        gw = Gateway(tmp_path / "gw", config_dir=configs, roots=incident["root"], **HOOK_SETTINGS).start()
        try:
            body = {"crew": "incident_triage_reviewed", "inputs": _triage_inputs(incident), "webhook": hook}
            with gw.client() as c:
                task_id = c.post("/v1/tasks", json=body).json()["id"]
            (required,) = wait_for(lambda: receiver.accepted(), timeout=120)
            assert required.event["type"] == "input.required"
            with gw.client() as c:  # recorded as delivered (a kill before that would send it again)
                wait_for(
                    lambda: (
                        c.get(f"/v1/tasks/{task_id}/webhooks").json()["data"][0]["delivered_seq"]
                        >= required.event["seq"]
                    )
                )
            gw.kill()
            gw.start()
            with gw.client() as c:
                answered = c.post(
                    f"/v1/tasks/{task_id}/input",
                    json={"request_id": required.event["data"]["request_id"], "approve": True},
                )
            assert answered.status_code == 200, answered.text
            wait_for(lambda: completed_delivered(receiver, [task_id]), timeout=120)
            assert check_task(gw, task_id, receiver.accepted(), asked) == 0
        finally:
            gw.stop()


async def _submit_status(tmp_path: Path, incident: dict, webhook: dict[str, Any], **settings: Any) -> Any:
    configs = write_configs(tmp_path / "configs")
    config = inprocess_settings(tmp_path / "gw", config_dir=configs, roots=incident["root"], **settings)
    body = {"crew": "incident_triage", "inputs": _triage_inputs(incident), "webhook": webhook}
    async with app_client(config) as client:
        response = await client.post("/v1/tasks", json=body)
    return response


def _triage_inputs(incident: dict) -> dict[str, str]:
    return {"service": "checkout", "logs": str(incident["dir"] / "logs"), "repo": str(incident["dir"] / "repo")}


async def test_a_host_not_allowed_is_refused_at_submit(tmp_path: Path, incident: dict) -> None:
    hook = {"url": "https://evil.example.net/x", "events": ["task.completed"]}
    response = await _submit_status(tmp_path, incident, hook, webhook_allowed_hosts="hooks.example.com,*.corp.io")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "webhook_refused" and "CREWGATE_WEBHOOK_ALLOWED_HOSTS" in error["message"]
    assert error["details"][0]["field"] == "webhook.url"


async def test_webhooks_are_refused_when_no_host_is_allowed(tmp_path: Path, incident: dict) -> None:
    hook = {"url": "https://hooks.example.com/x", "events": ["task.completed"]}
    response = await _submit_status(tmp_path, incident, hook)
    assert response.status_code == 422
    assert "CREWGATE_WEBHOOK_ALLOWED_HOSTS is empty" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost:9/x", "http://[::1]:9/x"])
async def test_a_loopback_address_is_refused_without_allow_private(tmp_path: Path, incident: dict, url: str) -> None:
    hook = {"url": url, "events": ["task.completed"]}
    response = await _submit_status(tmp_path, incident, hook, webhook_allowed_hosts="127.0.0.1,localhost,::1")
    assert response.status_code == 422
    assert "CREWGATE_WEBHOOK_ALLOW_PRIVATE" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "hook",
    [
        {"url": "ftp://127.0.0.1/x", "events": ["task.completed"]},
        {"url": "http://127.0.0.1/x", "events": ["not.an.event"]},
        {"url": "http://127.0.0.1/x", "events": []},
        {"url": "http://127.0.0.1/" + "a" * 2048, "events": ["task.completed"]},
        {"url": "http://127.0.0.1/x", "events": ["task.completed"], "extra": 1},
    ],
)
async def test_malformed_webhooks_are_422(tmp_path: Path, incident: dict, hook: dict[str, Any]) -> None:
    response = await _submit_status(
        tmp_path, incident, hook, webhook_allowed_hosts="127.0.0.1", webhook_allow_private=True
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


async def test_a_redirect_is_not_followed_and_the_delivery_fails(tmp_path: Path, incident: dict) -> None:
    with Receiver(lambda _n, path: (302, {"Location": "/elsewhere"}) if path == "/hook" else (204, {})) as receiver:
        configs = write_configs(tmp_path / "configs")
        config = inprocess_settings(
            tmp_path / "gw",
            config_dir=configs,
            roots=incident["root"],
            webhook_allowed_hosts="127.0.0.1",
            webhook_allow_private=True,
            webhook_poll_s=0.1,
        )
        body = {
            "crew": "incident_triage",
            "inputs": _triage_inputs(incident),
            "webhook": {"url": receiver.url, "events": ["task.queued"]},
        }
        async with app_client(config) as client:
            task_id = (await client.post("/v1/tasks", json=body)).json()["id"]

            async def settled() -> list[dict[str, Any]]:
                hooks = (await client.get(f"/v1/tasks/{task_id}/webhooks")).json()["data"]
                return [d for d in hooks[0]["deliveries"] if d["status"] == "failed"]

            (failed,) = await eventually(settled, timeout=30)
        assert failed["http_status"] == 302 and "redirect" in failed["error"]
        assert [h.path for h in receiver.all()] == ["/hook"]  # /elsewhere was never asked for


async def test_a_webhook_cursor_is_held_by_one_deliverer_at_a_time(store: Any) -> None:
    from datetime import UTC, datetime

    from gateway.store import CursorMove, DeliveryRecord, WebhookSpec

    hooks = [WebhookSpec("http://a.test/x", ("task.queued",)), WebhookSpec("http://b.test/y", ("task.queued",))]
    record, _ = await store.create_task("c", {}, "v1", webhooks=hooks)
    first = await store.claim_webhooks("one", lease_s=60)
    assert sorted(h.url for h in first) == ["http://a.test/x", "http://b.test/y"]
    assert await store.claim_webhooks("two", lease_s=60) == []  # held
    hook = first[0]
    attempt = DeliveryRecord(0, hook.id, record.id, 1, "task.queued", 1, "delivered", 204, None, 3, datetime.now(UTC))
    assert not await store.move_webhook(hook.id, "two", CursorMove(1), attempt)  # not its lease: nothing written
    assert await store.webhook_deliveries(record.id) == []
    assert await store.move_webhook(hook.id, "one", CursorMove(1), attempt)  # moved and released
    (kept,) = await store.webhook_deliveries(record.id)
    assert (kept.seq, kept.status, kept.http_status) == (1, "delivered", 204)
    assert await store.claim_webhooks("two", lease_s=60) == []  # nothing after seq 1 for it yet
    other = first[1]
    assert await store.move_webhook(other.id, "one", CursorMove(0, lease_s=0.01))  # a lease about to run out
    (taken,) = await eventually_claimed(store, "two")
    assert taken.id == other.id and taken.lease_owner == "two"
    assert await store.release_webhooks("two") == 1  # a deliverer stopping hands it back at once
    (again,) = await store.claim_webhooks("three", lease_s=60)
    assert again.id == other.id and again.delivered_seq == 0


async def eventually_claimed(store: Any, owner: str) -> list[Any]:
    async def claim() -> list[Any]:
        return list(await store.claim_webhooks(owner, lease_s=60))

    return await eventually(claim, timeout=10)
