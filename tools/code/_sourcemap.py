"""Source map v3 lookups: a generated JavaScript line/column back to the original source.

Only what a stack frame needs: ``sources``, ``sourceRoot`` and ``mappings`` (Base64 VLQ).
Index maps (``sections``) are not followed. The map is untrusted JSON read from the
repository; sizes and counts are bounded and malformed input returns None.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

__all__ = ["Original", "decode_vlq", "lookup", "parse_map"]

MAX_MAP_CHARS = 8 * 1024 * 1024
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


@dataclass(frozen=True)
class Original:
    source: str  # as listed in the map, joined with sourceRoot
    line: int  # 1-based
    column: int  # 1-based


def decode_vlq(segment: str) -> list[int]:
    """The signed integers of one Base64 VLQ segment; ValueError on a bad digit or a cut value."""
    values: list[int] = []
    value = shift = 0
    for char in segment:
        digit = _B64.get(char)
        if digit is None:
            raise ValueError(f"not a base64 digit: {char!r}")
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            if shift > 60:
                raise ValueError("VLQ value too long")
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        value = shift = 0
    if shift:
        raise ValueError("VLQ value cut short")
    return values


def parse_map(text: str) -> dict[str, Any] | None:
    """The map's JSON object when it looks like a v3 source map, else None."""
    if len(text) > MAX_MAP_CHARS:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    ok = isinstance(data, dict) and isinstance(data.get("mappings"), str) and isinstance(data.get("sources"), list)
    return data if ok else None


def lookup(data: dict[str, Any], line: int, column: int | None) -> Original | None:
    """The original position of generated ``line`` (1-based) and ``column`` (1-based, as Node prints it)."""
    lines = data["mappings"].split(";")
    if not 0 < line <= len(lines):
        return None
    state = [0, 0, 0, 0]  # source index, original line, original column, name index: carried across lines
    best: tuple[int, int, int] | None = None
    try:
        for text in lines[: line - 1]:
            _carry(text, state)
        best = _scan_line(lines[line - 1], state, (column or 1) - 1)
    except ValueError:
        return None
    if best is None:
        return None
    return _original(data, *best)


def _carry(text: str, state: list[int]) -> None:
    for segment in filter(None, text.split(",")):
        fields = decode_vlq(segment)
        for i, delta in enumerate(fields[1:5]):
            state[i] += delta


def _scan_line(text: str, state: list[int], column: int) -> tuple[int, int, int] | None:
    generated = 0
    best: tuple[int, int, int] | None = None
    for segment in filter(None, text.split(",")):
        fields = decode_vlq(segment)
        generated += fields[0]
        for i, delta in enumerate(fields[1:5]):
            state[i] += delta
        if len(fields) < 4:
            continue
        if generated > column and best is not None:
            break
        best = (state[0], state[1], state[2])
        if generated > column:
            break
    return best


def _original(data: dict[str, Any], source: int, line: int, column: int) -> Original | None:
    sources = data["sources"]
    if not 0 <= source < len(sources) or not isinstance(sources[source], str):
        return None
    root = data.get("sourceRoot")
    name = sources[source]
    if isinstance(root, str) and root and "://" not in name:
        name = posixpath.join(root, name)
    return Original(name, line + 1, column + 1)
