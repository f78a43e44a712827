"""The real-provider path: CrewAI's OpenAI-compatible client against a scripted server on 127.0.0.1."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.catalog import load_catalog
from agents.events import EventDraft
from gateway.execution import TaskOutcome, execute_task
from tests.support.llm_server import ScriptedModel, ScriptedServer, hang, status, text, tool_call

CONFIG = """\
agents:
  helper:
    role: Helper
    goal: Answer questions using the runbooks
    backstory: Knows where the runbooks are
    tools: [search_runbooks]
    model: scripted
    max_iter: 4
    max_retry_limit: 0
crews:
  ask:
    inputs:
      question: {{type: string}}
    steps:
      - name: answer
        agent: helper
        description: Answer {{question}}
        expected_output: An answer
models:
  profiles:
    scripted:
      model: openai/scripted-model
      base_url: {base_url}
      api_key_env: SCRIPTED_KEY
      timeout: {timeout}
      max_retries: 2
      stream: {stream}
"""


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    scripted = ScriptedModel()
    with ScriptedServer(scripted) as server:
        scripted.base_url = server.base_url  # type: ignore[attr-defined]
        yield scripted


@pytest.fixture
def runbooks(tmp_path: Path) -> Path:
    folder = tmp_path / "root" / "runbooks"
    folder.mkdir(parents=True)
    (folder / "cache-timeouts.md").write_text(
        "# Cache timeouts\n\n## Symptoms\n\nTimeout connecting to cache.\n\n## Fix\n\nRestart the cache pool.\n"
    )
    (folder / "deploys.md").write_text("# Deploys\n\n## Rollback\n\nRun the rollback job.\n")
    return folder


def run(
    tmp_path: Path, model: ScriptedModel, *, timeout: float = 5, stream: bool = False, env: dict[str, str] | None = None
) -> tuple[TaskOutcome, list[EventDraft]]:
    config = tmp_path / "configs"
    config.mkdir(exist_ok=True)
    (config / "all.yaml").write_text(
        textwrap.dedent(CONFIG).format(base_url=model.base_url, timeout=timeout, stream=str(stream).lower())
    )  # type: ignore[attr-defined]
    catalog = load_catalog(config)
    drafts: list[EventDraft] = []
    outcome = execute_task(
        "t-1",
        catalog,
        "ask",
        {"question": "why does the cache time out?"},
        publish=drafts.append,
        roots=[tmp_path / "root"],
        env={"SCRIPTED_KEY": "test-key"} if env is None else env,
    )
    return outcome, drafts


def types(drafts: list[EventDraft]) -> list[str]:
    return [str(d.type) for d in drafts]


def test_tool_call_round_trip(tmp_path: Path, model: ScriptedModel, runbooks: Path) -> None:
    model.script = [
        tool_call("search_runbooks", {"query": "cache timeout", "runbooks": str(runbooks)}),
        text("Restart the cache pool, per cache-timeouts.md."),
    ]
    outcome, drafts = run(tmp_path, model)

    assert outcome.status == "completed", outcome.error
    assert outcome.result == "Restart the cache pool, per cache-timeouts.md."
    assert len(model.requests) == 2
    assert model.headers[0]["authorization"] == "Bearer test-key"
    offered = [t["function"]["name"] for t in model.requests[0]["tools"]]
    assert offered == ["search_runbooks"]
    tool_messages = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    result = json.loads(tool_messages[0]["content"])
    assert result["tool"] == "search_runbooks"
    assert "cache-timeouts.md" in json.dumps(result["data"])
    assert types(drafts) == [
        "task.started",
        "step.started",
        "llm.started",
        "llm.completed",
        "tool.started",
        "tool.finished",
        "llm.started",
        "llm.completed",
        "step.completed",
        "task.completed",
    ]
    assert outcome.usage["total_tokens"] > 0


def test_rate_limit_and_server_error_are_retried(tmp_path: Path, model: ScriptedModel, runbooks: Path) -> None:
    model.script = [status(429, "slow down"), status(500, "overloaded"), text("All good.")]
    outcome, _ = run(tmp_path, model)
    assert outcome.status == "completed", outcome.error
    assert outcome.result == "All good."
    assert len(model.requests) == 3


def test_persistent_errors_fail_the_task_with_a_reason(tmp_path: Path, model: ScriptedModel, runbooks: Path) -> None:
    model.default = status(500, "upstream exploded")
    outcome, drafts = run(tmp_path, model)
    assert outcome.status == "failed"
    assert outcome.error_code == "model_error"
    assert "HTTP 500" in (outcome.error or "")
    assert types(drafts)[-1] == "task.failed"
    assert len(model.requests) == 3  # the first try and the profile's two retries


def test_a_hanging_model_times_out_into_a_clear_failure(tmp_path: Path, model: ScriptedModel, runbooks: Path) -> None:
    model.default = hang(30)
    outcome, drafts = run(tmp_path, model, timeout=0.5)
    assert outcome.status == "failed"
    assert outcome.error_code == "model_timeout"
    assert "did not answer in time" in (outcome.error or "")
    assert len(model.requests) == 3
    assert drafts[-1].data["code"] == "model_timeout"


def test_streaming_model_emits_chunks(tmp_path: Path, model: ScriptedModel, runbooks: Path) -> None:
    model.script = [text("Streaming answer about the cache pool.")]
    outcome, drafts = run(tmp_path, model, stream=True)
    assert outcome.status == "completed", outcome.error
    chunks = [d.data["chunk"] for d in drafts if str(d.type) == "llm.chunk"]
    assert len(chunks) > 1
    assert "".join(chunks) == "Streaming answer about the cache pool."


def test_missing_api_key_fails_before_any_request(tmp_path: Path, model: ScriptedModel, runbooks: Path) -> None:
    outcome, drafts = run(tmp_path, model, env={})
    assert outcome.status == "failed"
    assert outcome.error_code == "model_config"
    assert "SCRIPTED_KEY" in (outcome.error or "")
    assert model.requests == []
    assert types(drafts) == ["task.started", "task.failed"]
