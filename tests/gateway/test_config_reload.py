"""Hot reload against real files and a real SQLite store: status tells the truth, snapshots match
their version, and the watcher survives any file."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from agents.catalog import Catalog
from agents.errors import ConfigIssue
from gateway.configs import ConfigManager
from gateway.store import Store, open_store

AGENTS = "agents:\n  writer:\n    role: Writer\n    goal: Write\n    backstory: Clear\n"
CREWS = (
    "crews:\n  note:\n    steps:\n      - name: write\n        agent: writer\n"
    "        description: Write a note\n        expected_output: A note\n"
)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = open_store(f"sqlite+aiosqlite:///{tmp_path / 'crewgate.db'}")
    await store.migrate()
    yield store
    await store.close()


def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "configs"
    directory.mkdir()
    (directory / "agents.yaml").write_text(AGENTS)
    (directory / "crews.yaml").write_text(CREWS)
    return directory


async def until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if value := condition():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def first_edit_applied(manager: ConfigManager, directory: Path) -> None:
    """Edit until the watcher applies one: it is set up and watching from then on."""
    for attempt in range(60):
        (directory / "agents.yaml").write_text(AGENTS.replace("Clear", f"Watched {attempt}"))
        try:
            await until(lambda: manager.reloads >= 1, "an edit", timeout=0.5)
            return
        except AssertionError:
            continue
    raise AssertionError("timed out waiting for the watcher to apply a first edit")


async def test_status_says_the_directory_is_valid_again_after_a_refused_edit_is_reverted(
    tmp_path: Path, sqlite_store: Store
) -> None:
    directory = config_dir(tmp_path)
    manager = ConfigManager(directory, sqlite_store)
    v1 = (await manager.load()).version

    (directory / "agents.yaml").write_text(AGENTS.replace("    goal: Write\n", "    goal: [Write\n"))
    assert await manager.reload() is False
    broken = manager.status()
    assert broken["current"]["state"] == "invalid"
    [error] = broken["current"]["errors"]
    assert error["file"] == "agents.yaml" and error["line"] == 4
    assert broken["active"]["version"] == v1 and broken["active_version"] == v1
    assert broken["last_refused"]["errors"][0]["file"] == "agents.yaml"

    (directory / "agents.yaml").write_text(AGENTS)  # reverted
    assert await manager.reload() is False  # same version as the active one: nothing to load
    fixed = manager.status()
    assert fixed["current"]["state"] == "valid" and fixed["current"]["errors"] == []
    assert fixed["current"]["version"] == v1
    assert fixed["last_refused"] is None  # the refusal no longer stands
    assert [h["outcome"] for h in fixed["history"]] == ["restored", "refused", "loaded"]
    assert fixed["history"][1]["errors"][0]["line"] == 4
    assert fixed["history"][2]["version"] == v1

    (directory / "agents.yaml").write_text(AGENTS.replace("Clear", "Very clear"))
    assert await manager.reload() is True
    later = manager.status()
    assert later["active"]["version"] == later["current"]["version"] != v1
    assert [h["outcome"] for h in later["history"]][:2] == ["loaded", "restored"]

    text = json.dumps(later, default=str)
    assert str(tmp_path) not in text  # no server paths
    assert later["directory"] == "configs"
    assert later["active"]["files"] == ["agents.yaml", "crews.yaml"]


async def test_history_is_bounded(tmp_path: Path, sqlite_store: Store) -> None:
    directory = config_dir(tmp_path)
    manager = ConfigManager(directory, sqlite_store)
    await manager.load()
    for i in range(60):
        (directory / "agents.yaml").write_text(AGENTS.replace("Clear", f"Clear {i}"))
        await manager.reload()
    status = manager.status()
    assert len(status["history"]) == 50
    assert status["reloads"] == 60


async def test_the_snapshot_stored_under_a_version_is_the_content_that_was_validated(
    tmp_path: Path, sqlite_store: Store
) -> None:
    from agents.catalog import config_version, validate_texts

    directory = config_dir(tmp_path)
    agents = directory / "agents.yaml"
    edited = AGENTS.replace("role: Writer", "role: Edited after validation")

    def validate_then_edit(files: Mapping[str, bytes]) -> tuple[Catalog | None, list[ConfigIssue]]:
        result = validate_texts(files)
        agents.write_text(edited)  # an editor saves while the gateway is between steps
        return result

    manager = ConfigManager(directory, sqlite_store, validator=validate_then_edit)
    catalog = await manager.load()
    assert catalog.agents["writer"].role == "Writer"
    stored = await sqlite_store.load_config(catalog.version)
    assert stored is not None
    assert stored["agents.yaml"] == AGENTS  # what was validated, not what is on disk now
    assert config_version({k: v.encode() for k, v in stored.items()}) == catalog.version

    fresh = ConfigManager(directory, sqlite_store)  # e.g. another worker, after a restart
    rebuilt = await fresh.catalog_for(catalog.version)
    assert rebuilt.agents["writer"].role == "Writer"


async def test_the_watcher_survives_hostile_files_and_applies_the_next_valid_edit(
    tmp_path: Path, sqlite_store: Store
) -> None:
    directory = config_dir(tmp_path)
    manager = ConfigManager(directory, sqlite_store)
    v1 = (await manager.load()).version
    stop = asyncio.Event()
    watcher = asyncio.create_task(manager.watch(stop))
    try:
        await first_edit_applied(manager, directory)
        v1 = manager.active.version if manager.active else v1

        def refused_with(file: str, needle: str) -> Callable[[], bool]:
            def check() -> bool:
                current = manager.status().get("current") or {}
                return any(e["file"] == file and needle in e["message"] for e in current.get("errors", []))

            return check

        (directory / "nul.yaml").write_bytes(b"agents:\n  n:\n    role: R\x00\n")
        await until(refused_with("nul.yaml", "U+0000"), "the NUL file to be refused")
        (directory / "nul.yaml").unlink()

        (directory / "deep.yaml").write_text("agents:\n  d:\n    tools: " + "[" * 1000 + "]" * 1000 + "\n")
        await until(refused_with("deep.yaml", "nesting is deeper than 64"), "the deep file to be refused")
        (directory / "deep.yaml").unlink()

        (directory / "env.yaml").symlink_to("/proc/self/environ")
        await until(refused_with("env.yaml", "symlink points outside"), "the symlink to be refused")
        (directory / "env.yaml").unlink()

        (directory / "agents.yaml").write_text(AGENTS.replace("Clear", "Clearer"))
        await until(lambda: manager.active is not None and manager.active.version != v1, "the valid edit")
        assert manager.active is not None and manager.active.agents["writer"].backstory == "Clearer"
        assert manager.watching and manager.status()["current"]["state"] == "valid"
        outcomes = [h["outcome"] for h in manager.status()["history"]]
        assert outcomes[0] == "loaded" and outcomes.count("refused") >= 3
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 30)


async def test_the_watcher_restarts_when_the_directory_comes_back(tmp_path: Path, sqlite_store: Store) -> None:
    directory = config_dir(tmp_path)
    manager = ConfigManager(directory, sqlite_store)
    v1 = (await manager.load()).version
    aside = tmp_path / "aside"
    directory.rename(aside)  # e.g. a config volume that is remounted
    stop = asyncio.Event()
    watcher = asyncio.create_task(manager.watch(stop))
    try:
        await until(
            lambda: manager.status().get("watcher", {}).get("state") == "restarting",
            "the status to say the watcher is down",
        )
        assert not manager.reload_healthy
        assert manager.status()["watcher"]["watching"] is False

        (aside / "agents.yaml").write_text(AGENTS.replace("Clear", "Back again"))
        shutil.move(aside, directory)
        await until(lambda: manager.active is not None and manager.active.version != v1, "the edit made meanwhile")
        await until(lambda: manager.watching, "the watcher to be back")
        assert manager.reload_healthy and manager.status()["watcher"]["restarts"] >= 1

        (directory / "agents.yaml").write_text(AGENTS.replace("Clear", "Watched again"))
        await until(
            lambda: manager.active is not None and manager.active.agents["writer"].backstory == "Watched again",
            "an edit after the restart",
        )
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 30)
