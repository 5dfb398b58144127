"""A local OpenAI-compatible echo endpoint, for the server's tests, its load benchmark and offline demos.

``POST /v1/chat/completions`` answers ``"[<model>] <last user text>"`` (streamed or not, with ``usage``), so every
answer names the upstream model that wrote it and carries the request's own text back. Directives in the last
user message change the answer; ``@<model>`` limits one to that model (``[status:500@mock-strong]``):

- ``[status:N]``: answer an OpenAI error body with HTTP status N (a 401 echoes the ``Authorization`` header, as
  a careless upstream might);
- ``[empty]``: an empty message (no text, no tool call);
- ``[sleep:S]``: wait S seconds first;
- ``[drip:S]``: stream with S seconds between chunks;
- ``[break:N]``: stream N text chunks, then an error event;
- ``[tool]``: call the first tool of the request with ``{"echo": <text>}``.

The last request bodies are kept in ``app.state.received`` (a bounded deque), for tests of what reached it.
Run alone: ``python -m routellm_core.server.mock_upstream --port 8001``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

_DIRECTIVE = re.compile(r"\[(status|empty|sleep|drip|break|tool)(?::([^\]@]*))?(?:@([^\]]+))?\]")


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(p.get("text", "") for p in content or () if p.get("type") == "text")
    return ""


def _directives(text: str, model: str) -> dict[str, str]:
    return {m[1]: m[2] or "" for m in _DIRECTIVE.finditer(text) if not m[3] or m[3] == model}


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status_code=status, media_type="application/json")


def create_mock_upstream(keep: int = 64) -> FastAPI:
    """The echo endpoint as a FastAPI app (``app.state.received`` holds the last ``keep`` request bodies)."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.received = deque(maxlen=keep)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = await request.json()
        app.state.received.append(body)
        model = str(body.get("model", ""))
        text = _last_user_text(body.get("messages") or [])
        todo = _directives(text, model)
        if "sleep" in todo:
            await asyncio.sleep(float(todo["sleep"]))
        if "status" in todo:
            status = int(todo["status"])
            message = f"mock failure {status} for {model}"
            if status == 401:
                message = f"Incorrect API key provided: {request.headers.get('authorization', '')}"
            return _json({"error": {"message": message, "type": "mock_error", "param": None, "code": None}}, status)
        tools = body.get("tools") or []
        call = None
        if "tool" in todo and tools:
            name = tools[0]["function"]["name"]
            call = {"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function", "function": {"name": name}}
            call["function"]["arguments"] = json.dumps({"echo": text})
        content = "" if "empty" in todo or call else f"[{model}] {text}"
        usage = {
            "prompt_tokens": len(text.split()),
            "completion_tokens": len(content.split()),
            "total_tokens": len(text.split()) + len(content.split()),
        }
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}
        finish = "tool_calls" if call else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content if not call else None}
            if call:
                message["tool_calls"] = [call]
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return _json({**head, "object": "chat.completion", "choices": [choice], "usage": usage})
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        broken = int(todo["break"]) if "break" in todo else None
        drip = float(todo.get("drip") or 0.0)
        return StreamingResponse(
            _stream(head, content, call, finish, usage if include_usage else None, broken, drip),
            media_type="text/event-stream",
        )

    return app


async def _stream(
    head: dict[str, Any],
    content: str,
    call: dict[str, Any] | None,
    finish: str,
    usage: dict[str, int] | None,
    broken: int | None,
    drip: float,
) -> AsyncIterator[bytes]:
    def event(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        chunk = {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}], **extra}
        chunk["choices"][0]["finish_reason"] = reason
        return f"data: {json.dumps(chunk)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    if call:
        first = {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"]}}
        first["function"]["arguments"] = ""
        yield event({"tool_calls": [first]})
        yield event({"tool_calls": [{"index": 0, "function": {"arguments": call["function"]["arguments"]}}]})
    pieces = re.findall(r"\S+\s*", content)
    for i, piece in enumerate(pieces):
        if broken is not None and i >= broken:
            error = {"error": {"message": "mock stream broke", "type": "mock_error", "param": None, "code": None}}
            yield f"data: {json.dumps(error)}\n\n".encode()
            return
        if drip:
            await asyncio.sleep(drip)
        yield event({"content": piece})
    yield event({}, finish)
    if usage is not None:
        chunk = {**head, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def main() -> None:
    """Serve the echo endpoint (``--host``, ``--port``)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create_mock_upstream(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
