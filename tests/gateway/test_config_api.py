"""The configs API in-process (httpx.ASGITransport, the app's real lifespan): validation never 500s,
stays bounded and off the event loop; status and readiness tell the truth."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings

AGENTS = "agents:\n  writer:\n    role: Writer\n    goal: Write\n    backstory: Clear\n"
CREWS = (
    "crews:\n  note:\n    steps:\n      - name: write\n        agent: writer\n"
    "        description: Write a note\n        expected_output: A note\n"
)


def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "configs"
    directory.mkdir()
    (directory / "agents.yaml").write_text(AGENTS)
    (directory / "crews.yaml").write_text(CREWS)
    return directory


@contextlib.asynccontextmanager
async def client_for(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    values: dict[str, Any] = {
        "config_dir": config_dir(tmp_path),
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'crewgate.db'}",
        "allowed_roots": str(tmp_path),
        "reload": False,
        "run_tasks": False,
        **settings,
    }
    app = create_app(Settings(**values))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as client:
            yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(tmp_path) as c:
        yield c


def _raw(files: dict[str, str]) -> bytes:
    """JSON with \\u escapes kept as written, so lone surrogates reach the server as JSON allows."""
    return json.dumps({"files": files}).encode()


BOMB = "agents:\n  bomb:\n    role: R\n    goal: G\n    backstory: B\n" + "".join(
    f"    x{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9 if n else ['"lol"'] * 9) + "]\n" for n in range(9)
)

HOSTILE: dict[str, bytes] = {
    "deep-yaml": _raw({"agents.yaml": "agents:\n  a:\n    tools: " + "[" * 3000 + "]" * 3000}),
    "deep-block-yaml": _raw({"agents.yaml": "".join("  " * i + "- \n" for i in range(800))}),
    "file-and-dir": _raw({"a.yaml": AGENTS, "a.yaml/b.yaml": CREWS}),
    "long-name": _raw({"x" * 300 + ".yaml": AGENTS}),
    "long-dir-name": _raw({"d" * 300 + "/a.yaml": AGENTS}),
    "nul-name": _raw({"a\x00.yaml": AGENTS}),
    "nul-text": _raw({"agents.yaml": "agents:\n  a:\n    role: \x00\n"}),
    "surrogate-name": b'{"files": {"\\ud800.yaml": "agents: {}"}}',
    "surrogate-text": b'{"files": {"agents.yaml": "agents:\\n  a:\\n    role: \\udfff\\n"}}',
    "alias-bomb": _raw({"agents.yaml": BOMB}),
    "self-alias": _raw({"agents.yaml": "agents: &a\n  x: *a\n"}),
    "dotdot": _raw({"../../etc/passwd.yaml": AGENTS}),
    "not-a-string": b'{"files": {"agents.yaml": 5}}',
    "deep-json": b'{"files": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
async def test_validate_never_answers_500(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/v1/configs/validate", content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, response.text
    payload = response.json()
    if response.status_code == 200:
        assert payload["ok"] is False and payload["errors"], payload
        for error in payload["errors"]:
            assert {"file", "line", "column", "message"} <= set(error)
            assert error["line"] >= 1 and len(error["file"]) <= 120
    else:
        assert set(payload) == {"error"} and {"code", "message", "details"} <= set(payload["error"])
    assert (await client.get("/healthz")).status_code == 200


async def test_an_alias_bomb_is_refused_at_its_line_while_other_requests_are_served(
    client: httpx.AsyncClient,
) -> None:
    validating = asyncio.create_task(client.post("/v1/configs/validate", json={"files": {"agents.yaml": BOMB}}))
    for _ in range(5):  # the event loop is free while the worker validates
        assert (await client.get("/healthz")).status_code == 200
    response = await validating
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["file"] == "agents.yaml" and error["line"] == 11
    assert "expands to more than 200000 nodes" in error["message"]


async def test_submitted_files_are_validated_in_memory(client: httpx.AsyncClient, tmp_path: Path) -> None:
    before = set(Path("/tmp").glob("crewgate-config-*"))
    ok = await client.post("/v1/configs/validate", json={"files": {"agents.yaml": AGENTS, "crews/n.yaml": CREWS}})
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["version"]
    assert set(Path("/tmp").glob("crewgate-config-*")) == before  # no temp directory was written

    typo = await client.post(
        "/v1/configs/validate", json={"files": {"agents.yaml": AGENTS.replace("backstory", "backstroy")}}
    )
    messages = [e["message"] for e in typo.json()["errors"]]
    assert "unknown field 'backstroy'; did you mean 'backstory'?" in messages

    current = await client.post("/v1/configs/validate")
    assert current.json()["ok"] is True
    assert current.json()["version"] == (await client.get("/v1/configs/status")).json()["active"]["version"]


async def test_validation_over_its_time_budget_is_a_503_and_the_next_one_works(tmp_path: Path) -> None:
    async with client_for(tmp_path, config_validate_timeout_s=0.001) as client:
        slow = await client.post("/v1/configs/validate", json={"files": {"agents.yaml": AGENTS}})
        assert slow.status_code == 503
        assert slow.json()["error"]["code"] == "validation_timeout"
        assert (await client.get("/healthz")).status_code == 200


async def test_status_over_http_names_no_server_paths(client: httpx.AsyncClient, tmp_path: Path) -> None:
    response = await client.get("/v1/configs/status")
    assert response.status_code == 200
    status = response.json()
    assert status["directory"] == "configs"
    assert status["current"]["state"] == "valid"
    assert status["active"]["files"] == ["agents.yaml", "crews.yaml"]
    assert status["history"][0]["outcome"] == "loaded"
    assert status["watcher"] == {"state": "off", "watching": False, "restarts": 0, "last_error": None}
    assert str(tmp_path) not in response.text


async def test_readiness_follows_the_config_watcher(tmp_path: Path) -> None:
    async with client_for(tmp_path, reload=True) as client:
        directory = tmp_path / "configs"

        async def ready() -> int:
            return (await client.get("/readyz")).status_code

        assert await ready() == 200
        directory.rename(tmp_path / "aside")
        for _ in range(600):  # the watcher notices within its 5 s tick
            if await ready() == 503:
                break
            await asyncio.sleep(0.05)
        body = (await client.get("/readyz")).json()
        assert body["error"]["code"] == "not_ready" and "watcher" in body["error"]["message"]
        assert (await client.get("/v1/configs/status")).json()["watcher"]["watching"] is False

        (tmp_path / "aside").rename(directory)
        for _ in range(600):
            if await ready() == 200:
                break
            await asyncio.sleep(0.05)
        assert await ready() == 200
        assert (await client.get("/v1/configs/status")).json()["watcher"]["watching"] is True
