"""API keys, scopes and JWTs: who a request is and what it may do.

A key is ``cgk_<id>_<secret>``: ``<id>`` finds its row, and the row holds only the SHA-256
of the whole key. The secret is 256 random bits, so a fast hash is the standard choice (a
slow password hash guards guessable secrets; nothing here is guessable), and the digest is
compared with ``hmac.compare_digest``. Keys from ``CREWGATE_API_KEYS`` are full-access
(scope ``admin``). ``POST /v1/auth/token`` trades a key for a short-lived HS256 JWT with
its scopes; each use of a JWT checks its key again (revoked or expired: refused).

Key rows are cached for at most ``CREWGATE_AUTH_CACHE_S`` (≤ 5 s): a revocation takes
effect on every replica within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
import structlog

from gateway.scopes import ADMIN, SCOPES
from gateway.settings import Settings
from gateway.store import ApiKeyRecord, Store, StoreUnavailable

__all__ = [
    "ADMIN",
    "SCOPES",
    "AuthError",
    "Authenticator",
    "Principal",
    "Via",
    "env_key_id",
    "key_hash",
    "new_key",
    "parse_expiry",
    "parse_scopes",
]

log = structlog.get_logger("crewgate.auth")

KEY_PREFIX = "cgk_"
_KEY = re.compile(r"^cgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
JWT_ISSUER = "crewgate"
TOUCH_EVERY_S = 60.0  # last_used_at is written at most this often per key

Via = Literal["open", "key", "env", "jwt"]  # how a principal was admitted


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: ``key_id`` is a stored key's id, ``env:<hash prefix>`` for a
    key from CREWGATE_API_KEYS, None only when the API is open (no keys at all)."""

    key_id: str | None
    scopes: frozenset[str]
    via: Via

    def missing(self, needed: list[str]) -> list[str]:
        if ADMIN in self.scopes:
            return []
        return [s for s in needed if s not in self.scopes]


class AuthError(Exception):
    """Refused: ``status`` and ``code`` for the API's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _unauthorized(message: str = "a valid bearer token is required") -> AuthError:
    return AuthError(401, "unauthorized", message)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def env_key_id(key: str) -> str:
    """A stable id for a key from CREWGATE_API_KEYS that does not reveal it."""
    return "env:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def parse_scopes(text: str) -> list[str]:
    """``a,b`` (or spaces) as a sorted list; ValueError naming the unknown ones and the valid list."""
    given = sorted({s for s in re.split(r"[,\s]+", text) if s})
    unknown = [s for s in given if s not in SCOPES]
    if unknown or not given:
        raise ValueError(f"unknown scopes: {', '.join(unknown) or '(none given)'}; valid: {', '.join(SCOPES)}")
    return given


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``45m`` from now, or an ISO 8601 time (UTC when it has no zone)."""
    units = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
    match = re.fullmatch(r"([1-9][0-9]{0,5})([dhms])", text.strip())
    if match:
        return now + timedelta(**{units[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--expires takes 30d, 12h, 45m or an ISO 8601 time, not {text!r}") from None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if when <= now:
        raise ValueError(f"--expires {text!r} is in the past")
    return when.astimezone(UTC)


def new_key(name: str, scopes: list[str], expires_at: datetime | None) -> tuple[str, ApiKeyRecord]:
    """A fresh key (shown once) and the record to store (which cannot give it back)."""
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"  # 32 bytes: 43 characters
    record = ApiKeyRecord(
        id=key_id,
        name=name,
        prefix=f"{KEY_PREFIX}{key_id}",
        hash=key_hash(key),
        scopes=scopes,
        created_at=datetime.now(UTC),
        expires_at=expires_at,
    )
    return key, record


def _usable(record: ApiKeyRecord | None) -> ApiKeyRecord:
    if record is None:
        raise _unauthorized("unknown key")
    if record.revoked_at is not None:
        raise _unauthorized("the key was revoked")
    if record.expires_at is not None and record.expires_at <= datetime.now(UTC):
        raise _unauthorized("the key expired")
    return record


class Authenticator:
    """One per process: checks tokens against CREWGATE_API_KEYS, the store's keys and JWTs."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._store = store
        self._ttl = settings.auth_cache_s
        self._jwt_secret = settings.jwt_secret
        self._jwt_ttl = settings.jwt_ttl_s
        self._env = [(t.encode("utf-8", "surrogateescape"), env_key_id(t)) for t in sorted(settings.tokens)]
        self._env_ids = {key_id for _, key_id in self._env}
        self._records: dict[str, tuple[float, ApiKeyRecord | None]] = {}
        self._touched: dict[str, float] = {}
        self._keys_exist = bool(self._env)
        self._open_checked = -1e9

    async def is_open(self) -> bool:
        """No key configured and none ever created. Once a key exists, auth stays on (revoking
        every key does not open the API again); the store is asked at most every cache period."""
        if self._keys_exist:
            return False
        now = time.monotonic()
        if now - self._open_checked >= self._ttl or self._ttl == 0:
            self._keys_exist = await self._store.any_keys()
            self._open_checked = now
        return not self._keys_exist

    async def authenticate(self, given: bytes | None) -> Principal:
        """The principal for a presented token; ``AuthError`` (401) when it is none of ours."""
        if await self.is_open():
            return Principal(None, frozenset({ADMIN}), "open")
        if not given:
            raise _unauthorized()
        env = self._env_match(given)
        if env is not None:
            return Principal(env, frozenset({ADMIN}), "env")
        try:
            token = given.decode("ascii")
        except UnicodeDecodeError:
            raise _unauthorized("invalid token") from None
        if token.startswith(KEY_PREFIX):
            record = await self._stored_key(token)
            return Principal(record.id, frozenset(record.scopes), "key")
        if token.count(".") == 2:
            return await self._jwt(token)
        raise _unauthorized("invalid token")

    def _env_match(self, given: bytes) -> str | None:
        # every key is compared, so the time taken does not tell which one nearly matched
        matches = [key_id for key, key_id in self._env if secrets.compare_digest(given, key)]
        return matches[0] if matches else None

    async def _stored_key(self, token: str) -> ApiKeyRecord:
        match = _KEY.match(token)
        if match is None:
            raise _unauthorized("invalid token")
        record = await self._record(match.group(1))
        if record is None or not hmac.compare_digest(record.hash, key_hash(token)):
            raise _unauthorized("invalid token")
        record = _usable(record)
        await self._touch(record.id)
        return record

    async def _record(self, key_id: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        cached = self._records.get(key_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        record = await self._store.get_key(key_id)
        if len(self._records) > 10_000:  # ids are attacker-chosen: keep the cache bounded
            self._records.clear()
        self._records[key_id] = (now, record)
        return record

    async def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        if now - self._touched.get(key_id, -1e9) < TOUCH_EVERY_S:
            return
        self._touched[key_id] = now
        try:
            await self._store.touch_key(key_id, every_s=TOUCH_EVERY_S)
        except StoreUnavailable as exc:  # a missed last_used_at is no reason to refuse the request
            log.warning("could not note a key's use", key_id=key_id, error=str(exc)[:200])

    async def _jwt(self, token: str) -> Principal:
        if not self._jwt_secret:
            raise _unauthorized("JWTs are not accepted here (CREWGATE_JWT_SECRET is not set)")
        try:
            claims = jwt.decode(
                token,
                self._jwt_secret,
                algorithms=["HS256"],
                issuer=JWT_ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token expired") from None
        except jwt.InvalidTokenError:
            raise _unauthorized("invalid token") from None
        sub, scope = claims.get("sub"), claims.get("scope")
        if not isinstance(sub, str) or not isinstance(scope, str):
            raise _unauthorized("invalid token")
        if sub.startswith("env:"):
            if sub not in self._env_ids:
                raise _unauthorized("the key was revoked")
        else:
            _usable(await self._record(sub))
        return Principal(sub, frozenset(s for s in scope.split() if s in SCOPES), "jwt")

    async def issue(self, client_id: str, client_secret: str, scope: str | None) -> dict[str, Any]:
        """OAuth2 client credentials: a JWT for a key (``client_id`` its id, ``client_secret`` the key).
        The client is checked first: without CREWGATE_JWT_SECRET, only a real key learns that
        no tokens are issued (400 ``tokens_disabled``, final: a retry cannot change it)."""
        principal = await self._client(client_id, client_secret)
        if not self._jwt_secret:
            raise AuthError(
                400,
                "tokens_disabled",
                "CREWGATE_JWT_SECRET is not set: tokens cannot be issued (a per-process secret would make "
                "them fail on other replicas); use the key itself as the bearer token, or set the secret",
            )
        granted = self._granted(principal, scope)
        now = int(time.time())
        claims = {
            "iss": JWT_ISSUER,
            "sub": principal.key_id,
            "scope": " ".join(granted),
            "iat": now,
            "exp": now + self._jwt_ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._jwt_secret, algorithm="HS256")
        return {"access_token": token, "token_type": "bearer", "expires_in": self._jwt_ttl, "scope": claims["scope"]}

    async def _client(self, client_id: str, client_secret: str) -> Principal:
        refused = AuthError(401, "invalid_client", "unknown client, or a wrong secret")
        if not client_secret or not client_secret.isascii():
            raise refused
        try:
            principal = await self.authenticate(client_secret.encode("ascii"))
        except AuthError as e:
            raise AuthError(401, "invalid_client", e.message) from None
        if principal.via not in ("key", "env") or principal.key_id != client_id.removeprefix(KEY_PREFIX):
            raise refused
        return principal

    @staticmethod
    def _granted(principal: Principal, scope: str | None) -> list[str]:
        if not scope or not scope.strip():
            return sorted(principal.scopes)
        try:
            wanted = parse_scopes(scope)
        except ValueError as e:
            raise AuthError(400, "invalid_scope", str(e)) from None
        missing = principal.missing(wanted)
        if missing:
            raise AuthError(400, "invalid_scope", f"the key does not hold: {', '.join(missing)}")
        return wanted
