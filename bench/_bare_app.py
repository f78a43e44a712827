"""Baseline server: a bare FastAPI app whose POST /v1/tasks does the same insert as the gateway.

python -m bench._bare_app PORT DATABASE_URL
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request

from gateway.store import open_store


def build(url: str) -> FastAPI:
    store = open_store(url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await store.migrate()
        yield
        await store.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/tasks", status_code=202)
    async def submit(request: Request) -> dict[str, Any]:
        body = await request.json()
        record, _ = await store.create_task(body["crew"], body["inputs"], "baseline")
        return {"id": record.id, "status": record.status.value}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        await store.ping()
        return {"status": "ready"}

    return app


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(build(url), host="127.0.0.1", port=port, log_level="warning", access_log=True)
