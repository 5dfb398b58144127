"""Server operations: the /ui Learn report follows every label change, secret masking spares names and words, spans
carry ``gen_ai.provider.name``, and a PostgreSQL server that stops answering never holds a caller past the store's
timeout.

Real services only: the shipped ``fast`` router and the fitted ``known`` router behind the real server (mock echo
upstream), real SQLite and PostgreSQL (``pgserver``) stores, the OpenTelemetry SDK's in-memory exporter, and a real
TCP proxy in front of PostgreSQL's socket that can stop moving bytes (a silent server: its kernel still acknowledges
what is sent, so nothing but a client-side deadline ends the wait).
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from fitted_router import HARD, TRIVIA
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiProviderNameValues

from routellm_core import load_router
from routellm_core.decisions import ServedDecision
from routellm_core.errors import FeedbackStoreError
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import ChatModelUpstream, OpenAIUpstream, ServerThread, create_app
from routellm_core.server.errors import MASK_ANYWHERE_CHARS, redact, short_secret_warning
from routellm_core.server.telemetry import (
    PROVIDER_HOSTS,
    PROVIDER_IDS,
    PROVIDER_PACKAGES,
    Telemetry,
    model_provider,
    record_span,
    upstream_provider,
)

STRONG, WEAK = "mock-strong", "mock-weak"


# ---- 1. the Learn view follows every label change ---------------------------------------------------------
def _decision(store: FeedbackStore, n: int) -> str:
    served = ServedDecision(
        id=f"d{n}", router="r", win_rate=0.5, threshold=0.5, choice="weak", served="weak", model="weak-model"
    )
    record = DecisionRecord.from_decision(served, strong_model="strong-model", weak_model="weak-model")
    return store.record_decision(record, f"prompt number {n}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[FeedbackStore]:
    location = request.getfixturevalue("postgres_url") if request.param == "postgresql" else tmp_path / "f.db"
    with FeedbackStore(location) as store:
        yield store


def test_revision_changes_with_every_label_change_and_only_then(any_store: FeedbackStore) -> None:
    store = any_store
    empty = store.revision()
    first, second = _decision(store, 1), _decision(store, 2)
    assert store.revision() == empty, "recording decisions is no label change"
    store.add_verdict(first, "strong")
    store.add_verdict(second, "tie")
    before = store.revision()
    assert before != empty
    counts = store.stats()
    # Swap the two verdicts: every count stays, the labels do not.
    store.add_verdict(first, "tie")
    store.add_verdict(second, "strong")
    assert store.stats().by_winner == counts.by_winner and store.stats().labels == counts.labels
    swapped = store.revision()
    assert swapped != before
    assert store.revision() == swapped, "reading changes nothing"
    store.add_verdict(second, "good")  # a weak answer that was good: a tie, replacing 'strong'
    assert store.revision() != swapped
    _decision(store, 3)
    store.add("free prompt", "a", "b", "model_b", source="golden")  # a label without a decision
    assert len({empty, before, swapped, store.revision()}) == 4


@pytest.fixture()
def learn_server(mock: ServerThread, known_router: Any, tmp_path: Any) -> Iterator[tuple[ServerThread, Any]]:
    def start() -> ServerThread:
        app = create_app(
            strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="unused"),
            weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key="unused"),
            policies={"known": RoutingPolicy(known_router)},
            api_keys_env=None,
            feedback=str(tmp_path / "feedback.db"),
        )
        return ServerThread(app).start()

    server = start()
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=30) as client:
        for prompts, verdict in ((HARD, "strong"), (TRIVIA, "tie")):
            for prompt in prompts:
                answer = client.chat.completions.create(
                    model="router-known", messages=[{"role": "user", "content": prompt}]
                )
                decision_id = answer.model_extra["routellm"]["decision_id"]
                verdict_body = {"decision_id": decision_id, "verdict": verdict}
                assert httpx.post(f"{server.url}/v1/feedback", json=verdict_body).is_success
    try:
        yield server, start  # type: ignore[misc]
    finally:
        server.stop()


def test_learn_report_is_recomputed_when_two_verdicts_swap(learn_server: Any) -> None:
    """Two verdicts swapped between page loads keep every count; the page must show the new report, the one a
    freshly started server computes, not the cached old one."""
    server, start = learn_server
    learn = f"{server.url}/ui/api/learn"
    old = httpx.get(learn, timeout=60).json()
    assert old["report"] is not None, old["problem"]
    with FeedbackStore(server.app.state.routellm.settings.feedback) as store:
        rows = {row.prompt: row.decision_id for row in store.decisions()}
    hard, trivia = rows[HARD[0]], rows[TRIVIA[0]]
    for decision_id, verdict in ((hard, "tie"), (trivia, "strong")):
        assert httpx.post(f"{server.url}/v1/feedback", json={"decision_id": decision_id, "verdict": verdict}).is_success
    new = httpx.get(learn, timeout=60).json()
    assert new["by_source"] == old["by_source"] and new["labels"] == old["labels"]
    fresh_server = start()
    try:
        fresh = httpx.get(f"{fresh_server.url}/ui/api/learn", timeout=60).json()
    finally:
        fresh_server.stop()
    assert fresh["report"] != old["report"], "the swap must change the report, or this test proves nothing"
    assert new["report"] == fresh["report"]


# ---- 2. masking secrets -----------------------------------------------------------------------------------
def test_short_secrets_mask_only_whole_tokens_and_long_ones_everywhere() -> None:
    message = "the weak upstream 'gpt-4o' failed: Incorrect API key provided: abc. (key=abc) sk-proj-1 abcdef"
    assert redact(message, ["abc", "4o", "sk", "gpt"]) == (
        "the weak upstream 'gpt-4o' failed: Incorrect API key provided: ***. (key=***) sk-proj-1 abcdef"
    )
    assert redact("model ollama/llama3, key ollama.", ["ollama"]) == "model ollama/llama3, key ***."
    key = "sk-" + "Z" * (MASK_ANYWHERE_CHARS - 3)
    assert redact(f"Bearer{key}x and {key}", [key]) == "Bearer***x and ***"
    # A short secret inside a long one cannot leave the long one half shown, whatever order they come in.
    assert redact(f"key {key}", ["sk", key, "sk-Z"]) == "key ***"
    assert redact("nothing to hide", ["", "  "]) == "nothing to hide"
    # a value after its key, and a URL's credentials, are masked; a model's tag keeps its name
    assert redact("token:abc123 and http://user:abc123@host", ["abc123"]) == "token:*** and http://user:***@host"
    assert redact("ollama:qwen2:7b", ["qwen2"]) == "ollama:qwen2:7b"


def test_short_secret_warning_names_lengths_never_the_secret() -> None:
    warning = short_secret_warning(["k", "abcd", "x" * MASK_ANYWHERE_CHARS, "k"])
    assert warning is not None and "2 secret(s)" in warning and "(1, 4)" in warning
    assert "abcd" not in warning
    assert short_secret_warning(["x" * MASK_ANYWHERE_CHARS, ""]) is None


def test_an_upstream_error_keeps_model_names_that_contain_the_key(serve: Callable[..., ServerThread]) -> None:
    """The fixture's upstream key is ``"k"``: a 400 passed on from the upstream names ``mock-strong``/``mock-weak``
    (it used to say ``moc***-strong``)."""
    server = serve()
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "router-fast", "messages": [{"role": "user", "content": "[status:400] hi"}]},
        timeout=30,
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "***" not in message
    assert "mock failure 400 for mock-" in message and ("'mock-strong'" in message or "'mock-weak'" in message)


# ---- 3. gen_ai.provider.name ------------------------------------------------------------------------------
def test_every_provider_value_is_a_well_known_value_of_the_conventions() -> None:
    known = {v.value for v in GenAiProviderNameValues}
    emitted = {*PROVIDER_HOSTS.values(), *PROVIDER_PACKAGES.values(), *PROVIDER_IDS.values(), "gcp.vertex_ai"}
    assert emitted <= known, emitted - known


def test_upstream_provider_from_host_package_and_name_prefix() -> None:
    from langchain_openai import ChatOpenAI

    assert upstream_provider(OpenAIUpstream("gpt-4o", api_key="sk-test")) == "openai"  # api.openai.com
    assert upstream_provider(OpenAIUpstream("m", base_url="https://api.groq.com/openai/v1", api_key="x")) == "groq"
    assert upstream_provider(OpenAIUpstream("m", base_url="https://me.openai.azure.com/v1", api_key="x")) == (
        "azure.ai.openai"
    )
    assert upstream_provider(OpenAIUpstream("llama3", base_url="http://127.0.0.1:9/v1")) is None  # a local server
    local = OpenAIUpstream("llama3", base_url="http://127.0.0.1:9/v1", name="anthropic:claude-3-5-haiku-latest")
    assert upstream_provider(local) == "anthropic"  # the name's prefix, when the host says nothing
    assert upstream_provider(ChatModelUpstream(ChatOpenAI(model="gpt-4o-mini", api_key="sk-test"))) == "openai"
    groq = ChatOpenAI(model="llama-3.3-70b-versatile", api_key="x", base_url="https://api.groq.com/openai/v1")
    assert upstream_provider(ChatModelUpstream(groq)) == "groq"
    vllm = ChatOpenAI(model="llama3", api_key="x", base_url="http://127.0.0.1:9/v1")
    assert upstream_provider(ChatModelUpstream(vllm)) is None
    assert model_provider("mistralai:mistral-large-latest") == "mistral_ai"
    assert model_provider("google_vertexai:gemini-2.5-flash") == "gcp.vertex_ai"
    assert model_provider("google_genai:gemini-2.5-flash") == "gcp.gemini"
    assert model_provider("mistralai/Mixtral-8x7B-Instruct-v0.1") is None  # a Hugging Face repo, not the API
    assert model_provider("gpt-4o") is None


@pytest.fixture()
def provider_server(mock: ServerThread) -> Iterator[tuple[ServerThread, InMemorySpanExporter]]:
    strong = OpenAIUpstream("claude", base_url=f"{mock.url}/v1", api_key="k", name="anthropic:claude-3-5-haiku")
    weak = OpenAIUpstream("gpt", base_url=f"{mock.url}/v1", api_key="k", name="openai/gpt-4o-mini")
    app = create_app(strong=strong, weak=weak, policies={"fast": RoutingPolicy(load_router("fast"))}, api_keys_env=None)
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    state = app.state.routellm
    state.telemetry = Telemetry(tracer_provider=provider, upstreams=state.upstreams.values())
    with ServerThread(app) as server:
        yield server, memory
    provider.shutdown()


def test_spans_name_the_provider_of_the_side_that_answered(
    provider_server: tuple[ServerThread, InMemorySpanExporter],
) -> None:
    server, memory = provider_server
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
        for model in ("router-fast-0", "router-fast-1"):  # threshold 0: strong; 1: weak
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    spans = memory.get_finished_spans()
    by_model = {s.attributes["routellm.model"]: s.attributes.get("gen_ai.provider.name") for s in spans}
    assert by_model == {"anthropic:claude-3-5-haiku": "anthropic", "openai/gpt-4o-mini": "openai"}


def test_the_server_names_its_upstreams_providers_and_warns_of_short_keys(caplog: pytest.LogCaptureFixture) -> None:
    groq = OpenAIUpstream("llama-3.3-70b-versatile", base_url="https://api.groq.com/openai/v1", api_key="x" * 40)
    local = OpenAIUpstream("llama3", base_url="http://127.0.0.1:9/v1", api_key="k")
    with caplog.at_level("WARNING", logger="routellm_core.server"):
        app = create_app(
            strong=groq, weak=local, policies={"fast": RoutingPolicy(load_router("fast"))}, api_keys_env=None
        )
    telemetry = app.state.routellm.telemetry
    assert telemetry.enabled and telemetry.providers == {"llama-3.3-70b-versatile": "groq"}  # from the host alone
    warned = [r.getMessage() for r in caplog.records if "shorter than" in r.getMessage()]
    assert len(warned) == 1 and "(1)" in warned[0] and "x" * 40 not in warned[0]


def test_record_span_without_a_known_provider_leaves_the_attribute_out() -> None:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    served = ServedDecision(id="d", router="r", win_rate=0.2, threshold=0.5, choice="weak", served="weak", model="m")
    assert record_span(served, tracer_provider=provider)
    assert record_span(served, tracer_provider=provider, provider="groq")
    plain, given = memory.get_finished_spans()
    assert "gen_ai.provider.name" not in plain.attributes
    assert given.attributes["gen_ai.provider.name"] == "groq"
    provider.shutdown()


# ---- 4. a PostgreSQL server that stops answering ----------------------------------------------------------
class PausableProxy:
    """A TCP proxy to a Unix socket; ``pause()`` stops moving bytes but keeps every socket open (the kernel still
    accepts and acknowledges what the client sends: a silent server)."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.running = threading.Event()
        self.running.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.unix_path)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            self.running.wait()
            try:
                data = src.recv(65536)
                self.running.wait()
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def pause(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def close(self) -> None:
        self.listener.close()
        self.running.set()
        for s in self.sockets:
            s.close()


@pytest.fixture()
def proxied_url(postgres_url: str) -> Iterator[tuple[str, PausableProxy]]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(postgres_url)
    (socket_path,) = (p for p in glob.glob(os.path.join(params["host"], ".s.PGSQL.*")) if not p.endswith(".lock"))
    proxy = PausableProxy(socket_path)
    yield f"postgresql://{params['user']}@127.0.0.1:{proxy.port}/{params['dbname']}", proxy
    proxy.close()


def _timed(call: Callable[[], Any], limit: float = 20.0) -> tuple[float, Any]:
    """``(seconds, result or exception)`` of ``call`` in a thread; fails the test if it is still blocked at
    ``limit`` (before the fix a pooled write waited forever)."""
    out: list[Any] = []

    def run() -> None:
        start = time.perf_counter()
        try:
            value: Any = call()
        except Exception as exc:
            value = exc
        out.append((time.perf_counter() - start, value))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert out, f"the call was still blocked after {limit} s"
    return out[0]


def test_a_silent_postgres_fails_a_write_after_the_timeout_then_at_once_until_it_answers(
    proxied_url: tuple[str, PausableProxy],
) -> None:
    url, proxy = proxied_url
    store = FeedbackStore(url, timeout=1.0)
    store.add("before", "a", "b", "model_a")
    proxy.pause()
    took, result = _timed(lambda: store.add("lost", "a", "b", "model_a"))
    assert isinstance(result, FeedbackStoreError) and "did not answer within 2 s" in str(result), result
    assert 1.9 < took < 4.0, took  # the timeout and WRITE_GRACE_S
    took, result = _timed(lambda: store.add("lost too", "a", "b", "model_a"))
    assert isinstance(result, FeedbackStoreError) and "not answering" in str(result), result
    assert took < 0.2, f"a store known to be down waited {took:.2f} s"
    took, result = _timed(store.stats)  # reads too
    assert isinstance(result, FeedbackStoreError) and took < 0.2
    proxy.resume()
    time.sleep(1.1)  # the store tries the server again once its timeout passed
    store.add("after", "a", "b", "model_a")
    assert [row.prompt for row in store.labels()] == ["before", "after"]
    store.close()


def test_a_silent_postgres_delays_one_answer_at_most_the_timeout_and_the_next_not_at_all(
    proxied_url: tuple[str, PausableProxy], mock: ServerThread
) -> None:
    """The server records each decision before it answers (so a verdict posted right after finds it): with the
    store's host silent, the first answer waits one timeout (10 s, the server's store, and a second of grace) and
    the next ones none."""
    url, proxy = proxied_url
    app = create_app(
        strong=OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key="k"),
        weak=OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key="k"),
        policies={"fast": RoutingPolicy(load_router("fast"))},
        api_keys_env=None,
        feedback=url,
    )
    timeout = app.state.routellm.store.timeout
    with ServerThread(app) as server, openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as c:

        def ask() -> Any:
            return c.chat.completions.create(model="router-fast", messages=[{"role": "user", "content": "hi"}])

        assert ask().choices[0].message.content
        proxy.pause()
        first, answer = _timed(ask, limit=timeout + 20)
        assert not isinstance(answer, Exception) and answer.choices[0].message.content, answer
        second, answer = _timed(ask, limit=timeout + 20)
        assert not isinstance(answer, Exception) and answer.choices[0].message.content, answer
        assert first < timeout + 3.0, first
        assert second < 1.0, second
        proxy.resume()


def test_a_row_lock_held_past_the_timeout_is_a_lock_error_not_a_silent_server(postgres_url: str) -> None:
    import psycopg

    with FeedbackStore(postgres_url, timeout=1.0) as store:
        decision_id = _decision(store, 1)
        with psycopg.connect(postgres_url) as other:  # another writer holds the decision's row
            other.execute("SELECT 1 FROM decisions WHERE decision_id = %s FOR UPDATE", (decision_id,))
            took, result = _timed(lambda: store.add_verdict(decision_id, "bad"))
            other.rollback()
        assert isinstance(result, FeedbackStoreError) and "lock timeout" in str(result), result
        assert 0.9 < took < 1.9, took
        assert store.add_verdict(decision_id, "bad") is not None  # not taken for a silent server: no wait, no refusal
