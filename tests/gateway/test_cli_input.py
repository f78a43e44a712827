"""Human input on the command line: ``crewgate run`` asking on a terminal, deciding by
``--on-input`` without one, and ``crewgate answer`` answering a task in a gateway."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.test_human_input import answer, ended, submit, waiting
from tests.support.gateway import Gateway, write_configs
from tests.support.small_incident import make_incident

PROJECT = Path(__file__).resolve().parents[2]
CREW = "incident_triage_reviewed"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_incident(tmp_path_factory.mktemp("cli-input"))


def reviewed_args(small: dict[str, Any], *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gateway.cli",
        "run",
        CREW,
        "-i",
        "service=checkout",
        "-i",
        f"logs={small['logs']}",
        "-i",
        f"repo={small['repo']}",
        *extra,
    ]


def env_for(small: dict[str, Any]) -> dict[str, str]:
    return {**os.environ, "CREWGATE_ALLOWED_ROOTS": str(small["root"]), "COLUMNS": "160"}


def test_without_a_terminal_a_review_fails_the_run_unless_on_input_approves(small: dict[str, Any]) -> None:
    failed = subprocess.run(
        [*reviewed_args(small, "--json", "-q")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env_for(small),
        timeout=240,
    )
    assert failed.returncode == 1, failed.stderr[-2000:]
    out = json.loads(failed.stdout)
    assert out["status"] == "failed" and out["error"]["code"] == "input_unavailable"
    assert [e["type"] for e in out["events"]][-2:] == ["input.required", "task.failed"]

    approved = subprocess.run(
        [*reviewed_args(small, "--json", "-q", "--on-input", "approve")],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=PROJECT,
        env=env_for(small),
        timeout=240,
    )
    assert approved.returncode == 0, approved.stderr[-2000:]
    out = json.loads(approved.stdout)
    assert out["status"] == "completed" and out["output"]["suspect"]["sha"] == small["commit"]
    types = [e["type"] for e in out["events"]]
    assert types.index("input.required") < types.index("input.received") < types.index("task.completed")
    assert [e["seq"] for e in out["events"]] == list(range(1, len(types) + 1))
    received = next(e for e in out["events"] if e["type"] == "input.received")
    assert received["data"]["by"] == "policy" and received["data"]["approve"] is True


def test_bad_on_input_is_a_usage_error(small: dict[str, Any]) -> None:
    proc = subprocess.run(
        reviewed_args(small, "--on-input", "maybe"), capture_output=True, text=True, cwd=PROJECT, timeout=60
    )
    assert proc.returncode == 2 and "--on-input must be ask, approve or fail" in proc.stderr


def test_on_a_terminal_the_run_asks_and_takes_feedback_then_approval(small: dict[str, Any]) -> None:
    main, child = pty.openpty()
    proc = subprocess.Popen(
        reviewed_args(small, "-q"),
        stdin=child,
        stdout=subprocess.PIPE,
        stderr=child,
        cwd=PROJECT,
        env={**env_for(small), "TERM": "dumb"},
    )
    os.close(child)
    screen = Screen(main)
    try:
        screen.wait_for("approve or send back with feedback", 240)
        screen.send("feedback\n")
        screen.wait_for("feedback", 30)
        screen.send("Say which deploy shipped it.\n")
        screen.wait_for("approve or send back with feedback", 240, after=screen.mark)
        screen.send("approve\n")
        stdout, _ = proc.communicate(timeout=240)
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, screen.text[-3000:]
    assert "Say which deploy shipped it." in stdout.decode()  # the revised, approved report


class Screen:
    """What a terminal shows the person, read as it comes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.text = ""
        self.mark = 0

    def wait_for(self, needle: str, timeout: float, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text[after:]:
            assert time.monotonic() < deadline, f"never shown: {needle!r}\n{self.text[-3000:]}"
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    self.text += os.read(self.fd, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        self.mark = self.text.index(needle, after) + len(needle)

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())


def test_crewgate_answer_answers_a_task_waiting_in_a_gateway(tmp_path: Path, incident: dict) -> None:
    gw = Gateway(tmp_path / "gw", config_dir=write_configs(tmp_path / "configs"), roots=incident["root"]).start()
    try:
        task_id = submit(gw, incident)
        request = waiting(gw, task_id)
        cli = [sys.executable, "-m", "gateway.cli", "answer", task_id, "--url", gw.url]
        wrong = subprocess.run([*cli, "--answer", "yes"], capture_output=True, text=True, cwd=PROJECT, timeout=60)
        assert wrong.returncode == 2 and "error 422" in wrong.stderr  # a review takes approve or feedback
        both = subprocess.run([*cli, "--approve", "--answer", "x"], capture_output=True, text=True, timeout=60)
        assert both.returncode == 2 and "exactly one of" in both.stderr
        done = subprocess.run([*cli, "--approve"], capture_output=True, text=True, cwd=PROJECT, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["request_id"] == request["request_id"]
        assert ended(gw, task_id)["status"] == "completed"
        again = answer(gw, task_id, request["request_id"], approve=True)
        assert again.status_code == 200
        none_open = subprocess.run([*cli, "--approve"], capture_output=True, text=True, cwd=PROJECT, timeout=60)
        assert none_open.returncode == 2 and "0 open requests" in none_open.stderr
    finally:
        gw.stop()
