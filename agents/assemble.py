"""Catalog + crew name + inputs -> a fresh ``crewai.Crew`` for exactly one run.

A Crew, its Agents, Tasks, tools and LLMs hold per-run state (messages, usage
counters, caches), so nothing here is reused between runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.catalog import Catalog
from agents.models import make_llm
from agents.registry import tool_class
from agents.schema import Process

__all__ = ["AssembledCrew", "build_crew"]


@dataclass
class AssembledCrew:
    crew: Any  # crewai.Crew
    agent_keys: dict[str, str]  # str(Agent.id) -> YAML agent name


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
    llms: dict[str, Any] = {}

    def llm_for(profile_name: str | None) -> Any:
        chosen, profile = catalog.profile(profile_name)
        if chosen not in llms:
            llms[chosen] = make_llm(chosen, profile, inputs=inputs, env=env)
        return llms[chosen]

    agents: dict[str, Any] = {}
    for name in dict.fromkeys(names):
        a = catalog.agents[name]
        agents[name] = Agent(
            role=a.role,
            goal=a.goal,
            backstory=a.backstory,
            tools=[tool_class(t)(roots=tuple(roots)) for t in a.tools],
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
        kwargs: dict[str, Any] = {}
        if step.context is not None:
            kwargs["context"] = [tasks[c] for c in step.context]
        tasks[step.name] = Task(
            name=step.name,
            description=step.description,
            expected_output=step.expected_output,
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
    return AssembledCrew(crew=crew, agent_keys=agent_keys)
