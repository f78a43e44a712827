"""The findings of an incident triage: the ``triage_findings`` output model and how the
offline model fills it from a run's facts.

The rule for naming a cause is deliberately strict: a commit is presented as the cause
only when the suspect tool named a clear winner (the ``commit`` fact), the failing
frame is in the repository and nothing says the cause lies outside it. Otherwise the
findings say "no root cause found in this repository", list the ranked candidates (if
any) with ``confidence`` low or none, and say what was examined.

Everything here comes from tool results and facts (hostile text from logs and
repositories): strings are bounded and only ever shown, never followed.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from tools._result import ToolResult, clip

__all__ = [
    "Candidate",
    "DeployInfo",
    "Evidence",
    "Examined",
    "SuspectCommit",
    "Symptom",
    "TriageFindings",
    "build_triage_findings",
    "same_sha",
]

Confidence = Literal["high", "medium", "low", "none"]
MAX_TEXT = 2000
MAX_ITEMS = 20
RECENT_DAYS = 7  # a commit this close before the onset is a recent change
CLEAR_RATIO = 1.5  # a top candidate scoring this many times the next is well ahead
_HEX = re.compile(r"^[0-9a-f]{7,40}$")
# errors of the network, name resolution or TLS: a code change is rarely their cause
_NETWORK = re.compile(
    r"connection refused|connection reset|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|"
    r"no such host|name or service not known|temporary failure in name resolution|UnknownHostException|"
    r"ConnectException|certificate verify|x509|certificate has expired|PKIX path|SSLHandshakeException|"
    r"tls: |no route to host|network is unreachable",
    re.IGNORECASE,
)
_LEAD_SHA = re.compile(r"^\s*([0-9a-f]{7,40})\b")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SuspectCommit(_Out):
    sha: str = Field(pattern=r"^[0-9a-f]{7,40}$", description="full or abbreviated commit sha")
    subject: str | None = Field(default=None, max_length=MAX_TEXT)


class DeployInfo(_Out):
    version: str | None = Field(default=None, max_length=200)
    sha: str | None = Field(default=None, max_length=64)
    time: str | None = Field(default=None, max_length=64, description="ISO 8601")
    previous_version: str | None = Field(default=None, max_length=200)


class Candidate(_Out):
    sha: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=MAX_TEXT)
    score: float | None = None
    date: str | None = Field(default=None, max_length=64, description="commit date, ISO 8601")
    lines: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, description="failing lines it last changed")
    reasons: list[str] = Field(default_factory=list, max_length=MAX_ITEMS)


class Symptom(_Out):
    signature: str = Field(max_length=MAX_TEXT)
    count: int | None = None
    onset: str | None = None


class Examined(_Out):
    log_files: int | None = Field(default=None, description="log files read")
    records: int | None = Field(default=None, description="log records read")
    signatures: int | None = Field(default=None, description="error signatures found")
    frames: int | None = Field(default=None, description="stack frames mapped")
    repo_files: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, description="repository files looked at")
    commits: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, description="commits considered")
    tools: list[str] = Field(default_factory=list, max_length=MAX_ITEMS, description="tools that ran")


class TriageFindings(_Out):
    """What an incident triage found, and how sure it is."""

    title: str | None = Field(default=None, max_length=MAX_TEXT, description="service: signature since HH:MM UTC")
    suspect: SuspectCommit | None = Field(default=None, description="the commit presented as the cause, if any")
    file: str | None = Field(default=None, max_length=MAX_TEXT, description="failing file, repository path")
    line: int | None = Field(default=None, ge=1)
    signature: str | None = Field(default=None, max_length=MAX_TEXT, description="the new error signature")
    count: int | None = Field(default=None, ge=0)
    onset: str | None = Field(default=None, max_length=64, description="first occurrence, ISO 8601")
    deploy: DeployInfo | None = None
    secondary: list[Symptom] = Field(default_factory=list, max_length=MAX_ITEMS, description="other new signatures")
    ruled_out: list[str] = Field(default_factory=list, max_length=50)
    candidates: list[Candidate] = Field(default_factory=list, max_length=3, description="ranked, best first")
    confidence: Confidence = Field(description="confidence in the stated cause; none when no cause was found")
    cause_in_repo: bool | None = Field(description="false: the cause lies outside the repository; null: unknown")
    reason: str | None = Field(default=None, max_length=MAX_TEXT, description="why this confidence")
    examined: Examined = Field(default_factory=Examined)
    runbook: str | None = Field(default=None, max_length=MAX_TEXT, description="path#section, relative to its root")
    next_action: str = Field(min_length=1, max_length=MAX_TEXT)


# --------------------------------------------------------------------------------------
# Evidence: what the run's tools returned beyond their facts (counts, ranked lists)
# --------------------------------------------------------------------------------------


class EvidenceState(BaseModel):
    """``Evidence`` as data: what a paused run keeps of it (bounded like the findings)."""

    model_config = ConfigDict(extra="forbid")

    tools: list[Annotated[str, StringConstraints(max_length=100)]] = Field(default_factory=list, max_length=100)
    log_files: int | None = None
    records: int | None = None
    signatures: int | None = None
    new_signatures: list[dict[str, JsonValue]] = Field(default_factory=list, max_length=MAX_ITEMS)
    frames: int | None = None
    repo_files: list[Annotated[str, StringConstraints(max_length=300)]] = Field(default_factory=list, max_length=10_000)
    candidates: list[dict[str, JsonValue]] = Field(default_factory=list, max_length=MAX_ITEMS)
    commits: list[Annotated[str, StringConstraints(max_length=12)]] = Field(default_factory=list, max_length=10_000)
    outside: dict[str, JsonValue] | None = None
    clear: bool | None = None
    verdict: Annotated[str, StringConstraints(max_length=300)] | None = None


class Evidence:
    """Counts and ranked lists from one run's tool results, kept for the findings. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tools: list[str] = []
        self.log_files: int | None = None
        self.records: int | None = None
        self.signatures: int | None = None
        self.new_signatures: list[dict[str, Any]] = []
        self.frames: int | None = None
        self.repo_files: list[str] = []
        self.candidates: list[dict[str, Any]] = []
        self.commits: list[str] = []
        self.outside: dict[str, Any] | None = None
        self.clear: bool | None = None  # the suspect ranking's own verdict, when it gives one
        self.verdict: str | None = None

    def state(self) -> dict[str, Any]:
        """The counts and lists as plain JSON data (``restore`` takes them back)."""
        with self._lock:
            state = {name: getattr(self, name) for name in EvidenceState.model_fields}
            return json.loads(json.dumps(state, default=str))  # type: ignore[no-any-return]

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot from ``state``; ValueError (pydantic's) when it has the wrong shape."""
        checked = EvidenceState.model_validate(dict(state))
        with self._lock:
            for name in EvidenceState.model_fields:
                setattr(self, name, copy.deepcopy(getattr(checked, name)))

    def record(self, result: ToolResult) -> None:
        data = result.data if isinstance(result.data, dict) else {}
        with self._lock:
            if result.tool not in self.tools:
                self.tools.append(result.tool)
            self._counts(data)
            if result.tool == "error_signatures":
                self._signatures(data)
            elif result.tool in ("map_stack_frames", "suspect_commits"):
                self._code(data)

    def _counts(self, data: Mapping[str, Any]) -> None:
        files, records = data.get("files"), data.get("records", data.get("records_read"))
        if isinstance(files, int) and not isinstance(files, bool):
            self.log_files = max(self.log_files or 0, files)
        if isinstance(records, int) and not isinstance(records, bool):
            self.records = max(self.records or 0, records)

    def _signatures(self, data: Mapping[str, Any]) -> None:
        items = [s for s in data.get("signatures") or [] if isinstance(s, dict)]
        more = data.get("more_signatures")
        self.signatures = len(items) + (more if isinstance(more, int) else 0)
        self.new_signatures = [s for s in items if s.get("status") == "new"][:MAX_ITEMS]

    def _code(self, data: Mapping[str, Any]) -> None:
        frames = [f for f in data.get("frames") or [] if isinstance(f, dict)]
        if frames and "repo_path" in frames[0]:
            self.frames = len(frames)
        for frame in frames:
            path = frame.get("repo_path", frame.get("file"))
            if isinstance(path, str) and path and path not in self.repo_files:
                self.repo_files.append(clip(path, 300))
        candidates = [c for c in data.get("candidates") or [] if isinstance(c, dict)]
        if candidates:
            self.candidates = candidates[:MAX_ITEMS]
        for item in candidates + [c for c in data.get("ruled_out") or [] if isinstance(c, dict)]:
            sha = str(item.get("short_sha") or item.get("sha") or "")[:12]
            if sha and sha not in self.commits:
                self.commits.append(sha)
        self._verdict(data)

    def _verdict(self, data: Mapping[str, Any]) -> None:
        """The suspect ranking's own verdict (clear winner or not, and why), when it gives one."""
        if isinstance(data.get("outside_repo"), dict):
            self.outside = dict(data["outside_repo"])
        verdict = data.get("confidence")
        if isinstance(data.get("clear"), bool):
            self.clear = data["clear"]
        elif isinstance(verdict, str) and isinstance(data.get("outside_repo"), dict):  # a ranking with a verdict
            self.clear = verdict == "clear winner"
        if self.clear is not None and isinstance(verdict, str):
            self.verdict = clip(verdict, 300) or None


# --------------------------------------------------------------------------------------
# Building the findings
# --------------------------------------------------------------------------------------


def _str(facts: Mapping[str, Any], key: str, limit: int = MAX_TEXT) -> str | None:
    value = facts.get(key)
    if isinstance(value, str) and value.strip():
        return clip(value.strip(), limit)
    return None


def _int(facts: Mapping[str, Any], key: str) -> int | None:
    value = facts.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _outside(facts: Mapping[str, Any], evidence: Evidence) -> str | None:
    """Why the cause is likely outside the repository, as the tools (or the error itself) say; or None."""
    fact = facts.get("outside_repo")
    if isinstance(fact, dict):
        if fact.get("likely"):
            return clip(str(fact.get("reason") or "the cause is likely outside the repository"), 500)
        return None
    if isinstance(fact, str) and fact.strip():
        return clip(fact.strip(), 500)
    if evidence.outside and evidence.outside.get("likely"):
        return clip(str(evidence.outside.get("reason") or "the cause is likely outside the repository"), 500)
    network = _NETWORK.search(str(facts.get("signature") or "")[:4000])
    if network and not facts.get("file"):
        failure = f"the error is a connection, DNS or TLS failure ('{network.group(0)}')"
        return f"{failure} and no stack frame is in the repository"
    return None


def _candidate(item: Any) -> Candidate | None:
    if isinstance(item, dict):
        reasons = item.get("reasons") or ([item["reason"]] if item.get("reason") else [])
        score = item.get("score")
        return Candidate(
            sha=clip(str(item.get("sha") or item.get("short_sha") or ""), 64) or None,
            subject=clip(str(item["subject"]), MAX_TEXT) if item.get("subject") else None,
            score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
            date=clip(item["date"], 64) if isinstance(item.get("date"), str) else None,
            lines=[clip(str(x), 300) for x in item.get("lines") or [] if isinstance(x, str)][:10],
            reasons=[clip(str(r), 300) for r in reasons if r][:5],
        )
    if isinstance(item, str) and item.strip():
        match = _LEAD_SHA.match(item.lower())
        return Candidate(sha=match.group(1) if match else None, reasons=[clip(item.strip(), 300)])
    return None


def _candidates(facts: Mapping[str, Any], evidence: Evidence) -> list[Candidate]:
    raw = evidence.candidates or facts.get("candidates") or []
    ranked = [c for c in (_candidate(item) for item in (raw if isinstance(raw, list) else [])) if c is not None]
    return ranked[:3]


def same_sha(a: str | None, b: str | None) -> bool:
    """Whether two full or abbreviated (at least 7 characters) shas name the same commit."""
    if not a or not b:
        return False
    a, b = a.lower(), b.lower()
    return min(len(a), len(b)) >= 7 and (a.startswith(b) or b.startswith(a))


def _recent(candidate: Candidate, onset: str | None) -> bool:
    """Committed within RECENT_DAYS before the onset (by its date, or as its reasons say)."""
    when, start = _time(candidate.date), _time(onset)
    if when is not None and start is not None:
        return timedelta(0) <= start - when <= timedelta(days=RECENT_DAYS)
    return any("before the onset" in r for r in candidate.reasons)


def _time(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def lead_reason(reasons: list[str]) -> str | None:
    """The most telling of a candidate's reasons: a bump of the package the error is raised in, or
    a value the error quotes, before the generic ones."""
    for reason in reasons:
        if reason.startswith("bumped ") or "error text mentions" in reason or "value the error" in reason:
            return reason
    return reasons[0] if reasons else None


def _grade(
    suspect: str, candidates: list[Candidate], file_line: str, onset: str | None
) -> tuple[Confidence | None, str]:
    """How strongly the evidence points at the named suspect; None: too weakly to name it as the cause."""
    top = next((c for c in candidates if same_sha(c.sha, suspect)), None)
    if top is None:
        return "medium", "named by the suspect ranking; its evidence was not returned"
    exact = file_line in top.lines[:1] or any(
        r.startswith(f"last changed {file_line},") or r == f"last changed {file_line}" for r in top.reasons
    )
    recent = _recent(top, onset)
    others = [c.score for c in candidates if c is not top and c.score is not None]
    ahead = not others or (top.score is not None and top.score >= CLEAR_RATIO * max(others))
    if exact and recent and ahead:
        return "high", "it last changed the failing line shortly before the onset, well ahead of any other commit"
    if exact and recent:
        return "medium", "it last changed the failing line shortly before the onset, but other commits score close"
    if recent and ahead:
        evidence = lead_reason(top.reasons) or "it changed code near the failing line"
        return "low", f"{evidence}; shortly before the onset, not the failing line itself"
    if exact:
        return None, f"{suspect[:7]} last changed the failing line, but long before the onset: it predates the incident"
    return None, f"{suspect[:7]} neither changed the failing line nor came shortly before the onset"


def _deploy(facts: Mapping[str, Any]) -> DeployInfo | None:
    deploy = DeployInfo(
        version=_str(facts, "deploy_version", 200),
        sha=_str(facts, "deploy_sha", 64),
        time=_str(facts, "deployed_at", 64),
        previous_version=_str(facts, "previous_version", 200),
    )
    return deploy if any(deploy.model_dump().values()) else None


def _secondary(evidence: Evidence, signature: str | None) -> list[Symptom]:
    out = []
    for item in evidence.new_signatures:
        text = item.get("signature")
        if not isinstance(text, str) or not text or text == signature:
            continue
        count, onset = item.get("count"), item.get("first_seen")
        out.append(
            Symptom(
                signature=clip(text, MAX_TEXT),
                count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                onset=onset if isinstance(onset, str) else None,
            )
        )
    return out[:5]


def _runbook(facts: Mapping[str, Any]) -> str | None:
    """The runbook section, as a path relative to its root (an absolute path is cut to its name)."""
    value = _str(facts, "runbook", 500)
    if value is None:
        return None
    path, sep, heading = value.partition("#")
    if path.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", path):
        path = re.split(r"[\\/]", path)[-1]
    return path + sep + heading


def _examined(evidence: Evidence, facts: Mapping[str, Any]) -> Examined:
    files = list(evidence.repo_files)
    if isinstance(facts.get("file"), str) and facts["file"] not in files:
        files.insert(0, clip(facts["file"], 300))
    return Examined(
        log_files=evidence.log_files,
        records=evidence.records,
        signatures=evidence.signatures,
        frames=evidence.frames,
        repo_files=files[:MAX_ITEMS],
        commits=evidence.commits[:MAX_ITEMS],
        tools=evidence.tools[:MAX_ITEMS],
    )


def _since(onset: str | None) -> str:
    match = re.match(r"^\d{4}-\d{2}-\d{2}[T ](\d{2}:\d{2})", onset or "")
    return f" since {match.group(1)} UTC" if match else ""


def title_of(service: str | None, signature: str | None, onset: str | None) -> str:
    name = service or "incident"
    if not signature:
        return f"{name}: no new error found in the logs"
    return f"{name}: {_shortened(signature)}{_since(onset)}"


def _shortened(signature: str, limit: int = 100) -> str:
    """The first line of a signature, cut with an ellipsis past ``limit`` characters."""
    first = signature.strip().splitlines()[0] if signature.strip() else signature
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def build_triage_findings(facts: Mapping[str, Any], evidence: Evidence, service: str | None) -> TriageFindings:
    """The findings, deterministically, from the run's facts and tool evidence."""
    signature = _str(facts, "signature")
    onset = _str(facts, "onset", 64)
    file = _str(facts, "file", 500)
    line = _int(facts, "line")
    findings = TriageFindings(
        title=title_of(service, signature, onset),
        file=file,
        line=line if line and line > 0 else None,
        signature=signature,
        count=_int(facts, "signature_count"),
        onset=onset,
        deploy=_deploy(facts),
        secondary=_secondary(evidence, signature),
        ruled_out=[clip(str(r), 500) for r in facts.get("ruled_out") or [] if isinstance(r, str)][:50],
        candidates=_candidates(facts, evidence),
        confidence="none",
        cause_in_repo=None,
        examined=_examined(evidence, facts),
        runbook=_runbook(facts),
        next_action="-",
    )
    _conclude(findings, facts, evidence)
    findings.next_action = next_action(findings)
    return findings


def _conclude(findings: TriageFindings, facts: Mapping[str, Any], evidence: Evidence) -> None:
    """Fill suspect, confidence, cause_in_repo and reason (see the module doc for the rule)."""
    commit = _str(facts, "commit", 64)
    outside = _outside(facts, evidence)
    if not findings.signature:
        findings.reason = "no new error signature was found in the logs"
    elif outside:
        findings.cause_in_repo, findings.confidence, findings.reason = False, "low", outside
    elif commit and _HEX.match(commit.lower()) and findings.file and findings.line:
        _judge_suspect(findings, commit.lower(), _str(facts, "commit_subject"), evidence)
    elif findings.candidates:
        findings.confidence = "low"
        findings.reason = "no clear suspect: " + (
            evidence.verdict or "the ranking found no clear winner among the commits that touched the failing code"
        )
    elif evidence.frames and not findings.file:
        findings.reason = f"none of the {evidence.frames} stack frame(s) maps to a file in the repository"
    else:
        findings.reason = "no commit could be tied to the failing code"


def _quotes_the_error(commit: str, candidates: list[Candidate]) -> bool:
    """Whether the ranking says the commit set a value the error text quotes (a host, a port, a timeout)."""
    top = next((c for c in candidates if same_sha(c.sha, commit)), None)
    return top is not None and any("error text mentions" in r or "value the error" in r for r in top.reasons)


def _judge_suspect(findings: TriageFindings, commit: str, subject: str | None, evidence: Evidence) -> None:
    confidence, reason = _grade(commit, findings.candidates, f"{findings.file}:{findings.line}", findings.onset)
    if evidence.clear is not None:  # the ranking judged the winner itself: it is named only when clear
        if not evidence.clear:
            findings.confidence = "low" if findings.candidates else "none"
            findings.reason = f"no clear suspect: {evidence.verdict or reason}"
            return
        confidence = confidence if confidence == "high" else "medium"
    network = _NETWORK.search(findings.signature or "")
    if network and not _quotes_the_error(commit, findings.candidates):  # code rarely breaks TLS, DNS or connections
        findings.cause_in_repo, findings.confidence = False, "low"
        failure = f"the error is a connection, DNS or TLS failure ('{network.group(0)}')"
        findings.reason = f"{failure}, likely outside the repository (of the best candidate {commit[:7]}: {reason})"
        return
    findings.reason = reason
    if confidence is None:
        findings.confidence = "low" if findings.candidates else "none"
        return
    findings.suspect = SuspectCommit(sha=commit, subject=subject)
    findings.cause_in_repo, findings.confidence = True, confidence


def next_action(findings: TriageFindings) -> str:
    """One concrete next step, citing the runbook when one applies."""
    runbook = f" Runbook: {findings.runbook}." if findings.runbook else ""
    if findings.suspect is not None and findings.confidence in ("high", "medium"):
        where = f" (deployed in {findings.deploy.version})" if findings.deploy and findings.deploy.version else ""
        return (
            f"Revert or roll back commit {findings.suspect.sha[:12]}{where}, then confirm that the new error "
            f"({_shortened(findings.signature or 'see above')}) stops.{runbook}"
        )
    if findings.suspect is not None:
        return f"Confirm commit {findings.suspect.sha[:12]} against the failing line before reverting it.{runbook}"
    if findings.cause_in_repo is False:
        return (
            "Check the service, certificate, network or dependency the error names (it starts outside this "
            f"repository) and escalate to its owner.{runbook}"
        )
    if findings.candidates:
        return f"Review the ranked candidates against the failing code; none is clear enough to revert.{runbook}"
    if not findings.signature:
        return "Widen the log window (since) or point logs at the affected service's files."
    return f"Look at the failing code and recent configuration or data changes by hand.{runbook}"
