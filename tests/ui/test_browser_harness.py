"""The browser harness itself: a real page clicks, and the recorder catches a page leaving 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import VIEWPORT, BrowserLog

OFF_HOST_IMAGE = "http://10.255.255.1/x.png"

PAGES = {
    "/": b"""<!doctype html><title>harness</title><link rel="icon" href="data:,">
<button id="go">Go</button><p id="out">waiting</p>
<script>document.getElementById("go").onclick = () => {
  document.getElementById("out").textContent = "clicked";
};</script>""",
    "/leaky": f"""<!doctype html><title>leaky</title><link rel="icon" href="data:,">
<img src="{OFF_HOST_IMAGE}"><script>throw new Error("boom from the page")</script>""".encode(),
}


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_click_changes_the_page(page: Page, browser_log: BrowserLog, site: str) -> None:
    page.goto(f"{site}/")
    expect(page.locator("#out")).to_have_text("waiting")

    page.get_by_role("button", name="Go").click()

    expect(page.locator("#out")).to_have_text("clicked")
    assert f"{site}/" in browser_log.requests
    assert browser_log.off_host() == []
    assert browser_log.console_errors == []
    assert browser_log.page_errors == []


def test_the_log_names_a_request_to_another_host_and_the_page_errors(browser: Browser, site: str) -> None:
    # a context of its own: the `page` fixture would rightly fail this test at teardown
    context = browser.new_context(viewport=VIEWPORT)
    log = BrowserLog()
    log.attach(context)
    try:
        page = context.new_page()
        page.goto(f"{site}/leaky")  # the off-host image fails at once: the browser's proxy refuses it
    finally:
        context.close()

    assert OFF_HOST_IMAGE in log.requests
    assert log.off_host() == [OFF_HOST_IMAGE]
    assert any("boom from the page" in error for error in log.page_errors)
    assert log.console_errors  # the refused image load
