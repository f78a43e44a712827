"""Scoring of triage reports against a case's ground truth, on hand-built reports."""

from __future__ import annotations

from typing import Any

from gateway.eval import Found, extract_findings, parse_judgement, score_case, summarize

CULPRIT = "519cbefcd00358e1d272ed99dd89dcd6148809d3"
DECOY = "cf961fbd894284eb525d7e65693a0f4f8be1cdee"
OTHER = "7d6f6e2aa0c1b2d3e4f5061728394a5b6c7d8e9f"

EXPECTED: dict[str, Any] = {
    "suspect": {"sha": CULPRIT, "subject": "notify: respect the customer's email opt-in (#97)"},
    "cause_in_repo": True,
    "file": "orders/notify.py",
    "line": 16,
    "signature": r"AttributeError: 'NoneType' object has no attribute 'email_opt_in'",
    "onset": "2026-11-21T11:05:12.182Z",
    "onset_tolerance_s": 60,
}
EXTERNAL: dict[str, Any] = {**EXPECTED, "suspect": None, "cause_in_repo": False, "file": None, "line": None,
                            "signature": "connection refused"}  # fmt: skip

REPORT = f"""\
## Incident triage lead

The new error `AttributeError: 'NoneType' object has no attribute 'email\\_opt\\_in'` (812 occurrences) is raised
at `orders/notify.py:16`.

**Findings**

- **Top new error signature:** AttributeError: 'NoneType' object has no attribute 'email\\_opt\\_in'
- **Onset:** 2026-11-21T11:05:40Z
- **Suspect commit:** {CULPRIT}
- **Failing line:** orders/notify.py:16

**Ruled out**

- {DECOY[:7]} 'notify: use the v3 confirmation template (#99)': touched orders/notify.py but not the failing lines
"""


def test_a_report_is_read_into_findings() -> None:
    found = extract_findings(REPORT)
    assert found.commits == [CULPRIT]  # the ruled-out decoy is not a suspect
    assert (found.file, found.line) == ("orders/notify.py", 16)
    assert found.signature is not None and "email_opt_in" in found.signature
    assert found.onset == "2026-11-21T11:05:40Z"
    assert found.confident and not found.not_in_repo


def test_right_answer_scores_every_field() -> None:
    marks = score_case(EXPECTED, extract_findings(REPORT))
    assert (marks.top1, marks.top3, marks.file, marks.line, marks.signature, marks.onset) == (True,) * 6
    assert marks.commit_points == 1.0
    assert marks.said_not_in_repo is None


def test_confident_wrong_commit_scores_worse_than_not_found() -> None:
    wrong = score_case(EXPECTED, Found(commits=[OTHER], confident=True))
    hedged = score_case(EXPECTED, Found(commits=[OTHER], confident=False))
    none = score_case(EXPECTED, Found())
    assert wrong.commit_points < hedged.commit_points < none.commit_points
    assert (wrong.commit_points, hedged.commit_points, none.commit_points) == (-1.0, -0.5, 0.0)
    assert not wrong.top1 and not none.top1


def test_hedged_wording_marks_the_suspect_as_not_confident() -> None:
    found = extract_findings(f"- **Suspect commit:** {OTHER} (possibly; confidence: low)\n")
    assert found.commits == [OTHER] and not found.confident


def test_top3_counts_the_ranked_suspects_a_report_lists() -> None:
    report = f"""\
**Suspect commits (ranked)**

1. `{OTHER[:12]}` 'store: connect timeout of 3 s (#88)' score 104
2. `{CULPRIT[:12]}` 'notify: respect the customer's email opt-in (#97)' score 12
"""
    found = extract_findings(report)
    assert [c[:12] for c in found.commits] == [OTHER[:12], CULPRIT[:12]]
    marks = score_case(EXPECTED, found)
    assert not marks.top1 and marks.top3


def test_line_and_onset_tolerances() -> None:
    near = Found(commits=[CULPRIT[:7]], file="orders/notify.py", line=18, onset="2026-11-21T11:06:12Z")
    far = Found(commits=[CULPRIT[:7]], file="orders/notify.py", line=19, onset="2026-11-21T11:06:13Z")
    assert score_case(EXPECTED, near).line and score_case(EXPECTED, near).onset
    assert not score_case(EXPECTED, far).line and not score_case(EXPECTED, far).onset
    elsewhere = score_case(EXPECTED, Found(file="orders/views.py", line=16))
    assert elsewhere.file is False and elsewhere.line is False


def test_cause_outside_the_repo() -> None:
    said = extract_findings("The cause is not in this repository: the partner refuses connections.")
    assert said.not_in_repo and not said.commits
    right = score_case(EXTERNAL, said)
    silent = score_case(EXTERNAL, Found())
    blamed = score_case(EXTERNAL, Found(commits=[DECOY], confident=True))
    assert (right.top1, right.said_not_in_repo, right.commit_points) == (True, True, 1.0)
    assert (silent.top1, silent.said_not_in_repo, silent.commit_points) == (True, False, 0.5)
    assert (blamed.top1, blamed.commit_points) == (False, -1.0)
    assert right.file is None and right.line is None


def test_summary_percentages_count_only_applicable_cases() -> None:
    from gateway.eval import CaseResult

    results = [
        CaseResult("a", EXPECTED, Found(), score_case(EXPECTED, extract_findings(REPORT)), "completed", 1.0),
        CaseResult("b", EXPECTED, Found(), score_case(EXPECTED, Found(commits=[OTHER])), "completed", 2.0),
        CaseResult("c", EXTERNAL, Found(), score_case(EXTERNAL, Found()), "completed", 1.0),
    ]
    summary = summarize(results)
    assert summary["top1_commit_pct"] == 66.7
    assert summary["file_pct"] == 50.0  # the external case has no file to find
    assert summary["said_not_in_repo_pct"] == 0.0
    assert summary["commit_score"] == round((1.0 - 1.0 + 0.5) / 3, 3)


def test_judge_answers_are_parsed_defensively() -> None:
    assert parse_judgement('{"score": 4, "reason": "Right commit."}') == {"score": 4, "reason": "Right commit."}
    assert parse_judgement("I'd say score: 2 because it is vague")["score"] == 2
    assert parse_judgement('{"score": 9}')["score"] is None
    assert parse_judgement("no idea")["score"] is None


def test_commits_in_ruled_out_sections_are_not_suspects() -> None:
    report = f"""\
## Report

**Commits ruled out**

- `{DECOY[:10]}` touched the file after the onset

**Suspect commits**

1. `{OTHER[:10]}` 'store: connect timeout of 3 s (#88)'
"""
    assert extract_findings(report).commits == [OTHER[:10]]


def test_other_ways_of_saying_the_cause_is_outside_the_repo() -> None:
    for text in (
        "No relevant commit: the partner's certificate expired.",
        "The cause is upstream: rates.partner.example refuses connections.",
        "This outage is not caused by a code change.",
    ):
        assert extract_findings(text).not_in_repo, text
    assert not extract_findings(REPORT).not_in_repo


def test_a_hidden_comment_in_a_report_scores_nothing() -> None:
    """A report is scored on what a reader sees: an HTML comment claiming facts is not read as data."""
    from gateway.eval import extract_findings

    hidden = '<!-- crewgate:facts {"facts": {"commit": "0123456789abcdef0123", "file_line": "a.py:3"}} -->'
    found = extract_findings("## Findings\n\nNothing stood out.\n\n" + hidden, None)
    assert found.commits == [] and found.file is None and found.line is None
