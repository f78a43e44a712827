"""Names of the tools agents may list, resolved to classes only when a crew is built.

Validation needs the names without importing the tools (which import CrewAI, a
slow import that ``crewgate validate`` must not pay), so the names live here and
the classes are looked up lazily from their modules.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

__all__ = ["TOOL_MODULES", "tool_class", "tool_names"]

# tool name -> module that exports it in its __all__
TOOL_MODULES: dict[str, str] = {
    "search_logs": "tools.logs",
    "error_signatures": "tools.logs",
    "error_timeline": "tools.logs",
    "grep_code": "tools.code",
    "read_code": "tools.code",
    "map_stack_frames": "tools.code",
    "git_log": "tools.code",
    "git_blame": "tools.code",
    "suspect_commits": "tools.code",
    "search_runbooks": "tools.runbooks",
    "ask_human": "tools.human",
}


def tool_names() -> list[str]:
    return sorted(TOOL_MODULES)


@cache
def _module_tools(module_name: str) -> dict[str, Any]:
    module = importlib.import_module(module_name)
    found: dict[str, Any] = {}
    for attr in getattr(module, "__all__", dir(module)):
        obj = getattr(module, attr)
        field = getattr(obj, "model_fields", {}).get("name") if isinstance(obj, type) else None
        if field is not None and isinstance(field.default, str):
            found[field.default] = obj
    return found


def tool_class(name: str) -> Any:
    """The tool class registered under ``name`` (imports its module)."""
    try:
        module_name = TOOL_MODULES[name]
    except KeyError:
        raise KeyError(f"unknown tool '{name}'") from None
    try:
        return _module_tools(module_name)[name]
    except KeyError:
        raise KeyError(f"tool '{name}' is not exported by {module_name}") from None
