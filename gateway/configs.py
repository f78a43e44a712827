"""The active config catalog, its snapshots by version, and hot reload.

A valid edit of the config directory becomes the active catalog for new tasks; a
broken one is refused with its errors and changes nothing. Every version a task
was queued with is kept in the store, so the task runs that exact config even
after the files changed or the gateway restarted.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agents.catalog import Catalog, validate_directory
from agents.errors import ConfigError, ConfigIssue
from gateway.store import Store

__all__ = ["ConfigManager", "RefusedEdit", "read_files", "validate_files"]

log = structlog.get_logger("crewgate.configs")


@dataclass(frozen=True)
class RefusedEdit:
    at: datetime
    errors: list[ConfigIssue]


def read_files(directory: Path) -> dict[str, str]:
    """The YAML files of a config directory, by path relative to it."""
    return {
        p.relative_to(directory).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(directory.rglob("*"))
        if p.suffix in (".yaml", ".yml") and p.is_file()
    }


def validate_files(files: dict[str, str]) -> tuple[Catalog | None, list[ConfigIssue]]:
    """Validate a config given as {relative path: text}; positions name those paths."""
    with tempfile.TemporaryDirectory(prefix="crewgate-config-") as tmp:
        base = Path(tmp)
        for name, text in files.items():
            target = (base / name).resolve()
            if not target.is_relative_to(base) or target.suffix not in (".yaml", ".yml"):
                issue = ConfigIssue(name, 1, 1, "", "file names must be relative paths ending in .yaml or .yml")
                return None, [issue]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return validate_directory(base, relative_names=True)


class ConfigManager:
    def __init__(self, directory: Path, store: Store) -> None:
        self.directory = directory
        self.store = store
        self.active: Catalog | None = None
        self.loaded_at: datetime | None = None
        self.last_refused: RefusedEdit | None = None
        self.reloads = 0
        self._by_version: dict[str, Catalog] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> Catalog:
        """Load at start-up; a broken config here stops the gateway (fail fast)."""
        catalog, issues = await asyncio.to_thread(validate_directory, self.directory)
        if catalog is None:
            raise ConfigError(issues)
        await self._activate(catalog)
        return catalog

    async def reload(self) -> bool:
        """Re-read the directory; True when a new version became active."""
        async with self._lock:
            catalog, issues = await asyncio.to_thread(validate_directory, self.directory)
            if catalog is None:
                self.last_refused = RefusedEdit(datetime.now(UTC), issues)
                log.warning("config edit refused", errors=[str(i) for i in issues])
                return False
            if self.active is not None and catalog.version == self.active.version:
                return False
            await self._activate(catalog)
            self.reloads += 1
            log.info("config reloaded", config_version=catalog.version)
            return True

    async def _activate(self, catalog: Catalog) -> None:
        files = await asyncio.to_thread(read_files, self.directory)
        await self.store.save_config(catalog.version, files)
        self._by_version[catalog.version] = catalog
        self.active = catalog
        self.loaded_at = datetime.now(UTC)

    async def catalog_for(self, version: str) -> Catalog:
        """The catalog a task was queued with: from memory, else rebuilt from its snapshot."""
        if version in self._by_version:
            return self._by_version[version]
        files = await self.store.load_config(version)
        if files is None:
            raise LookupError(f"config version {version} is not in the store")
        catalog, issues = await asyncio.to_thread(validate_files, files)
        if catalog is None:
            raise ConfigError(issues)
        self._by_version[version] = catalog
        return catalog

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every change to the directory until ``stop`` is set."""
        from watchfiles import awatch

        try:
            async for _changes in awatch(
                self.directory, stop_event=stop, debounce=300, step=100, watch_filter=_yaml_only
            ):
                await self.reload()
        except Exception:  # the watcher must never take the gateway down
            log.exception("config watcher stopped")

    def status(self) -> dict[str, Any]:
        refused = None
        if self.last_refused is not None:
            refused = {"at": self.last_refused.at, "errors": [i.as_dict() for i in self.last_refused.errors]}
        return {
            "active_version": self.active.version if self.active else None,
            "loaded_at": self.loaded_at,
            "directory": str(self.directory),
            "files": list(self.active.files) if self.active else [],
            "reloads": self.reloads,
            "last_refused": refused,
        }


def _yaml_only(_change: Any, path: str) -> bool:
    return path.endswith((".yaml", ".yml"))
