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
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from agents._yaml import YamlLimits, decode, locate, parse_yaml, to_plain
from agents.errors import ConfigError, ConfigIssue, UnknownCrewError, suggest
from agents.outputs import schema_problems
from agents.registry import tool_names
from agents.schema import NAME_PATTERN, AgentSpec, CrewSpec, ModelProfile, ModelsSpec, Process

__all__ = [
    "Catalog",
    "OFFLINE_PROFILE",
    "YamlLimits",
    "check_texts",
    "config_version",
    "drop_unknowable",
    "load_catalog",
    "read_config_dir",
    "validate_directory",
    "validate_texts",
]

OFFLINE_PROFILE = "offline"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)}")
_BUILTIN_PROFILES = {OFFLINE_PROFILE: ModelProfile(provider="offline")}


@dataclass(frozen=True)
class Catalog:
    """A validated config snapshot. ``version`` is a hash of the files' contents.

    ``texts`` are exactly the files that were parsed and hashed, by relative name:
    the snapshot to store under ``version``.
    """

    directory: Path
    version: str
    agents: dict[str, AgentSpec]
    crews: dict[str, CrewSpec]
    models: ModelsSpec
    files: tuple[str, ...] = field(default=())
    texts: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

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

    def issue(self, message: str, *extra: str | int, hint: str = "") -> ConfigIssue:
        full = self.path + extra
        line, column = locate(self.root, full)
        return ConfigIssue(self.file, line, column, _dotted(full), message, hint)

    def unknown(
        self, kind: str, name: str, known: Iterable[str], *extra: str | int, label: str = "known"
    ) -> ConfigIssue:
        """ "unknown agent 'x' (known: a, b)", with a "did you mean" hint when one is close."""
        known = sorted(known)
        return self.issue(f"unknown {kind} '{name}' ({label}: {_known(known)})", *extra, hint=suggest(name, known))


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _display_path(path: Path) -> str:
    rel = os.path.relpath(path)
    return path.as_posix() if rel.startswith("..") else rel


def _strip(annotation: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Field names of the model found by following ``loc`` from ``model`` (none if not a model)."""
    current: Any = model
    for part in loc:
        current = _strip(current)
        origin = get_origin(current)
        if origin is list and isinstance(part, int):
            current = get_args(current)[0]
        elif origin is dict:
            current = get_args(current)[1]
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[str(part)].annotation
        else:
            return []
    current = _strip(current)
    return list(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _pydantic_issues(
    err: ValidationError,
    file: str,
    root: Any,
    prefix: tuple[str | int, ...] = (),
    model: type[BaseModel] | None = None,
) -> list[ConfigIssue]:
    issues = []
    for e in err.errors():
        rel = tuple(p for p in e["loc"] if p != "[key]")
        loc = prefix + rel
        message = e["msg"].removeprefix("Value error, ")
        hint = ""
        if e["type"] == "extra_forbidden":
            message = f"unknown field '{loc[-1]}'"
            hint = suggest(loc[-1], _fields_at(model, rel[:-1])) if model is not None else ""
        elif e["type"] == "string_pattern_mismatch":
            message = "names must be lower_snake_case: a letter, then letters, digits or _"
        elif e["type"] == "missing":
            message = f"'{loc[-1]}' is required"
        line, column = locate(root, loc, at_key=e["type"] == "extra_forbidden")
        issues.append(ConfigIssue(file, line, column, _dotted(loc), message, hint))
    return issues


def config_version(files: Mapping[str, bytes]) -> str:
    """The version of a config: a hash of its files' relative names and exact bytes."""
    digest = hashlib.sha256()
    for name in sorted(files, key=lambda n: n.split("/")):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(files[name])
        digest.update(b"\0")
    return digest.hexdigest()[:12]


# --- reading a directory: each file once, never through a link that leaves it ----------------

_SUFFIXES = (".yaml", ".yml")


def read_config_dir(
    directory: str | os.PathLike[str], limits: YamlLimits | None = None
) -> tuple[dict[str, bytes], list[ConfigIssue]]:
    """The bytes of every YAML file under ``directory``, by path relative to it, each read once.

    A symlink whose target is outside the directory is refused (not followed), and so
    is anything that is not a regular file or is larger than ``limits`` allow. Issues
    name files relative to the directory.
    """
    limits = limits or YamlLimits()
    base = Path(directory)
    if not base.is_dir():
        return {}, [ConfigIssue(".", 1, 1, "", "config directory does not exist")]
    real_base = base.resolve()
    files: dict[str, bytes] = {}
    issues: list[ConfigIssue] = []
    total = 0
    for path in _yaml_paths(base):
        name = path.relative_to(base).as_posix()
        data, problem = _read_one(path, real_base, limits.max_file_bytes)
        if problem:
            issues.append(ConfigIssue(name, 1, 1, "", problem))
            continue
        assert data is not None
        total += len(data)
        if total > limits.max_total_bytes:
            message = f"the config is larger than the limit of {limits.max_total_bytes} bytes in all"
            issues.append(ConfigIssue(name, 1, 1, "", message))
            break
        files[name] = data
    return files, issues


def _yaml_paths(base: Path) -> list[Path]:
    """YAML files under ``base``, hidden ones and those in hidden directories left out: editors'
    backups, ``.git``, and a Kubernetes ConfigMap volume's ``..data`` and ``..<timestamp>``
    directories, whose files the visible names already link to (reading both defined
    everything twice)."""
    found: list[Path] = []
    for root, dirs, names in os.walk(base, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root, n) for n in names if n.endswith(_SUFFIXES) and not n.startswith("."))
        found.extend(Path(root, d) for d in dirs if d.endswith(_SUFFIXES) and Path(root, d).is_symlink())
    return sorted(found, key=lambda p: p.relative_to(base).parts)


def _read_one(path: Path, real_base: Path, max_bytes: int) -> tuple[bytes | None, str]:
    """One file's bytes, or why it is refused."""
    target = path
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(real_base):
            return None, "symlink points outside the config directory; not followed"
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        return None, f"cannot be read: {e.strerror or type(e).__name__}"
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None, "not a regular file"
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        return None, f"file is larger than the limit of {max_bytes} bytes"
    return data, ""


# --- names of submitted files ----------------------------------------------------------------


def _shown(name: str) -> str:
    """A file name safe to echo back: printable, valid UTF-8, bounded."""
    safe = name.encode("utf-8", "backslashreplace").decode("utf-8")
    safe = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in safe)
    return safe if len(safe) <= 120 else safe[:117] + "..."


def _name_problem(name: str) -> str:
    if not name or "\0" in name or "\\" in name:
        return "file names must be non-empty relative paths without NUL or backslash"
    try:
        parts = name.encode("utf-8").split(b"/")
    except UnicodeEncodeError:
        return "file names must be valid Unicode text"
    if name.startswith("/") or any(p in (b"", b".", b"..") for p in parts):
        return "file names must be relative paths without empty, '.' or '..' parts"
    if any(len(p) > 255 for p in parts):
        return "each part of a file name must be at most 255 bytes"
    if not name.endswith(_SUFFIXES):
        return "file names must end in .yaml or .yml"
    return ""


def _check_names(names: Iterable[str]) -> list[ConfigIssue]:
    issues = [ConfigIssue(_shown(n), 1, 1, "", p) for n in names if (p := _name_problem(n))]
    if issues:
        return issues
    as_dirs = {"/".join(n.split("/")[:i]) for n in names for i in range(1, n.count("/") + 1)}
    message = "is both a file and a directory"
    return [ConfigIssue(_shown(n), 1, 1, "", message) for n in sorted(names) if n in as_dirs]


def _as_bytes(name: str, text: str | bytes) -> tuple[bytes | None, list[ConfigIssue]]:
    if isinstance(text, bytes):
        return text, []
    try:
        return text.encode("utf-8"), []
    except UnicodeEncodeError as e:
        before = text[: e.start]
        line, column = before.count("\n") + 1, e.start - (before.rfind("\n") + 1) + 1
        return None, [ConfigIssue(_shown(name), line, column, "", "text is not valid Unicode (a lone surrogate)")]


# --- validation ------------------------------------------------------------------------------


def validate_directory(
    directory: str | os.PathLike[str], *, relative_names: bool = False, limits: YamlLimits | None = None
) -> tuple[Catalog | None, list[ConfigIssue]]:
    """Load and check every YAML file under ``directory``; never raises for bad content.

    Each file is read once; its bytes are parsed, hashed into the version and kept
    as the catalog's snapshot. Issues name files as given (relative to the working
    directory when below it), or relative to ``directory`` itself with ``relative_names``.
    """
    base = Path(directory)
    if not base.is_dir():
        return None, [ConfigIssue("." if relative_names else str(base), 1, 1, "", "config directory does not exist")]
    files, read_issues = read_config_dir(base, limits)
    catalog, issues = validate_texts(files, limits=limits, prior=read_issues, directory=base.resolve())
    if relative_names:
        return catalog, issues

    def shown(name: str) -> str:
        return _display_path(base / name) if name != "." else _display_path(base)

    issues = [replace(i, file=shown(i.file)) for i in issues]
    if catalog is not None:
        catalog = replace(catalog, files=tuple(shown(n) for n in catalog.files))
    return catalog, issues


def validate_texts(
    files: Mapping[str, str | bytes],
    *,
    limits: YamlLimits | None = None,
    prior: list[ConfigIssue] | None = None,
    directory: Path | None = None,
) -> tuple[Catalog | None, list[ConfigIssue]]:
    """Check a config given in memory as {relative path: text or bytes}; never raises for bad content.

    Nothing touches the filesystem. ``prior`` are problems found while reading the
    files (a file that could not be read makes its names unknowable).
    """
    limits = limits or YamlLimits()
    issues = _check_names(files)
    if issues:
        return None, sorted(set(issues))
    issues = list(prior or [])
    blobs: dict[str, bytes] = {}
    for name in sorted(files, key=lambda n: n.split("/")):
        data, problems = _as_bytes(name, files[name])
        issues.extend(problems)
        if data is not None:
            blobs[name] = data
    total = sum(len(b) for b in blobs.values())
    if total > limits.max_total_bytes:
        message = f"the config is {total} bytes, more than the limit of {limits.max_total_bytes} bytes in all"
        return None, [ConfigIssue(".", 1, 1, "", message)]
    return _validate_blobs(blobs, issues, limits, directory or Path("."))


def check_texts(
    files: Mapping[str, str | bytes], limits: YamlLimits | None = None
) -> tuple[str | None, list[dict[str, object]]]:
    """``validate_texts`` reduced to plain data (version or None, errors): cheap to send between processes."""
    catalog, issues = validate_texts(files, limits=limits)
    return (catalog.version if catalog else None), [i.as_dict() for i in issues]


def _validate_blobs(
    blobs: dict[str, bytes], issues: list[ConfigIssue], limits: YamlLimits, directory: Path
) -> tuple[Catalog | None, list[ConfigIssue]]:
    merged = _Merged(unreadable=bool(issues))
    if not blobs and not issues:
        issues.append(ConfigIssue(".", 1, 1, "", "no .yaml files found"))
    texts: dict[str, str] = {}
    for name, data in blobs.items():
        parsed = _load_one(name, data, limits, merged, issues)
        if parsed is not None:
            texts[name] = parsed
    profiles = {**_BUILTIN_PROFILES, **(merged.models.value.profiles if merged.models else {})}
    issues.extend(_check_models(merged.models, profiles))
    issues.extend(_check_agents(merged.agents, profiles))
    for crew in merged.crews.values():
        issues.extend(_check_crew(crew, merged.agents, profiles))
    issues = [i for i in issues if not _about_broken(i, merged.broken, merged.unreadable)]
    if issues:
        return None, sorted(set(issues))
    catalog = Catalog(
        directory=directory,
        version=config_version(blobs),
        agents={k: v.value for k, v in merged.agents.items()},
        crews={k: v.value for k, v in merged.crews.items()},
        models=merged.models.value if merged.models else ModelsSpec(),
        files=tuple(blobs),
        texts=texts,
    )
    return catalog, []


@dataclass
class _Merged:
    agents: dict[str, _Located] = field(default_factory=dict)
    crews: dict[str, _Located] = field(default_factory=dict)
    models: _Located | None = None
    broken: set[str] = field(default_factory=set)  # defined but invalid: already reported, not "unknown"
    unreadable: bool = False  # a file failed to parse: its names are unknowable


def _load_one(name: str, data: bytes, limits: YamlLimits, merged: _Merged, issues: list[ConfigIssue]) -> str | None:
    """Parse one file and merge its definitions; its text when it parsed."""
    text, problems = decode(data, name, limits)
    parsed_data, syntax = parse_yaml(text, name, limits) if text is not None else (None, problems)
    if syntax:
        issues.extend(syntax)
        merged.unreadable = True
        return None
    if parsed_data is None:
        return text
    if not isinstance(parsed_data, dict):
        issues.append(ConfigIssue(name, 1, 1, "", "top level must be a mapping with agents, crews or models"))
        return text
    parsed, file_issues = _parse_file(parsed_data, name)
    issues.extend(file_issues)
    merged.broken |= parsed["broken"]
    for key, spec in parsed["agents"].items():
        _register(merged.agents, "agent", key, _Located(spec, name, parsed_data, ("agents", key)), issues)
    for key, spec in parsed["crews"].items():
        _register(merged.crews, "crew", key, _Located(spec, name, parsed_data, ("crews", key)), issues)
    if parsed["models"] is not None:
        here = _Located(parsed["models"], name, parsed_data, ("models",))
        if merged.models is not None:
            issues.append(here.issue(f"models are already defined in {merged.models.file}"))
        else:
            merged.models = here
    return text


_SECTIONS: dict[str, type[BaseModel]] = {"agents": AgentSpec, "crews": CrewSpec}
_TOP = ("agents", "crews", "models")
_MODELS_KEYS = ("default", "profiles")
_NAME = re.compile(NAME_PATTERN)


def _parse_file(data: Any, display: str) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Validate each agent, crew and profile on its own, so one bad entry hides no other."""
    parsed: dict[str, Any] = {"agents": {}, "crews": {}, "models": None, "broken": set(), "file": display, "root": data}
    issues: list[ConfigIssue] = []

    def fail(loc: tuple[str | int, ...], message: str, hint: str = "") -> None:
        line, column = locate(data, loc)
        issues.append(ConfigIssue(display, line, column, _dotted(loc), message, hint))

    for key in data:
        if key not in ("agents", "crews", "models"):
            fail((key,), f"unknown section '{key}' (expected agents, crews or models)", suggest(key, _TOP))
    for section, model in _SECTIONS.items():
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            fail((section,), f"'{section}' must be a mapping of name to definition")
            continue
        for name, body in entries.items():
            issues.extend(_parse_entry(section, model, name, body, parsed, fail))
    if "models" in data:
        parsed["models"] = _parse_models(data, display, issues, fail, parsed["broken"])
    return parsed, issues


def _parse_entry(
    section: str, model: type[BaseModel], name: Any, body: Any, parsed: dict[str, Any], fail: Any
) -> list[ConfigIssue]:
    """One agent or crew: its spec into ``parsed``; returns the schema's problems with it."""
    if not isinstance(name, str) or not _NAME.match(name):
        fail((section, name), f"name '{name}' must be lower_snake_case: a letter, then letters, digits or _")
        return []
    if not isinstance(body, dict):
        fail((section, name), f"'{name}' must be a mapping of fields")
        return []
    try:
        parsed[section][name] = model.model_validate(to_plain(body))
    except ValidationError as e:
        parsed["broken"].add(name)
        return _pydantic_issues(e, parsed["file"], parsed["root"], (section, name), model)
    return []


def _parse_models(data: Any, display: str, issues: list[ConfigIssue], fail: Any, broken: set[str]) -> ModelsSpec | None:
    raw = data["models"]
    if not isinstance(raw, dict):
        fail(("models",), "'models' must be a mapping with default and profiles")
        return None
    for key in raw:
        if key not in ("default", "profiles"):
            fail(("models", key), f"unknown field '{key}' (expected default, profiles)", suggest(key, _MODELS_KEYS))
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
            issues.extend(_pydantic_issues(e, display, data, loc, ModelProfile))
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


def drop_unknowable(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    """Without "unknown agent/profile" issues: for when some file could not be read, so its names are unknown."""
    return [i for i in issues if not _about_broken(i, set(), True)]


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
    return [models.unknown("model profile", models.value.default, profiles, "default")]


def _check_agents(agents: dict[str, _Located], profiles: dict[str, ModelProfile]) -> list[ConfigIssue]:
    issues = []
    known_tools = tool_names()
    for agent in agents.values():
        spec: AgentSpec = agent.value
        for i, tool in enumerate(spec.tools):
            if tool not in known_tools:
                issues.append(agent.unknown("tool", tool, known_tools, "tools", i, label="known tools"))
        if spec.model is not None and spec.model not in profiles:
            issues.append(agent.unknown("model profile", spec.model, profiles, "model"))
    return issues


def _check_crew(crew: _Located, agents: dict[str, _Located], profiles: dict[str, ModelProfile]) -> list[ConfigIssue]:
    spec: CrewSpec = crew.value
    declared = set(spec.inputs)
    issues: list[ConfigIssue] = []
    for name, item in spec.inputs.items():
        issues.extend(crew.issue(msg, "inputs", name, "default") for msg in _default_problems(item))
    issues.extend(_check_manager(crew, spec, agents, profiles))
    issues.extend(_check_human_input(crew, spec, agents))
    position = _step_positions(crew, spec, issues)
    for i, step in enumerate(spec.steps):
        if step.agent not in agents:
            issues.append(crew.unknown("agent", step.agent, agents, "steps", i, "agent"))
        issues.extend(_check_context(crew, i, step, position))
        for where, message in schema_problems(step.output_schema):
            issues.append(crew.issue(message, "steps", i, "output_schema", *where))
        for fieldname in ("description", "expected_output"):
            for var in _undeclared(getattr(step, fieldname), declared):
                message = f"placeholder '{{{var}}}' is not a declared input of crew (inputs: {_known(declared)})"
                issues.append(crew.issue(message, "steps", i, fieldname))
    issues.extend(_cycles(crew, spec))
    used = {s.agent for s in spec.steps if s.agent in agents} | ({spec.manager} if spec.manager in agents else set())
    for name in sorted(used):
        agent = agents[name]
        for fieldname in ("role", "goal", "backstory"):
            for var in _undeclared(getattr(agent.value, fieldname), declared):
                message = (
                    f"placeholder '{{{var}}}' is not a declared input of crew '{crew.path[-1]}' "
                    f"(inputs: {_known(declared)})"
                )
                issues.append(agent.issue(message, fieldname))
    return issues


def _check_manager(
    crew: _Located, spec: CrewSpec, agents: dict[str, _Located], profiles: dict[str, ModelProfile]
) -> list[ConfigIssue]:
    issues = []
    if spec.manager is not None and spec.manager not in agents:
        issues.append(crew.unknown("agent", spec.manager, agents, "manager"))
    if spec.manager_model is not None and spec.manager_model not in profiles:
        issues.append(crew.unknown("model profile", spec.manager_model, profiles, "manager_model"))
    if spec.process is Process.hierarchical and spec.manager in {s.agent for s in spec.steps}:
        issues.append(crew.issue("the manager agent may not also be assigned a step", "manager"))
    return issues


ASK_HUMAN = "ask_human"


def _check_human_input(crew: _Located, spec: CrewSpec, agents: dict[str, _Located]) -> list[ConfigIssue]:
    """A review's options need ``human_input: true``; a crew that may pause for a person must be
    sequential (a hierarchical manager's delegation cannot be resumed from a step)."""
    issues = []
    hierarchical = spec.process is Process.hierarchical
    for i, step in enumerate(spec.steps):
        for option in ("human_input_timeout_s", "on_timeout"):
            if option in step.model_fields_set and not step.human_input:
                issues.append(crew.issue(f"{option} applies only to a step with human_input: true", "steps", i, option))
        if hierarchical and step.human_input:
            message = "human_input needs process: sequential (a hierarchical crew cannot pause for a review)"
            issues.append(crew.issue(message, "steps", i, "human_input"))
        agent = agents.get(step.agent)
        if hierarchical and agent is not None and ASK_HUMAN in agent.value.tools:
            message = f"agent '{step.agent}' has the ask_human tool, which needs process: sequential"
            issues.append(crew.issue(message, "steps", i, "agent"))
    manager = agents.get(spec.manager) if spec.manager else None
    if hierarchical and manager is not None and ASK_HUMAN in manager.value.tools:
        issues.append(
            crew.issue(f"manager '{spec.manager}' has the ask_human tool, which needs process: sequential", "manager")
        )
    return issues


def _step_positions(crew: _Located, spec: CrewSpec, issues: list[ConfigIssue]) -> dict[str, int]:
    """Step name -> index of its first definition; a repeated name is reported."""
    position: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.name in position:
            message = f"duplicate step name '{step.name}' (also step {position[step.name]})"
            issues.append(crew.issue(message, "steps", i, "name"))
        else:
            position[step.name] = i
    return position


def _check_context(crew: _Located, i: int, step: Any, position: dict[str, int]) -> list[ConfigIssue]:
    issues = []
    for j, ref in enumerate(step.context or []):
        where = ("steps", i, "context", j)
        if ref == step.name:
            issues.append(crew.issue(f"step '{step.name}' lists itself in its context", *where))
        elif ref not in position:
            message = f"unknown step '{ref}' in context (steps: {_known(position)})"
            issues.append(crew.issue(message, *where, hint=suggest(ref, position)))
        elif position[ref] > i:
            message = f"context step '{ref}' comes later; context may only name earlier steps"
            issues.append(crew.issue(message, *where))
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
