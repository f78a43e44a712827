"""A small incident built in a temp dir: a few hundred log lines and a two-commit git repo.

Enough for the offline triage to run every tool and name a cause, in a fraction of the
time the shipped example takes. ``new_error_message`` and ``extra_log_line`` let a test put
hostile text where logs put text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ONSET = START + timedelta(minutes=70)
FILE = "checkout/payments/pricing.py"
LINE = 4
EXCEPTION = "KeyError: 'currency'"

_BEFORE = 'def compute_total(order, items):\n    total = sum(i["price"] for i in items)\n    # one currency\n    return total\n'
_AFTER = (
    'def compute_total(order, items):\n    total = sum(i["price"] for i in items)\n    # many currencies\n'
    '    currency = order["currency"]\n    return total, currency\n'
)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S,") + f"{at.microsecond // 1000:03d}"


def _git(repo: Path, *args: str, when: datetime) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Lena Fischer",
        "GIT_AUTHOR_EMAIL": "lena@example.com",
        "GIT_COMMITTER_NAME": "Lena Fischer",
        "GIT_COMMITTER_EMAIL": "lena@example.com",
        "GIT_AUTHOR_DATE": when.isoformat(),
        "GIT_COMMITTER_DATE": when.isoformat(),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def make_repo(repo: Path) -> str:
    """The service's repository; returns the culprit commit's sha."""
    (repo / FILE).parent.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main", when=START)
    (repo / FILE).write_text(_BEFORE)
    _git(repo, "add", "-A", when=START - timedelta(days=2))
    _git(repo, "commit", "-q", "-m", "pricing: totals", when=START - timedelta(days=2))
    (repo / FILE).write_text(_AFTER)
    _git(repo, "commit", "-q", "-am", "pricing: support multi-currency totals (#229)", when=START)
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


def make_incident(
    root: Path,
    *,
    new_error_message: str = "Unhandled exception on POST /v1/checkout",
    exception: str = EXCEPTION,
    extra_log_line: str = "",
) -> dict[str, Any]:
    """Logs, repo and runbooks under ``root / "incident"``; returns their paths and what a triage should find."""
    base = root / "incident"
    logs, repo, runbooks = base / "logs", base / "repo", base / "runbooks"
    for d in (logs, repo, runbooks):
        d.mkdir(parents=True)
    sha = make_repo(repo)
    lines: list[str] = []
    for minute in range(120):
        at = START + timedelta(minutes=minute)
        lines.append(f"{_stamp(at)} INFO [checkout.api.access] POST /v1/checkout 201 80ms request_id=r{minute}")
        if minute % 10 == 3:
            cache = "Timeout connecting to cache at 10.0.3.14:6379 after 2008ms"
            lines.append(f"{_stamp(at + timedelta(seconds=5))} ERROR [checkout.cache] {cache}")
        if at >= ONSET:
            lines += [
                f"{_stamp(at + timedelta(seconds=13, microseconds=885000))} ERROR [checkout.app] {new_error_message}",
                "Traceback (most recent call last):",
                '  File "/srv/checkout/releases/2.14.0/checkout/payments/pricing.py", line 4, in compute_total',
                '    currency = order["currency"]',
                exception,
            ]
        if minute == 100 and extra_log_line:
            lines.append(f"{_stamp(at + timedelta(seconds=30))} WARNING [checkout.api] {extra_log_line}")
    (logs / "checkout-api.log").write_text("\n".join(lines) + "\n")
    (runbooks / "checkout-payments.md").write_text(
        "# Checkout payments\n\n## KeyError or missing fields in payloads\n\nRoll back the release that added the field.\n"
    )
    return {
        "root": root,
        "logs": logs,
        "repo": repo,
        "runbooks": runbooks,
        "commit": sha,
        "file_line": f"{FILE}:{LINE}",
        "onset": (ONSET + timedelta(seconds=13, microseconds=885000)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


def make_no_suspect_repo(repo: Path) -> None:
    """Replace ``repo`` with one where the failing file was written two months before the
    incident and the only recent commit is unrelated: no commit explains the error."""
    if repo.exists():
        shutil.rmtree(repo)
    (repo / FILE).parent.mkdir(parents=True)
    long_ago = START - timedelta(days=60)
    _git(repo, "init", "-q", "-b", "main", when=long_ago)
    (repo / FILE).write_text(_AFTER)
    _git(repo, "add", "-A", when=long_ago)
    _git(repo, "commit", "-q", "-m", "pricing: totals", when=long_ago)
    (repo / "README.md").write_text("How to run the checkout service.\n")
    _git(repo, "add", "-A", when=START)
    _git(repo, "commit", "-q", "-m", "docs: readme", when=START)
