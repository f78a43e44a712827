"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.api.deps import ConfigsDep, StoreDep
from gateway.api.errors import error_body

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "store unreachable or not writable, no config loaded, or config watcher down"}},
)
async def readyz(store: StoreDep, configs: ConfigsDep) -> JSONResponse:
    """Ready only when the store answers and takes writes, a config is loaded and the
    config watcher (if on) is up.

    Writability costs nothing while writes succeed: after a failed write the store
    tries a small write here, and the first write that commits makes it ready again.
    """
    try:
        await store.ping()
    except Exception:
        return JSONResponse(error_body("not_ready", "the store does not answer"), status_code=503)
    try:
        await store.check_writable()
    except Exception as exc:
        details = {"reason": "store_unavailable", "error": str(exc)[:300]}
        return JSONResponse(error_body("not_ready", "the store cannot take writes", details), status_code=503)
    if configs.active is None:
        return JSONResponse(error_body("not_ready", "no config is loaded"), status_code=503)
    if not configs.reload_healthy:
        return JSONResponse(error_body("not_ready", "the config watcher is down; edits are not applied"), 503)
    return JSONResponse({"status": "ready", "config_version": configs.active.version})
