"""The example incident generator (examples/generate_incident.py).

The generator is run as a script, the way a user runs it, into temporary
directories. Each test checks something a user of the example relies on: that the
output is reproducible, that the git history tells the intended story, and that
the logs agree with expected.json.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

GENERATOR = Path(__file__).resolve().parents[1] / "examples" / "generate_incident.py"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

API_RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) \[([^\]]+)\] (.*)$")
FRAME = re.compile(r'^  File "([^"]+)", line (\d+), in (\S+)\n    (.*)$', re.MULTILINE)
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
RED_HERRING = re.compile(r"Timeout connecting to cache at \d+\.\d+\.\d+\.\d+:\d+ after \d+ms")
MARKER = re.compile(r"Deployed checkout version (\S+) \(commit ([0-9a-f]{7})\)")


def run_generator(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True, timeout=30)
    return proc.stdout


def read_log(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_api_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)


def api_records(text: str) -> list[tuple[datetime, str, str, str]]:
    """(time, level, logger, message with continuation lines) per record."""
    records: list[list] = []
    for line in text.splitlines():
        match = API_RECORD.match(line)
        if match:
            ts, level, logger, msg = match.groups()
            records.append([parse_api_ts(ts), level, logger, msg])
        else:
            assert records, f"continuation line before any record: {line!r}"
            records[-1][3] += "\n" + line
    return [tuple(r) for r in records]


def diff_hunks(diff: str) -> list[dict]:
    """Hunks of a ``git show -U0`` diff with old/new line numbers of each change."""
    hunks: list[dict] = []
    old_no = new_no = 0
    for line in diff.splitlines():
        match = HUNK.match(line)
        if match:
            old_start, old_len, new_start, new_len = match.groups()
            old_no, new_no = int(old_start), int(new_start)
            hunks.append(
                {
                    "old": (old_no, int(old_len or 1)),
                    "new": (new_no, int(new_len or 1)),
                    "added": [],
                    "removed": [],
                }
            )
        elif hunks and line.startswith("+") and not line.startswith("+++"):
            hunks[-1]["added"].append((new_no, line[1:]))
            new_no += 1
        elif hunks and line.startswith("-") and not line.startswith("---"):
            hunks[-1]["removed"].append((old_no, line[1:]))
            old_no += 1
    return hunks


def commit_time(repo: Path, sha: str) -> datetime:
    return datetime.fromisoformat(git(repo, "log", "-1", "--format=%cI", sha).strip())


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("example") / "incident"
    proc = run_generator(out, "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    return out, proc


@pytest.fixture(scope="module")
def incident(generated) -> Path:
    return generated[0]


@pytest.fixture(scope="module")
def expected(incident) -> dict:
    return json.loads((incident / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def logs(incident, expected) -> dict[str, str]:
    return {rel: read_log(incident / rel) for rel in expected["log_files"]}


@pytest.fixture(scope="module")
def api(logs) -> list[tuple[datetime, str, str, str]]:
    return api_records(logs["logs/checkout-api.log.1.gz"] + logs["logs/checkout-api.log"])


@pytest.fixture(scope="module")
def worker(logs) -> list[dict]:
    return [json.loads(line) for line in logs["logs/payments-worker.jsonl"].splitlines()]


def test_writes_the_documented_layout_and_prints_a_summary(generated, expected):
    out, proc = generated
    assert (out / "repo" / ".git").is_dir()
    assert sorted(p.name for p in (out / "logs").iterdir()) == [
        "checkout-api.log",
        "checkout-api.log.1.gz",
        "edge-proxy.log",
        "payments-worker.jsonl",
    ]
    runbooks = sorted((out / "runbooks").glob("*.md"))
    assert 3 <= len(runbooks) <= 5
    for runbook in runbooks:
        text = runbook.read_text(encoding="utf-8")
        assert text.startswith("# ") and "\n## " in text, runbook.name
    for key in (
        "service",
        "culprit_sha",
        "culprit_short",
        "culprit_subject",
        "decoy_sha",
        "post_onset_sha",
        "deployed_sha",
        "file",
        "line",
        "exception",
        "new_error_count",
        "onset",
        "deploy_time",
        "preexisting_error",
        "preexisting_count",
        "total_lines",
        "log_files",
    ):
        assert key in expected, key
    assert expected["service"] == "checkout"
    assert expected["exception"] == "KeyError: 'currency'"
    assert expected["culprit_sha"][:12] in proc.stdout
    assert f"{expected['total_lines']:,}" in proc.stdout
    assert f"{expected['file']}:{expected['line']}" in proc.stdout


def test_same_seed_reproduces_every_byte_and_sha(incident, expected, tmp_path):
    again = tmp_path / "again"
    assert run_generator(again, "--seed", "7").returncode == 0
    assert json.loads((again / "expected.json").read_text()) == expected
    for rel in expected["log_files"]:
        assert (again / rel).read_bytes() == (incident / rel).read_bytes(), rel
    assert git(again / "repo", "log", "--format=%H %s") == git(incident / "repo", "log", "--format=%H %s")


def test_other_seed_changes_the_logs_and_force_rebuilds(incident, expected, tmp_path):
    out = tmp_path / "other"
    assert run_generator(out, "--seed", "8").returncode == 0
    other = json.loads((out / "expected.json").read_text())
    # The seed only drives the log noise: history and ground truth of the code stay.
    for key in ("culprit_sha", "decoy_sha", "deployed_sha", "post_onset_sha", "file", "line"):
        assert other[key] == expected[key], key
    assert (out / "logs/edge-proxy.log").read_bytes() != (incident / "logs/edge-proxy.log").read_bytes()

    refused = run_generator(out, "--seed", "7")
    assert refused.returncode != 0
    assert "--force" in refused.stderr
    assert json.loads((out / "expected.json").read_text()) == other

    (out / "stray.txt").write_text("left over")
    rebuilt = run_generator(out, "--seed", "7", "--force")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert not (out / "stray.txt").exists()
    assert json.loads((out / "expected.json").read_text()) == expected
    for rel in expected["log_files"]:
        assert (out / rel).read_bytes() == (incident / rel).read_bytes(), rel


def test_refuses_to_overwrite_without_force(incident):
    before = (incident / "expected.json").read_bytes()
    proc = run_generator(incident)
    assert proc.returncode != 0
    assert "already exists" in proc.stderr and "--force" in proc.stderr
    assert (incident / "expected.json").read_bytes() == before


def test_force_does_not_delete_an_unrelated_directory(tmp_path):
    victim = tmp_path / "notes"
    victim.mkdir()
    (victim / "todo.txt").write_text("keep me")
    proc = run_generator(victim, "--force")
    assert proc.returncode != 0
    assert (victim / "todo.txt").read_text() == "keep me"


def test_culprit_commit_adds_the_failing_line(incident, expected):
    repo = incident / "repo"
    culprit, path, line = expected["culprit_sha"], expected["file"], expected["line"]
    assert expected["culprit_short"] == culprit[:7]
    assert git(repo, "log", "-1", "--format=%s", culprit).strip() == expected["culprit_subject"]

    added = [
        entry
        for hunk in diff_hunks(git(repo, "show", "--format=", "-U0", culprit, "--", path))
        for entry in hunk["added"]
    ]
    assert (line, '    currency = order["currency"]') in added

    deployed_source = git(repo, "show", f"{expected['deployed_sha']}:{path}").splitlines()
    assert deployed_source[line - 1].strip() == 'currency = order["currency"]'
    blame = git(repo, "blame", "--porcelain", "-L", f"{line},{line}", expected["deployed_sha"], "--", path)
    assert blame.split()[0] == culprit

    # An older commit (not the initial import) changed the same function weeks earlier.
    history = git(repo, "log", "--format=%H", f"-L:compute_total:{path}", expected["deployed_sha"])
    touching = re.findall(r"^[0-9a-f]{40}$", history, re.MULTILINE)
    root = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    older = [sha for sha in touching if sha not in (culprit, root)]
    assert older
    assert all((commit_time(repo, culprit) - commit_time(repo, sha)).days >= 7 for sha in older)


def test_decoy_commit_is_later_and_leaves_the_failing_line_alone(incident, expected):
    repo = incident / "repo"
    path, line = expected["file"], expected["line"]
    culprit, decoy, deployed = (
        expected["culprit_sha"],
        expected["decoy_sha"],
        expected["deployed_sha"],
    )
    assert commit_time(repo, culprit) < commit_time(repo, decoy) < parse_iso(expected["deploy_time"])
    git(repo, "merge-base", "--is-ancestor", culprit, decoy)
    git(repo, "merge-base", "--is-ancestor", decoy, deployed)
    # A naive "last commit that touched the file" points at the decoy ...
    last = git(repo, "log", "-1", "--format=%H", deployed, "--", path).strip()
    assert last == decoy
    # ... but the decoy never touches the failing line.
    hunks = diff_hunks(git(repo, "show", "--format=", "-U0", decoy, "--", path))
    assert hunks
    for hunk in hunks:
        new_start, new_len = hunk["new"]
        old_start, old_len = hunk["old"]
        assert not new_start <= line < new_start + new_len
        assert not old_start <= line < old_start + old_len
        changed = [text for _, text in hunk["added"] + hunk["removed"]]
        assert not any('order["currency"]' in text for text in changed)


def test_post_onset_commit_is_not_what_was_running(incident, expected, api):
    repo = incident / "repo"
    post, deployed = expected["post_onset_sha"], expected["deployed_sha"]
    onset = parse_iso(expected["onset"])
    assert commit_time(repo, post) > onset
    assert git(repo, "rev-parse", "HEAD").strip() == post
    git(repo, "merge-base", "--is-ancestor", deployed, post)
    before_onset = git(repo, "log", "-1", "--format=%H", f"--before={expected['onset']}", "HEAD")
    assert before_onset.strip() == deployed
    changed = git(repo, "show", "--format=", "--name-only", post).split()
    assert expected["file"] not in changed and changed

    # Reading main instead of the deployed commit gives wrong line numbers.
    first = next(r for r in api if expected["exception"] in r[3])
    handler = next(f for f in FRAME.findall(first[3]) if f[0].endswith("api/handlers.py"))
    head_lines = (repo / "checkout/api/handlers.py").read_text().splitlines()
    assert head_lines[int(handler[1]) - 1].strip() != handler[3].strip()


def test_log_volume_and_files(incident, expected, logs, api):
    assert sorted(expected["log_files"]) == sorted(logs)
    assert (incident / "logs/checkout-api.log.1.gz").read_bytes()[:2] == b"\x1f\x8b"
    total = sum(text.count("\n") for text in logs.values())
    assert 30_000 <= total <= 60_000
    assert total == expected["total_lines"]
    assert api[0][0] < datetime(2026, 11, 20, 9, 5, tzinfo=UTC)
    assert api[-1][0] > datetime(2026, 11, 20, 14, 55, tzinfo=UTC)
    rotated = api_records(logs["logs/checkout-api.log.1.gz"])
    current = api_records(logs["logs/checkout-api.log"])
    assert rotated[-1][0] < current[0][0]
    for line in logs["logs/edge-proxy.log"].splitlines()[:200]:
        assert re.match(r"^2026-11-20T\d\d:\d\d:\d\dZ (INFO|WARN|ERROR) ", line), line


def test_error_counts_match_the_logs(expected, logs, api, worker):
    exception = expected["exception"]
    assert sum(text.count(exception) for text in logs.values()) == expected["new_error_count"]
    api_count = sum(1 for r in api if r[3].endswith("\n" + exception))
    worker_count = sum(1 for r in worker if r.get("exception", "").endswith("\n" + exception))
    assert api_count + worker_count == expected["new_error_count"]
    assert 200 <= expected["new_error_count"] <= 2500

    cache_timeouts = [m for text in logs.values() for m in RED_HERRING.findall(text)]
    assert len(cache_timeouts) == expected["preexisting_count"] > 0
    assert RED_HERRING.fullmatch(expected["preexisting_error"])
    assert len(set(cache_timeouts)) > 10  # varying hosts, ports and durations

    secondary = sum(text.count(expected["secondary_error"]) for text in logs.values())
    assert 0 < secondary == expected["secondary_count"] < expected["new_error_count"]

    # After the onset the new error dominates the error records.
    onset = parse_iso(expected["onset"])
    errors_after = [r[3] for r in api if r[1] == "ERROR" and r[0] >= onset]
    errors_after += [
        r.get("exception", r["msg"]) for r in worker if r["level"] == "error" and parse_iso(r["ts"]) >= onset
    ]
    new = sum(1 for text in errors_after if exception in text)
    assert new > len(errors_after) / 2


def test_timeline_deploy_then_new_error_with_old_noise(expected, api, worker):
    exception = expected["exception"]
    deploy_time = parse_iso(expected["deploy_time"])
    onset = parse_iso(expected["onset"])

    markers = [(r[0], MARKER.search(r[3])) for r in api if MARKER.search(r[3])]
    markers += [(parse_iso(r["ts"]), MARKER.search(r["msg"])) for r in worker if MARKER.search(r["msg"])]
    assert markers
    assert max(t for t, _ in markers) == deploy_time
    for _, match in markers:
        assert match.group(1) == expected.get("deployed_version", match.group(1))
        assert match.group(2) == expected["deployed_sha"][:7]

    new_times = [r[0] for r in api if exception in r[3]]
    new_times += [parse_iso(r["ts"]) for r in worker if exception in r.get("exception", "")]
    assert min(new_times) == onset > deploy_time

    old = [r[0] for r in api if RED_HERRING.search(r[3])]
    assert min(old) < datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert max(old) > onset
    assert any(t < deploy_time for t in old)
    assert expected["preexisting_error"] in {RED_HERRING.search(r[3]).group(0) for r in api if RED_HERRING.search(r[3])}


def test_tracebacks_use_deployed_paths_with_repo_line_numbers(incident, expected, api, worker):
    repo = incident / "repo"
    deployed = expected["deployed_sha"]
    repo_files = set(git(repo, "ls-tree", "-r", "--name-only", deployed).split())
    api_tb = next(r[3] for r in api if expected["exception"] in r[3])
    worker_tb = next(r["exception"] for r in worker if expected["exception"] in r.get("exception", ""))
    for text in (api_tb, worker_tb):
        assert text.splitlines()[-1] == expected["exception"]
        frames = FRAME.findall(text)
        path, line, function, source = frames[-1]
        assert path != expected["file"] and not (repo / path).exists()
        assert path.endswith("/" + expected["file"])
        assert int(line) == expected["line"]
        assert function == "compute_total"
        assert source.strip() == 'currency = order["currency"]'
        # A third-party frame that is not part of the repository.
        assert any("/site-packages/" in p and not any(p.endswith("/" + f) for f in repo_files) for p, *_ in frames)
        for path, line, _, source in frames:
            if "/site-packages/" in path:
                continue
            rel = next(f for f in repo_files if path.endswith("/" + f))
            deployed_lines = git(repo, "show", f"{deployed}:{rel}").splitlines()
            assert deployed_lines[int(line) - 1].strip() == source.strip(), (rel, line)
