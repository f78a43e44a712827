"""The offline triage's findings: the task's ``output`` in the triage_findings shape, and the
report built on it, which names a commit as the cause only when the evidence supports it."""

from __future__ import annotations

import os
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agents.catalog import load_catalog
from agents.findings import Evidence, TriageFindings, build_triage_findings
from agents.inputs import validate_inputs
from agents.offline import write_report
from gateway.execution import TaskOutcome, execute_task
from tests.support.small_incident import _AFTER, FILE, START, make_incident
from tools._result import ToolResult

PROJECT = Path(__file__).resolve().parents[2]
CREW = "incident_triage"


def triage(root: Path, **raw: str) -> TaskOutcome:
    catalog = load_catalog(PROJECT / "configs")
    inputs = validate_inputs(CREW, catalog.crew(CREW), raw, roots=[root])
    return execute_task(str(uuid.uuid4()), catalog, CREW, inputs, publish=lambda _d: None, roots=[root], env={})


def test_the_example_triage_names_the_commit_with_high_confidence(incident: dict[str, Any]) -> None:
    d = incident["dir"]
    outcome = triage(
        incident["root"],
        service="checkout",
        logs=str(d / "logs"),
        repo=str(d / "repo"),
        runbooks=str(d / "runbooks"),
    )
    assert outcome.status == "completed", outcome.error
    out, report = outcome.output, outcome.result or ""
    assert out is not None
    TriageFindings.model_validate(out)  # the output is the declared shape
    assert out["suspect"]["subject"] == "pricing: support multi-currency totals (#229)"
    assert (out["file"], out["line"], out["signature"]) == ("checkout/payments/pricing.py", 72, "KeyError: 'currency'")
    assert out["onset"].startswith("2026-11-20T13:10:13")
    assert (out["confidence"], out["cause_in_repo"]) == ("high", True)
    assert out["candidates"][0]["sha"] == out["suspect"]["sha"] and len(out["candidates"]) <= 3
    assert out["examined"]["records"] > 40_000 and out["examined"]["log_files"] >= 1
    assert "checkout/payments/pricing.py" in out["examined"]["repo_files"]
    assert out["next_action"].startswith("Revert or roll back commit " + out["suspect"]["sha"][:12])
    # the report a person reads: titled by service and signature, the same findings, nothing absolute
    assert report.startswith("# checkout: KeyError: 'currency' since 13:10 UTC\n")
    assert "Confidence: **high**" in report and "**Next action:**" in report
    assert "checkout-payments.md#KeyError or missing fields in payloads" in report
    assert str(incident["root"]) not in report and str(incident["root"]) not in str(out)
    assert "**Not run**" not in report and "**Tool errors**" not in report
    assert "**Secondary symptoms**" in report  # the payment declines that began with it


def _old_history(repo: Path) -> str:
    """Rewrite the repository so the failing line was written 60 days before the incident."""
    subprocess.run(["rm", "-rf", str(repo)], check=True)
    (repo / FILE).parent.mkdir(parents=True)
    (repo / FILE).write_text(_AFTER)
    when = (START - timedelta(days=60)).isoformat()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ana",
        "GIT_AUTHOR_EMAIL": "ana@example.com",
        "GIT_COMMITTER_NAME": "Ana",
        "GIT_COMMITTER_EMAIL": "ana@example.com",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "pricing: totals with currency"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True).stdout


def test_a_commit_that_only_predates_the_incident_is_not_presented_as_the_cause(tmp_path: Path) -> None:
    incident = make_incident(tmp_path)
    old = _old_history(Path(incident["repo"])).strip()
    outcome = triage(tmp_path, service="checkout", logs=str(incident["logs"]), repo=str(incident["repo"]))
    assert outcome.status == "completed", outcome.error
    out, report = outcome.output or {}, outcome.result or ""
    assert out["suspect"] is None and out["cause_in_repo"] is None
    assert out["confidence"] == "low"
    assert [c["sha"] for c in out["candidates"]] == [old]  # still listed, ranked, for a person to check
    assert "long before" in out["reason"]  # why: the line was written long before the incident
    assert "**No root cause found in this repository.**" in report
    assert "Looked at: 1 log file(s)" in report
    assert "**Suspect commit:**" not in report and "Revert" not in report
    assert "**Ranked candidates**" in report and old[:12] in report


def test_an_unset_optional_input_is_not_reported_as_a_failure(tmp_path: Path) -> None:
    incident = make_incident(tmp_path)
    outcome = triage(tmp_path, service="checkout", logs=str(incident["logs"]), repo=str(incident["repo"]))
    report = outcome.result or ""
    assert outcome.status == "completed", outcome.error
    assert "**Tool errors**" not in report and "**Not run**" not in report
    assert "runbooks" not in report.lower()
    assert (outcome.output or {})["runbook"] is None


def _signatures_result() -> ToolResult:
    return ToolResult(
        tool="error_signatures",
        summary="9 records",
        data={
            "files": 2,
            "records": 900,
            "signatures": [
                {
                    "signature": "ValueError: bad rate",
                    "count": 40,
                    "status": "new",
                    "first_seen": "2026-11-20T10:00:00Z",
                },
                {"signature": "HTTP 502 from fx", "count": 7, "status": "new", "first_seen": "2026-11-20T10:00:05Z"},
                {
                    "signature": "cache timeout",
                    "count": 70,
                    "status": "pre-existing",
                    "first_seen": "2026-11-20T08:00Z",
                },
            ],
            "more_signatures": 0,
        },
    )


FACTS: dict[str, Any] = {
    "signature": "ValueError: bad rate",
    "signature_count": 40,
    "onset": "2026-11-20T10:00:00Z",
    "file": "fx/rates.py",
    "line": 12,
    "deploy_version": "3.1.0",
    "deploy_sha": "a1b2c3d4e5f6a7b8",
    "deployed_at": "2026-11-20T09:58:00Z",
    "previous_version": "3.0.9",
    "runbook": "/srv/crewgate/runbooks/fx.md#Bad rates",
}


def test_no_clear_winner_lists_candidates_and_names_no_cause() -> None:
    evidence = Evidence()
    evidence.record(_signatures_result())
    facts = {
        **FACTS,
        "candidates": [
            "1234567 'fx: new rate source' (score 5.0): last changed fx/rates.py:12",
            "89abcde 'fx: retry' (score 4.5): last changed 2 line(s) within ±3 of fx/rates.py:12",
        ],
    }
    found = build_triage_findings(facts, evidence, "fx")
    assert found.suspect is None and found.confidence == "low" and found.cause_in_repo is None
    assert [c.sha for c in found.candidates] == ["1234567", "89abcde"]
    assert found.deploy is not None and (found.deploy.version, found.deploy.previous_version) == ("3.1.0", "3.0.9")
    assert found.runbook == "fx.md#Bad rates"  # never an absolute server path
    assert [s.signature for s in found.secondary] == ["HTTP 502 from fx"]
    assert (found.examined.log_files, found.examined.records, found.examined.signatures) == (2, 900, 3)
    report = write_report([], facts, [], found)
    assert report.startswith("# fx: ValueError: bad rate since 10:00 UTC\n")
    assert "**No root cause found in this repository.**" in report
    assert "**Deploy:** 3.1.0 (a1b2c3d4e5f6) at 2026-11-20T09:58:00Z after 3.0.9" in report
    assert "/srv/crewgate" not in report


def test_a_clear_suspect_mentions_the_deploy_that_carried_it() -> None:
    facts = {**FACTS, "commit": "1234567abcdef", "commit_subject": "fx: new rate source"}
    found = build_triage_findings(facts, Evidence(), "fx")
    assert found.suspect is not None and found.suspect.sha == "1234567abcdef"
    assert found.confidence == "medium"  # named by the ranking; its scores were not returned
    report = write_report([], facts, [], found)
    assert "which reached production in deploy 3.1.0" in report
    assert "(deployed in 3.1.0)" in found.next_action


@pytest.mark.parametrize(
    "outside",
    [{"likely": True, "reason": "no frame maps into the repository: site-packages"}, "frames are in site-packages"],
)
def test_a_cause_outside_the_repository_names_no_commit(outside: Any) -> None:
    facts = {**FACTS, "commit": "1234567abcdef", "outside_repo": outside}
    found = build_triage_findings(facts, Evidence(), "fx")
    assert found.suspect is None and found.cause_in_repo is False
    assert "site-packages" in (found.reason or "")
    report = write_report([], facts, [], found)
    assert "The cause is likely outside this repository" in report
    assert "escalate" in found.next_action


def test_nothing_new_in_the_logs_says_so() -> None:
    found = build_triage_findings({}, Evidence(), "fx")
    assert (found.suspect, found.confidence, found.cause_in_repo) == (None, "none", None)
    assert found.title == "fx: no new error found in the logs"
    assert "Widen the log window" in found.next_action


def _suspects_result(clear: bool, why: str) -> ToolResult:
    """suspect_commits as it reports its own verdict: ranked candidates, clear or not, and why."""
    candidates = [
        {"sha": "1234567abcdef", "subject": "fx: rates.yaml timeout 2s", "date": "2026-09-01T10:00:00Z", "score": 9.0,
         "reasons": ["changed a value the error quotes"], "lines": ["config/rates.yaml:3"]},
        {"sha": "89abcdef01234", "subject": "fx: retry", "date": "2026-11-19T10:00:00Z", "score": 8.0,
         "reasons": ["last changed 2 line(s) within ±3 of fx/rates.py:12"], "lines": ["fx/rates.py:11"]},
    ]  # fmt: skip
    return ToolResult(tool="suspect_commits", summary="ranked", data={"candidates": candidates, "clear": clear,
                                                                      "confidence": why})  # fmt: skip


def test_the_rankings_own_verdict_decides_whether_a_commit_is_named() -> None:
    unclear = Evidence()
    unclear.record(_suspects_result(False, "89abcde scores close to the top (8.0 vs 9.0)"))
    found = build_triage_findings(FACTS, unclear, "fx")
    assert found.suspect is None and found.confidence == "low"
    assert found.reason == "no clear suspect: 89abcde scores close to the top (8.0 vs 9.0)"
    assert [c.sha for c in found.candidates] == ["1234567abcdef", "89abcdef01234"]

    clear = Evidence()
    clear.record(_suspects_result(True, "clear winner"))
    facts = {**FACTS, "commit": "1234567abcdef", "commit_subject": "fx: rates.yaml timeout 2s"}
    found = build_triage_findings(facts, clear, "fx")
    # an old commit that changed a value the error quotes: named, as the ranking judged, but not "high"
    assert found.suspect is not None and found.suspect.sha == "1234567abcdef"
    assert (found.confidence, found.cause_in_repo) == ("medium", True)


@pytest.mark.parametrize("quotes_value", [False, True])
def test_a_tls_failure_is_not_blamed_on_code_unless_a_commit_set_what_it_quotes(quotes_value: bool) -> None:
    reasons = ["last changed fx/rates.py:12, the innermost frame's line", "committed 5 hour(s) before the onset"]
    if quotes_value:
        reasons.append("set 'rates.partner.example' in config/fx.yaml; the error text mentions it")
    result = ToolResult(
        tool="suspect_commits",
        summary="ranked",
        data={"candidates": [{"sha": "1234567abcdef", "subject": "fx: client", "score": 50.0, "reasons": reasons}]},
    )
    evidence = Evidence()
    evidence.record(result)
    signature = "SSLHandshakeException: PKIX path validation failed for rates.partner.example"
    facts = {**FACTS, "signature": signature, "commit": "1234567abcdef", "commit_subject": "fx: client"}
    found = build_triage_findings(facts, evidence, "fx")
    if quotes_value:
        assert found.suspect is not None and found.cause_in_repo is True
    else:
        assert found.suspect is None and found.cause_in_repo is False and found.confidence == "low"
        assert "TLS failure ('SSLHandshakeException')" in (found.reason or "") and "escalate" in found.next_action


def test_code_in_the_report_reads_exactly_as_logged_and_markup_in_it_stays_text() -> None:
    """A signature or path in an inline code span shows as it was logged: no stray escapes,
    and the HTML in it is text (rendered here with a CommonMark parser)."""
    from markdown_it import MarkdownIt

    signature = "KeyError: '<img src=x onerror=alert(1)>' in `price_map[*]`"
    facts = {**FACTS, "signature": signature, "file": "fx/rate_cache.py", "commit": "1234567abcdef"}
    found = build_triage_findings(facts, Evidence(), "fx")
    html = MarkdownIt("commonmark").render(write_report([], facts, [], found))
    assert "<code>KeyError: '&lt;img src=x onerror=alert(1)&gt;' in `price_map[*]`</code>" in html
    assert "<code>fx/rate_cache.py:12</code>" in html
    assert "<img" not in html
