"""GET /metrics on a real gateway, read with prometheus-client's own text-format parser.

What is counted is checked against what happened, read from the task's event log: the
tokens of each agent's model calls, their cost at the profile's prices, its steps. The
task gauges are checked with one task in each state (waiting, running, queued), held
there by a scripted model that hangs. Multiprocess mode: a Celery worker's counts reach
the gateway's /metrics through a shared PROMETHEUS_MULTIPROC_DIR, and a worker on
another host is scraped on its own ``--metrics-port``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.support.gateway import PROJECT, Gateway, free_port, wait_for, write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, hang, text
from tests.support.redis import redis_url
from tests.support.scaleout import Worker, private_pg, redis_prefix

__all__ = ["private_pg", "redis_prefix", "redis_url"]  # fixtures, imported to be found

PRICE_IN, PRICE_OUT = 2.5, 10.0  # USD per million tokens, on the scripted profile
TRIAGE_STEPS = {"analyze_logs", "investigate_code", "write_report"}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample with exactly these labels; 0 when there is none."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def label_values(samples: Samples, name: str, label: str) -> set[str]:
    return {dict(ls)[label] for (n, ls), _ in samples.items() if n == name and label in dict(ls)}


def triage_inputs(incident: dict) -> dict[str, str]:
    d = incident["dir"]
    return {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo")}


def submit(url: str, crew: str, inputs: dict[str, Any]) -> str:
    response = httpx.post(f"{url}/v1/tasks", json={"crew": crew, "inputs": inputs}, timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def status_of(url: str, task_id: str) -> str:
    return str(httpx.get(f"{url}/v1/tasks/{task_id}", timeout=10).json()["status"])


def ended(url: str, task_id: str, timeout: float = 120) -> str:
    return str(wait_for(lambda: (s := status_of(url, task_id)) in ("completed", "failed", "cancelled") and s, timeout))


def events(url: str, task_id: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{url}/v1/tasks/{task_id}/events", params={"limit": 1000}, timeout=10).json()
    return list(page["data"])


def usage_by(log: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """Tokens per (agent, model) as the run's llm.completed events report them."""
    found: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"prompt": 0, "completion": 0, "calls": 0})
    for event in log:
        if event["type"] == "llm.completed":
            usage = event["data"].get("usage", {})
            row = found[(event["agent"], event["data"]["model"])]
            row["prompt"] += usage.get("prompt_tokens", 0)
            row["completion"] += usage.get("completion_tokens", 0)
            row["calls"] += 1
    return dict(found)


def priced_configs(target: Path, base_url: str) -> Path:
    configs = write_configs(target, scripted_base_url=base_url, slow_steps=2)
    slow = configs / "slow.yaml"
    priced = slow.read_text().replace(
        "      max_retries: 0\n",
        f"      max_retries: 0\n      price_per_1m_input_tokens: {PRICE_IN}\n"
        f"      price_per_1m_output_tokens: {PRICE_OUT}\n",
    )
    assert priced != slow.read_text()
    slow.write_text(priced)
    return configs


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(ScriptedModel(default=text("Part written."))) as running:
        yield running


@pytest.fixture(scope="module")
def model(server: ScriptedServer) -> ScriptedModel:
    return server.model


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, incident: dict, server: ScriptedServer) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("metrics")
    configs = priced_configs(root / "configs", server.base_url)
    gateway = Gateway(
        root / "gw", config_dir=configs, roots=incident["root"], max_concurrency=1, poll_interval_s=0.2
    ).start()
    yield gateway
    gateway.stop()


def test_a_triage_is_counted_by_crew_agent_and_model(gw: Gateway, incident: dict) -> None:
    before = scrape(gw.url)
    task_id = submit(gw.url, "incident_triage", triage_inputs(incident))
    assert ended(gw.url, task_id) == "completed"
    log = events(gw.url, task_id)
    after = scrape(gw.url)

    done = ("crewgate_tasks_total", {"crew": "incident_triage", "status": "completed"})
    assert value(after, done[0], **done[1]) - value(before, done[0], **done[1]) == 1
    runs = "crewgate_task_duration_seconds_count"
    assert value(after, runs, crew="incident_triage", status="completed") == 1
    assert value(after, "crewgate_task_duration_seconds_sum", crew="incident_triage", status="completed") > 0
    for step in TRIAGE_STEPS:
        assert value(after, "crewgate_step_duration_seconds_count", crew="incident_triage", step=step) == 1

    usage = usage_by(log)
    assert {agent for agent, _ in usage} == {"log_analyst", "code_investigator", "triage_lead"}
    for (agent, model_name), counted in usage.items():
        labels = {"crew": "incident_triage", "agent": agent, "model": model_name}
        assert value(after, "crewgate_llm_tokens_total", **labels, kind="prompt") == counted["prompt"] > 0
        assert value(after, "crewgate_llm_tokens_total", **labels, kind="completion") == counted["completion"] > 0
        assert value(after, "crewgate_llm_calls_total", **labels) == counted["calls"]
        assert value(after, "crewgate_llm_cost_usd_total", **labels) == 0  # the offline model is free
    assert all(e["data"]["cost_usd"] == 0.0 for e in log if e["type"] == "llm.completed")  # and says so
    assert log[-1]["type"] == "task.completed" and log[-1]["data"]["cost_usd"] == 0.0
    tools = {e["data"]["tool"] for e in log if e["type"] == "tool.finished"}
    assert label_values(after, "crewgate_tool_calls_total", "tool") >= tools

    requests = "crewgate_http_requests_total"
    assert value(after, requests, route="/v1/tasks", method="POST", status="202") >= 1
    assert value(after, requests, route="/v1/tasks/{task_id}", method="GET", status="200") >= 1
    assert value(after, requests, route="/v1/tasks/{task_id}/events", method="GET", status="200") >= 1
    assert not any(task_id in route for route in label_values(after, requests, "route"))  # templates, not paths
    assert value(after, "crewgate_http_request_duration_seconds_count", route="/v1/tasks", method="POST") >= 1


def test_an_unknown_path_is_one_series_whatever_the_path(gw: Gateway) -> None:
    for i in range(3):
        assert httpx.get(f"{gw.url}/no/such/path/{i}", timeout=10).status_code == 404
    samples = scrape(gw.url)
    assert value(samples, "crewgate_http_requests_total", route="unmatched", method="GET", status="404") >= 3
    assert not any("/no/such" in r for r in label_values(samples, "crewgate_http_requests_total", "route"))


def test_a_priced_model_s_tokens_cost_what_its_profile_says(gw: Gateway) -> None:
    task_id = submit(gw.url, "slow", {"topic": "latency"})
    assert ended(gw.url, task_id) == "completed"
    log = events(gw.url, task_id)
    usage = usage_by(log)
    assert [agent for agent, _ in usage] == ["slow_writer"]
    calls = [e for e in log if e["type"] == "llm.completed"]
    assert len(calls) >= 2
    for call in calls:  # each stored model call carries its own cost, in USD to the micro-dollar
        tokens = call["data"]["usage"]
        exact = (tokens["prompt_tokens"] * PRICE_IN + tokens["completion_tokens"] * PRICE_OUT) / 1e6
        priced = call["data"]["cost_usd"]
        assert priced > 0 and priced == round(priced, 6) and priced == pytest.approx(exact, abs=5e-7 + 1e-12)
    spent = sum(call["data"]["cost_usd"] for call in calls)
    assert log[-1]["type"] == "task.completed" and log[-1]["data"]["cost_usd"] == pytest.approx(spent, abs=1e-9)
    samples = scrape(gw.url)
    for (agent, model_name), counted in usage.items():
        labels = {"crew": "slow", "agent": agent, "model": model_name}
        expected = (counted["prompt"] * PRICE_IN + counted["completion"] * PRICE_OUT) / 1e6
        assert expected > 0
        cost = value(samples, "crewgate_llm_cost_usd_total", **labels)
        assert cost == pytest.approx(spent, rel=1e-9)  # the metric counts what the events say
        assert cost == pytest.approx(expected, abs=len(calls) * 5e-7)  # each call rounded to 6 decimals
        assert value(samples, "crewgate_llm_tokens_total", **labels, kind="prompt") == counted["prompt"]


def test_gauges_show_each_state_and_a_watcher_and_its_lag(gw: Gateway, incident: dict, model: ScriptedModel) -> None:
    reviewed = submit(gw.url, "incident_triage_reviewed", triage_inputs(incident))
    wait_for(lambda: status_of(gw.url, reviewed) == "waiting", 120)
    model.script[:] = [hang(300)]  # held until released below
    slow = submit(gw.url, "slow", {"topic": "gauges"})
    wait_for(lambda: any(e["type"] == "llm.started" for e in events(gw.url, slow)), 60)
    queued = submit(gw.url, "incident_triage", triage_inputs(incident))  # the only slot is taken
    assert status_of(gw.url, queued) == "queued"
    lag_before = value(scrape(gw.url), "crewgate_event_delivery_lag_seconds_count", kind="websocket")

    frames: list[dict[str, Any]] = []
    with connect(f"{gw.ws_url}/v1/tasks/{slow}/events") as ws:
        seen_replay = threading.Event()

        def read() -> None:
            for message in ws:
                frames.append(json.loads(message))
                seen_replay.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert seen_replay.wait(30)
        samples = wait_for(lambda: (s := scrape(gw.url)) and value(s, "crewgate_watchers", kind="websocket") == 1 and s)
        active = "crewgate_tasks_active"
        assert value(samples, active, crew="incident_triage_reviewed", status="waiting") == 1
        assert value(samples, active, crew="slow", status="running") == 1
        assert value(samples, active, crew="incident_triage", status="queued") == 1
        assert value(samples, active, crew="incident_triage", status="running") == 0

        cancelled_before = value(samples, "crewgate_tasks_total", crew="incident_triage", status="cancelled")
        assert httpx.post(f"{gw.url}/v1/tasks/{queued}/cancel", timeout=10).status_code == 200
        model.stopping.set()  # the hanging model call returns an error: the slow task fails
        try:
            assert ended(gw.url, slow) == "failed"
        finally:
            model.stopping.clear()
        reader.join(30)
    assert frames[-1]["type"] == "task.failed"
    samples = wait_for(lambda: (s := scrape(gw.url)) and value(s, "crewgate_watchers", kind="websocket") == 0 and s)
    # the events after the hang were appended while the watcher was open
    assert value(samples, "crewgate_event_delivery_lag_seconds_count", kind="websocket") > lag_before
    assert value(samples, "crewgate_tasks_total", crew="incident_triage", status="cancelled") == cancelled_before + 1
    assert value(samples, "crewgate_tasks_total", crew="slow", status="failed") >= 1

    def settled() -> bool:  # the store gauges are read at most once a second
        now = scrape(gw.url)
        running = value(now, "crewgate_tasks_active", crew="slow", status="running")
        return running == 0 and value(now, "crewgate_tasks_active", crew="incident_triage", status="queued") == 0

    wait_for(settled, 10)
    httpx.post(f"{gw.url}/v1/tasks/{reviewed}/cancel", timeout=10)


def test_an_sse_watcher_is_counted_while_open(gw: Gateway, incident: dict) -> None:
    reviewed = submit(gw.url, "incident_triage_reviewed", triage_inputs(incident))
    wait_for(lambda: status_of(gw.url, reviewed) == "waiting", 120)
    headers = {"Accept": "text/event-stream"}
    with httpx.stream("GET", f"{gw.url}/v1/tasks/{reviewed}/events", headers=headers, timeout=30) as stream:
        lines = stream.iter_lines()
        assert [next(lines) for _ in range(3)] == ["retry: 1000", "", "id: 1"]  # the stream is open
        samples = wait_for(lambda: (s := scrape(gw.url)) and value(s, "crewgate_watchers", kind="sse") == 1 and s)
        assert value(samples, "crewgate_tasks_active", crew="incident_triage_reviewed", status="waiting") >= 1
    assert httpx.post(f"{gw.url}/v1/tasks/{reviewed}/cancel", timeout=10).status_code == 200
    wait_for(lambda: value(scrape(gw.url), "crewgate_watchers", kind="sse") == 0)


def test_metrics_off_records_nothing_and_has_no_endpoint(tmp_path: Path, incident: dict) -> None:
    gateway = Gateway(tmp_path / "gw", config_dir=PROJECT / "configs", roots=incident["root"], metrics="false").start()
    try:
        assert httpx.get(f"{gateway.url}/metrics", timeout=10).status_code == 404
        assert httpx.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
    finally:
        gateway.stop()


def test_a_price_on_the_offline_model_is_refused(tmp_path: Path) -> None:
    configs = write_configs(tmp_path / "configs")
    models = configs / "models.yaml"
    models.write_text(
        models.read_text().replace(
            "      provider: offline\n", "      provider: offline\n      price_per_1m_input_tokens: 1\n"
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "validate", str(configs)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "offline model costs nothing" in result.stdout + result.stderr


# several processes


def celery_settings(redis_url: str, redis_prefix: str, database_url: str) -> dict[str, Any]:
    return {
        "dispatcher": "celery",
        "broker_url": redis_url,
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "database_url": database_url,
        "poll_interval_s": 0.5,
    }


def test_a_worker_s_counts_reach_the_gateway_through_the_shared_directory(
    tmp_path: Path, incident: dict, redis_url: str, redis_prefix: str, private_pg: str
) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    settings = celery_settings(redis_url, redis_prefix, private_pg)
    gateway = Gateway(tmp_path / "gw", config_dir=PROJECT / "configs", roots=incident["root"], **settings)
    gateway.env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    worker = Worker(tmp_path / "w", config_dir=PROJECT / "configs", roots=incident["root"], concurrency=1, **settings)
    worker.env["PROMETHEUS_MULTIPROC_DIR"] = str(shared)
    try:
        gateway.start()
        worker.start()
        task_id = submit(gateway.url, "incident_triage", triage_inputs(incident))
        assert ended(gateway.url, task_id) == "completed"
        usage = usage_by(events(gateway.url, task_id))
        samples = scrape(gateway.url)
        assert value(samples, "crewgate_tasks_total", crew="incident_triage", status="completed") == 1
        assert value(samples, "crewgate_task_duration_seconds_count", crew="incident_triage", status="completed") == 1
        for (agent, model_name), counted in usage.items():
            labels = {"crew": "incident_triage", "agent": agent, "model": model_name, "kind": "prompt"}
            assert value(samples, "crewgate_llm_tokens_total", **labels) == counted["prompt"] > 0
        assert value(samples, "crewgate_http_requests_total", route="/v1/tasks", method="POST", status="202") == 1
        worker_files = {p.name for p in shared.iterdir()}
        assert any(str(pid) in name for pid in worker.pool_pids() for name in worker_files)
    finally:
        worker.stop()
        gateway.stop()


def test_a_worker_on_another_host_serves_its_own_metrics(
    tmp_path: Path, incident: dict, redis_url: str, redis_prefix: str, private_pg: str
) -> None:
    settings = celery_settings(redis_url, redis_prefix, private_pg)
    gateway = Gateway(tmp_path / "gw", config_dir=PROJECT / "configs", roots=incident["root"], **settings)
    port = free_port()
    worker = Worker(
        tmp_path / "w",
        config_dir=PROJECT / "configs",
        roots=incident["root"],
        concurrency=1,
        args=("--metrics-port", str(port), "--metrics-host", "127.0.0.1"),
        **settings,
    )
    worker.env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the worker makes a directory of its own
    try:
        gateway.start()
        worker.start()
        task_id = submit(gateway.url, "incident_triage", triage_inputs(incident))
        assert ended(gateway.url, task_id) == "completed"
        samples = parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)
        assert value(samples, "crewgate_tasks_total", crew="incident_triage", status="completed") == 1
        for step in TRIAGE_STEPS:
            assert value(samples, "crewgate_step_duration_seconds_count", crew="incident_triage", step=step) == 1
        assert total(samples, "crewgate_llm_tokens_total", crew="incident_triage") > 0
        # the gateway ran no crew: its own /metrics counts none
        assert value(scrape(gateway.url), "crewgate_tasks_total", crew="incident_triage", status="completed") == 0
    finally:
        worker.stop()
        gateway.stop()


# the store's side of the task gauges, on SQLite and PostgreSQL


async def test_active_counts_are_grouped_by_crew_and_status(store: Any) -> None:
    from gateway.store import EventInput, TaskStatus

    first, _ = await store.create_task("one", {}, "cfg-1")
    await store.create_task("one", {}, "cfg-1")
    running, _ = await store.create_task("two", {}, "cfg-1")
    ended_task, _ = await store.create_task("two", {}, "cfg-1")
    assert await store.claim_task(running.id) is not None
    assert await store.claim_task(ended_task.id) is not None
    done = EventInput("task.completed", data={})
    assert await store.finish_task(ended_task.id, TaskStatus.completed, done, attempt=1) is not None
    assert await store.request_cancel(first.id, "not needed") is not None
    assert await store.active_counts() == {("one", "queued"): 1, ("two", "running"): 1}
