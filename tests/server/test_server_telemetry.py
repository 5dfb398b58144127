"""OpenTelemetry spans of routed requests (GenAI semantic conventions), recorded by the real SDK into an
``InMemorySpanExporter``: one span per request routed by the real server (shipped ``fast`` router, mock upstream),
streamed or not, failed or not; :func:`record_span` for front ends; and nothing at all without OpenTelemetry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from routellm_core.decisions import Attempt, ServedDecision
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import OpenAIUpstream, ServerThread, create_app
from routellm_core.server.telemetry import Telemetry, record_span

STRONG, WEAK = "mock-strong", "mock-weak"


@pytest.fixture()
def exporter() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield provider, memory
    provider.shutdown()


@pytest.fixture(scope="module")
def traced(mock: ServerThread) -> Iterator[tuple[ServerThread, TracerProvider]]:
    """The routing server (router ``fast``, fallback on) whose spans go to a tracer provider of its own."""
    from routellm_core import load_router

    app = create_app(
        strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="k"),
        weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key="k"),
        policies={"fast": RoutingPolicy(load_router("fast"))},
        api_keys_env=None,
    )
    provider = TracerProvider()
    app.state.routellm.telemetry = Telemetry(tracer_provider=provider)
    with ServerThread(app) as server:
        yield server, provider
    provider.shutdown()


@pytest.fixture()
def spans(traced: tuple[ServerThread, TracerProvider]) -> Iterator[tuple[ServerThread, InMemorySpanExporter]]:
    server, provider = traced
    memory = InMemorySpanExporter()
    processor = SimpleSpanProcessor(memory)
    provider.add_span_processor(processor)
    yield server, memory
    memory.clear()
    processor.shutdown()  # exports nothing more to this test's exporter


def _client(server: ServerThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=30)


def _ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_a_routed_request_is_one_genai_span(spans) -> None:
    server, memory = spans
    text = f"hello {uuid.uuid4().hex}"
    raw = _client(server).chat.completions.with_raw_response.create(model="router-fast-0.0", messages=_ask(text))
    answer = raw.parse()
    [span] = memory.get_finished_spans()
    a = span.attributes
    assert span.name == "chat router-fast-0.0" and span.kind == SpanKind.CLIENT
    assert span.instrumentation_scope.name == "routellm"
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "router-fast-0.0"
    assert a["gen_ai.response.model"] == STRONG and a["gen_ai.response.id"] == answer.id
    # the mock counts words: "hello <token>" in, "[mock-strong] hello <token>" out
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (2, 3)
    record = answer.model_extra["routellm"]
    assert a["routellm.decision_id"] == raw.headers["x-routellm-decision-id"] == record["decision_id"]
    assert a["routellm.router"] == record["router"] and a["routellm.win_rate"] == pytest.approx(record["win_rate"])
    assert (a["routellm.threshold"], a["routellm.choice"], a["routellm.served"]) == (0.0, "strong", "strong")
    assert a["routellm.escalated"] is False and a["routellm.fallback"] is False
    assert "routellm.cost" not in a  # no price table: the cost is unknown, not 0
    assert span.status.status_code != StatusCode.ERROR
    assert span.end_time > span.start_time


def test_a_streamed_request_gets_its_span_when_the_stream_ends(spans) -> None:
    server, memory = spans
    chunks = list(
        _client(server).chat.completions.create(
            model="router-fast-1.0", messages=_ask("one two three"), stream=True, stream_options={"include_usage": True}
        )
    )
    [span] = memory.get_finished_spans()
    a = span.attributes
    assert a["routellm.choice"] == a["routellm.served"] == "weak" and a["gen_ai.response.model"] == WEAK
    assert a["gen_ai.response.id"] == chunks[0].id
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (3, 4)


def test_a_failed_upstream_is_an_error_span_and_errors_before_routing_are_none(spans) -> None:
    server, memory = spans
    with pytest.raises(openai.InternalServerError):  # the mock's 500 is answered 502
        _client(server).chat.completions.create(model="router-fast-0.0", messages=_ask("[status:500] x"))
    with pytest.raises(openai.NotFoundError):  # never routed: no span
        _client(server).chat.completions.create(model="gpt-4o", messages=_ask("x"))
    assert httpx.get(f"{server.url}/health").status_code == 200
    [span] = memory.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "InternalServerError"
    assert span.attributes["routellm.served"] == "strong" and span.attributes["routellm.model"] == STRONG


def test_record_span_for_front_ends_sums_the_attempts(exporter) -> None:
    provider, memory = exporter
    record = ServedDecision(
        id="d" * 32,
        router="default",
        win_rate=0.31,
        threshold=0.5,
        choice="weak",
        served="strong",
        model="gpt-4o",
        escalated=True,
        attempts=(
            Attempt("gpt-4o-mini", "weak", "answer", input_tokens=10, output_tokens=40, cost=0.0001),
            Attempt("gpt-4o-mini", "weak", "check", input_tokens=10, output_tokens=38, cost=0.0001),
            Attempt("gpt-4o", "strong", "escalation", kept=True, input_tokens=10, output_tokens=50, cost=0.002),
        ),
    )
    assert record_span(record, request_model="ChatRouteLLM", usage={"prompt_tokens": 1}, tracer_provider=provider)
    [span] = memory.get_finished_spans()
    a = span.attributes
    assert span.name == "chat ChatRouteLLM"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (30, 128)
    assert a["routellm.escalated"] is True and a["routellm.attempts"] == 3 and a["routellm.fallback"] is False
    assert a["routellm.cost"] == pytest.approx(0.0022)
    assert a["gen_ai.response.model"] == "gpt-4o" and a["routellm.choice"] == "weak"


def test_disabled_telemetry_records_nothing(exporter, monkeypatch: pytest.MonkeyPatch) -> None:
    provider, memory = exporter
    record = ServedDecision("e" * 32, "fast", 0.7, 0.5, "strong", "strong", "gpt-4o")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert record_span(record, tracer_provider=provider) is False
    assert Telemetry().enabled is False
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    assert record_span(record, tracer_provider=provider) is True
    assert len(memory.get_finished_spans()) == 1


NO_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed: importing it raises ImportError
from routellm_core.decisions import ServedDecision
from routellm_core.server.telemetry import Telemetry, record_span
record = ServedDecision("f" * 32, "fast", 0.7, 0.5, "strong", "strong", "gpt-4o")
assert record_span(record) is False
span = Telemetry().begin("router-fast")
assert span.enabled is False
span.observe({"model": "m", "usage": {"prompt_tokens": 1}})
span.finish(record)
print("ok")
"""


def test_without_opentelemetry_installed_spans_are_a_no_op() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_OTEL], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
