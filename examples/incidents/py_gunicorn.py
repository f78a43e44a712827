"""Python: a Flask API under gunicorn; guest orders break a new notification call.

Logs: the gunicorn error log (app logging through gunicorn's handler, rotated with a
.gz), the gunicorn access log (combined format). Red herring: psycopg2 reconnects all
day. Decoy: a later commit to the same file (after the onset, not deployed).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    BEN,
    CHEN,
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
    ip,
    py_frame,
    py_traceback,
    repo_py_frame,
    uuid4,
    write_runbooks,
)

CASE = "py_gunicorn"
SERVICE = "orders"
DAY = "2026-11-21"
PREFIX = "/srv/orders/releases/3.8.0/"
SITE = "/srv/orders/venv/lib/python3.11/site-packages/"

VIEWS = '''\
"""HTTP views of the orders API."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from orders import notify
from orders.models import Order
from orders.store import save_order

log = logging.getLogger(__name__)
bp = Blueprint("orders", __name__)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.post("/v1/orders")
def create_order():
    payload = request.get_json(force=True)
    order = Order.from_payload(payload)
    save_order(order)
    log.info("order created order_id=%s items=%d", order.order_id, len(order.items))
    notify.order_confirmation(order)
    return jsonify(order_id=order.order_id), 201
'''

NOTIFY_V1 = '''\
"""Order notifications (email via the messaging service)."""

from __future__ import annotations

import logging

from orders import messaging

log = logging.getLogger(__name__)

TEMPLATE = "order-confirmation-v2"


def order_confirmation(order) -> None:
    """Queue the confirmation email for ``order``."""
    messaging.enqueue(TEMPLATE, to=order.customer.email, order_id=order.order_id)
    log.debug("confirmation queued order_id=%s", order.order_id)
'''

MODELS = '''\
"""Orders and customers."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Preferences:
    email_opt_in: bool = True
    locale: str = "en"


@dataclass
class Customer:
    customer_id: str
    email: str
    preferences: Preferences | None = None  # guests have none


@dataclass
class Order:
    order_id: str
    customer: Customer
    items: list[dict] = field(default_factory=list)

    @classmethod
    def from_payload(cls, payload: dict) -> "Order":
        raw = payload["customer"]
        prefs = raw.get("preferences")
        customer = Customer(raw["id"], raw["email"], Preferences(**prefs) if prefs else None)
        return cls(payload["order_id"], customer, list(payload["items"]))
'''

STORE = '''\
"""Persistence of orders in PostgreSQL."""

from __future__ import annotations

import logging
import os

import psycopg2

log = logging.getLogger(__name__)
DSN = os.environ.get("ORDERS_DSN", "postgresql://orders@db.internal/orders")


def _connect():
    return psycopg2.connect(DSN, connect_timeout=5)


def save_order(order) -> None:
    with _connect() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO orders (order_id, customer_id) VALUES (%s, %s)",
            (order.order_id, order.customer.customer_id),
        )
'''

MESSAGING = '''\
"""Client of the messaging service."""

from __future__ import annotations

import httpx

_http = httpx.Client(base_url="http://messaging.internal:8080", timeout=2.0)


def enqueue(template: str, **params) -> None:
    _http.post("/v1/messages", json={"template": template, "params": params}).raise_for_status()
'''

APP = '''\
"""Application factory: gunicorn 'orders.app:create_app()'."""

from flask import Flask

from orders.views import bp


def create_app() -> Flask:
    app = Flask("orders")
    app.register_blueprint(bp)
    return app
'''

REQS = "flask==3.0.3\ngunicorn==22.0.0\nhttpx==0.27.2\npsycopg2-binary==2.9.9\n"

RUNBOOKS = {
    "orders-api.md": """\
# Runbook: orders API

## Symptoms
- 5xx on `POST /v1/orders` in the access log; `Exception on /v1/orders [POST]` in the
  gunicorn error log with a traceback.

## Known background
- `psycopg2.OperationalError: server closed the connection unexpectedly` a few times an
  hour: the pgbouncer idle reaper. Harmless, the pool reconnects.

## Triage
1. Find the first 500 after a deploy (`Booting worker` / `Deployed orders` lines).
2. Map the innermost `orders/` frame to the repository at the deployed commit.
3. Roll back with `deployctl rollback orders --to <previous>` when a release is the cause.
""",
}


def history() -> History:
    h = History()
    h.commit(
        ALICE,
        "2026-10-30T10:12:00",
        "Initial orders service",
        files={
            "README.md": "# orders\n\nOrder intake API (Flask, gunicorn).\n",
            "requirements.txt": REQS,
            "orders/__init__.py": "",
            "orders/app.py": APP,
            "orders/views.py": VIEWS,
            "orders/models.py": MODELS,
            "orders/store.py": STORE,
            "orders/messaging.py": MESSAGING,
            "orders/notify.py": NOTIFY_V1,
        },
        tag="v3.7.0",
    )
    h.commit(
        BEN,
        "2026-11-12T15:40:00",
        "store: connect timeout of 3 s (#88)",
        edits=[("orders/store.py", "connect_timeout=5", "connect_timeout=3")],
    )
    h.commit(
        CHEN,
        "2026-11-20T16:05:00",
        "notify: respect the customer's email opt-in (#97)",
        body="Marketing asked that confirmation emails honour the opt-in flag too.",
        role="culprit",
        edits=[
            (
                "orders/notify.py",
                "    messaging.enqueue(",
                "    if not order.customer.preferences.email_opt_in:\n"
                '        log.info("confirmation skipped (opt-out) order_id=%s", order.order_id)\n'
                "        return\n"
                "    messaging.enqueue(",
            )
        ],
    )
    h.commit(
        ALICE,
        "2026-11-21T09:30:00",
        "Release 3.8.0",
        role="deployed",
        tag="v3.8.0",
        edits=[("README.md", "(Flask, gunicorn).\n", "(Flask, gunicorn).\n\nCurrent release: 3.8.0.\n")],
    )
    h.commit(
        BEN,
        "2026-11-21T12:20:00",
        "notify: use the v3 confirmation template (#99)",
        body="Not deployed yet.",
        role="decoy",
        edits=[("orders/notify.py", 'TEMPLATE = "order-confirmation-v2"', 'TEMPLATE = "order-confirmation-v3"')],
    )
    return h


def _trace(tree: dict[str, str]) -> tuple[str, int]:
    flask = [
        py_frame(SITE + "flask/app.py", 880, "full_dispatch_request", "rv = self.dispatch_request()",
                 "self.dispatch_request()"),
        py_frame(SITE + "flask/app.py", 865, "dispatch_request",
                 "return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)"
                 "  # type: ignore[no-any-return]",
                 "self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)"),
    ]  # fmt: skip
    view, _ = repo_py_frame(tree, PREFIX, "orders/views.py", "create_order", "notify.order_confirmation(order)",
                            "notify.order_confirmation(order)")  # fmt: skip
    code = "if not order.customer.preferences.email_opt_in:"
    culprit, line = repo_py_frame(tree, PREFIX, "orders/notify.py", "order_confirmation", code,
                                  "order.customer.preferences.email_opt_in")  # fmt: skip
    exc = "AttributeError: 'NoneType' object has no attribute 'email_opt_in'"
    return py_traceback([*flask, view, culprit], exc), line


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    trace, line = _trace(h.tree_of("deployed"))
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    err, acc = "orders-gunicorn.log", "orders-access.log"
    start, end, deploy = 8 * H, 14 * H, 11 * H + 4 * M + 31 * S + 207
    pids = [4121, 4122, 4123, 4124]

    def app_line(ms: int, level: str, logger: str, msg: str) -> str:
        return f"{clock.gunicorn(ms)} [{rnd.choice(pids)}] [{level}] {logger}: {msg}"

    def access(ms: int, status: int, path: str, method: str = "POST") -> str:
        return (f'{ip(rnd)} - - {clock.clf(ms)} "{method} {path} HTTP/1.1" {status} {rnd.randrange(40, 900)} "-" '
                f'"{rnd.choice(["okhttp/4.12.0", "Mozilla/5.0", "orders-web/2.3"])}"')  # fmt: skip

    def order_ok(r: random.Random, ms: int) -> tuple[str, str]:
        if r.random() < 0.5:
            return err, app_line(ms, "INFO", "orders.views", f"order created order_id=ord_{r.getrandbits(40):010x} "
                                 f"items={r.randrange(1, 6)}")  # fmt: skip
        return acc, access(ms, 201, "/v1/orders")

    def health(r: random.Random, ms: int) -> tuple[str, str]:
        return acc, access(ms, 200, "/healthz", "GET")

    def misc(r: random.Random, ms: int) -> tuple[str, str]:
        msg = r.choice([
            f"messaging latency p95={r.randrange(40, 300)}ms",
            f"pool stats in_use={r.randrange(1, 9)} idle={r.randrange(0, 5)}",
            f"request_id={uuid4(r)} slow response 1{r.randrange(100, 999)}ms",
        ])  # fmt: skip
        return err, app_line(ms, r.choice(["INFO", "INFO", "WARNING"]), "orders.metrics", msg)

    add_noise(logs, rnd, start, end, 110, [(5, order_ok), (3, health), (1, misc)])
    store_frame, _ = repo_py_frame(h.tree_of("deployed"), PREFIX, "orders/store.py", "save_order",
                                   "with _connect() as conn, conn.cursor() as cur:", "_connect()")  # fmt: skip
    for ms in arrivals(rnd, start, end, 1 / 14):
        exc = "psycopg2.OperationalError: server closed the connection unexpectedly"
        tb = py_traceback([store_frame], exc)
        logs.add(err, ms, app_line(ms, "ERROR", "orders.store", f"order write retried\n{tb}"))
    logs.add(err, deploy - 4000, f"{clock.gunicorn(deploy - 4000)} [4120] [INFO] Handling signal: hup")
    for i, pid in enumerate([5301, 5302, 5303, 5304]):
        logs.add(err, deploy - 2000 + i * 40, f"{clock.gunicorn(deploy - 2000 + i * 40)} [{pid}] [INFO] Booting worker with pid: {pid}")  # fmt: skip  # noqa: E501
    deployed_sha = repo.sha("deployed")
    logs.add(err, deploy, app_line(deploy, "INFO", "deploybot", f"Deployed orders version 3.8.0 (commit {deployed_sha[:7]})"))  # fmt: skip  # noqa: E501
    pids[:] = [5301, 5302, 5303, 5304]
    onset = None
    for ms in arrivals(rnd, deploy + 3 * S, end, 3):
        onset = onset or ms
        logs.add(err, ms, app_line(ms, "ERROR", "orders.app", f"Exception on /v1/orders [POST]\n{trace}"))
        logs.add(acc, ms + 2, access(ms + 2, 500, "/v1/orders"))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={err: [11 * H], acc: [11 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="Guest checkouts have no preferences; a new opt-in check dereferences None.",
        repo=repo,
        culprit_role="culprit",
        file="orders/notify.py",
        line=line,
        signature=r"AttributeError: 'NoneType' object has no attribute 'email_opt_in'",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "3.8.0"},
        decoy_roles=["decoy"],
        stack="python/flask/gunicorn",
        formats=["gunicorn error log", "access log (combined)", "python traceback"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
