"""Two services in one log directory: payments (this repo) and search-indexer (not).

payments-api starts failing after its deploy (ValueError parsing decimal amounts from
a partner); a little later search-indexer, another team's service logging into the
same directory in logfmt, starts a louder burst of its own new errors. The triage is
for ``payments``: the louder burst is not its incident. Red herring: payments' slow
ledger warnings logged at ERROR all day. Decoy: later commit to the same file.
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
    write_runbooks,
)

CASE = "two_services"
SERVICE = "payments"
DAY = "2026-11-28"
PREFIX = "/opt/payments/"
SITE = "/opt/payments/venv/lib/python3.11/site-packages/"

AMOUNTS_V1 = '''\
"""Amounts in partner callbacks."""

from __future__ import annotations

from decimal import Decimal


def to_minor_units(raw: dict) -> int:
    """Partner amounts arrive as decimal strings ("12.50"); we store cents."""
    amount = Decimal(raw["amount"])
    return int(amount * 100)


def currency_of(raw: dict) -> str:
    return raw.get("currency", "USD").upper()
'''

CALLBACKS = '''\
"""Partner payment callbacks."""

from __future__ import annotations

import logging

from flask import Blueprint, request

from payments.amounts import currency_of, to_minor_units
from payments.ledger import record

log = logging.getLogger(__name__)
bp = Blueprint("callbacks", __name__)


@bp.post("/v1/callbacks/<partner>")
def callback(partner: str):
    raw = request.get_json(force=True)
    cents = to_minor_units(raw)
    record(partner, raw["reference"], cents, currency_of(raw))
    return {"ok": True}
'''

RUNBOOKS = {
    "payments.md": """\
# Runbook: payments API

- This log directory is shared with other services on the host (search-indexer...):
  filter by the service before counting errors.
- `ledger write slow` errors: the ledger DB vacuum; known, harmless.
""",
}


def history() -> History:
    h = History()
    h.commit(
        ALICE,
        "2026-10-12T09:00:00",
        "payments: partner callbacks",
        files={
            "README.md": "# payments\n\nPartner callbacks and ledger.\n",
            "requirements.txt": "flask==3.0.3\n",
            "payments/__init__.py": "",
            "payments/amounts.py": AMOUNTS_V1,
            "payments/callbacks.py": CALLBACKS,
            "payments/ledger.py": "def record(partner, reference, cents, currency):\n    pass\n",
        },
        tag="v2.0.0",
    )
    h.commit(
        EMIL,
        "2026-11-27T15:30:00",
        "amounts: avoid Decimal for speed in the hot path (#145)",
        role="culprit",
        edits=[
            (
                "payments/amounts.py",
                '    amount = Decimal(raw["amount"])\n    return int(amount * 100)',
                '    return int(raw["amount"]) * 100',
            )
        ],  # fmt: skip
    )
    h.commit(
        DANA,
        "2026-11-28T08:00:00",
        "Release 2.1.0",
        role="deployed",
        tag="v2.1.0",
        edits=[("README.md", "and ledger.\n", "and ledger. Release 2.1.0.\n")],
    )
    h.commit(
        EMIL,
        "2026-11-28T14:00:00",
        "amounts: upper-case currency codes once (#147)",
        role="decoy",
        edits=[
            (
                "payments/amounts.py",
                'return raw.get("currency", "USD").upper()',
                'code = raw.get("currency", "USD")\n    return code.upper()',
            )
        ],  # fmt: skip
    )
    return h


def _trace(tree: dict[str, str], value: str) -> tuple[str, int]:
    flask = py_frame(SITE + "flask/app.py", 865, "dispatch_request",
                     "return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)"
                     "  # type: ignore[no-any-return]",
                     "self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)")  # fmt: skip
    cb, _ = repo_py_frame(
        tree, PREFIX, "payments/callbacks.py", "callback", "cents = to_minor_units(raw)", "to_minor_units(raw)"
    )
    am, line = repo_py_frame(
        tree, PREFIX, "payments/amounts.py", "to_minor_units", 'return int(raw["amount"]) * 100', 'int(raw["amount"])'
    )
    return py_traceback([flask, cb, am], f"ValueError: invalid literal for int() with base 10: '{value}'"), line


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    pay, idx = "payments-api.log", "search-indexer.log"
    start, end, deploy = 8 * H, 14 * H, 10 * H + 5 * M + 20 * S + 31

    def pl(ms: int, level: str, logger: str, msg: str) -> str:
        return f"{clock.py(ms)} {level} [{logger}] {msg}"

    def lf(ms: int, level: str, msg: str, **kw: Any) -> str:
        extra = " ".join(f'{k}="{v}"' if " " in str(v) else f"{k}={v}" for k, v in kw.items())
        return f'time={clock.iso(ms)} level={level} msg="{msg}" {extra}'.rstrip()

    def pay_ok(r: random.Random, ms: int) -> tuple[str, str]:
        return pay, pl(
            ms,
            "INFO",
            "payments.callbacks",
            f"callback partner={r.choice(['adyen', 'stripe', 'klarna'])} ref=ref_{r.getrandbits(40):010x} ok",
        )

    def idx_ok(r: random.Random, ms: int) -> tuple[str, str]:
        return idx, lf(ms, "info", "bulk indexed", docs=r.randrange(50, 500), took_ms=r.randrange(20, 900))

    add_noise(logs, rnd, start, end, 100, [(5, pay_ok), (4, idx_ok)])
    for ms in arrivals(rnd, start, end, 1 / 10):
        logs.add(pay, ms, pl(ms, "ERROR", "payments.ledger", f"ledger write slow: {rnd.randrange(2000, 9000)}ms"))
    deployed_sha = repo.sha("deployed")
    logs.add(pay, deploy, pl(deploy, "INFO", "deploy", f"payments 2.1.0 deployed (commit {deployed_sha[:7]})"))
    onset = None
    line = 0
    for ms in arrivals(rnd, deploy + 30 * S, end, 1.2):
        onset = onset or ms
        trace, line = _trace(tree, f"{rnd.randrange(1, 500)}.{rnd.randrange(100):02d}")
        logs.add(pay, ms, pl(ms, "ERROR", "payments.app", f"Exception on /v1/callbacks/klarna [POST]\n{trace}"))
    for ms in arrivals(rnd, deploy + 40 * M, end, 6):
        logs.add(
            idx,
            ms,
            lf(
                ms,
                "error",
                "bulk index failed",
                index="products",
                err="es_rejected_execution_exception: rejected execution of coordinating operation",
            ),
        )
    assert onset is not None
    counts = logs.write(out / "logs", rotate={pay: [11 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="payments parses decimal partner amounts with int(); search-indexer's louder burst is another service.",
        repo=repo,
        culprit_role="culprit",
        file="payments/amounts.py",
        line=line,
        signature=r"ValueError: invalid literal for int\(\)",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "2.1.0"},
        decoy_roles=["decoy"],
        stack="python/flask + another service in logfmt",
        formats=["python logging", "logfmt (other service)"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
