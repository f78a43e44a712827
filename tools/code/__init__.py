"""Read-only code investigation tools: search, read, stack-frame mapping and git history.

Every path argument is resolved through the sandbox (the repo under the allowed
roots, files inside the repo); git runs only as a hardened, time-limited argument
list (see ``tools.code._git``).
"""

from __future__ import annotations

from tools.code._history import GitBlameTool, GitLogTool
from tools.code._search import GrepCodeTool, ReadCodeTool
from tools.code._trace_tools import MapStackFramesTool, SuspectCommitsTool

__all__ = [
    "CODE_TOOLS",
    "GitBlameTool",
    "GitLogTool",
    "GrepCodeTool",
    "MapStackFramesTool",
    "ReadCodeTool",
    "SuspectCommitsTool",
]

CODE_TOOLS = (
    GrepCodeTool,
    ReadCodeTool,
    MapStackFramesTool,
    GitLogTool,
    GitBlameTool,
    SuspectCommitsTool,
)
