"""Check a crew's inputs against its declaration before anything runs.

Every value is bounded and clean before it is stored or sent anywhere: text longer
than the input's ``max_length`` (default 4096 characters), NUL characters and
unpaired surrogates are refused. Path inputs are resolved through the tools'
sandbox: absolute paths must lie under an allowed root, relative paths are tried
against each root in order (the first where the path exists wins) and never
against the server's working directory; ``~`` is not expanded. Messages name the
value as given and never reveal the roots or anything outside them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agents.errors import InputError, InputIssue
from agents.schema import CrewSpec, InputSpec, InputType

__all__ = ["coerce", "validate_inputs"]

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}
DEFAULT_MAX_LENGTH = 4096  # characters, for inputs that declare no max_length
_SHOWN = 60  # characters of a rejected value quoted in a message


def _show(value: Any) -> str:
    """A short repr of a rejected value for a message."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _check_text(value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValueError(f"too long: {len(value):,} characters (at most {limit:,})")
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains invalid Unicode (an unpaired surrogate)") from None


def coerce(
    spec: InputSpec,
    value: Any,
    *,
    check_paths: bool = True,
    roots: Sequence[str | os.PathLike[str]] = (),
) -> Any:
    """Convert ``value`` to the declared type or raise ValueError saying what was expected.

    Strings are accepted for every type (the CLI passes ``key=value``), JSON values
    of the right type too.
    """
    kind = spec.type
    if kind in (InputType.string, InputType.path) and not isinstance(value, str):
        raise ValueError(f"expected a {kind.value}, got {type(value).__name__}")
    if isinstance(value, str):
        _check_text(value, spec.max_length or DEFAULT_MAX_LENGTH)
    if kind is InputType.string:
        out: Any = value
    elif kind is InputType.integer:
        out = _integer(value)
    elif kind is InputType.number:
        out = _number(value)
    elif kind is InputType.boolean:
        out = _boolean(value)
    elif kind is InputType.datetime:
        out = _datetime(value)
    else:
        out = _path(value, roots) if check_paths else value
    if spec.choices is not None and out not in spec.choices:
        raise ValueError(f"must be one of {', '.join(map(str, spec.choices))}")
    return out


def validate_inputs(
    crew_name: str,
    crew: CrewSpec,
    raw: Mapping[str, Any],
    *,
    roots: Sequence[str | os.PathLike[str]] = (),
    check_paths: bool = True,
) -> dict[str, Any]:
    """Return the inputs with types applied and defaults filled, or raise InputError.

    Every problem is reported at once: missing required inputs, unknown names and
    values of the wrong type. Optional inputs with no value become "" so CrewAI's
    ``{placeholder}`` interpolation always finds them.
    """
    issues: list[InputIssue] = []
    out: dict[str, Any] = {}
    for name in sorted(set(raw) - set(crew.inputs)):
        known = ", ".join(sorted(crew.inputs)) or "none"
        issues.append(InputIssue(name, f"unknown input for crew '{crew_name}' (inputs: {known})"))
    for name, spec in crew.inputs.items():
        value = raw.get(name)
        if value is None or value == "":
            if spec.is_required:
                issues.append(InputIssue(name, f"required ({spec.type.value}): {spec.description}".rstrip(": ")))
                continue
            value = spec.default
            if value is None:
                out[name] = ""
                continue
        try:
            out[name] = coerce(spec, value, check_paths=check_paths, roots=roots)
        except ValueError as e:
            issues.append(InputIssue(name, str(e)))
    if issues:
        raise InputError(crew_name, issues)
    return out


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {_show(value)}")


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {_show(value)}")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {_show(value)}")


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 timestamp, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"expected an ISO-8601 timestamp like 2026-11-20T13:00:00Z, got {_show(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"  # %Y drops zeros
    except OverflowError:  # 0001-01-01T00:00+05:00 is before year 1 in UTC
        raise ValueError(f"timestamp {_show(value)} is out of range once converted to UTC") from None


def _path(value: str, roots: Sequence[str | os.PathLike[str]]) -> str:
    from tools._sandbox import Sandbox, SandboxError

    if not roots:
        raise ValueError("no allowed roots are configured (CREWGATE_ALLOWED_ROOTS), so no path can be accepted")
    try:
        return str(Sandbox(roots).resolve(value))
    except SandboxError as e:
        raise ValueError(str(e)) from None
