"""The v1 API: one small file that includes the routers."""

from typing import Any

from fastapi import APIRouter, Depends

from gateway.api.boundary import refuse_unstorable_text
from gateway.api.deps import authenticate
from gateway.api.ratelimit import rate_limited
from gateway.api.routes import auth, configs, crews, events, health, hooks, input, tasks, webhooks

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(auth.router)  # open: it is where a key is traded for a token
# the token first: a caller without one learns nothing about its request (each route then checks its
# scopes); then its rate limit, counted only for callers whose token was good
protected = [Depends(authenticate), Depends(rate_limited), Depends(refuse_unstorable_text)]
# what the text check can answer on every route it guards (the OpenAPI pass adds the shapes,
# and 401 to every route that declares the bearer scheme)
checked: dict[int | str, dict[str, Any]] = {
    422: {"description": "an unknown query parameter, or text that cannot be stored (NUL, unpaired surrogate)"},
    429: {"description": "the caller's rate limit is spent (see Retry-After and the RateLimit-* headers)"},
}
api_router.include_router(tasks.router, dependencies=protected, responses=checked)
api_router.include_router(webhooks.router, dependencies=protected, responses=checked)
api_router.include_router(hooks.router, dependencies=protected, responses=checked)
api_router.include_router(input.router, dependencies=protected, responses=checked)
api_router.include_router(crews.router, dependencies=protected, responses=checked)
api_router.include_router(configs.router, dependencies=protected, responses=checked)
api_router.include_router(events.router)  # HTTP routes check below; WebSockets check in the handler
