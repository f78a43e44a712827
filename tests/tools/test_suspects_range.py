"""suspect_commits beyond blame of one line: the failing function, the deploy range, weak initial commits.

Real git repositories built in tmp with fixed dates (``code_git_repo``).
"""

from __future__ import annotations

import json

import pytest

from tools._base import ToolError
from tools.code import SuspectCommitsTool

ONSET = "2024-05-12T12:00:00Z"

# The shape CPython 3.11 prints (captured from a real run; paths changed to the deploy's).
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/releases/7/shop/api.py", line 5, in checkout\n'
    "    return compute_total(order)\n"
    "           ^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/srv/app/releases/7/shop/pricing.py", line 6, in compute_total\n'
    '    currency = order["currency"]\n'
    "               ~~~~~^^^^^^^^^^^^\n"
    "KeyError: 'currency'\n"
)

API = "from shop.pricing import compute_total\n\n\ndef checkout(order):\n    return compute_total(order)\n"

PRICING_GUARDED = (
    "RATES = {'USD': 1, 'EUR': 2}\n"
    "\n"
    "\n"
    "def compute_total(order):\n"
    "    order = {'currency': 'USD', **order}\n"
    '    currency = order["currency"]\n'
    "    amount = sum(order.get('items', []))\n"
    "    rate = RATES[currency]\n"
    "    subtotal = amount * rate\n"
    "    tax = subtotal // 10\n"
    "    total = subtotal + tax\n"
    "    return total\n"
    "\n"
    "\n"
    "def describe(order):\n"
    "    return str(order)\n"
)


def _suspects(code_tool, repo, **kwargs) -> dict:
    return json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), **kwargs))


def _without_guard() -> str:
    # The failing line moves from 6 to 5 … but the frame's line 6 is what the logs show; keep
    # the failing line at 6 by adding a comment where the guard was.
    return PRICING_GUARDED.replace(
        "    order = {'currency': 'USD', **order}\n", "    # the storefront always sends a currency now\n"
    )


def _guard_removed_repo(code_git_repo):
    """Initial import wrote the failing line; a later commit removed the default above it."""
    repo = code_git_repo()
    shas = {
        "initial": repo.commit(
            {"shop/pricing.py": PRICING_GUARDED, "shop/api.py": API}, "Initial import", "2024-01-10T09:00:00+00:00"
        )
    }
    shas["docs"] = repo.commit({"README.md": "# shop\n"}, "docs: readme", "2024-05-09T09:00:00+00:00")
    shas["guard"] = repo.commit(
        {"shop/pricing.py": _without_guard()},
        "pricing: drop the legacy currency default",
        "2024-05-11T10:00:00+00:00",
        author="Gina Guard",
    )
    shas["later"] = repo.commit(
        {"shop/pricing.py": _without_guard().replace("str(order)", "repr(order)")},
        "pricing: repr in describe",
        "2024-05-11T16:00:00+00:00",
    )
    return repo, shas


def test_a_change_to_the_failing_function_beats_the_initial_commit_that_wrote_the_line(code_git_repo, code_tool):
    repo, shas = _guard_removed_repo(code_git_repo)
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET)
    candidates = result["data"]["candidates"]

    assert result["facts"]["commit"] == shas["guard"]
    top = candidates[0]
    assert any("changed the function compute_total (shop/pricing.py:4-12)" in r for r in top["reasons"])
    assert any("removed 'currency'" in r for r in top["reasons"])  # the dropped default quoted the key
    initial = next(c for c in candidates if c["sha"] == shas["initial"])
    assert initial["score"] < top["score"]
    assert any("initial commit" in r and "weak evidence" in r for r in initial["reasons"])
    # A change elsewhere in the failing file is not a suspect next to one in the failing function.
    assert shas["later"] not in [c["sha"] for c in candidates]
    assert any(shas["later"][:7] in text for text in result["facts"]["ruled_out"])
    assert result["data"]["frames"][0]["block"] == {"name": "compute_total", "start": 4, "end": 12}


def test_lines_written_only_by_an_old_initial_commit_name_no_commit(code_git_repo, code_tool):
    repo = code_git_repo()
    initial = repo.commit(
        {"shop/pricing.py": PRICING_GUARDED, "shop/api.py": API}, "Initial import", "2024-01-10T09:00:00+00:00"
    )
    repo.commit({"README.md": "# shop\n"}, "docs: readme", "2024-05-11T09:00:00+00:00")
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET)

    assert "commit" not in result["facts"]
    assert result["facts"]["candidates"][0].startswith(f"{initial[:7]} 'Initial import'")
    assert result["data"]["candidates"][0]["sha"] == initial
    assert "no clear suspect" in result["summary"]
    assert "wrote the lines long before" in result["data"]["confidence"]


# --- the deploy range ------------------------------------------------------------------


def _released_repo(code_git_repo):
    """v1.3.0 already had the failing line's last change; v1.4.0 changed the function above it."""
    repo = code_git_repo()
    shas = {}
    shas["initial"] = repo.commit(
        {"shop/pricing.py": PRICING_GUARDED, "shop/api.py": API}, "Initial import", "2024-01-10T09:00:00+00:00"
    )
    shas["old_line"] = repo.commit(
        {"shop/pricing.py": PRICING_GUARDED.replace('order["currency"]', 'order[ "currency" ]')},
        "style: spacing",
        "2024-04-20T09:00:00+00:00",
    )
    repo.git("tag", "v1.3.0")
    current = PRICING_GUARDED.replace('order["currency"]', 'order[ "currency" ]')
    shas["in_range"] = repo.commit(
        {"shop/pricing.py": current.replace("    tax = subtotal // 10\n", "    tax = subtotal // 8\n")},
        "pricing: new tax rate",
        "2024-05-02T09:00:00+00:00",
        author="Tara Tax",
    )
    shas["release"] = repo.commit({"CHANGELOG.md": "1.4.0\n"}, "Release 1.4.0", "2024-05-03T09:00:00+00:00")
    repo.git("tag", "v1.4.0")
    shas["after"] = repo.commit({"README.md": "x\n"}, "docs", "2024-05-04T09:00:00+00:00")
    return repo, shas


def test_without_deploy_facts_the_last_change_to_the_line_leads(code_git_repo, code_tool):
    repo, shas = _released_repo(code_git_repo)
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET)
    assert result["data"]["candidates"][0]["sha"] == shas["old_line"]
    assert result["data"]["range"]["kind"] == "window"


@pytest.mark.parametrize(
    "deploy",
    [
        {"deploy_version": "1.4.0"},
        {"deploy_version": "v1.4.0"},
        {"good_rev": "v1.3.0", "bad_rev": "v1.4.0"},
        {"deployed_at": "2024-05-03T10:00:00Z"},
    ],
    ids=["version", "tag", "revs", "deployed_at"],
)
def test_the_deploy_range_commits_come_first(code_git_repo, code_tool, deploy):
    repo, shas = _released_repo(code_git_repo)
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET, **deploy)
    data = result["data"]

    assert data["range"]["kind"] == "deploy"
    assert data["range"]["good"] == repo.git("rev-parse", "v1.3.0").strip()
    assert data["range"]["bad"] == shas["release"]
    assert data["revision"]["sha"] == shas["release"]  # the deployed code is blamed, not later commits
    assert result["facts"]["commit"] == shas["in_range"]
    old = next(c for c in data["candidates"] if c["sha"] == shas["old_line"])
    assert any("committed before the deploy range" in r for r in old["reasons"])
    assert not old["in_range"] and data["candidates"][0]["in_range"]


def test_a_version_with_a_build_sha_resolves_to_that_commit(code_git_repo, code_tool):
    repo, shas = _released_repo(code_git_repo)
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET, deploy_version=f"1.4.0+g{shas['in_range'][:9]}")
    assert result["data"]["range"]["bad"] == shas["in_range"]
    assert result["data"]["range"]["good"] == repo.git("rev-parse", "v1.3.0").strip()


def test_an_unknown_deploy_version_is_refused_with_a_hint(code_git_repo, code_tool):
    repo, _ = _released_repo(code_git_repo)
    with pytest.raises(ToolError, match="deploy_version '9.9.9' matches no tag"):
        _suspects(code_tool, repo, trace=TRACE, onset=ONSET, deploy_version="9.9.9")


def test_an_option_like_rev_is_refused(code_git_repo, code_tool):
    repo, _ = _released_repo(code_git_repo)
    with pytest.raises(ToolError, match="may not start with '-'"):
        _suspects(code_tool, repo, trace=TRACE, onset=ONSET, good_rev="--output=/tmp/x", bad_rev="v1.4.0")


def test_a_deploy_range_that_never_touches_the_failing_code_names_no_commit(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"shop/pricing.py": PRICING_GUARDED, "shop/api.py": API}, "Initial import", "2024-01-10T09:00:00+00:00")
    spacing = repo.commit(
        {"shop/pricing.py": PRICING_GUARDED.replace('order["currency"]', 'order[ "currency" ]')},
        "style: spacing",
        "2024-05-01T09:00:00+00:00",
    )
    repo.git("tag", "v2.0.0")
    repo.commit({"README.md": "# shop\n"}, "docs: readme", "2024-05-10T09:00:00+00:00")
    repo.git("tag", "v2.1.0")
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET, deploy_version="2.1.0")

    assert "commit" not in result["facts"]
    assert result["data"]["candidates"][0]["sha"] == spacing  # still listed, but as already running before
    assert result["data"]["confidence"].startswith("no commit of the deploy range")
    assert "data, traffic or infrastructure" in result["data"]["confidence"]


def test_good_and_bad_revs_accept_the_versions_the_logs_print(code_git_repo, code_tool):
    repo, shas = _released_repo(code_git_repo)
    result = _suspects(
        code_tool, repo, trace=TRACE, onset=ONSET, good_rev="1.3.0", bad_rev=f"1.4.0-0-g{shas['release'][:8]}"
    )
    assert result["data"]["range"]["good"] == repo.git("rev-parse", "v1.3.0").strip()
    assert result["data"]["range"]["bad"] == shas["release"]
    assert result["facts"]["commit"] == shas["in_range"]
    with pytest.raises(ToolError, match="good_rev '0.0.1' matches no tag"):
        _suspects(code_tool, repo, trace=TRACE, onset=ONSET, good_rev="0.0.1", bad_rev="v1.4.0")
