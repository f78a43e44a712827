"""Base class for crewgate's read-only, sandboxed CrewAI tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crewai.tools import BaseTool
from pydantic import ConfigDict, Field, PrivateAttr

from tools._result import FactsSink, ToolResult
from tools._sandbox import Sandbox, SandboxError

__all__ = ["SandboxedTool", "ToolError"]

DEFAULT_MAX_OUTPUT_CHARS = 12_000


class ToolError(Exception):
    """A tool could not do what was asked; the message says why, plainly."""


class SandboxedTool(BaseTool):
    """A tool that reads only under ``roots`` and returns a bounded ``ToolResult``.

    Subclasses set ``name``, ``description`` and ``args_schema`` and implement
    ``execute(**arguments) -> ToolResult``. Failures raise ``ToolError`` (or
    ``SandboxError``); CrewAI reports those as a failed tool call and hands the
    message to the model so it can correct the call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    roots: tuple[Path, ...] = Field(default=(), description="allowed roots", exclude=True)
    max_output_chars: int = Field(default=DEFAULT_MAX_OUTPUT_CHARS, exclude=True)
    # the run's facts ledger: each result's facts reach later calls out of band, not as text
    facts_sink: FactsSink | None = Field(default=None, exclude=True)
    _sandbox: Sandbox | None = PrivateAttr(default=None)

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.roots)
        return self._sandbox

    def execute(self, **arguments: Any) -> ToolResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self, **arguments: Any) -> str:
        try:
            result = self.execute(**arguments)
        except SandboxError as e:
            raise ToolError(str(e)) from e
        result.params = {k: v for k, v in arguments.items() if v is not None}
        if self.facts_sink is not None:
            self.facts_sink.record(result)
        return result.render(self.max_output_chars)
