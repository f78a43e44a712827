"""A TCP proxy on 127.0.0.1 that a test can cut, standing in for a network that drops.

    with TcpProxy(gateway.port) as proxy:
        page.goto(f"{proxy.url}/ui/")   # the browser talks to the gateway through the proxy
        proxy.sever()                   # every open connection dies, both sides, with a reset
        ...                             # new connections are accepted as before

Its asyncio loop runs in a thread of its own, so it works from sync tests (and beside
Playwright's sync API, which owns the test thread's loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["TcpProxy"]

T = TypeVar("T")

_CHUNK = 65536
# SO_LINGER on, zero seconds: close() sends a reset instead of a graceful FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class TcpProxy:
    """Forwards each connection to ``127.0.0.1:{target_port}`` until it ends or ``sever()``.

    ``port``/``url``: where to connect. ``connections``: connections accepted so far (a client
    that reconnects after ``sever()`` adds one). ``open_connections``: those still open.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.connections = 0
        self._links: set[_Link] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._links)

    def sever(self) -> None:
        """Reset every open connection on both sides at once; keep accepting new ones."""
        self._call(self._sever())

    def close(self) -> None:
        """Stop listening, reset what is open, and stop the thread."""
        if self._loop.is_closed():
            return
        self._server.close()
        self._call(self._sever())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _sever(self) -> None:
        for link in list(self._links):
            link.reset()
        self._links.clear()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        link = _Link(client_writer, upstream_writer)
        self._links.add(link)
        try:
            await asyncio.gather(link.pump(client_reader, upstream_writer), link.pump(upstream_reader, client_writer))
        finally:
            self._links.discard(link)
            link.close()


class _Link:
    """One proxied connection: the client's side and the target's."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction to its end, passed on as a half-close; an error resets both sides."""
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof() and not writer.is_closing():
                writer.write_eof()
        except OSError:  # ConnectionResetError, BrokenPipeError...
            self.reset()

    def reset(self) -> None:
        for writer in self.writers:
            _reset(writer)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close at once with a TCP reset, dropping anything unsent."""
    if writer.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    writer.transport.abort()
