"""Dependencies as ``Annotated`` aliases: a handler's signature says what it needs."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket

from agents.catalog import Catalog
from gateway.api.errors import ApiError
from gateway.configs import ConfigManager
from gateway.eventlog import EventLog
from gateway.runner import Runner
from gateway.settings import Settings
from gateway.store import Store

__all__ = [
    "ActiveCatalogDep",
    "ConfigsDep",
    "EventLogDep",
    "RunnerDep",
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
    runner: Runner
    events: EventLog


def _services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


# Dependencies are ``async def`` although they never await: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hop per dependency per request.


async def _store(request: Request) -> Store:
    return _services(request).store


async def _configs(request: Request) -> ConfigManager:
    return _services(request).configs


async def _runner(request: Request) -> Runner:
    return _services(request).runner


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
RunnerDep = Annotated[Runner, Depends(_runner)]
EventLogDep = Annotated[EventLog, Depends(_events)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ActiveCatalogDep = Annotated[Catalog, Depends(_active_catalog)]


def authorized(settings: Settings, header: str | None, token: str | None = None) -> bool:
    """No keys configured: open. Otherwise a bearer token (or ``?token=`` for WebSockets) must match one."""
    if not settings.tokens:
        return True
    given = token
    if header and header.lower().startswith("bearer "):
        given = header[7:].strip()
    if not given:
        return False
    return any(secrets.compare_digest(given, t) for t in settings.tokens)


async def require_token(request: Request) -> None:
    settings = _services(request).settings
    if not authorized(settings, request.headers.get("authorization")):
        raise ApiError(401, "unauthorized", "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def websocket_services(websocket: WebSocket) -> Services:
    return websocket.app.state.services  # type: ignore[no-any-return]
