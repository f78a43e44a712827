"""Dependencies as ``Annotated`` aliases: a handler's signature says what it needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security, WebSocket
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2, SecurityScopes

from agents.catalog import Catalog
from gateway.api.errors import ApiError
from gateway.auth import SCOPES, Authenticator, AuthError, Principal
from gateway.configs import ConfigManager
from gateway.dispatch import Dispatcher
from gateway.eventlog import EventLog
from gateway.settings import Settings
from gateway.store import Store, StoreUnavailable, TaskRecord
from gateway.streaming import close_reason

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TRY_AGAIN = 1013

__all__ = [
    "ActiveCatalogDep",
    "ConfigsDep",
    "DispatcherDep",
    "EventLogDep",
    "Services",
    "SettingsDep",
    "StoreDep",
    "authenticate",
    "authenticator",
    "require_scopes",
    "require_token",
    "scoped",
    "task_or_404",
    "websocket_principal",
]


@dataclass
class Services:
    """Everything the app wires up in its lifespan; kept on ``app.state.services``."""

    settings: Settings
    store: Store
    configs: ConfigManager
    dispatcher: Dispatcher
    events: EventLog


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


# Dependencies are ``async def`` although they never await: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop per dependency per request.


async def _store(request: Request) -> Store:
    return _services(request).store


async def _configs(request: Request) -> ConfigManager:
    return _services(request).configs


async def _dispatcher(request: Request) -> Dispatcher:
    return _services(request).dispatcher


async def _events(request: Request) -> EventLog:
    return _services(request).events


async def _settings(request: Request) -> Settings:
    return _services(request).settings


async def _active_catalog(request: Request) -> Catalog:
    catalog = _services(request).configs.active
    if catalog is None:
        raise ApiError(503, "not_ready", "no config is loaded")
    return catalog


StoreDep = Annotated[Store, Depends(_store)]
ConfigsDep = Annotated[ConfigManager, Depends(_configs)]
DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]
EventLogDep = Annotated[EventLog, Depends(_events)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ActiveCatalogDep = Annotated[Catalog, Depends(_active_catalog)]


async def task_or_404(store: Store, task_id: str) -> TaskRecord:
    """The task, or the API's 404 ``unknown_task``."""
    record = await store.get_task(task_id)
    if record is None:
        raise ApiError(404, "unknown_task", f"no task with id '{task_id}'")
    return record


# Declare the schemes in the OpenAPI document (the Authorize button of /docs); the checks are ours.
bearer = HTTPBearer(
    scheme_name="bearer",
    description="an API key (`crewgate keys create`, or one of CREWGATE_API_KEYS) or a JWT from "
    "POST /v1/auth/token; WebSockets may pass it as ?token= instead",
    auto_error=False,
)
oauth2 = OAuth2(
    flows=OAuthFlows(clientCredentials=OAuthFlowClientCredentials(tokenUrl="/v1/auth/token", scopes=SCOPES)),
    scheme_name="oauth2",
    description="client credentials: client_id is the key's id (cgk_<id>_…), client_secret the whole key",
    auto_error=False,
)


def _given(header: str | None, token: str | None) -> bytes | None:
    """The presented token as bytes. Header values arrive decoded as latin-1 (byte for
    byte), query values as UTF-8 (invalid sequences replaced), so each is re-encoded to the
    bytes the client sent; ``secrets.compare_digest`` refuses non-ASCII ``str``."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip().encode("latin-1")
    if token:
        return token.encode("utf-8", "surrogatepass")
    return None


def authenticator(app: Any) -> Authenticator:
    """The process's authenticator, made on first use from the app's services."""
    found: Authenticator | None = getattr(app.state, "authenticator", None)
    if found is None:
        services: Services = app.state.services
        found = app.state.authenticator = Authenticator(services.settings, services.store)
    return found


def _refused(e: AuthError) -> ApiError:
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    return ApiError(e.status, e.code, e.message, headers=headers)


async def authenticate(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """Who the request is (401 when no valid token); kept on ``request.state.principal``."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None:
        return principal
    try:
        principal = await authenticator(request.app).authenticate(_given(request.headers.get("authorization"), None))
    except AuthError as e:
        raise _refused(e) from None
    request.state.principal = principal
    return principal


def insufficient(missing: list[str]) -> str:
    return f"this needs the scope {' and '.join(missing)}"


async def require_scopes(
    security_scopes: SecurityScopes,
    principal: Annotated[Principal, Depends(authenticate)],
    _oauth2: Annotated[str | None, Security(oauth2)],
) -> Principal:
    """403 ``insufficient_scope`` unless the principal holds every scope the route declares (or admin)."""
    missing = principal.missing(security_scopes.scopes)
    if missing:
        raise ApiError(
            403,
            "insufficient_scope",
            insufficient(missing),
            {"missing": missing, "held": sorted(principal.scopes)},
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{" ".join(missing)}"'},
        )
    return principal


def scoped(*scopes: str) -> Any:
    """A route's dependency: its token must carry these scopes."""
    return Security(require_scopes, scopes=list(scopes))


# kept for callers of the old name: authentication alone, no scope
require_token = authenticate


async def websocket_principal(websocket: WebSocket, token: str | None, scopes: list[str]) -> Principal | None:
    """Check an accepted WebSocket's token: closed 4401 (no valid token) or 4403 (a scope is missing)."""
    try:
        principal = await authenticator(websocket.app).authenticate(
            _given(websocket.headers.get("authorization"), token)
        )
    except AuthError as e:
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason=close_reason(e.message))
        return None
    except StoreUnavailable:  # the key cannot be looked up now: neither admitted nor refused for good
        await websocket.close(code=CLOSE_TRY_AGAIN, reason="the store is unavailable; try again")
        return None
    missing = principal.missing(scopes)
    if missing:
        await websocket.close(code=CLOSE_FORBIDDEN, reason=close_reason(f"insufficient_scope: {insufficient(missing)}"))
        return None
    websocket.state.principal = principal
    return principal


def websocket_services(websocket: WebSocket) -> Services:
    return websocket.app.state.services  # type: ignore[no-any-return]
