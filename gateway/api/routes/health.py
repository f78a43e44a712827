"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.api.deps import ConfigsDep, DispatcherDep, EventLogDep, StoreDep
from gateway.api.errors import error_body
from gateway.dispatch import Dispatcher

router = APIRouter(tags=["health"])
BROKER_CHECK_S = 3.0  # a broker that does not answer this fast is taken as down


async def _broker_down(dispatcher: Dispatcher) -> str | None:
    """Why the dispatcher cannot hand out work now, or None when it can."""
    try:
        await asyncio.wait_for(dispatcher.check(), timeout=BROKER_CHECK_S)
    except TimeoutError:
        return f"the broker did not answer within {BROKER_CHECK_S:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={
        503: {
            "description": "store unreachable or not writable, no config loaded, config watcher down, "
            "or the dispatcher's broker unreachable"
        }
    },
)
async def readyz(store: StoreDep, configs: ConfigsDep, dispatcher: DispatcherDep, events: EventLogDep) -> JSONResponse:
    """Ready only when the store answers and takes writes, a config is loaded, the
    config watcher (if on) is up and the dispatcher can hand out work (its broker answers).

    Writability costs nothing while writes succeed: after a failed write the store
    tries a small write here, and the first write that commits makes it ready again.
    Wake-ups that are down do not make the gateway unready (streams stay correct on the
    poll); the body shows them with ``connected: false``.
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
    broker_error = await _broker_down(dispatcher)
    if broker_error is not None:
        why: dict[str, object] = {
            "reason": "broker_unavailable",
            "error": broker_error,
            "dispatcher": dispatcher.status(),
        }
        return JSONResponse(error_body("not_ready", "the broker does not answer", why), status_code=503)
    return JSONResponse(
        {
            "status": "ready",
            "config_version": configs.active.version,
            "dispatcher": dispatcher.status(),
            "wakeups": events.wakeups.status(),
        }
    )
