"""Browser tests: Debian's Chromium, headless, driven by Playwright's sync API.

Fixtures:

- ``chromium_path`` (session): the browser binary; skips the test without one, fails it when
  Chromium is required (``CI`` set, or ``chromium`` in ``CREWGATE_TEST_REQUIRE``).
- ``browser`` (package): one headless Chromium for the tests of this folder.
- ``browser_log`` (function): the ``BrowserLog`` of ``page``'s context: ``requests``,
  ``websockets``, ``console_errors``, ``page_errors``.
- ``page`` (function): a page in a new context (viewport 1280x900). After the test, the test
  errors if the page reached any host but 127.0.0.1.

Tests here are plain sync functions. While Playwright's sync API runs, the thread has an asyncio
loop marked as running: an ``async def`` test or fixture, or ``asyncio.run``, fails inside it.
That is why ``browser`` is package-scoped, not session-scoped: it stops when the run leaves this
folder, so the async tests an xdist worker runs next start with no loop in the way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.browser import (
    CHROMIUM_HOW_TO,
    LAUNCH_ARGS,
    VIEWPORT,
    BrowserLog,
    chromium_executable,
    dead_proxy,
    probe_chromium,
)
from tests.support.services import require_service


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = chromium_executable()
    require_service("chromium", lambda: probe_chromium(path), CHROMIUM_HOW_TO)
    return path


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    # Passed as flags, not as Playwright's `proxy` option, which would send loopback through it.
    with dead_proxy() as proxy, sync_playwright() as playwright:
        port = proxy.getsockname()[1]
        launched = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*LAUNCH_ARGS, f"--proxy-server=http://127.0.0.1:{port}", "--proxy-bypass-list=127.0.0.1"],
        )
        yield launched
        launched.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    """Filled by ``page``: request it beside ``page`` to read what the page did."""
    return BrowserLog()


@pytest.fixture
def page(browser: Browser, browser_log: BrowserLog) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    browser_log.attach(context)
    try:
        yield context.new_page()
    finally:
        context.close()
    off_host = browser_log.off_host()
    if off_host:
        pytest.fail(f"the page reached hosts other than 127.0.0.1: {', '.join(off_host)}", pytrace=False)
