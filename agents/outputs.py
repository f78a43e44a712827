"""Declared answer shapes: a crew step's ``output_schema`` and the checks on its answer.

A step may declare the shape of its answer in YAML, either inline as a JSON Schema or
by the name of a shipped pydantic model (``OUTPUT_MODELS``). The declaration is checked
when the config loads (``check_output_schema``); each run then checks the step's answer
against it (``StepOutputs.guardrail``):

* the offline model hands its structured answer over out of band (``StepOutputs.offer``);
* a language model's answer is parsed: the whole answer as a JSON object, else the last
  fenced ```json block in it (then the Markdown before it is the step's text).

A shape that does not validate is sent back to the model with the reasons, up to the
step's ``output_retries`` times; after that the run fails with code ``bad_output``.
The task's ``output`` is the validated object of the last step that declares a schema.

Answers are data: bounded, parsed as JSON only, never executed or followed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ValidationError

from agents.errors import suggest
from agents.findings import TriageFindings
from tools._result import printable

__all__ = [
    "OUTPUT_MODELS",
    "BadOutputError",
    "StepOutputs",
    "check_output_schema",
    "json_schema_of",
    "parse_answer",
    "schema_problems",
    "validate_output",
]

OUTPUT_MODELS: dict[str, type[BaseModel]] = {"triage_findings": TriageFindings}
MAX_ANSWER_CHARS = 200_000
MAX_ERRORS_SHOWN = 5
_FENCE = re.compile(r"(?P<fence>`{3,})[ \t]*json[ \t]*\n(?P<body>.*?)\n(?P=fence)[ \t]*$", re.DOTALL | re.MULTILINE)

OutputSchema = str | dict[str, Any]


class BadOutputError(Exception):
    """A step's answer kept failing its declared output schema."""

    def __init__(self, step: str, reason: str) -> None:
        self.step = step
        self.reason = reason
        super().__init__(f"step '{step}' did not answer in the declared output shape: {reason}")


def check_output_schema(value: Any) -> None:
    """ValueError for an ``output_schema`` naming no shipped model (the inline JSON Schema is
    checked by ``schema_problems``, which can say where in it the problem is)."""
    if isinstance(value, str) and value not in OUTPUT_MODELS:
        raise ValueError(_unknown_model(value))


def schema_problems(value: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """(path inside the schema, message) for each problem of an inline JSON Schema."""
    if not isinstance(value, dict):
        return []
    try:
        validator_for(value, default=Draft202012Validator).check_schema(value)
    except SchemaError as e:
        return [(tuple(e.path), f"not a valid JSON Schema: {e.message[:300]}")]
    if value.get("type") not in (None, "object"):
        return [(("type",) if "type" in value else (), "output_schema must describe a JSON object (type: object)")]
    return []


def _unknown_model(name: str) -> str:
    hint = suggest(name, OUTPUT_MODELS)
    hint = f" ({hint})" if hint else ""
    return f"unknown output model '{name}'{hint}; known: {', '.join(sorted(OUTPUT_MODELS))}, or an inline JSON Schema"


def json_schema_of(value: OutputSchema) -> dict[str, Any]:
    """The declared shape as a JSON Schema (a shipped model's own schema for a name)."""
    if isinstance(value, str):
        return OUTPUT_MODELS[value].model_json_schema()
    return value


def validate_output(value: OutputSchema, data: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(the validated object, None) or (None, why not) for ``data`` against the declared shape."""
    if not isinstance(data, dict):
        return None, "the answer is not a JSON object"
    if isinstance(value, str):
        try:
            return OUTPUT_MODELS[value].model_validate(data).model_dump(mode="json"), None
        except ValidationError as e:
            problems = [f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors()]
            return None, _joined(problems)
    errors = sorted(Draft202012Validator(value).iter_errors(data), key=lambda err: list(err.path))
    if errors:
        return None, _joined(
            [f"{'.'.join(str(p) for p in err.path) or '(top)'}: {err.message[:200]}" for err in errors]
        )
    return data, None


def _joined(problems: list[str]) -> str:
    more = len(problems) - MAX_ERRORS_SHOWN
    text = "; ".join(problems[:MAX_ERRORS_SHOWN])
    return text + (f"; and {more} more" if more > 0 else "")


def parse_answer(text: str) -> tuple[Any, str]:
    """(the JSON value, the text that goes with it) from a model's answer; (None, text) if none.

    The whole answer as JSON comes first, else the last fenced ```json block (the text is
    then the answer without that block).
    """
    bounded = text[:MAX_ANSWER_CHARS].strip()
    try:
        return json.loads(bounded), bounded
    except ValueError:
        pass
    blocks = list(_FENCE.finditer(bounded))
    if not blocks:
        return None, text
    last = blocks[-1]
    try:
        value = json.loads(last.group("body"))
    except ValueError:
        return None, text
    return value, (bounded[: last.start()] + bounded[last.end() :]).strip() + "\n"


def _printable(value: Any) -> Any:
    """``value`` with every string (keys too) made printable; other JSON values as they are."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def instructions(value: OutputSchema) -> str:
    """What a language model is told about the shape its answer must have."""
    schema = json.dumps(json_schema_of(value), separators=(",", ":"))
    return (
        "\n\nEnd your answer with a fenced ```json block holding one JSON object that validates "
        f"against this JSON Schema: {schema}"
    )


class StepOutputs:
    """One run's declared step outputs: the checks, the offline model's hand-over, the result."""

    def __init__(self, schemas: Mapping[str, OutputSchema]) -> None:
        self._schemas = dict(schemas)
        self._order = list(schemas)
        self._lock = threading.Lock()
        self._offered: dict[str, dict[str, Any]] = {}
        self._valid: dict[str, dict[str, Any]] = {}
        self.failure: BadOutputError | None = None

    @property
    def declared(self) -> bool:
        """Whether any step declares a shape."""
        return bool(self._schemas)

    def schema_for(self, step: str | None) -> OutputSchema | None:
        return self._schemas.get(step) if step else None

    def offer(self, step: str, value: dict[str, Any]) -> None:
        """The offline model's structured answer for ``step`` (checked like any other)."""
        with self._lock:
            self._offered[step] = value

    def final(self) -> dict[str, Any] | None:
        """The validated object of the last step that declares a schema and produced one,
        with control characters in its strings escaped (it may quote logs and repositories)."""
        with self._lock:
            for step in reversed(self._order):
                if step in self._valid:
                    shown = _printable(self._valid[step])
                    return shown if isinstance(shown, dict) else None
        return None

    def state(self) -> dict[str, dict[str, Any]]:
        """The validated objects so far, by step (plain JSON data): a snapshot for a paused run."""
        with self._lock:
            return json.loads(json.dumps(self._valid, default=str))  # type: ignore[no-any-return]

    def restore(self, valid: Mapping[str, dict[str, Any]]) -> None:
        """Take back a snapshot from ``state``; ValueError for a step that declares no shape."""
        unknown = sorted(set(valid) - set(self._schemas))
        if unknown:
            raise ValueError(f"output for step(s) that declare no output_schema: {', '.join(unknown)}")
        with self._lock:
            self._valid = {k: dict(v) for k, v in valid.items()}

    def guardrail(self, step: str, retries: int) -> Any:
        """A CrewAI guardrail for ``step``: (True, the step's text) or (False, why, for the model)."""
        schema = self._schemas[step]
        attempts = {"n": 0}

        def check(output: Any) -> tuple[bool, Any]:
            attempts["n"] += 1
            value, text = self._answer(step, str(getattr(output, "raw", "") or ""))
            checked, error = validate_output(schema, value)
            if checked is not None:
                with self._lock:
                    self._valid[step] = checked
                return True, text
            if attempts["n"] > retries:
                self.failure = BadOutputError(step, error or "no JSON object in the answer")
            return False, f"The answer does not have the required shape: {error}. Answer again.{instructions(schema)}"

        # CrewAI checks the annotation itself, which postponed evaluation leaves as a string
        check.__annotations__["return"] = tuple[bool, Any]
        return check

    def _answer(self, step: str, raw: str) -> tuple[Any, str]:
        with self._lock:
            offered = self._offered.pop(step, None)
        if offered is not None:
            return offered, raw
        return parse_answer(raw)
