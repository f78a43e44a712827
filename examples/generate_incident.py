#!/usr/bin/env python3
"""Generate a realistic, deterministic incident for the ``checkout`` service.

    python examples/generate_incident.py [--out DIR] [--seed N] [--force]

DIR (default: ``examples/incident`` next to this script) receives:

* ``repo/``         git repository of the ``checkout`` service: 13 commits by four
                    authors from 2026-10-28 to the incident day, 2026-11-20.
* ``logs/``         about 45,000 lines for 2026-11-20 09:00-15:00 UTC in four files:
                    ``checkout-api.log.1.gz`` (rotated at 12:00), ``checkout-api.log``,
                    ``payments-worker.jsonl`` and ``edge-proxy.log``.
* ``runbooks/``     markdown runbooks for the on-call engineer.
* ``expected.json`` the ground truth (culprit commit, file:line, counts, times). It is
                    meant for tests and scoring; investigation tools must not read it.

The story: release 2.14.0 is deployed at 13:10 UTC. It contains a commit from 09:41
that reads ``order["currency"]`` unconditionally, and orders from old mobile clients
carry no currency, so ``POST /v1/checkout`` and capture jobs start failing with
``KeyError: 'currency'``. A steady trickle of Redis cache timeouts runs all day (a red
herring), PSP 502s start at about the same time (a secondary symptom), a harmless
commit later touched the same file (a decoy) and a hotfix attempt was committed after
the onset (history that must be ignored).

Only the standard library and the ``git`` executable are needed. The same seed gives
byte-identical logs; the repository (and so every commit sha) does not depend on the
seed at all.
"""

from __future__ import annotations

import argparse
import calendar
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

SERVICE = "checkout"
VERSION = "2.14.0"
DAY = "2026-11-20"
RELEASE_ROOT = f"/srv/checkout/releases/{VERSION}/"
SITE_PACKAGES = "/srv/checkout/venv/lib/python3.11/site-packages/"
CULPRIT_FILE = "checkout/payments/pricing.py"
CULPRIT_CODE = 'currency = order["currency"]'
EXCEPTION = "KeyError: 'currency'"
SECONDARY = "PaymentDeclined: upstream returned 502"
RED_HERRING = "Timeout connecting to cache at"
DEFAULT_SEED = 1120
DEFAULT_OUT = Path(__file__).resolve().parent / "incident"

# Times of day in milliseconds since 2026-11-20 00:00:00 UTC.
S = 1000
M = 60 * S
H = 60 * M
LOG_START = 9 * H
LOG_END = 15 * H
ROTATE_AT = 12 * H
DEPLOY_BEGIN = 13 * H + 10 * M + 2 * S + 114  # deploybot starts, edge drains checkout-api
GUNICORN_DOWN = DEPLOY_BEGIN + 2_600  # master exits, health checks fail
GUNICORN_UP = 13 * H + 10 * M + 8 * S + 903
DEPLOY_AT = 13 * H + 10 * M + 12 * S + 437  # "Deployed checkout version ..." marker
API_BACK = DEPLOY_AT + 310  # edge routes traffic to the new release again
# payments-worker is restarted while checkout-api boots; deploybot resumes its queue
# only once the whole deploy is done.
WORKER_DOWN = 13 * H + 10 * M + 3 * S + 20
WORKER_MARK = 13 * H + 10 * M + 11 * S + 902
WORKER_BACK = API_BACK + 471


# --------------------------------------------------------------------------------------
# The checkout repository
# --------------------------------------------------------------------------------------

PRIYA = ("Priya Raman", "priya.raman@example.com", "+0530")
MARCUS = ("Marcus Okafor", "marcus.okafor@example.com", "+0000")
LENA = ("Lena Fischer", "lena.fischer@example.com", "+0100")
TOMAS = ("Tomás Silva", "tomas.silva@example.com", "-0300")

REPO_README = """\
# checkout

Cart pricing, payment authorization and capture for the storefront.

Two processes are deployed from this repository:

* **checkout-api**: Flask app behind the edge proxy, run by gunicorn
  (`gunicorn 'checkout.app:create_app()'`). Serves `GET /v1/carts/<id>` and
  `POST /v1/checkout`, which prices the cart and authorizes the payment.
* **payments-worker**: rq worker on the `payments` queue. The fulfilment service
  enqueues `checkout.worker.capture_order` when an order ships; the job captures
  the authorized payment.

## Layout

| Path | What |
|------|------|
| `checkout/app.py` | app factory, request ids, access log, error handler |
| `checkout/api/handlers.py` | HTTP handlers |
| `checkout/payments/pricing.py` | discounts, tax and order totals |
| `checkout/payments/gateway.py` | PSP client: authorize at checkout, capture on shipment |
| `checkout/cache.py` | price cache in front of the catalog |
| `checkout/catalog.py` | catalog service client |
| `checkout/models.py` | `Order`, `LineItem` |
| `checkout/worker.py` | rq jobs for payments-worker |

## Development

    python -m venv .venv && .venv/bin/pip install -e '.[dev]'
    .venv/bin/pytest

## Releases

Bump the version in `pyproject.toml` and `checkout/__init__.py`, add a CHANGELOG
entry, tag `vX.Y.Z`. deploybot installs each release into
`/srv/checkout/releases/<version>/` and restarts gunicorn and the rq workers.
"""

REPO_GITIGNORE = """\
__pycache__/
*.egg-info/
.venv/
.pytest_cache/
"""

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "checkout"
version = "2.12.3"
description = "Cart pricing, payment authorization and capture for the storefront"
requires-python = ">=3.11"
dependencies = [
    "flask>=3.0",
    "gunicorn>=22.0",
    "httpx>=0.27",
    "redis>=5.0",
    "rq>=1.16",
]

[project.optional-dependencies]
dev = ["pytest>=8.0", "ruff>=0.6"]

[tool.setuptools.packages.find]
include = ["checkout*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

PKG_INIT = '''\
"""checkout: cart pricing, payment authorization and capture."""

__version__ = "2.12.3"
'''

APP = '''\
"""Flask application factory for checkout-api (run under gunicorn)."""

from __future__ import annotations

import logging
import os
import time
import uuid

from flask import Flask, g, request

from checkout import __version__
from checkout.api.handlers import bp

log = logging.getLogger(__name__)
access_log = logging.getLogger("checkout.api.access")

SLOW_REQUEST_MS = 1000


def create_app() -> Flask:
    app = Flask("checkout")
    app.register_blueprint(bp)

    @app.before_request
    def _start_request() -> None:
        g.request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
        g.started = time.monotonic()

    @app.after_request
    def _log_request(response):
        elapsed_ms = int((time.monotonic() - g.started) * 1000)
        level = logging.INFO
        if request.path == "/healthz":
            level = logging.DEBUG
        elif elapsed_ms > SLOW_REQUEST_MS:
            level = logging.WARNING
        access_log.log(
            level,
            "%s %s %d %dms request_id=%s client_ip=%s",
            request.method,
            request.path,
            response.status_code,
            elapsed_ms,
            g.request_id,
            request.headers.get("X-Forwarded-For", request.remote_addr),
        )
        return response

    @app.errorhandler(Exception)
    def _unhandled(exc: Exception):
        log.exception(
            "Unhandled exception on %s %s (request_id=%s)",
            request.method,
            request.path,
            g.get("request_id"),
        )
        return {"error": "internal_error", "request_id": g.get("request_id")}, 500

    log.info("Starting checkout %s (commit %s)", __version__, os.environ.get("CHECKOUT_COMMIT"))
    return app
'''

HANDLERS = '''\
"""HTTP handlers for the checkout API."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from checkout import catalog
from checkout.cache import PriceCache
from checkout.models import LineItem, Order
from checkout.payments import pricing
from checkout.payments.gateway import PaymentDeclined, PaymentGateway

log = logging.getLogger(__name__)

bp = Blueprint("checkout", __name__)
_cache = PriceCache()
_gateway = PaymentGateway()


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/v1/carts/<cart_id>")
def get_cart(cart_id: str):
    cart = catalog.load_cart(cart_id)
    if cart is None:
        return jsonify(error="not_found"), 404
    return jsonify(cart)


@bp.post("/v1/checkout")
def create_checkout():
    payload = request.get_json(force=True)
    items = _price_items(payload["items"])
    order = Order.from_payload(payload, items)
    log.info("checkout started order_id=%s items=%d", order.order_id, order.item_count)
    quote = pricing.compute_total(payload, order.items)
    try:
        psp_ref = _gateway.authorize(order.order_id, quote["total"], quote["currency"])
    except PaymentDeclined as exc:
        log.warning("payment declined order_id=%s: %s", order.order_id, exc)
        return jsonify(error="payment_declined", detail=str(exc)), 402
    return jsonify(order_id=order.order_id, psp_ref=psp_ref, **quote), 201


def _price_items(raw_items: list[dict]) -> list[LineItem]:
    """Price each requested item from the cache, falling back to the catalog."""
    items: list[LineItem] = []
    hits = 0
    for raw in raw_items:
        price = _cache.get(raw["sku"])
        if price is None:
            price = catalog.unit_price(raw["sku"])
            _cache.set(raw["sku"], price)
        else:
            hits += 1
        items.append(LineItem(raw["sku"], int(raw["quantity"]), price))
    log.debug("priced %d items (cache hits=%d misses=%d)", len(items), hits, len(items) - hits)
    return items
'''

CATALOG = '''\
"""Catalog service client: the source of truth for carts and unit prices."""

from __future__ import annotations

import os

import httpx

CATALOG_URL = os.environ.get("CHECKOUT_CATALOG_URL", "http://catalog.internal:8080")

_http = httpx.Client(base_url=CATALOG_URL, timeout=2.0)


def unit_price(sku: str) -> int:
    """Current unit price of ``sku`` in USD minor units."""
    resp = _http.get(f"/v1/prices/{sku}")
    resp.raise_for_status()
    return int(resp.json()["unit_price"])


def load_cart(cart_id: str) -> dict | None:
    resp = _http.get(f"/v1/carts/{cart_id}")
    if resp.status_code == 404:
        return None
    resp.raise_for_status()
    return resp.json()
'''

CACHE_V1 = '''\
"""Price cache in front of the catalog service."""

from __future__ import annotations

import time


class PriceCache:
    """A small in-process TTL cache for unit prices (USD minor units)."""

    def __init__(self, ttl_seconds: float = 300.0) -> None:
        self._ttl = ttl_seconds
        self._data: dict[str, tuple[float, int]] = {}

    def get(self, sku: str) -> int | None:
        entry = self._data.get(sku)
        if entry is None:
            return None
        stored_at, price = entry
        if time.monotonic() - stored_at > self._ttl:
            del self._data[sku]
            return None
        return price

    def set(self, sku: str, price: int) -> None:
        self._data[sku] = (time.monotonic(), price)
'''

CACHE_V2 = '''\
"""Price cache in front of the catalog service.

Unit prices are looked up for every item on every checkout, so they are cached
in Redis. A slow or unreachable Redis node degrades to a cache miss: the caller
falls back to the catalog and the request is merely slower.
"""

from __future__ import annotations

import logging
import time
import zlib

import redis

log = logging.getLogger(__name__)

NODES = (("10.0.3.12", 6379), ("10.0.3.13", 6379), ("10.0.3.14", 6380))
CONNECT_TIMEOUT_MS = 2000
TTL_SECONDS = 300


class PriceCache:
    """Unit prices (USD minor units) keyed by SKU, sharded over the Redis nodes."""

    def __init__(self, nodes=NODES, ttl_seconds: int = TTL_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._nodes = [
            redis.Redis(
                host=host,
                port=port,
                socket_connect_timeout=CONNECT_TIMEOUT_MS / 1000,
                socket_timeout=CONNECT_TIMEOUT_MS / 1000,
            )
            for host, port in nodes
        ]

    def _node(self, sku: str) -> redis.Redis:
        return self._nodes[zlib.crc32(sku.encode()) % len(self._nodes)]

    def get(self, sku: str) -> int | None:
        node = self._node(sku)
        started = time.monotonic()
        try:
            raw = node.get(f"price:{sku}")
        except (redis.exceptions.TimeoutError, redis.exceptions.ConnectionError):
            kwargs = node.connection_pool.connection_kwargs
            log.error(
                "Timeout connecting to cache at %s:%s after %dms",
                kwargs["host"],
                kwargs["port"],
                (time.monotonic() - started) * 1000,
            )
            return None
        return None if raw is None else int(raw)

    def set(self, sku: str, price: int) -> None:
        try:
            self._node(sku).set(f"price:{sku}", price, ex=self._ttl)
        except redis.exceptions.RedisError as exc:
            log.warning("cache write failed for %s: %s", sku, exc)
'''

MODELS = '''\
"""Domain models shared by checkout-api and payments-worker."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class LineItem:
    sku: str
    quantity: int
    unit_price: int  # USD minor units


@dataclass
class Order:
    order_id: str
    customer_id: str
    items: list[LineItem] = field(default_factory=list)

    @property
    def item_count(self) -> int:
        return sum(item.quantity for item in self.items)

    @classmethod
    def from_payload(cls, payload: dict, items: list[LineItem] | None = None) -> Order:
        """Build an order from a checkout payload; ``items`` overrides payload prices."""
        if items is None:
            items = [
                LineItem(raw["sku"], int(raw["quantity"]), int(raw["unit_price"]))
                for raw in payload["items"]
            ]
        return cls(order_id=payload["order_id"], customer_id=payload["customer_id"], items=items)
'''

PRICING_V1 = '''\
"""Order pricing.

All amounts are integers in minor units (cents) so that totals never pick up
floating point rounding errors.
"""

from __future__ import annotations

import logging

from checkout.models import LineItem

log = logging.getLogger(__name__)

DEFAULT_CURRENCY = "USD"

DISCOUNTS = {
    "WELCOME10": 10,
    "FRIENDS15": 15,
    "BLACKFRIDAY": 25,
}


def apply_discount(subtotal: int, code: str | None) -> int:
    """Return ``subtotal`` reduced by the percentage for discount ``code``.

    Unknown codes are ignored rather than rejected; the storefront validates
    codes before checkout.
    """
    if not code:
        return subtotal
    pct = DISCOUNTS.get(code.upper(), 0)
    if pct:
        log.info("Discount applied %s (%s%%)", code, pct)
    return subtotal - subtotal * pct // 100


def compute_total(order: dict, items: list[LineItem]) -> dict:
    """Compute subtotal and total for an order payload."""
    subtotal = sum(item.unit_price * item.quantity for item in items)
    subtotal = apply_discount(subtotal, order.get("discount_code"))
    return {
        "subtotal": subtotal,
        "total": subtotal,
        "currency": DEFAULT_CURRENCY,
    }
'''

GATEWAY = '''\
"""Payment service provider (PSP) client.

Payments are authorized when the customer checks out and captured by the
payments worker once the order ships.
"""

from __future__ import annotations

import logging
import os

import httpx

from checkout.models import LineItem
from checkout.payments import pricing

log = logging.getLogger(__name__)

PSP_URL = os.environ.get("CHECKOUT_PSP_URL", "https://psp.internal.example.com")


class PaymentDeclined(Exception):
    """The PSP declined the payment or could not process it."""


class PaymentGateway:
    def __init__(self, client: httpx.Client | None = None) -> None:
        self._http = client or httpx.Client(base_url=PSP_URL, timeout=5.0)

    def authorize(self, order_id: str, amount: int, currency: str) -> str:
        """Authorize ``amount`` and return the PSP reference."""
        resp = self._http.post(
            "/v2/authorizations",
            json={"reference": order_id, "amount": amount, "currency": currency},
        )
        if resp.status_code == 402:
            raise PaymentDeclined(f"card declined ({resp.json().get('reason', 'unknown')})")
        if resp.status_code >= 400:
            raise PaymentDeclined(f"upstream returned {resp.status_code}")
        psp_ref = resp.json()["id"]
        log.info(
            "payment authorized order_id=%s amount=%d currency=%s psp_ref=%s",
            order_id,
            amount,
            currency,
            psp_ref,
        )
        return psp_ref

    def capture(self, order: dict, items: list[LineItem]) -> dict:
        """Capture the authorized amount for a shipped order."""
        quote = pricing.compute_total(order, items)
        resp = self._http.post(
            f"/v2/authorizations/{order['psp_ref']}/capture",
            json={"amount": quote["total"], "currency": quote["currency"]},
        )
        if resp.status_code >= 400:
            raise PaymentDeclined(f"upstream returned {resp.status_code}")
        log.info(
            "payment captured order_id=%s amount=%d currency=%s",
            order["order_id"],
            quote["total"],
            quote["currency"],
        )
        return {"amount": quote["total"], "currency": quote["currency"]}
'''

WORKER = '''\
"""payments-worker: rq jobs on the ``payments`` queue.

The fulfilment service enqueues ``capture_order`` when an order ships; the
payload is the order as stored at checkout, plus the PSP reference.

    rq worker --url "$CHECKOUT_QUEUE_URL" payments
"""

from __future__ import annotations

from checkout.models import Order
from checkout.payments.gateway import PaymentGateway

_gateway = PaymentGateway()


def capture_order(payload: dict) -> dict:
    """Capture the authorized payment of a shipped order."""
    order = Order.from_payload(payload)
    return _gateway.capture(payload, order.items)
'''

TEST_PRICING = """\
from checkout.models import LineItem
from checkout.payments import pricing

ITEMS = [LineItem("SKU-1001", 2, 1250), LineItem("SKU-2040", 1, 3999)]


def test_total_without_discount():
    quote = pricing.compute_total({}, ITEMS)
    assert quote["total"] == 6499
    assert quote["currency"] == "USD"


def test_discount_code_is_case_insensitive():
    quote = pricing.compute_total({"discount_code": "welcome10"}, ITEMS)
    assert quote["subtotal"] == 5850


def test_unknown_discount_code_is_ignored():
    assert pricing.apply_discount(1000, "NOPE") == 1000
"""

TEST_MODELS = """\
import pytest

from checkout.models import LineItem, Order


def test_from_payload_uses_payload_prices():
    order = Order.from_payload(
        {
            "order_id": "ord_1",
            "customer_id": "cus_1",
            "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 500}],
        }
    )
    assert order.item_count == 2
    assert order.items[0].unit_price == 500


def test_quantity_must_be_positive():
    with pytest.raises(ValueError):
        LineItem("SKU-1", 0, 500)
"""

CHANGELOG_2_13 = """\
# Changelog

## 2.13.0 - 2026-11-10

- Price cache moved to Redis, with catalog fallback on timeouts (#212)
- Regional VAT / sales tax in order totals (#215)
- Capture retries with exponential backoff on PSP 5xx (#219)
- Reject non-positive item quantities (#221)

## 2.12.3 - 2026-10-21

- Imported from the platform monorepo; no functional changes.
"""

CHANGELOG_2_14 = """\
## 2.14.0 - 2026-11-20

- Multi-currency totals: amounts are converted into the order currency (#229, PAY-412)
- Cache connect timeout configurable with `CHECKOUT_CACHE_TIMEOUT_MS` (#224)
- Request id and client version in checkout logs (#226)

"""


@dataclass
class CommitSpec:
    author: tuple[str, str, str]
    when: str  # UTC, ISO 8601 without offset
    subject: str
    body: str
    tree: dict[str, str]
    role: str = ""
    tag: str = ""

    @property
    def epoch(self) -> int:
        return calendar.timegm(datetime.strptime(self.when, "%Y-%m-%dT%H:%M:%S").timetuple())


def _edit(tree: dict[str, str], path: str, old: str, new: str) -> None:
    text = tree[path]
    if text.count(old) != 1:
        raise AssertionError(f"{path}: expected exactly one occurrence of {old!r}")
    tree[path] = text.replace(old, new)


def build_history() -> list[CommitSpec]:
    """The commits of the checkout repository, each with its full tree."""
    tree: dict[str, str] = {}
    commits: list[CommitSpec] = []

    def commit(author, when, subject, body="", role="", tag=""):
        commits.append(CommitSpec(author, when, subject, body, dict(tree), role, tag))

    tree.update(
        {
            ".gitignore": REPO_GITIGNORE,
            "README.md": REPO_README,
            "pyproject.toml": PYPROJECT,
            "checkout/__init__.py": PKG_INIT,
            "checkout/app.py": APP,
            "checkout/api/__init__.py": "",
            "checkout/api/handlers.py": HANDLERS,
            "checkout/cache.py": CACHE_V1,
            "checkout/catalog.py": CATALOG,
            "checkout/models.py": MODELS,
            "checkout/payments/__init__.py": "",
            "checkout/payments/gateway.py": GATEWAY,
            "checkout/payments/pricing.py": PRICING_V1,
            "checkout/worker.py": WORKER,
            "tests/__init__.py": "",
            "tests/test_pricing.py": TEST_PRICING,
        }
    )
    commit(
        PRIYA,
        "2026-10-28T15:20:41",
        "Import checkout service from platform monorepo",
        "Extracted from platform/services/checkout at 2.12.3 with history squashed.\nNo functional changes.",
    )

    tree["checkout/cache.py"] = CACHE_V2
    commit(
        MARCUS,
        "2026-10-30T10:05:13",
        "cache: move price cache to Redis with catalog fallback (#212)",
        "The in-process cache was cold after every deploy and each gunicorn worker\n"
        "kept its own copy. Prices now live in the shared Redis nodes; a timeout is\n"
        "treated as a miss so checkout keeps working when a node is slow.",
    )

    p = "checkout/payments/pricing.py"
    _edit(
        tree,
        p,
        "import logging\n",
        "import logging\nfrom decimal import ROUND_HALF_EVEN, Decimal\n",
    )
    _edit(
        tree,
        p,
        '    "BLACKFRIDAY": 25,\n}\n',
        '    "BLACKFRIDAY": 25,\n}\n\n'
        "# VAT / sales tax by shipping region, in basis points.\n"
        "TAX_RATES_BP = {\n"
        '    "US": 0,\n    "DE": 1900,\n    "FR": 2000,\n    "NL": 2100,\n    "GB": 2000,\n'
        "}\n",
    )
    _edit(
        tree,
        p,
        "\n\ndef compute_total(",
        "\n\ndef _tax(amount: int, rate_bp: int) -> int:\n"
        '    """Tax on ``amount`` at ``rate_bp`` basis points, rounded half to even."""\n'
        "    tax = Decimal(amount) * rate_bp / 10000\n"
        "    return int(tax.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))\n"
        "\n\ndef compute_total(",
    )
    _edit(
        tree,
        p,
        '    """Compute subtotal and total for an order payload."""\n',
        '    """Compute subtotal, tax and total for an order payload."""\n',
    )
    _edit(
        tree,
        p,
        '    subtotal = apply_discount(subtotal, order.get("discount_code"))\n'
        "    return {\n"
        '        "subtotal": subtotal,\n'
        '        "total": subtotal,\n',
        '    subtotal = apply_discount(subtotal, order.get("discount_code"))\n'
        '    region = order.get("region", "US")\n'
        "    tax = _tax(subtotal, TAX_RATES_BP.get(region, 0))\n"
        "    return {\n"
        '        "subtotal": subtotal,\n'
        '        "tax": tax,\n'
        '        "total": subtotal + tax,\n',
    )
    tree["tests/test_pricing.py"] += (
        "\n\ndef test_regional_tax_is_added():\n"
        '    quote = pricing.compute_total({"region": "DE"}, ITEMS)\n'
        '    assert quote["tax"] == 1235\n'
        '    assert quote["total"] == 7734\n'
    )
    commit(
        LENA,
        "2026-11-02T13:47:55",
        "pricing: add regional tax to compute_total (#215)",
        "EU storefronts launch next month. Tax is computed on the discounted\n"
        "subtotal, per shipping region, rounded half to even. Regions we do not\n"
        "know yet are taxed at 0 until finance gives us the rates.",
    )

    g = "checkout/payments/gateway.py"
    _edit(tree, g, "import logging\nimport os\n", "import logging\nimport os\nimport time\n")
    _edit(
        tree,
        g,
        'PSP_URL = os.environ.get("CHECKOUT_PSP_URL", "https://psp.internal.example.com")\n',
        'PSP_URL = os.environ.get("CHECKOUT_PSP_URL", "https://psp.internal.example.com")\n'
        "CAPTURE_ATTEMPTS = 3\n"
        "BACKOFF_SECONDS = 0.5\n",
    )
    _edit(
        tree,
        g,
        '        """Capture the authorized amount for a shipped order."""\n'
        "        quote = pricing.compute_total(order, items)\n"
        "        resp = self._http.post(\n"
        "            f\"/v2/authorizations/{order['psp_ref']}/capture\",\n"
        '            json={"amount": quote["total"], "currency": quote["currency"]},\n'
        "        )\n",
        '        """Capture the authorized amount for a shipped order.\n'
        "\n"
        "        PSP 5xx responses are retried with exponential backoff before giving up.\n"
        '        """\n'
        "        quote = pricing.compute_total(order, items)\n"
        "        for attempt in range(1, CAPTURE_ATTEMPTS + 1):\n"
        "            resp = self._http.post(\n"
        "                f\"/v2/authorizations/{order['psp_ref']}/capture\",\n"
        '                json={"amount": quote["total"], "currency": quote["currency"]},\n'
        "            )\n"
        "            if resp.status_code < 500 or attempt == CAPTURE_ATTEMPTS:\n"
        "                break\n"
        "            log.warning(\n"
        '                "capture attempt %d/%d for order_id=%s got %d from PSP, retrying",\n'
        "                attempt,\n"
        "                CAPTURE_ATTEMPTS,\n"
        '                order["order_id"],\n'
        "                resp.status_code,\n"
        "            )\n"
        "            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))\n",
    )
    commit(
        TOMAS,
        "2026-11-04T20:12:09",
        "gateway: retry captures on PSP 5xx with backoff (#219)",
        "The PSP returns sporadic 502s during their deploys. Retry up to three\n"
        "times (0.5s, 1s) inside the job before rq's own retry kicks in.",
    )

    _edit(
        tree,
        "checkout/models.py",
        "    unit_price: int  # USD minor units\n",
        "    unit_price: int  # USD minor units\n"
        "\n"
        "    def __post_init__(self) -> None:\n"
        "        if self.quantity <= 0:\n"
        '            raise ValueError(f"quantity must be positive, got {self.quantity} for '
        '{self.sku}")\n',
    )
    tree["tests/test_models.py"] = TEST_MODELS
    commit(
        PRIYA,
        "2026-11-06T11:30:27",
        "models: reject non-positive quantities (#221)",
        "A storefront bug sent quantity 0 lines, which authorized zero amounts.",
    )

    _edit(tree, "pyproject.toml", 'version = "2.12.3"', 'version = "2.13.0"')
    _edit(tree, "checkout/__init__.py", '"2.12.3"', '"2.13.0"')
    tree["CHANGELOG.md"] = CHANGELOG_2_13
    commit(PRIYA, "2026-11-10T09:15:02", "Release 2.13.0", tag="v2.13.0")

    c = "checkout/cache.py"
    _edit(tree, c, "import logging\nimport time\n", "import logging\nimport os\nimport time\n")
    _edit(
        tree,
        c,
        "CONNECT_TIMEOUT_MS = 2000\n",
        'CONNECT_TIMEOUT_MS = int(os.environ.get("CHECKOUT_CACHE_TIMEOUT_MS", "2000"))\n',
    )
    commit(
        MARCUS,
        "2026-11-12T16:02:44",
        "cache: make connect timeout configurable (#224)",
        "We still see a handful of 2s timeouts per hour against 10.0.3.x (CHK-1870).\n"
        "Allow ops to lower the timeout without a release while infra looks at the\n"
        "nodes. Default unchanged.",
    )

    h = "checkout/api/handlers.py"
    _edit(
        tree,
        h,
        "from flask import Blueprint, jsonify, request\n",
        "from flask import Blueprint, g, jsonify, request\n",
    )
    _edit(
        tree,
        h,
        '    log.info("checkout started order_id=%s items=%d", order.order_id, order.item_count)\n',
        "    log.info(\n"
        '        "checkout started request_id=%s order_id=%s items=%d client=%s",\n'
        "        g.request_id,\n"
        "        order.order_id,\n"
        "        order.item_count,\n"
        '        request.headers.get("X-Client-Version", "unknown"),\n'
        "    )\n",
    )
    commit(
        TOMAS,
        "2026-11-16T14:40:18",
        "api: log request id and client version on checkout (#226)",
        "Makes it possible to join checkout-api lines with edge-proxy access lines\n"
        "and to see which app versions are affected by a problem.",
    )

    tree["tests/test_pricing.py"] += (
        "\n\ndef test_tax_rounds_half_to_even():\n"
        "    assert pricing._tax(25, 1000) == 2\n"
        "    assert pricing._tax(35, 1000) == 4\n"
        "\n\ndef test_tax_for_eu_regions():\n"
        '    for region, expected in {"FR": 1300, "NL": 1365}.items():\n'
        '        quote = pricing.compute_total({"region": region}, ITEMS)\n'
        '        assert quote["tax"] == expected\n'
    )
    commit(LENA, "2026-11-18T10:22:36", "tests: cover half-even tax rounding for EU regions (#227)")

    # The culprit: compute_total now requires "currency" in the payload.
    _edit(
        tree,
        p,
        '    "GB": 2000,\n}\n',
        '    "GB": 2000,\n}\n\n'
        "# USD -> order currency, refreshed daily by the pricing-rates job.\n"
        "FX_RATES = {\n"
        '    "USD": Decimal("1"),\n'
        '    "EUR": Decimal("0.9412"),\n'
        '    "GBP": Decimal("0.7931"),\n'
        "}\n",
    )
    _edit(
        tree,
        p,
        "\n\ndef compute_total(",
        "\n\ndef _convert(amount: int, rate: Decimal) -> int:\n"
        '    """Convert a USD amount into the order currency, rounded half to even."""\n'
        "    return int((Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))\n"
        "\n\ndef compute_total(",
    )
    _edit(
        tree,
        p,
        '    """Compute subtotal, tax and total for an order payload."""\n'
        "    subtotal = sum(item.unit_price * item.quantity for item in items)\n",
        '    """Compute subtotal, tax and total for an order payload.\n'
        "\n"
        "    Catalog prices are in USD; all amounts are converted into the currency the\n"
        "    customer checks out in.\n"
        '    """\n'
        f"    {CULPRIT_CODE}\n"
        "    rate = FX_RATES[currency]\n"
        "    subtotal = sum(_convert(item.unit_price, rate) * item.quantity for item in items)\n",
    )
    _edit(tree, p, '        "currency": DEFAULT_CURRENCY,\n', '        "currency": currency,\n')
    t = "tests/test_pricing.py"
    _edit(tree, t, "compute_total({}, ITEMS)", 'compute_total({"currency": "USD"}, ITEMS)')
    _edit(
        tree,
        t,
        '{"discount_code": "welcome10"}',
        '{"currency": "USD", "discount_code": "welcome10"}',
    )
    _edit(tree, t, '{"region": "DE"}', '{"currency": "USD", "region": "DE"}')
    _edit(tree, t, '{"region": region}', '{"currency": "USD", "region": region}')
    tree[t] += (
        "\n\ndef test_total_is_converted_to_order_currency():\n"
        '    quote = pricing.compute_total({"currency": "EUR"}, ITEMS)\n'
        '    assert quote["currency"] == "EUR"\n'
        '    assert quote["total"] == 6116\n'
    )
    commit(
        LENA,
        "2026-11-20T09:41:07",
        "pricing: support multi-currency totals (#229)",
        "The storefront now sends the checkout currency with every order (PAY-412).\n"
        "Catalog prices stay in USD; compute_total converts them with the daily FX\n"
        "table and returns totals in the order currency instead of always USD.",
        role="culprit",
    )

    # The decoy: same file, different function, one-for-one line changes.
    _edit(
        tree,
        p,
        "    Unknown codes are ignored rather than rejected; the storefront validates\n",
        "    Unknown codes are ignored rather than rejected: the storefront validates\n",
    )
    _edit(
        tree,
        p,
        '        log.info("Discount applied %s (%s%%)", code, pct)\n',
        '        log.info("discount applied code=%s pct=%d", code.upper(), pct)\n',
    )
    commit(
        MARCUS,
        "2026-11-20T11:58:30",
        "pricing: tidy discount log message (#230)",
        "key=value like the rest of our log lines, so the log pipeline can parse it.",
        role="decoy",
    )

    _edit(tree, "pyproject.toml", 'version = "2.13.0"', f'version = "{VERSION}"')
    _edit(tree, "checkout/__init__.py", '"2.13.0"', f'"{VERSION}"')
    _edit(tree, "CHANGELOG.md", "# Changelog\n\n", "# Changelog\n\n" + CHANGELOG_2_14)
    commit(PRIYA, "2026-11-20T12:47:52", f"Release {VERSION}", role="deployed", tag=f"v{VERSION}")

    _edit(
        tree,
        h,
        "    quote = pricing.compute_total(payload, order.items)\n",
        "    try:\n"
        "        quote = pricing.compute_total(payload, order.items)\n"
        "    except (KeyError, ValueError) as exc:\n"
        '        log.warning("pricing rejected order_id=%s: %r", order.order_id, exc)\n'
        '        return jsonify(error="invalid_order", detail=str(exc)), 422\n',
    )
    commit(
        TOMAS,
        "2026-11-20T13:52:19",
        "api: return 422 when pricing rejects an order (#232)",
        "Checkout has been answering 500 for part of the traffic since the 2.14.0\n"
        "deploy and the mobile apps retry 500s. Answer 422 instead so they stop\n"
        "retrying while we look for the cause. Not deployed yet.",
        role="post_onset",
    )
    return commits


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        HOME=str(home),
        LC_ALL="C",
        TZ="UTC",
    )
    return env


def _git(repo: Path, args: list[str], env: dict[str, str], author=None, stdin=None) -> str:
    cmd = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    cmd += ["-c", "tag.gpgsign=false", "-c", "core.autocrlf=false"]
    if author is not None:
        cmd += ["-c", f"user.name={author[0]}", "-c", f"user.email={author[1]}"]
    else:
        cmd += ["-c", "user.name=generate_incident", "-c", "user.email=generator@example.com"]
    proc = subprocess.run(cmd + args, cwd=repo, env=env, input=stdin, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def write_repo(repo: Path, commits: list[CommitSpec]) -> list[str]:
    """Create the git repository; returns the sha of every commit, in order."""
    repo.mkdir(parents=True)
    env = _git_env(repo.parent)
    _git(repo, ["init", "-q"], env)
    shas: list[str] = []
    previous: dict[str, str] = {}
    for spec in commits:
        for path in previous.keys() - spec.tree.keys():
            (repo / path).unlink()
        for path, content in spec.tree.items():
            if previous.get(path) != content or not (repo / path).exists():
                target = repo / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content.encode("utf-8"))
        previous = spec.tree
        name, email, tz = spec.author
        date = f"{spec.epoch} {tz}"
        commit_env = dict(
            env,
            GIT_AUTHOR_NAME=name,
            GIT_AUTHOR_EMAIL=email,
            GIT_AUTHOR_DATE=date,
            GIT_COMMITTER_NAME=name,
            GIT_COMMITTER_EMAIL=email,
            GIT_COMMITTER_DATE=date,
        )
        _git(repo, ["add", "-A"], commit_env, spec.author)
        message = spec.subject + ("\n\n" + spec.body if spec.body else "") + "\n"
        _git(repo, ["commit", "-q", "--no-verify", "-F", "-"], commit_env, spec.author, message)
        sha = _git(repo, ["rev-parse", "HEAD"], commit_env)
        shas.append(sha)
        if spec.tag:
            _git(repo, ["tag", spec.tag, sha], commit_env, spec.author)
    return shas


def _line_no(text: str, snippet: str, after: str | None = None) -> int:
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next(i for i, line in enumerate(lines) if after in line)
    for index in range(start, len(lines)):
        if snippet in lines[index]:
            return index + 1
    raise ValueError(f"{snippet!r} not found")


# --------------------------------------------------------------------------------------
# Tracebacks (Python 3.11 style, with the deployed paths)
# --------------------------------------------------------------------------------------


def _frame(path: str, lineno: int, func: str, source: str, expr: str, tilde: int = 0) -> str:
    src = source.strip()
    lines = [f'  File "{path}", line {lineno}, in {func}', f"    {src}"]
    if expr and expr != src:
        col = src.index(expr)
        lines.append("    " + " " * col + "~" * tilde + "^" * (len(expr) - tilde))
    return "\n".join(lines)


def _repo_frame(
    tree: dict[str, str],
    path: str,
    func: str,
    snippet: str,
    expr: str,
    after: str | None = None,
    tilde: int = 0,
) -> tuple[str, int]:
    lineno = _line_no(tree[path], snippet, after)
    source = tree[path].splitlines()[lineno - 1]
    return _frame(RELEASE_ROOT + path, lineno, func, source, expr, tilde), lineno


FLASK_FRAMES = [
    _frame(
        SITE_PACKAGES + "flask/app.py",
        880,
        "full_dispatch_request",
        "rv = self.dispatch_request()",
        "self.dispatch_request()",
    ),
    _frame(
        SITE_PACKAGES + "flask/app.py",
        865,
        "dispatch_request",
        "return self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)  # type: ignore[no-any-return]",
        "self.ensure_sync(self.view_functions[rule.endpoint])(**view_args)",
    ),
]
RQ_FRAMES = [
    _frame(
        SITE_PACKAGES + "rq/job.py",
        1261,
        "perform",
        "self._result = self._execute()",
        "self._execute()",
    ),
    _frame(
        SITE_PACKAGES + "rq/job.py",
        1298,
        "_execute",
        "result = self.func(*self.args, **self.kwargs)",
        "self.func(*self.args, **self.kwargs)",
    ),
]


@dataclass
class Tracebacks:
    api_keyerror: str
    worker_keyerror: str
    worker_declined: str
    culprit_line: int


def build_tracebacks(tree: dict[str, str]) -> Tracebacks:
    pricing, culprit_line = _repo_frame(tree, CULPRIT_FILE, "compute_total", CULPRIT_CODE, 'order["currency"]', tilde=5)
    handler, _ = _repo_frame(
        tree,
        "checkout/api/handlers.py",
        "create_checkout",
        "quote = pricing.compute_total(payload, order.items)",
        "pricing.compute_total(payload, order.items)",
    )
    worker, _ = _repo_frame(
        tree,
        "checkout/worker.py",
        "capture_order",
        "return _gateway.capture(payload, order.items)",
        "_gateway.capture(payload, order.items)",
    )
    gw_price, _ = _repo_frame(
        tree,
        "checkout/payments/gateway.py",
        "capture",
        "quote = pricing.compute_total(order, items)",
        "pricing.compute_total(order, items)",
    )
    gw_raise, _ = _repo_frame(
        tree,
        "checkout/payments/gateway.py",
        "capture",
        'raise PaymentDeclined(f"upstream returned {resp.status_code}")',
        "",
        after="def capture(",
    )
    head = "Traceback (most recent call last):"
    return Tracebacks(
        api_keyerror="\n".join([head, *FLASK_FRAMES, handler, pricing, EXCEPTION]),
        worker_keyerror="\n".join([head, *RQ_FRAMES, worker, gw_price, pricing, EXCEPTION]),
        worker_declined="\n".join([head, *RQ_FRAMES, worker, gw_raise, "checkout.payments.gateway." + SECONDARY]),
        culprit_line=culprit_line,
    )


# --------------------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------------------

CLIENTS = [  # (client version, weight, sends "currency" and "region")
    ("ios/5.3.1", 27, True),
    ("android/5.3.0", 25, True),
    ("web/2026.11.18", 24, True),
    ("ios/4.9.2", 10, False),
    ("android/4.8.7", 8, False),
    ("partner-api/1.4", 6, True),
]
CURRENCIES = [
    ("USD", "US", 60),
    ("EUR", "DE", 14),
    ("EUR", "FR", 8),
    ("EUR", "NL", 6),
    ("GBP", "GB", 12),
]
DISCOUNTS = {"WELCOME10": 10, "FRIENDS15": 15, "BLACKFRIDAY": 25}
TAX_RATES_BP = {"US": 0, "DE": 1900, "FR": 2000, "NL": 2100, "GB": 2000}
FX_RATES = {"USD": Decimal("1"), "EUR": Decimal("0.9412"), "GBP": Decimal("0.7931")}
CACHE_NODES = [("10.0.3.12", 6379), ("10.0.3.13", 6379), ("10.0.3.14", 6380)]
API_UPSTREAM = "10.0.2.15:8080"
LB_IP = "10.0.1.4"
OLD_PIDS = [2811, 2812, 2813, 2814]
NEW_PIDS = [6125, 6126, 6127, 6128]
P_CACHE_TIMEOUT = 0.04  # per checkout request, all day: the red herring
P_CARD_DECLINED = 0.015
P_PSP_502 = 0.09  # per PSP capture call after the deploy: the secondary symptom


def _clock(ms: int) -> tuple[int, int, int, int]:
    hours, rest = divmod(ms, H)
    minutes, rest = divmod(rest, M)
    seconds, millis = divmod(rest, S)
    return hours, minutes, seconds, millis


def ts_api(ms: int) -> str:
    h, m, s, f = _clock(ms)
    return f"{DAY} {h:02d}:{m:02d}:{s:02d},{f:03d}"


def ts_iso(ms: int) -> str:
    h, m, s, f = _clock(ms)
    return f"{DAY}T{h:02d}:{m:02d}:{s:02d}.{f:03d}Z"


def ts_edge(ms: int) -> str:
    h, m, s, _ = _clock(ms)
    return f"{DAY}T{h:02d}:{m:02d}:{s:02d}Z"


class Stream:
    """Timestamped records of one log; a record may span several lines."""

    def __init__(self) -> None:
        self._records: list[tuple[int, int, str]] = []

    def add(self, ms: int, text: str) -> None:
        self._records.append((ms, len(self._records), text))

    def sorted_records(self) -> list[tuple[int, str]]:
        return [(ms, text) for ms, _, text in sorted(self._records)]


@dataclass
class Order:
    order_id: str
    customer_id: str
    client: str
    legacy: bool
    currency: str
    region: str
    discount: str | None
    items: list[tuple[str, int, int]]
    ip: str
    psp_ref: str = ""
    request_id: str = ""


@dataclass
class Facts:
    keyerror_times: list[int] = field(default_factory=list)
    keyerror_by_file: dict[str, int] = field(default_factory=dict)
    secondary_times: list[int] = field(default_factory=list)
    red_herrings: list[tuple[int, str]] = field(default_factory=list)


def _quote(order: Order, deployed: bool) -> tuple[int, str]:
    """The total the service computes for ``order`` (mirrors pricing.py)."""
    if deployed:
        rate = FX_RATES[order.currency]
        subtotal = sum(
            int((Decimal(p) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) * q for _, q, p in order.items
        )
        currency = order.currency
    else:
        subtotal = sum(p * q for _, q, p in order.items)
        currency = "USD"
    if order.discount:
        subtotal -= subtotal * DISCOUNTS[order.discount] // 100
    region = order.region if not order.legacy else "US"
    tax = Decimal(subtotal) * TAX_RATES_BP[region] / 10000
    return subtotal + int(tax.quantize(Decimal(1), rounding=ROUND_HALF_EVEN)), currency


class LogBuilder:
    def __init__(self, seed: int, deployed_short: str, tracebacks: Tracebacks) -> None:
        self.rng = random.Random(seed)
        self.short = deployed_short
        self.tb = tracebacks
        self.api = Stream()
        self.worker = Stream()
        self.edge = Stream()
        self.facts = Facts()
        self.failed_jobs: list[int] = []

    # ---- small random helpers -------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, n: int, alphabet: str = "ABCDEFGHJKMNPQRSTVWXYZ23456789") -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def public_ip(self) -> str:
        net = self.rng.choice(["203.0.113", "198.51.100", "192.0.2", "100.64.12", "100.64.97"])
        return f"{net}.{self.rng.randint(2, 254)}"

    def duration(self, median: float, spread: float = 0.5) -> int:
        return max(1, int(self.rng.lognormvariate(0, spread) * median))

    def arrivals(self, start: int, end: int, per_second: float):
        """Poisson arrivals with a gentle ramp towards the afternoon peak."""
        t = float(start)
        peak = 1.3
        while True:
            t += self.rng.expovariate(per_second * peak) * S
            if t >= end:
                return
            hour = t / H
            load = 0.75 + 0.55 * min(max((hour - 5) / 9, 0.0), 1.0)
            if self.rng.random() * peak < load:
                yield int(t)

    # ---- emitters -------------------------------------------------------------------

    def api_line(self, ms: int, level: str, logger: str, msg: str) -> None:
        self.api.add(ms, f"{ts_api(ms)} {level} [{logger}] {msg}")

    def worker_line(self, ms: int, level: str, logger: str, msg: str, **extra) -> None:
        record = {"ts": ts_iso(ms), "level": level, "logger": logger, "msg": msg}
        record.update(extra)
        self.worker.add(ms, json.dumps(record))

    def edge_line(self, ms: int, level: str, msg: str) -> None:
        self.edge.add(ms, f"{ts_edge(ms)} {level} {msg}")

    def edge_access(
        self,
        ms: int,
        ip: str,
        method: str,
        path: str,
        status: int,
        nbytes: int,
        upstream_ms: int | None,
        request_id: str,
        client: str,
    ) -> None:
        level = "WARN" if status >= 500 else "INFO"
        if upstream_ms is None:
            upstream = 'upstream=- upstream_time=- err="no healthy upstream"'
        else:
            upstream = f"upstream={API_UPSTREAM} upstream_time={upstream_ms / 1000:.3f}"
        self.edge_line(
            ms,
            level,
            f'access client={ip} "{method} {path} HTTP/1.1" status={status} bytes={nbytes} '
            f"{upstream} request_id={request_id} client_version={client}",
        )

    # ---- state of the world ---------------------------------------------------------

    @staticmethod
    def api_serving(ms: int) -> bool:
        return not DEPLOY_BEGIN <= ms < API_BACK

    @staticmethod
    def api_deployed(ms: int) -> bool:
        return ms >= API_BACK

    # ---- traffic --------------------------------------------------------------------

    def health_checks(self) -> None:
        t = LOG_START + 4_211
        while t < LOG_END:
            if GUNICORN_DOWN <= t < GUNICORN_UP + 300:
                self.edge_line(
                    t,
                    "WARN",
                    f"healthcheck upstream=checkout-api/{API_UPSTREAM} failed "
                    'err="dial tcp 10.0.2.15:8080: connect: connection refused"',
                )
            else:
                took = self.rng.choice([0, 0, 0, 1, 1, 2])
                self.api_line(
                    t + 1,
                    "DEBUG",
                    "checkout.api.access",
                    f"GET /healthz 200 {took}ms request_id={self.uuid()} client_ip={LB_IP}",
                )
                self.edge_line(
                    t,
                    "INFO",
                    f"healthcheck upstream=checkout-api/{API_UPSTREAM} status=200 time={took / 1000 + 0.0004:.4f}",
                )
            t += 15 * S + self.rng.randint(-40, 40)

    def carts(self) -> None:
        for t in self.arrivals(LOG_START, LOG_END, 0.18):
            rid = self.uuid()
            ip = self.public_ip()
            client = self.pick_client()[0]
            path = f"/v1/carts/crt_{self.token(10, '0123456789abcdef')}"
            if not self.api_serving(t):
                self.edge_access(t, ip, "GET", path, 503, 0, None, rid, client)
                continue
            status = 404 if self.rng.random() < 0.02 else 200
            took = self.duration(18)
            level = "WARNING" if took > 1000 else "INFO"
            self.api_line(
                t + took,
                level,
                "checkout.api.access",
                f"GET {path} {status} {took}ms request_id={rid} client_ip={ip}",
            )
            nbytes = 64 if status == 404 else self.rng.randint(800, 4200)
            self.edge_access(t + took + 1, ip, "GET", path, status, nbytes, took + 1, rid, client)

    def pick_client(self) -> tuple[str, bool]:
        total = sum(w for _, w, _ in CLIENTS)
        roll = self.rng.uniform(0, total)
        for name, weight, modern in CLIENTS:
            roll -= weight
            if roll <= 0:
                return name, not modern
        return CLIENTS[-1][0], not CLIENTS[-1][2]

    def new_order(self) -> Order:
        client, legacy = self.pick_client()
        total = sum(w for *_, w in CURRENCIES)
        roll = self.rng.uniform(0, total)
        currency, region = "USD", "US"
        for cur, reg, weight in CURRENCIES:
            roll -= weight
            if roll <= 0:
                currency, region = cur, reg
                break
        if legacy:
            currency, region = "", ""
        n_items = self.rng.choice([1, 1, 1, 2, 2, 3, 4])
        items = [
            (
                f"SKU-{self.rng.randint(1000, 9899)}",
                self.rng.choice([1, 1, 1, 2, 3]),
                self.rng.choice([499, 899, 1250, 1999, 2499, 3999, 5499, 8999]),
            )
            for _ in range(n_items)
        ]
        discount = None
        if self.rng.random() < 0.14:
            discount = self.rng.choice(sorted(DISCOUNTS))
        return Order(
            order_id=f"ord_{self.token(10)}",
            customer_id=f"cus_{self.token(8)}",
            client=client,
            legacy=legacy,
            currency=currency,
            region=region,
            discount=discount,
            items=items,
            ip=self.public_ip(),
        )

    def checkouts(self) -> None:
        # Orders from 05:00 are not in the logs but their captures are.
        for t in self.arrivals(5 * H, LOG_END, 0.15):
            order = self.new_order()
            if t < LOG_START:
                self.schedule_capture(order, t)
                continue
            attempt_at = t
            retries = self.rng.choice([0, 1, 2, 2, 2])
            for attempt in range(retries + 1):
                ok = self.checkout_attempt(order, attempt_at)
                if ok is not False:
                    break
                if attempt < retries:
                    attempt_at += self.rng.randint(1_800, 4_500) * (attempt + 1) * 2

    def checkout_attempt(self, order: Order, t: int) -> bool | None:
        """One POST /v1/checkout. True: authorized, None: declined, False: 5xx."""
        rng = self.rng
        rid = self.uuid()
        path = "/v1/checkout"
        if not self.api_serving(t):
            self.edge_access(t, order.ip, "POST", path, 503, 0, None, rid, order.client)
            return False
        deployed = self.api_deployed(t)
        now = t + rng.randint(1, 4)
        if rng.random() < P_CACHE_TIMEOUT:
            host, port = rng.choice(CACHE_NODES)
            waited = 2000 + int(rng.expovariate(1 / 12))
            now += waited
            message = f"{RED_HERRING} {host}:{port} after {waited}ms"
            self.api_line(now, "ERROR", "checkout.cache", message)
            self.facts.red_herrings.append((now, message))
        n_items = len(order.items)
        hits = sum(1 for _ in range(n_items) if rng.random() < 0.85)
        now += self.duration(6)
        self.api_line(
            now,
            "DEBUG",
            "checkout.api.handlers",
            f"priced {n_items} items (cache hits={hits} misses={n_items - hits})",
        )
        count = sum(q for _, q, _ in order.items)
        now += 1
        self.api_line(
            now,
            "INFO",
            "checkout.api.handlers",
            f"checkout started request_id={rid} order_id={order.order_id} items={count} client={order.client}",
        )
        if deployed and order.legacy:
            now += rng.randint(1, 3)
            self.api_line(
                now,
                "ERROR",
                "checkout.app",
                f"Unhandled exception on POST {path} (request_id={rid})\n{self.tb.api_keyerror}",
            )
            self.facts.keyerror_times.append(now)
            self.facts.keyerror_by_file["checkout-api"] = self.facts.keyerror_by_file.get("checkout-api", 0) + 1
            now += rng.randint(1, 4)
            took = now - t
            self.api_line(
                now,
                "WARNING" if took > 1000 else "INFO",
                "checkout.api.access",
                f"POST {path} 500 {took}ms request_id={rid} client_ip={order.ip}",
            )
            self.edge_access(now + 1, order.ip, "POST", path, 500, 61, took + 1, rid, order.client)
            return False
        if order.discount:
            pct = DISCOUNTS[order.discount]
            now += 1
            if deployed:
                msg = f"discount applied code={order.discount} pct={pct}"
            else:
                msg = f"Discount applied {order.discount.lower()} ({pct}%)"
            self.api_line(now, "INFO", "checkout.payments.pricing", msg)
        amount, currency = _quote(order, deployed)
        now += self.duration(140, 0.4)
        if rng.random() < P_CARD_DECLINED:
            reason = rng.choice(["do_not_honor", "insufficient_funds", "expired_card"])
            self.api_line(
                now,
                "WARNING",
                "checkout.api.handlers",
                f"payment declined order_id={order.order_id}: card declined ({reason})",
            )
            status, result = 402, None
        else:
            order.psp_ref = f"pi_{self.token(14, 'abcdefghijklmnopqrstuvwxyz0123456789')}"
            order.request_id = rid
            self.api_line(
                now,
                "INFO",
                "checkout.payments.gateway",
                f"payment authorized order_id={order.order_id} amount={amount} "
                f"currency={currency} psp_ref={order.psp_ref}",
            )
            status, result = 201, True
        now += rng.randint(1, 3)
        took = now - t
        self.api_line(
            now,
            "WARNING" if took > 1000 else "INFO",
            "checkout.api.access",
            f"POST {path} {status} {took}ms request_id={rid} client_ip={order.ip}",
        )
        nbytes = 140 if status == 402 else rng.randint(310, 420)
        self.edge_access(now + 1, order.ip, "POST", path, status, nbytes, took + 1, rid, order.client)
        if result:
            self.schedule_capture(order, t)
        return result

    # ---- payments worker ------------------------------------------------------------

    def schedule_capture(self, order: Order, created: int) -> None:
        if not order.psp_ref:
            order.psp_ref = f"pi_{self.token(14, 'abcdefghijklmnopqrstuvwxyz0123456789')}"
            order.request_id = self.uuid()
        at = created + self.rng.randint(15 * M, 5 * H)
        if at < LOG_START or at >= LOG_END:
            return
        if WORKER_DOWN <= at < WORKER_BACK:
            at = WORKER_BACK + self.rng.randint(20, 900)
        self.capture_job(order, at)

    def capture_job(self, order: Order, at: int) -> None:
        rng = self.rng
        job_id = self.uuid()
        ids = {"request_id": order.request_id, "job_id": job_id}
        for attempt in range(1, 4):
            if at >= LOG_END:
                return
            deployed = at >= WORKER_BACK
            self.worker_line(
                at,
                "info",
                "rq.worker",
                f"payments: checkout.worker.capture_order(order_id='{order.order_id}') ({job_id})",
                **ids,
            )
            now = at + rng.randint(2, 9)
            failure = ""
            if deployed and order.legacy:
                failure = self.tb.worker_keyerror
                self.facts.keyerror_times.append(now)
                self.facts.keyerror_by_file["payments-worker"] = (
                    self.facts.keyerror_by_file.get("payments-worker", 0) + 1
                )
            elif deployed and rng.random() < P_PSP_502:
                for call in (1, 2):
                    now += self.duration(240, 0.3) + 500 * call
                    self.worker_line(
                        now,
                        "warning",
                        "checkout.payments.gateway",
                        f"capture attempt {call}/3 for order_id={order.order_id} got 502 from PSP, retrying",
                        **ids,
                    )
                now += self.duration(240, 0.3)
                failure = self.tb.worker_declined
                self.facts.secondary_times.append(now)
            if not failure:
                amount, currency = _quote(order, deployed)
                now += self.duration(260, 0.35)
                self.worker_line(
                    now,
                    "info",
                    "checkout.payments.gateway",
                    f"payment captured order_id={order.order_id} amount={amount} currency={currency}",
                    **ids,
                )
                return
            self.worker_line(
                now,
                "error",
                "rq.worker",
                f"[Job {job_id}]: exception raised while executing (checkout.worker.capture_order)",
                exception=failure,
                **ids,
            )
            if attempt == 3:
                self.worker_line(
                    now + 3,
                    "warning",
                    "rq.worker",
                    f"Job {job_id} failed after 3 attempts; moved to FailedJobRegistry",
                    **ids,
                )
                self.failed_jobs.append(now + 3)
                return
            delay = 60 if attempt == 1 else 300
            self.worker_line(
                now + 2,
                "info",
                "rq.worker",
                f"Job {job_id}: retry {attempt}/2 scheduled in {delay}s",
                **ids,
            )
            at = now + delay * S + rng.randint(100, 1200)
            if WORKER_DOWN <= at < WORKER_BACK:
                at = WORKER_BACK + rng.randint(20, 900)

    def worker_metrics(self) -> None:
        self.failed_jobs.sort()
        t = LOG_START + 31_004
        while t < LOG_END:
            if not WORKER_DOWN <= t < WORKER_BACK:
                failed = bisect_right(self.failed_jobs, t)
                self.worker_line(
                    t,
                    "debug",
                    "checkout.worker.metrics",
                    f"queue=payments depth={self.rng.randint(0, 4)} scheduled={self.rng.randint(0, 3)} failed={failed}",
                )
            t += M + self.rng.randint(-25, 25)

    # ---- background noise -----------------------------------------------------------

    def noise(self) -> None:
        rng = self.rng
        for t in self.arrivals(LOG_START, LOG_END, 1 / 240):
            ip = self.public_ip()
            self.edge_line(
                t,
                "WARN",
                f"tls: handshake error from {ip}:{rng.randint(1024, 65535)}: "
                + rng.choice(
                    [
                        "remote error: tls: bad certificate",
                        "EOF",
                        "tls: client offered only unsupported versions: [301]",
                    ]
                ),
            )
        for t in self.arrivals(LOG_START, LOG_END, 1 / 200):
            self.edge_line(
                t,
                "WARN",
                f"client {self.public_ip()} closed connection before response "
                f'"GET /v1/carts/crt_{self.token(10, "0123456789abcdef")} HTTP/1.1"',
            )
        for t in self.arrivals(LOG_START, LOG_END, 1 / 420):
            self.edge_line(
                t,
                "WARN",
                f"rate limit exceeded client={self.public_ip()} zone=api limit=20r/s status=429",
            )
        for hour in range(9, 15):
            t = hour * H + 17 * M + rng.randint(0, 59_999)
            self.edge_line(
                t,
                "INFO",
                f"config reloaded routes=14 upstreams=6 certs=3 took={rng.randint(8, 30)}ms",
            )
        t = LOG_START + 2 * M + 7_310
        while t < LOG_END:
            if self.api_serving(t):
                self.api_line(
                    t,
                    "INFO",
                    "checkout.cache",
                    f"price cache stats nodes=3 keys={rng.randint(4100, 4400)} "
                    f"hit_ratio={rng.uniform(0.82, 0.88):.2f} evictions={rng.randint(0, 40)}",
                )
            t += 5 * M + rng.randint(-500, 500)

    def deploy(self) -> None:
        short = self.short
        target = f"/srv/checkout/releases/{VERSION}"
        t = DEPLOY_BEGIN
        self.api_line(
            t,
            "INFO",
            "deploybot",
            f"Deploying checkout version {VERSION} (commit {short}) to {target} "
            "(pipeline 48213, triggered by priya.raman)",
        )
        self.edge_line(
            t + 40,
            "INFO",
            f"upstream checkout-api/{API_UPSTREAM} set to draining by deploybot",
        )
        self.api_line(t + 412, "INFO", "gunicorn.error", "Handling signal: term")
        for i, pid in enumerate(OLD_PIDS):
            self.api_line(t + 1_020 + 37 * i, "INFO", "gunicorn.error", f"Worker exiting (pid: {pid})")
        self.api_line(GUNICORN_DOWN, "INFO", "gunicorn.error", "Shutting down: Master")
        up = GUNICORN_UP
        self.api_line(up, "INFO", "gunicorn.error", "Starting gunicorn 22.0.0")
        self.api_line(up + 2, "INFO", "gunicorn.error", "Listening at: http://0.0.0.0:8080 (6120)")
        self.api_line(up + 2, "INFO", "gunicorn.error", "Using worker: sync")
        for i, pid in enumerate(NEW_PIDS):
            self.api_line(up + 9 + 5 * i, "INFO", "gunicorn.error", f"Booting worker with pid: {pid}")
        for i in range(len(NEW_PIDS)):
            self.api_line(
                up + 1_380 + 61 * i,
                "INFO",
                "checkout.app",
                f"Starting checkout {VERSION} (commit {short})",
            )
        self.api_line(
            DEPLOY_AT,
            "INFO",
            "deploybot",
            f"Deployed checkout version {VERSION} (commit {short}) to {target}",
        )
        self.edge_line(
            API_BACK,
            "INFO",
            f"upstream checkout-api/{API_UPSTREAM} enabled by deploybot",
        )
        self.worker_line(
            WORKER_DOWN - 4,
            "info",
            "deploybot",
            f"Deploying checkout version {VERSION} (commit {short}) to {target}; pausing queue payments",
        )
        self.worker_line(
            WORKER_DOWN,
            "info",
            "rq.worker",
            "Worker rq:worker:payments-worker-1: warm shut down requested",
        )
        self.worker_line(
            WORKER_DOWN + 1_204,
            "info",
            "rq.worker",
            "Unsubscribing from channel rq:pubsub:payments-worker-1",
        )
        self.worker_line(
            WORKER_MARK - 1_170,
            "info",
            "rq.worker",
            "Worker rq:worker:payments-worker-1 started with PID 6210, version 1.16.2",
        )
        self.worker_line(WORKER_MARK - 1_160, "info", "rq.worker", "*** Listening on payments...")
        self.worker_line(
            WORKER_MARK,
            "info",
            "deploybot",
            f"Deployed checkout version {VERSION} (commit {short}) to {target}",
        )
        self.worker_line(
            WORKER_BACK - 5,
            "info",
            "deploybot",
            f"Resumed queue payments (paused for {(WORKER_BACK - WORKER_DOWN + 1) / S:.1f}s)",
        )

    def build(self) -> dict[str, list[tuple[int, str]]]:
        self.deploy()
        self.health_checks()
        self.carts()
        self.checkouts()
        self.worker_metrics()
        self.noise()
        return {
            "checkout-api": self.api.sorted_records(),
            "payments-worker": self.worker.sorted_records(),
            "edge-proxy": self.edge.sorted_records(),
        }


def write_logs(logs_dir: Path, records: dict[str, list[tuple[int, str]]]) -> dict[str, str]:
    """Write the log files; returns {relative path: text} (decompressed)."""
    logs_dir.mkdir(parents=True)
    api = records["checkout-api"]
    texts = {
        "logs/checkout-api.log.1.gz": "".join(t + "\n" for ms, t in api if ms < ROTATE_AT),
        "logs/checkout-api.log": "".join(t + "\n" for ms, t in api if ms >= ROTATE_AT),
        "logs/payments-worker.jsonl": "".join(t + "\n" for _, t in records["payments-worker"]),
        "logs/edge-proxy.log": "".join(t + "\n" for _, t in records["edge-proxy"]),
    }
    root = logs_dir.parent
    for rel, text in texts.items():
        data = text.encode("utf-8")
        if rel.endswith(".gz"):
            data = gzip.compress(data, compresslevel=6, mtime=0)
        (root / rel).write_bytes(data)
    return texts


# --------------------------------------------------------------------------------------
# Runbooks
# --------------------------------------------------------------------------------------

RUNBOOKS = {
    "checkout-payments.md": """\
# Runbook: checkout payments (checkout-api, payments-worker)

Owner: #team-checkout. Pager: `checkout-primary`. Dashboards: *Checkout / Overview*,
*Payments / Captures*.

## Symptoms

- Rising HTTP 5xx for `POST /v1/checkout` at the edge proxy (`status=500` in
  `edge-proxy.log`).
- `Unhandled exception on POST /v1/checkout` records with a traceback in
  `checkout-api.log`.
- Capture jobs failing in `payments-worker` (`exception raised while executing
  (checkout.worker.capture_order)`) and `failed=` growing in the queue metrics.

## Triage

1. Find when the errors started: count error records per minute over the last few
   hours and note the first minute that is clearly above the baseline.
2. Look for a deploy shortly before that: search the service logs for
   `Deployed checkout version`. An error that starts within minutes of a deploy is
   most likely caused by that release.
3. Group errors by exception type and innermost frame. Errors that were already
   present at a steady rate before the start are background; see
   [cache-timeouts.md](cache-timeouts.md) for the usual one.
4. Map the innermost frame to the repository. Deployed paths look like
   `/srv/checkout/releases/<version>/checkout/...`; drop everything up to and including
   the version directory to get the repository path. Frames under `site-packages`
   belong to third-party libraries.
5. Read the code **as deployed**: use the commit from the deploy marker, not `main`
   (`git show <sha>:<path>`), because `main` may already contain later changes.
6. Find the change: `git log <previous tag>..<deployed sha> -- <path>` lists the
   candidate commits, `git blame -L <line>,<line> <deployed sha> -- <path>` names the
   one that last touched the failing line.

## KeyError or missing fields in payloads

Old mobile clients (iOS 4.x, Android 4.x) omit optional fields such as `region`,
`currency` and `discount_code`. Server code must read them with a default
(`payload.get(...)`). A `KeyError` for a payload field right after a deploy almost
always means new code started to require a field that not every client sends.

- Confirm: join the failing `request_id`s with their `checkout started ... client=`
  lines. Failures confined to a few client versions mean a payload-shape problem.
- Mitigate: roll back (below). Asking customers to upgrade is not a mitigation.
- Fix forward: default the field, add a test with a legacy payload, release, then
  requeue failed capture jobs.

## PSP errors (`PaymentDeclined: upstream returned 5xx`)

- The gateway retries a capture three times with backoff and rq retries the job
  after 60 s and 300 s, so isolated 502s heal on their own.
- Check <https://status.psp.example.com> before escalating to the PSP.
- `card declined (...)` warnings are customer-side and never page.

## Rollback

1. `deployctl releases checkout` lists the installed releases; the live one is
   marked `*`.
2. `deployctl rollback checkout --to <previous version>` switches the `current`
   symlink and restarts gunicorn and the rq workers (about 30 s, traffic is drained
   first).
3. Watch `POST /v1/checkout` 5xx at the edge return to baseline within 2 minutes.
4. Requeue failed captures after the rollback, not before:
   `rq requeue --queue payments --all`.
5. Post the release, the start time and the rollback time in #incidents.

## Escalation

Page `payments-secondary` if checkout 5xx stay above 1% for 15 minutes after a
rollback, or if captures fail for more than 30 minutes.
""",
    "cache-timeouts.md": """\
# Runbook: price cache timeouts

The price cache is three Redis nodes (`10.0.3.12:6379`, `10.0.3.13:6379`,
`10.0.3.14:6380`) in front of the catalog service. A cache read that takes longer
than `CHECKOUT_CACHE_TIMEOUT_MS` (default 2000) is logged by `checkout.cache` as

    ERROR [checkout.cache] Timeout connecting to cache at <host>:<port> after <n>ms

and treated as a miss: the price comes from the catalog and the request is about
two seconds slower. Nothing fails.

## Known background

Since the move to Redis (2.13.0) every checkout-api host logs a handful of these
per hour, spread over all nodes (ticket CHK-1870, infra suspects the noisy
neighbour on the hypervisor). They are **not** an incident on their own and they
are not related to checkout 5xx: a timeout never turns into an exception.

## When to act

- More than 5 timeouts per minute for 10 minutes, or
- `hit_ratio` in `price cache stats` below 0.6, or
- checkout p95 latency SLO (800 ms) breached.

## Steps

1. `redis-cli -h <host> -p <port> --latency-history` from a checkout host.
2. If a single node is slow, fail it out: `deployctl config checkout set
   CHECKOUT_CACHE_NODES=<the other two>` (no restart needed).
3. Lower the timeout to shed latency: `deployctl config checkout set
   CHECKOUT_CACHE_TIMEOUT_MS=500`.
4. Hand over to #infra-redis with the node, the time window and the latency history.
""",
    "deploys.md": """\
# Runbook: deploys and rollbacks of checkout

## How a deploy works

1. A release is a tag `vX.Y.Z` on `main`. The release pipeline builds a wheel and
   deploybot installs it into `/srv/checkout/releases/<version>/`.
2. deploybot drains `checkout-api` at the edge proxy, restarts gunicorn with the new
   release, then logs

       INFO [deploybot] Deployed checkout version <version> (commit <short sha>) to ...

   and enables the upstream at the edge again. `payments-worker` gets a warm
   shutdown and restarts on the same release a few seconds later.
3. The traffic gap is about 10 s; the edge answers `503 no healthy upstream` during
   it. Those 503s are expected and are not an incident.

## Reading a release

- The commit in the deploy marker is the code that runs. `main` may be ahead of it.
- Tracebacks show deployed paths (`/srv/checkout/releases/<version>/checkout/...`);
  line numbers match the repository at the deployed commit.
- `git log --oneline v<previous>..<deployed sha>` lists what the release changed.

## Freeze

No deploys on Fridays after 12:00 UTC or during sales events without approval from
the checkout on-call lead.

## Rollback

`deployctl rollback checkout --to <version>`. See
[checkout-payments.md](checkout-payments.md#rollback) for the checks afterwards.
Roll back first, investigate second, when a deploy is the prime suspect.
""",
    "edge-proxy.md": """\
# Runbook: reading edge-proxy logs

`edge-proxy.log` has one line per request routed to checkout-api:

    <time> INFO access client=<ip> "<method> <path> HTTP/1.1" status=<code> bytes=<n>
        upstream=<addr> upstream_time=<s> request_id=<uuid> client_version=<app>

Lines with `status>=500` are logged at `WARN`. The `request_id` is the one
checkout-api logs, so the two files can be joined.

## Usual noise

- `tls: handshake error` from scanners and old clients.
- `client ... closed connection before response` when users navigate away.
- `rate limit exceeded ... status=429` from scrapers.
- `503 ... no healthy upstream` for about 10 s while a deploy drains checkout-api.

## What to look at in an incident

1. 5xx per minute for `POST /v1/checkout` and `GET /v1/carts/*` separately.
2. Whether the 5xx are concentrated on some `client_version` values.
3. Whether `upstream_time` is high (slow upstream) or low (fast failure, usually an
   exception in the service).
""",
}


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def _count_lines(text: str) -> int:
    return text.count("\n")


def generate(out: Path, seed: int) -> dict:
    """Build the incident into ``out`` (which must not exist); returns expected.json."""
    commits = build_history()
    by_role = {c.role: i for i, c in enumerate(commits) if c.role}
    deployed_tree = commits[by_role["deployed"]].tree
    culprit_tree = commits[by_role["culprit"]].tree

    out.mkdir(parents=True)
    shas = write_repo(out / "repo", commits)
    culprit_sha = shas[by_role["culprit"]]
    deployed_sha = shas[by_role["deployed"]]

    tracebacks = build_tracebacks(deployed_tree)
    line = tracebacks.culprit_line
    if _line_no(culprit_tree[CULPRIT_FILE], CULPRIT_CODE) != line:
        raise AssertionError("the decoy commit must not move the culprit line")

    builder = LogBuilder(seed, deployed_sha[:7], tracebacks)
    records = builder.build()
    texts = write_logs(out / "logs", records)

    runbooks = out / "runbooks"
    runbooks.mkdir()
    for name, text in RUNBOOKS.items():
        (runbooks / name).write_bytes(text.encode("utf-8"))

    facts = builder.facts
    new_count = len(facts.keyerror_times)
    counted = sum(text.count(EXCEPTION) for text in texts.values())
    secondary = sum(text.count(SECONDARY) for text in texts.values())
    if counted != new_count or secondary != len(facts.secondary_times):
        raise AssertionError("log texts disagree with the generated records")
    if not 0 < secondary < new_count:
        raise AssertionError("the secondary symptom must be rarer than the new error")
    onset = min(facts.keyerror_times)
    if not onset > DEPLOY_AT > WORKER_MARK:
        raise AssertionError("the new error must start after the deploy markers")

    lines_by_file = {rel: _count_lines(text) for rel, text in texts.items()}
    expected = {
        "service": SERVICE,
        "seed": seed,
        "culprit_sha": culprit_sha,
        "culprit_short": culprit_sha[:7],
        "culprit_subject": commits[by_role["culprit"]].subject,
        "culprit_author": commits[by_role["culprit"]].author[0],
        "decoy_sha": shas[by_role["decoy"]],
        "deployed_sha": deployed_sha,
        "deployed_version": VERSION,
        "post_onset_sha": shas[by_role["post_onset"]],
        "file": CULPRIT_FILE,
        "line": line,
        "function": "compute_total",
        "code": CULPRIT_CODE,
        "deployed_path": RELEASE_ROOT + CULPRIT_FILE,
        "exception": EXCEPTION,
        "new_error_count": new_count,
        "new_error_count_by_file": {
            "logs/checkout-api.log": facts.keyerror_by_file.get("checkout-api", 0),
            "logs/payments-worker.jsonl": facts.keyerror_by_file.get("payments-worker", 0),
        },
        "onset": ts_iso(onset),
        "deploy_time": ts_iso(DEPLOY_AT),
        "preexisting_error": facts.red_herrings[0][1],
        "preexisting_count": len(facts.red_herrings),
        "secondary_error": SECONDARY,
        "secondary_count": secondary,
        "total_lines": sum(lines_by_file.values()),
        "log_files": list(texts),
        "lines_by_file": lines_by_file,
        "runbooks": [f"runbooks/{name}" for name in RUNBOOKS],
    }
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n", encoding="utf-8")
    return expected


def _looks_generated(path: Path) -> bool:
    if not any(path.iterdir()):
        return True
    try:
        data = json.loads((path / "expected.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("service") == SERVICE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a deterministic incident (git repo, logs, runbooks) for the checkout service.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed for the log noise (default: {DEFAULT_SEED})",
    )
    parser.add_argument("--force", action="store_true", help="delete and rebuild DIR if it already exists")
    args = parser.parse_args(argv)

    if shutil.which("git") is None:
        print("error: git is required but was not found on PATH", file=sys.stderr)
        return 2
    out: Path = args.out.expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not args.force:
            print(
                f"error: {out} already exists; pass --force to delete and rebuild it",
                file=sys.stderr,
            )
            return 1
        if not out.is_dir() or out.is_symlink() or not _looks_generated(out):
            print(
                f"error: refusing to delete {out}: it does not look like output of this "
                "script (no expected.json for the checkout service); remove it yourself",
                file=sys.stderr,
            )
            return 1

    started = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        expected = generate(staging / "incident", args.seed)
        if out.exists():
            shutil.rmtree(out)
        (staging / "incident").rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    elapsed = time.monotonic() - started

    print(f"Generated the checkout incident in {out} (seed {args.seed}, {elapsed:.1f}s)")
    print("  repo/       13 commits on main; tags v2.13.0, v2.14.0")
    for label, key in (
        ("culprit", "culprit_sha"),
        ("decoy", "decoy_sha"),
        ("deployed", "deployed_sha"),
        ("post-onset", "post_onset_sha"),
    ):
        print(f"    {label:<11}{expected[key][:12]}")
    print(f"  logs/       {expected['total_lines']:,} lines")
    for rel, count in expected["lines_by_file"].items():
        print(f"    {rel[5:]:<27}{count:>7,}")
    print(f"  deploy      {expected['deploy_time']}  {VERSION} ({expected['deployed_sha'][:7]})")
    print(
        f"  new error   {expected['exception']} x{expected['new_error_count']} from "
        f"{expected['onset']} at {expected['file']}:{expected['line']}"
    )
    print(f"  background  {RED_HERRING} ... x{expected['preexisting_count']}")
    print(f"  secondary   {SECONDARY} x{expected['secondary_count']}")
    print(f"  runbooks/   {len(RUNBOOKS)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
