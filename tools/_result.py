"""The one result shape every tool returns, and its bounded rendering."""

from __future__ import annotations

import json
import re
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

__all__ = ["FactsSink", "ToolResult", "clip", "printable"]

CUT_MARKER = "…[cut]"

# C0 controls but tab and newline, DEL, and C1 controls: ESC/CSI start terminal escape
# sequences, CR and BS rewrite what a terminal already shows.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (but newline and tab) shown as ``\\xNN`` escapes; CRLF becomes LF.

    For any text from logs, repositories or models that ends up in front of a person:
    a report, an event, a terminal. Nothing is dropped silently, nothing is interpreted.
    """
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text.replace("\r\n", "\n"))


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(CUT_MARKER))] + CUT_MARKER


class ToolResult(BaseModel):
    """What a tool found.

    ``summary`` is one line for people; ``data`` is the detail; ``facts`` are the few
    named values a later step may act on (``signature``, ``trace``, ``onset``,
    ``commit``, ``file``, ``line`` …). Keys in ``facts`` use the names of the tool
    arguments that consume them, so findings flow from one tool to the next.
    """

    tool: str
    status: str = "ok"
    params: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""
    data: Any = None
    facts: dict[str, Any] = Field(default_factory=dict)
    truncated: bool = False

    def render(self, max_chars: int) -> str:
        """JSON text of at most ``max_chars`` characters: long lists and strings shrink first."""
        payload = self.model_dump(mode="json")
        text = json.dumps(payload, ensure_ascii=False, default=str)
        if len(text) <= max_chars:
            return text
        payload["truncated"] = True
        for string_limit in (2000, 800, 300, 120):
            payload["data"] = _shrink(payload["data"], string_limit)
            payload["facts"] = _shrink(payload["facts"], string_limit * 2)
            text = json.dumps(payload, ensure_ascii=False, default=str)
            while len(text) > max_chars and _drop_tail(payload["data"]):
                text = json.dumps(payload, ensure_ascii=False, default=str)
            if len(text) <= max_chars:
                return text
        return clip(text, max_chars)


@runtime_checkable
class FactsSink(Protocol):
    """Where a tool reports the result of each call, out of band: a run's facts ledger.

    The tool hands over its ``ToolResult`` object itself, so what later steps act on never
    has to be read back out of text a tool, a log or a model produced.
    """

    def record(self, result: ToolResult) -> None: ...


def _shrink(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return clip(value, limit)
    if isinstance(value, list):
        return [_shrink(v, limit) for v in value]
    if isinstance(value, dict):
        return {k: _shrink(v, limit) for k, v in value.items()}
    return value


def _drop_tail(value: Any) -> bool:
    """Remove one item from the longest list inside ``value``; False when none is left."""
    best: list[Any] | None = None
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            if len(item) > 1 and (best is None or len(item) > len(best)):
                best = item
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    if best is None:
        return False
    best.pop()
    return True
