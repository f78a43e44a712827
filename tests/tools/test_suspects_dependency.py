"""A dependency bump as the suspect when the error is raised inside that dependency.

Real git repositories built in tmp with fixed dates and release tags; traces in the
shapes CPython 3.11, Node 20 and Go 1.22 print. The failing in-repo caller is an old
line, so only the manifest change can explain the new error.
"""

from __future__ import annotations

import json

import pytest

from tools.code import SuspectCommitsTool
from tools.code._changes import FileChange, Hunk, dependency_bumps, package_matches

ONSET = "2024-05-12T12:00:00Z"

AUTH = (
    "import jwt\n"
    "\n"
    "PUBLIC_KEY = open('/etc/accounts/jwt.pub').read()\n"
    "\n"
    "\n"
    "def current_user(token):\n"
    "    claims = jwt.decode(token, PUBLIC_KEY)\n"
    "    return claims['sub']\n"
)
REQUIREMENTS = "fastapi==0.115.4\npyjwt==1.7.1\nredis==5.2.0\n"
PY_TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/accounts/.venv/lib/python3.11/site-packages/starlette/concurrency.py", line 42, in run\n'
    "    return await anyio.to_thread.run_sync(func, *args)\n"
    '  File "/srv/accounts/accounts/auth.py", line 7, in current_user\n'
    "    claims = jwt.decode(token, PUBLIC_KEY)\n"
    '  File "/srv/accounts/.venv/lib/python3.11/site-packages/jwt/api_jwt.py", line 210, in decode\n'
    "    decoded = self.decode_complete(\n"
    '  File "/srv/accounts/.venv/lib/python3.11/site-packages/jwt/api_jws.py", line 185, in decode_complete\n'
    "    raise DecodeError(\n"
    'jwt.exceptions.DecodeError: It is required that you pass in a value for the "algorithms" argument '
    "when calling decode().\n"
)


def _suspects(code_tool, repo, **kwargs) -> dict:
    return json.loads(code_tool(SuspectCommitsTool).run(repo=str(repo.path), **kwargs))


def _released(repo, files: dict[str, str], change: dict[str, str], subject: str) -> str:
    """Initial import tagged v1.3.0, ``change`` in the range, a release commit tagged v1.4.0."""
    repo.commit(files, "Initial import", "2024-02-01T09:00:00+00:00")
    repo.git("tag", "v1.3.0")
    sha = repo.commit(change, subject, "2024-05-11T10:00:00+00:00", author="Dep Bot")
    repo.commit({"README.md": "release 1.4.0\n"}, "Release 1.4.0", "2024-05-12T11:00:00+00:00")
    repo.git("tag", "v1.4.0")
    return sha


def _python_repo(code_git_repo, requirements: str, subject: str):
    repo = code_git_repo()
    files = {"accounts/__init__.py": "", "accounts/auth.py": AUTH, "requirements.txt": REQUIREMENTS}
    return repo, _released(repo, files, {"requirements.txt": requirements}, subject)


def test_a_bump_of_the_package_the_error_is_raised_in_is_the_clear_suspect(code_git_repo, code_tool):
    requirements = REQUIREMENTS.replace("pyjwt==1.7.1", "PyJWT==2.8.0")
    repo, bump = _python_repo(code_git_repo, requirements, "build(deps): bump pyjwt from 1.7.1 to 2.8.0")
    result = _suspects(code_tool, repo, trace=PY_TRACE, onset=ONSET, good_rev="v1.3.0", bad_rev="v1.4.0")
    top = result["data"]["candidates"][0]

    assert result["facts"]["commit"] == bump  # named as the cause, not just ranked first
    assert result["data"]["confidence"] == "clear winner"
    assert "bumped PyJWT 1.7.1 → 2.8.0 in requirements.txt:2; the error is raised inside jwt" in top["reasons"]
    assert top["lines"][0] == "requirements.txt:2"


def test_a_bump_of_an_unrelated_package_is_not_named_as_the_cause(code_git_repo, code_tool):
    requirements = REQUIREMENTS.replace("redis==5.2.0", "redis==5.2.1")
    repo, bump = _python_repo(code_git_repo, requirements, "build(deps): bump redis from 5.2.0 to 5.2.1")
    result = _suspects(code_tool, repo, trace=PY_TRACE, onset=ONSET, good_rev="v1.3.0", bad_rev="v1.4.0")
    top = result["data"]["candidates"][0]

    assert top["sha"] == bump  # still the only change in the range, so still a candidate
    assert "commit" not in result["facts"]
    assert result["data"]["confidence"] != "clear winner"
    assert not any(reason.startswith("bumped") for reason in top["reasons"])


CLIENT_JS = (
    "const axios = require('axios');\n"
    "\n"
    "async function fetchRates(base) {\n"
    "  const response = await axios.get(`https://rates.internal/v1/${base}`);\n"
    "  return response.data;\n"
    "}\n"
    "\n"
    "module.exports = { fetchRates };\n"
)
PACKAGE_JSON = '{\n  "name": "rates",\n  "dependencies": {\n    "axios": "^0.27.2",\n    "express": "^4.19.2"\n  }\n}\n'
PACKAGE_LOCK = (
    '{\n  "name": "rates",\n  "lockfileVersion": 3,\n  "packages": {\n'
    '    "node_modules/axios": {\n      "version": "0.27.2",\n'
    '      "resolved": "https://registry.npmjs.org/axios/-/axios-0.27.2.tgz"\n    },\n'
    '    "node_modules/express": {\n      "version": "4.19.2"\n    }\n  }\n}\n'
)
JS_TRACE = (
    "TypeError: Cannot read properties of undefined (reading 'protocol')\n"
    "    at isURLSameOrigin (/srv/rates/node_modules/axios/lib/helpers/isURLSameOrigin.js:61:25)\n"
    "    at dispatchXhrRequest (/srv/rates/node_modules/axios/lib/adapters/xhr.js:158:9)\n"
    "    at async fetchRates (/srv/rates/src/client.js:4:20)\n"
)


def test_a_lock_file_bump_of_the_node_module_in_the_trace_is_the_clear_suspect(code_git_repo, code_tool):
    repo = code_git_repo()
    files = {"src/client.js": CLIENT_JS, "package.json": PACKAGE_JSON, "package-lock.json": PACKAGE_LOCK}
    change = {
        "package.json": PACKAGE_JSON.replace("^0.27.2", "^1.7.0"),
        "package-lock.json": PACKAGE_LOCK.replace("0.27.2", "1.7.0"),
    }
    bump = _released(repo, files, change, "deps: axios 1")
    result = _suspects(code_tool, repo, trace=JS_TRACE, onset=ONSET, good_rev="v1.3.0", bad_rev="v1.4.0")
    top = result["data"]["candidates"][0]

    assert result["facts"]["commit"] == bump
    assert "bumped axios 0.27.2 → 1.7.0 in package.json:4; the error is raised inside axios" in top["reasons"]


def test_a_go_module_bump_with_a_module_cache_frame_is_the_clear_suspect(code_git_repo, code_tool):
    repo = code_git_repo()
    main_go = (
        'package main\n\nimport "github.com/golang-jwt/jwt/v5"\n\nfunc check(t string) {\n\tjwt.Parse(t, nil)\n}\n'
    )
    go_mod = "module example.com/tokens\n\ngo 1.22\n\nrequire github.com/golang-jwt/jwt/v5 v5.0.0\n"
    bump = _released(
        repo,
        {"main.go": main_go, "go.mod": go_mod},
        {"go.mod": go_mod.replace("v5.0.0", "v5.2.1")},
        "deps: jwt v5.2.1",
    )
    trace = (
        "panic: runtime error: invalid memory address or nil pointer dereference\n\n"
        "goroutine 1 [running]:\n"
        "github.com/golang-jwt/jwt/v5.(*Parser).ParseWithClaims(0x0, {0x0, 0x0})\n"
        "\t/root/go/pkg/mod/github.com/golang-jwt/jwt/v5@v5.2.1/parser.go:71 +0x1d\n"
        "main.check({0x0, 0x0})\n"
        "\t/src/tokens/main.go:6 +0x25\n"
    )
    result = _suspects(code_tool, repo, trace=trace, onset=ONSET, good_rev="v1.3.0", bad_rev="v1.4.0")
    assert result["facts"]["commit"] == bump
    reason = "bumped github.com/golang-jwt/jwt/v5 v5.0.0 → v5.2.1 in go.mod:5; the error is raised inside"
    assert any(r.startswith(reason) for r in result["data"]["candidates"][0]["reasons"])


@pytest.mark.parametrize(
    ("distribution", "module", "same"),
    [
        ("PyJWT", "jwt", True),
        ("python-dateutil", "dateutil", True),
        ("Flask_Cors", "flask-cors", True),
        ("PyYAML", "yaml", True),
        ("beautifulsoup4", "bs4", True),
        ("@scope/pkg", "@scope/pkg", True),
        ("github.com/golang-jwt/jwt/v5", "github.com/golang-jwt/jwt/v5", True),
        ("github.com/golang-jwt/jwt/v5", "jwt", True),
        ("redis", "jwt", False),
        ("jwt", "pyjwt", False),  # the distribution may add a prefix, the module may not
        ("@scope/pkg", "pkg", False),
        ("github.com/a/jwt", "github.com/b/jwt", False),
        ("requests", "", False),
    ],
)
def test_distribution_and_module_names_match_sensibly(distribution, module, same):
    assert package_matches(distribution, module) is same


def test_lock_file_versions_take_the_package_name_from_above():
    before = ["[[package]]", 'name = "pyjwt"', 'version = "1.7.1"', 'description = "JSON Web Token"']
    after = ["[[package]]", 'name = "pyjwt"', 'version = "2.8.0"', 'description = "JSON Web Token"']
    hunk = Hunk(3, 1, 3, 1, added=['version = "2.8.0"'], removed=['version = "1.7.1"'])
    bumps = dependency_bumps(FileChange("poetry.lock", hunks=[hunk]), after, before)
    assert [(b.package, b.old, b.new, b.line) for b in bumps] == [("pyjwt", "1.7.1", "2.8.0", 3)]
