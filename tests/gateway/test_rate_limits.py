"""Rate limits per key and the cap on open WebSockets, on real gateway processes: counted in
memory by one gateway, in Redis across two replicas, and through a Redis outage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gateway.ratelimits import SocketSlots
from gateway.settings import Settings
from tests.support.gateway import Gateway, wait_for, write_configs
from tests.support.inprocess import eventually
from tests.support.redis import RedisServer, redis_server, redis_url
from tests.support.scaleout import redis_prefix

__all__ = ["redis_prefix", "redis_server", "redis_url"]  # fixtures, imported to be found

ALPHA = {"Authorization": "Bearer alpha-key"}
BETA = {"Authorization": "Bearer beta-key"}
HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


def _inputs(incident: dict) -> dict[str, str]:
    d = incident["dir"]
    return {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo"), "runbooks": str(d / "runbooks")}


def _submit(gw: Gateway, incident: dict, headers: dict[str, str]) -> httpx.Response:
    with gw.client() as c:
        return c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": _inputs(incident)}, headers=headers)


def _gateway(work: Path, incident: dict, **settings: object) -> Gateway:
    # run_tasks=false: the gateway accepts and queues, and runs nothing; only the counting matters here
    return Gateway(
        work,
        config_dir=write_configs(work / "configs"),
        roots=incident["root"],
        api_keys="alpha-key,beta-key",
        run_tasks="false",
        **settings,
    )


def _socket(gw: Gateway, token: str = "alpha-key") -> ClientConnection:
    return connect(f"{gw.ws_url}/v1/events?after=-1&token={token}", open_timeout=10)


def _refused(ws: ClientConnection, wait_s: float = 1) -> bool:
    """True when the server closed the socket within ``wait_s`` (its close code and reason are
    then on ``ws``); False when it stays open, quietly waiting for events. Tests expecting a
    refusal wait longer: the close is then awaited, not guessed."""
    try:
        ws.recv(timeout=wait_s)
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False
    raise AssertionError("a firehose from now on sent a frame, though nothing happened")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    gw = _gateway(
        tmp_path_factory.mktemp("limits"),
        incident,
        rate_limit_submit="3/minute",
        rate_limit_read="1000/minute",
        max_sockets_per_key=2,
    ).start()
    yield gw
    gw.stop()


def test_the_fourth_submit_in_a_minute_is_refused_with_429(limited: Gateway, incident: dict) -> None:
    remaining = []
    for _ in range(3):
        accepted = _submit(limited, incident, ALPHA)
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["ratelimit-limit"] == "3"
        remaining.append(int(accepted.headers["ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    refused = _submit(limited, incident, ALPHA)
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert "submit rate limit" in error["message"]
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= 60
    assert refused.headers["x-ratelimit-limit"] == "3"

    with limited.client() as c:
        # reads have their own budget
        listed = c.get("/v1/tasks", headers=ALPHA)
        assert listed.status_code == 200
        assert listed.headers["ratelimit-limit"] == "1000"
        assert int(listed.headers["ratelimit-remaining"]) < 1000
        missing = c.get("/v1/tasks/no-such-task", headers=ALPHA)
        assert missing.status_code == 404 and all(h in missing.headers for h in HEADERS)  # errors carry them too
        # a request that does not pass the token check is not counted, and health checks are not limited
        assert c.get("/v1/tasks").status_code == 401
        health = c.get("/healthz")
        assert health.status_code == 200 and "ratelimit-limit" not in health.headers
    # another key has its own budget
    other = _submit(limited, incident, BETA)
    assert other.status_code == 202
    assert other.headers["ratelimit-remaining"] == "2"


def test_a_spent_read_budget_refuses_reads_but_not_submits(tmp_path: Path, incident: dict) -> None:
    gw = _gateway(tmp_path, incident, rate_limit_submit="10/minute", rate_limit_read="2/minute").start()
    try:
        with gw.client() as c:
            codes = [c.get("/v1/crews", headers=ALPHA).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
            assert "read rate limit" in c.get("/v1/tasks", headers=ALPHA).json()["error"]["message"]
        assert _submit(gw, incident, ALPHA).status_code == 202
        with _socket(gw) as ws:  # opening a WebSocket is a read
            assert _refused(ws, wait_s=10)
            assert ws.close_code == 1008 and ws.close_reason is not None and "read rate limit" in ws.close_reason
    finally:
        gw.stop()


def test_the_socket_over_the_cap_is_closed_1008(limited: Gateway) -> None:
    with _socket(limited) as first, _socket(limited) as second:
        assert not _refused(first) and not _refused(second)
        with _socket(limited) as third:
            assert _refused(third, wait_s=10)
            assert third.close_code == 1008
            assert third.close_reason == "too many open WebSockets: at most 2 per key"
        with _socket(limited, token="beta-key") as others:  # another key has its own cap
            assert not _refused(others)
        first.close()

        def accepted_again() -> bool:
            with _socket(limited) as again:
                return not _refused(again)

        wait_for(accepted_again, timeout=30, interval=0.2)  # once the server has seen the close


def test_two_replicas_share_one_budget_in_redis(
    tmp_path: Path, incident: dict, redis_url: str, redis_prefix: str
) -> None:
    settings = {"redis_url": redis_url, "redis_prefix": redis_prefix, "rate_limit_submit": "5/minute"}
    replicas = [_gateway(tmp_path / f"r{i}", incident, max_sockets_per_key=2, **settings).start() for i in (1, 2)]
    try:
        codes = [_submit(replicas[i % 2], incident, ALPHA).status_code for i in range(10)]
        assert codes == [202] * 5 + [429] * 5  # both replicas accepted some, and together only five
        assert _submit(replicas[0], incident, BETA).status_code == 202
        client = redis.Redis.from_url(redis_url)
        try:
            assert list(client.scan_iter(match=f"{redis_prefix}:ratelimit*"))  # counted under our prefix
        finally:
            client.close()

        with _socket(replicas[0]) as one, _socket(replicas[1]) as two:
            assert not _refused(one) and not _refused(two)
            with _socket(replicas[0]) as third:
                assert _refused(third, wait_s=10)
                assert third.close_code == 1008
    finally:
        for gw in replicas:
            gw.stop()


def _log_events(gw: Gateway) -> list[str]:
    events = []
    for line in gw.logs().splitlines():
        try:
            events.append(str(json.loads(line).get("event", "")))
        except (ValueError, AttributeError):
            continue
    return events


def test_a_redis_outage_falls_back_to_memory_and_recovers(
    tmp_path: Path, incident: dict, redis_server: RedisServer
) -> None:
    gw = _gateway(
        tmp_path / "gw",
        incident,
        redis_url=redis_server.url,
        redis_prefix="outage",
        rate_limit_submit="50/minute",
        rate_limit_read="1000/minute",
    ).start()
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    try:
        with gw.client() as c:
            assert c.get("/v1/tasks", headers=ALPHA).status_code == 200
            assert list(client.scan_iter(match="outage:ratelimit*"))
            redis_server.kill()
            codes = [c.get("/v1/tasks", headers=ALPHA).status_code for _ in range(20)]
            assert codes == [200] * 20
            served = c.get("/v1/tasks", headers=ALPHA)
            assert served.status_code == 200 and "ratelimit-remaining" in served.headers
            assert _submit(gw, incident, ALPHA).status_code == 202
            fell_back = [e for e in _log_events(gw) if e.startswith("redis unavailable; rate limits")]
            assert len(fell_back) == 1  # once per outage, not once per request

            redis_server.start()  # empty: whatever it counts now was counted after the restart

            def counted_in_redis_again() -> bool:
                assert c.get("/v1/tasks", headers=ALPHA).status_code == 200
                return bool(list(client.scan_iter(match="outage:ratelimit*")))

            wait_for(counted_in_redis_again, timeout=30, interval=0.2)
        assert any(e.startswith("redis is back; rate limits") for e in _log_events(gw))
    finally:
        client.close()
        gw.stop()


def _slots(redis_url: str, prefix: str, ttl_s: float) -> SocketSlots:
    settings = Settings(redis_url=redis_url, redis_prefix=prefix, max_sockets_per_key=2)
    return SocketSlots(settings, ttl_s=ttl_s)


async def test_a_crashed_replicas_sockets_stop_counting(redis_url: str, redis_prefix: str) -> None:
    crashed, survivor = _slots(redis_url, redis_prefix, ttl_s=1), _slots(redis_url, redis_prefix, ttl_s=1)
    try:
        assert await crashed.acquire("key:k1") is not None
        assert await crashed.acquire("key:k1") is not None
        assert await survivor.acquire("key:k1") is None  # two open on the other replica
        # the first replica dies without releasing its slots, and renews them no more

        async def free_again() -> bool:
            slot = await survivor.acquire("key:k1")
            return slot is not None

        await eventually(free_again, timeout=30, interval=0.2)
    finally:
        await crashed.close()
        await survivor.close()


async def test_renewing_puts_a_replicas_sockets_back_after_redis_lost_them(redis_url: str, redis_prefix: str) -> None:
    one, other = _slots(redis_url, redis_prefix, ttl_s=60), _slots(redis_url, redis_prefix, ttl_s=60)
    try:
        held = [await one.acquire("key:k2"), await one.acquire("key:k2")]
        assert all(held)
        client = redis.Redis.from_url(redis_url)
        try:
            client.delete(f"{redis_prefix}:ws:key:k2")  # as a Redis restart without persistence would
        finally:
            client.close()
        await one.renew()
        assert await other.acquire("key:k2") is None
        for slot in held:
            assert slot is not None
            await slot.release()
        assert await other.acquire("key:k2") is not None
    finally:
        await one.close()
        await other.close()
