"""What commits changed: diff hunks from ``git log -p -U0``, kinds of files, and changed values.

Git runs through ``GitRepo.git`` (an argument list, no shell) with external diff
drivers and text conversion off; the commits and paths asked for are bounded by the
caller, and each commit's parsed diff is capped (hunks per file, lines per hunk,
characters per line), so a vendored blob or a generated file cannot flood a result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tools.code._git import GitRepo, iso_from_epoch

__all__ = [
    "Bump",
    "Change",
    "FileChange",
    "Hunk",
    "changed_values",
    "dependency_bumps",
    "file_kind",
    "match_values",
    "package_matches",
    "read_changes",
    "unquote_path",
]

MAX_HUNKS_PER_FILE = 60
MAX_LINES_PER_HUNK = 40
MAX_LINE_CHARS = 300
MAX_VALUES = 200
_FORMAT = "%x1e%H%x1f%P%x1f%an%x1f%ct%x1f%s"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def new_lines(self) -> range:
        """Post-image lines the hunk touches; a pure deletion touches the line it follows."""
        if self.new_count == 0:
            return range(max(1, self.new_start), max(1, self.new_start) + 1)
        return range(self.new_start, self.new_start + self.new_count)


@dataclass
class FileChange:
    path: str
    created: bool = False
    deleted: bool = False
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def added(self) -> list[str]:
        return [line for hunk in self.hunks for line in hunk.added]


@dataclass
class Change:
    sha: str
    parents: list[str]
    author: str
    epoch: int
    subject: str
    files: dict[str, FileChange] = field(default_factory=dict)

    @property
    def date(self) -> str:
        return iso_from_epoch(self.epoch)


def read_changes(git: GitRepo, revs: list[str], paths: list[str], max_commits: int) -> list[Change]:
    """Commits of ``revs`` (newest first, no merges) with their -U0 hunks in ``paths``."""
    if not paths:
        return []
    out = git.git(
        "log", "--no-color", "--no-merges", "--no-renames",
        "--relative", "-p", "-U0", f"--format={_FORMAT}", f"--max-count={max_commits}",
        *revs, "--", *paths,
    )  # fmt: skip
    return [change for record in out.split("\x1e") if (change := _parse_record(record))]


def _parse_record(record: str) -> Change | None:
    header, _, body = record.partition("\n")
    fields = header.split("\x1f")
    if len(fields) < 5 or not fields[0].strip():
        return None
    sha, parents, author, epoch, subject = fields[:5]
    change = Change(sha.strip(), parents.split(), author, int(epoch or 0), subject)
    _parse_diff(body, change)
    return change


_ESCAPES = {"\\": 92, '"': 34, "t": 9, "n": 10, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11}


def unquote_path(path: str) -> str:
    """A path as git prints it: C-quoted (octal bytes, backslash escapes) when it has unusual characters."""
    text = path.rstrip("\t\n")  # git ends a name holding spaces with a tab in ---/+++ lines
    if not (len(text) >= 2 and text.startswith('"') and text.endswith('"')):
        return text
    out = bytearray()
    body, i = text[1:-1], 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 3 < len(body) and body[i + 1 : i + 4].isdigit():
            out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        elif char == "\\" and i + 1 < len(body) and body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:
            out.extend(char.encode("utf-8"))
            i += 1
    return out.decode("utf-8", "replace")


def _parse_diff(body: str, change: Change) -> None:
    current: FileChange | None = None
    hunk: Hunk | None = None
    old_path = ""
    for line in body.split("\n"):
        if line.startswith("--- "):
            old_path = line[4:]
        elif line.startswith("+++ "):
            current, hunk = _start_file(change, old_path, line[4:]), None
        elif current is not None:
            hunk = _diff_line(current, hunk, line)


def _start_file(change: Change, old: str, new: str) -> FileChange:
    deleted = new.strip() == "/dev/null"
    raw = unquote_path(old if deleted else new)
    path = raw[2:] if raw[:2] in ("a/", "b/") else raw
    found = FileChange(path, created=old.strip() == "/dev/null", deleted=deleted)
    change.files[path] = found
    return found


def _diff_line(current: FileChange, hunk: Hunk | None, line: str) -> Hunk | None:
    match = _HUNK.match(line)
    if match:
        if len(current.hunks) >= MAX_HUNKS_PER_FILE:
            return None
        old_count = int(match.group(2)) if match.group(2) is not None else 1
        new_count = int(match.group(4)) if match.group(4) is not None else 1
        hunk = Hunk(int(match.group(1)), old_count, int(match.group(3)), new_count)
        current.hunks.append(hunk)
        return hunk
    if hunk is None or line[:1] not in ("+", "-"):
        return hunk
    target = hunk.added if line[0] == "+" else hunk.removed
    if len(target) < MAX_LINES_PER_HUNK:
        target.append(line[1:MAX_LINE_CHARS])
    return hunk


# --- kinds of files -----------------------------------------------------------

_DEPENDENCY_NAMES = frozenset(
    [
        "pyproject.toml",
        "poetry.lock",
        "pipfile",
        "pipfile.lock",
        "setup.cfg",
        "setup.py",
        "uv.lock",
        "package.json",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.mod",
        "go.sum",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "gradle.properties",
        "gemfile",
        "gemfile.lock",
        "cargo.toml",
        "cargo.lock",
        "composer.json",
        "composer.lock",
    ]
)
_DEPENDENCY_PATTERN = re.compile(r"^(?:requirements|constraints)[\w.-]*\.(?:txt|in)$")
_DEPLOY_DIRS = frozenset(
    ["k8s", "kubernetes", "kube", "helm", "charts", "chart", "deploy", "deployment", "deployments", "manifests"]
)
_DEPLOY_NAMES = re.compile(
    r"^(?:dockerfile(?:\..+)?|.+\.dockerfile|containerfile|docker-compose[\w.-]*\.ya?ml|compose\.ya?ml|"
    r"kustomization\.ya?ml|values[\w.-]*\.ya?ml|chart\.ya?ml|procfile|.+\.tf|.+\.tfvars|fly\.toml)$"
)
_CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".ini", ".cfg", ".conf", ".properties", ".env", ".hcl")
_CONFIG_NAME = re.compile(r"^\.env(?:\.[\w.-]+)?$|^[\w.-]+\.env$")
_CODE_SUFFIXES = (
    ".py", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".go", ".java", ".kt", ".kts", ".scala",
    ".rb", ".php", ".cs", ".rs", ".c", ".h", ".cc", ".cpp", ".swift", ".sql", ".sh",
)  # fmt: skip
KIND_LABELS = {
    "dependency": "dependency manifest or lock file",
    "deploy": "container or deploy manifest",
    "config": "configuration file",
}


def file_kind(path: str) -> str | None:
    """``dependency``, ``deploy``, ``config``, ``code`` or None (docs, assets, tests data …)."""
    posix = PurePosixPath(path.lower())
    name = posix.name
    if name in _DEPENDENCY_NAMES or _DEPENDENCY_PATTERN.match(name):
        return "dependency"
    if _DEPLOY_NAMES.match(name) or (
        name.endswith((".yaml", ".yml", ".json")) and _DEPLOY_DIRS.intersection(posix.parts[:-1])
    ):
        return "deploy"
    if name.endswith(_CONFIG_SUFFIXES) or _CONFIG_NAME.match(name):
        return "config" if not name.endswith((".js.map", ".css.map")) else None
    if name.endswith(_CODE_SUFFIXES):
        return "code"
    return None


# --- changed values against the error text ---------------------------------------

_STOP = frozenset(
    [
        "true",
        "false",
        "null",
        "none",
        "yes",
        "no",
        "on",
        "off",
        "the",
        "and",
        "for",
        "with",
        "from",
        "this",
        "that",
        "value",
        "name",
        "type",
        "default",
        "enabled",
        "disabled",
        "version",
        "image",
        "tag",
        "http",
        "https",
        "port",
        "host",
    ]
)
_TOKEN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/@]*[A-Za-z0-9_]|\d")
_QUOTED = re.compile(r"\"([^\"\\]{2,80})\"|'([^'\\]{2,80})'")
_NUMBER = re.compile(r"(?<![\w.])\d{2,}(?:\.\d+)?(?![\w.])")
_COMMENT = re.compile(r"(?:^|\s)(?:#|//).*$")
_KEY_SPLIT = re.compile(r"[\s:=]")


def changed_values(kind: str, added: list[str]) -> list[str]:
    """Values an added line sets: config right-hand sides, or quoted strings and numbers in code."""
    values: list[str] = []
    for line in added:
        values.extend(_code_values(line) if kind == "code" else _config_values(line, kind == "dependency"))
        if len(values) >= MAX_VALUES:
            break
    return list(dict.fromkeys(values))[:MAX_VALUES]


def _code_values(line: str) -> list[str]:
    quoted = [a or b for a, b in _QUOTED.findall(line)]
    return [q for q in quoted if q.strip() and len(q.strip()) >= 3] + _NUMBER.findall(line)


def _config_values(line: str, dependency: bool) -> list[str]:
    """Right-hand sides; for dependency manifests the package name (the key) as well."""
    text = _COMMENT.sub("", line).strip()
    if not text:
        return []
    key, sep, rest = _split_key(text)
    tokens = _TOKEN.findall(rest if sep else text)
    if dependency and sep and key:
        tokens.insert(0, key)
    found = [t for t in tokens if _meaningful(t)]
    single = [t for t in tokens if len(t) == 1 and t.isdigit()]
    return found + [f"{key}={t}" for t in single if key]


def _split_key(text: str) -> tuple[str, str, str]:
    match = _KEY_SPLIT.search(text)
    if not match:
        return "", "", text
    return text[: match.start()].strip().strip("\"'-"), match.group(0), text[match.end() :]


def _meaningful(token: str) -> bool:
    if token.lower() in _STOP:
        return False
    if token.isdigit():
        return len(token) >= 2
    return len(token) >= 3


def match_values(values: list[str], error_text: str) -> list[str]:
    """The values that appear in ``error_text`` as whole tokens (a one-digit value needs its key too)."""
    if not error_text:
        return []
    lowered = error_text.lower()
    found: list[str] = []
    for value in values:
        if _appears(value, error_text, lowered):
            found.append(value)
        if len(found) >= 5:
            break
    return found


def _appears(value: str, text: str, lowered: str) -> bool:
    if "=" in value:  # key=digit: the digit and a word of the key must both appear
        key, digit = value.rsplit("=", 1)
        words = [w for w in re.split(r"[_.\-\s]+", key.lower()) if len(w) >= 4]
        return any(w in lowered for w in words) and _appears(digit, text, lowered)
    if value.replace(".", "", 1).isdigit():
        return re.search(rf"(?<![\d.]){re.escape(value)}(?!\d|\.\d)", text) is not None
    # A dotted value (host, version) must end where the text's token ends; a plain name may be
    # followed by a module path ('urllib3' in 'urllib3.util.ssl_').
    tail = r"(?![\w\-]|\.\w)" if "." in value else r"(?![\w\-])"
    return re.search(rf"(?<![\w.\-]){re.escape(value.lower())}{tail}", lowered) is not None


# --- dependency bumps: which package a manifest change moved, from which version to which ---

MAX_BUMPS = 40
MAX_LOOKBACK = 30
_VERSION = r"[~^=<>!]*\s*v?(\d[\w.+\-]*)"
# Lines that name a package and its version together (requirements, PEP 621, Poetry, Pipfile, package.json,
# go.mod, go.sum, Gradle).
_SELF_CONTAINED = (
    re.compile(r"^\s*[\"']?([A-Za-z0-9][\w.\-]*)(?:\[[^\]]*\])?\s*(?:===?|~=|>=|<=|!=|>|<)\s*v?(\d[\w.+\-]*)"),
    re.compile(r"^\s*\"((?:@[\w.\-]+/)?[\w.\-]+)\"\s*:\s*\"" + _VERSION + r"\""),
    re.compile(r"^\s*([A-Za-z0-9][\w.\-]*)\s*=\s*[\"']" + _VERSION + r"[\"']"),
    re.compile(r"^\s*([A-Za-z0-9][\w.\-]*)\s*=\s*\{[^}]*\bversion\s*=\s*[\"']" + _VERSION),
    re.compile(r"^\s*(?:require\s+)?([a-z0-9][\w.\-]*\.[a-z]{2,}/[\w.\-/~]+)\s+(v\d[\w.+\-]*?)(?:/go\.mod)?(?:\s|$)"),
    re.compile(r"^\s*\w+\s*\(?\s*[\"']([\w.\-]+:[\w.\-]+):v?(\d[\w.+\-]*)[\"']"),
)
# A version alone on its line (lock files, pom.xml): the package is named a few lines above.
_VERSION_ONLY = re.compile(
    r"^\s*(?:version\s*=\s*[\"']|\"version\"\s*:\s*\"|version\s+\"|<version>)[=v]*(\d[\w.+\-]*)", re.IGNORECASE
)
_NAME_ABOVE = (
    re.compile(r"^\s*name\s*=\s*[\"']([\w.\-]+)[\"']"),  # poetry.lock, uv.lock
    re.compile(r"^\s*\"(?:[\w.\-/@]*node_modules/)?((?:@[\w.\-]+/)?[\w.\-]+)\"\s*:\s*\{"),  # package-lock, Pipfile.lock
    re.compile(r"^\"?((?:@[\w.\-]+/)?[\w.\-]+)@[^\n]*:\s*$"),  # yarn.lock entry header
    re.compile(r"^\s*<artifactId>([\w.\-]+)</artifactId>"),  # pom.xml
)
# Keys that carry a version but name no dependency (the project's own version, runtimes, lock file sections).
_NOT_PACKAGES = frozenset(
    ["version", "python", "name", "requires-python", "node", "npm", "go", "toolchain"]
    + ["packages", "dependencies", "devdependencies", "default", "develop", "_meta", "engines"]
)


@dataclass
class Bump:
    """A dependency whose pinned or required version a manifest change moved."""

    package: str
    old: str | None
    new: str
    path: str
    line: int

    def describe(self) -> str:
        move = f"{self.old} → {self.new}" if self.old else f"to {self.new}"
        return f"bumped {self.package} {move}"


def _self_contained(line: str) -> tuple[str, str] | None:
    text = _COMMENT.sub("", line) if not line.lstrip().startswith(("//", "#")) else ""
    for pattern in _SELF_CONTAINED:
        match = pattern.match(text)
        if match and match.group(1).lower() not in _NOT_PACKAGES:
            return match.group(1), match.group(2)
    return None


def _name_above(lines: list[str], index: int) -> str | None:
    for number in range(index - 1, max(-1, index - 1 - MAX_LOOKBACK), -1):
        for pattern in _NAME_ABOVE:
            match = pattern.match(lines[number][:MAX_LINE_CHARS])
            if match and match.group(1).lower() not in _NOT_PACKAGES:
                return match.group(1)
    return None


def _entries(lines: list[str], start: int, context: list[str] | None) -> list[tuple[str, str, int]]:
    """(package, version, line) for each line of a hunk; ``context`` is the whole file, to look names up."""
    found: list[tuple[str, str, int]] = []
    for offset, line in enumerate(lines):
        pair = _self_contained(line)
        if pair is None and context is not None and (match := _VERSION_ONLY.match(line)):
            name = _name_above(context, start + offset - 1)
            pair = (name, match.group(1)) if name else None
        if pair is not None:
            found.append((pair[0], pair[1], start + offset))
    return found


def dependency_bumps(found: FileChange, new_text: list[str] | None, old_text: list[str] | None) -> list[Bump]:
    """Packages whose version a manifest or lock file change set, with the old version when the diff had it.

    ``new_text``/``old_text`` are the file after and before the change (or None): lock files put the
    version a few lines under the package's name, which a -U0 hunk does not show.
    """
    bumps: list[Bump] = []
    for hunk in found.hunks:
        old = {name.lower(): version for name, version, _ in _entries(hunk.removed, hunk.old_start, old_text)}
        for name, version, line in _entries(hunk.added, hunk.new_start, new_text):
            previous = old.get(name.lower())
            if previous != version and len(bumps) < MAX_BUMPS:
                bumps.append(Bump(name, previous, version, found.path, line))
    return bumps


# --- which distribution a module belongs to -------------------------------------------

# Distribution names whose import name shares nothing a prefix/suffix rule could find.
_KNOWN_IMPORTS = {
    "pyyaml": "yaml",
    "beautifulsoup4": "bs4",
    "pillow": "pil",
    "scikit-learn": "sklearn",
    "opencv-python": "cv2",
    "attrs": "attr",
    "protobuf": "google",
    "pymysql": "pymysql",
    "psycopg2-binary": "psycopg2",
    "msgpack-python": "msgpack",
}
_AFFIXES = ("python", "py", "node", "js", "go", "golang")
_MAJOR = re.compile(r"^v\d+$")


def _flat(name: str) -> str:
    return re.sub(r"[-_.]+", "", name.lower())


def package_matches(distribution: str, module: str) -> bool:
    """Whether ``module`` (an import name, node_modules directory or Go module path) is ``distribution``.

    Names compare case-insensitively with ``-``, ``_`` and ``.`` ignored (PEP 503 style); a scoped npm
    name (``@scope/pkg``) and a Go module path must match whole; otherwise the last path element (a
    Go major-version ``/vN`` dropped) is compared, and a distribution may add a known prefix or suffix
    to the module's name (``PyJWT``/``jwt``, ``python-dateutil``/``dateutil``, ``pyyaml``/``yaml``).
    """
    dist, mod = distribution.strip().lower(), module.strip().lower()
    if not dist or not mod:
        return False
    if dist == mod or _KNOWN_IMPORTS.get(dist) == mod:
        return True
    if dist.startswith("@") or mod.startswith("@") or ("/" in dist and "/" in mod):
        return False  # scoped npm names and two Go module paths match only whole
    dist_flat, mod_flat = _flat(_last_element(dist)), _flat(_last_element(mod))
    if len(mod_flat) < 2:
        return False
    return dist_flat == mod_flat or any(dist_flat in (affix + mod_flat, mod_flat + affix) for affix in _AFFIXES)


def _last_element(name: str) -> str:
    parts = [part for part in name.split(":")[-1].split("/") if part]
    while len(parts) > 1 and _MAJOR.match(parts[-1]):
        parts.pop()
    return parts[-1] if parts else name
