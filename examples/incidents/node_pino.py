"""Node/TypeScript: an Express API compiled by tsc (src/ -> dist/), logging with pino.

Stack frames point at the compiled ``/app/dist/**/*.js`` (no source maps deployed); the
repository holds only ``src/**/*.ts`` and a tsconfig mapping rootDir src to outDir dist,
so mapping a frame means knowing that layout, and the JS line is not the TS line. The
dist/ texts below are what tsc 5 emits for the deployed sources (module commonjs,
target es2022); the V8 ``Error.stack`` shape was captured from Node.js 20.20.2.
Red herring: a recommendations client erroring all day. Decoy: later commit, same file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    CHEN,
    DANA,
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
    js_stack,
    line_no,
    write_runbooks,
)

CASE = "node_pino"
SERVICE = "cart"
DAY = "2026-11-25"
APP = "/app/"

PRICING_TS_V1 = """\
import { COUPONS } from "./coupons";

export interface Cart {
  id: string;
  subtotalCents: number;
  coupon?: string;
}

export function applyCoupon(cart: Cart, code: string): Cart {
  const pct = COUPONS[code]?.percentOff ?? 0;
  const discount = Math.round((cart.subtotalCents * pct) / 100);
  return { ...cart, coupon: code, subtotalCents: cart.subtotalCents - discount };
}
"""

# What tsc emits for the culprit version of pricing.ts (interfaces erased).
PRICING_JS = """\
"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.applyCoupon = applyCoupon;
const coupons_1 = require("./coupons");
function applyCoupon(cart, code) {
    const pct = coupons_1.COUPONS[code.toUpperCase()].percentOff;
    const discount = Math.round((cart.subtotalCents * pct) / 100);
    return { ...cart, coupon: code, subtotalCents: cart.subtotalCents - discount };
}
"""

COUPONS_TS = """\
export const COUPONS: Record<string, { percentOff: number }> = {
  WELCOME10: { percentOff: 10 },
  WINTER25: { percentOff: 25 },
};
"""

CART_TS = """\
import { Router, Request, Response } from "express";
import { applyCoupon, Cart } from "../lib/pricing";
import { loadCart, saveCart } from "../lib/store";

export const cartRouter = Router();

type CouponBody = { code: string };

cartRouter.post("/v1/carts/:id/coupon", async (req: Request, res: Response) => {
  const cart: Cart = await loadCart(req.params.id);
  const body = req.body as CouponBody;
  const updated = applyCoupon(cart, body.code);
  await saveCart(updated);
  res.json(updated);
});
"""

CART_JS = """\
"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.cartRouter = void 0;
const express_1 = require("express");
const pricing_1 = require("../lib/pricing");
const store_1 = require("../lib/store");
exports.cartRouter = (0, express_1.Router)();
exports.cartRouter.post("/v1/carts/:id/coupon", async (req, res) => {
    const cart = await (0, store_1.loadCart)(req.params.id);
    const body = req.body;
    const updated = (0, pricing_1.applyCoupon)(cart, body.code);
    await (0, store_1.saveCart)(updated);
    res.json(updated);
});
"""

TSCONFIG = """\
{
  "compilerOptions": {
    "target": "es2022",
    "module": "commonjs",
    "rootDir": "src",
    "outDir": "dist",
    "strict": true,
    "esModuleInterop": true,
    "sourceMap": false
  },
  "include": ["src"]
}
"""

PACKAGE = """\
{
  "name": "cart",
  "version": "5.0.0",
  "private": true,
  "main": "dist/server.js",
  "scripts": { "build": "tsc -p .", "start": "node dist/server.js" },
  "dependencies": { "express": "4.21.1", "pino": "9.5.0", "pino-http": "10.3.0" },
  "devDependencies": { "typescript": "5.6.3", "@types/express": "4.17.21" }
}
"""

EXPRESS = [  # express 4.21 frames under node_modules
    ("Layer.handle [as handle_request]", APP + "node_modules/express/lib/router/layer.js", 95, 5),
    ("next", APP + "node_modules/express/lib/router/route.js", 149, 13),
    ("Route.dispatch", APP + "node_modules/express/lib/router/route.js", 119, 3),
    ("Layer.handle [as handle_request]", APP + "node_modules/express/lib/router/layer.js", 95, 5),
    (None, APP + "node_modules/express/lib/router/index.js", 284, 15),
    ("Function.process_params", APP + "node_modules/express/lib/router/index.js", 346, 12),
    ("next", APP + "node_modules/express/lib/router/index.js", 280, 10),
]

RUNBOOKS = {
    "cart.md": """\
# Runbook: cart API (Node, TypeScript)

- Stack traces point at `dist/**/*.js` (compiled output, not in git); the source is the
  same path under `src/` with `.ts` (see tsconfig.json `rootDir`/`outDir`). Line numbers
  differ between the two: open the compiled file from the release artifact or rebuild.
- `recommendations unavailable` errors: the recs service sheds load every afternoon;
  the cart page renders without them. Known.
""",
}


def history() -> History:
    h = History()
    h.commit(
        DANA,
        "2026-10-10T10:00:00",
        "cart: coupons endpoint",
        files={
            "README.md": "# cart\n\nCart API (Express, TypeScript).\n",
            ".gitignore": "node_modules/\ndist/\n",
            "package.json": PACKAGE,
            "tsconfig.json": TSCONFIG,
            "src/lib/pricing.ts": PRICING_TS_V1,
            "src/lib/coupons.ts": COUPONS_TS,
            "src/routes/cart.ts": CART_TS,
        },
        tag="v4.9.0",
    )
    h.commit(
        CHEN,
        "2026-11-24T16:20:00",
        "pricing: coupon codes are case-insensitive (#402)",
        role="culprit",
        edits=[
            (
                "src/lib/pricing.ts",
                "const pct = COUPONS[code]?.percentOff ?? 0;",
                "const pct = COUPONS[code.toUpperCase()].percentOff;",
            )
        ],  # fmt: skip
    )
    h.commit(
        ALICE,
        "2026-11-25T09:00:00",
        "Release 5.0.0",
        role="deployed",
        tag="v5.0.0",
        edits=[("README.md", "TypeScript).\n", "TypeScript). Release 5.0.0.\n")],
    )
    h.commit(
        CHEN,
        "2026-11-25T14:45:00",
        "pricing: round discounts half-up explicitly (#405)",
        role="decoy",
        edits=[("src/lib/pricing.ts", "const discount = Math.round(", "const discount = Math.floor(0.5 + ")],
    )
    return h


def _stack() -> tuple[str, int]:
    js_line = line_no(PRICING_JS, "const pct = coupons_1.COUPONS[")
    cart_line = line_no(CART_JS, "(0, pricing_1.applyCoupon)(cart, body.code)")
    frames = [
        ("applyCoupon", APP + "dist/lib/pricing.js", js_line, 62),
        (None, APP + "dist/routes/cart.js", cart_line, 53),
        *EXPRESS,
    ]
    return js_stack("TypeError: Cannot read properties of undefined (reading 'percentOff')", frames), js_line


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    ts_line = line_no(tree["src/lib/pricing.ts"], "const pct = COUPONS[code.toUpperCase()].percentOff;")
    stack, _ = _stack()
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "cart.log"
    start, end, deploy = 10 * H, 16 * H, 13 * H + 31 * M + 2 * S + 777
    host = "cart-6f9c7b5d4-x2k4q"

    def pino(ms: int, level: int, msg: str, **fields: Any) -> str:
        obj = {"level": level, "time": clock.epoch_ms(ms), "pid": 1, "hostname": host, **fields, "msg": msg}
        return json.dumps(obj, separators=(",", ":"))

    def completed(r: random.Random, ms: int) -> tuple[str, str]:
        req = {
            "id": r.randrange(1, 10**7),
            "method": r.choice(["GET", "POST"]),
            "url": f"/v1/carts/c_{r.getrandbits(32):08x}",
        }
        return name, pino(
            ms, 30, "request completed", req=req, res={"statusCode": 200}, responseTime=r.randrange(2, 180)
        )

    def debug(r: random.Random, ms: int) -> tuple[str, str]:
        return name, pino(ms, 20, "cache refresh", keys=r.randrange(100, 900))

    add_noise(logs, rnd, start, end, 105, [(9, completed), (1, debug)])
    recs_stack = js_stack("FetchError: request to http://recs.internal/v2/for-cart failed, reason: socket hang up", [
        ("ClientRequest.<anonymous>", APP + "node_modules/node-fetch/lib/index.js", 1505, 11),
        (None, "node:events", 519, 28),
    ])  # fmt: skip
    for ms in arrivals(rnd, start, end, 1 / 9):
        logs.add(
            name,
            ms,
            pino(
                ms,
                50,
                "recommendations unavailable",
                err={"type": "FetchError", "message": "socket hang up", "stack": recs_stack},
            ),
        )
    deployed_sha = repo.sha("deployed")
    logs.add(name, deploy, pino(deploy, 30, f"cart 5.0.0 listening on :8080 (commit {deployed_sha[:7]})"))
    onset = None
    for ms in arrivals(rnd, deploy + 25 * S, end, 2.4):
        onset = onset or ms
        req = {"id": rnd.randrange(1, 10**7), "method": "POST", "url": f"/v1/carts/c_{rnd.getrandbits(32):08x}/coupon"}
        err = {"type": "TypeError", "message": "Cannot read properties of undefined (reading 'percentOff')",
               "stack": stack}  # fmt: skip
        logs.add(name, ms, pino(ms, 50, "request errored", req=req, res={"statusCode": 500}, err=err))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [13 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="Unknown coupon codes now dereference undefined; frames are in compiled dist/*.js.",
        repo=repo,
        culprit_role="culprit",
        file="src/lib/pricing.ts",
        line=ts_line,
        signature=r"TypeError: Cannot read properties of undefined \(reading 'percentOff'\)",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "5.0.0"},
        decoy_roles=["decoy"],
        stack="node/typescript/express/pino",
        formats=["pino JSON (numeric level, epoch-ms time)", "V8 stack in err.stack"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
