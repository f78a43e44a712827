"""The dashboard: static assets under ``/ui/``, served from the package, and ``/`` sending there.

Nothing is built at run time and nothing is fetched from another host: the page is plain
ES modules, one stylesheet, and two vendored libraries (marked, DOMPurify; see
``gateway/ui/vendor/package.json`` and ``make ui-vendor``). Everything it shows comes from
the public v1 API with the caller's own token, so it can do no more than that token can.

Every answer under ``/ui/`` carries a Content-Security-Policy that allows scripts, styles
and connections to this origin only: no inline script runs, and no image, font or frame
loads from anywhere else, whatever text a log line, a repository or a model puts on the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles

__all__ = ["CSP", "STATIC", "install_ui"]

STATIC = Path(__file__).resolve().parent / "static"

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # revalidated on every load (ETag / Last-Modified): an upgraded gateway serves its new page at once
    (b"cache-control", b"no-cache"),
]
_NAMES = {name for name, _ in _HEADERS}


class _Hardened:
    """The static app with the page's security headers on every answer."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def send_hardened(message: Any) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message = {**message, "headers": kept + _HEADERS}
            await send(message)

        await self.app(scope, receive, send_hardened)


async def _to_ui() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


def install_ui(app: FastAPI) -> None:
    """Serve the dashboard at ``/ui/`` and redirect ``/`` there."""
    app.mount("/ui", _Hardened(StaticFiles(directory=STATIC, html=True)), name="ui")
    app.add_api_route("/", _to_ui, methods=["GET"], include_in_schema=False)
