"""Mixed formats in one directory: JSON lines, logfmt, plain text and Kubernetes CRI.

The incident is in the worker's container log as the kubelet writes it (CRI format:
``<RFC3339Nano> <stream> <P|F> <line>``, one prefix per line, so a Python traceback
is a run of prefixed lines; long lines are split into ``P`` parts). Also in the
directory: the API's JSON lines, an envoy-style sidecar in logfmt, and an nginx error
log in plain text, whose upstream timeouts are the red herring (all day). Decoy: a
later commit to the same file.
"""

from __future__ import annotations

import json
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
    py_frame,
    py_traceback,
    repo_py_frame,
    write_runbooks,
)

CASE = "mixed_k8s"
SERVICE = "notifications"
DAY = "2026-11-29"
PREFIX = "/app/"
SITE = "/usr/local/lib/python3.11/site-packages/"
POD = "pods/messaging_notifications-worker-7c9d8b6f5-qx2lm_0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/worker/0.log"

RENDER_V1 = '''\
"""Rendering of notification emails."""

from __future__ import annotations


def subject(kind: str, order: dict) -> str:
    if kind == "shipped":
        return f"Your order {order.get('number', '')} has shipped"
    return "Your order update"


def body(kind: str, order: dict, customer: dict) -> str:
    name = customer.get("first_name") or "there"
    return f"Hi {name},\\n\\n{subject(kind, order)}."
'''

TASKS = '''\
"""Consumer of the notifications queue."""

from __future__ import annotations

import logging

from notifications import render, sender

log = logging.getLogger(__name__)


def handle(message: dict) -> None:
    kind, order, customer = message["kind"], message["order"], message["customer"]
    text = render.body(kind, order, customer)
    sender.send(customer["email"], render.subject(kind, order), text)
'''

RUNBOOKS = {
    "notifications.md": """\
# Runbook: notifications

- The worker runs in Kubernetes; its log is the kubelet's CRI file under
  `pods/<namespace>_<pod>_<uid>/worker/0.log` (every line prefixed with time, stream, P/F).
- nginx `upstream timed out (110: Connection timed out)` against the template CDN
  happens all day and is retried. Harmless.
""",
}


def history() -> History:
    h = History()
    h.commit(
        BEN,
        "2026-10-21T10:00:00",
        "notifications: worker and email rendering",
        files={
            "README.md": "# notifications\n\nEmail notifications worker.\n",
            "requirements.txt": "kombu==5.4.2\n",
            "notifications/__init__.py": "",
            "notifications/render.py": RENDER_V1,
            "notifications/tasks.py": TASKS,
            "notifications/sender.py": "def send(to, subject, text):\n    pass\n",
        },
        tag="v0.9.0",
    )
    h.commit(
        CHEN,
        "2026-11-28T18:00:00",
        "render: order number in the shipped subject line (#58)",
        role="culprit",
        edits=[
            (
                "notifications/render.py",
                "return f\"Your order {order.get('number', '')} has shipped\"",
                'return "Your order " + order.get("number") + " has shipped"',
            )
        ],  # fmt: skip
    )
    h.commit(
        ALICE,
        "2026-11-29T07:30:00",
        "Release 0.10.0",
        role="deployed",
        tag="v0.10.0",
        edits=[("README.md", "worker.\n", "worker. Release 0.10.0.\n")],
    )
    h.commit(
        CHEN,
        "2026-11-29T13:20:00",
        "render: friendlier default greeting (#60)",
        role="decoy",
        edits=[("notifications/render.py", 'or "there"', 'or "friend"')],
    )
    return h


def _trace(tree: dict[str, str]) -> tuple[str, int]:
    kombu = py_frame(SITE + "kombu/messaging.py", 656, "_receive_callback", "return on_m(message) if on_m else self.receive(decoded, message)", "")  # fmt: skip  # noqa: E501
    task, _ = repo_py_frame(
        tree,
        PREFIX,
        "notifications/tasks.py",
        "handle",
        "text = render.body(kind, order, customer)",
        "render.body(kind, order, customer)",
    )
    body, _ = repo_py_frame(tree, PREFIX, "notifications/render.py", "body", 'return f"Hi {name}', "")
    subj, line = repo_py_frame(
        tree,
        PREFIX,
        "notifications/render.py",
        "subject",
        'return "Your order " + order.get("number")',
        '"Your order " + order.get("number")',
        tilde=13,
    )
    exc = 'TypeError: can only concatenate str (not "NoneType") to str'
    return py_traceback([kombu, task, body, subj], exc), line


def cri_wrap(clock: Clock, rnd: random.Random, ms: int, stream: str, text: str) -> str:
    """Lines as the kubelet writes them (CRI): time, stream, P(artial)/F(ull), text."""
    out_lines = []
    nanos = rnd.randrange(200_000)  # within the millisecond, then increasing line by line

    def stamp() -> str:
        return f"{clock.iso(ms + nanos // 1_000_000)[:-1]}{nanos % 1_000_000:06d}Z"

    for raw in text.split("\n"):
        while len(raw) > 160:  # the kubelet splits long lines into partial (P) records
            out_lines.append(f"{stamp()} {stream} P {raw[:160]}")
            raw = raw[160:]
            nanos += rnd.randrange(3_000, 40_000)
        out_lines.append(f"{stamp()} {stream} F {raw}")
        nanos += rnd.randrange(3_000, 40_000)
    return "\n".join(out_lines)


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    trace, line = _trace(tree)
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    api, side, nginx = "notifications-api.jsonl", "envoy-sidecar.log", "nginx-error.log"
    start, end, deploy = 9 * H, 15 * H, 11 * H + 40 * M + 3 * S + 404

    def cri(ms: int, stream: str, text: str) -> str:
        return cri_wrap(clock, rnd, ms, stream, text)

    def api_line(r: random.Random, ms: int) -> tuple[str, str]:
        obj = {"ts": clock.iso(ms), "level": "info", "logger": "notifications.api",
               "msg": "notification accepted", "id": f"ntf_{r.getrandbits(48):012x}"}  # fmt: skip
        return api, json.dumps(obj)

    def side_line(r: random.Random, ms: int) -> tuple[str, str]:
        return side, (
            f'time="{clock.iso(ms)}" level={r.choice(["info", "info", "debug"])} msg="upstream request" '
            f"upstream=notifications-api status={r.choice([200, 200, 202, 404])} duration_ms={r.randrange(1, 80)}"
        )

    def worker_line(r: random.Random, ms: int) -> tuple[str, str]:
        msg = f"{clock.py(ms)} INFO [notifications.tasks] sent kind={r.choice(['shipped', 'delivered'])} to=<redacted>"
        return POD, cri(ms, "stdout", msg)

    def nginx_ok(r: random.Random, ms: int) -> tuple[str, str]:
        stamp = clock.py(ms)[:19].replace("-", "/")
        return nginx, f"{stamp} [notice] 31#31: *{r.randrange(10**6)} client closed keepalive connection"

    add_noise(logs, rnd, start, end, 100, [(4, api_line), (3, side_line), (4, worker_line), (1, nginx_ok)])
    for ms in arrivals(rnd, start, end, 1 / 9):
        stamp = clock.py(ms)[:19].replace("-", "/")
        logs.add(
            nginx,
            ms,
            f"{stamp} [error] 31#31: *{rnd.randrange(10**6)} upstream timed out (110: Connection timed out) "
            "while reading response header from upstream, client: 10.0.4.7, server: templates, "
            'request: "GET /t/shipped.html HTTP/1.1", upstream: "http://10.0.9.3:80/t/shipped.html"',
        )
    deployed_sha = repo.sha("deployed")
    logs.add(
        POD,
        deploy,
        cri(
            deploy,
            "stdout",
            f"{clock.py(deploy)} INFO [notifications.main] worker 0.10.0 started (commit {deployed_sha[:7]})",
        ),
    )
    onset = None
    for ms in arrivals(rnd, deploy + 15 * S, end, 2.5):
        onset = onset or ms
        rec = f"{clock.py(ms)} ERROR [notifications.tasks] message handling failed, requeued\n{trace}"
        logs.add(POD, ms, cri(ms, "stderr", rec))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={nginx: [12 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="Orders without a number make the new subject concatenation fail; the trace is CRI-wrapped.",
        repo=repo,
        culprit_role="culprit",
        file="notifications/render.py",
        line=line,
        signature=r"TypeError: can only concatenate str \(not \"?NoneType\"?\) to str",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "0.10.0"},
        decoy_roles=["decoy"],
        stack="python/kubernetes",
        formats=["JSON lines", "logfmt", "nginx error log (plain text)", "Kubernetes CRI (P/F) wrapping a traceback"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
