"""Tests that need an outside service (PostgreSQL, Redis, Chromium...) skip or fail loudly.

``require_service(name, probe, how_to)`` is called from a fixture. The probe runs once per
session (per xdist worker) and returns ``None`` when the service answers, else a short reason.
When it is down the test is skipped, unless the service is required: ``CI`` is set (any
non-empty value but ``0``/``false``) or ``CREWGATE_TEST_REQUIRE`` lists it
(comma-separated, ``all`` for every service); then the test fails with the reason.

Loaded as a plugin from ``tests/conftest.py``: at the end of a run it prints one line per
missing service saying how many tests it skipped, why, and how to run them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Generator

import pytest

__all__ = ["ServiceUnavailable", "is_required", "require_service"]

_PROPERTY = "crewgate-missing-service"
_results: dict[str, str | None] = {}


# pytest.skip.Exception is the public name of the skip outcome, an attribute of a function: mypy
# cannot use that as a base class, though it is one at run time.
class ServiceUnavailable(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A skip that names the missing service, so the run can summarise it."""

    def __init__(self, service: str, summary: str) -> None:
        super().__init__(f"{service} unavailable: {summary}", allow_module_level=False)
        self.service = service
        self.summary = summary


def is_required(name: str) -> bool:
    """True when a missing ``name`` must fail the run instead of skipping its tests."""
    return _required_because(name) is not None


def _required_because(name: str) -> str | None:
    ci = os.environ.get("CI", "").strip().lower()
    if ci and ci not in ("0", "false"):
        return "CI is set"
    listed = {part.strip().lower() for part in os.environ.get("CREWGATE_TEST_REQUIRE", "").split(",")}
    if name.lower() in listed or "all" in listed:
        return "CREWGATE_TEST_REQUIRE lists it"
    return None


def require_service(name: str, probe: Callable[[], str | None], how_to: str) -> None:
    """Skip the calling test (or fail it, when required) unless ``probe`` finds ``name`` up.

    ``probe`` should be quick (a short connect timeout); it runs once per session.
    ``how_to`` tells a person how to make the service available to the tests.
    """
    if name not in _results:
        try:
            _results[name] = probe()
        except Exception as exc:  # a probe that blows up means the service is not usable
            _results[name] = f"probe failed: {exc!r}"
    reason = _results[name]
    if reason is None:
        return
    why = _required_because(name)
    if why is not None:
        pytest.fail(f"{name} is required ({why}) but unavailable: {reason}. To fix: {how_to}", pytrace=False)
    raise ServiceUnavailable(name, f"{reason}. To run them: {how_to}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    exc = call.excinfo.value if call.excinfo is not None else None
    if isinstance(exc, ServiceUnavailable):
        # a new list: the report shares item.user_properties otherwise; travels to the xdist controller
        report.user_properties = [*report.user_properties, (_PROPERTY, f"{exc.service}\n{exc.summary}")]
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts: Counter[str] = Counter()
    summaries: dict[str, str] = {}
    for report in terminalreporter.stats.get("skipped", []):
        for key, value in getattr(report, "user_properties", ()):
            if key == _PROPERTY:
                service, _, summary = str(value).partition("\n")
                counts[service] += 1
                summaries[service] = summary
    for service, count in sorted(counts.items()):
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"SKIPPED {count} {tests} that need {service}: {summaries[service]}", yellow=True, bold=True
        )
