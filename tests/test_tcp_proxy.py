"""``TcpProxy``: forwards HTTP and WebSockets to its target; ``sever()`` drops what is open, both sides."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.sync.client import connect
from websockets.sync.server import Server, ServerConnection, serve

from tests.support.tcp_proxy import TcpProxy


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello from {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class EchoServer:
    """A WebSocket echo server in a thread, noting when a connection of its own ends abnormally."""

    def __init__(self) -> None:
        self.dropped = threading.Event()
        self.server: Server = serve(self._echo, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _echo(self, ws: ServerConnection) -> None:
        try:
            for message in ws:
                ws.send(message)
        except ConnectionClosedError:
            self.dropped.set()


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.server.shutdown()


def test_an_http_request_goes_through_the_proxy(http_port: int) -> None:
    with TcpProxy(http_port) as proxy:
        response = httpx.get(f"{proxy.url}/ping", timeout=10)

        assert response.status_code == 200
        assert response.text == "hello from /ping"
        assert proxy.connections == 1


def test_sever_drops_an_open_websocket_on_both_sides_and_new_ones_still_connect(echo: EchoServer) -> None:
    with TcpProxy(echo.port) as proxy:
        ws_url = f"ws://127.0.0.1:{proxy.port}/"
        with connect(ws_url, open_timeout=10) as ws:
            ws.send("before")
            assert ws.recv(timeout=10) == "before"
            assert proxy.open_connections == 1

            proxy.sever()

            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
            assert closed.value.rcvd is None  # no close frame: the connection just died
            assert echo.dropped.wait(timeout=10), "the server's side of the connection stayed open"
            assert proxy.open_connections == 0

        with connect(ws_url, open_timeout=10) as again:
            again.send("after")
            assert again.recv(timeout=10) == "after"
        assert proxy.connections == 2
