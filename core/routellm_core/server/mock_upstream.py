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

``POST /v1/responses`` is the same echo in OpenAI's Responses API (a response object, or its stream events with
``usage`` on ``response.completed``), with the same directives (``[tool]`` calls the first function tool). Like
OpenAI it stores each response: a ``previous_response_id`` it did not answer, or that another model answered, is a
404 ``previous_response_not_found``.

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


def _last_input_text(given: Any) -> str:
    if isinstance(given, str):
        return given
    for item in reversed(given or ()):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return "\n".join(p.get("text", "") for p in content or () if p.get("type") == "input_text")
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

    app.state.stored = {}  # response id -> the model that answered it (OpenAI's store)

    @app.post("/v1/responses")
    async def responses(request: Request) -> Response:
        body = await request.json()
        app.state.received.append(body)
        model = str(body.get("model", ""))
        text = _last_input_text(body.get("input"))
        todo = _directives(text, model)
        if "sleep" in todo:
            await asyncio.sleep(float(todo["sleep"]))
        previous = body.get("previous_response_id")
        if previous is not None and app.state.stored.get(previous) != model:
            error = {
                "message": f"Previous response with id '{previous}' not found.",
                "type": "invalid_request_error",
                "param": "previous_response_id",
                "code": "previous_response_not_found",
            }
            return _json({"error": error}, 404)
        if "status" in todo:
            status = int(todo["status"])
            return _json({"error": {"message": f"mock failure {status} for {model}", "type": "mock_error"}}, status)
        function = next((t for t in body.get("tools") or () if t.get("type") == "function"), None)
        content = "" if "empty" in todo or ("tool" in todo and function) else f"[{model}] {text}"
        response = _response(body, model, content, text)
        if "tool" in todo and function:
            arguments = json.dumps({"echo": text})
            call = {"id": f"fc_{uuid.uuid4().hex[:12]}", "type": "function_call", "status": "completed"}
            response["output"] = [{**call, "call_id": f"call_{uuid.uuid4().hex[:8]}", "name": function["name"]}]
            response["output"][0]["arguments"] = arguments
        app.state.stored[response["id"]] = model
        if not body.get("stream"):
            return _json(response)
        broken = int(todo["break"]) if "break" in todo else None
        drip = float(todo.get("drip") or 0.0)
        return StreamingResponse(_events(response, broken, drip), media_type="text/event-stream")

    return app


def _response(body: dict[str, Any], model: str, content: str, text: str) -> dict[str, Any]:
    """A completed response object answering ``content`` (one message; none when ``content`` is empty)."""
    part = {"type": "output_text", "text": content, "annotations": [], "logprobs": []}
    message = {"id": f"msg_{uuid.uuid4().hex[:12]}", "type": "message", "status": "completed", "role": "assistant"}
    output = [{**message, "content": [part]}] if content else []
    words_in, words_out = len(text.split()), len(content.split())
    return {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": {
            "input_tokens": words_in,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": words_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": words_in + words_out,
        },
        "user": None,
        "metadata": body.get("metadata") or {},
    }


async def _events(response: dict[str, Any], broken: int | None, drip: float) -> AsyncIterator[bytes]:
    """``response`` as the Responses API streams it: created, in progress, each output item with its deltas, then
    completed (``[break:N]``: an error after N text deltas)."""
    number = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal number
        data = {"type": kind, **fields, "sequence_number": number}
        number += 1
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()

    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    yield event("response.created", response=pending)
    yield event("response.in_progress", response=pending)
    for index, item in enumerate(response["output"]):
        at = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "function_call":
            yield event("response.output_item.added", output_index=index, item={**item, "arguments": ""})
            yield event("response.function_call_arguments.delta", **at, delta=item["arguments"])
            yield event("response.function_call_arguments.done", **at, arguments=item["arguments"])
            yield event("response.output_item.done", output_index=index, item=item)
            continue
        part = item["content"][0]
        yield event("response.output_item.added", output_index=index, item={**item, "content": []})
        yield event("response.content_part.added", **at, content_index=0, part={**part, "text": ""})
        for i, piece in enumerate(re.findall(r"\S+\s*", part["text"])):
            if broken is not None and i >= broken:
                # OpenAI's shape: code, message and param at the top level (the openai SDK passes it on, unraised)
                error = {"type": "error", "code": "mock_error", "message": "mock stream broke", "param": None}
                yield f"event: error\ndata: {json.dumps(error)}\n\n".encode()
                return
            if drip:
                await asyncio.sleep(drip)
            yield event("response.output_text.delta", **at, content_index=0, delta=piece, logprobs=[])
        yield event("response.output_text.done", **at, content_index=0, text=part["text"], logprobs=[])
        yield event("response.content_part.done", **at, content_index=0, part=part)
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.completed", response=response)


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
