"""``POST /v1/auth/token``: OAuth2 client credentials, a key traded for a short-lived JWT;
``GET /v1/auth/me``: who the caller is and what its token may do."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from urllib.parse import parse_qs, unquote

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from gateway.api.boundary import refuse_unstorable_text
from gateway.api.deps import authenticate, authenticator
from gateway.api.errors import ApiError
from gateway.api.ratelimit import rate_limited
from gateway.auth import ADMIN, SCOPES, AuthError, Principal, Via

router = APIRouter(prefix="/v1/auth", tags=["auth"])

FIELDS = ("grant_type", "client_id", "client_secret", "scope")
_FORM = "application/x-www-form-urlencoded"


class TokenResponse(BaseModel):
    access_token: str = Field(description="a JWT (HS256); send it as `Authorization: Bearer …`")
    token_type: str = Field(description="always `bearer`", examples=["bearer"])
    expires_in: int = Field(description="seconds it stays valid (CREWGATE_JWT_TTL_S)")
    scope: str = Field(description="the scopes it carries, space-separated", examples=["tasks:read events:read"])


class WhoAmI(BaseModel):
    auth: Via = Field(
        description="how the caller was admitted: `open` (no keys exist: anyone is admin), `key` (a stored "
        "API key), `env` (a key from CREWGATE_API_KEYS), `jwt` (a token from POST /v1/auth/token)"
    )
    key_id: str | None = Field(
        description="the key's id (for a JWT, the key it was traded from; `env:<hash prefix>` for an env key); "
        "null when open",
        examples=["3f9c0d1e2a4b5c6d"],
    )
    scopes: list[str] = Field(
        description="the scopes held, sorted; an admin holds every scope, so each is listed",
        examples=[["events:read", "tasks:read"]],
    )
    admin: bool = Field(description="whether the caller holds `admin` (every route)")


_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            _FORM: {
                "schema": {
                    "type": "object",
                    "required": ["grant_type"],
                    "properties": {
                        "grant_type": {"type": "string", "enum": ["client_credentials"]},
                        "client_id": {"type": "string", "description": "the key's id (cgk_<id>_…); or HTTP Basic"},
                        "client_secret": {"type": "string", "description": "the whole key; or HTTP Basic"},
                        "scope": {
                            "type": "string",
                            "description": "space-separated subset of the key's scopes (default: all of them): "
                            + ", ".join(SCOPES),
                        },
                    },
                }
            }
        },
    }
}


def _bad(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def _form(body: bytes, content_type: str) -> dict[str, str]:
    if content_type.split(";")[0].strip().lower() != _FORM:
        raise _bad("invalid_request", f"the body must be {_FORM}")
    try:
        text = body.decode("utf-8")
        pairs = parse_qs(text, keep_blank_values=True, max_num_fields=20, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise _bad("invalid_request", "the body is not a readable form") from None
    if any(len(values) > 1 for values in pairs.values()):
        raise _bad("invalid_request", "a form field is given more than once")
    return {name: values[0] for name, values in pairs.items() if name in FIELDS}


def _basic(header: str | None) -> tuple[str, str] | None:
    """HTTP Basic credentials (each part form-encoded, as RFC 6749 2.3.1 says), or None."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "invalid_client", "unreadable HTTP Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise ApiError(401, "invalid_client", "unreadable HTTP Basic credentials")
    return unquote(client_id), unquote(secret)


def _credentials(form: dict[str, str], basic: tuple[str, str] | None) -> tuple[str, str]:
    if basic is not None:
        if "client_secret" in form:
            raise _bad("invalid_request", "client credentials given both in the form and as HTTP Basic")
        return basic
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or not secret:
        raise ApiError(401, "invalid_client", "client_id and client_secret (or HTTP Basic) are required")
    return client_id, secret


@router.post(
    "/token",
    response_model=TokenResponse,
    openapi_extra=_BODY,
    responses={
        400: {
            "description": "not a client_credentials form, a scope the key does not hold, or no tokens are "
            "issued here (tokens_disabled: CREWGATE_JWT_SECRET is not set)"
        },
        401: {"description": "unknown client, wrong secret, or a revoked or expired key"},
    },
)
async def token(request: Request) -> TokenResponse:
    """OAuth2 client credentials: trade a key for a JWT with its scopes (or fewer), valid
    CREWGATE_JWT_TTL_S seconds. The JWT is refused as soon as its key is revoked (within 5 s)."""
    form = _form(await request.body(), request.headers.get("content-type", ""))
    client_id, secret = _credentials(form, _basic(request.headers.get("authorization")))
    if form.get("grant_type") != "client_credentials":
        raise _bad("unsupported_grant_type", "grant_type must be client_credentials")
    try:
        issued = await authenticator(request.app).issue(client_id, secret, form.get("scope"))
    except AuthError as e:
        headers = {"WWW-Authenticate": 'Basic realm="crewgate"'} if e.status == 401 else None
        raise ApiError(e.status, e.code, e.message, headers=headers) from None
    return TokenResponse(**issued)


# authenticated and counted like every other read, but no scope: any valid token may ask who it is
_ANY_TOKEN = [Depends(authenticate), Depends(rate_limited), Depends(refuse_unstorable_text)]


@router.get("/me", response_model=WhoAmI, dependencies=_ANY_TOKEN)
async def me(principal: Annotated[Principal, Depends(authenticate)]) -> WhoAmI:
    """Who the caller is and which scopes its token carries, so a client can hide what it may not do.
    Needs a valid token (any scope) once keys exist; open, it answers `auth: open` with admin."""
    admin = ADMIN in principal.scopes
    scopes = SCOPES if admin else principal.scopes
    return WhoAmI(auth=principal.via, key_id=principal.key_id, scopes=sorted(scopes), admin=admin)
