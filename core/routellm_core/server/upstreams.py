"""Upstreams: the two models the server routes between, behind one small interface.

- :class:`OpenAIUpstream`: any OpenAI-compatible endpoint through the ``openai`` async client. The request body
  goes out unchanged (tools, ``response_format``, ``stream_options``... included) but for ``model``, and the
  upstream's JSON comes back unchanged (``usage`` included).
- :class:`ChatModelUpstream`: a LangChain chat model (``init_chat_model("anthropic:...")``), with OpenAI messages,
  tools and answers converted both ways.

Only :class:`OpenAIUpstream` speaks OpenAI's Responses API too (:meth:`Upstream.respond`, ``POST /responses``: the
upstream stores the responses a ``previous_response_id`` continues); the server refuses ``/v1/responses`` for a
pair with any other upstream.

Both answer a non-streamed call within ``timeout`` seconds and a streamed one with at most ``timeout`` seconds
between chunks, or raise ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

from routellm_core._optional import requires_extra
from routellm_core.errors import InvalidInputError

#: API key sent to an OpenAI-compatible endpoint given by URL when its key variable is unset (local servers).
NO_KEY = "not-needed"


class UpstreamProtocolError(RuntimeError):
    """An upstream answered something that is not a chat completion (or chunk) object, or response (or event)."""


#: Request fields a LangChain chat model would hand to its provider's SDK as transport options (headers, query
#: string, raw body fields, timeout) instead of sending them as request fields: a client could set the headers of
#: the server's own authenticated call (``OpenAI-Organization``, ``Authorization``...). No chat-completions request
#: has them (the ``openai`` SDK merges its own ``extra_*`` arguments into the request before sending it).
SDK_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
#: Request fields a LangChain chat model takes as its own run options, not the provider's: ``metadata`` (an OpenAI
#: field, key-value tags of a request) becomes the LangChain run's metadata (what tracing shows); the others are no
#: chat-completions fields and are refused (binding them raised ``TypeError``, a 502).
RUN_OPTIONS = frozenset({"tags", "run_name", "run_id", "callbacks", "config", "input", "run_manager", "prompts"})
#: OpenAI's limits on a request's ``metadata``: pairs, key and value lengths (values are strings).
METADATA_LIMITS = (16, 64, 512)


class UpstreamRequestRefused(ValueError):
    """A request an upstream refuses before calling its model: answered 400 with this message (``status_code``,
    ``code`` and ``message`` as an upstream's refusal carries them)."""

    status_code = 400
    code = "unsupported_parameter"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _response_error(event: Mapping[str, Any], url: Any) -> Exception:
    """The error a Responses upstream reported in a 200 answer: an ``error`` event (``code``, ``message`` at its top
    level, or under ``error``), or a response (or ``response.failed`` event) whose status is ``failed``."""
    import httpx
    import openai

    response = event.get("response") if isinstance(event.get("response"), Mapping) else event
    error = response.get("error") if isinstance(response.get("error"), Mapping) else event
    message = error.get("message") if isinstance(error.get("message"), str) else "the response failed"
    body = {"message": message, "code": error.get("code"), "type": error.get("type")}
    return openai.APIError(message, httpx.Request("POST", str(url)), body=body)


class Upstream(ABC):
    """One side's model.

    Attributes:
        name: Display name (the model), used in headers, metrics, the decision record and errors; never a secret.
    """

    name: str

    @abstractmethod
    async def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A chat completion (OpenAI JSON) for ``body`` (an OpenAI request body without ``model``/``stream``)."""

    @abstractmethod
    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Chat completion chunks (OpenAI JSON) for ``body``; closing the iterator closes the upstream stream."""

    #: Whether :meth:`respond` and :meth:`respond_stream` call the upstream's Responses API.
    speaks_responses: bool = False

    async def respond(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A Responses API response object (OpenAI JSON) for ``body`` (a Responses request without ``model``/
        ``stream``).

        Raises:
            NotImplementedError: The upstream does not speak the Responses API (:attr:`speaks_responses`).
        """
        raise NotImplementedError(f"the upstream {self.name!r} does not speak OpenAI's Responses API")

    def respond_stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Responses API stream events (OpenAI JSON) for ``body``; closing the iterator closes the upstream stream.

        Raises:
            NotImplementedError: The upstream does not speak the Responses API (:attr:`speaks_responses`).
        """
        raise NotImplementedError(f"the upstream {self.name!r} does not speak OpenAI's Responses API")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in an answer or a log (API keys)."""
        return ()

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class OpenAIUpstream(Upstream):
    """An OpenAI-compatible endpoint (chat completions, and the Responses API), through the ``openai`` async client.

    Args:
        model: The model name the endpoint knows.
        base_url: Endpoint base URL, e.g. ``http://127.0.0.1:8000/v1`` (``None``: the client's default).
        api_key: API key (default: ``$OPENAI_API_KEY`` for api.openai.com; none for an endpoint given by URL).
        timeout: Seconds for a whole answer, or between two streamed chunks.
        max_retries: The client's own retries (connection errors, 429, 5xx).
        name: Display name (default: ``model``).
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 0,
        name: str | None = None,
    ) -> None:
        with requires_extra("server", "the OpenAI-compatible upstream"):
            import openai

        if not api_key:  # $OPENAI_API_KEY goes to api.openai.com only, never to another URL
            api_key = NO_KEY if base_url else os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise InvalidInputError(f"the upstream {model!r} calls api.openai.com and needs an API key")
        self.model = model
        self.name = name or model
        self.timeout = timeout
        self._api_key = api_key
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries)
        self._stream_cls = openai.AsyncStream[object]

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._api_key,) if self._api_key and self._api_key != NO_KEY else ()

    @property
    def base_url(self) -> str:
        """The endpoint the client calls (OpenAI's when none was given)."""
        return str(self._client.base_url)

    speaks_responses = True

    async def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._post("/chat/completions", body, "a chat completion object")

    def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._events("/chat/completions", body, "a chunk object")

    async def respond(self, body: Mapping[str, Any]) -> dict[str, Any]:
        answer = await self._post("/responses", body, "a response object")
        if answer.get("status") == "failed":  # a response object the upstream could not complete
            raise _response_error(answer, self._client.base_url.join("responses"))
        return answer

    def respond_stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        return self._events("/responses", body, "an event object")

    async def _post(self, path: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        payload = {**body, "model": self.model}
        answer = await asyncio.wait_for(self._client.post(path, cast_to=object, body=payload), self.timeout)
        if not isinstance(answer, dict):
            raise UpstreamProtocolError(f"{self.name} answered {type(answer).__name__}, not {what}")
        return answer

    async def _events(self, path: str, body: Mapping[str, Any], what: str) -> AsyncIterator[dict[str, Any]]:
        # The client's timeout bounds the wait for the headers and for each read (httpx's read timeout).
        payload = {**body, "model": self.model, "stream": True}
        events = await self._client.post(path, cast_to=object, body=payload, stream=True, stream_cls=self._stream_cls)
        try:
            async for chunk in events:
                if not isinstance(chunk, dict):
                    raise UpstreamProtocolError(f"{self.name} streamed {type(chunk).__name__}, not {what}")
                if path == "/responses" and chunk.get("type") in ("error", "response.failed"):
                    raise _response_error(chunk, events.response.request.url)  # OpenAI's shape: the SDK passes it on
                yield chunk
        finally:
            await events.close()

    async def aclose(self) -> None:
        await self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIUpstream(model={self.model!r}, base_url={str(self._client.base_url)!r})"


def _checked_metadata(metadata: Any) -> dict[str, str]:
    """A request's ``metadata`` as OpenAI takes it (at most 16 string pairs, keys up to 64 characters, values up to
    512), none of LangChain's own tracing keys (``ls_*``: a client would misattribute the run's model and cost).

    Raises:
        UpstreamRequestRefused: Anything else, naming the problem.
    """
    pairs, key_len, value_len = METADATA_LIMITS
    if not isinstance(metadata, Mapping):
        raise UpstreamRequestRefused(f"metadata must be an object of key-value pairs, got {metadata!r:.60}")
    if len(metadata) > pairs:
        raise UpstreamRequestRefused(f"metadata holds at most {pairs} key-value pairs, got {len(metadata)}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 0 < len(key) <= key_len:
            raise UpstreamRequestRefused(f"metadata keys are strings of 1 to {key_len} characters, got {key!r:.80}")
        if key.startswith("ls_"):
            raise UpstreamRequestRefused(f"metadata key {key!r:.80}: keys starting with 'ls_' are LangChain's own")
        if not isinstance(value, str) or len(value) > value_len:
            raise UpstreamRequestRefused(
                f"metadata values are strings of at most {value_len} characters, got {value!r:.80} for {key!r:.80}"
            )
    return dict(metadata)


class ChatModelUpstream(Upstream):
    """A LangChain chat model (from ``init_chat_model`` or given), speaking OpenAI JSON to the server.

    Tools and ``tool_choice`` are bound with ``bind_tools``; the other request fields (``temperature``,
    ``max_tokens``, ``response_format``...) are bound as call arguments, which the provider's model receives, but
    ``metadata``, which becomes the LangChain run's metadata (what tracing shows; it does not reach the provider).

    Args:
        model: The chat model.
        name: Display name (default: the model's ``model_name`` / ``model``, else its class name).
        timeout: Seconds for a whole answer, or between two streamed chunks.
    """

    def __init__(self, model: Any, *, name: str | None = None, timeout: float = 120.0) -> None:
        self.model = model
        self.name = name or str(
            getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
        )
        self.timeout = timeout

    def _prepare(self, body: Mapping[str, Any]) -> tuple[Any, list[Any], bool, dict[str, Any]]:
        """The bound model, the messages, whether usage is asked for in a stream, and the run's config (its
        ``metadata`` from the request's).

        Raises:
            UpstreamRequestRefused: A field the LangChain model would not send as a request field (transport or run
                options), or a ``metadata`` that is not an object.
        """
        from langchain_core.messages import convert_to_messages

        params = dict(body)
        smuggled = sorted(SDK_OPTIONS.intersection(params))
        if smuggled:
            raise UpstreamRequestRefused(
                f"{', '.join(smuggled)} {'is' if len(smuggled) == 1 else 'are'} no chat-completions request field "
                f"(the SDKs' transport options; the {self.name!r} LangChain model would apply them to the server's "
                "own call): leave them out of the request body"
            )
        run_options = sorted(RUN_OPTIONS.intersection(params))
        if run_options:
            raise UpstreamRequestRefused(
                f"{', '.join(run_options)} {'is' if len(run_options) == 1 else 'are'} no chat-completions request "
                f"field (the {self.name!r} LangChain model would read it as its own run option): leave it out"
            )
        config: dict[str, Any] = {}
        metadata = params.pop("metadata", None)
        if metadata:
            config["metadata"] = _checked_metadata(metadata)
        messages = convert_to_messages(params.pop("messages"))
        usage = bool((params.pop("stream_options", None) or {}).get("include_usage"))
        tools = params.pop("tools", None)
        tool_choice = params.pop("tool_choice", None)
        runnable = self.model
        if tools:
            runnable = runnable.bind_tools(tools, **({"tool_choice": tool_choice} if tool_choice else {}))
        if params:
            runnable = runnable.bind(**params)
        return runnable, messages, usage, config

    async def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        from langchain_core.messages import convert_to_openai_messages

        runnable, messages, _, config = self._prepare(body)
        message = await asyncio.wait_for(runnable.ainvoke(messages, config=config or None), self.timeout)
        meta = message.response_metadata or {}
        reply = convert_to_openai_messages(message, text_format="string")
        return {
            "id": message.id or _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": meta.get("model_name") or self.name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.get("content") or None, **_tool_calls(reply)},
                    "finish_reason": meta.get("finish_reason") or ("tool_calls" if message.tool_calls else "stop"),
                }
            ],
            **_usage(message.usage_metadata),
        }

    async def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        from langchain_core.messages.ai import add_usage

        runnable, messages, include_usage, config = self._prepare(body)
        chunks = runnable.astream(messages, config=config or None)
        head = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time())}
        model, finish, tool_called, usage = self.name, None, False, None
        try:
            first = True
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), self.timeout)
                except StopAsyncIteration:
                    break
                meta = chunk.response_metadata or {}
                model = meta.get("model_name") or model
                finish = meta.get("finish_reason") or finish
                if chunk.usage_metadata:  # summed: providers split it (Anthropic: input first, output last)
                    usage = add_usage(usage, chunk.usage_metadata)
                delta: dict[str, Any] = {"role": "assistant"} if first else {}
                if text := chunk.text:
                    delta["content"] = text
                if chunk.tool_call_chunks:
                    tool_called = True
                    delta["tool_calls"] = [
                        {
                            "index": tc.get("index") if tc.get("index") is not None else i,
                            "id": tc.get("id"),
                            "type": "function",
                            "function": {"name": tc.get("name"), "arguments": tc.get("args") or ""},
                        }
                        for i, tc in enumerate(chunk.tool_call_chunks)
                    ]
                if delta:  # the first chunk always (it names the role), later ones when they carry something
                    first = False
                    yield {**head, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        finally:
            await chunks.aclose()
        reason = finish or ("tool_calls" if tool_called else "stop")
        yield {**head, "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}
        if include_usage:
            yield {**head, "model": model, "choices": [], **(_usage(usage) or {"usage": None})}

    def __repr__(self) -> str:
        return f"ChatModelUpstream(name={self.name!r}, model={type(self.model).__name__})"


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _tool_calls(reply: Mapping[str, Any]) -> dict[str, Any]:
    return {"tool_calls": reply["tool_calls"]} if reply.get("tool_calls") else {}


def _usage(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    if not usage:
        return {}
    prompt, completion = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    total = int(usage.get("total_tokens", prompt + completion))
    return {"usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}}


def build_upstream(
    spec: str,
    *,
    side: str,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    timeout: float = 120.0,
    max_retries: int = 0,
) -> Upstream:
    """The upstream for a CLI spec.

    ``"openai:<model>"`` or a bare ``"<model>"`` is an OpenAI-compatible endpoint (``base_url``, key from
    ``$api_key_env``); any other ``"<provider>:<model>"`` goes through LangChain's ``init_chat_model`` (with
    ``base_url`` when given). A model name with a colon (Ollama's ``llama3:8b``) needs the prefix:
    ``"openai:llama3:8b"``.

    Raises:
        InvalidInputError: A blank spec, or no API key for api.openai.com.
        MissingDependencyError: The ``openai`` client, or LangChain for a provider spec, is not installed.
    """
    provider, sep, model = spec.partition(":")
    if not sep:
        provider, model = "openai", spec
    if not model.strip() or not provider.strip():
        raise InvalidInputError(f"the {side} upstream {spec!r} is not '<provider>:<model>' or a model name")
    if provider == "openai":
        key = os.environ.get(api_key_env) or None
        if key is None:
            if base_url is None:
                raise InvalidInputError(
                    f"the {side} upstream {spec!r} calls api.openai.com and needs an API key: set ${api_key_env} "
                    f"(or --{side}-api-key-env NAME), or give --{side}-base-url for a local endpoint"
                )
            key = NO_KEY
        return OpenAIUpstream(model, base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)
    with requires_extra("langchain", f"the {side} upstream {spec!r} (LangChain's init_chat_model)"):
        from langchain.chat_models import init_chat_model
    try:
        chat_model = init_chat_model(spec, **({"base_url": base_url} if base_url else {}))
    except (ImportError, ValueError) as exc:
        raise InvalidInputError(f"cannot build the {side} upstream {spec!r}: {exc}") from exc
    return ChatModelUpstream(chat_model, name=model, timeout=timeout)
