"""Catalog + crew name + inputs -> a fresh ``crewai.Crew`` for exactly one run.

A Crew, its Agents, Tasks, tools and LLMs hold per-run state (messages, usage
counters, caches), so nothing here is reused between runs. Each run gets its own
facts ledger (``agents.facts``), shared by reference by the run's tools and its
offline model: findings move between them out of band, never as text.

Text templates (descriptions, expected outputs, roles, goals, backstories) name
inputs as ``{name}``. For an optional input that was not given, a parenthetical
that names it is left out (``… at {logs} (window starts at: {since}).`` reads
``… at /var/log.``) and any other mention reads "not given".
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from agents.catalog import Catalog
from agents.facts import FactsLedger
from agents.findings import Evidence
from agents.hitl import QuestionDesk
from agents.models import make_llm
from agents.outputs import StepOutputs, instructions
from agents.registry import tool_class
from agents.schema import Process, StepSpec
from tools._result import ToolResult

__all__ = ["AssembledCrew", "build_crew", "render_unset"]

NOT_GIVEN = "not given"
log = structlog.get_logger("crewgate.assemble")


@dataclass
class AssembledCrew:
    crew: Any  # crewai.Crew
    agent_keys: dict[str, str]  # str(Agent.id) -> YAML agent name
    ledger: FactsLedger
    outputs: StepOutputs  # the declared step outputs and, after the run, the validated one
    evidence: Evidence  # counts and lists from the tool results, for the findings
    desk: QuestionDesk  # the stored answers to the ask_human tool's questions


def _tool(name: str, roots: Sequence[str | os.PathLike[str]], sink: _Sink, desk: QuestionDesk) -> Any:
    cls = tool_class(name)
    extra = {"desk": desk} if "desk" in cls.model_fields else {}
    return cls(roots=tuple(roots), facts_sink=sink, **extra)


class _Sink:
    """Where the run's tools report: the facts ledger, and the evidence kept for the findings."""

    def __init__(self, ledger: FactsLedger, evidence: Evidence) -> None:
        self._ledger = ledger
        self._evidence = evidence

    def record(self, result: ToolResult) -> None:
        self._ledger.record(result)
        try:
            self._evidence.record(result)
        except Exception:  # evidence only adds detail to the findings; it never fails a tool call
            log.warning("tool evidence not kept", tool=result.tool, exc_info=True)


def _bound(llm: Any, ledger: FactsLedger, outputs: StepOutputs, evidence: Evidence) -> Any:
    """The offline model reads and records this run's facts; other models need nothing."""
    if _is_offline(llm):
        llm.bind(ledger, outputs, evidence)
    return llm


def _is_offline(llm: Any) -> bool:
    from agents.offline import OfflineLLM

    return isinstance(llm, OfflineLLM)


def _shape_kwargs(step: StepSpec, outputs: StepOutputs) -> dict[str, Any]:
    """A guardrail that checks the step's answer against its declared shape (none if it declares none)."""
    if step.output_schema is None:
        return {}
    return {
        "guardrail": outputs.guardrail(step.name, step.output_retries),
        "guardrail_max_retries": step.output_retries,
    }


def _expected(text: str, step: StepSpec, agent: Any) -> str:
    """A language model is told the shape its answer must have; the offline model hands it over directly."""
    if step.output_schema is None or _is_offline(agent.llm):
        return text
    return text + instructions(step.output_schema)


def render_unset(text: str, unset: Collection[str]) -> str:
    """``text`` with the placeholders of the unset optional inputs ``unset`` resolved (see the module doc)."""
    if not unset or not text:
        return text
    names = "|".join(re.escape(n) for n in sorted(unset))
    text = re.sub(r"\s*\([^()]*\{(?:" + names + r")\}[^()]*\)", "", text)
    return re.sub(r"\{(?:" + names + r")\}", NOT_GIVEN, text)


def build_crew(
    catalog: Catalog,
    crew_name: str,
    inputs: Mapping[str, Any],
    *,
    roots: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str],
) -> AssembledCrew:
    """Build the crew. ``inputs`` must already be checked by ``validate_inputs``."""
    from crewai import Agent, Crew, Task
    from crewai import Process as CrewProcess

    spec = catalog.crew(crew_name)
    names = [s.agent for s in spec.steps]
    if spec.manager:
        names.append(spec.manager)
    ledger = FactsLedger(inputs)
    evidence = Evidence()
    outputs = StepOutputs({s.name: s.output_schema for s in spec.steps if s.output_schema is not None})
    sink = _Sink(ledger, evidence)
    desk = QuestionDesk()
    unset = {k for k, v in inputs.items() if v in ("", None) and k in spec.inputs and not spec.inputs[k].is_required}
    llms: dict[str, Any] = {}

    def text(template: str) -> str:
        return render_unset(template, unset)

    def llm_for(profile_name: str | None) -> Any:
        chosen, profile = catalog.profile(profile_name)
        if chosen not in llms:
            llms[chosen] = _bound(make_llm(chosen, profile, inputs=inputs, env=env), ledger, outputs, evidence)
        return llms[chosen]

    agents: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        a = catalog.agents[name]
        agents[name] = Agent(
            role=text(a.role),
            goal=text(a.goal),
            backstory=text(a.backstory),
            tools=[_tool(t, roots, sink, desk) for t in a.tools],
            llm=llm_for(a.model),
            max_iter=a.max_iter,
            max_rpm=a.max_rpm,
            max_execution_time=a.max_execution_time,
            max_retry_limit=a.max_retry_limit,
            allow_delegation=a.allow_delegation,
            respect_context_window=a.respect_context_window,
            reasoning=a.reasoning,
            cache=a.cache,
            verbose=a.verbose,
        )

    tasks: dict[str, Any] = {}
    for step in spec.steps:
        kwargs = _shape_kwargs(step, outputs)
        if step.context is not None:
            kwargs["context"] = [tasks[c] for c in step.context]
        tasks[step.name] = Task(
            name=step.name,
            description=text(step.description),
            expected_output=_expected(text(step.expected_output), step, agents[step.agent]),
            agent=agents[step.agent],
            **kwargs,
        )

    crew_kwargs: dict[str, Any] = {}
    if spec.process is Process.hierarchical:
        crew_kwargs["process"] = CrewProcess.hierarchical
        if spec.manager:
            crew_kwargs["manager_agent"] = agents[spec.manager]
        else:
            crew_kwargs["manager_llm"] = llm_for(spec.manager_model)
    else:
        crew_kwargs["process"] = CrewProcess.sequential
    worker_agents = [agents[n] for n in dict.fromkeys(s.agent for s in spec.steps)]
    crew = Crew(
        name=crew_name,
        agents=worker_agents,
        tasks=list(tasks.values()),
        max_rpm=spec.max_rpm,
        verbose=False,
        memory=False,
        tracing=False,
        **crew_kwargs,
    )
    agent_keys = {str(agent.id): name for name, agent in agents.items()}
    return AssembledCrew(crew=crew, agent_keys=agent_keys, ledger=ledger, outputs=outputs, evidence=evidence, desk=desk)
