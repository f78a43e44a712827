"""Mapping deployed frame paths onto repository files.

By longest path-suffix match, and, when the repository's own build facts are at hand
(``RepoView``): Go module paths from go.mod, the service's own package installed into
site-packages, compiled JavaScript back to its source through a committed source map
or the tsconfig ``outDir``/``rootDir`` pair, and Kotlin files for JVM frames.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools._result import clip
from tools.code._frames import Frame, go_package, path_components
from tools.code._sourcemap import lookup, parse_map

__all__ = ["FileIndex", "Mapping", "RepoView", "library_reason", "map_frames"]


@dataclass
class Mapping:
    repo_path: str | None
    reason: str | None = None
    candidates: list[str] | None = None
    line: int | None = None  # the source line when it differs from the frame's (source maps)
    via: str | None = None  # how a non-suffix mapping was made
    line_exact: bool = True  # False when the frame's line is of compiled output


class FileIndex:
    """Repository files indexed by file name, for suffix matching of deployed paths."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = frozenset(paths)
        self._by_name: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        for path in paths:
            parts = tuple(p for p in path.split("/") if p)
            if parts:
                self._by_name[parts[-1]].append(parts)

    def match(self, components: list[str]) -> Mapping:
        """The repo file sharing the longest trailing run of path components.

        Ties go to the shallowest file when exactly one is shallowest; otherwise
        the frame is reported as ambiguous rather than guessed.
        """
        if not components:
            return Mapping(None, "the frame has no file path")
        options = self._by_name.get(components[-1], [])
        if not options:
            return Mapping(None, "no file with this name in the repo")
        scored: list[tuple[int, tuple[str, ...]]] = []
        for parts in options:
            score = 0
            for mine, theirs in zip(reversed(parts), reversed(components), strict=False):
                if mine != theirs:
                    break
                score += 1
            scored.append((score, parts))
        best = max(score for score, _ in scored)
        top = [parts for score, parts in scored if score == best]
        if len(top) > 1:
            shallowest = min(len(parts) for parts in top)
            narrowed = [parts for parts in top if len(parts) == shallowest]
            if len(narrowed) == 1:
                top = narrowed
            else:
                names = sorted("/".join(parts) for parts in top)
                return Mapping(
                    None,
                    f"ambiguous: {len(names)} repo files end with '{'/'.join(components[-best:])}'",
                    names[:5],
                )
        return Mapping("/".join(top[0]))


def library_reason(frame: Frame) -> str:
    """Why a library/runtime frame is not mapped into the repo."""
    if frame.language == "java":
        return "JDK or third-party class" if frame.line is not None else "no line number"
    path = frame.path
    for marker, label in (
        ("site-packages", "installed package (site-packages)"),
        ("dist-packages", "installed package (dist-packages)"),
        ("node_modules", "third-party module (node_modules)"),
        ("/pkg/mod/", "Go module cache"),
        ("node:", "Node.js runtime"),
    ):
        if marker in path:
            return label
    if frame.language == "go":
        return "Go standard library (GOROOT)"
    if frame.language == "python":
        return "Python standard library or generated code"
    return "runtime or library code"


def map_frames(
    frames: list[Frame],
    index: FileIndex,
    read_line: Callable[[str, int], str | None],
    view: RepoView | None = None,
) -> list[dict[str, Any]]:
    """Frames (depth order) as result rows: the first row is the innermost frame."""
    rows: list[dict[str, Any]] = []
    for depth, frame in enumerate(frames):
        if view is not None:
            mapping = view.resolve(frame)
        else:
            mapping = Mapping(None, library_reason(frame)) if frame.library else index.match(frame.components)
        row: dict[str, Any] = {
            "language": frame.language,
            "function": frame.function,
            "path": frame.path,
            "line": mapping.line or frame.line,
            "repo_path": mapping.repo_path,
            "source": None,
            "innermost": depth == 0,
        }
        if frame.column is not None:
            row["column"] = frame.column
        _describe_mapping(row, frame, mapping)
        if mapping.repo_path and row["line"]:
            source = read_line(mapping.repo_path, row["line"])
            if source is None:
                row["note"] = "line is past the end of the repo file (deployed version differs?)"
            else:
                row["source"] = clip(source.strip(), 300)
        if mapping.reason:
            row["note"] = mapping.reason
        if mapping.candidates:
            row["candidates"] = mapping.candidates
        rows.append(row)
    return rows


def _describe_mapping(row: dict[str, Any], frame: Frame, mapping: Mapping) -> None:
    if mapping.via:
        row["mapped_by"] = mapping.via
    if mapping.line and mapping.line != frame.line:
        row["generated_line"] = frame.line
    if not mapping.line_exact:
        row["line_exact"] = False


# --- build facts of the repository ----------------------------------------------

_GO_MODULE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.MULTILINE)
_JSON_COMMENT = re.compile(r'("(?:\\.|[^"\\])*")|//[^\n]*|/\*.*?\*/', re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_TSCONFIG = re.compile(r"^tsconfig[\w.-]*\.json$")
_JS_TO_TS = {".js": (".ts", ".tsx", ".js", ".jsx"), ".mjs": (".mts", ".mjs"), ".cjs": (".cts", ".cjs")}
_INSTALL_DIRS = ("site-packages", "dist-packages")
MAX_BUILD_FILES = 20


def _strip_json_comments(text: str) -> str:
    without = _JSON_COMMENT.sub(lambda m: m.group(1) or "", text)
    return _TRAILING_COMMA.sub(r"\1", without)


class RepoView:
    """The repository's files plus a reader, for mappings that need the build's own facts."""

    def __init__(self, index: FileIndex, read_file: Callable[[str], str | None]) -> None:
        self.index = index
        self.read_file = read_file
        self._modules: list[tuple[str, str]] | None = None
        self._ts_roots: list[tuple[str, str]] | None = None

    def resolve(self, frame: Frame) -> Mapping:
        go = self._go_module(frame) if frame.language == "go" else None
        if go:
            return go
        if frame.library:
            installed = self._installed_package(frame) if frame.language == "python" else None
            return installed or Mapping(None, library_reason(frame))
        found = self.index.match(frame.components)
        if frame.language == "javascript":
            return self._javascript(frame, found)
        if not found.repo_path and frame.language == "java" and frame.path.endswith(".java"):
            kotlin = self.index.match([*frame.components[:-1], frame.components[-1][:-5] + ".kt"])
            return kotlin if kotlin.repo_path else found
        return found

    # Go --------------------------------------------------------------------

    def modules(self) -> list[tuple[str, str]]:
        """(module path, repo directory) of every go.mod in the repository."""
        if self._modules is None:
            self._modules = []
            for path in sorted(p for p in self.index.paths if p == "go.mod" or p.endswith("/go.mod"))[:MAX_BUILD_FILES]:
                match = _GO_MODULE.search(self.read_file(path) or "")
                if match:
                    self._modules.append((match.group(1), posixpath.dirname(path)))
            self._modules.sort(key=lambda item: -len(item[0]))
        return self._modules

    def _go_module(self, frame: Frame) -> Mapping | None:
        return self._go_module_path(frame) or self._go_import_path(frame)

    def _go_module_path(self, frame: Frame) -> Mapping | None:
        """A path that still carries the module path (``-trimpath`` builds, the module cache)."""
        path = frame.path.replace("\\", "/")
        for module, directory in self.modules():
            at = path.find(module + "/")
            versioned = path.find(module + "@")
            if at < 0 and versioned < 0:
                continue
            rest = path[at + len(module) + 1 :] if at >= 0 else path[versioned:].split("/", 1)[-1]
            candidate = posixpath.normpath(posixpath.join(directory, rest)) if directory else rest
            if candidate in self.index.paths:
                return Mapping(candidate, via=f"go module {module}")
        return None

    def _go_import_path(self, frame: Frame) -> Mapping | None:
        """The function's import path inside a go.mod module, whatever directory the build ran in:
        ``example.com/x/internal/batch.Last`` at ``/src/internal/batch/split.go`` is
        ``internal/batch/split.go`` of module ``example.com/x``."""
        package = go_package(frame.function)
        name = frame.components[-1] if frame.components else ""
        if not package or not name.endswith(".go"):
            return None
        for module, directory in self.modules():
            if package != module and not package.startswith(module + "/"):
                continue
            candidate = posixpath.normpath(posixpath.join(directory or ".", package[len(module) + 1 :], name))
            if candidate in self.index.paths:
                return Mapping(candidate, via=f"go package {package} of module {module}")
        return None

    # Python ----------------------------------------------------------------

    def _installed_package(self, frame: Frame) -> Mapping | None:
        parts = frame.components
        marks = [i for i, part in enumerate(parts) if part in _INSTALL_DIRS]
        if not marks or len(parts) - marks[-1] < 2:
            return None
        rest = parts[marks[-1] + 1 :]
        found = self.index.match(rest)
        tail = "/".join(rest)
        if not found.repo_path or not (found.repo_path == tail or found.repo_path.endswith("/" + tail)):
            return None
        if any(part in _INSTALL_DIRS or part in ("node_modules", ".venv") for part in found.repo_path.split("/")):
            return None
        return Mapping(found.repo_path, via=f"installed package '{rest[0]}' is this repository's own")

    # JavaScript / TypeScript -------------------------------------------------

    def _javascript(self, frame: Frame, found: Mapping) -> Mapping:
        if frame.path.endswith((".js", ".mjs", ".cjs")) and frame.line:
            mapped = self._source_map(frame, found.repo_path)
            if mapped:
                return mapped
        if found.repo_path:
            return found
        return self._ts_out_dir(frame) or found

    def _map_file(self, frame: Frame, repo_path: str | None) -> str | None:
        if repo_path and repo_path + ".map" in self.index.paths:
            return repo_path + ".map"
        named = self.index.match([*frame.components[:-1], frame.components[-1] + ".map"])
        return named.repo_path

    def _source_map(self, frame: Frame, repo_path: str | None) -> Mapping | None:
        map_path = self._map_file(frame, repo_path)
        data = parse_map(self.read_file(map_path) or "") if map_path else None
        original = lookup(data, frame.line or 0, frame.column) if data else None
        if original is None or map_path is None:
            return None
        source = original.source
        if "://" not in source and not source.startswith("/"):
            candidate = posixpath.normpath(posixpath.join(posixpath.dirname(map_path), source))
            if candidate in self.index.paths:
                return Mapping(candidate, line=original.line, via=f"source map {map_path}")
        matched = self.index.match(path_components(source))
        if matched.repo_path:
            return Mapping(matched.repo_path, line=original.line, via=f"source map {map_path}")
        return None

    def ts_roots(self) -> list[tuple[str, str]]:
        """(outDir, rootDir) pairs, repo-relative, from every tsconfig*.json."""
        if self._ts_roots is None:
            self._ts_roots = []
            names = sorted(p for p in self.index.paths if _TSCONFIG.match(posixpath.basename(p)))
            for path in names[:MAX_BUILD_FILES]:
                pair = self._ts_pair(path)
                if pair:
                    self._ts_roots.append(pair)
        return self._ts_roots

    def _ts_pair(self, path: str) -> tuple[str, str] | None:
        try:
            data = json.loads(_strip_json_comments(self.read_file(path) or ""))
        except ValueError:
            return None
        options = data.get("compilerOptions") if isinstance(data, dict) else None
        if not isinstance(options, dict):
            return None
        out_dir = options.get("outDir")
        if not isinstance(out_dir, str) or not out_dir.strip():
            return None
        root_dir = options.get("rootDir")
        root = root_dir if isinstance(root_dir, str) else "src"
        base = posixpath.dirname(path)
        return posixpath.normpath(posixpath.join(base, out_dir)), posixpath.normpath(posixpath.join(base, root))

    def _ts_out_dir(self, frame: Frame) -> Mapping | None:
        stem, ext = posixpath.splitext(frame.components[-1]) if frame.components else ("", "")
        for out_dir, root_dir in self.ts_roots():
            rest = _after(frame.components[:-1], [p for p in out_dir.split("/") if p not in ("", ".")])
            if rest is None:
                continue
            for suffix in _JS_TO_TS.get(ext, ()):
                candidate = posixpath.normpath(posixpath.join(root_dir, *rest, stem + suffix))
                if candidate in self.index.paths:
                    note = "the frame's line is of the compiled JavaScript; the TypeScript line may differ"
                    via = f"tsconfig outDir {out_dir} -> {root_dir}"
                    return Mapping(candidate, reason=note, via=via, line_exact=False)
        return None


def _after(components: list[str], out_parts: list[str]) -> list[str] | None:
    """The components after the last run equal to the tail of ``out_parts`` (at least its last part)."""
    if not out_parts:
        return None
    last = out_parts[-1]
    for i in range(len(components) - 1, -1, -1):
        if components[i] == last:
            return components[i + 1 :]
    return None
