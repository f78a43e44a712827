"""``crewgate eval`` scores the task's structured output first, and the report only without one."""

from __future__ import annotations

from typing import Any

from gateway.eval import extract_findings, score_case

CULPRIT = "519cbef0c8f1d2a3b4c5d6e7f8a9b0c1d2e3f4a5"
DECOY = "8c6dc61fe3fcf1afc3a073f9cae6054eabbb7a5a"
EXPECTED: dict[str, Any] = {
    "suspect": {"sha": CULPRIT, "subject": "notify: ..."},
    "cause_in_repo": True,
    "file": "orders/notify.py",
    "line": 16,
    "signature": r"KeyError: 'email'",
    "onset": "2026-11-20T13:10:13Z",
    "onset_tolerance_s": 60,
}
# a report whose markdown would name the decoy as the suspect: the output must win over it
MISLEADING_REPORT = f"- **Suspect commit:** {DECOY}\n- **Failing line:** other.py:3\n"


def output(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "suspect": None,
        "file": "orders/notify.py",
        "line": 16,
        "signature": "KeyError: 'email'",
        "onset": "2026-11-20T13:10:20Z",
        "candidates": [],
        "confidence": "none",
        "cause_in_repo": None,
        "next_action": "look",
    }
    return base | fields


def test_a_named_suspect_in_the_output_is_the_top_answer() -> None:
    found = extract_findings(MISLEADING_REPORT, output(suspect={"sha": CULPRIT, "subject": "s"}, confidence="high"))
    marks = score_case(EXPECTED, found)
    assert found.commits[0] == CULPRIT and found.confident
    assert (marks.top1, marks.top3, marks.file, marks.line, marks.signature, marks.onset) == (True,) * 6
    assert marks.commit_points == 1.0


def test_ranked_candidates_count_for_top3_but_name_no_cause() -> None:
    candidates = [{"sha": DECOY, "reasons": []}, {"sha": CULPRIT[:7], "reasons": []}]
    found = extract_findings(MISLEADING_REPORT, output(candidates=candidates, confidence="low"))
    marks = score_case(EXPECTED, found)
    assert found.commits == [] and found.candidates == [DECOY, CULPRIT[:7]]
    assert (marks.top1, marks.top3, marks.commit_points) == (False, True, 0.0)


def test_a_wrong_suspect_costs_less_when_the_output_says_confidence_is_low() -> None:
    wrong = {"sha": DECOY, "subject": "s"}
    sure = score_case(EXPECTED, extract_findings("", output(suspect=wrong, confidence="medium")))
    hedged = score_case(EXPECTED, extract_findings("", output(suspect=wrong, confidence="low")))
    assert (sure.commit_points, hedged.commit_points) == (-1.0, -0.5)


def test_cause_in_repo_false_is_saying_not_in_the_repository() -> None:
    expected = {**EXPECTED, "suspect": None, "cause_in_repo": False, "file": None, "line": None}
    found = extract_findings("", output(cause_in_repo=False, confidence="low", file=None, line=None))
    marks = score_case(expected, found)
    assert found.not_in_repo and (marks.top1, marks.said_not_in_repo, marks.commit_points) == (True, True, 1.0)


def test_without_a_structured_output_the_report_is_parsed() -> None:
    for missing in (None, {"commit": CULPRIT}):  # no output, or one not in the triage_findings shape
        found = extract_findings(MISLEADING_REPORT, missing)
        assert found.commits == [DECOY] and (found.file, found.line) == ("other.py", 3)
