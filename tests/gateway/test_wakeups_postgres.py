"""PostgresWakeups against real PostgreSQL: two instances stand for two processes.

Each test uses its own channel (a uuid) on the session's test database. A lost
connection is made by the server itself: ``pg_terminate_backend`` on the LISTEN session.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import warnings
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.settings import Settings
from gateway.wakeups import Signal, SignalKind, open_wakeups
from gateway.wakeups.broker import MAX_SIGNALS_PER_MESSAGE
from gateway.wakeups.local import LocalWakeups
from gateway.wakeups.postgres import MAX_PAYLOAD_BYTES, PostgresWakeups, asyncpg_dsn
from tests.support.redis import free_port
from tests.support.wakeups import Inbox, channel, hostile_messages, wait_until


@pytest.fixture
def dsn(pg_url: str) -> str:
    return asyncpg_dsn(pg_url)


async def started(dsn: str, name: str, **kwargs: float) -> tuple[PostgresWakeups, Inbox]:
    wakeups = PostgresWakeups(dsn, channel=name, **kwargs)  # type: ignore[arg-type]
    inbox = Inbox()
    wakeups.subscribe(inbox)
    await wakeups.start()
    return wakeups, inbox


@contextlib.asynccontextmanager
async def two_processes(dsn: str) -> AsyncIterator[tuple[PostgresWakeups, Inbox, PostgresWakeups, Inbox]]:
    name = channel()
    a, a_in = await started(dsn, name)
    b, b_in = await started(dsn, name)
    try:
        await wait_until(lambda: bool(a_in.of(SignalKind.resync)) and bool(b_in.of(SignalKind.resync)), "listening")
        yield a, a_in, b, b_in
    finally:
        await a.close()
        await b.close()


async def notify_raw(dsn: str, name: str, payloads: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for payload in payloads:
            await conn.execute("SELECT pg_notify($1, $2)", name, payload)
    finally:
        await conn.close()


async def test_a_notify_reaches_every_process_with_its_fields_in_order(dsn: str) -> None:
    async with two_processes(dsn) as (a, a_in, b, b_in):
        sent = [
            Signal(SignalKind.appended, "task-1", seq=1, event_id=10),
            Signal(SignalKind.appended, "task-1", seq=2, event_id=11, ended=True),
            Signal(SignalKind.cancel, "task-2", origin="relayed"),
            Signal(SignalKind.answer, "task-3"),
        ]
        for signal in sent:
            a.publish([signal])
        big = [Signal(SignalKind.appended, f"task-{i:036d}", seq=i, event_id=i) for i in range(3_000)]
        a.publish(big)  # far over one NOTIFY payload: chunked
        expected = [Signal(s.kind, s.task_id, s.seq, s.event_id, s.ended, a.origin) for s in [*sent, *big]]
        assert a_in.wakeups() == expected  # at once, in this process
        await wait_until(lambda: len(b_in.wakeups()) >= len(expected), "b to get a's wake-ups")
        assert b_in.wakeups() == expected
        assert all(len(batch) <= MAX_SIGNALS_PER_MESSAGE for batch in b_in.batches)
        assert a.status()["kind"] == "postgres" and a.status()["dropped"] == 0


async def test_a_terminated_session_is_replaced_and_resyncs(dsn: str) -> None:
    async with two_processes(dsn) as (a, a_in, b, b_in):
        admin = await asyncpg.connect(dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                f"crewgate-wakeups-{b.origin}"[:63],
            )
        finally:
            await admin.close()
        assert killed >= 1
        await wait_until(lambda: len(b_in.of(SignalKind.resync)) >= 2, "b to listen again and resync")
        assert b.status()["connected"] is True
        a.publish([Signal(SignalKind.cancel, "after")])
        await wait_until(lambda: bool(b_in.wakeups()), "a wake-up after the reconnect")
        assert [s.task_id for s in b_in.wakeups()] == ["after"]
        assert len(a_in.of(SignalKind.resync)) == 1  # the other process never noticed


async def test_hostile_payloads_are_ignored_and_the_listener_keeps_working(dsn: str) -> None:
    sendable = []  # NOTIFY takes text under 8000 bytes, without NUL
    for message in hostile_messages():
        with contextlib.suppress(UnicodeDecodeError):
            text = message.decode()
            if "\x00" not in text and len(message) < 8000:
                sendable.append(text)
    good = json.dumps({"v": 1, "o": "evil", "s": [["a", "t", 1, 1, False]]})
    sendable.append(good + " " * (MAX_PAYLOAD_BYTES + 1 - len(good)))  # valid, but over our cap
    async with two_processes(dsn) as (a, _, b, b_in):
        await notify_raw(dsn, b._channel, sendable)
        a.publish([Signal(SignalKind.cancel, "still-listening")])
        await wait_until(lambda: bool(b_in.wakeups()), "a good wake-up after the hostile ones")
        assert b_in.wakeups() == [Signal(SignalKind.cancel, "still-listening", origin=a.origin)]
        assert b.status()["ignored"] == len(sendable)
        assert len(sendable) > 20


async def test_start_returns_while_postgres_is_down_and_close_is_clean() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wakeups, inbox = await started(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", channel())
        await asyncio.sleep(0.3)
        assert wakeups.status()["connected"] is False
        wakeups.publish([Signal(SignalKind.cancel, "while-down")])  # not sent, not raised
        await wait_until(lambda: wakeups.status()["dropped"] == 1, "the drop")
        await wakeups.close()
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("wakeups-postgres-")] == []
        assert [s.task_id for s in inbox.signals] == ["while-down"]  # heard here, sent nowhere
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_close_after_use_leaves_no_task_and_no_open_connection(dsn: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with two_processes(dsn) as (a, _, _b, b_in):  # both connections of each opened
            a.publish([Signal(SignalKind.cancel, "x")])
            await wait_until(lambda: bool(b_in.wakeups()), "delivery")
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("wakeups-postgres-")] == []
        a = _b = b_in = None  # type: ignore[assignment]  # what close() left open warns when collected
        await asyncio.sleep(0.05)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_open_wakeups_chooses_by_settings(pg_url: str, tmp_path) -> None:
    prefix = f"test{channel()[14:26]}"
    chosen = open_wakeups(Settings(wakeups="postgres", database_url=pg_url, redis_prefix=prefix))
    assert isinstance(chosen, PostgresWakeups)
    inbox = Inbox()
    chosen.subscribe(inbox)
    await chosen.start()
    try:
        await wait_until(lambda: bool(inbox.of(SignalKind.resync)), "listening")
        chosen.publish([Signal(SignalKind.cancel, "by-settings")])
        await wait_until(lambda: bool(inbox.wakeups()), "own delivery")
        assert chosen._channel == f"{prefix}:wakeups"
    finally:
        await chosen.close()
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    with pytest.raises(ValueError, match="PostgreSQL"):
        open_wakeups(Settings(wakeups="postgres", database_url=sqlite))
    with pytest.raises(ValueError, match="REDIS_URL"):
        open_wakeups(Settings(wakeups="redis", redis_url=""))
    assert isinstance(open_wakeups(Settings(wakeups="auto", redis_url="", database_url=pg_url)), LocalWakeups)
    assert isinstance(open_wakeups(Settings(wakeups="local", redis_url="redis://x")), LocalWakeups)
    assert len(chosen._channel) <= 63
    long = open_wakeups(Settings(wakeups="postgres", database_url=pg_url, redis_prefix="p" * 64))
    assert isinstance(long, PostgresWakeups) and long._channel.endswith(":wakeups") and len(long._channel) == 63
