"""Debian's Chromium driven by Playwright's sync API, for the dashboard's browser tests.

The fixtures live in ``tests/ui/conftest.py``; this module holds what they are made of:
finding and probing the browser, its launch options, and ``BrowserLog``, which records what a
browser context asked the network for and what its pages reported as errors.

Never ``playwright install``: the browser is the ``chromium`` apt package.
"""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, ViewportSize, WebSocket

__all__ = [
    "CHROMIUM_HOW_TO",
    "LAUNCH_ARGS",
    "VIEWPORT",
    "BrowserLog",
    "chromium_executable",
    "dead_proxy",
    "off_host_urls",
    "probe_chromium",
]

CHROMIUM_ENV = "CREWGATE_TEST_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_HOW_TO = (
    "apt-get install chromium (Debian's package; never `playwright install`), "
    f"or point {CHROMIUM_ENV} at a Chromium binary"
)

# No sandbox: CI runs as root. The rest keeps the browser from calling Google's services on its own.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}

# The only host a page under test may reach: our servers all listen on 127.0.0.1.
ALLOWED_HOST = "127.0.0.1"
# Schemes that never touch the network.
_LOCAL_SCHEMES = {"data", "about"}


def chromium_executable() -> str:
    """``CREWGATE_TEST_CHROMIUM`` when set, else Debian's ``/usr/bin/chromium`` (a shell wrapper)."""
    return os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM


def probe_chromium(path: str) -> str | None:
    """``None`` when ``path`` is a Chromium that answers ``--version``, else why not."""
    if not Path(path).is_file():
        return f"no Chromium at {path}"
    if not os.access(path, os.X_OK):
        return f"{path} is not executable"
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return f"`{path} --version` did not answer within 10 s"
    if done.returncode != 0 or "chrom" not in done.stdout.lower():
        return f"`{path} --version` exited {done.returncode}: {(done.stdout + done.stderr).strip()[:200]}"
    return None


def dead_proxy() -> socket.socket:
    """A bound, never-listening socket on 127.0.0.1: a proxy there refuses every connection at once.

    The browser is launched with it as its proxy. Chromium never proxies loopback addresses, so
    pages reach 127.0.0.1 as usual, while any other host (an IP literal too, or a WebSocket) fails
    at once instead of waiting on the real network. Keep the socket open while the browser runs.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((ALLOWED_HOST, 0))
    return sock


def off_host_urls(urls: list[str]) -> list[str]:
    """The URLs in ``urls`` that leave 127.0.0.1 (``data:`` and ``about:`` stay), in order, once each."""
    found: list[str] = []
    for url in urls:
        if not _on_host(url) and url not in found:
            found.append(url)
    return found


def _on_host(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in _LOCAL_SCHEMES:
        return True
    if parts.scheme == "blob":  # blob:http://127.0.0.1:8000/uuid belongs to the page that made it
        return _on_host(url.removeprefix("blob:"))
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == ALLOWED_HOST


@dataclass
class BrowserLog:
    """What the pages of one browser context asked for and complained about, as it happened.

    ``requests``: every request URL (documents, scripts, images, fetches...), from the context.
    ``websockets``: every WebSocket URL a page opened. ``console_errors``: the text of each
    ``console.error`` (and of errors Chromium logs to the console, e.g. a failed load).
    ``page_errors``: the message of each uncaught exception in a page.
    """

    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        """Record ``context`` from now on: its requests, and its pages' WebSockets and errors."""
        context.on("request", lambda request: self.requests.append(request.url))
        context.on("page", self._watch_page)
        for page in context.pages:
            self._watch_page(page)

    def off_host(self) -> list[str]:
        """Every request or WebSocket URL that went to a host other than 127.0.0.1."""
        return off_host_urls(self.requests + self.websockets)

    def _watch_page(self, page: Page) -> None:
        page.on("websocket", self._on_websocket)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    def _on_websocket(self, ws: WebSocket) -> None:
        self.websockets.append(ws.url)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _on_page_error(self, error: Error | Any) -> None:
        self.page_errors.append(getattr(error, "message", None) or str(error))
