"""Leases in the store, on SQLite and PostgreSQL: who runs a task, and what a run that lost
its task can still write (nothing).

A lease "runs out" here because it was taken with ``lease_s`` of a few milliseconds, or
handed back with ``release_lease``: the store compares its own clock with the expiry.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import EventInput, LeaseLost, SqlStore, TaskStatus
from tests.gateway.test_store import completed, log, new_task

SHORT = 0.001  # a lease that has run out by the next statement


async def lapsed(store: SqlStore, attempt: int = 1, owner: str = "runner-a"):
    """A task whose attempt ``attempt`` was claimed by ``owner`` and whose lease ran out."""
    task = await new_task(store)
    record = await store.claim_task(task.id, owner=owner, lease_s=SHORT)
    for n in range(2, attempt + 1):
        await asyncio.sleep(0.01)
        record = await store.claim_task(task.id, owner=owner, lease_s=SHORT, attempt=n)
    assert record is not None
    await asyncio.sleep(0.01)
    return record


async def test_the_first_claim_takes_a_lease_and_a_live_lease_keeps_others_out(store: SqlStore):
    task = await new_task(store)
    record = await store.claim_task(task.id, owner="runner-a", lease_s=60)
    assert record is not None
    assert (record.status, record.attempt, record.lease_owner) == (TaskStatus.running, 1, "runner-a")
    assert record.lease_expires_at is not None and record.lease_expires_at > record.started_at

    assert await store.claim_task(task.id, owner="runner-b", lease_s=60) is None  # attempt 1 again
    assert await store.claim_task(task.id, owner="runner-b", lease_s=60, attempt=2) is None  # lease is live
    assert await store.expired_leases() == []
    assert [e.type for e in await store.events_for_task(task.id)] == ["task.queued"]


async def test_a_lapsed_attempt_is_taken_over_once_with_task_restarted_and_seq_going_on(store: SqlStore):
    record = await lapsed(store)
    await store.append(record.id, [log(1)], attempt=1)  # the old run wrote before it died
    assert [t.id for t in await store.expired_leases()] == [record.id]

    claims = await asyncio.gather(
        *(store.claim_task(record.id, owner=f"runner-{i}", lease_s=60, attempt=2) for i in range(8))
    )
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].attempt == 2 and winners[0].status is TaskStatus.running

    events = await store.events_for_task(record.id)
    assert [(e.seq, e.type) for e in events] == [(1, "task.queued"), (2, "agent.log"), (3, "task.restarted")]
    assert events[-1].data["attempt"] == 2
    assert events[-1].data["previous_owner"] == "runner-a"
    assert await store.expired_leases() == []


async def test_a_run_that_lost_its_task_can_write_nothing(store: SqlStore):
    record = await lapsed(store)
    assert await store.claim_task(record.id, owner="runner-b", lease_s=60, attempt=2) is not None

    with pytest.raises(LeaseLost):
        await store.append(record.id, [log(1)], attempt=1)
    with pytest.raises(LeaseLost):
        await store.finish_task(record.id, TaskStatus.completed, completed(), result="stale", attempt=1)
    assert not await store.renew_lease(record.id, 1, "runner-a", 60)
    assert not await store.release_lease(record.id, 1)

    before = await store.events_for_task(record.id)
    assert [e.type for e in before] == ["task.queued", "task.restarted"]
    await store.append(record.id, [log(2)], attempt=2)
    done = await store.finish_task(record.id, TaskStatus.completed, completed(), result="# fresh", attempt=2)
    assert done is not None and done.seq == 4
    final = await store.get_task(record.id)
    assert (final.status, final.result, final.lease_expires_at) == (TaskStatus.completed, "# fresh", None)


async def test_appends_of_two_tasks_in_one_group_commit_are_fenced_separately(store: SqlStore):
    stale = await lapsed(store)
    assert await store.claim_task(stale.id, owner="runner-b", lease_s=60, attempt=2) is not None
    live = await new_task(store)
    assert await store.claim_task(live.id, owner="runner-c", lease_s=60) is not None

    results = await asyncio.gather(
        store.append(stale.id, [log(1)], attempt=1),
        store.append(live.id, [log(1)], attempt=1),
        store.append(live.id, [log(2)]),  # no fence: an append from outside any run
        return_exceptions=True,
    )
    assert isinstance(results[0], LeaseLost)
    assert [e.seq for e in results[1]] == [2] and [e.seq for e in results[2]] == [3]
    assert [e.type for e in await store.events_for_task(stale.id)] == ["task.queued", "task.restarted"]


async def test_renewing_keeps_a_lease_and_releasing_ends_it_at_once(store: SqlStore):
    task = await new_task(store)
    await store.claim_task(task.id, owner="runner-a", lease_s=SHORT)
    assert await store.renew_lease(task.id, 1, "runner-a", 60)
    await asyncio.sleep(0.01)
    assert await store.expired_leases() == []  # renewed past the original expiry

    assert await store.release_lease(task.id, 1)  # handed back by a process that is stopping
    await asyncio.sleep(0.01)
    assert [t.id for t in await store.expired_leases()] == [task.id]
    assert await store.claim_task(task.id, owner="runner-b", lease_s=60, attempt=2) is not None


async def test_ending_a_lapsed_task_needs_its_attempt_and_a_lapsed_lease(store: SqlStore):
    record = await lapsed(store, attempt=2)
    failed = EventInput("task.failed", data={"code": "interrupted", "error": "gone"})

    assert await store.end_expired(record.id, 1, failed, error_code="interrupted", error="gone") is None
    assert await store.renew_lease(record.id, 2, "runner-a", 60)  # alive again: not to be touched
    assert await store.end_expired(record.id, 2, failed, error_code="interrupted", error="gone") is None
    await store.release_lease(record.id, 2)
    await asyncio.sleep(0.01)

    ended = await store.end_expired(record.id, 2, failed, error_code="interrupted", error="gone")
    assert ended is not None and ended.type == "task.failed"
    final = await store.get_task(record.id)
    assert (final.status, final.error_code, final.attempt) == (TaskStatus.failed, "interrupted", 2)
    assert await store.end_expired(record.id, 2, failed, error_code="interrupted", error="gone") is None


async def test_queued_tasks_are_offered_again_until_a_broker_took_them_recently(store: SqlStore):
    sent = await new_task(store)
    unsent = await new_task(store)
    running = await new_task(store)
    await store.claim_task(running.id, owner="runner-a", lease_s=60)
    await store.mark_dispatched(sent.id)
    await asyncio.sleep(0.01)

    assert [t.id for t in await store.undispatched(60)] == []  # all recent
    assert [t.id for t in await store.undispatched(0.005)] == [sent.id, unsent.id]
    await store.mark_dispatched(sent.id)  # sent again just now
    assert [t.id for t in await store.undispatched(1)] == []


async def test_a_cancel_of_a_running_task_keeps_its_reason(store: SqlStore):
    task = await new_task(store)
    await store.claim_task(task.id, owner="runner-a", lease_s=60)
    record = await store.request_cancel(task.id, "rolled back; no longer needed")
    assert record.cancel_requested and record.cancel_reason == "rolled back; no longer needed"
    assert (await store.get_task(task.id)).cancel_reason == "rolled back; no longer needed"
