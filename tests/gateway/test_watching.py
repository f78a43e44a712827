"""Watchers reading the event log, against both databases: what they cost the database.

A second store on the same database stands in for another gateway process writing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from sqlalchemy import event

from gateway.eventlog import EventLog
from gateway.store import EventInput, SqlStore, TaskStatus, open_store
from gateway.streaming import firehose_events, task_events

WATCHERS = 50


def count_reads(store: SqlStore) -> list[str]:
    """Every SELECT … FROM the store runs from now on (advisory-lock SELECTs are not reads)."""
    reads: list[str] = []

    @event.listens_for(store.engine.sync_engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement: str, *_args) -> None:
        if re.match(r"\s*SELECT\b.*\bFROM\b", statement, re.IGNORECASE | re.DOTALL):
            reads.append(statement)

    return reads


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


def log_event(i: int) -> EventInput:
    return EventInput("agent.log", agent="log_analyst", step="analyze_logs", data={"i": i})


async def watch(log: EventLog, task_id: str, seen: list[int]) -> None:
    async for ev in task_events(log, task_id, 0):
        seen.append(ev.seq)


async def running_task_with_watchers(store: SqlStore, log: EventLog) -> tuple[str, list[list[int]], list]:
    """A running task, and WATCHERS watchers that have replayed its task.queued event."""
    record, _ = await store.create_task("triage", {}, "cfg-1")
    await store.claim_task(record.id)
    seen: list[list[int]] = [[] for _ in range(WATCHERS)]
    watchers = [asyncio.create_task(watch(log, record.id, s)) for s in seen]
    await until(lambda: all(s == [1] for s in seen), "every watcher replayed task.queued")
    return record.id, seen, watchers


async def test_idle_watchers_share_one_read_per_poll_and_see_another_process_write(
    store: SqlStore, store_url: str
) -> None:
    other = open_store(store_url)
    log = EventLog(store)
    task_id, seen, watchers = await running_task_with_watchers(store, log)
    try:
        reads = count_reads(store)
        for _ in range(5):
            assert await log.heads.poll() is False  # nothing new anywhere
        await asyncio.sleep(0.05)
        assert len(reads) == 5, reads  # one heads query per poll, not one log read per watcher

        await other.append(task_id, [log_event(1), log_event(2)])
        assert await log.heads.poll() is True
        await until(lambda: all(s == [1, 2, 3] for s in seen), "every watcher got the other process's events")
        await other.finish_task(task_id, TaskStatus.completed, EventInput("task.completed", data={}))
        await log.heads.poll()
        await asyncio.wait_for(asyncio.gather(*watchers), 10)
        assert all(s == [1, 2, 3, 4] for s in seen)
    finally:
        for w in watchers:
            w.cancel()
        await other.close()


async def test_watchers_of_local_appends_never_read_the_database(store: SqlStore) -> None:
    log = EventLog(store)
    task_id, seen, watchers = await running_task_with_watchers(store, log)
    try:
        reads = count_reads(store)
        for i in range(200):
            await log.append(task_id, [log_event(i)])
        await log.finish(task_id, TaskStatus.completed, EventInput("task.completed", data={}))
        await asyncio.wait_for(asyncio.gather(*watchers), 10)
        assert all(s == list(range(1, 203)) for s in seen)
        assert reads == []  # all 50 × 201 frames came from the in-process tail
    finally:
        for w in watchers:
            w.cancel()


async def test_a_watcher_joining_after_the_end_gets_the_log_and_stops(store: SqlStore) -> None:
    log = EventLog(store)
    record, _ = await store.create_task("triage", {}, "cfg-1")
    await store.claim_task(record.id)
    await store.append(record.id, [log_event(1)])
    await store.finish_task(record.id, TaskStatus.failed, EventInput("task.failed", data={"code": "x"}))
    replay = [ev.seq async for ev in task_events(log, record.id, 0)]
    assert replay == [1, 2, 3]
    assert [ev.seq async for ev in task_events(log, record.id, 3)] == []  # already past the end
    assert [ev.seq async for ev in task_events(log, record.id, 99)] == []


@pytest.mark.parametrize("types", [None, ["task.completed"]])
async def test_the_firehose_sees_another_process_write_and_a_filter_does_not_spin(
    store: SqlStore, store_url: str, types: list[str] | None
) -> None:
    other = open_store(store_url)
    log = EventLog(store)
    got: list[tuple[str, str]] = []

    async def firehose() -> None:
        async for ev in firehose_events(log, await store.last_event_id(), crews=None, types=types):
            got.append((ev.task_id, ev.type))

    watcher = asyncio.create_task(firehose())
    try:
        await asyncio.sleep(0.05)
        record, _ = await other.create_task("triage", {}, "cfg-1")
        await other.claim_task(record.id)
        await other.append(record.id, [log_event(1)])
        assert await log.heads.poll() is True
        if types is None:
            await until(lambda: len(got) == 2, "the firehose got the other process's two events")
            assert got == [(record.id, "task.queued"), (record.id, "agent.log")]
        await asyncio.sleep(0.05)
        reads = count_reads(store)
        for _ in range(3):
            await log.heads.poll()
        await asyncio.sleep(0.05)
        assert len(reads) == 3, reads  # the filtered-out events are not read again and again
        await other.finish_task(record.id, TaskStatus.completed, EventInput("task.completed", data={}))
        await log.heads.poll()
        await until(lambda: got[-1:] == [(record.id, "task.completed")], "the firehose got the terminal event")
    finally:
        watcher.cancel()
        await other.close()


async def test_a_filtered_firehose_of_local_appends_reads_memory_not_the_database(store: SqlStore) -> None:
    log = EventLog(store)
    tasks = []
    for crew in ("triage", "other"):
        record, _ = await store.create_task(crew, {}, "cfg-1")
        await store.claim_task(record.id)
        tasks.append(record.id)
    got: list[tuple[str, str]] = []

    async def firehose() -> None:
        async for ev in firehose_events(log, 0, crews=["triage"], types=["agent.log", "task.completed"]):
            got.append((ev.task_id, ev.type))

    watcher = asyncio.create_task(firehose())
    try:
        await asyncio.sleep(0.05)  # replays nothing: no triage event matches yet
        reads = count_reads(store)
        for i in range(100):
            for task_id in tasks:
                await log.append(task_id, [log_event(i), EventInput("tool.started", data={})])
        for task_id in tasks:
            await log.finish(task_id, TaskStatus.completed, EventInput("task.completed", data={}))
        await until(lambda: len(got) == 101, "the firehose got triage's 100 logs and its end")
        assert got == [(tasks[0], "agent.log")] * 100 + [(tasks[0], "task.completed")]
        assert len(reads) <= 1, reads  # at most the read that found where the tail starts
    finally:
        watcher.cancel()
