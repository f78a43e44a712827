"""Load a config directory into a validated, versioned catalog.

Every YAML file under the directory is parsed with positions, checked against the
schema, merged, and cross-checked (agents, tools, models, steps, placeholders).
All problems are collected and reported together, each with file:line:column and
the YAML path.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agents._yaml import load_yaml, locate, to_plain
from agents.errors import ConfigError, ConfigIssue, UnknownCrewError
from agents.registry import tool_names
from agents.schema import NAME_PATTERN, AgentSpec, CrewSpec, ModelProfile, ModelsSpec, Process

__all__ = ["Catalog", "OFFLINE_PROFILE", "load_catalog", "validate_directory"]

OFFLINE_PROFILE = "offline"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)}")
_BUILTIN_PROFILES = {OFFLINE_PROFILE: ModelProfile(provider="offline")}


@dataclass(frozen=True)
class Catalog:
    """A validated config snapshot. ``version`` is a hash of the files' contents."""

    directory: Path
    version: str
    agents: dict[str, AgentSpec]
    crews: dict[str, CrewSpec]
    models: ModelsSpec
    files: tuple[str, ...] = field(default=())

    @property
    def profiles(self) -> dict[str, ModelProfile]:
        return {**_BUILTIN_PROFILES, **self.models.profiles}

    @property
    def default_profile(self) -> str:
        return self.models.default or OFFLINE_PROFILE

    def crew(self, name: str) -> CrewSpec:
        try:
            return self.crews[name]
        except KeyError:
            raise UnknownCrewError(name, sorted(self.crews)) from None

    def profile(self, name: str | None) -> tuple[str, ModelProfile]:
        chosen = name or self.default_profile
        return chosen, self.profiles[chosen]


@dataclass
class _Located:
    value: Any
    file: str
    root: Any
    path: tuple[str | int, ...]

    def issue(self, message: str, *extra: str | int) -> ConfigIssue:
        full = self.path + extra
        line, column = locate(self.root, full)
        return ConfigIssue(self.file, line, column, _dotted(full), message)


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _display_path(path: Path) -> str:
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else rel


def _pydantic_issues(
    err: ValidationError, file: str, root: Any, prefix: tuple[str | int, ...] = ()
) -> list[ConfigIssue]:
    issues = []
    for e in err.errors():
        loc = prefix + tuple(p for p in e["loc"] if p != "[key]")
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = f"unknown field '{loc[-1]}'"
        elif e["type"] == "string_pattern_mismatch":
            message = "names must be lower_snake_case: a letter, then letters, digits or _"
        elif e["type"] == "missing":
            message = f"'{loc[-1]}' is required"
        line, column = locate(root, loc, at_key=e["type"] == "extra_forbidden")
        issues.append(ConfigIssue(file, line, column, _dotted(loc), message))
    return issues


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _version(directory: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def validate_directory(
    directory: str | os.PathLike[str], *, relative_names: bool = False
) -> tuple[Catalog | None, list[ConfigIssue]]:
    """Load and check every YAML file under ``directory``; never raises for bad content.

    Issues name files as given (relative to the working directory when below it), or
    relative to ``directory`` itself with ``relative_names``.
    """
    base = Path(directory)

    def _display(path: Path) -> str:
        return path.relative_to(base).as_posix() if relative_names else _display_path(path)

    if not base.is_dir():
        return None, [ConfigIssue(str(base), 1, 1, "", "config directory does not exist")]
    files = _files(base)
    issues: list[ConfigIssue] = []
    agents: dict[str, _Located] = {}
    crews: dict[str, _Located] = {}
    models: _Located | None = None
    broken: set[str] = set()  # defined but invalid: already reported, not "unknown"
    unreadable = False  # a file failed to parse: its names are unknowable
    if not files:
        issues.append(ConfigIssue(_display(base), 1, 1, "", "no .yaml files found"))

    for path in files:
        display = _display(path)
        data, syntax = load_yaml(path, display)
        if syntax:
            issues.extend(syntax)
            unreadable = True
            continue
        if data is None:
            continue
        if not isinstance(data, dict):
            issues.append(ConfigIssue(display, 1, 1, "", "top level must be a mapping with agents, crews or models"))
            continue
        parsed, file_issues = _parse_file(data, display)
        issues.extend(file_issues)
        broken |= parsed["broken"]
        for name, spec in parsed["agents"].items():
            here = _Located(spec, display, data, ("agents", name))
            _register(agents, "agent", name, here, issues)
        for name, spec in parsed["crews"].items():
            here = _Located(spec, display, data, ("crews", name))
            _register(crews, "crew", name, here, issues)
        if parsed["models"] is not None:
            here = _Located(parsed["models"], display, data, ("models",))
            if models is not None:
                issues.append(here.issue(f"models are already defined in {models.file}"))
            else:
                models = here

    profiles = {**_BUILTIN_PROFILES, **(models.value.profiles if models else {})}
    issues.extend(_check_models(models, profiles))
    issues.extend(_check_agents(agents, profiles))
    for crew in crews.values():
        issues.extend(_check_crew(crew, agents, profiles))

    issues = [i for i in issues if not _about_broken(i, broken, unreadable)]
    if issues:
        return None, sorted(set(issues))
    catalog = Catalog(
        directory=base.resolve(),
        version=_version(base, files),
        agents={k: v.value for k, v in agents.items()},
        crews={k: v.value for k, v in crews.items()},
        models=models.value if models else ModelsSpec(),
        files=tuple(_display(p) for p in files),
    )
    return catalog, []


_SECTIONS: dict[str, type[BaseModel]] = {"agents": AgentSpec, "crews": CrewSpec}
_NAME = re.compile(NAME_PATTERN)


def _parse_file(data: Any, display: str) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Validate each agent, crew and profile on its own, so one bad entry hides no other."""
    parsed: dict[str, Any] = {"agents": {}, "crews": {}, "models": None, "broken": set()}
    issues: list[ConfigIssue] = []

    def fail(loc: tuple[str | int, ...], message: str) -> None:
        line, column = locate(data, loc)
        issues.append(ConfigIssue(display, line, column, _dotted(loc), message))

    for key in data:
        if key not in ("agents", "crews", "models"):
            fail((key,), f"unknown section '{key}' (expected agents, crews or models)")
    for section, model in _SECTIONS.items():
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            fail((section,), f"'{section}' must be a mapping of name to definition")
            continue
        for name, body in entries.items():
            if not isinstance(name, str) or not _NAME.match(name):
                fail((section, name), f"name '{name}' must be lower_snake_case: a letter, then letters, digits or _")
                continue
            if not isinstance(body, dict):
                fail((section, name), f"'{name}' must be a mapping of fields")
                continue
            try:
                parsed[section][name] = model.model_validate(to_plain(body))
            except ValidationError as e:
                parsed["broken"].add(name)
                issues.extend(_pydantic_issues(e, display, data, (section, name)))
    if "models" in data:
        parsed["models"] = _parse_models(data, display, issues, fail, parsed["broken"])
    return parsed, issues


def _parse_models(data: Any, display: str, issues: list[ConfigIssue], fail: Any, broken: set[str]) -> ModelsSpec | None:
    raw = data["models"]
    if not isinstance(raw, dict):
        fail(("models",), "'models' must be a mapping with default and profiles")
        return None
    for key in raw:
        if key not in ("default", "profiles"):
            fail(("models", key), f"unknown field '{key}' (expected default, profiles)")
    profiles: dict[str, ModelProfile] = {}
    raw_profiles = raw.get("profiles") or {}
    if not isinstance(raw_profiles, dict):
        fail(("models", "profiles"), "'profiles' must be a mapping of name to profile")
        raw_profiles = {}
    for name, body in raw_profiles.items():
        loc = ("models", "profiles", name)
        if not isinstance(name, str) or not _NAME.match(name):
            fail(loc, f"name '{name}' must be lower_snake_case: a letter, then letters, digits or _")
            continue
        if not isinstance(body, dict):
            fail(loc, f"profile '{name}' must be a mapping of fields")
            continue
        try:
            profiles[name] = ModelProfile.model_validate(to_plain(body))
        except ValidationError as e:
            broken.add(name)
            issues.extend(_pydantic_issues(e, display, data, loc))
    default = raw.get("default")
    if default is not None and (not isinstance(default, str) or not _NAME.match(default)):
        fail(("models", "default"), "default must be the name of a profile")
        default = None
    return ModelsSpec(default=default, profiles=profiles)


def _register(table: dict[str, _Located], kind: str, name: str, here: _Located, issues: list[ConfigIssue]) -> None:
    if name in table:
        first = table[name]
        where = f"{first.file}:{locate(first.root, first.path)[0]}"
        issues.append(here.issue(f"{kind} '{name}' is already defined at {where}"))
    else:
        table[name] = here


_UNKNOWN = re.compile(r"^unknown (?:agent|model profile) '([a-z0-9_]+)'")


def _about_broken(issue: ConfigIssue, broken: set[str], unreadable: bool) -> bool:
    """An "unknown X" issue about a name that exists but failed validation is noise,
    and so is any when some file could not be parsed at all."""
    match = _UNKNOWN.match(issue.message)
    return bool(match and (unreadable or match.group(1) in broken))


def load_catalog(directory: str | os.PathLike[str]) -> Catalog:
    """Like ``validate_directory`` but raises ``ConfigError`` listing every problem."""
    catalog, issues = validate_directory(directory)
    if catalog is None:
        raise ConfigError(issues)
    return catalog


def _known(names: Any) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "none"


def _check_models(models: _Located | None, profiles: dict[str, ModelProfile]) -> list[ConfigIssue]:
    if models is None or models.value.default is None or models.value.default in profiles:
        return []
    return [models.issue(f"unknown model profile '{models.value.default}' (known: {_known(profiles)})", "default")]


def _check_agents(agents: dict[str, _Located], profiles: dict[str, ModelProfile]) -> list[ConfigIssue]:
    issues = []
    known_tools = tool_names()
    for agent in agents.values():
        spec: AgentSpec = agent.value
        for i, tool in enumerate(spec.tools):
            if tool not in known_tools:
                issues.append(agent.issue(f"unknown tool '{tool}' (known tools: {_known(known_tools)})", "tools", i))
        if spec.model is not None and spec.model not in profiles:
            issues.append(agent.issue(f"unknown model profile '{spec.model}' (known: {_known(profiles)})", "model"))
    return issues


def _check_crew(crew: _Located, agents: dict[str, _Located], profiles: dict[str, ModelProfile]) -> list[ConfigIssue]:
    spec: CrewSpec = crew.value
    issues: list[ConfigIssue] = []
    declared = set(spec.inputs)
    for name, item in spec.inputs.items():
        issues.extend(crew.issue(msg, "inputs", name, "default") for msg in _default_problems(item))
    if spec.manager is not None and spec.manager not in agents:
        issues.append(crew.issue(f"unknown agent '{spec.manager}' (known: {_known(agents)})", "manager"))
    if spec.manager_model is not None and spec.manager_model not in profiles:
        known = _known(profiles)
        issues.append(crew.issue(f"unknown model profile '{spec.manager_model}' (known: {known})", "manager_model"))
    if spec.process is Process.hierarchical and spec.manager in {s.agent for s in spec.steps}:
        issues.append(crew.issue("the manager agent may not also be assigned a step", "manager"))

    position: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.name in position:
            message = f"duplicate step name '{step.name}' (also step {position[step.name]})"
            issues.append(crew.issue(message, "steps", i, "name"))
        else:
            position[step.name] = i

    used_agents: set[str] = set()
    for i, step in enumerate(spec.steps):
        if step.agent not in agents:
            issues.append(crew.issue(f"unknown agent '{step.agent}' (known: {_known(agents)})", "steps", i, "agent"))
        else:
            used_agents.add(step.agent)
        for j, ref in enumerate(step.context or []):
            if ref == step.name:
                issues.append(crew.issue(f"step '{step.name}' lists itself in its context", "steps", i, "context", j))
            elif ref not in position:
                message = f"unknown step '{ref}' in context (steps: {_known(position)})"
                issues.append(crew.issue(message, "steps", i, "context", j))
            elif position[ref] > i:
                issues.append(
                    crew.issue(
                        f"context step '{ref}' comes later; context may only name earlier steps",
                        "steps",
                        i,
                        "context",
                        j,
                    )
                )
        for fieldname in ("description", "expected_output"):
            for var in _undeclared(getattr(step, fieldname), declared):
                issues.append(
                    crew.issue(
                        f"placeholder '{{{var}}}' is not a declared input of crew (inputs: {_known(declared)})",
                        "steps",
                        i,
                        fieldname,
                    )
                )
    issues.extend(_cycles(crew, spec))
    if spec.manager in agents:
        used_agents.add(spec.manager)
    for name in sorted(used_agents):
        agent = agents[name]
        for fieldname in ("role", "goal", "backstory"):
            for var in _undeclared(getattr(agent.value, fieldname), declared):
                issues.append(
                    agent.issue(
                        f"placeholder '{{{var}}}' is not a declared input of crew '{crew.path[-1]}' "
                        f"(inputs: {_known(declared)})",
                        fieldname,
                    )
                )
    return issues


def _undeclared(text: str, declared: set[str]) -> list[str]:
    return sorted({v for v in PLACEHOLDER.findall(text) if v not in declared})


def _cycles(crew: _Located, spec: CrewSpec) -> list[ConfigIssue]:
    graph = {s.name: [c for c in s.context or [] if c != s.name] for s in spec.steps}
    index = {s.name: i for i, s in enumerate(spec.steps)}
    issues: list[ConfigIssue] = []
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    reported: set[frozenset[str]] = set()

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                loop = stack[stack.index(nxt) :] + [nxt]
                key = frozenset(loop)
                if key not in reported:
                    reported.add(key)
                    issues.append(
                        crew.issue("context forms a cycle: " + " -> ".join(loop), "steps", index[nxt], "context")
                    )
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    return issues


def _default_problems(item: Any) -> list[str]:
    from agents.inputs import coerce

    if item.default is None:
        return []
    try:
        coerce(item, item.default, check_paths=False)
    except ValueError as e:
        return [f"default {item.default!r}: {e}"]
    return []
