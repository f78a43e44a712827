"""Property-based requests generated from /openapi.json never produce a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.support.gateway import Gateway, write_configs


@pytest.fixture(scope="module")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory, incident: dict) -> Iterator[Gateway]:
    work = tmp_path_factory.mktemp("fuzz")
    gw = Gateway(work, config_dir=write_configs(work / "configs"), roots=incident["root"]).start()
    yield gw
    gw.stop()


def _fuzz(operation: Any, calls: dict[str, int]) -> Any:
    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[not_a_server_error], timeout=30)
        calls[operation.label] = calls.get(operation.label, 0) + 1

    return check


def test_no_server_errors(fuzz_gateway: Gateway) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_gateway.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12  # every route in the schema is exercised
    calls: dict[str, int] = {}
    for operation in operations:
        check = _fuzz(operation, calls)
        check()
    assert all(calls.get(op.label, 0) >= 1 for op in operations), calls
    assert sum(calls.values()) >= 100
    assert "Traceback" not in fuzz_gateway.logs()
