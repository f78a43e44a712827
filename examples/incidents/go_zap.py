"""Go: zap JSON logs on stdout, net/http panic dumps on stderr.

A quote for a zone without a configured carrier dereferences a nil *Carrier; net/http
recovers each panic and prints ``http: panic serving ...`` with the goroutine dump on
stderr (shape captured from Go 1.19.8). Red herring: zap errors (with zap's
``stacktrace`` field) from the tracking sync all day. Decoy: later commit, same file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    BEN,
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
    go_frames,
    line_no,
    write_runbooks,
)

CASE = "go_zap"
SERVICE = "shipping"
DAY = "2026-11-24"
BUILD = "/home/runner/work/shipping/shipping/"
GOROOT = "/usr/local/go/src/"

QUOTE_V1 = """\
package quote

import "errors"

// Carrier prices parcels for the zones it serves.
type Carrier struct {
	Name  string
	Rates map[string]int // service level -> cents per kg
}

// Quoter picks a carrier per zone.
type Quoter struct {
	carriers       map[string]*Carrier
	defaultCarrier *Carrier
}

var ErrUnknownService = errors.New("unknown service level")

func New(carriers map[string]*Carrier, fallback *Carrier) *Quoter {
	return &Quoter{carriers: carriers, defaultCarrier: fallback}
}

// Price returns the price in cents of a parcel of weightKg to zone.
func (q *Quoter) Price(zone, service string, weightKg int) (int, error) {
	rate := q.defaultCarrier.Rates[service]
	if rate == 0 {
		return 0, ErrUnknownService
	}
	return rate * weightKg, nil
}
"""

HANDLER = """\
package api

import (
	"encoding/json"
	"net/http"

	"github.com/acme/shipping/internal/quote"
	"go.uber.org/zap"
)

type Handler struct {
	Quoter *quote.Quoter
	Log    *zap.Logger
}

func (h *Handler) Quote(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Zone, Service string
		WeightKg      int
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	price, err := h.Quoter.Price(req.Zone, req.Service, req.WeightKg)
	if err != nil {
		h.Log.Warn("quote rejected", zap.Error(err))
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	h.Log.Info("quote served", zap.String("zone", req.Zone), zap.Int("cents", price))
	_ = json.NewEncoder(w).Encode(map[string]int{"cents": price})
}
"""

TRACK = """\
package track

import (
	"context"
	"net/http"
)

type Client struct{ HTTP *http.Client }

func (c *Client) Sync(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://tracking.internal/v1/sync", nil)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}
"""

GOMOD = "module github.com/acme/shipping\n\ngo 1.22\n\nrequire go.uber.org/zap v1.27.0\n"

RUNBOOKS = {
    "shipping.md": """\
# Runbook: shipping API (Go)

- `http: panic serving <addr>: ...` on stderr: a handler panicked; the goroutine dump
  below it names the function and file:line in `github.com/acme/shipping`.
- `tracking sync failed ... context deadline exceeded` errors are the tracking vendor's
  slow API; known for months, no customer impact.
- Rollback: `deployctl rollback shipping --to <previous>`.
""",
}


def history() -> History:
    h = History()
    h.commit(
        ALICE,
        "2026-10-01T12:00:00",
        "shipping: quote API",
        files={
            "README.md": "# shipping\n\nParcel quotes (Go).\n",
            "go.mod": GOMOD,
            "internal/quote/quote.go": QUOTE_V1,
            "internal/api/handler.go": HANDLER,
            "internal/track/client.go": TRACK,
        },
        tag="v2.2.0",
    )
    h.commit(
        EMIL,
        "2026-11-23T09:50:00",
        "quote: price with the zone's own carrier (#77)",
        role="culprit",
        edits=[
            (
                "internal/quote/quote.go",
                "rate := q.defaultCarrier.Rates[service]",
                "rate := q.carriers[zone].Rates[service]",
            )
        ],  # fmt: skip
    )
    h.commit(
        BEN,
        "2026-11-24T08:10:00",
        "Release 2.3.0",
        role="deployed",
        tag="v2.3.0",
        edits=[("README.md", "(Go).\n", "(Go). Release 2.3.0.\n")],
    )
    h.commit(
        EMIL,
        "2026-11-24T13:30:00",
        "quote: doc comment for ErrUnknownService (#80)",
        role="decoy",
        edits=[("internal/quote/quote.go", "var ErrUnknownService",
                "// ErrUnknownService is returned for a service level no carrier offers.\nvar ErrUnknownService")],
    )  # fmt: skip
    return h


def _panic(tree: dict[str, str], rnd: random.Random, clock: Clock, ms: int) -> tuple[str, int]:
    qline = line_no(tree["internal/quote/quote.go"], "rate := q.carriers[zone].Rates[service]")
    hline = line_no(tree["internal/api/handler.go"], "price, err := h.Quoter.Price(")
    g = rnd.randrange(18, 4000)
    addr = f"10.0.{rnd.randrange(1, 4)}.{rnd.randrange(2, 250)}:{rnd.randrange(30000, 61000)}"
    a1, a2 = f"0x{rnd.getrandbits(24):x}", f"0xc000{rnd.getrandbits(24):06x}"
    frames = go_frames([
        ("net/http.(*conn).serve.func1()", GOROOT + "net/http/server.go", "1850 +0xbf"),
        ("panic({0x67a560, 0x8b90b0})", GOROOT + "runtime/panic.go", "890 +0x262"),
        ("github.com/acme/shipping/internal/quote.(*Quoter).Price(...)", BUILD + "internal/quote/quote.go", str(qline)),
        (f"github.com/acme/shipping/internal/api.(*Handler).Quote({a2}, {{0x73b208?, {a2}?}}, {a1}?)",
         BUILD + "internal/api/handler.go", f"{hline} +0x1d6"),
        (f"net/http.HandlerFunc.ServeHTTP(0x0?, {{0x73b208?, {a2}?}}, 0x46380e?)", GOROOT + "net/http/server.go",
         "2109 +0x2f"),
        (f"net/http.serverHandler.ServeHTTP({{{a2}?}}, {{0x73b208, {a2}}}, {a2})", GOROOT + "net/http/server.go",
         "2947 +0x30c"),
        (f"net/http.(*conn).serve({a2}, {{0x73b5e0, {a2}}})", GOROOT + "net/http/server.go", "1991 +0x607"),
        ("created by net/http.(*Server).Serve", GOROOT + "net/http/server.go", "3102 +0x4db"),
    ])  # fmt: skip
    stamp = clock.py(ms)[:19].replace("-", "/")
    text = (f"{stamp} http: panic serving {addr}: runtime error: invalid memory address or nil pointer dereference\n"
            f"goroutine {g} [running]:\n{frames}")  # fmt: skip
    return text, qline


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    jsonl, stderr = "shipping.jsonl", "shipping.stderr.log"
    start, end, deploy = 7 * H, 13 * H, 10 * H + 2 * M + 5 * S + 330

    def zap(ms: int, level: str, caller: str, msg: str, **fields: Any) -> str:
        obj = {"level": level, "ts": float(clock.epoch_s(ms, rnd)), "caller": caller, "msg": msg, **fields}
        return json.dumps(obj, separators=(",", ":"))

    def served(r: random.Random, ms: int) -> tuple[str, str]:
        return jsonl, zap(
            ms,
            "info",
            "api/handler.go:33",
            "quote served",
            zone=r.choice(["eu-west", "us-east", "uk", "apac"]),
            cents=r.randrange(300, 9000),
        )

    def misc(r: random.Random, ms: int) -> tuple[str, str]:
        return jsonl, zap(
            ms,
            r.choice(["debug", "info", "warn"]),
            "cache/lru.go:88",
            "rate cache stats",
            hits=r.randrange(1000),
            misses=r.randrange(100),
        )

    add_noise(logs, rnd, start, end, 100, [(7, served), (1, misc)])
    sync_line = line_no(tree["internal/track/client.go"], "resp, err := c.HTTP.Do(req)")
    stack = (f"github.com/acme/shipping/internal/track.(*Client).Sync\n\t{BUILD}internal/track/client.go:{sync_line}\n"
             f"main.syncLoop\n\t{BUILD}cmd/shipping/main.go:58")  # fmt: skip
    for ms in arrivals(rnd, start, end, 1 / 10):
        logs.add(
            jsonl,
            ms,
            zap(
                ms,
                "error",
                "track/client.go:14",
                "tracking sync failed",
                error='Post "http://tracking.internal/v1/sync": context deadline exceeded',
                stacktrace=stack,
            ),
        )
    deployed_sha = repo.sha("deployed")
    logs.add(
        jsonl,
        deploy,
        zap(deploy, "info", "shipping/main.go:31", "starting shipping", version="2.3.0", commit=deployed_sha[:7]),
    )
    onset = None
    line = 0
    for ms in arrivals(rnd, deploy + 9 * S, end, 2.2):
        onset = onset or ms
        text, line = _panic(tree, rnd, clock, ms)
        logs.add(stderr, ms, text)
    assert onset is not None
    counts = logs.write(out / "logs", rotate={jsonl: [10 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="Zones without a configured carrier get a nil *Carrier; Price dereferences it.",
        repo=repo,
        culprit_role="culprit",
        file="internal/quote/quote.go",
        line=line,
        signature=r"nil pointer dereference",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "2.3.0"},
        decoy_roles=["decoy"],
        stack="go/zap/net-http",
        formats=["zap JSON (epoch-seconds ts)", "go log + goroutine dump on stderr"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
