"""Wake-ups across processes and machines over Redis pub/sub.

Every process subscribes to one channel (``<prefix>:wakeups``) and publishes its
signals there; each process, the publisher included, hands what it receives to its
handlers. The queue, the wire format, reconnecting and resyncing are shared with the
other brokers (``gateway.wakeups.broker``, which says why they are as they are); this
module only talks to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.wakeups.broker import CONNECT_TIMEOUT_S, SEND_TIMEOUT_S, BrokerWakeups

__all__ = ["RedisWakeups"]


class RedisWakeups(BrokerWakeups):
    """``Wakeups`` over one Redis pub/sub channel."""

    kind = "redis"
    expected_errors = (RedisError, OSError, TimeoutError)
    _sender: Redis | None = None

    def _client(self, socket_timeout: float) -> Redis:
        # No retries inside redis-py: a failure must reach us, so we resubscribe and resync.
        client: Redis = Redis.from_url(
            self._url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_keepalive=True,
            health_check_interval=0,
            retry=Retry(NoBackoff(), 0),
        )
        return client

    async def _send_message(self, message: bytes) -> None:
        if self._sender is None:  # connects lazily, and again after a failure (redis-py's pool)
            self._sender = self._client(socket_timeout=SEND_TIMEOUT_S)
        await self._sender.publish(self._channel, message)

    async def _close_sender(self) -> None:
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None

    async def _listen_once(self) -> None:
        client = self._client(socket_timeout=self._read_tick_s)
        pubsub = client.pubsub()
        try:
            self._attempts += 1
            await pubsub.subscribe(self._channel)
            confirmed = await pubsub.get_message(timeout=CONNECT_TIMEOUT_S)
            if confirmed is None or confirmed.get("type") != "subscribe":
                raise ConnectionError("no confirmation of SUBSCRIBE")
            self._on_subscribed()
            await self._read_forever(pubsub)
        finally:
            self._connected = False
            # a failure to close must not replace the error (or the cancel) that got us here
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _read_forever(self, pubsub: PubSub) -> None:
        """Deliver each message; PING when quiet, and give up on a connection that has
        said nothing, not even PONG, for three ticks (a half-open TCP connection, or a
        hung server, otherwise looks exactly like a quiet channel)."""
        loop = asyncio.get_running_loop()
        tick = self._read_tick_s
        heard = pinged = loop.time()
        while not self._closed:
            message: dict[str, Any] | None = await pubsub.get_message(ignore_subscribe_messages=True, timeout=tick)
            now = loop.time()
            if message is not None:
                heard = now
                if message.get("type") == "message":
                    self._receive(message.get("data"))
                continue
            if now - heard > 3 * tick:
                raise ConnectionError(f"nothing from redis for {3 * tick:.3g} s, not even PONG")
            if now - pinged >= tick:
                pinged = now
                await pubsub.ping()
