"""Dependencies as ``Annotated`` aliases: a handler's signature says what it needs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agents.catalog import Catalog
from gateway.api.errors import ApiError
from gateway.configs import ConfigManager
from gateway.dispatch import Dispatcher
from gateway.eventlog import EventLog
from gateway.settings import Settings
from gateway.store import Store

__all__ = [
    "ActiveCatalogDep",
    "ConfigsDep",
    "DispatcherDep",
    "EventLogDep",
    "Services",
    "SettingsDep",
    "StoreDep",
    "authorized",
    "require_token",
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


# Declares the scheme in the OpenAPI document (the Authorize button of /docs); the check is ours.
bearer = HTTPBearer(
    scheme_name="bearer",
    description="an API key from CREWGATE_API_KEYS; WebSockets may pass it as ?token= instead",
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


def authorized(settings: Settings, header: str | None, token: str | None = None) -> bool:
    """No keys configured: open. Otherwise a bearer token (or ``?token=`` for WebSockets) must match one."""
    if not settings.tokens:
        return True
    given = _given(header, token)
    # every key is compared, so the time taken does not tell which one nearly matched
    matches = (
        [secrets.compare_digest(given, key.encode("utf-8", "surrogateescape")) for key in settings.tokens]
        if given
        else []
    )
    return any(matches)


async def require_token(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> None:
    settings = _services(request).settings
    if not authorized(settings, request.headers.get("authorization")):
        raise ApiError(401, "unauthorized", "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def websocket_services(websocket: WebSocket) -> Services:
    return websocket.app.state.services  # type: ignore[no-any-return]
