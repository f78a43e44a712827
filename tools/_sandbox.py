"""Path sandbox: every path a tool touches must resolve under an allowed root.

Resolution and opening are one operation. A path is walked from the root's
directory one component at a time with ``openat(O_NOFOLLOW)``; a symbolic link met
on the way is read (``readlinkat``) and followed only when its target lies, as
written, inside an allowed root, and the walk then starts again from that root.
Nothing outside the roots is ever opened, stat-ed or tested for existence, so
messages cannot reveal anything about it, and a directory swapped for a link to
the outside between a check and a read cannot make a tool read through it: every
read re-walks the path the same way.

Paths given by users:

* absolute paths must lie, as written (after removing ``.`` and ``..``
  lexically), under a root;
* relative paths are tried against each root in the configured order and name the
  first root where they exist; they are never resolved against the process's
  working directory;
* ``~`` is not expanded, NUL bytes, unpaired surrogates, components over 255
  bytes and paths over 4096 bytes are refused.

Messages name the path as given and never the roots' absolute paths.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "MissingPathError",
    "Opened",
    "OutsideRootsError",
    "Sandbox",
    "SandboxError",
    "check_path_text",
]

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_LINK_HOPS = 40
MAX_SHOWN = 200  # characters of a path quoted in a message
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_ANY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class SandboxError(ValueError):
    """A path argument that is missing or lies outside the allowed roots."""


class OutsideRootsError(SandboxError):
    """The path, or a link on it, leads out of every allowed root."""


class MissingPathError(SandboxError):
    """The path does not exist under the roots (or is not a directory or regular file)."""


class _Escape(Exception):
    """The path (or a link on it) leads out of every root."""


class _Missing(Exception):
    """Some component does not exist (or is not a directory where one is needed)."""


def check_path_text(raw: object) -> str:
    """``raw`` stripped, if it is acceptable as path text; SandboxError saying why not.

    Checks only the text (no file system access): a non-empty string without NUL
    bytes or unpaired surrogates, not starting with ``~``, at most 4096 bytes, with
    no component over 255 bytes.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise SandboxError("a path is required")
    text = raw.strip()
    if "\x00" in text:
        raise SandboxError("the path contains a NUL byte")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        raise SandboxError("the path contains invalid Unicode (an unpaired surrogate)") from None
    if len(encoded) > MAX_PATH_BYTES:
        raise SandboxError(f"the path is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise SandboxError(f"a component of the path is longer than {MAX_NAME_BYTES} bytes")
    if text.startswith("~"):
        raise SandboxError("'~' is not expanded; give a path relative to an allowed root")
    return text


@dataclass
class Opened:
    """An open descriptor of a path under a root: ``path`` is its real, link-free path."""

    fd: int
    path: Path
    root: Path
    is_dir: bool

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sandbox:
    """Resolves and opens user-supplied paths under a fixed set of allowed roots."""

    def __init__(self, roots: Sequence[str | os.PathLike[str]]) -> None:
        resolved: list[Path] = []
        aliases: list[tuple[Path, Path]] = []  # (as configured, real) so "/data/x" works for a linked root
        for root in roots:
            given = Path(os.path.abspath(os.fspath(root)))
            path = Path(os.path.realpath(given))
            if path not in resolved:
                resolved.append(path)
            aliases.append((given, path))
        if not resolved:
            raise SandboxError("no allowed roots are configured (CREWGATE_ALLOWED_ROOTS)")
        self.roots: tuple[Path, ...] = tuple(resolved)
        self._aliases = [(p, p) for p in resolved] + [a for a in aliases if a[0] != a[1]]

    # --- pure path arithmetic ------------------------------------------------------------

    def _split(self, absolute: str) -> tuple[Path, list[str]]:
        """(root, components below it) of a lexically normalised absolute path, or _Escape."""
        norm = Path(os.path.normpath(absolute))
        for alias, real in self._aliases:
            if norm == alias or norm.is_relative_to(alias):
                return real, list(norm.relative_to(alias).parts)
        raise _Escape

    def relative(self, path: Path) -> str:
        """``path`` relative to its root (how tools accept it), or its name when outside."""
        for root in self.roots:
            if path == root or path.is_relative_to(root):
                return path.relative_to(root).as_posix() or "."
        return path.name

    # --- the walk ---------------------------------------------------------------------

    def _walk(self, root: Path, parts: list[str], want: str) -> Opened:
        """Open ``root/parts`` without leaving the roots; links inside them are followed."""
        for _ in range(MAX_LINK_HOPS):
            target = self._walk_once(root, parts, want)
            if isinstance(target, Opened):
                return target
            root, parts = self._split(target)
        raise _Missing  # a loop of links

    def _walk_once(self, root: Path, parts: list[str], want: str) -> Opened | str:
        """The opened path, or the absolute path a link on the way points to."""
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for index, name in enumerate(parts):
                last = index == len(parts) - 1
                flags = _DIR_FLAGS if not last or want == "dir" else _ANY_FLAGS
                try:
                    child = os.open(name, flags, dir_fd=fd)
                except OSError as e:
                    link = _link_target(fd, name, e)
                    return os.path.join(root.joinpath(*parts[:index]), link, *parts[index + 1 :])
                os.close(fd)
                fd = child
            opened = _finish(fd, root, parts, want)
            fd = -1  # now owned by ``opened``
            return opened
        finally:
            if fd >= 0:
                os.close(fd)

    def _open_text(self, text: str, base: Path | None, want: str) -> Opened:
        """Open checked path text: relative to ``base``, else to each root in turn."""
        if os.path.isabs(text):
            starts = [self._split(text)]
        elif base is not None:
            starts = [self._split(os.path.join(base, text))]
        else:
            rel = os.path.normpath(text)
            if rel == ".." or rel.startswith("../"):
                raise _Escape
            starts = [(root, [p for p in rel.split("/") if p not in ("", ".")]) for root in self.roots]
        escaped = False
        for root, parts in starts:
            try:
                return self._walk(root, parts, want)
            except _Escape:
                escaped = True
            except (_Missing, FileNotFoundError, NotADirectoryError):
                continue
        raise _Escape if escaped else _Missing

    def _open(self, text: str, shown: str, base: Path | None, want: str) -> Opened:
        """``_open_text`` with its failures turned into SandboxError messages naming ``shown``."""
        try:
            opened = self._open_text(text, base, want)
        except _Escape:
            where = f"'{self.relative(base)}'" if base is not None else "the allowed roots"
            raise OutsideRootsError(
                f"'{shown}' is outside {where}; tools may only read under CREWGATE_ALLOWED_ROOTS"
            ) from None
        except _Missing:
            where = f"in '{self.relative(base)}'" if base is not None else "under the allowed roots"
            raise MissingPathError(f"'{shown}' does not exist {where}") from None
        except IsADirectoryError:
            raise SandboxError(f"'{shown}' is not a file") from None
        except PermissionError:
            raise SandboxError(f"'{shown}' cannot be read (permission denied)") from None
        except OSError as e:
            code = errno.errorcode.get(e.errno or 0, "error")
            raise SandboxError(f"'{shown}' cannot be opened ({code})") from None
        if want == "dir" and not opened.is_dir:
            opened.close()
            raise SandboxError(f"'{shown}' is not a directory")
        if base is not None and not (opened.path == base or opened.path.is_relative_to(base)):
            opened.close()
            raise OutsideRootsError(f"'{shown}' is outside '{self.relative(base)}'")
        return opened

    # --- public API -------------------------------------------------------------------

    def open_raw(self, raw: str, *, want: str = "any", base: Path | None = None) -> Opened:
        """Resolve and open a user-supplied path in one walk (``want``: file, dir or any).

        ``base`` (a real directory under a root) anchors relative paths instead of the
        roots. The caller closes the result. SandboxError names ``raw`` as given.
        """
        text = check_path_text(raw)
        shown = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"
        return self._open(text, shown, base, want)

    def resolve(self, raw: str, *, want: str = "any") -> Path:
        """The real path of a user-supplied path under a root (checked by opening it)."""
        with self.open_raw(raw, want=want) as opened:
            return opened.path

    def resolve_within(self, base: Path, raw: str, *, want: str = "any") -> Path:
        """Resolve ``raw`` relative to ``base`` (itself under a root), staying inside ``base``."""
        with self.open_raw(raw, want=want, base=base) as opened:
            return opened.path

    def open_path(self, path: Path, *, want: str = "any") -> Opened:
        """Open a path found earlier (by ``resolve`` or ``walk_files``) by walking it again.

        Raises SandboxError (naming the path relative to its root) when it is gone,
        now leads outside the roots, or is not of the wanted kind.
        """
        if not path.is_absolute():
            raise SandboxError(f"'{path}' is not an absolute path")
        return self._open(str(path), self.relative(path), None, want)

    def open_file(self, path: Path) -> BinaryIO:
        """A binary stream over a regular file under a root (opened by a fresh walk)."""
        opened = self.open_path(path, want="file")
        return os.fdopen(opened.fd, "rb")

    def read_bytes(self, path: Path, max_bytes: int) -> bytes:
        """The whole file, refusing files over ``max_bytes`` (SandboxError)."""
        with self.open_file(path) as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise SandboxError(f"'{self.relative(path)}' is larger than {max_bytes:,} bytes")
        return data

    def stat(self, path: Path) -> os.stat_result:
        """``fstat`` of the path opened by a fresh walk."""
        with self.open_path(path) as opened:
            return os.fstat(opened.fd)

    def walk_files(self, base: Path, *, skip_dirs: Sequence[str] = (".git",)) -> Iterator[Path]:
        """Yield the real paths of regular files under ``base`` in sorted order.

        Directories are listed through descriptors opened without following links;
        linked directories are not descended; a linked file is yielded (as its real
        path) only when it stays inside the roots. Read each with ``open_file``.
        """
        try:
            opened = self.open_path(base)
        except SandboxError:
            return
        if not opened.is_dir:
            opened.close()
            yield opened.path
            return
        yield from self._walk_dir(opened, frozenset(skip_dirs))

    def _walk_dir(self, opened: Opened, skip: frozenset[str]) -> Iterator[Path]:
        """A directory's own files first (sorted), then its subdirectories (sorted), like os.walk."""
        with opened:
            try:
                entries = sorted(_entry(e) for e in os.scandir(opened.fd))
            except OSError:
                return
            for name, is_dir, is_link, is_file in entries:
                if is_dir or not (is_link or is_file):
                    continue
                found = self._linked_file(opened.path / name) if is_link else opened.path / name
                if found is not None:
                    yield found
            for name, is_dir, _, _ in entries:
                if not is_dir or name in skip:
                    continue
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=opened.fd)
                except OSError:
                    continue  # replaced by a link or removed meanwhile
                yield from self._walk_dir(Opened(child, opened.path / name, opened.root, True), skip)

    def links_under(self, base: Path, *, depth: int, limit: int) -> Iterator[str]:
        """Names (relative to ``base``) of symbolic links up to ``depth`` levels below it.

        Directories are listed through descriptors, links are not followed. Raises
        SandboxError when more than ``limit`` entries would have to be looked at.
        """
        seen = [0]
        yield from self._links(self.open_path(base, want="dir"), "", depth, limit, seen)

    def _links(self, opened: Opened, prefix: str, depth: int, limit: int, seen: list[int]) -> Iterator[str]:
        with opened:
            entries = [_entry(e) for e in os.scandir(opened.fd)]
            seen[0] += len(entries)
            if seen[0] > limit:
                raise SandboxError(f"'{self.relative(opened.path)}' has over {limit:,} entries")
            for name, is_dir, is_link, _ in entries:
                if is_link:
                    yield prefix + name
                elif is_dir and depth > 1:
                    try:
                        child = os.open(name, _DIR_FLAGS, dir_fd=opened.fd)
                    except OSError:
                        yield prefix + name  # replaced meanwhile: treat as suspect
                        continue
                    inner = Opened(child, opened.path / name, opened.root, True)
                    yield from self._links(inner, f"{prefix}{name}/", depth - 1, limit, seen)

    def _linked_file(self, path: Path) -> Path | None:
        try:
            with self.open_path(path) as target:
                return None if target.is_dir else target.path
        except SandboxError:
            return None


def _finish(fd: int, root: Path, parts: list[str], want: str) -> Opened:
    """``fd`` as an Opened when it is a directory or a regular file of the wanted kind."""
    mode = os.fstat(fd).st_mode
    is_dir = stat.S_ISDIR(mode)
    if not is_dir and not stat.S_ISREG(mode):
        raise _Missing  # fifos, sockets, devices: never read
    if want == "file" and is_dir:
        raise IsADirectoryError(errno.EISDIR, "is a directory")
    return Opened(fd, root.joinpath(*parts), root, is_dir)


def _entry(entry: os.DirEntry[str]) -> tuple[str, bool, bool, bool]:
    return (entry.name, entry.is_dir(follow_symlinks=False), entry.is_symlink(), entry.is_file(follow_symlinks=False))


def _link_target(dir_fd: int, name: str, error: OSError) -> str:
    """What the link ``name`` points to; re-raises ``error`` when it is no link (raced or missing)."""
    if error.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        if error.errno == errno.ENOENT:
            raise _Missing from None
        raise error
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        raise _Missing from None
