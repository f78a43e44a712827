"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1.

It stands in for a hosted model (the one part of a run that lives outside this
machine). Each request takes the next item of the script: a tool call, a text
answer, an HTTP error, or a hang. Requests are recorded so tests can check what
the gateway actually sent (for example the tool result in the second request).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route


def text(content: str) -> dict[str, Any]:
    return {"content": content}


def tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def status(code: int, message: str = "scripted error") -> dict[str, Any]:
    return {"status": code, "message": message}


def hang(seconds: float) -> dict[str, Any]:
    return {"hang": seconds}


@dataclass
class ScriptedModel:
    script: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    delay_s: float = 0.0
    default: dict[str, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)  # set by ScriptedServer on exit

    def next_item(self) -> dict[str, Any]:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        return self.default or status(500, "script exhausted")

    async def _hang(self, seconds: float) -> None:
        """Hold the request for ``seconds``, or until the server is stopping (so shutdown is prompt)."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    async def completions(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        item = self.next_item()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if "hang" in item:
            await self._hang(item["hang"])
            return JSONResponse({"error": {"message": "hung"}}, status_code=504)
        if "status" in item:
            return JSONResponse(
                {"error": {"message": item["message"], "type": "scripted", "code": str(item["status"])}},
                status_code=item["status"],
                headers={"retry-after-ms": "20"},
            )
        message: dict[str, Any] = {"role": "assistant", "content": item.get("content")}
        finish = "stop"
        if "tool_calls" in item:
            message["tool_calls"] = [
                {
                    "id": f"call_{len(self.requests)}_{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for i, c in enumerate(item["tool_calls"])
            ]
            finish = "tool_calls"
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4
        completion = len(json.dumps(message)) // 4
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        if body.get("stream"):
            return StreamingResponse(_sse(payload), media_type="text/event-stream")
        return JSONResponse(payload)


async def _sse(payload: dict[str, Any]) -> Any:
    message = payload["choices"][0]["message"]
    base = {k: payload[k] for k in ("id", "object", "created", "model")} | {"object": "chat.completion.chunk"}
    content = message.get("content") or ""
    for i in range(0, len(content), 8):
        chunk = base | {"choices": [{"index": 0, "delta": {"content": content[i : i + 8]}, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n"
    if message.get("tool_calls"):
        calls = [dict(c, index=i) for i, c in enumerate(message["tool_calls"])]
        chunk = base | {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n"
    final = base | {
        "choices": [{"index": 0, "delta": {}, "finish_reason": payload["choices"][0]["finish_reason"]}],
        "usage": payload["usage"],
    }
    yield f"data: {json.dumps(final)}\n\n"
    yield "data: [DONE]\n\n"


class ScriptedServer:
    """Runs a ScriptedModel under uvicorn in a background thread."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        app = Starlette(routes=[Route("/v1/chat/completions", model.completions, methods=["POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted model server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.model.stopping.set()  # release hanging requests, or uvicorn waits for them to finish
        self.server.should_exit = True
        self.thread.join(timeout=10)
        if self.thread.is_alive():
            raise RuntimeError("scripted model server did not stop within 10 s")
