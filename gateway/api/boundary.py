"""Text that cannot be stored or sent back is refused where it enters.

JSON allows ``"\\ud800"`` (half of a UTF-16 pair) and ``"\\u0000"``; Python decodes both
into ``str``. Such a string cannot be encoded as UTF-8, so a task that accepted one
answers every later read of it (and every stream past its events) with an error, and
PostgreSQL refuses NUL in text. Every JSON body, path, query and header value is checked
here, once, and refused with a 422 naming the field (``inputs.service``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from gateway.eventlog import UNSTORABLE

__all__ = ["refuse_unstorable_text", "text_problem", "unknown_query_parameters", "unstorable_fields"]

Loc = tuple[str | int, ...]


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "text holds a NUL character (U+0000)"
    return f"text holds an unpaired surrogate (U+{ord(char):04X}); send valid Unicode"


def _walk(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            yield loc, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key)
            if problem:
                yield (*loc, key.encode("utf-8", "backslashreplace").decode()), f"key: {problem}"
            else:
                yield from _walk(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index))


def unstorable_fields(conn: HTTPConnection) -> list[tuple[Loc, str]]:
    """Path, query and header values that cannot be stored, with where they were."""
    found: list[tuple[Loc, str]] = []
    for where, items in (
        ("path", list(conn.path_params.items())),
        ("query", conn.query_params.multi_items()),
        ("header", conn.headers.items()),
    ):
        for name, value in items:
            if isinstance(value, str):
                found.extend(((where, name), problem) for _, problem in _walk(value, ()))
    return found


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def unknown_query_parameters(request: Request) -> list[tuple[Loc, str]]:
    """Query parameters the route does not declare: refused, so a misspelt filter
    (``?stauts=failed``) is an error rather than silently a list of everything."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return []
    known = _query_names(route.dependant)  # a walk over a few dependencies: cheaper than a cache
    return [(("query", name), "unknown parameter") for name in request.query_params if name not in known]


async def _json_body(request: Request) -> Any:
    """The JSON body, parsed once: Starlette keeps what FastAPI parsed for the route's body."""
    content_type = request.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    if not await request.body() or not (content_type == "application/json" or content_type.endswith("+json")):
        return None
    try:
        return await request.json()
    except ValueError:
        return None  # FastAPI reports the malformed body with its position


async def refuse_unstorable_text(request: Request) -> None:
    """A dependency: 422 naming every field whose text cannot be stored, and every query
    parameter the route does not take."""
    found = unstorable_fields(request) + unknown_query_parameters(request)
    if request.method in ("POST", "PUT", "PATCH"):
        found.extend(_walk(await _json_body(request), ("body",)))
    if found:
        raise RequestValidationError(
            [{"type": "string_unstorable", "loc": loc, "msg": message, "input": None} for loc, message in found]
        )
