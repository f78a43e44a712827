"""``crewgate keys``: keys are created on the database a gateway serves, stored hashed, shown
once, listed without secrets and revoked; the first key turns a gateway's open API off."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.gateway import PROJECT, Gateway, wait_for, write_configs


def keys_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREWGATE_DATABASE_URL": db_url, "CREWGATE_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "keys", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def create_key(db_url: str, name: str, scopes: str, *extra: str) -> str:
    done = keys_cli(db_url, "create", "--name", name, "--scopes", scopes, *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def opened(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    """A gateway with no keys anywhere: open, until a key is created on its database."""
    work: Path = tmp_path_factory.mktemp("keys-open")
    gw = Gateway(work, config_dir=write_configs(work / "configs"), roots=incident["root"], run_tasks="false").start()
    yield gw
    gw.stop()


def test_create_prints_the_key_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    url = f"sqlite+aiosqlite:///{db}"
    done = keys_cli(url, "create", "--name", "dashboard", "--scopes", "tasks:read,events:read", "--expires", "30d")
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("cgk_") and len(key.split("_", 2)[2]) == 43
    assert "cannot be shown again" in done.stderr
    key_id, secret = key.split("_", 2)[1:]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
        (row,) = conn.execute("SELECT id, name, prefix, hash, scopes, expires_at FROM api_keys").fetchall()
    assert all(secret not in str(value) for value in rows[0])  # nowhere in the row, in any column
    assert row[:4] == (key_id, "dashboard", f"cgk_{key_id}", hashlib.sha256(key.encode()).hexdigest())
    assert row[4] == '["events:read", "tasks:read"]' and row[5] is not None
    listed = keys_cli(url, "list")
    assert listed.returncode == 0
    assert key_id in listed.stdout and "dashboard" in listed.stdout and "events:read,tasks:read" in listed.stdout
    assert secret not in listed.stdout


def test_bad_arguments_exit_2_and_name_the_valid_scopes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    unknown = keys_cli(url, "create", "--name", "x", "--scopes", "tasks:read,tasks:delete")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "tasks:delete" in unknown.stderr and "configs:read" in unknown.stderr and "admin" in unknown.stderr
    assert keys_cli(url, "create", "--name", "x", "--scopes", "admin", "--expires", "yesterday").returncode == 2
    assert keys_cli(url, "create", "--name", "x", "--scopes", "admin", "--expires", "2001-01-01").returncode == 2
    assert keys_cli(url, "revoke", "0123456789abcdef").returncode == 2
    assert "0123456789abcdef" not in keys_cli(url, "list").stdout  # nothing was created by the refusals


def test_the_first_key_turns_auth_on_and_revoking_it_does_not_turn_it_off(opened: Gateway) -> None:
    url = opened.env["CREWGATE_DATABASE_URL"]
    with opened.client() as c:
        assert c.get("/v1/tasks").status_code == 200  # open: no key anywhere
        everything = ["admin", "configs:read", "events:read", "input:write", "tasks:read", "tasks:write"]
        assert c.get("/v1/auth/me").json() == {"auth": "open", "key_id": None, "scopes": everything, "admin": True}
        key = create_key(url, "first", "tasks:read")
        refused = wait_for(lambda: (r := c.get("/v1/tasks")).status_code == 401 and r)  # within the cache period
        assert refused.headers["www-authenticate"] == "Bearer"
        assert c.get("/v1/auth/me").json()["error"]["code"] == "unauthorized"
        assert c.get("/v1/tasks", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        me = c.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"}).json()
        assert me == {"auth": "key", "key_id": key.split("_")[1], "scopes": ["tasks:read"], "admin": False}
        listed = keys_cli(url, "list").stdout
        assert "first" in listed and "-" in listed
        key_id = key.split("_")[1]
        revoked = keys_cli(url, "revoke", key_id)
        assert revoked.returncode == 0 and f"revoked key {key_id}" in revoked.stdout
        wait_for(lambda: c.get("/v1/tasks", headers={"Authorization": f"Bearer {key}"}).status_code == 401)
        assert c.get("/v1/tasks").status_code == 401  # still closed: revoking every key does not open the API
        # no CREWGATE_JWT_SECRET on this gateway: it refuses to issue tokens and says why
        other = create_key(url, "second", "tasks:read")
        token = c.post(
            "/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": other.split("_")[1], "client_secret": other},
        )
        assert token.status_code == 400 and token.json()["error"]["code"] == "tokens_disabled"
        assert "CREWGATE_JWT_SECRET" in token.json()["error"]["message"]


def test_a_key_past_its_expiry_is_refused_and_its_use_is_noted(opened: Gateway) -> None:
    url = opened.env["CREWGATE_DATABASE_URL"]
    key = create_key(url, "brief", "tasks:read", "--expires", "5s")
    with httpx.Client(base_url=opened.url, headers={"Authorization": f"Bearer {key}"}) as c:
        first = c.get("/v1/tasks")
        if first.status_code == 200:  # the key may already have expired on a slow machine
            assert key.split("_")[1] in keys_cli(url, "list").stdout
        expired = wait_for(lambda: (r := c.get("/v1/tasks")).status_code == 401 and r, timeout=30)
        assert expired.json()["error"]["message"] == "the key expired"
    db = Path(url.split("///", 1)[1])
    with sqlite3.connect(db) as conn:
        used = conn.execute("SELECT last_used_at FROM api_keys WHERE id = ?", (key.split("_")[1],)).fetchone()
    assert (used[0] is not None) == (first.status_code == 200)
