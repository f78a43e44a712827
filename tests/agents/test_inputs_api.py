"""Over real HTTP: hostile or oversized crew inputs get a 422 naming the field, never a
500, and nothing is stored."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import Gateway, write_configs


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    work = tmp_path_factory.mktemp("gateway-inputs")
    gw = Gateway(work, config_dir=write_configs(work / "configs"), roots=incident["root"]).start()
    yield gw
    gw.stop()


def _post(gw: Gateway, inputs_json: str) -> tuple[int, dict]:
    """POST raw JSON (so lone surrogates can be sent as \\u escapes); returns (status, body)."""
    body = '{"crew": "incident_triage", "inputs": ' + inputs_json + "}"
    with gw.client() as c:
        before = len(c.get("/v1/tasks", params={"limit": 200}).json()["data"])
        response = c.post("/v1/tasks", content=body.encode(), headers={"content-type": "application/json"})
        after = len(c.get("/v1/tasks", params={"limit": 200}).json()["data"])
    assert after == before  # nothing was accepted
    return response.status_code, response.json()


def _inputs(incident: dict, **changes: str) -> str:
    d = incident["dir"]
    inputs = {"service": "checkout", "logs": str(d / "logs"), "repo": str(d / "repo")} | changes
    return json.dumps(inputs)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("logs", "~nosuchuser/x", "'~' is not expanded"),
        ("logs", "a" * 300 + "/app.log", "longer than 255 bytes"),
        ("repo", "/etc/shadow", "is outside the allowed roots"),
        ("repo", "python-binary", "does not exist under the allowed roots"),
        ("service", "x" * 900_000, "too long: 900,000 characters"),
    ],
)
def test_bad_inputs_are_a_422_naming_the_field(
    gateway: Gateway, incident: dict, field: str, value: str, needle: str
) -> None:
    if value == "python-binary":
        value = Path(sys.executable).name  # relative: must not be looked up in the server's directories
    status, body = _post(gateway, _inputs(incident, **{field: value}))
    assert status == 422
    details = {d["field"]: d["message"] for d in body["error"]["details"]}
    assert needle in details[f"inputs.{field}"]
    text = json.dumps(body)
    assert str(incident["root"]) not in text and str(Path(sys.executable).parent) not in text
    assert len(text) < 4000  # the rejected value is not echoed back whole


@pytest.mark.parametrize("field", ["logs", "service"])
def test_lone_surrogates_and_nul_are_a_422_not_a_500(gateway: Gateway, incident: dict, field: str) -> None:
    for escaped in ("\\ud800", "\\u0000"):
        inputs = _inputs(incident, **{field: "PLACEHOLDER"}).replace("PLACEHOLDER", f"logs{escaped}x")
        status, body = _post(gateway, inputs)
        assert status == 422, body
        assert f"inputs.{field}" in [d["field"] for d in body["error"]["details"]]
