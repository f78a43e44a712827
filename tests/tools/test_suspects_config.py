"""Configuration, dependency and deploy changes as suspects; causes outside the repository.

Real git repositories built in tmp with fixed dates. Traces follow the shapes real
runtimes print (CPython 3.11, Node 20).
"""

from __future__ import annotations

import json

from tools.code import SuspectCommitsTool
from tools.code._changes import changed_values, file_kind, match_values

ONSET = "2024-05-12T12:00:00Z"

CLIENT = (
    "import httpx\n"
    "\n"
    "from app.settings import SETTINGS\n"
    "\n"
    "\n"
    "def authorize(order):\n"
    "    url = SETTINGS['payments']['url']\n"
    "    timeout = SETTINGS['payments']['timeout_ms'] / 1000\n"
    "    response = httpx.post(url, json=order, timeout=timeout)\n"
    "    return response.json()\n"
)
SETTINGS_YAML = "payments:\n  url: https://payments.internal/v1/authorize\n  timeout_ms: 2000\n  retries: 2\n"

TIMEOUT_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/app/client.py", line 9, in authorize\n'
    "    response = httpx.post(url, json=order, timeout=timeout)\n"
    "               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '  File "/srv/app/venv/lib/python3.11/site-packages/httpx/_api.py", line 319, in post\n'
    "    return request(\n"
    "           ^^^^^^^^\n"
    "httpx.ReadTimeout: payments.internal did not answer within 250 ms\n"
)


def _suspects(code_tool, repo, **kwargs) -> dict:
    return json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), **kwargs))


def _service(code_git_repo):
    repo = code_git_repo()
    shas = {
        "initial": repo.commit(
            {"app/client.py": CLIENT, "config/settings.yaml": SETTINGS_YAML, "requirements.txt": "httpx==0.27.0\n"},
            "Initial import",
            "2024-02-01T09:00:00+00:00",
        )
    }
    return repo, shas


def test_a_config_change_whose_value_the_error_quotes_is_the_suspect(code_git_repo, code_tool):
    repo, shas = _service(code_git_repo)
    shas["timeout"] = repo.commit(
        {"config/settings.yaml": SETTINGS_YAML.replace("timeout_ms: 2000", "timeout_ms: 250")},
        "ops: fail fast on slow payment answers",
        "2024-05-11T17:00:00+00:00",
        author="Oscar Ops",
    )
    shas["retries"] = repo.commit(
        {"config/settings.yaml": SETTINGS_YAML.replace("timeout_ms: 2000", "timeout_ms: 250").replace("2\n", "3\n")},
        "ops: one more retry",
        "2024-05-11T18:00:00+00:00",
    )
    result = _suspects(code_tool, repo, trace=TIMEOUT_TRACE, onset=ONSET)
    top = result["data"]["candidates"][0]

    assert result["facts"]["commit"] == shas["timeout"]
    assert "set '250' in config/settings.yaml; the error text mentions it" in top["reasons"]
    assert "changed configuration file config/settings.yaml" in top["reasons"]
    assert "value" in top["evidence"] and top["in_range"]
    # The other settings change did not set anything the error mentions: a weaker candidate.
    other = next(c for c in result["data"]["candidates"] if c["sha"] == shas["retries"])
    assert other["score"] < top["score"] / 2
    # The code line the error passed through was written long ago by the initial import.
    assert result["data"]["frames"][0]["last_changed_by"] == shas["initial"][:7]


def test_a_dependency_bump_named_in_the_error_is_the_suspect(code_git_repo, code_tool):
    repo, shas = _service(code_git_repo)
    shas["bump"] = repo.commit(
        {"requirements.txt": "httpx==0.27.0\nurllib3==2.0.0\n"},
        "deps: pin urllib3 2",
        "2024-05-12T08:00:00+00:00",
    )
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/app/client.py", line 1, in <module>\n'
        "    import httpx\n"
        '  File "/srv/app/venv/lib/python3.11/site-packages/botocore/httpsession.py", line 41, in <module>\n'
        "    from urllib3.util.ssl_ import DEFAULT_CIPHERS\n"
        "ImportError: cannot import name 'DEFAULT_CIPHERS' from 'urllib3.util.ssl_'\n"
    )
    result = _suspects(code_tool, repo, trace=trace, onset=ONSET)
    top = result["data"]["candidates"][0]
    assert result["facts"]["commit"] == shas["bump"]
    assert "changed dependency manifest or lock file requirements.txt" in top["reasons"]
    assert any("'urllib3'" in reason for reason in top["reasons"])


def test_frames_only_in_dependencies_and_a_refused_connection_point_outside_the_repo(code_git_repo, code_tool):
    repo, _ = _service(code_git_repo)
    repo.commit({"app/client.py": CLIENT + "\n# tidy\n"}, "tidy", "2024-05-11T09:00:00+00:00")
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/venv/lib/python3.11/site-packages/httpcore/_backends/sync.py", line 206, in connect_tcp\n'
        "    sock = socket.create_connection(\n"
        '  File "/usr/lib/python3.11/socket.py", line 851, in create_connection\n'
        "    raise exceptions[0]\n"
        "ConnectionRefusedError: [Errno 111] Connection refused\n"
    )
    result = _suspects(code_tool, repo, trace=trace, onset=ONSET)
    outside = result["data"]["outside_repo"]
    assert outside["likely"] is True
    assert "installed package (site-packages)" in outside["reason"]
    assert "Connection refused" in outside["reason"]
    assert "commit" not in result["facts"]
    assert result["facts"]["outside_repo"] == outside["reason"]
    assert "likely outside the repository" in result["summary"]


def test_a_dns_failure_without_frames_points_at_the_manifest_that_set_the_host(code_git_repo, code_tool):
    repo, _ = _service(code_git_repo)
    manifest = "env:\n  - name: DB_HOST\n    value: orders-db.prod.internal\n"
    repo.commit({"deploy/k8s/deployment.yaml": manifest}, "k8s: deployment", "2024-04-01T09:00:00+00:00")
    moved = repo.commit(
        {"deploy/k8s/deployment.yaml": manifest.replace("orders-db.prod.internal", "orders-db.internal")},
        "k8s: point at the new database host",
        "2024-05-12T10:00:00+00:00",
    )
    # Node 20 prints a failed lookup this way (no frame of the application's own).
    trace = (
        "Error: getaddrinfo ENOTFOUND orders-db.internal\n"
        "    at GetAddrInfoReqWrap.onlookup [as oncomplete] (node:dns:107:26)\n"
    )
    result = _suspects(code_tool, repo, trace=trace, onset=ONSET)
    top = result["data"]["candidates"][0]
    assert result["facts"]["commit"] == moved
    assert "changed container or deploy manifest deploy/k8s/deployment.yaml" in top["reasons"]
    assert "set 'orders-db.internal' in deploy/k8s/deployment.yaml; the error text mentions it" in top["reasons"]
    assert result["data"]["outside_repo"]["likely"] is False


def test_an_error_message_alone_is_enough_to_match_changed_settings(code_git_repo, code_tool):
    repo, _ = _service(code_git_repo)
    env = repo.commit({".env.production": "POOL_SIZE=5\n"}, "env: smaller pool", "2024-05-12T09:00:00+00:00")
    text = "sqlalchemy.exc.TimeoutError: QueuePool limit of size 5 overflow 10 reached, connection timed out"
    result = _suspects(code_tool, repo, trace=text, onset=ONSET)
    assert result["facts"]["commit"] == env
    assert any("'POOL_SIZE=5'" in r for r in result["data"]["candidates"][0]["reasons"])


def test_the_signature_argument_is_matched_too(code_git_repo, code_tool):
    repo, _ = _service(code_git_repo)
    repo.commit({"config/settings.yaml": SETTINGS_YAML.replace("2000", "750")}, "ops", "2024-05-12T09:00:00+00:00")
    trace = 'File "/srv/app/app/client.py", line 9, in authorize\n'
    without = _suspects(code_tool, repo, trace=trace, onset=ONSET)
    with_signature = _suspects(code_tool, repo, trace=trace, onset=ONSET, signature="ReadTimeout after 750 ms")
    assert without["data"]["candidates"][0]["score"] < with_signature["data"]["candidates"][0]["score"]
    assert "value" in with_signature["data"]["candidates"][0]["evidence"]


def test_file_kinds():
    assert file_kind("requirements-prod.txt") == "dependency"
    assert file_kind("web/package-lock.json") == "dependency"
    assert file_kind("go.sum") == "dependency"
    assert file_kind("build.gradle.kts") == "dependency"
    assert file_kind("Dockerfile") == "deploy"
    assert file_kind("charts/api/values-prod.yaml") == "deploy"
    assert file_kind("k8s/deployment.yaml") == "deploy"
    assert file_kind("config/app.yaml") == "config"
    assert file_kind("src/main/resources/application.properties") == "config"
    assert file_kind(".env.staging") == "config"
    assert file_kind("app/pay.py") == "code"
    assert file_kind("dist/app.js.map") is None
    assert file_kind("README.md") is None


def test_changed_values_match_whole_tokens_only():
    values = changed_values("config", ["  timeout_ms: 30  # was 300", "host: db-2.internal", "enabled: true"])
    assert values == ["30", "db-2.internal"]
    assert match_values(values, "read timed out after 300ms") == []
    assert match_values(values, "read timed out after 30 ms") == ["30"]
    assert match_values(values, "could not connect to db-2.internal:5432") == ["db-2.internal"]
    assert match_values(values, "could not connect to db-2.internal.example:5432") == []
    # A one-digit value counts only when a word of its key appears as well.
    assert match_values(changed_values("config", ["pool_size: 5"]), "retry 5 of 10") == []
    assert match_values(changed_values("config", ["pool_size: 5"]), "QueuePool limit of size 5") == ["pool_size=5"]
    assert changed_values("dependency", ['    "axios": "^1.7.0",']) == ["axios", "1.7.0"]


def test_a_config_file_with_an_unusual_name_is_read_and_named_as_it_is(code_git_repo, code_tool):
    repo, _ = _service(code_git_repo)
    name = 'config/café "eu" settings.yaml'
    repo.commit({name: "payments:\n  timeout_ms: 2000\n"}, "eu settings", "2024-04-01T09:00:00+00:00")
    tight = repo.commit({name: "payments:\n  timeout_ms: 250\n"}, "eu: tighter timeout", "2024-05-12T09:00:00+00:00")
    result = _suspects(code_tool, repo, trace=TIMEOUT_TRACE, onset=ONSET)
    assert result["facts"]["commit"] == tight
    assert f"set '250' in {name}; the error text mentions it" in result["data"]["candidates"][0]["reasons"]
