"""The built-in ``offline`` model: deterministic, no network, no weights.

It is not a language model. It is a small rule-based policy that plays the model's
part in CrewAI's real agent loop through native tool calls:

1. It gathers *facts* from the run's facts ledger (``agents.facts``): the facts that
   earlier steps' answers ended with (for the steps this one takes as context), the
   facts of every tool result of this step, and the crew's inputs over all of them.
   Facts travel out of band: nothing is read back out of the prompt, the tool
   output text or any other text a log, a tool or a model produced.
2. While some offered tool has not been called and every required argument can be
   filled from the facts (argument name = fact name, plus a few aliases below), it
   answers with one tool call.
3. Otherwise it writes the step's answer from what the tools returned (their
   one-line summaries and the key findings) and records the facts the answer ends
   with in the ledger, for later steps.

The same inputs always produce the same calls and the same report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from crewai.events.types.llm_events import LLMCallType
from crewai.llms.base_llm import BaseLLM, llm_call_context
from pydantic import Field, PrivateAttr

from agents.facts import FactsLedger, ToolRecord
from agents.findings import Evidence, TriageFindings, build_triage_findings, lead_reason
from agents.hitl import feedback_pattern
from agents.outputs import OutputSchema, StepOutputs, json_schema_of
from tools._result import clip, printable

__all__ = ["OfflineLLM", "decide"]

# tool argument -> fact names that may fill it, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "path": ("file",),
    "start": ("line_window_start", "line"),
    "end": ("line_window_end", "line"),
    "query": ("signature", "service"),
}
# facts worth stating in an answer, with how to say them
_FINDINGS: tuple[tuple[str, str], ...] = (
    ("signature", "Top new error signature"),
    ("signature_count", "Occurrences of the new signature"),
    ("onset", "Onset"),
    ("commit", "Suspect commit"),
    ("commit_subject", "Suspect commit subject"),
    ("file_line", "Failing line"),
    ("runbook", "Runbook"),
    ("human_answer", "Answer from a person"),
)
ASK_HUMAN = "ask_human"
FEEDBACK_SHOWN = 2000  # characters of each reviewer feedback quoted in a revised answer
_SCALAR = (str, int, float, bool)


class OfflineLLM(BaseLLM):
    """Rule-based stand-in for a model; see the module docstring."""

    llm_type: str = "offline"
    model: str = "offline"
    provider: str = "offline"
    inputs: dict[str, Any] = Field(default_factory=dict)
    _ledger: FactsLedger | None = PrivateAttr(default=None)
    _outputs: StepOutputs | None = PrivateAttr(default=None)
    _evidence: Evidence | None = PrivateAttr(default=None)

    def bind(self, ledger: FactsLedger, outputs: StepOutputs | None = None, evidence: Evidence | None = None) -> None:
        """Read and record facts in this run's ledger (the assembly binds one per run); hand
        structured answers to ``outputs`` for the steps that declare a shape."""
        self._ledger = ledger
        self._outputs = outputs
        self._evidence = evidence

    @property
    def ledger(self) -> FactsLedger:
        if self._ledger is None:  # used on its own, outside an assembled run
            self._ledger = FactsLedger(self.inputs)
        return self._ledger

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 1_000_000

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        return _estimate_tokens(messages)

    def call(
        self,
        messages: Any,
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        with llm_call_context():
            self._emit_call_started_event(
                messages=messages,
                tools=tools,
                callbacks=callbacks,
                available_functions=available_functions,
                from_task=from_task,
                from_agent=from_agent,
            )
            step = getattr(from_task, "name", None)
            self.ledger.enter(step)
            answer = decide(
                messages,
                tools or [],
                self.ledger,
                step=step,
                context=_context_of(from_task),
                role=getattr(from_agent, "role", ""),
                outputs=self._outputs,
                evidence=self._evidence,
            )
            prompt_tokens = _estimate_tokens(messages)
            completion_tokens = _estimate_tokens(answer if isinstance(answer, str) else json.dumps(answer))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            self._track_token_usage_internal(usage)
            self._emit_call_completed_event(
                response=answer,
                call_type=LLMCallType.TOOL_CALL if isinstance(answer, list) else LLMCallType.LLM_CALL,
                from_task=from_task,
                from_agent=from_agent,
                messages=messages,
                usage=usage,
                finish_reason="tool_calls" if isinstance(answer, list) else "stop",
            )
        return answer


def decide(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    ledger: FactsLedger | Mapping[str, Any],
    *,
    step: str | None = None,
    context: list[str] | None = None,
    role: str = "",
    outputs: StepOutputs | None = None,
    evidence: Evidence | None = None,
) -> str | list[dict[str, Any]]:
    """The policy: the next tool call, or the final answer (whose facts go to the ledger).

    ``ledger`` may be a plain mapping of inputs, for a conversation outside a run. A step
    that declares an output shape (``outputs``) gets its structured answer handed over
    out of band; for ``triage_findings`` the answer is the incident report built on it.
    """
    if not isinstance(ledger, FactsLedger):
        ledger = FactsLedger(ledger)
    facts = gather_facts(ledger, step, context)
    called = _called_tools(messages)
    skipped: list[str] = []
    for tool in tools:
        function = tool.get("function", tool)
        name = function.get("name", "")
        if not name or name in called or name == ASK_HUMAN:
            continue
        parameters = function.get("parameters") or {}
        if _needs_unset_input(parameters, ledger.inputs):
            continue  # e.g. search_runbooks when no runbooks were given: not a failure, nothing to do
        arguments, missing = fill_arguments(parameters, facts)
        if missing:
            if set(missing) - set(ledger.inputs):  # a finding is missing, not an input left unset
                skipped.append(f"{name} (no {', '.join(missing)} was found)")
            continue
        return _call(called, name, arguments)
    question = _question(tools, called, facts)
    if question is not None:
        return _call(called, ASK_HUMAN, {"question": question})
    schema = outputs.schema_for(step) if outputs is not None else None
    records = ledger.tool_records(step)
    if outputs is not None and step and schema == "triage_findings":
        findings = build_triage_findings(facts, evidence or Evidence(), ledger.inputs.get("service"))
        outputs.offer(step, findings.model_dump(mode="json"))
        answer = write_report(messages, facts, records, findings)
    else:
        answer = write_answer(messages, facts, records, role=role, skipped=skipped)
        if outputs is not None and step and schema is not None:
            outputs.offer(step, _from_facts(schema, facts))
    ledger.record_answer(step, facts)
    return answer


def _call(called: set[str], name: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    call_id = f"call_{len(called) + 1}_{name}"
    return [{"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]


def _question(tools: list[dict[str, Any]], called: set[str], facts: Mapping[str, Any]) -> str | None:
    """With ask_human offered and no suspect commit found once the other tools ran: what to ask a person."""
    offered = {t.get("function", t).get("name") for t in tools}
    if ASK_HUMAN not in offered or ASK_HUMAN in called or facts.get("commit"):
        return None
    error = f"the new error `{facts['signature']}`" if facts.get("signature") else "the new error"
    where = f" raised at {facts['file_line']}" if facts.get("file_line") else ""
    when = f" around {facts['onset']}" if facts.get("onset") else " around the onset"
    text = (
        f"No commit in the repository explains {error}{where}. Do you know of a change outside the "
        f"repository{when}: a config value, a dependency, infrastructure or an upstream service?"
    )
    return clip(text, 2000)


def feedback_given(messages: list[dict[str, Any]]) -> list[str]:
    """What reviewers wrote, in order: the feedback messages CrewAI's loop (or a resumed run) added."""
    pattern = feedback_pattern()
    found = []
    for m in messages:
        match = pattern.match(_text(m.get("content"))) if m.get("role") == "user" else None
        if match:
            found.append(match.group("feedback").strip())
    return [f for f in found if f]


def _feedback_lines(messages: list[dict[str, Any]]) -> list[str]:
    """A revised answer's section quoting the feedback it was revised for (each bounded)."""
    given = feedback_given(messages)
    if not given:
        return []
    lines = ["## Reviewer feedback", "", "This answer was revised after review. The reviewer wrote:", ""]
    for item in given:
        lines += [*(f"> {_md(line)}" if line else ">" for line in clip(item, FEEDBACK_SHOWN).splitlines()), ""]
    return lines


def _from_facts(schema: OutputSchema, facts: dict[str, Any]) -> dict[str, Any]:
    """An object for a declared shape: each property that a fact of the same name fills."""
    properties = json_schema_of(schema).get("properties") or {}
    return {name: facts[name] for name in properties if name in facts}


def _needs_unset_input(parameters: dict[str, Any], inputs: Mapping[str, Any]) -> bool:
    """Whether the tool takes, by name, a crew input that was left unset and would use a default
    of its own instead (search_runbooks reading ./runbooks when no runbooks were given)."""
    properties: dict[str, Any] = parameters.get("properties") or {}
    return any(
        name in inputs and inputs[name] in ("", None) and prop.get("default") not in (None, "")
        for name, prop in properties.items()
        if isinstance(prop, dict)
    )


def gather_facts(ledger: FactsLedger, step: str | None, context: list[str] | None = None) -> dict[str, Any]:
    """The ledger's facts for ``step``, plus the working values derived from them."""
    facts = ledger.facts_for(step, context)
    if isinstance(facts.get("line"), int):
        facts["line_window_start"] = max(1, facts["line"] - 3)
        facts["line_window_end"] = facts["line"] + 3
    if facts.get("file") and facts.get("line"):
        facts["file_line"] = f"{facts['file']}:{facts['line']}"
    return facts


def fill_arguments(schema: dict[str, Any], facts: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Arguments for a tool from the facts; also the required ones no fact can fill."""
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    arguments: dict[str, Any] = {}
    missing: list[str] = []
    for name, prop in properties.items():
        value = None
        for key in (name, *ALIASES.get(name, ())):
            candidate = facts.get(key)
            if isinstance(candidate, _SCALAR) and candidate != "":
                value = candidate
                break
        if value is not None:
            arguments[name] = _as_type(value, prop)
        elif name in required and not _optional(prop):
            missing.append(name)
    return arguments, missing


def _optional(prop: dict[str, Any]) -> bool:
    """Strict schemas list every property as required; a default or a null type says otherwise."""
    kinds = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", []) if isinstance(p, dict)}
    return "default" in prop or "null" in kinds


def write_answer(
    messages: list[dict[str, Any]],
    facts: dict[str, Any],
    records: list[ToolRecord],
    *,
    role: str = "",
    skipped: list[str] | None = None,
) -> str:
    """The step's answer, for people: findings, what was ruled out, evidence. No hidden data."""
    summaries = [f"- `{r.tool}`: {_md(r.summary)}" for r in records if r.summary]
    failures = [f"- {failure}" for failure in _failures(messages)]
    lines = [f"## {role or 'Findings'}", ""]
    conclusion = _conclusion(facts)
    if conclusion:
        lines += [conclusion, ""]
    findings = [f"- **{label}:** {_md(facts[key])}" for key, label in _FINDINGS if facts.get(key) not in (None, "")]
    if findings:
        lines += ["**Findings**", "", *findings, ""]
    if facts.get("ruled_out"):
        lines += ["**Ruled out**", "", *(f"- {_md(item)}" for item in facts["ruled_out"]), ""]
    if summaries:
        lines += ["**Evidence**", "", *summaries, ""]
    if failures:
        lines += ["**Tool errors**", "", *failures, ""]
    if facts.get("trace"):
        lines += ["**Stack trace**", "", *_fenced(str(facts["trace"]).strip()), ""]
    if skipped:
        lines += ["**Not run**", "", *(f"- {s}" for s in skipped), ""]
    if not (findings or summaries or failures):
        lines += ["No tool produced findings for this step.", ""]
    lines += _feedback_lines(messages)
    return printable("\n".join(lines).rstrip("\n") + "\n")


def write_report(
    messages: list[dict[str, Any]], facts: dict[str, Any], records: list[ToolRecord], findings: TriageFindings
) -> str:
    """The incident report a person reads, built on the findings (the same ones ``output`` carries)."""
    lines = [f"# {_md(findings.title or 'Incident triage')}", "", _verdict(findings), ""]
    lines += [f"**Next action:** {_md(findings.next_action)}", ""]
    lines += _section("Findings", _finding_lines(findings))
    lines += _section("Ranked candidates", _candidate_lines(findings), numbered=True)
    lines += _section("Secondary symptoms", [_symptom(s.signature, s.count, s.onset) for s in findings.secondary])
    lines += _section("Ruled out", [_md(item) for item in findings.ruled_out])
    lines += _section("Evidence", [f"`{r.tool}`: {_md(r.summary)}" for r in records if r.summary])
    lines += _section("Examined", _examined_lines(findings))
    lines += _section("Tool errors", _failures(messages))
    if facts.get("trace"):
        lines += ["**Stack trace**", "", *_fenced(str(facts["trace"]).strip()), ""]
    if facts.get("human_answer"):
        lines += _section("Answer from a person", [_md(clip(str(facts["human_answer"]), FEEDBACK_SHOWN))])
    lines += _feedback_lines(messages)
    return printable("\n".join(lines).rstrip("\n") + "\n")


def _section(title: str, items: list[str], *, numbered: bool = False) -> list[str]:
    if not items:
        return []
    return [f"**{title}**", "", *((f"{i}. " if numbered else "- ") + item for i, item in enumerate(items, 1)), ""]


def _verdict(findings: TriageFindings) -> str:
    """The one paragraph that says what caused the incident, or plainly that nothing was found."""
    if findings.suspect is None:
        lead = "**No root cause found in this repository.**"
        if findings.cause_in_repo is False:
            lead = "**The cause is likely outside this repository; no commit here is to blame.**"
        looked = _looked_at(findings)
        return f"{lead} {_md(_sentence(findings.reason or ''))}{' ' + looked if looked else ''}"
    sha, subject = findings.suspect.sha[:12], findings.suspect.subject
    count = f"{findings.count} occurrences" if findings.count is not None else ""
    since = f"since {findings.onset}" if findings.onset else ""
    detail = f" ({', '.join(p for p in (count, since) if p)})" if count or since else ""
    deploy = _deploy_text(findings)
    commit = f"commit `{sha}`{_md(f' {subject!r}' if subject else '')}"
    shipped = _md(f", which reached production in deploy {deploy}" if deploy else "")
    at = _code(f"{findings.file}:{findings.line}")
    if _changed_the_failing_line(findings):
        cause = f", a line last changed before the onset by {commit}{shipped}."
    else:  # a dependency bump, a config value, a change elsewhere in the function: say which
        top = next((c for c in findings.candidates if c.sha and c.sha[:7] == findings.suspect.sha[:7]), None)
        reason = lead_reason(top.reasons) if top is not None else None
        why = f": {_md(reason)}" if reason else ""
        cause = f". The change behind it is {commit}{shipped}{why}."
    text = f"The new error {_code(findings.signature)}{_md(detail)} is raised at {at}{cause}"
    return f"{text} Confidence: **{findings.confidence}** ({_md(findings.reason or '')})."


def _changed_the_failing_line(findings: TriageFindings) -> bool:
    """Whether the named suspect is the commit that last changed the failing line itself."""
    assert findings.suspect is not None
    failing = f"{findings.file}:{findings.line}"
    return any(c.sha and c.sha[:7] == findings.suspect.sha[:7] and failing in c.lines[:1] for c in findings.candidates)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".") if text else ""


def _looked_at(findings: TriageFindings) -> str:
    seen = _examined_lines(findings)
    return ("Looked at: " + "; ".join(seen) + ".") if seen else ""


def _deploy_text(findings: TriageFindings) -> str:
    deploy = findings.deploy
    if deploy is None:
        return ""
    name = deploy.version or (deploy.sha[:12] if deploy.sha else "unnamed")
    parts = [name]
    if deploy.version and deploy.sha:
        parts.append(f"({deploy.sha[:12]})")
    if deploy.time:
        parts.append(f"at {deploy.time}")
    if deploy.previous_version:
        parts.append(f"after {deploy.previous_version}")
    return " ".join(parts)


def _finding_lines(findings: TriageFindings) -> list[str]:
    pairs: list[tuple[str, Any]] = [
        ("Top new error signature", findings.signature),
        ("Occurrences of the new signature", findings.count),
        ("Onset", findings.onset),
        ("Deploy", _deploy_text(findings) or None),
        ("Suspect commit", findings.suspect.sha if findings.suspect else None),
        ("Suspect commit subject", findings.suspect.subject if findings.suspect else None),
        ("Failing line" if findings.suspect else "Innermost frame in the repository", _where(findings)),
        ("Confidence", findings.confidence),
        ("Runbook", findings.runbook),
    ]
    return [f"**{label}:** {_md(value)}" for label, value in pairs if value not in (None, "")]


def _where(findings: TriageFindings) -> str | None:
    if not findings.file:
        return None
    return f"{findings.file}:{findings.line}" if findings.line else findings.file


def _candidate_lines(findings: TriageFindings) -> list[str]:
    if findings.suspect is not None and len(findings.candidates) < 2:
        return []
    out = []
    for c in findings.candidates:
        score = f" (score {c.score:g})" if c.score is not None else ""
        head = " ".join(p for p in (f"`{c.sha[:12]}`" if c.sha else "", _md(repr(c.subject)) if c.subject else "") if p)
        out.append(f"{head}{score}: {_md('; '.join(c.reasons[:3]))}".strip(": "))
    return out


def _symptom(signature: str, count: int | None, onset: str | None) -> str:
    detail = ", ".join(
        p for p in (f"{count} occurrences" if count is not None else "", f"since {onset}" if onset else "") if p
    )
    return f"{_md(signature)}{f' ({_md(detail)})' if detail else ''}"


def _examined_lines(findings: TriageFindings) -> list[str]:
    seen = findings.examined
    logs = [f"{n:,} {label}" for n, label in ((seen.log_files, "log file(s)"), (seen.records, "log records"),
                                               (seen.signatures, "error signature(s)")) if n is not None]  # fmt: skip
    out = [", ".join(logs)] if logs else []
    if seen.frames is not None:
        out.append(f"{seen.frames} stack frame(s)")
    if seen.repo_files:
        out.append("repository files " + ", ".join(_code(f) for f in seen.repo_files[:8]))
    if seen.commits:
        out.append(f"{len(seen.commits)} commit(s) considered: " + ", ".join(_code(c[:7]) for c in seen.commits[:8]))
    return out


def _failures(messages: list[dict[str, Any]]) -> list[str]:
    """Tool calls that failed (their text is shown, bounded and escaped)."""
    return [
        _md(_text(m.get("content")).strip()[:300])
        for m in messages
        if m.get("role") == "tool" and not isinstance(_json(_text(m.get("content"))), dict)
    ]


def _fenced(text: str) -> list[str]:
    """A code block that text containing backticks cannot close early."""
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    return [fence, text, fence]


def _longest_run(text: str, char: str) -> int:
    best = run = 0
    for c in text:
        run = run + 1 if c == char else 0
        best = max(best, run)
    return best


def _conclusion(facts: dict[str, Any]) -> str | None:
    """One sentence tying the findings together, when there is enough to say it."""
    if not (facts.get("signature") and facts.get("file_line") and facts.get("commit")):
        return None
    count = f" ({facts['signature_count']} occurrences" if facts.get("signature_count") else " ("
    since = f" since {facts['onset']})" if facts.get("onset") else ")"
    subject = f" '{facts['commit_subject']}'" if facts.get("commit_subject") else ""
    return (
        (
            f"The new error {_code(facts['signature'])}{count}{since} is raised at {_code(facts['file_line'])}, "
            f"a line last changed before the onset by commit {_code(str(facts['commit'])[:12])}{subject}."
        )
        .replace(" ( since", " (since")
        .replace(" ()", "")
    )


def _code(value: Any) -> str:
    """``value`` as an inline code span, shown exactly: Markdown escapes do not work inside one,
    so the fence is longer than any run of backticks in it (CommonMark's rule)."""
    text = str(value).replace("\n", " ")
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")) else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md(value: Any) -> str:
    """Plain text safe inside Markdown: template placeholders like <ip> are not HTML tags."""
    text = str(value)
    for char in ("\\", "<", ">", "*", "_", "`"):
        text = text.replace(char, "\\" + char)
    return text


def _context_of(task: Any) -> list[str] | None:
    """Names of the steps ``task`` takes as context; None when it did not say (CrewAI's default)."""
    context = getattr(task, "context", None)
    if not isinstance(context, list):
        return None
    return [str(getattr(t, "name", "") or "") for t in context]


def _called_tools(messages: list[dict[str, Any]]) -> set[str]:
    called: set[str] = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            if function.get("name"):
                called.add(function["name"])
    return called


def _as_type(value: Any, prop: dict[str, Any]) -> Any:
    kinds = {prop.get("type")} | {p.get("type") for p in prop.get("anyOf", []) if isinstance(p, dict)}
    if "integer" in kinds and not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if "string" in kinds and not isinstance(value, str):
        return str(value)
    return value


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def _estimate_tokens(messages: Any) -> int:
    if isinstance(messages, str):
        return (len(messages) + 3) // 4
    return sum((len(_text(m.get("content"))) + 3) // 4 for m in messages if isinstance(m, dict))
