"""Cause outside the repository: the FX partner's endpoint goes away.

zerolog JSON. From the onset, every call to rates.partner.example fails: first
``connection refused``, then DNS ``no such host`` while the partner moves, then TLS
``x509: certificate has expired`` once it is back. No deploy near the onset; the last
commit to the partner client (a harmless timeout tweak, deployed the day before) is the
decoy a blame-based ranking would pick. The right answer is "not in this repo".
Red herring: a steady cache eviction error all day.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    BEN,
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
    write_runbooks,
)

CASE = "upstream_outage"
SERVICE = "quotes"
DAY = "2026-11-30"

CLIENT_V1 = """\
package partner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

const baseURL = "https://rates.partner.example/v1"

type Client struct{ http *http.Client }

func New() *Client { return &Client{http: &http.Client{Timeout: 3 * time.Second}} }

func (c *Client) Rate(ctx context.Context, from, to string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/rate/%s/%s", baseURL, from, to), nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("partner rate %s/%s: %w", from, to, err)
	}
	defer resp.Body.Close()
	var out struct{ Rate float64 }
	return out.Rate, json.NewDecoder(resp.Body).Decode(&out)
}
"""

SERVER = """\
package api

import (
	"net/http"

	"github.com/acme/quotes/internal/partner"
	"github.com/rs/zerolog/log"
)

func Quote(c *partner.Client) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rate, err := c.Rate(r.Context(), r.URL.Query().Get("from"), r.URL.Query().Get("to"))
		if err != nil {
			log.Error().Err(err).Str("path", r.URL.Path).Msg("rate lookup failed")
			http.Error(w, "rates unavailable", http.StatusBadGateway)
			return
		}
		log.Info().Float64("rate", rate).Msg("quote served")
	}
}
"""

RUNBOOKS = {
    "quotes.md": """\
# Runbook: quotes

- `rate lookup failed` with `connection refused`, `no such host` or `x509` errors to
  `rates.partner.example`: the FX partner is down or moving. Not fixable in our code:
  check https://status.partner.example, switch to cached rates
  (`deployctl config quotes set QUOTES_STALE_RATES=1`) and page the partner.
- `cache eviction failed` errors are the memcached resize job; harmless.
""",
}


def history() -> History:
    h = History()
    h.commit(
        DANA,
        "2026-10-08T09:00:00",
        "quotes: FX quotes from the partner API",
        files={
            "README.md": "# quotes\n\nFX quotes (Go).\n",
            "go.mod": "module github.com/acme/quotes\n\ngo 1.22\n\nrequire github.com/rs/zerolog v1.33.0\n",
            "internal/partner/client.go": CLIENT_V1,
            "internal/api/quote.go": SERVER,
        },
        tag="v1.2.0",
    )
    h.commit(
        BEN,
        "2026-11-29T11:00:00",
        "partner: 5 s client timeout (#31)",
        role="decoy",
        edits=[("internal/partner/client.go", "Timeout: 3 * time.Second", "Timeout: 5 * time.Second")],
    )
    h.commit(
        ALICE,
        "2026-11-29T12:00:00",
        "Release 1.3.0",
        role="deployed",
        tag="v1.3.0",
        edits=[("README.md", "(Go).\n", "(Go). Release 1.3.0.\n")],
    )
    return h


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "quotes.jsonl"
    start, end = 6 * H, 12 * H
    onset_at = 9 * H + 12 * M + 7 * S + 250

    def zl(ms: int, level: str, msg: str, **kw: Any) -> str:
        return json.dumps({"level": level, **kw, "time": clock.iso_seconds(ms), "message": msg}, separators=(",", ":"))

    def served(r: random.Random, ms: int) -> tuple[str, str]:
        return name, zl(ms, "info", "quote served", rate=round(0.7 + r.random(), 4))

    def misc(r: random.Random, ms: int) -> tuple[str, str]:
        return name, zl(ms, r.choice(["debug", "warn"]), "pool stats", idle=r.randrange(10), active=r.randrange(20))

    add_noise(logs, rnd, start, end, 100, [(8, served), (1, misc)])
    for ms in arrivals(rnd, start, end, 1 / 10):
        logs.add(name, ms, zl(ms, "error", "cache eviction failed", error="memcache: cache miss", key="rates:*"))
    onset = None
    phases = [
        (onset_at, onset_at + 25 * M, "dial tcp 203.0.113.40:443: connect: connection refused"),
        (onset_at + 25 * M, onset_at + 70 * M, "dial tcp: lookup rates.partner.example on 10.0.0.2:53: no such host"),
        (onset_at + 70 * M, end, "tls: failed to verify certificate: x509: certificate has expired or is not yet valid: "  # noqa: E501
                                 "current time 2026-11-30T10:22:31Z is after 2026-11-30T10:00:00Z"),
    ]  # fmt: skip
    for lo, hi, cause in phases:
        for ms in arrivals(rnd, lo, hi, 4):
            onset = onset or ms
            pair = rnd.choice(["EUR/USD", "GBP/USD", "USD/JPY"])
            err = f'partner rate {pair}: Get "https://rates.partner.example/v1/rate/{pair}": {cause}'
            logs.add(name, ms, zl(ms, "error", "rate lookup failed", error=err, path="/v1/quote"))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [9 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="The FX partner is unreachable (refused, then DNS, then expired TLS); nothing in the repo changed.",
        repo=repo,
        culprit_role=None,
        file=None,
        line=None,
        signature=r"connection refused|no such host|x509|rate lookup failed",
        onset=clock.iso_seconds(onset),
        onset_tolerance_s=60,
        deploy={"time": "2026-11-29T12:05:00Z", "sha": repo.sha("deployed"), "version": "1.3.0"},
        decoy_roles=["decoy"],
        stack="go/zerolog",
        formats=["zerolog JSON (no stack traces)"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
