"""Path sandbox: every path a tool touches must resolve under an allowed root.

Relative paths are tried against each root in order; absolute paths are accepted
only when they resolve (symlinks followed) inside a root. ``..`` segments and
symlinks that lead out of every root are refused with a message that names the
path and the roots, never with the contents of what lies outside.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["Sandbox", "SandboxError"]


class SandboxError(ValueError):
    """A path argument that is missing or lies outside the allowed roots."""


class Sandbox:
    """Resolves user-supplied paths against a fixed set of allowed roots."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]]) -> None:
        resolved: list[Path] = []
        for root in roots:
            path = Path(root).expanduser().resolve()
            if path not in resolved:
                resolved.append(path)
        if not resolved:
            raise SandboxError("no allowed roots are configured (CREWGATE_ALLOWED_ROOTS)")
        self.roots: tuple[Path, ...] = tuple(resolved)

    def _roots_text(self) -> str:
        return os.pathsep.join(str(r) for r in self.roots)

    def contains(self, path: Path) -> bool:
        """True when an already resolved path lies under one of the roots."""
        return any(path == root or path.is_relative_to(root) for root in self.roots)

    def resolve(self, raw: str, *, want: str = "any") -> Path:
        """Resolve ``raw`` to a real path under a root.

        ``want`` is ``"file"``, ``"dir"`` or ``"any"``. Raises SandboxError with a
        clear message when the path is empty, escapes the roots, or does not exist.
        """
        if not isinstance(raw, str) or not raw.strip():
            raise SandboxError("a path is required")
        if "\x00" in raw:
            raise SandboxError("path contains a NUL byte")
        given = Path(raw.strip()).expanduser()
        candidates = [given] if given.is_absolute() else [root / given for root in self.roots]
        escaped = False
        for candidate in candidates:
            real = Path(os.path.realpath(candidate))
            if not self.contains(real):
                escaped = True
                continue
            if not real.exists():
                continue
            if want == "file" and not real.is_file():
                raise SandboxError(f"'{raw}' is not a file")
            if want == "dir" and not real.is_dir():
                raise SandboxError(f"'{raw}' is not a directory")
            return real
        if escaped:
            raise SandboxError(
                f"'{raw}' is outside the allowed roots ({self._roots_text()}); "
                "tools may only read under CREWGATE_ALLOWED_ROOTS"
            )
        raise SandboxError(f"'{raw}' does not exist under the allowed roots ({self._roots_text()})")

    def resolve_within(self, base: Path, raw: str, *, want: str = "any") -> Path:
        """Resolve ``raw`` relative to ``base`` (itself under a root), staying inside ``base``."""
        if not isinstance(raw, str) or not raw.strip():
            raise SandboxError("a path is required")
        given = Path(raw.strip())
        candidate = given if given.is_absolute() else base / given
        real = Path(os.path.realpath(candidate))
        if not (real == base or real.is_relative_to(base)) or not self.contains(real):
            raise SandboxError(f"'{raw}' is outside '{base}'")
        if not real.exists():
            raise SandboxError(f"'{raw}' does not exist in '{base}'")
        if want == "file" and not real.is_file():
            raise SandboxError(f"'{raw}' is not a file")
        if want == "dir" and not real.is_dir():
            raise SandboxError(f"'{raw}' is not a directory")
        return real

    def walk_files(self, base: Path, *, skip_dirs: Sequence[str] = (".git",)) -> Iterator[Path]:
        """Yield regular files under ``base`` in sorted order, skipping any that escape."""
        if base.is_file():
            yield base
            return
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                real = Path(os.path.realpath(path))
                if self.contains(real) and real.is_file():
                    yield real
