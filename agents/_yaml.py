"""YAML loading that keeps line and column of every node, within fixed limits.

Uses ruamel.yaml's round-trip loader: mappings and sequences remember where each
key and item came from, so a validation error can point at the exact spot.

Config text is treated as hostile: a file is refused (with file:line:column) when
it is too large, not UTF-8, nested too deeply, or uses more aliases or expands to
more nodes than ``YamlLimits`` allows. The limits are checked while the document
is composed, before any value is built, so an alias bomb costs a few hundred
events, never gigabytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.tokens import KeyToken

from agents.errors import ConfigIssue

__all__ = ["YamlLimits", "decode", "locate", "parse_yaml", "to_plain"]


@dataclass(frozen=True)
class YamlLimits:
    """Upper bounds on what one config may cost to read and parse."""

    max_file_bytes: int = 1_048_576
    max_total_bytes: int = 8_388_608
    max_depth: int = 64
    max_aliases: int = 1_000
    max_nodes: int = 200_000


class _LimitExceeded(MarkedYAMLError):
    pass


class _BoundedComposer(Composer):
    """Counts depth, aliases and nodes (each alias counts as the nodes it stands for)."""

    limits = YamlLimits()

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._sizes: dict[Any, int] = {}

    def _fail(self, message: str, mark: Any) -> None:
        raise _LimitExceeded(None, None, message, mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > self.limits.max_depth:
            self._fail(f"nesting is deeper than {self.limits.max_depth} levels", event.start_mark)
        before = self._nodes
        self._add(1, event.start_mark)
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self._sizes[event.anchor] = self._nodes - before
        self._depth -= 1
        return node

    def _count_alias(self, event: Any) -> None:
        self._aliases += 1
        if self._aliases > self.limits.max_aliases:
            self._fail(f"more than {self.limits.max_aliases} aliases", event.start_mark)
        if event.anchor in self.anchors and event.anchor not in self._sizes:
            self._fail(f"alias *{event.anchor} refers to a node that contains it", event.start_mark)
        self._add(self._sizes.get(event.anchor, 1), event.start_mark)

    def _add(self, count: int, mark: Any) -> None:
        self._nodes += count
        if self._nodes > self.limits.max_nodes:
            self._fail(f"the document expands to more than {self.limits.max_nodes} nodes (aliases included)", mark)


def _loader(limits: YamlLimits) -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    composer: type[Composer] = type("BoundedComposer", (_BoundedComposer,), {"limits": limits})
    yaml.Composer = composer
    return yaml


def decode(data: bytes, display: str, limits: YamlLimits) -> tuple[str | None, list[ConfigIssue]]:
    """Strict UTF-8 text of a file within the size limit, or why not."""
    if len(data) > limits.max_file_bytes:
        message = f"file is {len(data)} bytes, more than the limit of {limits.max_file_bytes} bytes"
        return None, [ConfigIssue(display, 1, 1, "", message)]
    try:
        return data.decode("utf-8"), []
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        return None, [ConfigIssue(display, line, column, "", f"file is not UTF-8 text: {e.reason}")]


def parse_yaml(text: str, display: str, limits: YamlLimits | None = None) -> tuple[Any, list[ConfigIssue]]:
    """Parse YAML text; never raises for bad content."""
    limits = limits or YamlLimits()
    try:
        return _loader(limits).load(text), []
    except _LimitExceeded as e:
        line, column = _position(e.problem_mark)
        return None, [ConfigIssue(display, line, column, "", f"YAML refused: {e.problem}")]
    except MarkedYAMLError as e:
        line, column = _culprit(text, e)
        problem = " ".join(p for p in (e.context, e.problem) if p) or "invalid YAML"
        return None, [ConfigIssue(display, line, column, "", f"YAML syntax error: {problem}")]
    except ReaderError as e:
        line, column = _offset_position(text, e.position)
        message = f"YAML syntax error: character U+{e.character:04X} is not allowed in YAML text"
        return None, [ConfigIssue(display, line, column, "", message)]
    except (YAMLError, RecursionError, ValueError, TypeError) as e:
        return None, [ConfigIssue(display, 1, 1, "", f"YAML could not be read: {type(e).__name__}")]


def _position(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _offset_position(text: str, offset: int) -> tuple[int, int]:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


# --- pointing at the line that is actually mis-indented -------------------------------------

_INDENT_PROBLEMS = ("expected <block end>", "mapping values are not allowed here", "could not find expected ':'")


def _culprit(text: str, error: MarkedYAMLError) -> tuple[int, int]:
    """Where a syntax error really is.

    ruamel reports an indentation mistake where the parser gives up, which is often
    the first line *after* the mis-indented one (a key whose folded text runs on for
    lines is reported at the next key). Among the keys from the enclosing block up
    to that point, the first one off the file's indentation grid (e.g. at an odd
    column in a file indented by two) is the line to fix.
    """
    line, column = _position(error.problem_mark or error.context_mark)
    if error.context_mark is not None and "flow" in (error.context or ""):
        return _position(error.context_mark)  # an unclosed [ or {: where it was opened
    if not any(p in (error.problem or "") for p in _INDENT_PROBLEMS) or error.problem_mark is None:
        return line, column
    keys = _key_positions(text)
    step = _indent_step(keys)
    if step < 2:
        return line, column
    start = _region_start(keys, error)
    for key_line, key_col in keys:
        if start <= key_line <= error.problem_mark.line and key_col % step:
            return key_line + 1, key_col + 1
    return line, column


def _key_positions(text: str) -> list[tuple[int, int]]:
    """0-based (line, column) of every block key that starts its line (until a scanner error)."""
    lines = text.splitlines()
    keys: list[tuple[int, int]] = []
    try:
        for token in YAML(typ="rt").scan(text):
            mark = token.start_mark
            if isinstance(token, KeyToken) and mark.line < len(lines):
                lead = lines[mark.line][: mark.column]
                if re.fullmatch(r"[ -]*", lead):
                    keys.append((mark.line, mark.column))
    except YAMLError:
        pass
    return keys


def _indent_step(keys: list[tuple[int, int]]) -> int:
    """The file's indentation unit: of 4, 2 and 3, the one the fewest keys are off (0 if unclear)."""
    misfits = {step: sum(1 for _line, col in keys if col % step) for step in (4, 2, 3)}
    step = min(misfits, key=lambda s: misfits[s])  # ties: the first, so 4 over 2 over 3
    return step if misfits[step] <= max(1, len(keys) // 20) else 0


def _region_start(keys: list[tuple[int, int]], error: MarkedYAMLError) -> int:
    """The first line of the block the error is in: the context's, or the parent key's."""
    assert error.problem_mark is not None
    if error.context_mark is not None and error.context_mark.line <= error.problem_mark.line:
        return int(error.context_mark.line)
    here = [c for ln, c in keys if ln == error.problem_mark.line]
    indent = here[0] if here else error.problem_mark.column
    for key_line, key_col in reversed(keys):
        if key_line < error.problem_mark.line and key_col < indent:
            return key_line
    return int(error.problem_mark.line)


# --- positions of parsed nodes ----------------------------------------------------------------


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
