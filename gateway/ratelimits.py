"""Rate limits per caller, and a cap on each caller's open WebSockets.

Counting is done by the ``limits`` library (moving window by default): in this process's
memory, or in Redis when ``CREWGATE_REDIS_URL`` is set, so that every replica draws on the
same budget. Redis failing must not take the API down: each counter then falls back to
this process's memory (logged once per outage) and tries Redis again a few seconds later.

Open WebSockets are counted per process, and across replicas in one sorted set per caller
(``<prefix>:ws:<identity>``) whose members are this process's sockets, scored with an
expiry time that a heartbeat pushes forward: a crashed replica's sockets drop out of the
count once their expiry passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import structlog
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import RedisError

from gateway.settings import Settings

__all__ = ["Limits", "RateLimits", "SocketSlot", "SocketSlots", "Verdict", "parse_limit"]

log = structlog.get_logger("crewgate.ratelimits")

Kind = Literal["submit", "read"]
T = TypeVar("T")

REDIS_TIMEOUT_S = 0.5  # a Redis call slower than this counts as an outage for the request at hand
REDIS_RETRY_S = 5.0  # after a failure, Redis is left alone this long (the memory fallback counts)
SOCKET_TTL_S = 60.0  # a socket not renewed by its process for this long is no longer counted
_REDIS_ERRORS = (StorageError, RedisError, OSError, TimeoutError)


def parse_limit(value: str) -> list[RateLimitItem]:
    """``"60/minute"`` (or ``"10/second;600/minute"``) in the ``limits`` syntax; empty: no limit."""
    return parse_many(value) if value.strip() else []


@dataclass(frozen=True)
class Verdict:
    """One request's standing against one limit: the one it broke, else the tightest."""

    allowed: bool
    kind: Kind
    item: RateLimitItem
    remaining: int
    reset_s: int  # whole seconds until a slot frees up, at least 1

    def headers(self) -> dict[str, str]:
        values = {"Limit": str(self.item.amount), "Remaining": str(self.remaining), "Reset": str(self.reset_s)}
        out = {f"RateLimit-{k}": v for k, v in values.items()}
        out.update({f"X-RateLimit-{k}": v for k, v in values.items()})
        return out


class _Breaker:
    """Whether to try Redis now; logs an outage once and the recovery once."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.down = False
        self._retry_at = 0.0

    def usable(self) -> bool:
        return not self.down or time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + REDIS_RETRY_S
        if not self.down:
            self.down = True
            log.warning(f"redis unavailable; {self.what} fall back to this process", error=repr(exc)[:300])

    def worked(self) -> None:
        if self.down:
            self.down = False
            log.info(f"redis is back; {self.what} shared again")

    async def call(self, work: Callable[[], Awaitable[T]]) -> T | None:
        """``work()`` within the timeout, or None (Redis down, or it failed now)."""
        if not self.usable():
            return None
        try:
            result = await asyncio.wait_for(work(), REDIS_TIMEOUT_S)
        except _REDIS_ERRORS as exc:
            self.failed(exc)
            return None
        self.worked()
        return result


def _strategy(name: str, storage: MemoryStorage | RedisStorage) -> RateLimiter:
    if name == "sliding-window-counter":
        return SlidingWindowCounterRateLimiter(storage)
    return MovingWindowRateLimiter(storage)


def _async_uri(url: str) -> str:
    """``limits`` names its asyncio Redis storage ``async+redis://``."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url[len("unix://") :]
    return url if url.startswith("async+") else f"async+{url}"


class RateLimits:
    """Two budgets per caller (submits, reads), each one or more ``limits`` items."""

    def __init__(self, settings: Settings) -> None:
        self.items: dict[Kind, list[RateLimitItem]] = {
            "submit": parse_limit(settings.rate_limit_submit),
            "read": parse_limit(settings.rate_limit_read),
        }
        self._memory = _strategy(settings.rate_limit_strategy, MemoryStorage())
        self._shared: RateLimiter | None = None
        self._pool: ConnectionPool | None = None
        self._breaker = _Breaker("rate limits")
        if settings.redis_url:
            # our own pool, so that close() can let go of its connections (the storage has no close)
            self._pool = ConnectionPool.from_url(
                settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )
            storage = RedisStorage(
                _async_uri(settings.redis_url),
                wrap_exceptions=True,
                implementation="redispy",
                key_prefix=f"{settings.redis_prefix}:ratelimit",
                connection_pool=self._pool,  # type: ignore[arg-type]  # typed as str | float | bool, passed on
            )
            self._shared = _strategy(settings.rate_limit_strategy, storage)

    async def close(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                await self._pool.disconnect()

    def enabled(self, kind: Kind) -> bool:
        return bool(self.items[kind])

    async def hit(self, kind: Kind, identity: str) -> Verdict | None:
        """Count one request; None when ``kind`` has no limit."""
        tightest: Verdict | None = None
        for item in self.items[kind]:
            verdict = await self._hit_one(kind, item, identity)
            if not verdict.allowed:
                return verdict
            if tightest is None or verdict.remaining < tightest.remaining:
                tightest = verdict
        return tightest

    async def _hit_one(self, kind: Kind, item: RateLimitItem, identity: str) -> Verdict:
        shared = self._shared
        if shared is not None:
            counted = await self._breaker.call(lambda: self._count(shared, kind, item, identity))
            if counted is not None:
                return counted
        return await self._count(self._memory, kind, item, identity)

    @staticmethod
    async def _count(strategy: RateLimiter, kind: Kind, item: RateLimitItem, identity: str) -> Verdict:
        allowed = await strategy.hit(item, kind, identity)
        stats = await strategy.get_window_stats(item, kind, identity)
        reset_s = max(1, math.ceil(stats.reset_time - time.time()))
        return Verdict(allowed, kind, item, max(0, stats.remaining), reset_s)


@dataclass(frozen=True)
class SocketSlot:
    """One open WebSocket, counted until ``release``."""

    owner: SocketSlots
    identity: str
    member: str

    async def release(self) -> None:
        await self.owner.release(self)


class SocketSlots:
    """At most ``cap`` open WebSockets per caller: in this process, and across replicas in Redis."""

    def __init__(self, settings: Settings, ttl_s: float = SOCKET_TTL_S) -> None:
        self.cap = settings.max_sockets_per_key
        self.ttl_s = ttl_s
        self._prefix = f"{settings.redis_prefix}:ws"
        self._process = uuid.uuid4().hex[:16]
        self._serial = itertools.count(1)
        self._local: dict[str, set[str]] = {}
        self._breaker = _Breaker("websocket counts")
        self._redis: Redis | None = None
        if settings.redis_url:
            self._redis = Redis.from_url(
                settings.redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )

    async def acquire(self, identity: str) -> SocketSlot | None:
        """A slot, or None when the caller already holds ``cap`` sockets (0: no cap)."""
        if self.cap <= 0:
            return SocketSlot(self, identity, "")  # counted nowhere
        local = self._local.setdefault(identity, set())
        if len(local) >= self.cap:
            return None
        slot = SocketSlot(self, identity, f"{self._process}:{next(self._serial)}")
        local.add(slot.member)
        count = await self._shared_count(slot)
        if count is not None and count > self.cap:
            await self.release(slot)
            return None
        return slot

    async def release(self, slot: SocketSlot) -> None:
        if not slot.member:
            return
        members = self._local.get(slot.identity)
        if members is not None:
            members.discard(slot.member)
            if not members:
                del self._local[slot.identity]
        redis = self._redis
        if redis is not None:
            await self._breaker.call(lambda: redis.zrem(self._key(slot.identity), slot.member))

    def _key(self, identity: str) -> str:
        return f"{self._prefix}:{identity}"

    async def _shared_count(self, slot: SocketSlot) -> int | None:
        """The caller's sockets on every replica, this one included; None without Redis."""
        redis = self._redis
        if redis is None:
            return None

        async def count() -> int:
            now = time.time()
            key = self._key(slot.identity)
            async with redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {slot.member: now + self.ttl_s})
                pipe.zcard(key)
                pipe.expire(key, math.ceil(self.ttl_s) + 1)
                results = await pipe.execute()
            return int(results[2])

        return await self._breaker.call(count)

    async def renew(self) -> None:
        """Push this process's sockets' expiry forward (and put them back after an outage)."""
        redis = self._redis
        if redis is None or not self._local:
            return

        async def write() -> None:
            expires = time.time() + self.ttl_s
            async with redis.pipeline(transaction=False) as pipe:
                for identity, members in list(self._local.items()):
                    pipe.zadd(self._key(identity), dict.fromkeys(members, expires))
                    pipe.expire(self._key(identity), math.ceil(self.ttl_s) + 1)
                await pipe.execute()

        await self._breaker.call(write)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 4)
            await self.renew()

    async def close(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()


class Limits:
    """Both, with the heartbeat that keeps this process's sockets counted; on ``app.state.limits``."""

    def __init__(self, settings: Settings) -> None:
        self.rates = RateLimits(settings)
        self.sockets = SocketSlots(settings)
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._heartbeat = asyncio.create_task(self.sockets.run(), name="socket-slots-heartbeat")

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        await self.sockets.close()
        await self.rates.close()
