"""What `crewgate serve` prints when its output is not a terminal (a service manager, a container)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.gateway import Gateway, write_configs


def test_every_line_is_json_and_start_up_is_not_noisy(tmp_path: Path) -> None:
    roots = tmp_path / "roots"
    roots.mkdir()
    gw = Gateway(tmp_path / "gw", config_dir=write_configs(tmp_path / "configs"), roots=roots, log_format="auto")
    gw.start()
    gw.stop()
    lines = [line for line in gw.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # a line that is not JSON fails here
    loggers = {r.get("logger", "") for r in records}
    assert not any(name.startswith("alembic") for name in loggers), loggers
    listening = [r for r in records if r["event"].startswith("crewgate on http://127.0.0.1:")]
    assert listening and listening[0]["docs"].endswith("/docs")
    assert listening[0]["store"].startswith("sqlite+aiosqlite:///")
