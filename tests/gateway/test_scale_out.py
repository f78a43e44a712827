"""Scale-out, end to end, with real processes only.

The topology: ``crewgate serve`` gateways with ``CREWGATE_DISPATCHER=celery`` (they accept,
store and stream tasks and run no crews) and ``crewgate worker`` processes (Celery prefork
workers, one crew per pool process), all on one PostgreSQL database (private to each test)
and one Redis (the Celery broker, and the wake-ups when they are on Redis), with a key
prefix per test so that parallel runs share nothing. Crews call a scripted
OpenAI-compatible model server on loopback (``slow``: 6 steps, one slow call each) or the
offline model (``incident_triage``). Tests kill and stop workers, gateways and Redis as a
container runtime would (SIGKILL of the process group, SIGTERM) and check, from the store and
from live WebSocket watchers, that no accepted task is lost and no event is missing,
duplicated or changed. Leases are short (``lease_s=2``) so a dead worker's task is taken
over within seconds. No assertion depends on wall-clock time. The last test drives the
Celery dispatcher in-process against the real broker (how many messages recovery sends).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.llm_server import ScriptedModel, ScriptedServer, text
from tests.support.redis import RedisServer, redis_url, require_redis_server
from tests.support.scaleout import Worker, alive, private_pg, redis_prefix

__all__ = ["private_pg", "redis_prefix", "redis_url"]  # fixtures, imported to be found

SLOW_STEPS = 6
TERMINAL = {"task.completed", "task.failed", "task.cancelled"}
ENDED = {"completed", "failed", "cancelled"}


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(ScriptedModel(default=text("A paragraph."), delay_s=0.4)) as server:
        yield server


@dataclass
class Cluster:
    """Gateways and workers sharing one database and one broker; all stopped at the end."""

    tmp: Path
    configs: Path
    roots: Path
    settings: dict[str, Any]
    gateways: list[Gateway] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)

    def gateway(self, name: str) -> Gateway:
        gw = Gateway(self.tmp / name, config_dir=self.configs, roots=self.roots, **self.settings)
        self.gateways.append(gw)
        return gw.start()

    def start_workers(self, *names: str, concurrency: int = 1) -> list[Worker]:
        """Start them at once (each pool process imports CrewAI), then wait for all."""
        started = [
            Worker(self.tmp / name, config_dir=self.configs, roots=self.roots, concurrency=concurrency, **self.settings)
            for name in names
        ]
        self.workers.extend(started)
        for worker in started:
            worker.launch()
        return [worker.wait_ready() for worker in started]

    def close(self) -> None:
        for gw in self.gateways:
            gw.stop()
        for worker in self.workers:
            worker.ensure_dead()


@pytest.fixture
def make_cluster(
    tmp_path: Path, incident: dict, scripted: ScriptedServer, redis_url: str, redis_prefix: str, private_pg: str
) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(broker, wakeups)``: a cluster on the shared Redis, or on others."""
    configs = write_configs(tmp_path / "configs", scripted_base_url=scripted.base_url)
    made: list[Cluster] = []

    def make(broker: str = redis_url, wakeups: str | None = None) -> Cluster:
        settings: dict[str, Any] = {
            "dispatcher": "celery",
            "broker_url": broker,
            "redis_url": wakeups or broker,
            "redis_prefix": redis_prefix,
            "database_url": private_pg,
            "lease_s": 2,
            "poll_interval_s": 0.5,
            "redispatch_s": 5,
        }
        cluster = Cluster(tmp_path, configs, incident["root"], settings)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.close()


# reading the API


def submit(gw: Gateway, crew: str = "slow", **inputs: Any) -> str:
    with gw.client() as c:
        response = c.post("/v1/tasks", json={"crew": crew, "inputs": inputs or {"topic": "scale"}})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def task(gw: Gateway, task_id: str) -> dict[str, Any]:
    with gw.client() as c:
        record: dict[str, Any] = c.get(f"/v1/tasks/{task_id}").json()
    return record


def stored(gw: Gateway, task_id: str) -> list[dict[str, Any]]:
    with gw.client() as c:
        page: list[dict[str, Any]] = c.get(f"/v1/tasks/{task_id}/events", params={"limit": 1000}).json()["data"]
    return page


def ended(gw: Gateway, task_id: str, timeout: float = 180) -> dict[str, Any]:
    record: dict[str, Any] = wait_for(
        lambda: (t := task(gw, task_id))["status"] in ENDED and t, timeout=timeout, interval=0.2
    )
    return record


def steps_started(gw: Gateway, task_id: str) -> int:
    return sum(e["type"] == "step.started" for e in stored(gw, task_id))


def assert_contiguous(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] in TERMINAL
    assert not any(e["type"] in TERMINAL for e in events[:-1])


def claims(worker: Worker, task_id: str) -> list[int]:
    """The attempts of ``task_id`` this worker claimed, from its log."""
    return [
        int(e["attempt"])
        for e in worker.log_entries()
        if e.get("event") == "task claimed" and e.get("task_id") == task_id
    ]


def running_on(workers: list[Worker], task_id: str) -> Worker:
    found: Worker = wait_for(lambda: next((w for w in workers if claims(w, task_id)), None), timeout=60)
    return found


def ready_status(gw: Gateway) -> int:
    with gw.client() as c:
        return c.get("/readyz").status_code


def ready_body(gw: Gateway) -> dict[str, Any]:
    with gw.client() as c:
        body: dict[str, Any] = c.get("/readyz").json()
    return body


def execution_lines(gw: Gateway) -> list[str]:
    return [line for line in gw.logs().splitlines() if '"crewgate.execution' in line]


# watching over WebSocket


class Watcher(threading.Thread):
    """Follows one task's events over WebSocket from ``after`` until the socket closes."""

    def __init__(self, gw: Gateway, task_id: str, after: int = 0) -> None:
        super().__init__(daemon=True)
        self.url = f"{gw.ws_url}/v1/tasks/{task_id}/events?after={after}"
        self.frames: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.close_code: int | None = None

    def run(self) -> None:
        from websockets.sync.client import connect

        try:
            with connect(self.url, open_timeout=15, close_timeout=5) as ws:
                for message in ws:
                    self.frames.append(json.loads(message))
                self.close_code = ws.close_code
        except BaseException as exc:  # kept for the test to report
            self.error = exc

    def result(self, timeout: float = 180) -> list[dict[str, Any]]:
        self.join(timeout)
        assert not self.is_alive(), f"watcher of {self.url} still open"
        assert self.error is None, f"watcher of {self.url}: {self.error!r}"
        return self.frames


def watch(gw: Gateway, task_id: str, after: int = 0) -> Watcher:
    watcher = Watcher(gw, task_id, after)
    watcher.start()
    return watcher


# the tests


def test_kill_9_of_a_worker_mid_task_the_other_worker_runs_it_again(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    gw = cluster.gateway("gw")
    workers = cluster.start_workers("w1", "w2")
    task_id = submit(gw)
    victim = running_on(workers, task_id)
    survivor = next(w for w in workers if w is not victim)
    wait_for(lambda: steps_started(gw, task_id) >= 1, timeout=60)
    pids = victim.kill()
    assert len(pids) == 2 and not [pid for pid in pids if alive(pid)]  # main and pool process, as in a container kill
    before = stored(gw, task_id)
    assert before[-1]["type"] not in TERMINAL  # killed mid-task

    done = ended(gw, task_id)
    assert done["status"] == "completed", done
    after = stored(gw, task_id)
    assert_contiguous(after)
    assert after[: len(before)] == before  # the first attempt's events, kept as they were
    restarted = [e for e in after if e["type"] == "task.restarted"]
    assert [e["data"]["attempt"] for e in restarted] == [2]
    assert sum(e["type"] == "step.started" for e in after[after.index(restarted[0]) :]) == SLOW_STEPS
    assert after[-1]["type"] == "task.completed"
    assert claims(survivor, task_id) == [2]
    assert execution_lines(gw) == []  # the gateway ran nothing


def test_kill_9_of_a_gateway_the_watcher_resumes_on_the_other_one(make_cluster: Callable[..., Cluster]) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    cluster = make_cluster()
    front, other = cluster.gateway("gw-a"), cluster.gateway("gw-b")
    cluster.start_workers("w1")
    task_id = submit(front)
    first: list[dict[str, Any]] = []
    with connect(f"{front.ws_url}/v1/tasks/{task_id}/events", open_timeout=15) as ws:
        try:
            while True:
                first.append(json.loads(ws.recv(timeout=60)))
                if sum(e["type"] == "step.started" for e in first) == 2:
                    front.kill()
        except (ConnectionClosed, OSError):
            pass
    assert first and first[-1]["type"] not in TERMINAL, "the gateway died after the task ended"

    rest = watch(other, task_id, after=first[-1]["seq"])  # reconnected to the other gateway
    union = first + rest.result()
    assert_contiguous(union)  # no gap, no duplicate, ends with the terminal event
    assert union[-1]["type"] == "task.completed"
    assert union == stored(other, task_id)
    assert rest.close_code == 1000


def test_cancel_through_one_gateway_stops_the_crew_on_its_worker(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    gw_a, gw_b = cluster.gateway("gw-a"), cluster.gateway("gw-b")
    workers = cluster.start_workers("w1", "w2")
    task_id = submit(gw_a)
    watcher = watch(gw_b, task_id)
    wait_for(lambda: steps_started(gw_b, task_id) >= 1, timeout=60)
    asked = time.monotonic()
    with gw_a.client() as c:
        assert c.post(f"/v1/tasks/{task_id}/cancel").status_code == 200
    done = ended(gw_b, task_id)
    print(f"cancel -> terminal: {time.monotonic() - asked:.2f} s")

    assert done["status"] == "cancelled", done
    log = stored(gw_b, task_id)
    assert_contiguous(log)
    assert log[-1]["type"] == "task.cancelled"
    assert sum(e["type"] == "step.started" for e in log) < SLOW_STEPS  # stopped, not run to its end
    runner = running_on(workers, task_id)
    assert any(e.get("event") == "task cancelled" and e.get("task_id") == task_id for e in runner.log_entries()), (
        "the worker running it did not stop it"
    )
    assert watcher.result() == log


def test_sigterm_of_a_worker_mid_task_loses_nothing(make_cluster: Callable[..., Cluster]) -> None:
    cluster = make_cluster()
    gw = cluster.gateway("gw")
    workers = cluster.start_workers("w1", "w2")
    task_id = submit(gw)
    watcher = watch(gw, task_id)
    stopping = running_on(workers, task_id)
    wait_for(lambda: steps_started(gw, task_id) >= 1, timeout=60)
    assert stored(gw, task_id)[-1]["type"] not in TERMINAL  # the SIGTERM comes mid-task
    pool = stopping.pool_pids()
    code = stopping.stop(timeout=90)  # Celery's warm shutdown
    assert code is not None, "the worker did not exit on SIGTERM"
    assert pool and not [pid for pid in pool if alive(pid)]  # its pool processes ended with it

    done = ended(gw, task_id)
    assert done["status"] == "completed", done
    log = stored(gw, task_id)
    assert_contiguous(log)
    restarts = [e["data"]["attempt"] for e in log if e["type"] == "task.restarted"]
    other = next(w for w in workers if w is not stopping)
    print(f"SIGTERM: worker exit code {code}; restarts {restarts}; other worker's claims {claims(other, task_id)}")
    assert restarts in ([], [2])  # finished by the warm shutdown, or handed back and run again
    if restarts:
        assert claims(other, task_id) == [2]
    assert watcher.result() == log


def test_a_redis_outage_loses_no_task_and_no_event(make_cluster: Callable[..., Cluster], tmp_path: Path) -> None:
    redis = private_redis(tmp_path / "redis")
    try:
        cluster = make_cluster(redis.url)
        gw_a, gw_b = cluster.gateway("gw-a"), cluster.gateway("gw-b")
        cluster.start_workers("w1", "w2")
        ids = [submit(gw_a if i % 2 else gw_b, topic=f"before {i}") for i in range(3)]
        watchers = [watch(gw_a, task_id) for task_id in ids]
        wait_for(lambda: any(steps_started(gw_a, t) >= 1 for t in ids), timeout=60)

        redis.kill()
        during = [submit(gw_b, topic=f"during {i}") for i in range(2)]  # stored: 202, sent later
        watchers += [watch(gw_a, task_id) for task_id in during]
        time.sleep(4)  # the outage
        redis.start()
        after = [submit(gw_a, topic="after")]
        watchers += [watch(gw_b, task_id) for task_id in after]

        for task_id, watcher in zip(ids + during + after, watchers, strict=True):
            done = ended(gw_a, task_id, timeout=240)
            assert done["status"] == "completed", done
            log = stored(gw_a, task_id)
            assert_contiguous(log)
            assert watcher.result() == log
        with gw_b.client() as c:
            failures = c.get("/readyz").json()["dispatcher"]["send_failures"]
        print(f"redis outage: gateway b send failures {failures}")
    finally:
        redis.kill()


# the heaviest tests of the suite: about 80 s alone, several times that beside the other worker's
# servers and browser on 2 cores; the limit is a hang guard, not a speed check
@pytest.mark.timeout(900)
def test_twenty_triage_tasks_on_two_gateways_and_two_workers_one_killed(
    make_cluster: Callable[..., Cluster], incident: dict
) -> None:
    cluster = make_cluster()
    gateways = [cluster.gateway("gw-a"), cluster.gateway("gw-b")]
    workers = cluster.start_workers("w1", "w2", concurrency=2)
    d = incident["dir"]
    inputs = {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo")}
    ids: list[str] = []
    watchers: list[Watcher] = []
    for i in range(20):
        ids.append(submit(gateways[i % 2], "incident_triage", **inputs))
        watchers.append(watch(gateways[(i + 1) % 2], ids[-1]))  # watched through the other gateway

    victim = workers[0]

    def victim_running() -> list[str]:
        return [t for t in ids if claims(victim, t) and task(gateways[0], t)["status"] == "running"]

    wait_for(victim_running, timeout=120, interval=0.02)
    victim.kill()
    unfinished = [t for t in ids if claims(victim, t) and stored(gateways[0], t)[-1]["type"] not in TERMINAL]
    statuses = [task(gateways[0], t)["status"] for t in ids]
    print(
        f"killed w1 with {len(unfinished)} of its tasks unfinished; at the kill: {statuses.count('running')} "
        f"running, {statuses.count('queued')} queued, {sum(s in ENDED for s in statuses)} ended"
    )
    victim.start()

    for i, (task_id, watcher) in enumerate(zip(ids, watchers, strict=True)):
        done = ended(gateways[i % 2], task_id, timeout=240)
        assert done["status"] == "completed", done
        log = stored(gateways[i % 2], task_id)
        assert_contiguous(log)
        assert watcher.result() == log  # live frames, from submit to terminal: the stored log
        if task_id in unfinished:
            assert [e["data"]["attempt"] for e in log if e["type"] == "task.restarted"] == [2]
    assert unfinished, "the kill found no task of the killed worker running"
    for gw in gateways:
        assert execution_lines(gw) == []  # gateways with the Celery dispatcher run no crews


def test_readyz_reports_the_broker_and_a_gateway_runs_no_crews(
    make_cluster: Callable[..., Cluster], tmp_path: Path, redis_prefix: str
) -> None:
    broker, wakeups = private_redis(tmp_path / "broker"), private_redis(tmp_path / "wakeups")
    try:
        gw = make_cluster(broker.url, wakeups.url).gateway("gw")  # no worker anywhere
        body = wait_for(lambda: (b := ready_body(gw)) and b.get("wakeups", {}).get("connected") and b, timeout=30)
        assert body["status"] == "ready"
        assert body["dispatcher"]["kind"] == "celery" and body["wakeups"]["kind"] == "redis"

        task_id = submit(gw)
        queue = f"{redis_prefix}:{redis_prefix}.tasks"  # kombu's global_keyprefix, then the queue
        wait_for(lambda: _queue_length(broker.url, queue) >= 1, timeout=30)
        assert task(gw, task_id)["status"] == "queued"  # sent to the broker, not run here
        assert execution_lines(gw) == []

        wakeups.kill()  # streams stay correct on the poll: still ready, and it says so
        body = wait_for(lambda: (b := ready_body(gw)) and b.get("wakeups", {}).get("connected") is False and b)
        assert body["status"] == "ready"

        broker.kill()
        with gw.client() as c:
            down = c.get("/readyz")
        assert down.status_code == 503
        error = down.json()["error"]
        assert error["code"] == "not_ready" and "broker" in error["message"]
        assert error["details"]["reason"] == "broker_unavailable"
        accepted = submit(gw)  # the store takes it; it is sent once the broker is back
        assert task(gw, accepted)["status"] == "queued"

        broker.start()
        wait_for(lambda: ready_status(gw) == 200, timeout=60, interval=0.5)
        wait_for(lambda: _queue_length(broker.url, queue) >= 2, timeout=60)  # both sent (again)
        assert execution_lines(gw) == []
    finally:
        broker.kill()
        wakeups.kill()


def private_redis(workdir: Path) -> RedisServer:
    """A started memory-only redis-server of this test's own (kill, then start on the same port)."""
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(require_redis_server(), workdir)
    server.start()
    return server


def _queue_length(url: str, key: str) -> int:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return int(client.llen(key))
    except redis.RedisError:
        return 0
    finally:
        client.close()


async def test_a_restart_is_sent_once_per_redispatch_s_however_often_recovery_offers_it(
    tmp_path: Path, incident: dict, redis_url: str, redis_prefix: str
) -> None:
    """Recovery offers a lapsed task on every sweep until a worker claims the restart, which
    waits in the queue behind the backlog: the dispatcher sends each restart once per
    ``redispatch_s`` (first attempts are guarded by ``dispatched_at`` in the store)."""
    from gateway.configs import ConfigManager
    from gateway.dispatch.celery import CeleryDispatcher
    from gateway.eventlog import EventLog
    from gateway.store import open_store
    from tests.support.inprocess import inprocess_settings

    settings = inprocess_settings(
        tmp_path,
        config_dir=write_configs(tmp_path / "configs"),
        roots=incident["root"],
        broker_url=redis_url,
        redis_prefix=redis_prefix,
        redispatch_s=600,
    )
    store = open_store(settings.database_url)
    await store.migrate()
    dispatcher = CeleryDispatcher(settings, ConfigManager.from_settings(settings, store), EventLog(store))
    try:
        task_id = "0b5c1f6e-4f3a-4d2e-9a7b-1c2d3e4f5a6b"
        offer = dispatcher.recovery.offer  # what recovery calls on each sweep
        for _ in range(5):
            await offer(task_id, 2)  # five sweeps offer the same restart
        await offer(task_id, 3)
        queue = f"{redis_prefix}:{redis_prefix}.tasks"
        assert _queue_length(redis_url, queue) == 2
        assert dispatcher.status()["sent"] == 2
    finally:
        await dispatcher.stop()
        await store.close()
