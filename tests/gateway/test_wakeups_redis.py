"""RedisWakeups against real Redis: two instances stand for two processes.

Every test uses its own channel (a uuid), so parallel runs on the shared Redis do not
meet. The outage tests run a private redis-server they kill and restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis

from gateway.settings import Settings
from gateway.wakeups import Signal, SignalKind, open_wakeups
from gateway.wakeups.broker import (
    MAX_SIGNALS_PER_MESSAGE,
    BadMessage,
    decode_message,
    encode_messages,
)
from gateway.wakeups.redis import RedisWakeups
from tests.support.redis import RedisServer, free_port, redis_server, redis_url  # noqa: F401 (fixtures)
from tests.support.wakeups import WAIT_S, Inbox, channel, hostile_messages, wait_until


async def started(url: str, name: str, **kwargs: float) -> tuple[RedisWakeups, Inbox]:
    wakeups = RedisWakeups(url, channel=name, **kwargs)
    inbox = Inbox()
    wakeups.subscribe(inbox)
    await wakeups.start()
    return wakeups, inbox


@contextlib.asynccontextmanager
async def two_processes(url: str, **kwargs: float) -> AsyncIterator[tuple[RedisWakeups, Inbox, RedisWakeups, Inbox]]:
    """Two instances on one fresh channel, each past its first resync; closed after."""
    name = channel()
    a, a_in = await started(url, name, **kwargs)
    b, b_in = await started(url, name, **kwargs)
    try:
        await both_resynced(a_in, b_in, 1)
        yield a, a_in, b, b_in
    finally:
        await a.close()
        await b.close()


async def both_resynced(a_in: Inbox, b_in: Inbox, times: int) -> None:
    await wait_until(
        lambda: len(a_in.of(SignalKind.resync)) >= times and len(b_in.of(SignalKind.resync)) >= times,
        f"both to resync {times} times",
    )


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[RedisWakeups, Inbox, RedisWakeups, Inbox]]:  # noqa: F811
    async with two_processes(redis_url) as both:
        yield both


# --- between two processes ---------------------------------------------------------


async def test_a_publish_reaches_every_process_with_its_fields_in_order(pair) -> None:
    a, a_in, b, b_in = pair
    assert a.origin != b.origin
    sent = [
        [Signal(SignalKind.appended, "task-1", seq=1, event_id=10)],
        [
            Signal(SignalKind.appended, "task-1", seq=2, event_id=11),
            Signal(SignalKind.appended, "task-2", seq=1, event_id=12, ended=True, origin=a.origin),
        ],
        [Signal(SignalKind.cancel, "task-3")],
        [Signal(SignalKind.answer, "task-4", origin="relayed-from-elsewhere")],
        [Signal(SignalKind.appended, "t" * 128, seq=2**63 - 1, event_id=2**63 - 1)],
    ]
    for batch in sent:
        a.publish(batch)
    # every signal carries its publisher's origin, whatever it was given: receivers skip their own echo by it
    expected = [Signal(s.kind, s.task_id, s.seq, s.event_id, s.ended, a.origin) for batch in sent for s in batch]
    assert a_in.wakeups() == expected  # the publisher's own handlers hear it at once, not through Redis
    await wait_until(lambda: len(b_in.wakeups()) >= len(expected), "b to get a's wake-ups")
    assert b_in.wakeups() == expected
    a.publish([Signal(SignalKind.cancel, "marker")])  # once b has this, a has had every echo of the above
    await wait_until(lambda: b_in.wakeups()[-1].task_id == "marker", "the marker")
    assert a_in.wakeups() == [*expected, Signal(SignalKind.cancel, "marker", origin=a.origin)]  # echoes skipped
    status = a.status()
    assert (status["kind"], status["connected"], status["dropped"], status["ignored"]) == ("redis", True, 0, 0)


async def test_a_batch_bigger_than_a_message_arrives_whole_in_order(pair) -> None:
    a, _, b, b_in = pair
    batch = [Signal(SignalKind.appended, f"{uuid.uuid4()}", seq=i, event_id=i) for i in range(5_000)]
    a.publish(batch)
    await wait_until(lambda: len(b_in.wakeups()) >= len(batch), "the 5000 signals")
    assert [s.seq for s in b_in.wakeups()] == list(range(5_000))
    batches = [batch for batch in b_in.batches if batch[0].kind != SignalKind.resync]
    assert len(batches) >= -(-5_000 // MAX_SIGNALS_PER_MESSAGE)  # chunked, none over what receivers take
    assert all(len(batch) <= MAX_SIGNALS_PER_MESSAGE for batch in batches)


async def test_a_signal_receivers_would_refuse_is_not_sent_and_its_batch_is(pair) -> None:
    a, _, b, b_in = pair
    a.publish(
        [
            Signal(SignalKind.appended, "ok-1", seq=1),
            Signal(SignalKind.appended, "bad", seq=-1),
            Signal(SignalKind.appended, "x" * 129, seq=1),
            Signal(SignalKind.appended, "ok-2", seq=2),
        ]
    )
    await wait_until(lambda: len(b_in.wakeups()) >= 2, "the two good signals")
    a.publish([Signal(SignalKind.cancel, "after")])
    await wait_until(lambda: len(b_in.wakeups()) >= 3, "the next batch")
    assert [s.task_id for s in b_in.wakeups()] == ["ok-1", "ok-2", "after"]


async def test_a_failing_handler_does_not_stop_the_others_or_the_listener(pair) -> None:
    a, _, b, b_in = pair
    calls = []

    def broken(signals: Sequence[Signal]) -> None:
        calls.append(signals)
        raise RuntimeError("a bug in a handler")

    b.subscribe(broken)
    a.publish([Signal(SignalKind.cancel, "one")])
    await wait_until(lambda: len(b_in.wakeups()) >= 1, "the first")
    a.publish([Signal(SignalKind.cancel, "two")])  # a second message, after the handler failed
    await wait_until(lambda: len(b_in.wakeups()) >= 2, "the second")
    assert [s.task_id for s in b_in.wakeups()] == ["one", "two"]
    assert len(calls) == 2


async def test_open_wakeups_uses_redis_when_a_url_is_set(redis_url: str) -> None:  # noqa: F811
    prefix = f"crewgate-test-{uuid.uuid4().hex[:12]}"
    settings = Settings(redis_url=redis_url, redis_prefix=prefix)
    one, two = open_wakeups(settings), open_wakeups(settings)
    assert isinstance(one, RedisWakeups) and isinstance(two, RedisWakeups)
    raw = Redis.from_url(redis_url)
    outsider = raw.pubsub()
    await outsider.subscribe(f"{prefix}:wakeups")  # the channel is named by the prefix
    inbox = Inbox()
    two.subscribe(inbox)
    await one.start()
    await two.start()
    try:
        await wait_until(lambda: bool(inbox.of(SignalKind.resync)) and one.status()["connected"] is True, "connected")
        one.publish([Signal(SignalKind.cancel, "by-settings")])
        await wait_until(lambda: bool(inbox.wakeups()), "the signal")
        assert inbox.wakeups() == [Signal(SignalKind.cancel, "by-settings", origin=one.origin)]
        seen = None
        while seen is None or seen["type"] != "message":  # past the subscribe confirmation
            seen = await outsider.get_message(timeout=WAIT_S)
            assert seen is not None, "nothing on the prefix's channel"
        assert decode_message(seen["data"]) == inbox.wakeups()
    finally:
        await one.close()
        await two.close()
        await outsider.aclose()
        await raw.aclose()


# --- outage and recovery -----------------------------------------------------------


async def test_an_outage_drops_wakeups_boundedly_and_recovery_resyncs(redis_server: RedisServer) -> None:  # noqa: F811
    async with two_processes(redis_server.url, max_queued=100) as (a, a_in, b, b_in):
        a.publish([Signal(SignalKind.cancel, "before")])
        await wait_until(lambda: len(b_in.wakeups()) == 1, "a wake-up before the outage")

        redis_server.kill()
        await wait_until(lambda: not a.status()["connected"] and not b.status()["connected"], "both to see the loss")
        for i in range(5_000):  # a burst: publish must neither block nor raise, nor keep it all
            a.publish([Signal(SignalKind.appended, "during", seq=i, event_id=i)])
        assert a.status()["dropped"] >= 5_000 - 100  # past the queue's 100 signals, dropped at once
        # the 100 queued fail to send and are dropped too: nothing is kept for later
        await wait_until(lambda: a.status()["dropped"] == 5_000, "the queued ones to be dropped")
        assert a.status()["connected"] is False

        redis_server.start()
        await both_resynced(a_in, b_in, 2)
        assert len(a_in.of(SignalKind.resync)) == 2  # one per subscription, no more
        assert a.status()["connected"] is True and b.status()["connected"] is True
        assert all(s.origin == b.origin for s in b_in.of(SignalKind.resync))
        a.publish([Signal(SignalKind.cancel, "after")])
        await wait_until(lambda: len(b_in.wakeups()) == 2, "a wake-up after the recovery")
        assert [s.task_id for s in b_in.wakeups()] == ["before", "after"]  # none of the outage's
        assert a.status()["dropped"] == 5_000


async def test_a_hung_redis_is_found_by_ping_and_left(redis_server: RedisServer) -> None:  # noqa: F811
    async with two_processes(redis_server.url, read_tick_s=0.2) as (a, a_in, b, b_in):
        redis_server.pause()  # the TCP connections stay up: only the silence tells
        await wait_until(lambda: not a.status()["connected"] and not b.status()["connected"], "both to give up on it")
        a.publish([Signal(SignalKind.cancel, "into-the-void")])  # must not block the loop either
        await wait_until(lambda: a.status()["dropped"] == 1, "the send to time out and drop")
        redis_server.resume()
        await both_resynced(a_in, b_in, 2)
        a.publish([Signal(SignalKind.cancel, "after")])
        await wait_until(lambda: bool(b_in.wakeups()), "a wake-up after the hang")
        assert [s.task_id for s in b_in.wakeups()] == ["after"]


async def test_close_returns_while_redis_hangs(redis_server: RedisServer) -> None:  # noqa: F811
    wakeups, inbox = await started(redis_server.url, channel(), read_tick_s=0.2)
    await wait_until(lambda: bool(inbox.of(SignalKind.resync)), "subscribed")
    redis_server.pause()
    try:
        wakeups.publish([Signal(SignalKind.cancel, "stuck-in-send")])
        await asyncio.sleep(0.1)  # the sender is now waiting on the hung server
        await asyncio.wait_for(wakeups.close(), WAIT_S)  # a guard against a hang, not a timing
        assert _ours() == []
    finally:
        redis_server.resume()


async def test_start_returns_while_redis_is_down_and_connects_when_it_comes(tmp_path: Path) -> None:
    from tests.support.redis import require_redis_server

    server = RedisServer(require_redis_server(), tmp_path)  # not started yet: nothing on its port
    name = channel()
    wakeups, inbox = await started(server.url, name)
    other, other_inbox = await started(server.url, name)
    try:
        await asyncio.sleep(0.3)  # a few failed attempts
        assert wakeups.status()["connected"] is False
        wakeups.publish([Signal(SignalKind.cancel, "while-down")])  # not sent, not raised
        await wait_until(lambda: wakeups.status()["dropped"] == 1, "the drop")
        assert [s.task_id for s in inbox.wakeups()] == ["while-down"]  # this process still hears itself
        server.start()
        await wait_until(lambda: bool(other_inbox.of(SignalKind.resync)), "the first subscription")
        await wait_until(lambda: bool(inbox.of(SignalKind.resync)), "the first subscription")
        wakeups.publish([Signal(SignalKind.cancel, "up")])
        await wait_until(lambda: bool(other_inbox.wakeups()), "a wake-up once up")
        assert [s.task_id for s in other_inbox.wakeups()] == ["up"]
    finally:
        await wakeups.close()
        await other.close()
        server.kill()


# --- hostile messages --------------------------------------------------------------


async def test_hostile_messages_are_ignored_and_the_listener_keeps_working(pair, redis_url: str) -> None:  # noqa: F811
    a, _, b, b_in = pair
    hostile = hostile_messages()
    raw = Redis.from_url(redis_url)
    try:
        for message in hostile:
            await raw.publish(b._channel, message)
    finally:
        await raw.aclose()
    a.publish([Signal(SignalKind.cancel, "still-listening")])  # published after all of them
    await wait_until(lambda: bool(b_in.wakeups()), "a good wake-up after the hostile ones")
    assert b_in.wakeups() == [Signal(SignalKind.cancel, "still-listening", origin=a.origin)]
    assert b.status()["ignored"] == len(hostile)
    assert b.status()["connected"] is True


@pytest.mark.parametrize("message", hostile_messages())
def test_decode_refuses_each_hostile_message(message: bytes) -> None:
    with pytest.raises(BadMessage):
        decode_message(message)


def test_encode_then_decode_is_the_identity() -> None:
    signals = [
        Signal(SignalKind.appended, "t-1", 3, 9, True, "me"),
        Signal(SignalKind.resync, "", 0, 0, False, "me"),
        Signal(SignalKind.answer, "t-2", origin="someone-else"),
    ]
    (message, count), *rest = list(encode_messages(signals, "me"))
    assert rest == [] and count == 3
    assert decode_message(message) == signals


def test_status_shows_the_url_without_its_password() -> None:
    wakeups = RedisWakeups("redis://user:s3cret@redis.internal:6380/2?password=other", channel="c")
    shown = wakeups.status()["url"]
    assert shown == "redis://user@redis.internal:6380/2"
    assert "s3cret" not in str(wakeups.status()) and "other" not in str(wakeups.status())


# --- life cycle --------------------------------------------------------------------


def _ours() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("wakeups-redis-") and not t.done()]


@pytest.mark.parametrize("reachable", [True, False])
async def test_close_leaves_no_task_and_no_open_connection(redis_url: str, reachable: bool) -> None:  # noqa: F811
    url = redis_url if reachable else f"redis://127.0.0.1:{free_port()}/0"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wakeups, inbox = await started(url, channel())
        assert len(_ours()) == 2
        if reachable:  # both connections open: the subscription and the sender's
            await wait_until(lambda: bool(inbox.of(SignalKind.resync)), "subscribed")
            wakeups.publish([Signal(SignalKind.cancel, "sent")])
            await wait_until(lambda: bool(inbox.wakeups()), "the sent one")
        wakeups.publish([Signal(SignalKind.cancel, "in-flight")])
        await wakeups.close()
        assert _ours() == []
        assert wakeups.status()["connected"] is False
        wakeups.publish([Signal(SignalKind.cancel, "after-close")])  # dropped, not raised
        await wakeups.close()  # twice is harmless (shutdown paths overlap)
        await wakeups.start()  # and a closed one stays closed
        assert _ours() == []
        wakeups = inbox = None  # type: ignore[assignment]  # what close() left open warns when collected
        await asyncio.sleep(0.05)  # let closed transports finish closing
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) or "nclosed" in str(w.message)]
    assert leaks == []
