"""Every error leaves the API as ``{"error": {"code", "message", "details"}}``.

Handlers are installed centrally; routes raise ``ApiError`` (or let validation
fail) and never build error responses themselves. Internals never leak: an
unexpected exception is logged with its traceback and answered with a 500 that
says only that.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.store import StoreUnavailable
from gateway.streaming import CLOSE_BAD_REQUEST, close_reason

__all__ = ["ApiError", "error_body", "install_error_handlers"]

log = structlog.get_logger("crewgate.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}
STORE_RETRY_AFTER_S = 5  # a store outage's Retry-After: long enough for a database restart's first retry


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        super().__init__(message)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StoreUnavailable)
    async def _store_unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        # The store's write (or read) failed for want of the database: nothing was changed.
        log.warning("request refused: the store is unavailable", error=str(exc))
        return JSONResponse(
            error_body("store_unavailable", "the task store is unavailable; nothing was changed, try again later"),
            status_code=503,
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")} for e in exc.errors()]
        fields = ", ".join(d["field"] for d in details)
        return JSONResponse(error_body("validation_error", f"invalid request: {fields}", details), status_code=422)

    @app.exception_handler(WebSocketRequestValidationError)
    async def _ws_validation(websocket: WebSocket, exc: WebSocketRequestValidationError) -> None:
        # accepted first, so the client sees a close code and reason rather than a refused upgrade
        fields = ", ".join(_field(tuple(e.get("loc", ()))) for e in exc.errors())
        await websocket.accept()
        await websocket.close(code=CLOSE_BAD_REQUEST, reason=close_reason(f"invalid request: {fields}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal", "internal server error"), status_code=500)
