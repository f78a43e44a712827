"""The OpenAPI document as the server really behaves: one error shape, bearer auth, examples.

FastAPI documents a 422 shape of its own (``HTTPValidationError``) that this API never
sends, and knows nothing of the codes the app's middleware and handlers answer with
(401, 413, and the rest). The document is built once by FastAPI and then corrected here,
in one pass over every operation, so a new route is documented right without remembering to.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from gateway.settings import Settings

__all__ = ["BEARER", "ErrorResponse", "install_openapi"]

BEARER = "bearer"  # the security schemes' names in the document
OAUTH2 = "oauth2"


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: unauthorized, unknown_task, validation_error, …")
    message: str = Field(description="for people; may change")
    details: Any = Field(default=None, description="code-specific; for 422 a list of {field, message}")


class ErrorResponse(BaseModel):
    """Every error the API answers with, whatever the status."""

    error: ErrorDetail


def _example(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


# status -> (description, {example name: example body})
_ERRORS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "400": ("the body could not be read (not UTF-8, or not JSON)", {"bad_request": _example("bad_request", "…")}),
    "401": (
        "a valid bearer token (an API key or a JWT) is required; the API is open only while no key is "
        "configured (CREWGATE_API_KEYS) and none was ever created (`crewgate keys create`)",
        {"unauthorized": _example("unauthorized", "a valid bearer token is required")},
    ),
    "403": (
        "the token lacks a scope this route needs (details.missing names it)",
        {
            "insufficient_scope": _example(
                "insufficient_scope",
                "this needs the scope tasks:write",
                {"missing": ["tasks:write"], "held": ["tasks:read"]},
            )
        },
    ),
    "404": (
        "no such task or crew",
        {
            "unknown_task": _example("unknown_task", "no task with id '6f1c…'"),
            "unknown_crew": _example("unknown_crew", "unknown crew 'triage'", {"known": ["incident_triage"]}),
        },
    ),
    "409": (
        "the request conflicts with the task's state or an earlier request",
        {
            "idempotency_conflict": _example(
                "idempotency_conflict", "Idempotency-Key 'k1' was already used …", {"task_id": "6f1c…"}
            ),
            "task_finished": _example("task_finished", "task 6f1c… already ended (completed)"),
        },
    ),
    "413": (
        "the request body is larger than CREWGATE_MAX_REQUEST_BYTES",
        {"request_too_large": _example("request_too_large", "request body is larger than 1048576 bytes")},
    ),
    "422": (
        "invalid request: each entry of details names a field",
        {
            "validation_error": _example(
                "validation_error",
                "invalid request: inputs.service",
                [{"field": "inputs.service", "message": "text holds an unpaired surrogate (U+D800)"}],
            ),
            "invalid_inputs": _example(
                "invalid_inputs",
                "invalid inputs: service: required",
                [{"field": "inputs.service", "message": "required"}],
            ),
        },
    ),
    "429": (
        "the caller's rate limit is spent: retry after Retry-After seconds",
        {
            "rate_limited": _example(
                "rate_limited",
                "submit rate limit exceeded (60 per 1 minute); retry in 12 s",
                {"limit": "submit", "rate": "60 per 1 minute", "retry_after_s": 12},
            )
        },
    ),
    "503": ("no config is loaded, or the store does not answer", {"not_ready": _example("not_ready", "…")}),
}
_DEFAULT = ("any other error", {"internal": _example("internal", "internal server error")})
_REF = {"$ref": "#/components/schemas/ErrorResponse"}


def _error_response(description: str, examples: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {
                "schema": _REF,
                "examples": {name: {"value": value} for name, value in examples.items()},
            }
        },
    }


def _scopes_on_oauth2_only(security: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """FastAPI puts the route's scopes on every scheme; only OAuth2 has scopes (OpenAPI 3.0
    says a bearer requirement's list is empty), so the bearer one is ``[]``."""
    return [{name: scopes if name == OAUTH2 else [] for name, scopes in req.items()} for req in security]


def _fix_operation(operation: dict[str, Any], *, open_access: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("security"):
        operation["security"] = _scopes_on_oauth2_only(operation["security"])
    wanted = {code for code in responses if code in _ERRORS}
    if "requestBody" in operation:
        wanted |= {"400", "413", "422"}
    if operation.get("security"):
        wanted.add("401")
        if any(req.get(OAUTH2) for req in operation["security"]):  # a scope to lack (not GET /v1/auth/me)
            wanted.add("403")
        if open_access and {} not in operation["security"]:
            operation["security"].append({})  # without keys a token is accepted but not needed
    for code in sorted(wanted):
        description, examples = _ERRORS[code]
        described = responses.get(code, {}).get("description")
        if described and described not in ("Validation Error", "Successful Response"):
            description = described  # the route's own words about when it answers this
        responses[code] = _error_response(description, examples)
    responses["default"] = _error_response(*_DEFAULT)


def build_openapi(app: FastAPI, settings: Settings) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.update(ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")["$defs"])
    schemas["ErrorResponse"] = {
        k: v
        for k, v in ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}").items()
        if k != "$defs"
    }
    for path_item in doc.get("paths", {}).values():
        for operation in path_item.values():
            _fix_operation(operation, open_access=not settings.tokens)
    return doc


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Serve the corrected document at /openapi.json (built on first request, then kept)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
