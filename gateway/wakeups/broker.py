"""What every wake-ups broker shares: the wire format, the send queue, the listener's loop.

A broker (Redis pub/sub, PostgreSQL LISTEN/NOTIFY) delivers each message to every
subscribed process, the publisher's included, and keeps nothing: a message sent while a
subscriber is away is lost to it. That is acceptable because a wake-up only shortens a
wait: the store is the truth and every process polls it as a fallback. So this code never
trades safety for delivery: it never blocks or fails a write, never retries a send, never
queues without bound, and after every (re)subscribe it tells its handlers to ``resync``
(re-read the store), which covers whatever was missed while it was away.

Everything read from the broker is treated as hostile (any client of that broker can
publish on the channel): a size cap, strict JSON schema, bounded strings and counts;
anything else is dropped with a rate-limited log line.

Wire format (compact, versioned, one message per batch or per chunk of a big batch)::

    {"v": 1, "o": "<publisher origin>", "s": [["a", "<task id>", seq, event_id, ended], ...]}

A signal whose ``origin`` differs from the publisher's carries it as a sixth item.

A subclass says how to send one message (``_send_message``, ``_close_sender``) and how to
hold one subscription (``_listen_once``: subscribe, call ``_on_subscribed``, hand each
message to ``_receive`` until the connection fails).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import random
import socket
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

import structlog

from gateway.wakeups import Handler, Signal, SignalKind

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MAX_SIGNALS_PER_MESSAGE",
    "BadMessage",
    "BrokerWakeups",
    "decode_message",
    "encode_messages",
    "redact_url",
]

log = structlog.get_logger("crewgate.wakeups")

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024  # a message above this is ignored unread; ours stay below it
MAX_SIGNALS_PER_MESSAGE = 1024  # ours are chunked to this; a message with more is ignored
MAX_ID_CHARS = 128  # task ids (uuids today) and origins
MAX_INT = 2**63 - 1  # seq and event ids are BIGINT in the store
MAX_QUEUED_SIGNALS = 10_000  # waiting to be sent; past this a batch is dropped (the poll covers)
SEND_TIMEOUT_S = 1.0  # connect and write timeout of a send: a slow broker must not back up the queue
CONNECT_TIMEOUT_S = 2.0
READ_TICK_S = 5.0  # the listener wakes this often when the channel is quiet, and PINGs; after 3
# ticks with nothing heard (not even a PONG) it takes the connection for dead
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
BAD_MESSAGE_LOG_EVERY_S = 60.0

_CODES: dict[SignalKind, str] = {
    SignalKind.appended: "a",
    SignalKind.cancel: "c",
    SignalKind.answer: "n",
    SignalKind.resync: "r",
}
_KINDS: dict[str, SignalKind] = {code: kind for kind, code in _CODES.items()}


class BadMessage(ValueError):
    """A message on the channel that does not follow the wire format."""


# --- the wire format ---------------------------------------------------------------


def _checked_id(value: object, what: str, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or not value.isprintable():
        raise BadMessage(f"{what}: not a printable string of at most {MAX_ID_CHARS} characters")
    if not value and not allow_empty:
        raise BadMessage(f"{what}: empty")
    return value


def _checked_int(value: object, what: str) -> int:
    # bool is an int in Python and JSON floats are not ints: both are refused
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise BadMessage(f"{what}: not an integer in 0..2**63-1")
    return value


def _decode_signal(item: object, origin: str) -> Signal:
    if not isinstance(item, list) or len(item) not in (5, 6):
        raise BadMessage("signal: not a list of 5 or 6 items")
    kind = _KINDS.get(item[0]) if isinstance(item[0], str) else None
    if kind is None:
        raise BadMessage("signal: unknown kind")
    if type(item[4]) is not bool:
        raise BadMessage("signal: ended is not a boolean")
    return Signal(
        kind=kind,
        task_id=_checked_id(item[1], "task id"),
        seq=_checked_int(item[2], "seq"),
        event_id=_checked_int(item[3], "event id"),
        ended=item[4],
        origin=_checked_id(item[5], "origin") if len(item) == 6 else origin,
    )


def decode_message(data: object, max_bytes: int = MAX_MESSAGE_BYTES) -> list[Signal]:
    """The signals in one message from the channel, or ``BadMessage`` saying why not.

    Sizes are checked before parsing, types strictly after: the channel is open to every
    client of the broker, and a handler must never see a value it did not expect.
    """
    if not isinstance(data, bytes | str):
        raise BadMessage("not bytes")
    if len(data) > max_bytes or (isinstance(data, str) and len(data.encode(errors="replace")) > max_bytes):
        raise BadMessage(f"larger than {max_bytes} bytes")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting bombs
        raise BadMessage("not JSON") from exc
    if not isinstance(body, dict) or body.get("v") != WIRE_VERSION:
        raise BadMessage(f"not an object with v={WIRE_VERSION}")
    origin = _checked_id(body.get("o"), "origin", allow_empty=False)
    items = body.get("s")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_SIGNALS_PER_MESSAGE:
        raise BadMessage(f"s: not a list of 1..{MAX_SIGNALS_PER_MESSAGE} signals")
    return [_decode_signal(item, origin) for item in items]


def _encode_signal(signal: Signal, origin: str) -> str:
    """One signal as a JSON array; ``BadMessage`` if receivers would refuse it."""
    item: list[object] = [_CODES[signal.kind], signal.task_id, signal.seq, signal.event_id, signal.ended]
    if signal.origin and signal.origin != origin:
        item.append(signal.origin)
    _decode_signal(item, origin)  # the receivers' rules, so that a bad signal fails here, alone
    return json.dumps(item, separators=(",", ":"))


def encode_messages(
    signals: Sequence[Signal], origin: str, max_bytes: int = MAX_MESSAGE_BYTES
) -> Iterator[tuple[bytes, int]]:
    """``(message, signals in it)`` for ``signals``: one message, or several when the batch
    is bigger than a receiver accepts. Signals receivers would refuse are left out (a bug
    in the caller; logged), so that they cannot take the rest of their batch down with them.
    """
    head = json.dumps({"v": WIRE_VERSION, "o": origin}, separators=(",", ":"))[:-1] + ',"s":['
    budget = max_bytes - len(head.encode()) - 2
    parts: list[str] = []
    size = 0
    for signal in signals:
        try:
            part = _encode_signal(signal, origin)
        except BadMessage as exc:
            log.error("a wake-up not sent: it breaks the wire format", reason=str(exc), kind=str(signal.kind))
            continue
        cost = len(part.encode()) + 1
        if parts and (size + cost > budget or len(parts) >= MAX_SIGNALS_PER_MESSAGE):
            yield (head + ",".join(parts) + "]}").encode(), len(parts)
            parts, size = [], 0
        parts.append(part)
        size += cost
    if parts:
        yield (head + ",".join(parts) + "]}").encode(), len(parts)


# --- small helpers -----------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` without its password (nor query, which may carry one), for status and logs."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    netloc = f"{user}{host}" + (f":{port}" if port is not None else "")
    return f"{parts.scheme}://{netloc}{parts.path}"


def make_origin() -> str:
    """hostname-pid-random: unique per process (and per instance), readable in logs."""
    host = socket.gethostname().replace(" ", "")[:64] or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Backoff:
    """Delays that double from ``first`` to ``cap``, each with jitter so that many
    processes losing the same broker do not all come back in the same instant."""

    def __init__(self, first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * random.uniform(0.5, 1.0)


# --- the queue, the sender and the listener ------------------------------------------


class BrokerWakeups:
    """``Wakeups`` over one broker channel, less how to talk to the broker; see the module's docstring."""

    kind = "broker"
    max_message_bytes = MAX_MESSAGE_BYTES
    # what goes wrong talking to the broker; anything else is a bug, logged with its traceback
    expected_errors: tuple[type[BaseException], ...] = (OSError, TimeoutError)

    def __init__(
        self, url: str, *, channel: str, max_queued: int = MAX_QUEUED_SIGNALS, read_tick_s: float = READ_TICK_S
    ) -> None:
        self._url = url
        self._read_tick_s = read_tick_s  # also the listener's socket timeout; 3 ticks unheard = dead
        self._channel = channel
        self._max_queued = max_queued
        self._origin = make_origin()
        self._handlers: list[Handler] = []
        self._pending: deque[Sequence[Signal]] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._connected = False
        self._dropped = 0
        self._dropping = False  # a drop was logged and nothing was sent since: log no more
        self._send_after = 0.0  # loop time before which sends are not tried (the broker just failed one)
        self._send_backoff = _Backoff()
        self._listen_backoff = _Backoff()
        self._lost_at: float | None = None  # loop time the subscription was lost (or first failed)
        self._attempts = 0
        self._bad_messages = 0
        self._bad_logged_at = -math.inf

    @property
    def origin(self) -> str:
        return self._origin

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def status(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "connected": self._connected,
            "dropped": self._dropped,  # wake-ups not sent (queue full, broker down): the poll found them
            "ignored": self._bad_messages,  # malformed messages received on the channel
            "url": redact_url(self._url),
        }

    # -- publishing: a bounded queue and one sender task --------------------------------

    def publish(self, signals: Sequence[Signal]) -> None:
        """This process's handlers get ``signals`` now (a broker outage must not delay a
        cancel or an append to their own watchers); other processes through the broker,
        whose echo of them is skipped on receipt."""
        if not signals:
            return
        # stamped with this process: receivers skip their own echo by it
        signals = [dataclasses.replace(signal, origin=self._origin) for signal in signals]
        self._dispatch(signals)
        if self._closed:
            self._drop(len(signals), "closed")
            return
        if self._queued + len(signals) > self._max_queued:
            self._drop(len(signals), "queue full")
            return
        self._pending.append(tuple(signals))
        self._queued += len(signals)
        self._wake.set()

    def _drop(self, count: int, why: str) -> None:
        """Count wake-ups not sent; log the first of an outage only (the poll covers them)."""
        self._dropped += count
        if not self._dropping and not self._closed:
            self._dropping = True
            log.warning("wake-ups dropped; watchers fall back to the poll", why=why, count=count)

    def _take_pending(self) -> list[Signal]:
        batch = [signal for signals in self._pending for signal in signals]
        self._pending.clear()
        self._queued = 0
        return batch

    async def _send_forever(self) -> None:
        """Send what is queued, coalesced into as few messages as fit; never retry a send:
        after a failure, drop what comes for a backoff delay, then try again."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            batch = self._take_pending()
            if not batch:
                continue
            if loop.time() < self._send_after:
                self._drop(len(batch), "broker unreachable")
                continue
            try:
                await self._send(batch)
            except Exception as exc:  # the sender must outlive anything: it is the only one
                self._send_after = loop.time() + self._send_backoff.next()
                if not isinstance(exc, self.expected_errors):
                    log.exception("sending wake-ups failed unexpectedly")

    async def _send(self, batch: list[Signal]) -> None:
        unsent = len(batch)
        try:
            for message, count in encode_messages(batch, self._origin, self.max_message_bytes):
                async with asyncio.timeout(SEND_TIMEOUT_S * 2):  # not wait_for: it can swallow a cancel on 3.11
                    await self._send_message(message)
                unsent -= count
        except BaseException as exc:
            self._drop(unsent, f"{type(exc).__name__}: {exc}")
            raise
        self._send_backoff.reset()
        if self._dropping:
            self._dropping = False
            log.info("wake-ups are sent again", dropped_total=self._dropped)

    # -- listening: one subscription, rebuilt after any failure -------------------------

    async def _listen_forever(self) -> None:
        while not self._closed:
            try:
                await self._listen_once()
            except Exception as exc:  # whatever broke the subscription, build a new one
                self._on_lost(exc)
            if not self._closed:  # _listen_once returns only once closed
                await asyncio.sleep(self._listen_backoff.next())

    def _on_subscribed(self) -> None:
        loop = asyncio.get_running_loop()
        if self._lost_at is not None:
            log.info(
                "wake-ups subscription recovered",
                down_s=round(loop.time() - self._lost_at, 3),
                attempts=self._attempts,
                url=redact_url(self._url),
            )
        self._connected = True
        self._lost_at = None
        self._attempts = 0
        self._listen_backoff.reset()
        self._send_after = 0.0  # the broker is back: let the sender try at once, not at the end of its backoff
        # Whatever was published while we were not subscribed is lost to us: re-read the store.
        self._dispatch([Signal(SignalKind.resync, origin=self._origin)])

    def _on_lost(self, exc: Exception) -> None:
        if self._lost_at is not None:
            return  # already logged for this outage
        self._lost_at = asyncio.get_running_loop().time()
        if isinstance(exc, self.expected_errors):
            log.warning(
                "wake-ups subscription lost; reconnecting, watchers fall back to the poll",
                error=f"{type(exc).__name__}: {exc}",
                url=redact_url(self._url),
            )
        else:
            log.exception("wake-ups subscription failed unexpectedly; reconnecting", url=redact_url(self._url))

    # -- what a broker says --------------------------------------------------------------

    async def _send_message(self, message: bytes) -> None:
        """Send one message to the channel (connecting first if need be); raise on failure."""
        raise NotImplementedError

    async def _close_sender(self) -> None:
        """Close the sender's connection, if any."""
        raise NotImplementedError

    async def _listen_once(self) -> None:
        """Subscribe, call ``_on_subscribed``, then hand each message to ``_receive`` until
        the connection fails (raise); close what was opened, whatever happens."""
        raise NotImplementedError

    def _receive(self, data: object) -> None:
        try:
            signals = decode_message(data, self.max_message_bytes)
        except BadMessage as exc:
            self._bad_message(str(exc))
            return
        others = [signal for signal in signals if signal.origin != self._origin]
        if others:
            self._dispatch(others)

    def _bad_message(self, reason: str) -> None:
        """Count and ignore; log at most once a minute, so a flood of junk cannot flood the log."""
        self._bad_messages += 1
        now = asyncio.get_running_loop().time()
        if now - self._bad_logged_at >= BAD_MESSAGE_LOG_EVERY_S:
            self._bad_logged_at = now
            log.warning("ignored a malformed wake-up message", reason=reason, ignored_total=self._bad_messages)

    def _dispatch(self, signals: Sequence[Signal]) -> None:
        for handler in list(self._handlers):
            try:
                handler(signals)
            except Exception:  # one broken handler must not stop the listener or the others
                log.exception("a wake-up handler failed")

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sender and the listener; both connect in the background."""
        if self._tasks or self._closed:
            return
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name=f"wakeups-{self.kind}-listener"),
            asyncio.create_task(self._send_forever(), name=f"wakeups-{self.kind}-sender"),
        ]
        if self._pending:
            self._wake.set()

    async def close(self) -> None:
        """Stop both tasks and close every connection; what is still queued is dropped."""
        self._closed = True
        self._wake.set()
        # Cancel until done: on Python 3.11 asyncio.wait_for (inside the drivers too) can swallow
        # a cancel that lands as its inner await completes; the loops also stop on _closed.
        while pending := [task for task in self._tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                log.error("a wake-ups task failed", task=task.get_name(), error=repr(task.exception()))
        self._tasks = []
        await self._close_sender()
        self._connected = False
        self._handlers.clear()
        self._take_pending()
