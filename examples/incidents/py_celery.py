"""Python: a Celery worker; same-day plan upgrades divide by a zero-day period.

Logs: Celery's own worker log format (``[ts: LEVEL/Process] msg``) with tracebacks,
rotated with a .gz. Red herring: broker reconnect errors all day. Decoy: a harmless
commit to the same file (another function) between the culprit and the deploy.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    DANA,
    EMIL,
    Clock,
    H,
    History,
    Logs,
    M,
    S,
    add_noise,
    arrivals,
    build_repo,
    expected_base,
    finish,
    py_frame,
    py_traceback,
    repo_py_frame,
    uuid4,
    write_runbooks,
)

CASE = "py_celery"
SERVICE = "billing"
DAY = "2026-11-22"
PREFIX = "/srv/billing/app/"
SITE = "/srv/billing/.venv/lib/python3.11/site-packages/"

TASKS = '''\
"""Celery tasks of the billing worker."""

from __future__ import annotations

import logging

from billing.celery import app
from billing.plans import load_subscription
from billing.proration import prorate

log = logging.getLogger(__name__)


@app.task(bind=True, max_retries=3)
def generate_invoice(self, subscription_id: str, change_id: str) -> dict:
    sub = load_subscription(subscription_id)
    change = sub.changes[change_id]
    credit = prorate(sub.plan, change.period)
    log.info("invoice drafted subscription=%s credit=%s", subscription_id, credit)
    return {"subscription_id": subscription_id, "credit_cents": credit}
'''

PRORATION_V1 = '''\
"""Proration of plan changes within a billing period."""

from __future__ import annotations

from datetime import date


def days_left(period, today: date) -> int:
    """Days from ``today`` to the end of ``period`` (at least one)."""
    return max(1, (period.end - today).days)


def prorate(plan, period) -> int:
    """Credit in cents for the unused part of ``period``."""
    days_in_period = period.length_days
    daily = plan.price_cents / days_in_period
    return round(daily * days_left(period, date.today()))
'''

PLANS = '''\
"""Subscriptions and plans (read from the billing database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass
class Period:
    start: date
    end: date
    length_days: int


@dataclass
class Plan:
    code: str
    price_cents: int


def load_subscription(subscription_id: str):
    from billing.db import fetch_subscription

    return fetch_subscription(subscription_id)
'''

CELERY = """\
from celery import Celery

app = Celery("billing", broker="redis://redis.internal:6379/0")
app.conf.task_acks_late = True
"""

RUNBOOKS = {
    "billing-worker.md": """\
# Runbook: billing worker (Celery)

- `Task billing.tasks.generate_invoice[...] raised unexpected` with a traceback: a bug in
  the task; find the innermost `billing/` frame, check the last deploy.
- `consumer: Cannot connect to redis://...: Error 111` now and then is the nightly Redis
  failover drill and the sentinel flaps; the consumer reconnects by itself.
- Rollback: `deployctl rollback billing-worker --to <previous>`.
""",
}


def history() -> History:
    h = History()
    h.commit(
        DANA,
        "2026-10-20T09:00:00",
        "billing worker: invoices and proration",
        files={
            "README.md": "# billing\n\nCelery worker that drafts invoices.\n",
            "requirements.txt": "celery[redis]==5.4.0\npsycopg[binary]==3.2.3\n",
            "billing/__init__.py": "",
            "billing/celery.py": CELERY,
            "billing/tasks.py": TASKS,
            "billing/plans.py": PLANS,
            "billing/proration.py": PRORATION_V1,
        },
        tag="v1.4.0",
    )
    h.commit(
        EMIL,
        "2026-11-19T11:25:00",
        "proration: compute the period length from its dates (#311)",
        body="length_days is stale for periods moved by the migration; derive it.",
        role="culprit",
        edits=[
            (
                "billing/proration.py",
                "days_in_period = period.length_days",
                "days_in_period = (period.end - period.start).days",
            )
        ],  # fmt: skip
    )
    h.commit(
        ALICE,
        "2026-11-20T14:02:00",
        "proration: document days_left (#314)",
        role="decoy",
        edits=[("billing/proration.py", '"""Days from ``today`` to the end of ``period`` (at least one)."""',
                '"""Days from ``today`` to the end of ``period``; never zero, so a credit is never lost."""')],
    )  # fmt: skip
    h.commit(
        DANA,
        "2026-11-22T07:45:00",
        "Release 1.5.0",
        role="deployed",
        tag="v1.5.0",
        edits=[("README.md", "drafts invoices.\n", "drafts invoices. Release 1.5.0.\n")],
    )
    return h


def _trace(tree: dict[str, str]) -> tuple[str, int]:
    celery = [
        py_frame(SITE + "celery/app/trace.py", 453, "trace_task", "R = retval = fun(*args, **kwargs)",
                 "fun(*args, **kwargs)"),
        py_frame(SITE + "celery/app/trace.py", 736, "__protected_call__", "return self.run(*args, **kwargs)",
                 "self.run(*args, **kwargs)"),
    ]  # fmt: skip
    task, _ = repo_py_frame(
        tree,
        PREFIX,
        "billing/tasks.py",
        "generate_invoice",
        "credit = prorate(sub.plan, change.period)",
        "prorate(sub.plan, change.period)",
    )
    code = "daily = plan.price_cents / days_in_period"
    culprit, line = repo_py_frame(tree, PREFIX, "billing/proration.py", "prorate", code,
                                  "plan.price_cents / days_in_period", tilde=16)  # fmt: skip
    return py_traceback([*celery, task, culprit], "ZeroDivisionError: division by zero"), line


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    trace, line = _trace(h.tree_of("deployed"))
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "billing-worker.log"
    start, end, deploy = 6 * H, 12 * H, 8 * H + 31 * M + 9 * S + 512
    worker = ["ForkPoolWorker-1", "ForkPoolWorker-2", "ForkPoolWorker-3", "ForkPoolWorker-4"]

    def line_(ms: int, level: str, proc: str, msg: str) -> str:
        return f"[{clock.py(ms)}: {level}/{proc}] {msg}"

    def task_ok(r: random.Random, ms: int) -> tuple[str, str]:
        task = r.choice(["billing.tasks.generate_invoice", "billing.tasks.sync_usage", "billing.tasks.send_receipt"])
        tid = uuid4(r)
        if r.random() < 0.5:
            return name, line_(ms, "INFO", "MainProcess", f"Task {task}[{tid}] received")
        return name, line_(ms, "INFO", r.choice(worker),
                           f"Task {task}[{tid}] succeeded in {r.random() * 2:.6f}s: None")  # fmt: skip

    def beat(r: random.Random, ms: int) -> tuple[str, str]:
        return name, line_(
            ms,
            "WARNING",
            r.choice(worker),
            f"usage sync lag={r.randrange(2, 90)}s account=acct_{r.getrandbits(32):08x}",
        )

    add_noise(logs, rnd, start, end, 100, [(12, task_ok), (1, beat)])
    for ms in arrivals(rnd, start, end, 1 / 9):
        logs.add(
            name,
            ms,
            line_(
                ms,
                "ERROR",
                "MainProcess",
                "consumer: Cannot connect to redis://redis.internal:6379/0: Error 111 connecting to "
                "redis.internal:6379. Connection refused..\nTrying again in 2.00 seconds... (1/100)\n",
            ),
        )
    logs.add(name, deploy - 3100, line_(deploy - 3100, "WARNING", "MainProcess", "Warm shutdown (MainProcess)"))
    logs.add(
        name, deploy - 900, line_(deploy - 900, "INFO", "MainProcess", "Connected to redis://redis.internal:6379/0")
    )
    logs.add(name, deploy - 400, line_(deploy - 400, "INFO", "MainProcess", "celery@billing-worker-1 ready."))
    deployed_sha = repo.sha("deployed")
    logs.add(
        name, deploy, line_(deploy, "INFO", "MainProcess", f"Deployed billing-worker 1.5.0 (commit {deployed_sha[:7]})")
    )
    onset = None
    for ms in arrivals(rnd, deploy + 40 * S, end, 1.6):
        onset = onset or ms
        tid = uuid4(rnd)
        msg = (f"Task billing.tasks.generate_invoice[{tid}] raised unexpected: "
               f"ZeroDivisionError('division by zero')\n{trace}")  # fmt: skip
        logs.add(name, ms, line_(ms, "ERROR", rnd.choice(worker), msg))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [7 * H, 10 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="Same-day plan changes have a zero-day period; proration now divides by it.",
        repo=repo,
        culprit_role="culprit",
        file="billing/proration.py",
        line=line,
        signature=r"ZeroDivisionError",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "1.5.0"},
        decoy_roles=["decoy"],
        stack="python/celery",
        formats=["celery worker log", "python traceback"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
