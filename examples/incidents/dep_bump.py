"""Dependency bump: requirements.txt moves PyJWT from 1.7.1 to 2.9.0.

PyJWT 2 requires ``algorithms=`` in ``jwt.decode``; the calling line in accounts/auth.py
has not changed in months, the innermost frames are in site-packages. The right commit
is the bump of the lock-style requirements file. FastAPI under uvicorn, Python logging
with timestamps. Red herring: rate-limiter Redis errors all day. Decoy: a later commit to
auth.py after the onset.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ._common import (
    ALICE,
    BEN,
    CHEN,
    Clock,
    H,
    History,
    Logs,
    M,
    S,
    add_noise,
    arrivals,
    build_repo,
    expected_base,
    finish,
    line_no,
    py_frame,
    py_traceback,
    repo_py_frame,
    write_runbooks,
)

CASE = "dep_bump"
SERVICE = "accounts"
DAY = "2026-11-27"
PREFIX = "/srv/accounts/"
SITE = "/srv/accounts/.venv/lib/python3.11/site-packages/"

REQS_V1 = """\
# pinned with pip-compile; edit requirements.in, not this file
anyio==4.6.2
fastapi==0.115.4
pydantic==2.9.2
pyjwt==1.7.1
redis==5.2.0
starlette==0.41.2
uvicorn==0.32.0
"""

AUTH = '''\
"""Bearer-token authentication."""

from __future__ import annotations

import os

import jwt
from fastapi import Header, HTTPException

PUBLIC_KEY = os.environ.get("ACCOUNTS_JWT_PUBLIC_KEY", "")


def current_user(authorization: str = Header(...)) -> dict:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=401, detail="missing bearer token")
    claims = jwt.decode(token, PUBLIC_KEY)
    return {"user_id": claims["sub"], "scopes": claims.get("scope", "").split()}
'''

API = '''\
"""Accounts API."""

from fastapi import Depends, FastAPI

from accounts.auth import current_user

app = FastAPI()


@app.get("/v1/me")
def me(user: dict = Depends(current_user)) -> dict:
    return user
'''

RUNBOOKS = {
    "accounts.md": """\
# Runbook: accounts API

- `Exception in ASGI application` with a traceback: an unhandled error; a traceback
  ending inside `site-packages` after a release usually means a dependency changed.
  Compare `requirements.txt` between the releases.
- `rate limiter unavailable` errors: Redis maintenance window; requests are allowed
  through. Harmless.
""",
}


def history() -> History:
    h = History()
    h.commit(
        ALICE,
        "2026-09-02T09:00:00",
        "accounts: /v1/me with bearer tokens",
        files={
            "README.md": "# accounts\n\nIdentity API (FastAPI).\n",
            "requirements.txt": REQS_V1,
            "accounts/__init__.py": "",
            "accounts/auth.py": AUTH,
            "accounts/api.py": API,
        },
        tag="v1.0.0",
    )
    h.commit(
        BEN,
        "2026-11-26T06:00:00",
        "build(deps): bump pyjwt from 1.7.1 to 2.9.0 (#233)",
        body="Bumps pyjwt from 1.7.1 to 2.9.0. Release notes: https://github.com/jpadilla/pyjwt/releases",
        role="culprit",
        edits=[("requirements.txt", "pyjwt==1.7.1", "pyjwt==2.9.0")],
    )
    h.commit(
        CHEN,
        "2026-11-27T08:00:00",
        "Release 1.9.0",
        role="deployed",
        tag="v1.9.0",
        edits=[("README.md", "(FastAPI).\n", "(FastAPI). Release 1.9.0.\n")],
    )
    h.commit(
        CHEN,
        "2026-11-27T13:10:00",
        "auth: clearer 401 message (#236)",
        role="decoy",
        edits=[("accounts/auth.py", 'detail="missing bearer token"', 'detail="a bearer token is required"')],
    )
    h.commit(
        BEN,
        "2026-11-27T14:05:00",
        "build(deps): bump redis from 5.2.0 to 5.2.1 (#238)",
        body="Not deployed yet.",
        role="decoy_lock",
        edits=[("requirements.txt", "redis==5.2.0", "redis==5.2.1")],
    )
    return h


def _trace(tree: dict[str, str]) -> str:
    starlette = [
        py_frame(SITE + "uvicorn/protocols/http/httptools_impl.py", 409, "run_asgi",
                 "result = await app(  # type: ignore[func-returns-value]", ""),
        py_frame(SITE + "fastapi/routing.py", 291, "app", "solved_result = await solve_dependencies(",
                 ""),
        py_frame(SITE + "fastapi/dependencies/utils.py", 640, "solve_dependencies",
                 "solved = await run_in_threadpool(call, **solved_result.values)", ""),
        py_frame(SITE + "starlette/concurrency.py", 42, "run_in_threadpool",
                 "return await anyio.to_thread.run_sync(func, *args)", ""),
    ]  # fmt: skip
    auth, _ = repo_py_frame(
        tree,
        PREFIX,
        "accounts/auth.py",
        "current_user",
        "claims = jwt.decode(token, PUBLIC_KEY)",
        "jwt.decode(token, PUBLIC_KEY)",
    )
    lib = [
        py_frame(SITE + "jwt/api_jwt.py", 210, "decode", "decoded = self.decode_complete(", ""),
        py_frame(SITE + "jwt/api_jwt.py", 151, "decode_complete", "decoded = api_jws.decode_complete(", ""),
        py_frame(SITE + "jwt/api_jws.py", 185, "decode_complete", "raise DecodeError(", ""),
    ]  # fmt: skip
    exc = ('jwt.exceptions.DecodeError: It is required that you pass in a value for the "algorithms" argument '
           "when calling decode().")  # fmt: skip
    return py_traceback([*starlette, auth, *lib], exc)


def generate(out: Path, seed: int) -> dict[str, Any]:
    h = history()
    repo = build_repo(out, h)
    tree = h.tree_of("deployed")
    line = line_no(tree["requirements.txt"], "pyjwt==2.9.0")
    trace = _trace(tree)
    clock = Clock(DAY)
    rnd = random.Random(f"{CASE}:{seed}")
    logs = Logs()
    name = "accounts.log"
    start, end, deploy = 7 * H, 13 * H, 9 * H + 12 * M + 40 * S + 120

    def pl(ms: int, level: str, logger: str, msg: str) -> str:
        return f"{clock.py(ms)} [{level}] {logger}: {msg}"

    def access(r: random.Random, ms: int) -> tuple[str, str]:
        return name, pl(ms, "INFO", "uvicorn.access",
                        f'10.0.{r.randrange(1, 4)}.{r.randrange(2, 250)}:{r.randrange(30000, 61000)} - '
                        f'"GET {r.choice(["/v1/me", "/healthz", "/v1/sessions"])} HTTP/1.1" 200')  # fmt: skip

    add_noise(logs, rnd, start, end, 100, [(1, access)])
    for ms in arrivals(rnd, start, end, 1 / 8):
        logs.add(
            name,
            ms,
            pl(
                ms,
                "ERROR",
                "accounts.ratelimit",
                "rate limiter unavailable: Error 111 connecting to redis-rl.internal:6379. Connection refused.",
            ),
        )
    logs.add(name, deploy - 5000, pl(deploy - 5000, "INFO", "uvicorn.error", "Shutting down"))
    logs.add(name, deploy - 800, pl(deploy - 800, "INFO", "uvicorn.error", "Application startup complete."))
    deployed_sha = repo.sha("deployed")
    logs.add(name, deploy, pl(deploy, "INFO", "deploy", f"accounts 1.9.0 running (commit {deployed_sha[:7]})"))
    onset = None
    for ms in arrivals(rnd, deploy + 2 * S, end, 2.6):
        onset = onset or ms
        logs.add(name, ms, pl(ms, "ERROR", "uvicorn.error", f"Exception in ASGI application\n{trace}"))
    assert onset is not None
    counts = logs.write(out / "logs", rotate={name: [10 * H]})
    expected = expected_base(
        case=CASE,
        service=SERVICE,
        seed=seed,
        summary="PyJWT 2 needs algorithms= in jwt.decode; the bump in requirements.txt broke every token check.",
        repo=repo,
        culprit_role="culprit",
        file="requirements.txt",
        line=line,
        signature=r"DecodeError",
        onset=clock.iso(onset),
        onset_tolerance_s=60,
        deploy={"time": clock.iso(deploy), "sha": deployed_sha, "version": "1.9.0"},
        decoy_roles=["decoy", "decoy_lock"],
        stack="python/fastapi/uvicorn",
        formats=["python logging", "python traceback ending in site-packages"],
        runbooks=write_runbooks(out, RUNBOOKS),
    )
    return finish(out, expected, counts)
