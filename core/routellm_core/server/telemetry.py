"""OpenTelemetry spans of routed requests, after the GenAI semantic conventions (the ``otel`` extra).

One span per routed request, named ``chat <requested model>``: ``gen_ai.operation.name``, ``gen_ai.request.model``
(the name the client asked for, ``router-default-0.5``), ``gen_ai.provider.name`` of the model that answered
(when known: see :func:`upstream_provider`), ``gen_ai.response.model`` and ``gen_ai.response.id`` (from the answer),
``gen_ai.usage.input_tokens`` / ``output_tokens``, and the routing decision as ``routellm.*`` (router, win rate,
threshold, choice, served side and model, decision id, fallback, escalated, attempts, cost).

Spans go to the tracer provider the application set up (``opentelemetry.trace.set_tracer_provider``, or
``opentelemetry-instrument``), as OpenTelemetry wants of libraries; without one, or without ``opentelemetry-api``
installed, or with ``OTEL_SDK_DISABLED=true``, nothing is recorded and nothing is imported beyond this module.
:func:`record_span` is the same span for any front end that holds a
:class:`~routellm_core.decisions.ServedDecision`.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from routellm_core.decisions import Route, ServedDecision

logger = logging.getLogger(__name__)

#: The instrumentation scope's name.
SCOPE = "routellm"
#: GenAI operation of a routed chat completion.
OPERATION = "chat"

#: ``gen_ai.provider.name`` (the GenAI conventions' well-known values) of an API host, by host name or suffix.
PROVIDER_HOSTS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "aiplatform.googleapis.com": "gcp.vertex_ai",
    "openai.azure.com": "azure.ai.openai",
    "services.ai.azure.com": "azure.ai.inference",
    "models.ai.azure.com": "azure.ai.inference",
    "amazonaws.com": "aws.bedrock",
    "api.mistral.ai": "mistral_ai",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
}
#: ``gen_ai.provider.name`` of a LangChain chat model, by its package (``AzureChatOpenAI`` by class name).
PROVIDER_PACKAGES: dict[str, str] = {
    "langchain_openai": "openai",
    "langchain_anthropic": "anthropic",
    "langchain_google_genai": "gcp.gemini",
    "langchain_google_vertexai": "gcp.vertex_ai",
    "langchain_aws": "aws.bedrock",
    "langchain_mistralai": "mistral_ai",
    "langchain_groq": "groq",
    "langchain_deepseek": "deepseek",
    "langchain_xai": "x_ai",
    "langchain_perplexity": "perplexity",
    "langchain_cohere": "cohere",
    "langchain_ibm": "ibm.watsonx.ai",
    "langchain_azure_ai": "azure.ai.inference",
}
#: ``gen_ai.provider.name`` of a provider id of the price table (:func:`~routellm_core.data.prices.split_provider`).
PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "azure": "azure.ai.openai",
    "aws": "aws.bedrock",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "x-ai": "x_ai",
    "perplexity": "perplexity",
    "cohere": "cohere",
}
#: Name prefixes of Google's Vertex AI (the price table files them under ``google`` with the Gemini API).
_VERTEX_PREFIXES = ("google_vertexai", "google_anthropic_vertex", "vertexai", "vertex_ai")


def _host_provider(url: object) -> str | None:
    """The provider of an API base URL's host (``https://api.groq.com/openai/v1``: ``groq``), or ``None``."""
    if not isinstance(url, str) or not url:
        return None
    host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower().rstrip(".")
    for known, provider in PROVIDER_HOSTS.items():
        if host == known or host.endswith(f".{known}"):
            return provider
    return None


@functools.lru_cache(maxsize=256)
def model_provider(model: str) -> str | None:
    """The provider a model name's prefix names (``"anthropic:claude-3-5-haiku"``, ``"openai/gpt-4o"``), as a
    ``gen_ai.provider.name``; ``None`` for a bare name or a prefix that is no provider (a Hugging Face repo)."""
    head = model.partition(":")[0].strip().lower() if ":" in model else ""
    if head in _VERTEX_PREFIXES:
        return "gcp.vertex_ai"
    from routellm_core.data.prices import split_provider

    provider, _ = split_provider(model)
    return None if provider is None else PROVIDER_IDS.get(provider)


def upstream_provider(upstream: Any) -> str | None:
    """The ``gen_ai.provider.name`` of an upstream, or ``None`` when unknown.

    From where it calls first: an OpenAI-compatible endpoint's host (api.openai.com when it has no base URL; a local
    server is unknown), a LangChain chat model's package (``ChatAnthropic``: ``anthropic``; a ``ChatOpenAI`` given
    another provider's base URL: that provider); else the provider prefix of its model name (``"groq:..."``).
    """
    from routellm_core.server.upstreams import ChatModelUpstream, OpenAIUpstream

    found: str | None = None
    if isinstance(upstream, OpenAIUpstream):
        found = _host_provider(upstream.base_url)
    elif isinstance(upstream, ChatModelUpstream):
        model = upstream.model
        base = getattr(model, "openai_api_base", None) or getattr(model, "base_url", None)
        found = _host_provider(base) if isinstance(base, str) and base else None
        if found is None:
            package = type(model).__module__.partition(".")[0]
            found = "azure.ai.openai" if type(model).__name__ == "AzureChatOpenAI" else PROVIDER_PACKAGES.get(package)
            if found == "openai" and isinstance(base, str) and base:  # ChatOpenAI at an unknown (local) server
                found = None
    name = getattr(upstream, "name", None)
    return found or (model_provider(name) if isinstance(name, str) else None)


def _api() -> Any | None:
    """``opentelemetry.trace``, or ``None`` when not installed or disabled (``OTEL_SDK_DISABLED=true``)."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace


def _tokens(record: ServedDecision, usage: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """(input, output) tokens: the attempts' sum when every attempt reported them, else the answer's usage."""
    attempts = record.attempts
    if attempts and all(a.input_tokens is not None and a.output_tokens is not None for a in attempts):
        return sum(a.input_tokens or 0 for a in attempts), sum(a.output_tokens or 0 for a in attempts)
    if not isinstance(usage, Mapping):
        return None, None

    def count(*keys: str) -> int | None:
        for key in keys:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return value
        return None

    return count("prompt_tokens", "input_tokens"), count("completion_tokens", "output_tokens")


def span_attributes(
    record: ServedDecision,
    *,
    request_model: str | None = None,
    response_model: str | None = None,
    response_id: str | None = None,
    usage: Mapping[str, Any] | None = None,
    provider: str | None = None,
) -> dict[str, str | int | float | bool]:
    """The span's attributes for a served decision (GenAI conventions plus ``routellm.*``); ``provider`` is the
    served model's ``gen_ai.provider.name`` (default: the provider its name's prefix names, if any)."""
    attributes: dict[str, str | int | float | bool] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.request.model": request_model or f"router-{record.router}",
        "gen_ai.response.model": response_model or record.model,
        "routellm.router": record.router,
        "routellm.win_rate": float(record.win_rate),
        "routellm.threshold": float(record.threshold),
        "routellm.choice": record.choice,
        "routellm.served": record.served,
        "routellm.model": record.model,
        "routellm.decision_id": record.id,
        "routellm.fallback": record.fallback,
        "routellm.escalated": record.escalated,
        "routellm.continued": record.continued,
        "routellm.attempts": len(record.attempts),
    }
    if response_id:
        attributes["gen_ai.response.id"] = response_id
    provider = provider or (model_provider(record.model) if record.model else None)
    if provider:
        attributes["gen_ai.provider.name"] = provider
    if record.fallback_error:
        attributes["routellm.fallback_error"] = record.fallback_error
    if record.cost is not None:
        attributes["routellm.cost"] = float(record.cost)
    input_tokens, output_tokens = _tokens(record, usage)
    if input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = output_tokens
    return attributes


def record_span(
    record: ServedDecision,
    *,
    request_model: str | None = None,
    response_model: str | None = None,
    response_id: str | None = None,
    usage: Mapping[str, Any] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    error: str | None = None,
    tracer_provider: Any | None = None,
    provider: str | None = None,
) -> bool:
    """Record one finished routed call as a span (a child of the current span, if any).

    Args:
        record: The decision record of the call.
        request_model: The model name the caller asked for (default ``router-<router>``).
        response_model: The model the answer names (default: the served model's name).
        response_id: The answer's id.
        usage: The answer's ``usage`` (OpenAI's ``prompt_tokens`` / ``completion_tokens``, or ``input_tokens`` /
            ``output_tokens``); the attempts' tokens win when every attempt reported them.
        start_ns: When the call started (``time.time_ns()``); default now.
        end_ns: When it ended; default now.
        error: The error type when the call failed after the decision (the span's status is then ERROR).
        tracer_provider: A tracer provider; default the global one.
        provider: The served model's ``gen_ai.provider.name`` (default: from its name's provider prefix).

    Returns:
        Whether a span was recorded (``False`` without OpenTelemetry, disabled, or with a non-recording provider).
    """
    trace = _api()
    if trace is None:
        return False
    tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
    name = f"{OPERATION} {request_model or f'router-{record.router}'}"
    span = tracer.start_span(name, kind=trace.SpanKind.CLIENT, start_time=start_ns)
    try:
        if not span.is_recording():
            return False
        span.set_attributes(
            span_attributes(
                record,
                request_model=request_model,
                response_model=response_model,
                response_id=response_id,
                usage=usage,
                provider=provider,
            )
        )
        if error:
            span.set_attribute("error.type", error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, error))
        return True
    finally:
        span.end(end_time=end_ns)


class RequestSpan:
    """One server request's span, recorded once its answer (or stream) ended: what it asked, what came back."""

    def __init__(
        self,
        request_model: str,
        enabled: bool,
        tracer_provider: Any | None = None,
        providers: Mapping[str, str] | None = None,
    ) -> None:
        self.request_model = request_model
        self.enabled = enabled
        self.tracer_provider = tracer_provider
        self.providers = providers or {}
        self.start_ns = time.time_ns()
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.usage: Mapping[str, Any] | None = None

    def observe(self, answer: Any) -> None:
        """Note the model, id and usage an answer or a streamed chunk carries."""
        if not self.enabled or not isinstance(answer, Mapping):
            return
        if isinstance(answer.get("model"), str) and answer["model"]:
            self.response_model = answer["model"]
        if isinstance(answer.get("id"), str) and answer["id"]:
            self.response_id = answer["id"]
        if isinstance(answer.get("usage"), Mapping):
            self.usage = answer["usage"]

    def finish(self, record: ServedDecision, error: str | None = None) -> None:
        """Record the span (never raises: telemetry must not break an answer)."""
        if not self.enabled:
            return
        try:
            record_span(
                record,
                request_model=self.request_model,
                response_model=self.response_model,
                response_id=self.response_id,
                usage=self.usage,
                start_ns=self.start_ns,
                error=error,
                tracer_provider=self.tracer_provider,
                provider=self.providers.get(record.model),
            )
        except Exception as exc:  # an exporter's or a provider's bug must not break the answer
            logger.debug("routellm telemetry: recording a span failed (%s)", type(exc).__name__)

    def fail(self, route: Route, exc: BaseException) -> None:
        """Record the span of a request routed by ``route`` whose upstream call failed with ``exc``."""
        if not self.enabled:
            return
        decision = route.decision
        side = getattr(exc, "side", None)
        record = ServedDecision(
            id=route.id,
            router=decision.router,
            win_rate=decision.win_rate,
            threshold=decision.threshold,
            choice=decision.choice,
            served=side if side in ("strong", "weak") else route.first_side,
            model=str(getattr(exc, "fallback_model", None) or getattr(exc, "model", "") or ""),
            continued=route.continued,
        )
        self.finish(record, error=type(exc.__cause__ or exc).__name__)


class Telemetry:
    """The server's spans: on when OpenTelemetry is installed and not disabled (checked once, at startup).

    Args:
        tracer_provider: Where spans go; default the global tracer provider.
        upstreams: The server's upstreams: a span's ``gen_ai.provider.name`` is that of the upstream named like its
            served model (:func:`upstream_provider`); a model no upstream names gets its name prefix's provider.
    """

    def __init__(self, tracer_provider: Any | None = None, upstreams: Iterable[Any] = ()) -> None:
        self.enabled = _api() is not None
        self.tracer_provider = tracer_provider
        self.providers: dict[str, str] = {}
        for upstream in upstreams:
            provider = upstream_provider(upstream) if self.enabled else None
            if provider is not None:
                self.providers.setdefault(upstream.name, provider)

    def begin(self, request_model: str) -> RequestSpan:
        """A request's span, started now."""
        return RequestSpan(request_model, self.enabled, self.tracer_provider, self.providers)


__all__ = [
    "OPERATION",
    "PROVIDER_HOSTS",
    "PROVIDER_IDS",
    "PROVIDER_PACKAGES",
    "SCOPE",
    "RequestSpan",
    "Telemetry",
    "model_provider",
    "record_span",
    "span_attributes",
    "upstream_provider",
]
