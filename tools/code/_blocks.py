"""The function (or method, class) enclosing a line: by indentation for Python, by braces otherwise.

Heuristic and bounded: braces inside strings and comments are counted after a rough
strip of string literals, and the search looks at most ``MAX_UP`` lines above and
``MAX_DOWN`` lines below the line. A miss returns None, never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Block", "enclosing_block", "block_named"]

MAX_UP = 600
MAX_DOWN = 2000
MAX_LINE_CHARS = 2000
MAX_HEADER_CHARS = 400

_PY_DEF = re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+(?P<name>\w+)")
_KEYWORDS = frozenset(
    [
        "if",
        "for",
        "while",
        "switch",
        "catch",
        "return",
        "new",
        "else",
        "do",
        "try",
        "synchronized",
        "foreach",
        "using",
        "lock",
        "with",
        "when",
        "elif",
    ]
)
_BRACE_DEFS = (
    re.compile(r"\bfunc\s+(?:\([^)]*\)\s*)?(?P<name>\w+)\s*[\[(]"),  # Go
    re.compile(r"\bfunction\s*\*?\s*(?P<name>[\w$]+)\s*\("),  # JS function
    re.compile(r"(?P<name>[\w$]+)\s*[:=]\s*(?:async\s*)?(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|[\w$]+\s*=>)"),
    re.compile(r"\bfun\s+(?:<[^>]*>\s*)?(?:[\w.]+\.)?(?P<name>\w+)\s*\("),  # Kotlin
    re.compile(r"\b(?:class|interface|object|struct|impl|enum)\s+(?P<name>[\w$]+)"),
    re.compile(r"^\s*(?:[\w$<>\[\],.?@]+\s+)*?(?P<name>[\w$]+)\s*\([^;]*$"),  # method signature
)
_STRING = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|`[^`]*`")
_PY_SUFFIXES = (".py", ".pyi", ".pyw")
_BRACE_SUFFIXES = (
    ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go", ".java", ".kt", ".kts", ".scala", ".groovy",
    ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rs", ".php", ".swift", ".dart",
)  # fmt: skip


@dataclass(frozen=True)
class Block:
    start: int  # 1-based, the header line
    end: int  # 1-based, inclusive
    name: str


def enclosing_block(path: str, lines: list[str], line: int) -> Block | None:
    """The innermost function/method/class around ``line`` (1-based) of the file ``path``."""
    if not 0 < line <= len(lines) or len(lines[line - 1]) > MAX_LINE_CHARS:
        return None  # past the end, or minified code where functions have no lines of their own
    if path.endswith(_PY_SUFFIXES):
        return _python_block(lines, line - 1)
    if path.endswith(_BRACE_SUFFIXES):
        return _brace_block(lines, line - 1)
    return None


def block_named(path: str, lines: list[str], name: str) -> Block | None:
    """The first function/method definition called ``name`` in the file, if any."""
    for index, text in enumerate(lines[: MAX_DOWN * 5]):
        if name in text and _header_name(path, text) == name:
            return enclosing_block(path, lines, index + 1)
    return None


def _header_name(path: str, text: str) -> str | None:
    if path.endswith(_PY_SUFFIXES):
        match = _PY_DEF.match(text)
        return match.group("name") if match else None
    return _brace_header(text)


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _is_code(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped.startswith("#")


def _python_block(lines: list[str], index: int) -> Block | None:
    target = index
    while target > 0 and not _is_code(lines[target]):
        target -= 1
    limit = _indent(lines[target]) + 1
    for i in range(target, max(-1, target - MAX_UP), -1):
        text = lines[i]
        if not _is_code(text) or _indent(text) >= limit or text.lstrip().startswith((")", "]", "}")):
            continue  # blank, deeper, or the closing bracket of a signature wrapped over lines
        limit = _indent(text)
        match = _PY_DEF.match(text)
        if match:
            return Block(i + 1, _python_end(lines, i), match.group("name"))
        if limit == 0:
            return None
    return None


def _python_end(lines: list[str], header: int) -> int:
    indent = _indent(lines[header])
    end = header
    for i in range(header + 1, min(len(lines), header + MAX_DOWN)):
        text = lines[i]
        if not _is_code(text):
            continue
        if _indent(text) <= indent and not text.lstrip().startswith((")", "]", "}")):
            break
        end = i
    return end + 1


def _braces(text: str) -> tuple[int, int]:
    code = _STRING.sub("", text.split("//", 1)[0])
    return code.count("{"), code.count("}")


def _brace_header(text: str) -> str | None:
    text = text[:MAX_HEADER_CHARS]
    for pattern in _BRACE_DEFS:
        match = pattern.search(text)
        if match and match.group("name") not in _KEYWORDS:
            return match.group("name")
    return None


def _brace_block(lines: list[str], index: int) -> Block | None:
    balance = 0
    for i in range(index, max(-1, index - MAX_UP), -1):
        opens, closes = _braces(lines[i])
        balance += opens - closes if i < index else opens
        if balance <= 0:
            continue
        found = _header_for(lines, i)
        if found:
            return Block(found[0] + 1, _brace_end(lines, i), found[1])
        balance = 0
    return None


def _header_for(lines: list[str], opener: int) -> tuple[int, str] | None:
    """The header of the block opened on line ``opener``: that line, or a signature wrapped above it."""
    name = _brace_header(lines[opener])
    if name:
        return opener, name
    text = lines[opener].strip()
    if "(" in text and not text.startswith(")"):
        return None  # an if/for/while/call opener of its own
    for i in range(opener - 1, max(-1, opener - 4), -1):
        if lines[i].rstrip().endswith((";", "{", "}")):
            return None
        name = _brace_header(lines[i])
        if name:
            return i, name
    return None


def _brace_end(lines: list[str], opener: int) -> int:
    balance = 0
    for i in range(opener, min(len(lines), opener + MAX_DOWN)):
        opens, closes = _braces(lines[i])
        balance += opens - closes
        if balance <= 0 and i > opener:
            return i + 1
        if balance <= 0 and opens:
            return i + 1
    return min(len(lines), opener + MAX_DOWN)
