"""Read-only git access: one hardened way to run git, plus parsers for its output.

A repository under an allowed root is hostile input: its ``.git`` may be a file
pointing elsewhere, ``commondir``, ``objects`` or ``objects/info/alternates`` may
lead to another repository, and its config may name files for git to read
(``include.path``, ``blame.ignoreRevsFile``, ``core.worktree``, mail maps, hooks,
textconv and external diff drivers …).

So git never sees the repository's own git directory or config:

* the layout (work tree top, git dir, common dir, object store, alternates) is
  found by crewgate itself through the sandbox, and each part must lie inside the
  allowed roots; object stores may hold no symbolic links (linked packs or loose
  objects could serve another repository's objects);
* git runs with a private ``GIT_DIR`` in a temporary directory that holds only our
  config plus copies of ``HEAD``, the refs and ``shallow``; the object store is
  passed as ``GIT_OBJECT_DIRECTORY``. This is an allow-list by construction — no
  repository config key is read, so none needs to be known and refused — and it
  keeps using git itself for log and blame (a pure-Python reader such as dulwich
  would have no blame with git's semantics);
* the object store, the work tree and the working directory are passed as
  ``/proc/self/fd/N`` of descriptors opened by the sandbox walk, so swapping a
  directory on their path for a link after the check does not redirect git;
* the layout is checked again after every git call, and the output discarded if
  it changed;
* no system or global config, no replace objects, no optional locks, no hooks, no
  fsmonitor, no mail map, no textconv or external diff, no pager, no prompts;
* git's stderr is never shown: a failure is a fixed message and the exit status.

Residual risk: git reads alternates (validated inside the roots) and the object
store's own subdirectories by path; a link swapped in *inside* the object store
after it was opened (the link scan runs once per opening, the layout check after
every call) is not caught, and neither are hard links (they need the same file
system and, with fs.protected_hardlinks, ownership of the target).
Alternates written as relative paths do not work with the pinned object store
(git normalises them lexically against ``/proc/self/fd/N``): such repositories get
an error, never another repository's objects. Without ``/proc`` the paths are
passed as real paths (checked before and after each call).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from tools._base import ToolError
from tools._sandbox import MissingPathError, Opened, OutsideRootsError, Sandbox, SandboxError

__all__ = [
    "BlameLine",
    "GitRepo",
    "format_git_date",
    "iso_from_epoch",
    "open_git_repo",
    "parse_blame_porcelain",
    "parse_iso",
    "validate_rev",
]

GIT_TIMEOUT_SECONDS = 20
MAX_LOOSE_REFS = 20_000
MAX_SMALL_FILE = 64 * 1024
MAX_REFS_FILE = 64 * 1024 * 1024
MAX_ALTERNATE_DEPTH = 5
MAX_STORE_ENTRIES = 500_000  # loose objects and packs looked at for links, per store
_REV_RE = re.compile(r"^[0-9A-Za-z._/~^-]+$")
_BLAME_HEADER_RE = re.compile(r"^([0-9a-f]{40}|[0-9a-f]{64}) (\d+) (\d+)(?: (\d+))?$")
ZERO_SHA_RE = re.compile(r"^0+$")
_PINNED = os.path.isdir("/proc/self/fd")
_NO_DRIVERS = {"log", "show", "diff", "blame"}  # commands that take --no-ext-diff --no-textconv

# The only configuration git reads.
_CONFIG = """[core]
\trepositoryformatversion = {version}
\tbare = false
\tfsmonitor = false
\thooksPath = /dev/null
\tuntrackedCache = false
\tsplitIndex = false
\tsparseCheckout = false
[log]
\tshowSignature = false
\tmailmap = false
[color]
\tui = false
[protocol]
\tallow = never
{extensions}"""

# Fixed texts for the few failures worth telling apart; stderr itself is never shown.
_KNOWN_FAILURES = (
    ("does not have any commits", "the repository has no commits yet"),
    ("no such path", "the path does not exist at that revision"),
    ("has only", "the line range is past the end of the file"),
    ("unknown revision", "unknown revision"),
    ("bad revision", "unknown revision"),
    ("ambiguous argument", "unknown revision or path"),
    ("not a valid object name", "unknown revision"),
)


def _base_env(home: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": home,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_NO_LAZY_FETCH": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_LITERAL_PATHSPECS": "1",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }


def _failure(command: str, returncode: int, stderr: bytes) -> ToolError:
    text = stderr.decode("utf-8", "replace").lower()
    for needle, message in _KNOWN_FAILURES:
        if needle in text:
            return ToolError(f"git {command}: {message}")
    return ToolError(f"git {command} failed (exit status {returncode})")


@dataclass(frozen=True)
class _Layout:
    """Where a work tree's git data lives; every path real and inside the roots."""

    top: Path
    gitdir: Path
    common: Path
    objects: Path
    alternates: tuple[Path, ...]


def _read_small(sandbox: Sandbox, path: Path, limit: int = MAX_SMALL_FILE) -> str:
    return sandbox.read_bytes(path, limit).decode("utf-8", "replace")


def _pointed_dir(sandbox: Sandbox, base: Path, text: str, what: str) -> Path:
    """The directory ``text`` (absolute or relative to ``base``) names, inside the roots."""
    target = text.strip()
    if not target or "\x00" in target or target.startswith('"'):
        raise ToolError(f"the repository's {what} is not a plain path")
    try:
        with sandbox.open_path(Path(os.path.join(base, target)), want="dir") as opened:
            return opened.path
    except OutsideRootsError as e:
        raise ToolError(f"the repository's {what} is outside the allowed roots") from e
    except SandboxError as e:
        raise ToolError(f"the repository's {what} is missing") from e


def _find_dotgit(sandbox: Sandbox, repo: Path, raw: str) -> tuple[Path, Opened]:
    """The nearest ``.git`` at or above ``repo``, without climbing above its root."""
    here = repo
    while True:
        try:
            return here, sandbox.open_path(here / ".git")
        except OutsideRootsError as e:
            raise ToolError(f"'{raw}': its .git leads outside the allowed roots") from e
        except MissingPathError:
            pass
        except SandboxError as e:
            raise ToolError(f"'{raw}': its .git cannot be read") from e
        if here in sandbox.roots or here.parent == here:
            raise ToolError(f"'{raw}' is not a git work tree")
        here = here.parent


def _alternates(sandbox: Sandbox, objects: Path, depth: int = 0) -> list[Path]:
    """Alternate object stores listed by ``objects`` (recursively, as git reads them)."""
    try:
        text = _read_small(sandbox, objects / "info" / "alternates")
    except MissingPathError:
        return []
    except SandboxError as e:
        raise ToolError("the repository's object alternates cannot be read") from e
    found: list[Path] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if depth >= MAX_ALTERNATE_DEPTH:
            raise ToolError("the repository's object alternates nest too deeply")
        alternate = _pointed_dir(sandbox, objects, line, "object alternate")
        found += [alternate, *_alternates(sandbox, alternate, depth + 1)]
    return found


def _check_store(sandbox: Sandbox, objects: Path) -> None:
    """The object store's own subdirectories must not lead out of the roots either."""
    for name in ("pack", "info"):
        try:
            sandbox.open_path(objects / name).close()
        except OutsideRootsError as e:
            raise ToolError(f"the repository's objects/{name} is outside the allowed roots") from e
        except SandboxError:
            continue


def _check_no_links(sandbox: Sandbox, layout: _Layout) -> None:
    """No object store may hold links: git never makes them, and a linked pack or loose
    object (even one leading elsewhere inside the roots) could serve another
    repository's objects. Checked once per opening; see the module's residual risk."""
    for store in (layout.objects, *layout.alternates):
        try:
            link = next(sandbox.links_under(store, depth=2, limit=MAX_STORE_ENTRIES), None)
        except SandboxError as e:
            raise ToolError(f"the repository's object store cannot be checked ({e})") from e
        if link is not None:
            raise ToolError(f"the repository's object store contains a link (objects/{link}); tools do not read it")


def _locate(sandbox: Sandbox, repo: Path, raw: str) -> _Layout:
    top, dotgit = _find_dotgit(sandbox, repo, raw)
    with dotgit:
        if dotgit.is_dir:
            gitdir = dotgit.path
        else:
            text = _read_small(sandbox, dotgit.path, 4096)
            if not text.startswith("gitdir:"):
                raise ToolError(f"'{raw}': its .git file is not a gitdir link")
            target = (text.removeprefix("gitdir:").splitlines() or [""])[0]
            gitdir = _pointed_dir(sandbox, top, target, "git directory")
    try:
        common_text = _read_small(sandbox, gitdir / "commondir", 4096)
    except MissingPathError:
        common = gitdir
    except SandboxError as e:
        raise ToolError("the repository's commondir cannot be read") from e
    else:
        common = _pointed_dir(sandbox, gitdir, (common_text.splitlines() or [""])[0], "common directory")
    objects = _pointed_dir(sandbox, common, "objects", "object store")
    _check_store(sandbox, objects)
    return _Layout(top, gitdir, common, objects, tuple(_alternates(sandbox, objects)))


def _object_format(sandbox: Sandbox, common: Path) -> str:
    """``sha256`` when the repository's config says so (the one key we take from it)."""
    try:
        text = _read_small(sandbox, common / "config", 1024 * 1024)
    except SandboxError:
        return "sha1"
    section = ""
    for line in text.splitlines():
        stripped = line.strip().lower()
        if stripped.startswith("["):
            section = stripped.strip("[] ")
        elif section == "extensions" and re.match(r"objectformat\s*=\s*sha256\b", stripped):
            return "sha256"
    return "sha1"


def _copy(sandbox: Sandbox, source: Path, target: Path, limit: int) -> None:
    try:
        data = sandbox.read_bytes(source, limit)
    except MissingPathError:
        return
    except SandboxError as e:
        raise ToolError(f"the repository's {source.name} cannot be read") from e
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _private_gitdir(sandbox: Sandbox, layout: _Layout, into: Path) -> None:
    """A git directory holding our config and copies of HEAD, refs and shallow."""
    sha256 = _object_format(sandbox, layout.common) == "sha256"
    extensions = "[extensions]\n\tobjectformat = sha256\n" if sha256 else ""
    (into / "config").write_text(_CONFIG.format(version=1 if sha256 else 0, extensions=extensions))
    _copy(sandbox, layout.gitdir / "HEAD", into / "HEAD", 4096)
    if not (into / "HEAD").exists():
        raise ToolError("the repository has no HEAD")
    _copy(sandbox, layout.common / "packed-refs", into / "packed-refs", MAX_REFS_FILE)
    _copy(sandbox, layout.common / "shallow", into / "shallow", MAX_REFS_FILE)
    refs = layout.common / "refs"
    (into / "refs" / "heads").mkdir(parents=True)
    (into / "refs" / "tags").mkdir()
    for count, path in enumerate(sandbox.walk_files(refs, skip_dirs=())):
        if count >= MAX_LOOSE_REFS:
            raise ToolError(f"the repository has over {MAX_LOOSE_REFS:,} loose refs; run 'git pack-refs --all'")
        if path.is_relative_to(refs):
            _copy(sandbox, path, into / "refs" / path.relative_to(refs), 4096)


def _run(command: list[str], env: dict[str, str], cwd: str, pass_fds: tuple[int, ...]) -> str:
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            env=env,
            cwd=cwd,
            pass_fds=pass_fds,
            timeout=GIT_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as e:
        raise ToolError("git is not installed on this machine") from e
    except subprocess.TimeoutExpired as e:
        raise ToolError(f"git {command[1]} timed out after {GIT_TIMEOUT_SECONDS} s") from e
    if proc.returncode != 0:
        raise _failure(command[1], proc.returncode, proc.stderr)
    return proc.stdout.decode("utf-8", "replace")


@dataclass
class GitRepo:
    """A git work tree under the allowed roots; ``path`` is the directory asked for."""

    path: Path
    env: dict[str, str] = field(repr=False)
    sandbox: Sandbox = field(repr=False)
    layout: _Layout = field(repr=False)
    raw: str = field(default="", repr=False)
    _private: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def git(self, *args: str) -> str:
        """Run ``git args`` (read-only) in ``path``; ToolError with a fixed message on failure."""
        command = ["git", "--no-pager", args[0]]
        if args[0] in _NO_DRIVERS:
            command += ["--no-ext-diff", "--no-textconv"]
        command += list(args[1:])
        with ExitStack() as stack:
            env = dict(self.env)
            fds: list[int] = []
            cwd = str(self.path)
            if _PINNED:
                objects, top, here = (
                    stack.enter_context(self._pin(p)) for p in (self.layout.objects, self.layout.top, self.path)
                )
                env["GIT_OBJECT_DIRECTORY"] = f"/proc/self/fd/{objects.fd}"
                env["GIT_WORK_TREE"] = f"/proc/self/fd/{top.fd}"
                cwd = f"/proc/self/fd/{here.fd}"
                fds = [objects.fd, top.fd, here.fd]
            out = _run(command, env, cwd, tuple(fds))
        if _locate(self.sandbox, self.path, self.raw) != self.layout:
            raise ToolError("the repository changed while it was being read; try again")
        return out

    def _pin(self, path: Path) -> Opened:
        try:
            return self.sandbox.open_path(path, want="dir")
        except SandboxError as e:
            raise ToolError("the repository changed while it was being read; try again") from e

    def resolve_rev(self, rev: str) -> str:
        """The full sha of commit ``rev`` (already validated), or ToolError."""
        try:
            out = self.git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except ToolError as e:
            raise ToolError(f"unknown revision '{rev}' in this repository") from e
        return out.strip()


def open_git_repo(sandbox: Sandbox, repo: Path, raw: str) -> GitRepo:
    """``repo`` (already resolved under the roots) as a git work tree, or ToolError.

    The repository's layout must lie inside the roots; git then runs on a private
    git directory (see the module docstring), never on the repository's own config.
    """
    layout = _locate(sandbox, repo, raw)
    _check_no_links(sandbox, layout)
    private = tempfile.TemporaryDirectory(prefix="crewgate-git-")
    try:
        _private_gitdir(sandbox, layout, Path(private.name))
    except BaseException:
        private.cleanup()
        raise
    env = _base_env(private.name)
    env.update(
        GIT_DIR=private.name,
        GIT_OBJECT_DIRECTORY=str(layout.objects),
        GIT_WORK_TREE=str(layout.top),
        GIT_CEILING_DIRECTORIES=os.pathsep.join(str(root) for root in sandbox.roots),
    )
    return GitRepo(path=repo, env=env, sandbox=sandbox, layout=layout, raw=raw, _private=private)


def validate_rev(rev: str) -> str:
    rev = rev.strip()
    if not rev:
        raise ToolError("'rev' is empty; give a commit sha, branch or tag")
    if rev.startswith("-"):
        raise ToolError(f"'rev' may not start with '-' (got '{rev}'); give a commit sha or branch")
    if not _REV_RE.match(rev) or ".." in rev:
        raise ToolError(f"'rev' '{rev}' is not a plain revision; use letters, digits and . _ / ~ ^ - only")
    return rev


def parse_iso(value: str, name: str) -> datetime:
    """An ISO 8601 timestamp as an aware datetime (naive values are taken as UTC)."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as e:
        raise ToolError(f"'{name}' must be an ISO timestamp like 2024-05-01T10:00:00Z (got '{value}')") from e
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_git_date(moment: datetime) -> str:
    """A date git parses unambiguously, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000")


def iso_from_epoch(epoch: str | int, tz: str = "+0000") -> str:
    try:
        sign = -1 if tz.startswith("-") else 1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])) * sign
        zone = timezone(offset)
    except (ValueError, IndexError):
        zone = UTC
    return datetime.fromtimestamp(int(epoch), tz=zone).isoformat()


@dataclass
class BlameLine:
    line: int
    sha: str
    author: str
    date: str
    epoch: int
    summary: str
    text: str

    @property
    def committed(self) -> bool:
        return not ZERO_SHA_RE.match(self.sha)


def parse_blame_porcelain(output: str) -> list[BlameLine]:
    """Lines of ``git blame --porcelain`` output, in file order."""
    infos: dict[str, dict[str, str]] = {}
    result: list[BlameLine] = []
    current: tuple[str, int] | None = None
    for raw in output.split("\n"):
        if raw.startswith("\t"):
            if current is None:
                continue
            sha, final = current
            info = infos.get(sha, {})
            committed = not ZERO_SHA_RE.match(sha)
            epoch = int(info.get("committer-time", "0") or 0)
            result.append(
                BlameLine(
                    line=final,
                    sha=sha,
                    author=info.get("author", "") if committed else "(not committed yet)",
                    date=iso_from_epoch(epoch, info.get("committer-tz", "+0000")),
                    epoch=epoch,
                    summary=info.get("summary", ""),
                    text=raw[1:],
                )
            )
            current = None
            continue
        header = _BLAME_HEADER_RE.match(raw)
        if header:
            current = (header.group(1), int(header.group(3)))
            infos.setdefault(header.group(1), {})
            continue
        if current is not None and " " in raw:
            key, value = raw.split(" ", 1)
            infos[current[0]].setdefault(key, value)
    return result
