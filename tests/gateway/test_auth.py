"""With API keys configured, every /v1 route and stream requires one; health checks stay open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.gateway import Gateway, write_configs


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    work: Path = tmp_path_factory.mktemp("auth")
    gw = Gateway(
        work, config_dir=write_configs(work / "configs"), roots=incident["root"], api_keys="alpha-key,beta-key"
    ).start()
    yield gw
    gw.stop()


def test_rest_requires_a_valid_bearer_token(secured: Gateway) -> None:
    with httpx.Client(base_url=secured.url) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").status_code == 200
        missing = c.get("/v1/tasks")
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        assert c.get("/v1/tasks", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/v1/tasks", json={"crew": "incident_triage"}).status_code == 401
        assert c.get("/v1/tasks/x/events").status_code == 401
        ok = c.get("/v1/crews", headers={"Authorization": "Bearer beta-key"})
        assert ok.status_code == 200 and ok.json()[0]["name"] == "incident_triage"


def test_websockets_close_4401_without_a_token(secured: Gateway) -> None:
    for path in ("/v1/events", "/v1/tasks/x/events", "/v1/events?token=wrong"):
        with connect(f"{secured.ws_url}{path}", open_timeout=10) as ws:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=10)
            assert ws.close_code == 4401
    with connect(f"{secured.ws_url}/v1/tasks/x/events?token=alpha-key", open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4404  # authorised, and the task does not exist
