"""The active config catalog, its snapshots by version, and hot reload.

A valid edit of the config directory becomes the active catalog for new tasks; a
broken one is refused with its errors and changes nothing. Every version a task
was queued with is kept in the store, so the task runs that exact config even
after the files changed or the gateway restarted.

Each file is read once per scan: the same bytes are parsed, hashed into the
version and stored as the snapshot, so a version always names exactly the content
that was validated. The watcher survives any file (a file that cannot be read or
parsed is a refused edit) and restarts itself with backoff if the watch itself
fails; ``watching`` says whether edits are being picked up right now.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.pool
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import structlog

from agents.catalog import Catalog, YamlLimits, check_texts, drop_unknowable, read_config_dir, validate_texts
from agents.errors import ConfigError, ConfigIssue
from gateway.store import Store

if TYPE_CHECKING:
    from gateway.settings import Settings

__all__ = [
    "ConfigManager",
    "ValidationBusy",
    "Validator",
    "display_directory",
    "validate_files",
]

log = structlog.get_logger("crewgate.configs")

HISTORY_LIMIT = 50
ERRORS_PER_ENTRY = 20

Validator = Callable[[Mapping[str, bytes]], tuple[Catalog | None, list[ConfigIssue]]]


@dataclass(frozen=True)
class _Scan:
    """The directory as the last scan found it."""

    at: datetime
    version: str | None
    errors: list[ConfigIssue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def validate_files(
    files: Mapping[str, str | bytes], limits: YamlLimits | None = None
) -> tuple[Catalog | None, list[ConfigIssue]]:
    """Validate a config given as {relative path: text or bytes}, in memory; positions name those paths."""
    return validate_texts(files, limits=limits)


def display_directory(directory: Path) -> str:
    """The config directory as an operator named it, never as an absolute server path."""
    from gateway.settings import PROJECT_ROOT

    resolved = directory.resolve()
    if resolved.is_relative_to(PROJECT_ROOT):
        return resolved.relative_to(PROJECT_ROOT).as_posix() or "."
    return resolved.name or "."


def _issues_json(issues: list[ConfigIssue]) -> list[dict[str, object]]:
    return [i.as_dict() for i in issues[:ERRORS_PER_ENTRY]]


class ValidationBusy(Exception):
    """Validation did not finish within its time budget."""


class _ValidationWorker:
    """Validates submitted configs in a separate process, one at a time, within a time budget.

    The parser is bounded (size, depth, aliases, nodes) but a 1 MiB file still costs
    seconds of pure-Python CPU; in a thread that would hold the GIL the event loop
    needs, and a thread cannot be stopped. A worker process can: on overrun it is
    killed and a fresh one is started for the next request.
    """

    def __init__(self, limits: YamlLimits, timeout_s: float) -> None:
        self.limits = limits
        self.timeout_s = timeout_s
        self._pool: multiprocessing.pool.Pool | None = None
        self._slot = asyncio.Semaphore(1)

    async def check(self, files: Mapping[str, str | bytes]) -> tuple[str | None, list[dict[str, Any]]]:
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._slot:
                    return await self._run(dict(files))
        except TimeoutError:
            raise ValidationBusy(f"validation did not finish within {self.timeout_s:g} s") from None

    async def _run(self, files: dict[str, str | bytes]) -> tuple[str | None, list[dict[str, Any]]]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[tuple[str | None, list[dict[str, Any]]]] = loop.create_future()

        def settle(value: Any, error: BaseException | None = None) -> None:
            if result.done():
                return
            if error is not None:
                result.set_exception(error)
            else:
                result.set_result(value)

        pool = self._ensure_pool()
        pool.apply_async(
            check_texts,
            (files, self.limits),
            callback=lambda v: loop.call_soon_threadsafe(settle, v),
            error_callback=lambda e: loop.call_soon_threadsafe(settle, None, e),
        )
        try:
            return await result
        except asyncio.CancelledError:  # the budget ran out: the worker may be stuck, replace it
            await self.close()
            raise

    def _ensure_pool(self) -> multiprocessing.pool.Pool:
        if self._pool is None:
            self._pool = multiprocessing.get_context("spawn").Pool(1)
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.terminate)


WatchState = Literal["off", "watching", "restarting", "stopped"]


class ConfigManager:
    def __init__(
        self,
        directory: Path,
        store: Store,
        *,
        limits: YamlLimits | None = None,
        validator: Validator | None = None,
        validate_timeout_s: float = 30.0,
        watch_backoff: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        """``validator`` checks the bytes of one scan (default: ``validate_texts`` with ``limits``)."""
        self.directory = directory
        self.store = store
        self.limits = limits or YamlLimits()
        self.validator: Validator = validator or partial(validate_files, limits=self.limits)
        self.active: Catalog | None = None
        self.loaded_at: datetime | None = None
        self.reloads = 0
        self.current: _Scan | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LIMIT)
        self.watch_state: WatchState = "off"
        self.watch_restarts = 0
        self.watch_error: str | None = None
        self._backoff = watch_backoff
        self._delay = watch_backoff[0]
        self._by_version: dict[str, Catalog] = {}
        self._lock = asyncio.Lock()
        self._worker = _ValidationWorker(self.limits, validate_timeout_s)

    @classmethod
    def from_settings(cls, settings: Settings, store: Store) -> ConfigManager:
        limits = YamlLimits(
            max_file_bytes=settings.config_max_file_bytes,
            max_total_bytes=settings.config_max_total_bytes,
            max_depth=settings.config_max_depth,
            max_aliases=settings.config_max_aliases,
            max_nodes=settings.config_max_nodes,
        )
        return cls(settings.config_dir, store, limits=limits, validate_timeout_s=settings.config_validate_timeout_s)

    # --- scanning and activating ------------------------------------------------------------

    def scan(self) -> tuple[Catalog | None, list[ConfigIssue]]:
        """Read every file once and validate those bytes (blocking; call off the event loop)."""
        if not self.directory.is_dir():
            return None, [ConfigIssue(".", 1, 1, "", "config directory does not exist")]
        files, read_issues = read_config_dir(self.directory, self.limits)
        catalog, issues = self.validator(files)
        if read_issues:
            return None, sorted(set(read_issues + drop_unknowable(issues)))
        if catalog is not None:
            catalog = _with_directory(catalog, self.directory)
        return catalog, issues

    async def _safe_scan(self) -> tuple[Catalog | None, list[ConfigIssue]]:
        try:
            return await asyncio.to_thread(self.scan)
        except Exception as e:  # one unreadable file must never stop reloading
            log.exception("config scan failed")
            return None, [ConfigIssue(".", 1, 1, "", f"the config could not be read: {type(e).__name__}")]

    async def load(self) -> Catalog:
        """Load at start-up; a broken config here stops the gateway (fail fast)."""
        catalog, issues = await self._safe_scan()
        if catalog is None:
            raise ConfigError(issues)
        await self._activate(catalog)
        self._record("loaded", catalog.version)
        return catalog

    async def reload(self) -> bool:
        """Re-read the directory; True when a new version became active. Never raises for bad files."""
        async with self._lock:
            catalog, issues = await self._safe_scan()
            if catalog is None:
                was = self.current
                self.current = _Scan(datetime.now(UTC), None, issues)
                if was is None or was.errors != issues:
                    self._record("refused", None, issues)
                log.warning("config edit refused", errors=[str(i) for i in issues[:ERRORS_PER_ENTRY]])
                return False
            if self.active is not None and catalog.version == self.active.version:
                if self.current is not None and not self.current.valid:
                    self._record("restored", catalog.version)
                self.current = _Scan(datetime.now(UTC), catalog.version)
                return False
            await self._activate(catalog)
            self.reloads += 1
            self._record("loaded", catalog.version)
            log.info("config reloaded", config_version=catalog.version)
            return True

    async def _activate(self, catalog: Catalog) -> None:
        """Store the snapshot the catalog was validated from (the very same text) and make it active."""
        await self.store.save_config(catalog.version, dict(catalog.texts))
        self._by_version[catalog.version] = catalog
        self.active = catalog
        self.loaded_at = datetime.now(UTC)
        self.current = _Scan(self.loaded_at, catalog.version)

    def _record(self, outcome: str, version: str | None, errors: list[ConfigIssue] | None = None) -> None:
        entry: dict[str, Any] = {"at": datetime.now(UTC), "outcome": outcome, "version": version}
        if errors is not None:
            entry["errors"] = _issues_json(errors)
            entry["error_count"] = len(errors)
        self.history.appendleft(entry)

    async def catalog_for(self, version: str) -> Catalog:
        """The catalog a task was queued with: from memory, else rebuilt from its snapshot."""
        if version in self._by_version:
            return self._by_version[version]
        files = await self.store.load_config(version)
        if files is None:
            raise LookupError(f"config version {version} is not in the store")
        catalog, issues = await asyncio.to_thread(validate_texts, files, limits=self.limits)
        if catalog is None:
            raise ConfigError(issues)
        self._by_version[version] = catalog
        return catalog

    # --- validation for the API -------------------------------------------------------------

    async def check(self, files: Mapping[str, str] | None = None) -> tuple[str | None, list[dict[str, Any]]]:
        """Validate submitted files (or the directory as it is now) in a worker process.

        Returns (version or None, errors as dicts). Raises ``ValidationBusy`` when the
        time budget runs out. Nothing is applied.
        """
        if files is None:
            blobs, read_issues = await asyncio.to_thread(read_config_dir, self.directory, self.limits)
            if read_issues or not self.directory.is_dir():
                issues = read_issues or [ConfigIssue(".", 1, 1, "", "config directory does not exist")]
                return None, [i.as_dict() for i in sorted(issues)]
            return await self._worker.check(blobs)
        return await self._worker.check(files)

    async def close(self) -> None:
        await self._worker.close()

    # --- watching ---------------------------------------------------------------------------

    @property
    def watching(self) -> bool:
        """Edits to the directory are being picked up right now."""
        return self.watch_state == "watching"

    @property
    def reload_healthy(self) -> bool:
        """False while the watcher is down and waiting to restart: edits would be missed."""
        return self.watch_state != "restarting"

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every change to the directory until ``stop`` is set; restart after any failure."""
        self._delay = self._backoff[0]
        catch_up = False
        while not stop.is_set():
            try:
                if catch_up:
                    await self.reload()  # edits made while nobody was watching
                await self._watch_once(stop)
            except asyncio.CancelledError:
                self.watch_state = "stopped"
                raise
            except Exception as e:  # the watcher must never die for good
                self.watch_state = "restarting"
                self.watch_restarts += 1
                self.watch_error = type(e).__name__
                log.warning("config watcher failed; restarting", error=type(e).__name__, retry_in_s=self._delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._delay)
                self._delay = min(self._delay * 2, self._backoff[1])
                catch_up = True
        self.watch_state = "stopped"

    async def _watch_once(self, stop: asyncio.Event) -> None:
        from watchfiles import awatch

        inode = os.stat(self.directory).st_ino
        self.watch_state = "watching"
        async for changes in awatch(
            self.directory,
            stop_event=stop,
            debounce=300,
            step=100,
            watch_filter=_yaml_only,
            rust_timeout=5_000,
            yield_on_timeout=True,
        ):
            if not self.directory.is_dir() or os.stat(self.directory).st_ino != inode:
                raise FileNotFoundError("the config directory was removed or replaced")
            if changes:
                await self.reload()
                self.watch_error = None
                self._delay = self._backoff[0]
        if not stop.is_set():
            raise RuntimeError("the file watcher ended")

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        current = self.current
        refused = None
        if current is not None and not current.valid:
            refused = {"at": current.at, "errors": _issues_json(current.errors)}
        return {
            "directory": display_directory(self.directory),
            "current": None
            if current is None
            else {
                "state": "valid" if current.valid else "invalid",
                "checked_at": current.at,
                "version": current.version,
                "errors": _issues_json(current.errors),
                "error_count": len(current.errors),
            },
            "active": None
            if self.active is None
            else {"version": self.active.version, "loaded_at": self.loaded_at, "files": list(self.active.files)},
            "history": list(self.history),
            "watcher": {
                "state": self.watch_state,
                "watching": self.watching,
                "restarts": self.watch_restarts,
                "last_error": self.watch_error,
            },
            # kept for older clients
            "active_version": self.active.version if self.active else None,
            "loaded_at": self.loaded_at,
            "files": list(self.active.files) if self.active else [],
            "reloads": self.reloads,
            "last_refused": refused,
        }


def _with_directory(catalog: Catalog, directory: Path) -> Catalog:
    return replace(catalog, directory=directory.resolve())


def _yaml_only(_change: Any, path: str) -> bool:
    return path.endswith((".yaml", ".yml"))
