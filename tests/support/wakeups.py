"""Helpers for wake-ups tests: a handler that keeps what it gets, and polling waits."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Sequence

import pytest

from gateway.wakeups import Signal, SignalKind
from gateway.wakeups.broker import MAX_MESSAGE_BYTES, MAX_SIGNALS_PER_MESSAGE

__all__ = ["WAIT_S", "Inbox", "channel", "hostile_messages", "wait_until"]

WAIT_S = 20.0  # generous: a loaded CI machine; the waits poll and return as soon as they can


class Inbox:
    """A handler that keeps every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[Signal]] = []

    def __call__(self, signals: Sequence[Signal]) -> None:
        self.batches.append(list(signals))

    @property
    def signals(self) -> list[Signal]:
        return [s for batch in self.batches for s in batch]

    def of(self, kind: SignalKind) -> list[Signal]:
        return [s for s in self.signals if s.kind == kind]

    def wakeups(self) -> list[Signal]:
        """Everything but resyncs: what other processes published."""
        return [s for s in self.signals if s.kind != SignalKind.resync]


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def channel() -> str:
    return f"crewgate-test-{uuid.uuid4().hex}:wakeups"


def hostile_messages() -> list[bytes]:
    """Messages a wake-ups listener must ignore, each for another reason."""
    good = ["a", "t", 1, 1, False]

    def msg(*signals: object, **fields: object) -> bytes:
        return json.dumps({"v": 1, "o": "evil", "s": list(signals), **fields}).encode()

    return [
        b"not json",
        b"\xff\xfe\x00garbage",
        b"",
        b"null",
        b"[1,2,3]",
        b"[" * 60_000,  # a nesting bomb under the size cap
        msg(good) + b" " * MAX_MESSAGE_BYTES,  # valid, but over the size cap
        b'{"v":1,"o":"evil","s":[["a","t",' + b"9" * 5_000 + b",1,false]]}",  # an int too long to parse
        msg(good, v=2),  # another wire version
        msg(good, o=""),
        msg(good, o=123),
        msg(good, o="o" * 129),
        msg(),  # no signals
        msg(["zz", "t", 1, 1, False]),  # unknown kind
        msg(["appended", "t", 1, 1, False]),  # a name, not a code
        msg(["a", "t", -1, 1, False]),  # negative ints
        msg(["a", "t", 1, -5, False]),
        msg(["a", "t", 2**63, 1, False]),  # past BIGINT
        msg(["a", "t", "1", 1, False]),  # wrong types
        msg(["a", "t", 1.5, 1, False]),
        msg(["a", "t", True, 1, False]),
        msg(["a", "t", 1, 1, 1]),
        msg(["a", 7, 1, 1, False]),
        msg(["a", "t" * 129, 1, 1, False]),  # an unbounded task id
        msg(["a", "line\nbreak", 1, 1, False]),
        msg(["a", "t", 1, 1]),  # too few items, too many
        msg(["a", "t", 1, 1, False, "o", "extra"]),
        msg({"k": "a"}),
        msg(good, good, ["a", "t", -1, 1, False]),  # one bad signal spoils its message
        msg(*([["r", "", 0, 0, False]] * (MAX_SIGNALS_PER_MESSAGE + 1))),  # too many signals, under the size cap
        msg(*([good] * 10_000)),  # 10k signals: over both caps
    ]
