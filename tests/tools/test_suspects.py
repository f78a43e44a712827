"""suspect_commits: ranking the commits behind a failing stack, as of the onset."""

from __future__ import annotations

import json

import pytest

from tools._base import ToolError
from tools.code import SuspectCommitsTool

ONSET = "2024-05-12T12:00:00Z"

TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/releases/42/shop/checkout.py", line 4, in checkout\n'
    "    return price(cart)\n"
    '  File "/srv/releases/42/shop/pricing.py", line 12, in price\n'
    "    return subtotal / rate\n"
    "ZeroDivisionError: division by zero\n"
)


def _pricing(
    line12: str = "    return subtotal", line14: str = "    # rounding", line28: str = '    log.info("tax applied")'
) -> str:
    lines = [f"# pricing helper {n}" for n in range(1, 31)]
    lines[9] = "def price(cart):"
    lines[10] = "    subtotal = sum(cart)"
    lines[11] = line12
    lines[13] = line14
    lines[26] = "def tax(amount):"
    lines[27] = line28
    return "\n".join(lines) + "\n"


CHECKOUT = "from shop.pricing import price\n\ndef checkout(cart):\n    return price(cart)\n"


def _history(code_git_repo, *, decoy: dict, decoy_date: str, culprit_date: str):
    """Old commit, culprit (introduces the failing line), decoy, and a post-onset fix."""
    repo = code_git_repo()
    shas = {}
    shas["old"] = repo.commit(
        {"src/shop/pricing.py": _pricing(), "src/shop/checkout.py": CHECKOUT},
        "Initial shop",
        "2024-03-01T09:00:00+00:00",
        author="Olga Old",
    )
    culprit = _pricing(line12="    return subtotal / rate")
    shas["culprit"] = repo.commit(
        {"src/shop/pricing.py": culprit}, "Apply discount rate before tax", culprit_date, author="Carol Culprit"
    )
    shas["decoy"] = repo.commit(
        {"src/shop/pricing.py": _pricing(line12="    return subtotal / rate", **decoy)},
        "Tidy log messages",
        decoy_date,
        author="Dave Decoy",
    )
    shas["hotfix"] = repo.commit(
        {"src/shop/pricing.py": _pricing(line12="    return subtotal / (rate or 1)", **decoy)},
        "Hotfix: guard zero rate",
        "2024-05-12T15:00:00+00:00",
        author="Hank Hotfix",
    )
    return repo, shas


def _suspects(code_tool, repo, **kwargs) -> dict:
    return json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), **kwargs))


def test_culprit_ranks_first_decoy_is_ruled_out_and_post_onset_fix_ignored(code_git_repo, code_tool):
    repo, shas = _history(
        code_git_repo,
        decoy={"line28": '    log.info("tax applied to %s", amount)'},
        decoy_date="2024-05-12T08:00:00+00:00",  # 4 hours before the onset
        culprit_date="2024-05-10T09:00:00+00:00",
    )
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET)
    candidates = result["data"]["candidates"]
    shas_ranked = [c["sha"] for c in candidates]

    assert shas_ranked[0] == shas["culprit"]
    assert shas["hotfix"] not in shas_ranked
    assert shas["decoy"] not in shas_ranked
    top = candidates[0]
    assert top["subject"] == "Apply discount rate before tax"
    assert top["author"] == "Carol Culprit"
    assert top["date"] == "2024-05-10T09:00:00+00:00"
    assert "last changed src/shop/pricing.py:12, the innermost frame's line" in top["reasons"]
    assert any("before the onset" in reason for reason in top["reasons"])

    # The initial commit wrote the caller's line: a candidate, but far behind.
    old = next(c for c in candidates if c["sha"] == shas["old"])
    assert old["score"] < top["score"]
    assert any("outer frame #1 (checkout)" in reason for reason in old["reasons"])

    facts = result["facts"]
    assert facts["commit"] == shas["culprit"]
    assert facts["commit_subject"] == "Apply discount rate before tax"
    assert facts["file"] == "src/shop/pricing.py"
    assert facts["line"] == 12
    assert facts["ruled_out"] == [
        f"{shas['decoy'][:7]} 'Tidy log messages': touched src/shop/pricing.py but not the failing lines"
    ]
    # The code as it was at the onset, not after the hotfix.
    assert result["data"]["revision"]["sha"] == shas["decoy"]
    assert result["data"]["frames"][0]["source"] == "return subtotal / rate"


def test_recent_nearby_decoy_never_outranks_an_old_change_to_the_failing_line(code_git_repo, code_tool):
    repo, shas = _history(
        code_git_repo,
        decoy={"line14": "    # round half up"},  # two lines below the failing line
        decoy_date="2024-05-12T11:30:00+00:00",  # 30 minutes before the onset
        culprit_date="2024-04-01T09:00:00+00:00",  # six weeks earlier: no recency boost
    )
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET)
    ranked = [c["sha"] for c in result["data"]["candidates"]]
    assert ranked[0] == shas["culprit"]
    decoy = next(c for c in result["data"]["candidates"] if c["sha"] == shas["decoy"])
    assert decoy["score"] < result["data"]["candidates"][0]["score"]
    assert any("within ±3 of src/shop/pricing.py:12" in r for r in decoy["reasons"])
    assert shas["hotfix"] not in ranked
    # A nearby candidate is ranked, not listed as ruled out.
    assert "ruled_out" not in result["facts"]


def test_without_onset_the_latest_change_to_the_line_is_the_suspect(code_git_repo, code_tool):
    repo, shas = _history(
        code_git_repo,
        decoy={"line28": '    log.info("tax")'},
        decoy_date="2024-05-12T08:00:00+00:00",
        culprit_date="2024-05-10T09:00:00+00:00",
    )
    result = _suspects(code_tool, repo, trace=TRACE)
    assert result["facts"]["commit"] == shas["hotfix"]
    assert result["data"]["onset"] is None


def test_limit_caps_the_candidates(code_git_repo, code_tool):
    repo, _ = _history(
        code_git_repo,
        decoy={"line14": "    # x"},
        decoy_date="2024-05-12T08:00:00+00:00",
        culprit_date="2024-05-10T09:00:00+00:00",
    )
    result = _suspects(code_tool, repo, trace=TRACE, onset=ONSET, limit=1)
    assert len(result["data"]["candidates"]) == 1


def test_onset_before_any_commit_is_refused(code_git_repo, code_tool):
    repo, _ = _history(
        code_git_repo,
        decoy={"line28": "    pass"},
        decoy_date="2024-05-12T08:00:00+00:00",
        culprit_date="2024-05-10T09:00:00+00:00",
    )
    with pytest.raises(ToolError, match="older than the onset"):
        _suspects(code_tool, repo, trace=TRACE, onset="2020-01-01T00:00:00Z")


def test_bad_onset_is_refused(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"a.py": "x = 1\n"}, "init", "2024-01-01T00:00:00+00:00")
    with pytest.raises(ToolError, match="ISO timestamp"):
        _suspects(code_tool, repo, trace=TRACE, onset="yesterday-ish")


def test_trace_outside_the_repo_yields_no_suspect(code_git_repo, code_tool):
    repo = code_git_repo()
    repo.commit({"a.py": "x = 1\n"}, "init", "2024-01-01T00:00:00+00:00")
    trace = 'File "/usr/lib/python3.11/json/decoder.py", line 355, in raw_decode\n'
    result = _suspects(code_tool, repo, trace=trace, onset=ONSET)
    assert result["data"]["candidates"] == []
    assert "commit" not in result["facts"]
    assert "no frame" in result["summary"]
