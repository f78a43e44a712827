"""Scopes on every route and stream, JWTs from /v1/auth/token, revocation, against a real gateway."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gateway.auth import env_key_id
from tests.gateway.test_keys import create_key, keys_cli
from tests.support.gateway import Gateway, wait_for, write_configs

ENV_KEY = "env-admin-key"
SECRET = "test-jwt-secret-0123456789abcdef-0123456789"
ALL_SCOPES = {"tasks:read", "tasks:write", "events:read", "input:write", "configs:read", "admin"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    work: Path = tmp_path_factory.mktemp("scopes")
    gateway = Gateway(
        work,
        config_dir=write_configs(work / "configs"),
        roots=incident["root"],
        api_keys=ENV_KEY,
        jwt_secret=SECRET,
        run_tasks="false",  # tasks stay queued: the subject is who may do what
    ).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def short_lived(gw: Gateway, tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    """A second gateway on the same database whose JWTs live one second."""
    work: Path = tmp_path_factory.mktemp("scopes-ttl")
    gateway = Gateway(
        work,
        config_dir=write_configs(work / "configs"),
        roots=incident["root"],
        jwt_secret=SECRET,
        jwt_ttl_s=1,
        run_tasks="false",
    )
    gateway.env["CREWGATE_DATABASE_URL"] = gw.env["CREWGATE_DATABASE_URL"]
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def task_id(gw: Gateway, incident: dict) -> str:
    d = incident["dir"]
    inputs = {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo"), "runbooks": str(d / "runbooks")}
    with gw.client() as c:
        r = c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": inputs}, headers=_bearer(ENV_KEY))
    assert r.status_code == 202, r.text  # an env key has full access
    return str(r.json()["id"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _key(gw: Gateway, scopes: str, name: str = "test") -> str:
    return create_key(gw.env["CREWGATE_DATABASE_URL"], name, scopes)


def _token(gw: Gateway, key: str, **form: str) -> httpx.Response:
    client_id = key.split("_")[1] if key.startswith("cgk_") else env_key_id(key)
    body = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": key, **form}
    with gw.client() as c:
        return c.post("/v1/auth/token", data=body)


def _ws_close(gw: Gateway, path: str, **headers: str) -> tuple[int | None, str, list[Any]]:
    """Connect, read until closed (or two frames); the close code and reason and the frames."""
    frames: list[Any] = []
    with connect(f"{gw.ws_url}{path}", open_timeout=10, additional_headers=headers) as ws:
        try:
            while len(frames) < 2:
                frames.append(json.loads(ws.recv(timeout=10)))
        except ConnectionClosed:
            pass
        except TimeoutError:
            return None, "", frames  # open and quiet: admitted
        return ws.close_code, ws.close_reason or "", frames


def _forbidden(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope" and scope in error["message"]
    assert error["details"]["missing"] == [scope]


def test_a_read_only_key_reads_but_cannot_submit_or_answer(gw: Gateway, task_id: str) -> None:
    key = _key(gw, "tasks:read")
    with httpx.Client(base_url=gw.url, headers=_bearer(key), timeout=30) as c:
        assert c.get("/v1/tasks").status_code == 200
        assert c.get(f"/v1/tasks/{task_id}").json()["id"] == task_id
        assert c.get(f"/v1/tasks/{task_id}/input").status_code == 200
        assert c.get("/v1/crews").status_code == 200 and c.get("/v1/agents").status_code == 200
        _forbidden(c.post("/v1/tasks", json={"crew": "incident_triage", "inputs": {}}), "tasks:write")
        _forbidden(c.post(f"/v1/tasks/{task_id}/cancel"), "tasks:write")
        _forbidden(c.post(f"/v1/tasks/{task_id}/input", json={"request_id": "r", "approve": True}), "input:write")
        _forbidden(c.get(f"/v1/tasks/{task_id}/events"), "events:read")
        _forbidden(c.get("/v1/configs/status"), "configs:read")
        assert c.get(f"/v1/tasks/{task_id}").json()["status"] == "queued"  # the refused cancel changed nothing
    code, reason, _ = _ws_close(gw, f"/v1/tasks/{task_id}/events?token={key}")
    assert code == 4403 and "events:read" in reason
    assert _ws_close(gw, "/v1/events", Authorization=f"Bearer {key}")[0] == 4403


def test_scoped_keys_get_what_their_scopes_grant(gw: Gateway, task_id: str) -> None:
    watcher = _key(gw, "events:read")
    code, _, frames = _ws_close(gw, f"/v1/tasks/{task_id}/events?token={watcher}")
    assert frames and frames[0]["type"] == "task.queued"
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        page = c.get(f"/v1/tasks/{task_id}/events", headers=_bearer(watcher))
        assert page.status_code == 200 and page.json()["data"][0]["seq"] == 1
        _forbidden(c.get("/v1/tasks", headers=_bearer(watcher)), "tasks:read")
        ops = _key(gw, "configs:read")
        assert c.get("/v1/configs/status", headers=_bearer(ops)).status_code == 200
        assert c.post("/v1/configs/validate", headers=_bearer(ops)).status_code == 200
        answerer = _key(gw, "input:write")
        unknown = c.post(
            f"/v1/tasks/{task_id}/input", json={"request_id": "r", "approve": True}, headers=_bearer(answerer)
        )
        assert unknown.status_code == 404  # past auth: the request does not exist
        admin = _key(gw, "admin")
        assert c.get("/v1/configs/status", headers=_bearer(admin)).status_code == 200
        assert (
            c.post(
                f"/v1/tasks/{task_id}/input", json={"request_id": "r", "approve": True}, headers=_bearer(admin)
            ).status_code
            == 404
        )


def test_env_keys_keep_full_access(gw: Gateway, task_id: str) -> None:
    with httpx.Client(base_url=gw.url, headers=_bearer(ENV_KEY), timeout=30) as c:
        for path in ("/v1/tasks", f"/v1/tasks/{task_id}/events", "/v1/configs/status", "/v1/crews"):
            assert c.get(path).status_code == 200, path
    assert _ws_close(gw, "/v1/events?after=0", Authorization=f"Bearer {ENV_KEY}")[2][0]["type"] == "task.queued"


def test_missing_or_wrong_tokens_are_401_on_every_route_and_4401_on_websockets(gw: Gateway, task_id: str) -> None:
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    fake_key = "cgk_0123456789abcdef_" + "A" * 43
    forged = jwt.encode(
        {"sub": "x", "scope": "admin", "iat": 0, "exp": 2**40, "jti": "j", "iss": "crewgate"}, "not-the-secret-" * 4
    )
    checked = 0
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        for path, item in doc["paths"].items():
            for method, operation in item.items():
                if not operation.get("security"):
                    continue
                url = path.replace("{task_id}", task_id).replace("{name}", "incident_triage")
                for headers in (
                    {},
                    _bearer("wrong"),
                    _bearer(fake_key),
                    _bearer(forged),
                    {"Authorization": "Basic eDp5"},
                ):
                    r = c.request(method, url, headers=headers, json={})
                    assert r.status_code == 401, (method, url, headers, r.text)
                    assert r.headers["www-authenticate"] == "Bearer" and r.json()["error"]["code"] == "unauthorized"
                    checked += 1
    assert checked >= 5 * 12
    for path in ("/v1/events", f"/v1/tasks/{task_id}/events"):
        for query in ("", "?token=wrong", f"?token={fake_key}", f"?token={forged}"):
            assert _ws_close(gw, f"{path}{query}")[0] == 4401, (path, query)


def test_revoked_key_is_refused_on_rest_sse_and_websocket_reconnect(gw: Gateway, task_id: str) -> None:
    key = _key(gw, "tasks:read,events:read", "to-revoke")
    with connect(f"{gw.ws_url}/v1/tasks/{task_id}/events?token={key}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "task.queued"  # open, and watching
        revoked = keys_cli(gw.env["CREWGATE_DATABASE_URL"], "revoke", key.split("_")[1])
        assert revoked.returncode == 0
        with httpx.Client(base_url=gw.url, headers=_bearer(key), timeout=30) as c:
            refused = wait_for(lambda: (r := c.get("/v1/tasks")).status_code == 401 and r, timeout=30)
            assert refused.json()["error"]["message"] == "the key was revoked"
            sse = c.get(f"/v1/tasks/{task_id}/events", headers={"Accept": "text/event-stream"})
            assert sse.status_code == 401
        # the watcher reconnects from where it was: refused
        code, reason, frames = _ws_close(gw, f"/v1/tasks/{task_id}/events?after=1&token={key}")
        assert (code, reason, frames) == (4401, "the key was revoked", [])


def test_a_jwt_from_the_token_endpoint_carries_the_keys_scopes(gw: Gateway, task_id: str) -> None:
    key = _key(gw, "tasks:read,events:read", "jwt-user")
    issued = _token(gw, key)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 900 and body["scope"] == "events:read tasks:read"
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], issuer="crewgate")
    assert claims["sub"] == key.split("_")[1] and claims["scope"] == body["scope"]
    assert claims["exp"] - claims["iat"] == 900 and claims["jti"]
    assert key not in body["access_token"]
    token = body["access_token"]
    with httpx.Client(base_url=gw.url, headers=_bearer(token), timeout=30) as c:
        assert c.get(f"/v1/tasks/{task_id}").status_code == 200
        _forbidden(c.post(f"/v1/tasks/{task_id}/cancel"), "tasks:write")
    assert _ws_close(gw, f"/v1/tasks/{task_id}/events?token={token}")[2][0]["seq"] == 1
    # fewer scopes on request; HTTP Basic instead of form fields
    basic = base64.b64encode(f"{key.split('_')[1]}:{key}".encode()).decode()
    with gw.client() as c:
        narrow = c.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials", "scope": "tasks:read"},
            headers={"Authorization": f"Basic {basic}"},
        )
    assert narrow.status_code == 200 and narrow.json()["scope"] == "tasks:read"
    with httpx.Client(base_url=gw.url, headers=_bearer(narrow.json()["access_token"]), timeout=30) as c:
        _forbidden(c.get(f"/v1/tasks/{task_id}/events"), "events:read")


def test_me_says_who_the_caller_is_and_which_scopes_it_holds(gw: Gateway) -> None:
    reader = _key(gw, "tasks:read events:read", "dashboard")
    reader_id = reader.split("_")[1]
    narrow = _token(gw, reader, scope="events:read").json()["access_token"]
    with gw.client() as c:
        assert c.get("/v1/auth/me", headers=_bearer(reader)).json() == {
            "auth": "key",
            "key_id": reader_id,
            "scopes": ["events:read", "tasks:read"],
            "admin": False,
        }
        assert c.get("/v1/auth/me", headers=_bearer(narrow)).json() == {
            "auth": "jwt",
            "key_id": reader_id,
            "scopes": ["events:read"],  # what the token holds, not all its key could have asked for
            "admin": False,
        }
        env = c.get("/v1/auth/me", headers=_bearer(ENV_KEY)).json()
        assert env == {"auth": "env", "key_id": env_key_id(ENV_KEY), "scopes": sorted(ALL_SCOPES), "admin": True}
        missing = c.get("/v1/auth/me")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["error"]["code"] == "unauthorized"
        assert keys_cli(gw.env["CREWGATE_DATABASE_URL"], "revoke", reader_id).returncode == 0
        for token in (reader, narrow):
            refused = wait_for(lambda t=token: (r := c.get("/v1/auth/me", headers=_bearer(t))).status_code == 401 and r)
            assert refused.json()["error"] == {
                "code": "unauthorized",
                "message": "the key was revoked",
                "details": None,
            }


def test_the_token_endpoint_refuses_what_it_should(gw: Gateway) -> None:
    key = _key(gw, "tasks:read")
    assert _token(gw, key, scope="tasks:write").json()["error"]["code"] == "invalid_scope"
    assert _token(gw, key, scope="tasks:nope").status_code == 400
    assert _token(gw, key, grant_type="password").json()["error"]["code"] == "unsupported_grant_type"
    assert _token(gw, key, client_id="0123456789abcdef").json()["error"]["code"] == "invalid_client"
    assert _token(gw, key[:-1] + ("B" if key[-1] != "B" else "C")).status_code == 401
    assert _token(gw, key, client_id=f"cgk_{key.split('_')[1]}").status_code == 200  # the prefix, as listed
    assert _token(gw, ENV_KEY, client_id="nope").status_code == 401
    env = _token(gw, ENV_KEY)  # an env key's client id: env:<sha256 prefix>, as `keys list` would not show
    assert env.status_code == 200 and env.json()["scope"] == "admin"
    with gw.client() as c:
        assert c.post("/v1/auth/token", json={"grant_type": "client_credentials"}).status_code == 400
        assert (
            c.post(
                "/v1/auth/token",
                content=b"grant_type=\xff",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ).status_code
            == 400
        )
        a_jwt = _token(gw, key).json()["access_token"]
        as_secret = {"grant_type": "client_credentials", "client_id": key.split("_")[1], "client_secret": a_jwt}
        assert c.post("/v1/auth/token", data=as_secret).status_code == 401  # a JWT does not buy another


def test_a_revoked_keys_jwt_is_refused(gw: Gateway) -> None:
    key = _key(gw, "tasks:read", "jwt-revoked")
    token = _token(gw, key).json()["access_token"]
    with httpx.Client(base_url=gw.url, headers=_bearer(token), timeout=30) as c:
        assert c.get("/v1/tasks").status_code == 200
        assert keys_cli(gw.env["CREWGATE_DATABASE_URL"], "revoke", key.split("_")[1]).returncode == 0
        refused = wait_for(lambda: (r := c.get("/v1/tasks")).status_code == 401 and r, timeout=30)
        assert refused.json()["error"]["message"] == "the key was revoked"
    assert _token(gw, key).status_code == 401


def test_a_jwt_expires(short_lived: Gateway) -> None:
    key = _key(short_lived, "tasks:read", "short")
    issued = _token(short_lived, key).json()
    assert issued["expires_in"] == 1
    token = issued["access_token"]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] - claims["iat"] == 1
    with httpx.Client(base_url=short_lived.url, headers=_bearer(token), timeout=30) as c:
        expired = wait_for(lambda: (r := c.get("/v1/tasks")).status_code == 401 and r, timeout=30)
    assert expired.json()["error"]["message"] == "the token expired"


def test_openapi_declares_both_schemes_and_each_routes_scope(gw: Gateway) -> None:
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    flow = schemes["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/auth/token" and set(flow["scopes"]) == ALL_SCOPES
    expected = {
        ("get", "/v1/tasks"): "tasks:read",
        ("post", "/v1/tasks"): "tasks:write",
        ("get", "/v1/tasks/{task_id}"): "tasks:read",
        ("post", "/v1/tasks/{task_id}/cancel"): "tasks:write",
        ("post", "/v1/tasks/{task_id}/retry"): "tasks:write",
        ("get", "/v1/tasks/{task_id}/events"): "events:read",
        ("get", "/v1/tasks/{task_id}/input"): "tasks:read",
        ("post", "/v1/tasks/{task_id}/input"): "input:write",
        ("get", "/v1/crews"): "tasks:read",
        ("get", "/v1/crews/{name}"): "tasks:read",
        ("get", "/v1/agents"): "tasks:read",
        ("get", "/v1/configs/status"): "configs:read",
        ("post", "/v1/configs/validate"): "configs:read",
        ("get", "/v1/tasks/{task_id}/webhooks"): "tasks:read",
        ("post", "/v1/hooks/alertmanager"): "tasks:write",
    }
    for (method, path), scope in expected.items():
        operation = doc["paths"][path][method]
        assert {"oauth2": [scope]} in operation["security"], (method, path)
        assert "401" in operation["responses"] and "403" in operation["responses"]
    me = doc["paths"]["/v1/auth/me"]["get"]
    assert {"bearer": []} in me["security"] and not any(req.get("oauth2") for req in me["security"])
    assert "401" in me["responses"] and "403" not in me["responses"]  # any valid token may ask
    secured = {(m, p) for p, item in doc["paths"].items() for m, op in item.items() if op.get("security")}
    assert secured == set(expected) | {("get", "/v1/auth/me")}  # every route but health and the token endpoint
    assert "requestBody" in doc["paths"]["/v1/auth/token"]["post"]
