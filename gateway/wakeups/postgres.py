"""Wake-ups across processes over PostgreSQL LISTEN/NOTIFY, for sites with no Redis.

The same semantics as Redis pub/sub (``gateway.wakeups.broker`` says why): every
process LISTENs on one channel, NOTIFY reaches every listener (the sender's own
session included), and nothing is kept for a listener that is away, hence the
``resync`` after every (re)LISTEN. PostgreSQL caps a payload below 8000 bytes, so
messages are chunked smaller than on Redis.

It costs two connections per process outside the store's pool: a LISTEN needs its own
session for as long as it lasts, and sends must not wait behind the store's queries.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg  # type: ignore[import-untyped]  # no stubs; its few calls here are checked by the tests
from sqlalchemy.engine import make_url

from gateway.wakeups.broker import CONNECT_TIMEOUT_S, MAX_QUEUED_SIGNALS, READ_TICK_S, SEND_TIMEOUT_S, BrokerWakeups

__all__ = ["MAX_CHANNEL_BYTES", "PostgresWakeups", "asyncpg_dsn", "is_postgres"]

MAX_CHANNEL_BYTES = 63  # PostgreSQL's identifier limit: a longer channel would be silently cut by LISTEN
MAX_PAYLOAD_BYTES = 7_900  # NOTIFY refuses 8000 bytes and more; keep a margin


def is_postgres(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "postgresql"


def asyncpg_dsn(database_url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from a SQLAlchemy URL (``postgresql+asyncpg://``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresWakeups(BrokerWakeups):
    """``Wakeups`` over one PostgreSQL NOTIFY channel."""

    kind = "postgres"
    max_message_bytes = MAX_PAYLOAD_BYTES
    expected_errors = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
    _sender: asyncpg.Connection | None = None

    def __init__(
        self, dsn: str, *, channel: str, max_queued: int = MAX_QUEUED_SIGNALS, read_tick_s: float = READ_TICK_S
    ) -> None:
        if not channel or len(channel.encode()) > MAX_CHANNEL_BYTES:
            raise ValueError(f"a PostgreSQL channel name has 1 to {MAX_CHANNEL_BYTES} bytes: {channel!r}")
        super().__init__(dsn, channel=channel, max_queued=max_queued, read_tick_s=read_tick_s)

    async def _connect(self, timeout: float) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._url,
            timeout=timeout,
            command_timeout=timeout,
            server_settings={"application_name": f"crewgate-wakeups-{self.origin}"[:63]},  # for pg_stat_activity
        )
        return conn

    async def _send_message(self, message: bytes) -> None:
        if self._sender is None or self._sender.is_closed():
            await self._close_sender()
            self._sender = await self._connect(SEND_TIMEOUT_S)
        try:
            await self._sender.execute("SELECT pg_notify($1, $2)", self._channel, message.decode())
        except BaseException:
            await self._close_sender()  # a broken or timed-out session is not reused
            raise

    async def _close_sender(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.terminate()  # no goodbye round trip: the server may be the thing that is down

    async def _listen_once(self) -> None:
        self._attempts += 1
        conn = await self._connect(CONNECT_TIMEOUT_S)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(self._channel, self._on_notify)  # returns once LISTEN is in effect
            self._on_subscribed()
            await self._watch(conn, lost)
        finally:
            self._connected = False
            with contextlib.suppress(Exception):  # must not replace the error (or cancel) that got us here
                conn.terminate()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self._receive(payload)  # asyncpg calls this on the loop's thread

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Wait for the connection to end; every tick, a ``SELECT 1`` with a timeout finds a
        server that hangs or a connection that went half-open without closing."""
        tick = self._read_tick_s
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(tick):
                    await lost.wait()
            if lost.is_set():
                raise ConnectionError("the LISTEN connection closed")
            await conn.fetchval("SELECT 1", timeout=3 * tick)
