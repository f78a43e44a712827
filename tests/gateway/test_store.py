"""The store against both databases it supports: SQLite (a temp file) and PostgreSQL
(fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from gateway.store import (
    EventInput,
    IdempotencyConflict,
    SqlStore,
    StoredEvent,
    TaskStatus,
    open_store,
)
from gateway.store.models import Base


def log(i: int = 0, **data) -> EventInput:
    return EventInput("agent.log", agent="log_analyst", step="analyze_logs", data={"i": i, **data})


def completed() -> EventInput:
    return EventInput("task.completed", data={"summary": "done"})


async def new_task(store: SqlStore, crew: str = "triage", **kw):
    record, created = await store.create_task(crew, {"service": "checkout"}, "cfg-1", **kw)
    assert created
    return record


def assert_utc(value: datetime, near: datetime | None = None) -> None:
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    if near is not None:
        assert abs(value - near) < timedelta(seconds=30)


# schema


async def test_migrate_fresh_database_concurrently_then_again_is_a_no_op(fresh_url: str):
    first, second = open_store(fresh_url), open_store(fresh_url)
    try:
        # two gateway replicas starting at once
        await asyncio.gather(first.migrate(), second.migrate())
        task = await new_task(first)
        await first.migrate()
        await second.migrate()
        assert (await second.get_task(task.id)).crew == "triage"
        assert [e.type for e in await second.events_for_task(task.id)] == ["task.queued"]
        async with first.engine.connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            # the models and the migrations describe the same schema: autogenerate finds nothing to do
            diff = await conn.run_sync(lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata))
        assert versions == ["0006"]
        assert diff == []
    finally:
        await first.close()
        await second.close()


async def test_sqlite_file_is_created_in_wal_mode_with_foreign_keys(tmp_path: Path):
    path = tmp_path / "deep" / "er" / "crewgate.db"
    store = open_store(f"sqlite:///{path}")  # a plain sqlite URL gets the async driver
    try:
        await store.migrate()
        async with store.engine.connect() as conn:
            pragmas = {
                p: (await conn.execute(text(f"PRAGMA {p}"))).scalar()
                for p in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
            }
        assert pragmas == {"journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000}
        assert path.is_file()
    finally:
        await store.close()
    with sqlite3.connect(path) as db:  # and an ordinary SQLite client can read it
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (0,)


def test_urls_that_cannot_be_a_store_are_refused():
    with pytest.raises(ValueError, match="file path"):
        open_store("sqlite+aiosqlite://")
    with pytest.raises(ValueError, match="unsupported"):
        open_store("mysql+aiomysql://u@h/db")


# tasks


async def test_create_task_stores_it_queued_with_its_first_event(store: SqlStore):
    before = datetime.now(UTC)
    task, created = await store.create_task("triage", {"service": "checkout", "note": "naïve ☃"}, "cfg-1")
    assert created
    again = await store.get_task(task.id)
    assert again == task
    uuid.UUID(task.id)
    assert (task.status, task.crew, task.config_version, task.last_seq) == (TaskStatus.queued, "triage", "cfg-1", 1)
    assert task.inputs == {"service": "checkout", "note": "naïve ☃"}
    assert task.started_at is None and task.finished_at is None and task.cancel_requested is False
    assert_utc(again.created_at, before)
    (queued,) = await store.events_for_task(task.id)
    assert (queued.seq, queued.type, queued.task_id, queued.crew) == (1, "task.queued", task.id, "triage")
    assert queued.data == {"crew": "triage", "inputs": task.inputs, "config_version": "cfg-1"}
    assert_utc(queued.ts, before)
    assert await store.get_task(str(uuid.uuid4())) is None


async def test_a_retry_names_the_task_it_retries(store: SqlStore):
    original = await new_task(store)
    retry = await new_task(store, retry_of=original.id)
    assert (await store.get_task(retry.id)).retry_of == original.id
    (queued,) = await store.events_for_task(retry.id)
    assert queued.data["retry_of"] == original.id


async def test_list_tasks_newest_first_with_filters_and_keyset_paging(store: SqlStore):
    made = [await new_task(store, crew="triage" if i % 2 else "review") for i in range(7)]
    await store.claim_task(made[1].id)
    await store.claim_task(made[4].id)

    listed = await store.list_tasks()
    assert [t.id for t in listed] == [t.id for t in reversed(made)]
    assert [t.num for t in listed] == sorted((t.num for t in listed), reverse=True)

    assert [t.id for t in await store.list_tasks(crew="triage")] == [made[5].id, made[3].id, made[1].id]
    assert [t.id for t in await store.list_tasks(status=TaskStatus.running)] == [made[4].id, made[1].id]
    assert [t.id for t in await store.list_tasks(status=TaskStatus.queued, crew="review")] == [
        made[6].id,
        made[2].id,
        made[0].id,
    ]

    pages, before = [], None
    while page := await store.list_tasks(limit=3, before_num=before):
        pages.append([t.id for t in page])
        before = page[-1].num
    assert pages == [[t.id for t in reversed(made)][i : i + 3] for i in (0, 3, 6)]

    assert [t.id for t in await store.tasks_with_status(TaskStatus.queued)] == [
        made[i].id for i in (0, 2, 3, 5, 6)
    ]  # oldest first


async def test_same_idempotency_key_and_body_returns_the_same_task(store: SqlStore):
    first, created = await store.create_task("triage", {"a": 1}, "cfg-1", idempotency_key="k-1", request_hash="h1")
    again, created_again = await store.create_task(
        "triage", {"a": 1}, "cfg-1", idempotency_key="k-1", request_hash="h1"
    )
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(await store.list_tasks()) == 1
    assert len(await store.events_for_task(first.id)) == 1


async def test_same_idempotency_key_with_another_body_is_a_conflict(store: SqlStore):
    first, _ = await store.create_task("triage", {"a": 1}, "cfg-1", idempotency_key="k-1", request_hash="h1")
    with pytest.raises(IdempotencyConflict) as info:
        await store.create_task("triage", {"a": 2}, "cfg-1", idempotency_key="k-1", request_hash="h2")
    assert (info.value.key, info.value.task_id) == ("k-1", first.id)
    assert [t.id for t in await store.list_tasks()] == [first.id]
    with pytest.raises(ValueError):
        await store.create_task("triage", {}, "cfg-1", idempotency_key="k" * 256)


async def test_concurrent_creates_with_one_key_make_one_task(store: SqlStore):
    results = await asyncio.gather(
        *(store.create_task("triage", {"a": 1}, "cfg-1", idempotency_key="same", request_hash="h") for _ in range(12))
    )
    assert len({task.id for task, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(await store.list_tasks()) == 1
    assert await store.last_event_id() == 1  # one task.queued, not twelve


async def test_a_task_is_claimed_once_even_when_runners_race(store: SqlStore):
    task = await new_task(store)
    claims = await asyncio.gather(*(store.claim_task(task.id) for _ in range(8)))
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].status == TaskStatus.running
    assert_utc(winners[0].started_at, datetime.now(UTC))
    assert (await store.get_task(task.id)).started_at == winners[0].started_at
    assert await store.claim_task(task.id) is None
    assert await store.claim_task(str(uuid.uuid4())) is None


async def test_finish_task_sets_the_outcome_and_its_event_once(store: SqlStore):
    task = await new_task(store)
    await store.claim_task(task.id)
    await store.append(task.id, [log(1)])
    done = await store.finish_task(
        task.id,
        TaskStatus.completed,
        completed(),
        result="# Report\nroot cause ✓",
        usage={"prompt_tokens": 10, "completion_tokens": 5},
    )
    assert (done.seq, done.type) == (3, "task.completed")
    finished = await store.get_task(task.id)
    assert finished.status == TaskStatus.completed
    assert (finished.result, finished.usage, finished.last_seq) == (
        "# Report\nroot cause ✓",
        {"prompt_tokens": 10, "completion_tokens": 5},
        3,
    )
    assert_utc(finished.finished_at, datetime.now(UTC))

    again = await store.finish_task(task.id, TaskStatus.failed, EventInput("task.failed"), error_code="x", error="y")
    assert again is None
    assert await store.get_task(task.id) == finished
    assert [e.type for e in await store.events_for_task(task.id)] == ["task.queued", "agent.log", "task.completed"]


async def test_failed_task_keeps_its_error_and_bad_finishes_are_refused(store: SqlStore):
    task = await new_task(store)
    with pytest.raises(ValueError):
        await store.finish_task(task.id, TaskStatus.running, EventInput("task.started"))
    with pytest.raises(ValueError):  # the terminal event must match the status
        await store.finish_task(task.id, TaskStatus.failed, completed())
    assert (await store.get_task(task.id)).status == TaskStatus.queued

    ev = await store.finish_task(
        task.id,
        TaskStatus.failed,
        EventInput("task.failed", data={"code": "timeout"}),
        error_code="timeout",
        error="model timed out after 900 s",
    )
    failed = await store.get_task(task.id)
    assert (failed.status, failed.error_code, failed.error, failed.result, failed.usage) == (
        TaskStatus.failed,
        "timeout",
        "model timed out after 900 s",
        None,
        None,
    )
    assert ev.data == {"code": "timeout"}
    assert await store.finish_task(str(uuid.uuid4()), TaskStatus.completed, completed()) is None


async def test_cancel_queued_running_terminal_and_unknown(store: SqlStore):
    queued = await new_task(store)
    cancelled = await store.request_cancel(queued.id, "user asked")
    assert cancelled.status == TaskStatus.cancelled
    assert_utc(cancelled.finished_at, datetime.now(UTC))
    events = await store.events_for_task(queued.id)
    assert [(e.seq, e.type, e.data) for e in events] == [
        (1, "task.queued", events[0].data),
        (2, "task.cancelled", {"reason": "user asked"}),
    ]
    with pytest.raises(ValueError):  # nothing follows a terminal event
        await store.append(queued.id, [log()])
    assert await store.claim_task(queued.id) is None  # and no runner picks it up

    running = await new_task(store)
    await store.claim_task(running.id)
    flagged = await store.request_cancel(running.id, "user asked")
    assert (flagged.status, flagged.cancel_requested, flagged.finished_at) == (TaskStatus.running, True, None)
    assert (await store.get_task(running.id)).cancel_requested is True
    assert len(await store.events_for_task(running.id)) == 1  # the runner writes task.cancelled when it stops

    done = await new_task(store)
    await store.finish_task(done.id, TaskStatus.completed, completed(), result="ok")
    before = await store.get_task(done.id)
    assert await store.request_cancel(done.id, "too late") == before
    assert await store.get_task(done.id) == before
    assert [e.type for e in await store.events_for_task(done.id)] == ["task.queued", "task.completed"]

    assert await store.request_cancel(str(uuid.uuid4()), "who?") is None


# events


async def test_append_numbers_a_batch_in_order_and_round_trips_data(store: SqlStore):
    task = await new_task(store)
    batch = [
        EventInput("step.started", agent="log_analyst", step="analyze_logs", data={"step": "analyze_logs"}),
        EventInput(
            "tool.finished",
            agent="log_analyst",
            step="analyze_logs",
            data={"tool": "grep", "output": "ERROR \u00e9\u4e2d\U0001f525 \x00 binary", "lines": [1, 2]},
        ),
        EventInput("agent.log"),
    ]
    stored = await store.append(task.id, batch)
    assert [e.seq for e in stored] == [2, 3, 4]
    assert stored[0].id < stored[1].id < stored[2].id
    assert stored == (await store.events_for_task(task.id))[1:]
    assert stored[1].data["output"] == "ERROR é中🔥 \x00 binary"
    assert (stored[2].agent, stored[2].step, stored[2].data) == (None, None, {})
    assert (await store.get_task(task.id)).last_seq == 4
    assert await store.append(task.id, []) == []


async def test_a_large_batch_keeps_seq_and_id_order(store: SqlStore):
    task = await new_task(store)
    stored = await store.append(task.id, [log(i) for i in range(1200)])
    assert [e.seq for e in stored] == list(range(2, 1202))
    assert [e.data["i"] for e in stored] == list(range(1200))
    assert [e.id for e in stored] == sorted(e.id for e in stored)
    read = await store.events_for_task(task.id, after_seq=1, limit=5000)
    assert [(e.id, e.seq, e.data) for e in read] == [(e.id, e.seq, e.data) for e in stored]


async def test_append_refuses_terminal_unknown_and_terminal_typed_events(store: SqlStore):
    task = await new_task(store)
    await store.finish_task(task.id, TaskStatus.completed, completed())
    with pytest.raises(ValueError, match="completed"):
        await store.append(task.id, [log()])
    with pytest.raises(ValueError, match="no task"):
        await store.append(str(uuid.uuid4()), [log()])
    other = await new_task(store)
    with pytest.raises(ValueError, match="finish_task"):
        await store.append(other.id, [log(), completed()])
    assert [e.type for e in await store.events_for_task(other.id)] == ["task.queued"]
    assert (await store.get_task(task.id)).last_seq == 2


async def test_appends_written_together_fail_alone(store: SqlStore):
    # appends arriving while a write is in flight are committed together; one that cannot
    # be written (ended or unknown task) must not take the others down with it
    ended, a, b = await new_task(store), await new_task(store), await new_task(store)
    await store.finish_task(ended.id, TaskStatus.completed, completed())
    calls = [
        store.append(a.id, [log(0)]),
        store.append(ended.id, [log(1)]),
        store.append(b.id, [log(2), log(3)]),
        store.append(str(uuid.uuid4()), [log(4)]),
        store.append(a.id, [log(5)]),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["list", "ValueError", "list", "ValueError", "list"]
    assert "completed" in str(results[1]) and "no task" in str(results[3])
    assert [e.data["i"] for e in await store.events_for_task(a.id, 1)] == [0, 5]
    assert [e.seq for e in await store.events_for_task(b.id)] == [1, 2, 3]
    assert (await store.get_task(ended.id)).last_seq == 2


async def test_concurrent_appenders_on_many_tasks_and_a_live_firehose_reader(store: SqlStore):
    tasks = [await new_task(store, crew=f"crew{i % 3}") for i in range(20)]
    cursor = await store.last_event_id()
    seen: list[StoredEvent] = []
    writers_done = asyncio.Event()

    async def writer(task_id: str) -> None:
        for i in range(20):
            await store.append(task_id, [log(i)])

    async def firehose() -> None:  # a dashboard polling id > cursor while the writers run
        nonlocal cursor
        while True:
            last_round = writers_done.is_set()
            page = await store.events_after(cursor, limit=100)
            seen.extend(page)
            if page:
                cursor = page[-1].id
            elif last_round:
                return
            await asyncio.sleep(0.001)

    reader = asyncio.create_task(firehose())
    await asyncio.gather(*(writer(t.id) for t in tasks))
    writers_done.set()
    await reader

    for t in tasks:
        events = await store.events_for_task(t.id, limit=1000)
        assert [e.seq for e in events] == list(range(1, 22))
        assert [e.data.get("i") for e in events[1:]] == list(range(20))
    # the reader saw every appended event exactly once, in id order: no id committed behind its cursor
    assert sorted((e.task_id, e.seq) for e in seen) == sorted((t.id, s) for t in tasks for s in range(2, 22))
    assert all(a.id < b.id for a, b in zip(seen, seen[1:], strict=False))


async def _slow_down_inserts_marked_slow(store: SqlStore, *others: SqlStore) -> None:
    """Make inserting an event whose data has "slow": seconds take that long, inside the insert."""
    if store.dialect == "sqlite":

        def add_sleep(dbapi_connection, _record) -> None:
            dbapi_connection.run_async(lambda conn: conn.create_function("test_sleep", 1, time.sleep))

        for s in (store, *others):  # every connection to the file needs the trigger's function
            event.listen(s.engine.sync_engine, "connect", add_sleep)
            await s.engine.dispose()  # new connections get it
        ddl = [
            "CREATE TRIGGER test_slow BEFORE INSERT ON events WHEN json_extract(NEW.data, '$.slow') IS NOT NULL "
            "BEGIN SELECT test_sleep(json_extract(NEW.data, '$.slow')); END"
        ]
    else:
        ddl = [
            "CREATE OR REPLACE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF (NEW.data->>'slow') IS NOT NULL THEN PERFORM pg_sleep((NEW.data->>'slow')::float); END IF; "
            "RETURN NEW; END $$",
            "CREATE TRIGGER test_slow BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_slow()",
        ]
    async with store.engine.begin() as conn:
        for statement in ddl:
            await conn.exec_driver_sql(statement)


async def test_a_slow_append_is_not_overtaken_under_a_firehose_cursor(store: SqlStore, store_url: str):
    # Two processes (a second store on the same database) append while a dashboard polls
    # id > cursor. The slow event's id is taken before the other process's later append; had
    # that one committed first, the reader would move its cursor past the slow event for good.
    slow_task, fast_task = await new_task(store), await new_task(store)
    cursor = await store.last_event_id()
    other = open_store(store_url)
    await _slow_down_inserts_marked_slow(store, other)
    try:
        slow = asyncio.create_task(store.append(slow_task.id, [log(0, slow=0.4)]))
        await asyncio.sleep(0.15)  # the slow insert is under way
        fast = asyncio.create_task(other.append(fast_task.id, [log(1)]))
        seen: list[StoredEvent] = []
        while True:
            finished = slow.done() and fast.done()
            page = await other.events_after(cursor)
            seen += page
            cursor = page[-1].id if page else cursor
            if finished:
                break
            await asyncio.sleep(0.01)
        assert sorted(e.task_id for e in seen) == sorted([slow_task.id, fast_task.id])
        assert (await slow)[0].id < (await fast)[0].id
    finally:
        await other.close()
        async with store.engine.begin() as conn:
            await conn.exec_driver_sql(
                "DROP TRIGGER IF EXISTS test_slow" + (" ON events" if store.dialect == "postgresql" else "")
            )


async def test_concurrent_appenders_on_one_task_get_gap_free_seqs(store: SqlStore):
    task = await new_task(store)

    async def writer(w: int) -> list[StoredEvent]:
        return [(await store.append(task.id, [log(i, writer=w)]))[0] for i in range(20)]

    results = await asyncio.gather(*(writer(w) for w in range(20)))
    events = await store.events_for_task(task.id, limit=1000)
    assert [e.seq for e in events] == list(range(1, 402))
    assert [e.id for e in events] == sorted(e.id for e in events)
    for w, mine in enumerate(results):  # each writer's events kept its order
        assert [e.data["i"] for e in mine] == list(range(20))
        assert [e.seq for e in mine] == sorted(e.seq for e in mine)
        assert all(e.data["writer"] == w for e in mine)
    assert (await store.get_task(task.id)).last_seq == 401


async def test_event_reads_page_and_filter(store: SqlStore):
    start = await store.last_event_id()
    a = await new_task(store, crew="triage")
    b = await new_task(store, crew="review")
    await store.append(a.id, [log(i) for i in range(5)])
    await store.append(b.id, [EventInput("tool.started", data={"tool": "grep"})])
    await store.finish_task(a.id, TaskStatus.completed, completed())

    page1 = await store.events_for_task(a.id, after_seq=0, limit=3)
    page2 = await store.events_for_task(a.id, after_seq=page1[-1].seq, limit=3)
    assert [e.seq for e in page1 + page2] == [1, 2, 3, 4, 5, 6]
    assert [e.seq for e in await store.events_for_task(a.id, after_seq=6)] == [7]
    assert await store.events_for_task(a.id, after_seq=7) == []

    everything = await store.events_after(start)
    assert len(everything) == 2 + 5 + 1 + 1
    assert await store.last_event_id() == everything[-1].id
    assert await store.events_after(everything[-1].id) == []
    paged, cursor = [], start
    while page := await store.events_after(cursor, limit=4):
        paged += page
        cursor = page[-1].id
    assert paged == everything

    assert {e.task_id for e in await store.events_after(start, crews=["review"])} == {b.id}
    assert [e.type for e in await store.events_after(start, types=["task.queued", "task.completed"])] == [
        "task.queued",
        "task.queued",
        "task.completed",
    ]
    assert [e.type for e in await store.events_after(start, crews=["triage"], types=["task.queued"])] == ["task.queued"]
    assert len(await store.events_after(start, crews=[], types=[])) == len(everything)


async def test_event_wire_form_matches_the_v1_contract(store: SqlStore):
    task = await new_task(store)
    (ev,) = await store.append(
        task.id,
        [
            EventInput(
                "tool.finished",
                agent="log_analyst",
                step="analyze_logs",
                data={"tool": "error_signatures", "duration_ms": 41},
            )
        ],
    )
    wire = ev.public()
    assert json.loads(json.dumps(wire)) == wire
    assert set(wire) == {"v", "id", "seq", "task_id", "ts", "type", "agent", "step", "data"}
    assert (wire["v"], wire["id"], wire["seq"], wire["task_id"]) == (1, str(ev.id), 2, task.id)
    assert wire["ts"].endswith("Z")
    parsed = datetime.strptime(wire["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert parsed == ev.ts
    assert (await store.events_for_task(task.id, after_seq=1))[0].public() == wire


async def test_text_with_nul_characters_is_stored_not_rejected(store: SqlStore):
    task = await new_task(store)
    await store.finish_task(
        task.id, TaskStatus.failed, EventInput("task.failed"), error_code="tool", error="bad\x00byte"
    )
    assert (await store.get_task(task.id)).error == "bad\ufffdbyte"


async def test_many_single_appends_keep_one_contiguous_log(store: SqlStore):
    task = await new_task(store)
    for i in range(200):
        await store.append(task.id, [log(i)])
    events = await store.events_for_task(task.id, limit=1000)
    assert [e.seq for e in events] == list(range(1, 202))
    assert (await store.get_task(task.id)).last_seq == 201


# config snapshots


async def test_config_snapshots_are_saved_once_and_loaded(store: SqlStore):
    files = {"crews/triage.yaml": "name: triage\n# ünïcode\n", "agents/lead.yaml": "role: lead\n"}
    await store.save_config("v1", files)
    await store.save_config("v1", {"crews/triage.yaml": "changed"})  # an existing version never changes
    await store.save_config("v2", {"crews/triage.yaml": "changed"})
    assert await store.load_config("v1") == files
    assert await store.load_config("v2") == {"crews/triage.yaml": "changed"}
    assert await store.load_config("nope") is None
