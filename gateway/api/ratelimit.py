"""Rate limits and the WebSocket cap at the API: who the caller is, and what they are told.

``rate_limited`` is a dependency placed after the token check (so an authenticated
principal is known); it counts the request against its budget and raises 429 past it.
``LimitHeaders`` (ASGI middleware) writes the budget's ``RateLimit-*`` headers on whatever
response the request ends with, an error or a stream included, and releases a
WebSocket's slot when the socket ends. Neither reads a request body.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import Request, WebSocket
from starlette.requests import HTTPConnection

from gateway.api.errors import ApiError
from gateway.ratelimits import Kind, Limits, SocketSlot, Verdict

__all__ = ["CLOSE_POLICY", "LimitHeaders", "admit_socket", "caller_identity", "rate_limited"]

CLOSE_POLICY = 1008  # policy violation: over the cap of open WebSockets, or the read rate
_HEADERS_STATE = "crewgate_rate_limit_headers"
_SLOT_STATE = "crewgate_socket_slot"
# the routes that create work; every other limited request counts as a read
SUBMIT_ROUTES = frozenset(
    {("POST", "/v1/tasks"), ("POST", "/v1/tasks/{task_id}/retry"), ("POST", "/v1/tasks/{task_id}/input")}
)


def _limits(conn: HTTPConnection) -> Limits | None:
    return getattr(conn.app.state, "limits", None)


def _token(conn: HTTPConnection) -> bytes | None:
    header = conn.headers.get("authorization")
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip().encode("latin-1")
    token = conn.query_params.get("token") if conn.scope["type"] == "websocket" else None
    return token.encode("utf-8", "surrogatepass") if token else None


def caller_identity(conn: HTTPConnection) -> str:
    """Who a budget belongs to: the authenticated key, else the (checked) bearer token's
    hash, else the client address. A token is only trusted once the gateway checks tokens:
    without keys anyone could send a new made-up token with each request for a fresh budget."""
    principal = getattr(conn.state, "principal", None)
    key_id = getattr(principal, "key_id", None)
    if key_id:
        return f"key:{key_id}"
    services = getattr(conn.app.state, "services", None)
    token = _token(conn) if services is not None and services.settings.tokens else None
    if token:
        return "token:" + hashlib.sha256(token).hexdigest()[:32]
    return f"addr:{conn.client.host if conn.client else 'unknown'}"


def _kind(request: Request) -> Kind:
    route = request.scope.get("route")
    return "submit" if (request.method, getattr(route, "path", "")) in SUBMIT_ROUTES else "read"


def _refusal(verdict: Verdict) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"{verdict.kind} rate limit exceeded ({verdict.item}); retry in {verdict.reset_s} s",
        {"limit": verdict.kind, "rate": str(verdict.item), "retry_after_s": verdict.reset_s},
        headers={"Retry-After": str(verdict.reset_s)},
    )


async def rate_limited(request: Request) -> None:
    """Count the request against its caller's submit or read budget; 429 past it."""
    limits = _limits(request)
    if limits is None:
        return
    verdict = await limits.rates.hit(_kind(request), caller_identity(request))
    if verdict is None:
        return
    setattr(request.state, _HEADERS_STATE, verdict.headers())
    if not verdict.allowed:
        raise _refusal(verdict)


async def admit_socket(websocket: WebSocket) -> bool:
    """For an accepted, authorised WebSocket: count it against the read budget and the cap
    of open sockets; close it with 1008 (and say why) when either is spent."""
    limits = _limits(websocket)
    if limits is None:
        return True
    identity = caller_identity(websocket)
    verdict = await limits.rates.hit("read", identity)
    if verdict is not None and not verdict.allowed:
        await websocket.close(code=CLOSE_POLICY, reason=_refusal(verdict).message[:120])
        return False
    slot = await limits.sockets.acquire(identity)
    if slot is None:
        cap = limits.sockets.cap
        await websocket.close(code=CLOSE_POLICY, reason=f"too many open WebSockets: at most {cap} per key")
        return False
    setattr(websocket.state, _SLOT_STATE, slot)
    return True


class LimitHeaders:
    """Adds the rate-limit headers a request earned to its response; frees a WebSocket's slot at its end."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                slot = (scope.get("state") or {}).get(_SLOT_STATE)
                if isinstance(slot, SocketSlot):
                    await slot.release()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = (scope.get("state") or {}).get(_HEADERS_STATE)
                if extra:
                    known = {name.lower() for name, _ in message.get("headers", [])}
                    added = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                    message["headers"] = [*message.get("headers", []), *(h for h in added if h[0] not in known)]
            await send(message)

        await self.app(scope, receive, send_with_headers)
