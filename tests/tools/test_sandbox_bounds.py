"""Log lines are read in bounded pieces: one huge line can neither exhaust memory nor
vanish silently."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

from tools.logs import SearchLogsTool

MAX_RECORD_BYTES = 1024 * 1024  # records up to this size are kept whole

LINE_BYTES = 200 * 1024 * 1024


def _gzip_one_line(path: Path, size: int) -> None:
    """A .gz holding one line of ``size`` bytes, written by streaming zlib (never whole in memory)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = b"2026-11-20T14:00:00Z ERROR huge " + b"x" * (1024 * 1024 - 32)
    filler = b"y" * (1024 * 1024)
    with path.open("wb") as out:
        out.write(packer.compress(block))
        for _ in range(size // len(filler) - 1):
            out.write(packer.compress(filler))
        out.write(packer.compress(b"\n2026-11-20T14:01:00Z ERROR after the huge line\n"))
        out.write(packer.flush())


_PROBE = """
import json, resource, sys
from tools.logs import SearchLogsTool
tool = SearchLogsTool(roots=(sys.argv[1],))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = json.loads(tool.run(logs="huge.log.gz"))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kib": after - before, "out": out}))
"""


def test_a_200_mb_line_in_a_gz_is_cut_with_bounded_memory(tmp_path: Path) -> None:
    _gzip_one_line(tmp_path / "huge.log.gz", LINE_BYTES)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    out = result["out"]
    assert result["grew_kib"] < 64 * 1024, f"peak memory grew by {result['grew_kib']} KiB"
    assert [r["message"][:10] for r in out["data"]["records"]][-1] == "after the "
    assert out["data"]["cut_lines"] == 1
    assert out["data"]["cut_bytes"] >= LINE_BYTES - MAX_RECORD_BYTES - 1024
    assert "cut" in out["summary"]


def test_a_json_record_of_almost_one_mib_is_read_whole(tmp_path: Path) -> None:
    body = "z" * (MAX_RECORD_BYTES - 200)
    record = {"ts": "2026-11-20T14:00:00Z", "level": "warning", "msg": "big payload", "stack": body}
    (tmp_path / "big.jsonl").write_text(json.dumps(record) + "\n")
    out = json.loads(SearchLogsTool(roots=(tmp_path,)).run(logs="big.jsonl"))
    # parsed as JSON (its own message and level), so the line reached the parser uncut
    assert [(r["message"], r["level"]) for r in out["data"]["records"]] == [("big payload", "WARN")]
    assert out["data"]["cut_lines"] == 0
