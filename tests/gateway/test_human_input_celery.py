"""Human in the loop with the Celery dispatcher: a waiting task holds no worker, survives a
kill -9 of the worker that ran it, and the answer given through another gateway resumes it
on another worker, with every finished step started once.

Real parts: two gateways and workers on one PostgreSQL database and Redis (broker and
wake-ups); skipped without Redis or PostgreSQL, failed under CI.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.gateway.test_human_input import STEPS, answer, assert_contiguous, ended, events, started_per_step, submit
from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.redis import redis_url
from tests.support.scaleout import Worker, private_pg, redis_prefix

__all__ = ["private_pg", "redis_prefix", "redis_url"]  # fixtures, imported to be found


def test_a_review_survives_its_worker_and_resumes_on_another(
    tmp_path: Path, incident: dict, redis_url: str, redis_prefix: str, private_pg: str
) -> None:
    configs = write_configs(tmp_path / "configs")
    settings = {
        "dispatcher": "celery",
        "broker_url": redis_url,
        "redis_url": redis_url,
        "redis_prefix": redis_prefix,
        "database_url": private_pg,
        "lease_s": 2,
        "poll_interval_s": 0.5,
        "redispatch_s": 5,
    }
    front = Gateway(tmp_path / "front", config_dir=configs, roots=incident["root"], **settings).start()
    back = Gateway(tmp_path / "back", config_dir=configs, roots=incident["root"], **settings).start()
    first = Worker(tmp_path / "w1", config_dir=configs, roots=incident["root"], concurrency=1, **settings)
    second = Worker(tmp_path / "w2", config_dir=configs, roots=incident["root"], concurrency=1, **settings)
    try:
        first.start()
        task_id = submit(front, incident)
        with back.client() as c:
            request = wait_for(lambda: (c.get(f"/v1/tasks/{task_id}/input").json()["data"] or [None])[0], 120)
        before = events(back, task_id)
        assert before[-1]["type"] == "input.required"
        first.kill()  # the worker that ran it dies while the task waits: nothing of the task is on it

        second.start()
        with front.client() as c:
            assert c.get(f"/v1/tasks/{task_id}").json()["status"] == "waiting"
        assert answer(back, task_id, request["request_id"], approve=True).status_code == 200
        done = ended(front, task_id, timeout=120)
        assert done["status"] == "completed", done

        log = events(front, task_id)
        assert log[: len(before)] == before
        assert_contiguous(log)
        assert started_per_step(log) == Counter({step: 1 for step in STEPS})
        assert not any(e["type"] == "task.restarted" for e in log)
        ran = {e.get("task_id") for e in second.log_entries() if e.get("event") == "task completed"}
        assert task_id in ran  # the second worker finished it
    finally:
        front.stop()
        back.stop()
        first.ensure_dead()
        second.ensure_dead()
