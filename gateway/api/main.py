"""The v1 API: one small file that includes the routers."""

from typing import Any

from fastapi import APIRouter, Depends

from gateway.api.boundary import refuse_unstorable_text
from gateway.api.deps import require_token
from gateway.api.routes import configs, crews, events, health, hooks, input, tasks, webhooks

api_router = APIRouter()
api_router.include_router(health.router)
# the token first: a caller without one learns nothing about its request
protected = [Depends(require_token), Depends(refuse_unstorable_text)]
# what the text check can answer on every route it guards (the OpenAPI pass adds the shapes,
# and 401 to every route that declares the bearer scheme)
checked: dict[int | str, dict[str, Any]] = {
    422: {"description": "an unknown query parameter, or text that cannot be stored (NUL, unpaired surrogate)"},
}
api_router.include_router(tasks.router, dependencies=protected, responses=checked)
api_router.include_router(webhooks.router, dependencies=protected, responses=checked)
api_router.include_router(hooks.router, dependencies=protected, responses=checked)
api_router.include_router(input.router, dependencies=protected, responses=checked)
api_router.include_router(crews.router, dependencies=protected, responses=checked)
api_router.include_router(configs.router, dependencies=protected, responses=checked)
api_router.include_router(events.router)  # HTTP routes check below; WebSockets check in the handler
