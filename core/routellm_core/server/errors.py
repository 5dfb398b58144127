"""OpenAI-style error answers, and the status each upstream failure maps to.

Every error the server answers has OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, so the
``openai`` SDK raises its usual exception types (``BadRequestError``, ``RateLimitError``...) on the client side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from routellm_core.errors import ModelCallError, RouteLLMError
from routellm_core.routing.dispatch import EmptyResponseError

#: Upstream statuses that mean "the request itself was refused": passed on to the client with the upstream's message.
_CLIENT_STATUSES = frozenset({400, 404, 409, 413, 422})
#: Secrets this long or longer are masked wherever they occur in a message; shorter ones only as whole tokens.
MASK_ANYWHERE_CHARS = 12
#: Characters that join a token to the next when a word character follows (``gpt-4o``, ``openai/gpt-4o``).
#: Characters that join a short secret into a longer name: before it (``ollama/llama3``; not ``:``, which sets a value
#: after its key: ``token:abc``) and after it (``qwen2:7b``; not ``@``, which ends a URL's credentials: ``u:abc@host``).
_JOINS_BEFORE, _JOINS_AFTER = re.escape("-./@+"), re.escape("-./:+")
#: Longest error message answered, in characters: a message quoting what the client sent (a model name) or what an
#: upstream said is cut there, so an error never echoes a whole request body back.
MAX_MESSAGE_CHARS = 1000


def _shortened(message: str) -> str:
    """``message``, cut to :data:`MAX_MESSAGE_CHARS` characters (ending ``... [cut from N characters]``) when longer."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    tail = f"... [cut from {len(message)} characters]"
    return message[: MAX_MESSAGE_CHARS - len(tail)] + tail


class ErrorResponse(RouteLLMError):
    """An error answered to the client as OpenAI-style JSON.

    Args:
        status: HTTP status.
        message: Human-readable message (never holds a key; a prompt only if the client sent it as a model name);
            cut to :data:`MAX_MESSAGE_CHARS` characters.
        code: Machine-readable code (``"invalid_messages"``, ``"upstream_timeout"``...).
        type: OpenAI error type.
        param: The request field at fault, if any.
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``...).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = _shortened(message)
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type = type
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _masker(secret: str) -> re.Pattern[str]:
    """The pattern of ``secret`` where it is masked: anywhere when long, else only as a token of its own."""
    escaped = re.escape(secret)
    if len(secret) >= MASK_ANYWHERE_CHARS:
        return re.compile(escaped)
    # Not inside a longer word or name: no word character next to it, nor a joiner next to one (``gpt-4o`` keeps
    # its ``4o``, ``ollama/llama3`` its ``ollama``); sentence punctuation does not join.
    return re.compile(rf"(?<!\w)(?<!\w[{_JOINS_BEFORE}]){escaped}(?!\w)(?![{_JOINS_AFTER}]\w)")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``.

    A secret of :data:`MASK_ANYWHERE_CHARS` characters or more (any real API key) is masked wherever it occurs; a
    shorter one (``"abc"``, a local server's ``"ollama"``) only where it stands as a token of its own, so that model
    names and words that merely contain it stay readable (``"sk"`` does not mask ``"sk-proj-..."``, nor ``"4o"``
    ``"gpt-4o"``). Longer secrets are masked first, so a short one inside a long one cannot leave part of it shown.
    Blank secrets are ignored.
    """
    for secret in sorted({s for s in secrets if s and s.strip()}, key=len, reverse=True):
        text = _masker(secret).sub("***", text)
    return text


def short_secret_warning(secrets: Iterable[str]) -> str | None:
    """The warning a server logs at startup when some secrets (API keys, bearer tokens) are shorter than
    :data:`MASK_ANYWHERE_CHARS` characters, or ``None``: error messages mask those only as whole tokens, and a key
    that short is easily guessed. The message shows no part of any secret."""
    short = [s for s in dict.fromkeys(secrets) if s and s.strip() and len(s) < MASK_ANYWHERE_CHARS]
    if not short:
        return None
    lengths = ", ".join(str(len(s)) for s in short)
    return (
        f"{len(short)} secret(s) (API keys or bearer tokens) are shorter than {MASK_ANYWHERE_CHARS} characters "
        f"({lengths}): error messages mask them only where they stand alone, and they are easy to guess; use "
        "longer keys unless the upstream ignores them (a local server)"
    )


def _upstream_message(exc: BaseException) -> str:
    """The message an upstream gave with its error (the ``message`` of an OpenAI error body), else ``str(exc)``."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping) and isinstance(body.get("message"), str):
        return body["message"]
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else str(exc)


def _status_code(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def classify_failure(exc: BaseException | None) -> tuple[int, str, str, dict[str, str]]:
    """``(status, code, detail, headers)`` for an upstream failure.

    The upstream's own message is shown only when the request itself was refused (400, 404, 409, 413, 422) or
    rate-limited (429): the client can act on it. Refused credentials (401, 403) and server errors become 502 with
    the status only, so the upstream's text about the server's key never reaches the client.
    """
    import httpx
    import openai

    if isinstance(exc, EmptyResponseError):
        return 502, "upstream_empty_response", "it answered with an empty message (no text and no tool call)", {}
    if isinstance(exc, (TimeoutError, openai.APITimeoutError, httpx.TimeoutException)):
        return 504, "upstream_timeout", "it did not answer in time", {}
    status = _status_code(exc) if exc is not None else None
    if status is not None:
        if status in _CLIENT_STATUSES:
            code = getattr(exc, "code", None)
            return status, code if isinstance(code, str) else "upstream_rejected_request", _upstream_message(exc), {}
        if status == 429:
            retry = getattr(getattr(exc, "response", None), "headers", {}).get("retry-after")
            return 429, "upstream_rate_limited", _upstream_message(exc), {"Retry-After": retry} if retry else {}
        if status in (401, 403):
            return 502, "upstream_auth_failed", f"it refused the server's credentials (status {status})", {}
        return 502, "upstream_error", f"it failed with status {status}", {}
    if isinstance(exc, (openai.APIConnectionError, httpx.TransportError, ConnectionError)):
        return 502, "upstream_unreachable", f"it could not be reached ({type(exc).__name__})", {}
    if isinstance(exc, openai.APIError):  # an error event inside a stream
        return 502, "upstream_error", _upstream_message(exc), {}
    return 502, "upstream_error", f"it failed ({type(exc).__name__})", {}


def model_call_error(err: ModelCallError, secrets: Iterable[str] = ()) -> ErrorResponse:
    """The answer for a failed upstream call (after the fallback, when one was tried)."""
    status, code, detail, headers = classify_failure(err.__cause__)
    chosen = getattr(err.decision, "choice", None)
    failed = err.fallback_model if err.fallback_model is not None else err.model
    message = f"the {err.side} upstream {failed!r} failed: {detail}"
    if err.fallback_model is not None:
        message += f" (called as a fallback after the chosen {chosen} upstream {err.model!r} failed)"
    kind = "invalid_request_error" if status in _CLIENT_STATUSES else "upstream_error"
    if status == 429:
        kind = "rate_limit_error"
    return ErrorResponse(status, redact(message, secrets), code=code, type=kind, headers=headers)
