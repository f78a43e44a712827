"""A step's declared output shape against a real model client: CrewAI's OpenAI-compatible
client talking to a scripted server on 127.0.0.1, and the crew's schema shown by the API."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.catalog import load_catalog
from agents.events import EventDraft
from gateway.execution import TaskOutcome, execute_task
from tests.support.llm_server import ScriptedModel, ScriptedServer, text

CONFIG = """\
agents:
  helper:
    role: Helper
    goal: Answer in the declared shape
    backstory: Precise
    model: scripted
    max_iter: 3
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
        output_retries: {retries}
        output_schema:
          type: object
          required: [verdict, confidence]
          additionalProperties: false
          properties:
            verdict: {{type: string}}
            confidence: {{enum: [high, medium, low, none]}}
models:
  profiles:
    scripted:
      model: openai/scripted-model
      base_url: {base_url}
      api_key_env: SCRIPTED_KEY
      timeout: 5
      max_retries: 0
"""
GOOD = {"verdict": "the cache pool is exhausted", "confidence": "medium"}
BAD = {"verdict": "the cache pool is exhausted", "confidence": "very"}


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    scripted = ScriptedModel()
    with ScriptedServer(scripted) as server:
        scripted.base_url = server.base_url  # type: ignore[attr-defined]
        yield scripted


def _config(tmp_path: Path, model: ScriptedModel, retries: int = 1) -> Path:
    config = tmp_path / "configs"
    config.mkdir(exist_ok=True)
    body = textwrap.dedent(CONFIG).format(base_url=model.base_url, retries=retries)  # type: ignore[attr-defined]
    (config / "all.yaml").write_text(body)
    return config


def run(tmp_path: Path, model: ScriptedModel, retries: int = 1) -> tuple[TaskOutcome, list[EventDraft]]:
    catalog = load_catalog(_config(tmp_path, model, retries))
    drafts: list[EventDraft] = []
    outcome = execute_task(
        "t-1",
        catalog,
        "ask",
        {"question": "why is checkout slow?"},
        publish=drafts.append,
        roots=[tmp_path],
        env={"SCRIPTED_KEY": "k"},
    )
    return outcome, drafts


def test_a_bad_shape_is_asked_again_and_the_good_one_is_the_output(tmp_path: Path, model: ScriptedModel) -> None:
    model.script = [
        text("The cache pool is exhausted. I am fairly sure."),  # no JSON at all
        text("The cache pool is exhausted.\n\n```json\n" + json.dumps(GOOD) + "\n```\n"),
    ]
    outcome, drafts = run(tmp_path, model)
    assert outcome.status == "completed", outcome.error
    assert outcome.output == GOOD
    assert outcome.result is not None and "```json" not in outcome.result  # the report keeps the prose only
    assert "cache pool is exhausted" in outcome.result
    # the model was told the shape, and on the second request why its first answer was refused
    first = json.dumps(model.requests[0]["messages"])
    assert "JSON Schema" in first and "confidence" in first
    second = json.dumps(model.requests[1]["messages"])
    assert "does not have the required shape" in second
    assert drafts[-1].type.value == "task.completed"


def test_a_shape_that_stays_bad_fails_the_task_with_bad_output(tmp_path: Path, model: ScriptedModel) -> None:
    model.script = [text(json.dumps(BAD)), text(json.dumps(BAD)), text(json.dumps(BAD))]
    outcome, drafts = run(tmp_path, model, retries=1)
    assert outcome.status == "failed"
    assert outcome.error_code == "bad_output"
    assert outcome.error is not None
    assert "step 'answer'" in outcome.error and "confidence" in outcome.error and "'very'" in outcome.error
    assert outcome.output is None
    assert len(model.requests) == 2  # the first answer and one retry, no more
    failed = drafts[-1]
    assert failed.type.value == "task.failed" and failed.data["code"] == "bad_output"


def test_a_whole_json_answer_is_accepted(tmp_path: Path, model: ScriptedModel) -> None:
    model.script = [text(json.dumps(GOOD))]
    outcome, _ = run(tmp_path, model, retries=0)
    assert outcome.status == "completed", outcome.error
    assert outcome.output == GOOD


async def test_get_crew_shows_each_step_output_schema(tmp_path: Path, model: ScriptedModel) -> None:
    from gateway.app import create_app
    from gateway.settings import Settings

    config = _config(tmp_path, model)
    settings = Settings(
        config_dir=config,
        allowed_roots=str(tmp_path),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        run_tasks=False,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            crew: dict[str, Any] = (await client.get("/v1/crews/ask")).json()
    step = crew["steps"][0]
    assert step["output_schema"]["required"] == ["verdict", "confidence"]
    assert step["output_schema"]["properties"]["confidence"] == {"enum": ["high", "medium", "low", "none"]}


async def test_the_shipped_triage_crew_shows_triage_findings(tmp_path: Path) -> None:
    from gateway.app import create_app
    from gateway.settings import Settings

    settings = Settings(
        allowed_roots=str(tmp_path), database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", run_tasks=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            crew = (await client.get("/v1/crews/incident_triage")).json()
    steps = {s["name"]: s for s in crew["steps"]}
    assert steps["analyze_logs"]["output_schema"] is None
    schema = steps["write_report"]["output_schema"]
    assert schema["title"] == "TriageFindings"
    assert {"confidence", "cause_in_repo", "next_action"} <= set(schema["required"])
    assert {"suspect", "candidates", "examined", "deploy", "ruled_out"} <= set(schema["properties"])
