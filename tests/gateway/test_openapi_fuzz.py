"""Requests generated from /openapi.json, valid and invalid, pass every schemathesis check:
no server error, every status, content type, header and body as documented, auth enforced
as declared. With and without API keys, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from tests.support.gateway import Gateway, write_configs

KEY = "fuzz-key"
EXAMPLES = 5  # per operation and mode: the four gateways together stay around a minute
# A crew's inputs are checked against its declaration and the server's allowed roots, which
# the document cannot state: a task the schema allows may still be refused with 422 (documented).
CONFIG: dict[str, Any] = {
    "operations": [
        {
            "include-path": "/v1/tasks",
            "include-method": "POST",
            "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "404", "409", "422"]}},
        }
    ]
}


@pytest.fixture(scope="module", params=["sqlite-open", "sqlite-keys", "postgresql-open", "postgresql-keys"])
def fuzz_gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, incident: dict):
    database, access = request.param.split("-")
    extra: dict[str, Any] = {"run_tasks": "false"}  # the contract is the subject here, not crew runs
    if database == "postgresql":
        extra["database_url"] = request.getfixturevalue("pg_url")
    if access == "keys":
        extra["api_keys"] = KEY
    work = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    gw = Gateway(work, config_dir=write_configs(work / "configs"), roots=incident["root"], **extra).start()
    gw.keys = access == "keys"  # type: ignore[attr-defined]
    yield gw
    gw.stop()


def _fuzz(operation: Any, mode: GenerationMode, calls: dict[str, int]) -> Any:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(timeout=30)  # every check schemathesis has
        calls[operation.label] = calls.get(operation.label, 0) + 1

    return check


def test_generated_requests_pass_every_check(fuzz_gateway: Gateway) -> None:
    config = dict(CONFIG)
    if fuzz_gateway.keys:  # type: ignore[attr-defined]
        config["auth"] = {"openapi": {"bearer": {"bearer": KEY}}}  # the document's scheme; probes go without
    schema = schemathesis.openapi.from_url(
        f"{fuzz_gateway.url}/openapi.json", config=SchemathesisConfig.from_dict(config)
    )
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12  # every route in the schema is exercised
    calls: dict[str, int] = {}
    for operation in operations:
        _fuzz(operation, GenerationMode.POSITIVE, calls)()
        # Unsatisfiable: every value its parameters take is valid (a free-form id), nothing to make invalid
        with contextlib.suppress(Unsatisfiable):
            _fuzz(operation, GenerationMode.NEGATIVE, calls)()
    assert all(calls.get(op.label, 0) >= 1 for op in operations), calls
    assert sum(calls.values()) >= 4 * len(operations)
    assert "Traceback" not in fuzz_gateway.logs()
