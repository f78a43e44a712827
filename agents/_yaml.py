"""YAML loading that keeps line and column of every node.

Uses ruamel.yaml's round-trip loader: mappings and sequences remember where each
key and item came from, so a validation error can point at the exact spot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from agents.errors import ConfigIssue

__all__ = ["load_yaml", "locate", "to_plain"]


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def load_yaml(path: Path, display: str) -> tuple[Any, list[ConfigIssue]]:
    """Parse one file; return its data (with positions) or the syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return None, [ConfigIssue(display, 1, 1, "", f"file is not UTF-8 text: {e.reason}")]
    try:
        return _loader().load(text), []
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        column = mark.column + 1 if mark else 1
        problem = " ".join(p for p in (e.context, e.problem) if p) or str(e)
        return None, [ConfigIssue(display, line, column, "", f"YAML syntax error: {problem}")]


def locate(root: Any, path: Sequence[str | int], *, at_key: bool = False) -> tuple[int, int]:
    """1-based (line, column) of the deepest node on ``path`` that exists.

    The position is the value's, unless ``at_key`` asks for the last key itself.
    """
    line, column = 1, 1
    node = root
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, CommentedMap) and part in node:
            try:
                line, column = node.lc.key(part)
                line, column = line + 1, column + 1
            except (KeyError, TypeError):
                pass
            value = node[part]
            if not isinstance(value, CommentedMap | CommentedSeq) and not (at_key and last):
                try:
                    vline, vcol = node.lc.value(part)
                    line, column = vline + 1, vcol + 1
                except (KeyError, TypeError):
                    pass
            node = value
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            try:
                line, column = node.lc.item(part)
                line, column = line + 1, column + 1
            except (KeyError, TypeError):
                pass
            node = node[part]
        else:
            has_position = isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None
            if has_position and (line, column) == (1, 1):
                line, column = node.lc.line + 1, node.lc.col + 1
            break
    return line, column


def to_plain(value: Any) -> Any:
    """Convert ruamel containers and scalars to plain dict/list/str/int/float/bool."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
