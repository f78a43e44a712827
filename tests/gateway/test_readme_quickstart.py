"""The README's quickstart request, sent as written, to a gateway set up as `make run` sets it up."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.gateway import Gateway, wait_for, write_configs

PROJECT = Path(__file__).resolve().parents[2]


def readme_submit_body() -> dict[str, Any]:
    readme = (PROJECT / "README.md").read_text()
    match = re.search(r"curl -s -X POST localhost:8000/v1/tasks .*? -d '(\{.*?\})'", readme, re.DOTALL)
    assert match, "the README's quickstart has no POST /v1/tasks example"
    body: dict[str, Any] = json.loads(match.group(1))
    return body


def test_the_quickstart_request_runs_the_example_triage(tmp_path: Path, incident: dict[str, Any]) -> None:
    # `make run` allows examples/, which holds the generated incident/ (here: the fixture's root)
    gw = Gateway(tmp_path, config_dir=write_configs(tmp_path / "configs"), roots=incident["root"]).start()
    try:
        with gw.client() as c:
            submitted = c.post("/v1/tasks", json=readme_submit_body())
            assert submitted.status_code == 202, submitted.text
            task_id = submitted.json()["id"]
            done = wait_for(lambda: (t := c.get(f"/v1/tasks/{task_id}").json())["status"] == "completed" and t)
    finally:
        gw.stop()
    expected = incident["expected"]
    assert done["output"]["suspect"]["sha"] == expected["culprit_sha"]
    assert done["result"].startswith("# checkout: KeyError: 'currency'")
