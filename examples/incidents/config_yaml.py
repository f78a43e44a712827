"""Config only: a URL in config/production.yaml changed; the code did not.

structlog JSON logs with the Python traceback in the ``exception`` field. The failing
frame is ``raise_for_status()`` in code untouched for weeks, so blaming the frame's
lines points at an innocent commit; the changed value (``/v3``) is in the error message.
Red herring: a stale search index error all day. Decoy: a harmless later commit to the
same YAML file (another key), before the deploy.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ._common import (
    BEN,
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
    line_no,
    py_frame,
    py_traceback,
    repo_py_frame,
    write_runbooks,
)

CASE = "config_yaml"
SERVICE = "catalog"
DAY = "2026-11-26"
PREFIX = "/app/"
SITE = "/usr/local/lib/python3.11/site-packages/"

CONFIG_V1 = """\
# Production settings of the catalog service (loaded at start-up and on SIGHUP).
service: catalog
log_level: info
fx:
  base_url: http://fx.internal:8080/v2
  timeout_s: 2.0
cache:
  ttl_s: 300
search:
  index: products-2026-10
"""

FX = '''\
"""Exchange rates from the fx service."""

from __future__ import annotations

from decimal import Decimal

import httpx

from catalog.settings import settings


def rate(currency: str) -> Decimal:
    url = f"{settings.fx.base_url}/rates/{currency}"
    resp = httpx.get(url, timeout=settings.fx.timeout_s)
    resp.raise_for_status()
    return Decimal(resp.json()["rate"])
'''

PRICES = '''\
"""Localised product prices."""

from __future__ import annotations

import structlog

from catalog import fx

log = structlog.get_logger(__name__)


def localised_price(product: dict, currency: str) -> int:
    if currency == "USD":
        return product["price_cents"]
    try:
        return round(product["price_cents"] * fx.rate(currency))
    except Exception:
        log.exception("fx lookup failed", currency=currency, sku=product["sku"])
        raise
'''

SETTINGS = '''\
"""Settings from config/<env>.yaml."""

import os
from types import SimpleNamespace

import yaml


def _load() -> SimpleNamespace:
    env = os.environ.get("CATALOG_ENV", "production")
    with open(f"config/{env}.yaml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return SimpleNamespace(**{k: SimpleNamespace(**v) if isinstance(v, dict) else v for k, v in raw.items()})


settings = _load()
'''

RUNBOOKS = {
    "catalog.md": """\
# Runbook: catalog

- Settings live in `config/production.yaml` in the repository and are deployed with the
  code; a config-only release is still a release (`deployctl config catalog`).
- `search index stale` errors: the nightly reindex runs late; harmless.
- fx errors (`fx lookup failed`): check the fx base URL and the fx service status.
""",
}


def history() -> History:
    h = History()
    h.commit(
        EMIL,
        "2026-10-05T10:00:00",
        "catalog: localised prices via the fx service",
        files={
            "README.md": "# catalog\n\nProducts and localised prices.\n",
            "requirements.txt": "httpx==0.27.2\nPyYAML==6.0.2\nstructlog==24.4.0\n",
            "config/production.yaml": CONFIG_V1,
            "catalog/__init__.py": "",
            "catalog/fx.py": FX,
            "catalog/prices.py": PRICES,
            "catalog/settings.py": SETTINGS,
        },
        tag="v7.3.0",
    )
    h.commit(
        BEN,
        "2026-11-25T17:05:00",
        "config: move to the fx v3 API (#640)",
        body="fx v2 is deprecated at the end of the year.",
        role="culprit",
        edits=[
            ("config/production.yaml", "base_url: http://fx.internal:8080/v2", "base_url: http://fx.internal:8080/v3")
        ],  # fmt: skip
    )
    h.commit(
        DANA,
        "2026-11-26T08:40:00",
        "config: cache prices for ten minutes (#641)",
        role="decoy",
        edits=[("config/production.yaml", "ttl_s: 300", "ttl_s: 600")],
    )
    h.commit(
        EMIL,
        "2026-11-26T09:15:00",
        "Release 7.4.0",
        role="deployed",
        tag="v7.4.0",
        edits=[("README.md", "localised prices.\n", "localised prices. Release 7.4.0.\n")],
    )
    return h


def _trace(tree: dict[str, str], currency: str) -> str:
    prices, _ = repo_py_frame(
        tree,
        PREFIX,
        "catalog/prices.py",
        "localised_price",
        'return round(product["price_cents"] * fx.rate(currency))',
        "fx.rate(currency)",
    )
    fx, _ = repo_py_frame(tree, PREFIX, "catalog/fx.py", "rate", "resp.raise_for_status()")
    lib = py_frame(
        SITE + "httpx/_models.py",
        763,
        "raise_for_status",
        "raise HTTPStatusError(message, request=request, response=self)",
        "",
    )
    exc = (
        f"httpx.HTTPStatusError: Client error '404 Not Found' for url 'http://fx.internal:8080/v3/rates/{currency}'\n"
        "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404"
    )
    return py_traceback([prices, fx, lib], exc)  # fmt: skip


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    line = line_no(tree["config/production.yaml"], "base_url: http://fx.internal:8080/v3")
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "catalog.jsonl"
    start, end, deploy = 8 * H, 14 * H, 10 * H + 48 * M + 12 * S + 3

    def sl(ms: int, level: str, event: str, **kw: Any) -> str:
        stamp = clock.iso(ms)[:-1] + f"{rnd.randrange(1000):03d}Z"
        logger = kw.pop("logger", "catalog.api")
        obj = {"event": event, **kw, "level": level, "logger": logger, "timestamp": stamp}
        return json.dumps(obj, separators=(", ", ": "))

    def get(r: random.Random, ms: int) -> tuple[str, str]:
        return name, sl(
            ms,
            "info",
            "product served",
            sku=f"SKU-{r.randrange(1000, 9999)}",
            currency=r.choice(["USD", "USD", "USD", "EUR", "GBP"]),
            took_ms=r.randrange(2, 60),
        )

    def misc(r: random.Random, ms: int) -> tuple[str, str]:
        return name, sl(ms, r.choice(["debug", "warning"]), "cache stats", hit_ratio=round(r.random(), 2))

    add_noise(logs, rnd, start, end, 100, [(8, get), (1, misc)])
    for ms in arrivals(rnd, start, end, 1 / 11):
        logs.add(
            name, ms, sl(ms, "error", "search index stale", index="products-2026-10", lag_s=rnd.randrange(900, 4000))
        )
    deployed_sha = repo.sha("deployed")
    logs.add(
        name, deploy, sl(deploy, "info", f"catalog 7.4.0 started (commit {deployed_sha[:7]})", logger="catalog.main")
    )
    onset = None
    for ms in arrivals(rnd, deploy + 4 * S, end, 3):
        onset = onset or ms
        currency = rnd.choice(["EUR", "GBP", "EUR", "JPY"])
        logs.add(
            name,
            ms,
            sl(
                ms,
                "error",
                "fx lookup failed",
                currency=currency,
                sku=f"SKU-{rnd.randrange(1000, 9999)}",
                logger="catalog.prices",
                exception=_trace(tree, currency),
            ),
        )
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [11 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="fx.base_url moved to /v3 in config/production.yaml; the fx service has no v3 rates path.",
        repo=repo,
        culprit_role="culprit",
        file="config/production.yaml",
        line=line,
        signature=r"HTTPStatusError|404 Not Found|fx lookup failed",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "7.4.0"},
        decoy_roles=["decoy"],
        stack="python/structlog",
        formats=["structlog JSON with exception field"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
