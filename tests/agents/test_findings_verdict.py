"""The report's opening sentence says what the suspect commit did, not a stock phrase."""

from __future__ import annotations

from agents.findings import Candidate, SuspectCommit, TriageFindings
from agents.offline import _verdict

BUMP = "bumped pyjwt 1.7.1 → 2.9.0 in requirements.txt:5; the error is raised inside jwt"


def findings(lines: list[str], reasons: list[str]) -> TriageFindings:
    return TriageFindings(
        suspect=SuspectCommit(sha="62847ec99a75ef01b175fee6ac9dc4e86577f7db", subject="bump pyjwt"),
        file="accounts/auth.py",
        line=17,
        signature="jwt.exceptions.DecodeError",
        count=597,
        candidates=[Candidate(sha="62847ec99a75", lines=lines, reasons=reasons)],
        confidence="medium",
        reason=BUMP,
        cause_in_repo=True,
        next_action="Roll back the bump.",
    )


def test_a_dependency_bump_is_named_for_what_it_changed() -> None:
    text = _verdict(
        findings(["requirements.txt:5"], ["changed dependency manifest or lock file requirements.txt", BUMP])
    )
    assert "a line last changed" not in text
    assert "The change behind it is commit `62847ec99a75`" in text
    assert "bumped pyjwt 1.7.1 → 2.9.0 in requirements.txt:5" in text


def test_a_commit_that_changed_the_failing_line_is_said_to_have_done_so() -> None:
    text = _verdict(findings(["accounts/auth.py:17"], ["last changed accounts/auth.py:17, the innermost frame's line"]))
    assert "is raised at `accounts/auth.py:17`, a line last changed before the onset by commit `62847ec99a75`" in text
