"""``POST /v1/responses``: OpenAI's Responses API routed like chat completions, end to end.

The real ``openai`` client (``client.responses.create``, streamed too, and the SDK's ``responses.stream`` helper) and
LangChain's ``ChatOpenAI(use_responses_api=True)`` talk over a real 127.0.0.1 socket to the real server (uvicorn in a
thread) routing with the shipped ``fast`` router to the mock upstream's Responses echo: ``"[<model>] <last user
text>"``, usage counted in words. Like OpenAI, the mock stores each response and answers a ``previous_response_id``
that another model wrote with a 404, so a continuation sent to the wrong side fails. Threshold 0.0 always routes
strong, 1.0 always weak.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_openai import ChatOpenAI
from openai.types.responses import Response
from prometheus_client.parser import text_string_to_metric_families

from routellm_core import load_router
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.policy import RoutingPolicy
from routellm_core.server import ChatModelUpstream, OpenAIUpstream, ServerThread

STRONG, WEAK = "mock-strong", "mock-weak"
UPSTREAM_KEY = "sk-upstream-responses-5b8e1d"
TOKEN = "responses-token-3f9a61"
DEADLINE_S = 30
#: USD per million input and output tokens (the shipped table knows neither mock model).
PRICES = {STRONG: (10.0, 30.0), WEAK: (0.5, 1.5)}
TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Look a word up.",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]},
}


@pytest.fixture(scope="module")
def fast_router() -> Any:
    """The shipped ``fast`` router, loaded once for the module."""
    return load_router("fast")


@pytest.fixture()
def serve(serve: Callable[..., ServerThread], mock: ServerThread, fast_router: Any) -> Callable[..., ServerThread]:
    """conftest's ``serve`` with this module's upstream key and loaded ``fast`` router."""

    def start(**options: Any) -> ServerThread:
        return serve(
            strong=options.pop("strong", None)
            or OpenAIUpstream(STRONG, base_url=f"{mock.url}/v1", api_key=UPSTREAM_KEY, timeout=DEADLINE_S),
            weak=options.pop("weak", None)
            or OpenAIUpstream(WEAK, base_url=f"{mock.url}/v1", api_key=UPSTREAM_KEY, timeout=DEADLINE_S),
            policies={"fast": RoutingPolicy(fast_router)},
            **options,
        )

    return start


def client(server: ServerThread, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=DEADLINE_S)


def prompt(words: str = "Name the capital of France") -> str:
    """A prompt with a unique token (the mock echoes it back; its word count is the usage)."""
    return f"{words} tok-{uuid.uuid4().hex}"


def record_of(answer: Any) -> dict[str, Any]:
    return answer.model_extra["routellm"]


def usd(side: str, text: str) -> float:
    """What the mock's answer to ``text`` costs: input = the prompt's words, output = one more (the model tag)."""
    words = len(text.split())
    price = PRICES[STRONG if side == "strong" else WEAK]
    return (words * price[0] + (words + 1) * price[1]) / 1e6


def samples(server: ServerThread, name: str, **labels: str) -> float:
    """One sample of ``/metrics`` (0 when absent), read with Prometheus' own parser."""
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def received(mock: ServerThread, text: str) -> list[dict[str, Any]]:
    """The Responses bodies the mock received whose input holds ``text``."""
    return [b for b in mock.app.state.received if "input" in b and text in json.dumps(b["input"])]


# ---- routing, the record, the cost ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "side", "upstream"),
    [("router-fast-0.0", "strong", STRONG), ("router-fast-1.0", "weak", WEAK), ("router-fast-0%", "weak", WEAK)],
)
def test_model_name_routes_to_the_side_known_in_advance(serve, model: str, side: str, upstream: str) -> None:
    server = serve(prices=PRICES)
    text = prompt()
    raw = client(server).responses.with_raw_response.create(model=model, input=text)
    answer = raw.parse()
    Response.model_validate(json.loads(raw.http_response.text))  # still a valid response object
    assert answer.output_text == f"[{upstream}] {text}"
    assert answer.model == upstream
    record = record_of(answer)
    assert (record["router"], record["choice"], record["served"], record["model"]) == ("fast", side, side, upstream)
    assert record["fallback"] is False and record["continued"] is False
    assert raw.headers["x-routellm-served"] == side and raw.headers["x-routellm-model"] == upstream
    assert raw.headers["x-routellm-decision-id"] == record["decision_id"]
    (attempt,) = record["attempts"]
    words = len(text.split())
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (words, words + 1)
    assert record["cost"] == pytest.approx(usd(side, text))
    assert float(raw.headers["x-routellm-cost-usd"]) == pytest.approx(usd(side, text))


def test_instructions_and_items_route_on_the_user_text_and_reach_the_upstream_unchanged(serve, mock) -> None:
    server = serve()
    text = prompt("Summarise the plot of Hamlet")
    items = [
        {"role": "user", "content": "an earlier question"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "an earlier answer"}]},
        {"role": "user", "content": [{"type": "input_text", "text": text}]},
    ]
    answer = client(server).responses.create(
        model="router-fast-1.0",
        input=items,
        instructions="You are terse.",
        metadata={"team": "docs"},
        temperature=0.2,
        extra_body={"routellm": {}},
    )
    assert answer.output_text == f"[{WEAK}] {text}"
    (sent,) = received(mock, text)
    assert sent["model"] == WEAK  # only the model is replaced; the server's own field never leaves it
    assert sent["input"] == items and sent["instructions"] == "You are terse."
    assert sent["metadata"] == {"team": "docs"} and sent["temperature"] == 0.2
    assert "routellm" not in sent and "stream" not in sent


def test_routing_reads_instructions_and_input_as_chat_completions_read_messages(serve) -> None:
    """The same conversation scores the same win rate on both routes (one routing-text rule)."""
    server = serve()
    text = prompt("Prove that sqrt(2) is irrational")
    sdk = client(server)
    chat = sdk.chat.completions.create(
        model="router-fast-0.5",
        messages=[{"role": "system", "content": "Be rigorous."}, {"role": "user", "content": text}],
    )
    response = sdk.responses.create(model="router-fast-0.5", instructions="Be rigorous.", input=text)
    assert record_of(response)["win_rate"] == chat.model_extra["routellm"]["win_rate"]
    assert record_of(response)["threshold"] == 0.5


def test_stream_relays_the_events_with_the_record_and_the_priced_final_record(serve) -> None:
    server = serve(prices=PRICES)
    text = prompt("Explain entropy in one line")
    events = list(client(server).responses.create(model="router-fast-1.0", input=text, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed" and kinds.count("response.completed") == 1
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 2 and "".join(deltas) == f"[{WEAK}] {text}"
    first = events[0].response.model_extra["routellm"]
    final = events[-1].response.model_extra["routellm"]
    assert first["served"] == final["served"] == "weak" and first["decision_id"] == final["decision_id"]
    assert first["cost"] is None  # priced once the stream ended, from the usage response.completed carries
    words = len(text.split())
    assert (final["attempts"][0]["input_tokens"], final["attempts"][0]["output_tokens"]) == (words, words + 1)
    assert final["cost"] == pytest.approx(usd("weak", text))
    assert events[-1].response.usage.input_tokens == words


def test_stream_is_responses_sse_and_the_sdk_helper_reads_it(serve) -> None:
    server = serve()
    text = prompt("Name three rivers")
    body = {"model": "router-fast-0.0", "input": text, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/responses", json=body, timeout=DEADLINE_S) as raw:
        assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
        assert raw.headers["x-routellm-served"] == "strong"
        lines = [line for line in raw.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names == [d["type"] for d in data]  # every event named as its data says
    assert "data: [DONE]" not in lines  # Responses streams end with response.completed, not [DONE]
    with client(server).responses.stream(model="router-fast-0.0", input=text) as stream:
        final = stream.get_final_response()
    assert final.output_text == f"[{STRONG}] {text}"
    assert final.model_extra["routellm"]["served"] == "strong"


def test_a_stream_failing_after_events_ends_with_an_error_the_sdk_raises(serve) -> None:
    server = serve()
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="mock stream broke"):
        for event in client(server).responses.create(
            model="router-fast-1.0", input=prompt("Count to ten [break:2]"), stream=True
        ):
            seen.append(event.type)
    assert seen.count("response.output_text.delta") == 2 and "response.completed" not in seen
    # OpenAI's error event (code and message at its top level) is the upstream's failure, not part of an answer
    assert samples(server, "routellm_upstream_calls_total", side="weak", outcome="error") == 1.0
    assert samples(server, "routellm_errors_total", status="502", code="upstream_error") == 1.0


def test_tool_calls_come_back(serve) -> None:
    server = serve()
    text = prompt("Look up 'gauge' [tool]")
    answer = client(server).responses.create(model="router-fast-1.0", input=text, tools=[TOOL])
    (call,) = answer.output
    assert call.type == "function_call" and call.name == "lookup"
    assert json.loads(call.arguments) == {"echo": text}
    events = list(client(server).responses.create(model="router-fast-1.0", input=text, tools=[TOOL], stream=True))
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done.arguments) == {"echo": text}
    assert events[-1].response.model_extra["routellm"]["served"] == "weak"


# ---- fallback and upstream errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("failure", "error"),
    [("[status:500@mock-strong]", "InternalServerError"), ("[empty@mock-strong]", "EmptyResponseError")],
)
def test_fallback_answers_from_the_other_side(serve, stream: bool, failure: str, error: str) -> None:
    """A failed or empty strong answer (no text, no call: an empty stream too) falls back to the weak side."""
    server = serve(fallback=True)
    text = prompt(f"What is 2 + 2? {failure}")
    answer = client(server).responses.create(model="router-fast-0.0", input=text, stream=stream)
    if stream:
        events = list(answer)
        record = events[-1].response.model_extra["routellm"]
        content = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    else:
        record, content = record_of(answer), answer.output_text
    assert content == f"[{WEAK}] {text}"
    assert (record["choice"], record["served"], record["fallback"]) == ("strong", "weak", True)
    assert record["fallback_from"] == STRONG and record["fallback_error"] == error
    assert [(a["model"], a["role"]) for a in record["attempts"]] == [(STRONG, "answer"), (WEAK, "fallback")]
    assert samples(server, "routellm_fallbacks_total", from_side="strong") == 1.0


def test_without_fallback_a_failed_upstream_is_a_502_naming_it(serve) -> None:
    server = serve()
    with pytest.raises(openai.APIStatusError) as caught:
        client(server).responses.create(model="router-fast-0.0", input=prompt("Hi [status:500]"))
    assert caught.value.status_code == 502 and STRONG in caught.value.message
    assert caught.value.response.headers["x-routellm-choice"] == "strong"


# ---- previous_response_id ---------------------------------------------------------------------------------------
def test_previous_response_id_continues_on_the_side_that_stored_it(serve, mock) -> None:
    server = serve(api_keys=(TOKEN,))
    sdk = client(server, TOKEN)
    first = sdk.responses.create(model="router-fast-0.0", input=prompt("Remember the word 'otter'"))
    assert record_of(first)["served"] == "strong"
    decisions = samples(server, "routellm_decisions_total", router="fast", choice="weak")
    # threshold 1.0 would route weak, but the strong upstream stored the response being continued
    text = prompt("Which word did I ask you to remember?")
    second = sdk.responses.create(model="router-fast-1.0", input=text, previous_response_id=first.id)
    assert second.output_text == f"[{STRONG}] {text}"
    record = record_of(second)
    assert (record["served"], record["continued"]) == ("strong", True)
    assert record["decision_id"] == record_of(first)["decision_id"]  # the same decision, not scored anew
    (sent,) = received(mock, text)
    assert (sent["model"], sent["previous_response_id"]) == (STRONG, first.id)
    # streamed, continuing the continuation
    events = list(
        sdk.responses.create(model="router-fast-1.0", input=prompt("And?"), previous_response_id=second.id, stream=True)
    )
    assert events[-1].response.model_extra["routellm"]["served"] == "strong"
    assert events[-1].response.model_extra["routellm"]["continued"] is True
    assert samples(server, "routellm_decisions_total", router="fast", choice="weak") == decisions


def test_a_continuation_after_a_fallback_stays_on_the_side_that_served(serve) -> None:
    server = serve(fallback=True)
    sdk = client(server)
    first = sdk.responses.create(model="router-fast-0.0", input=prompt("Plan a trip [status:500@mock-strong]"))
    assert record_of(first)["served"] == "weak"
    second = sdk.responses.create(model="router-fast-0.0", input=prompt("Shorter"), previous_response_id=first.id)
    record = record_of(second)
    assert (record["choice"], record["served"], record["continued"]) == ("strong", "weak", True)


@pytest.mark.parametrize("stream", [False, True])
def test_a_continuation_whose_upstream_fails_is_not_sent_to_the_other(serve, mock, stream: bool) -> None:
    """Only the upstream that stored the response can continue it: its own failure is the answer (with fallback on,
    the other upstream would only have said 404 previous_response_not_found)."""
    server = serve(fallback=True)
    sdk = client(server)
    first = sdk.responses.create(model="router-fast-0.0", input=prompt("Remember 'heron'"))
    assert record_of(first)["served"] == "strong"
    text = prompt("Which word? [status:500]")
    with pytest.raises(openai.APIStatusError) as caught:
        answer = sdk.responses.create(model="router-fast-0.0", input=text, previous_response_id=first.id, stream=stream)
        list(answer) if stream else None
    assert caught.value.status_code == 502 and STRONG in caught.value.message, caught.value.message
    assert [sent["model"] for sent in received(mock, text)] == [STRONG]
    assert samples(server, "routellm_fallbacks_total", from_side="strong") == 0.0


@pytest.mark.parametrize("stream", [False, True])
def test_a_conversation_sent_whole_stays_with_the_upstream_that_wrote_its_items(serve, mock, stream: bool) -> None:
    """The Agents SDK's default: no previous_response_id, the model's earlier output items (with their ids) sent
    back as input; only the upstream that wrote them may know them, so the turn stays there."""
    server = serve()
    sdk = client(server)
    opening = prompt("Remember the word 'lynx'")
    if stream:
        events = list(sdk.responses.create(model="router-fast-0.0", input=opening, stream=True))
        first = events[-1].response
    else:
        first = sdk.responses.create(model="router-fast-0.0", input=opening)
    assert first.model_extra["routellm"]["served"] == "strong" and first.output
    text = prompt("Which word was it?")
    items = [{"role": "user", "content": opening}, *(i.model_dump() for i in first.output)]
    second = sdk.responses.create(model="router-fast-1.0", input=[*items, {"role": "user", "content": text}])
    record = record_of(second)
    assert (record["served"], record["continued"]) == ("strong", True)  # threshold 1.0 alone would route weak
    assert [sent["model"] for sent in received(mock, text)] == [STRONG]
    fresh = sdk.responses.create(model="router-fast-1.0", input=[{"role": "user", "content": text, "id": "msg_x"}])
    assert record_of(fresh)["served"] == "weak"  # ids this worker never relayed route as usual


def test_an_unknown_previous_response_id_is_routed_and_the_upstream_answers(serve) -> None:
    server = serve()
    with pytest.raises(openai.NotFoundError) as caught:
        client(server).responses.create(model="router-fast-1.0", input=prompt("Go on"), previous_response_id="resp_x1")
    assert "resp_x1" in caught.value.message and caught.value.response.headers["x-routellm-choice"] == "weak"
    # nothing to route on: the 400 says the id was not one this worker relayed
    tool_output = [{"type": "function_call_output", "call_id": "call_1", "output": "42"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client(server).responses.create(model="router-fast-1.0", input=tool_output, previous_response_id="resp_x2")
    assert (
        "no user message" in refused.value.message
        and "'resp_x2' is not a response this worker" in refused.value.message
    )
    assert refused.value.body["param"] == "input"


# ---- refused requests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "code", "needle"),
    [
        ({"model": "router-fast-0.5"}, 400, "invalid_input", "'input' must be a string"),
        ({"model": "router-fast-0.5", "input": []}, 400, "invalid_input", "non-empty list"),
        ({"model": "router-fast-0.5", "input": ["hi"]}, 400, "invalid_input", "input[0] must be an input item"),
        ({"model": "router-fast-0.5", "input": [{"role": "robot", "content": "hi"}]}, 400, "invalid_input", "role"),
        (
            {"model": "router-fast-0.5", "input": [{"role": "user", "content": [{"text": "x"}]}]},
            400,
            "invalid_input",
            "'type'",
        ),
        (
            {
                "model": "router-fast-0.5",
                "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}],
            },
            400,
            "invalid_input",
            "only images or other non-text content",
        ),
        ({"model": "router-fast-0.5", "input": "  "}, 400, "invalid_input", "no text"),
        ({"model": "router-fast-0.5", "input": "hi", "stream": "yes"}, 400, "invalid_stream", "'stream'"),
        ({"model": "router-fast-0.5", "input": "hi", "instructions": 5}, 400, "invalid_instructions", "instructions"),
        (
            {"model": "router-fast-0.5", "input": "hi", "previous_response_id": 7},
            400,
            "invalid_previous_response_id",
            "previous_response_id",
        ),
        (
            {"model": "router-fast-cascade", "input": "hi"},
            400,
            "invalid_model",
            "-cascade is not supported on /v1/responses",
        ),
        ({"model": "router-fast-0.5-cascade-0.6", "input": "hi"}, 400, "invalid_model", "-cascade is not supported"),
        ({"model": "router-fast-2.5", "input": "hi"}, 400, "invalid_model", "threshold"),
        ({"model": "router-fast-0.5", "input": "hi", "background": True}, 400, "responses_unsupported", "poll"),
        ({"model": "router-fast-0.5", "input": "hi", "conversation": "conv_1"}, 400, "responses_unsupported", "one"),
        ({"model": "router-nope", "input": "hi"}, 404, "model_not_found", "names no router"),
        ({"model": "gpt-4o", "input": "hi"}, 404, "model_not_found", "not served here"),
    ],
)
def test_bad_requests_are_refused_with_the_problem_named(serve, body: Any, status: int, code: str, needle: str) -> None:
    server = serve()
    response = httpx.post(f"{server.url}/v1/responses", json=body, timeout=DEADLINE_S)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and needle in error["message"], error
    assert samples(server, "routellm_errors_total", status=str(status), code=code) == 1.0


def test_an_image_beside_text_routes_on_the_text(serve, mock) -> None:
    server = serve()
    text = prompt("What is in this picture?")
    content = [{"type": "input_text", "text": text}, {"type": "input_image", "image_url": "https://example.com/a.png"}]
    answer = client(server).responses.create(model="router-fast-1.0", input=[{"role": "user", "content": content}])
    assert answer.output_text == f"[{WEAK}] {text}"
    assert received(mock, text)[0]["input"][0]["content"] == content  # the image reaches the upstream


def test_a_langchain_upstream_is_refused_with_the_limitation_named(serve) -> None:
    weak = ChatModelUpstream(GenericFakeChatModel(messages=iter([AIMessage("fake")])), name="fake-weak")
    server = serve(weak=weak)
    with pytest.raises(openai.BadRequestError) as caught:
        client(server).responses.create(model="router-fast-0.0", input="hi")
    assert caught.value.code == "responses_unsupported"
    assert "'fake-weak'" in caught.value.message and "/v1/chat/completions" in caught.value.message


def test_auth_is_the_chat_routes_bearer_token(serve) -> None:
    server = serve(api_keys=(TOKEN,))
    for key in ("wrong-token", "unused"):
        with pytest.raises(openai.AuthenticationError) as caught:
            client(server, key).responses.create(model="router-fast-1.0", input="hi")
        assert caught.value.code == "invalid_api_key"
    no_header = httpx.post(f"{server.url}/v1/responses", json={"model": "router-fast-1.0", "input": "hi"})
    assert no_header.status_code == 401 and no_header.headers["www-authenticate"] == "Bearer"
    assert client(server, TOKEN).responses.create(model="router-fast-1.0", input="hi").output_text == f"[{WEAK}] hi"
    assert samples(server, "routellm_requests_total", status="401") == 3.0


# ---- metrics and the feedback store -----------------------------------------------------------------------------
def test_metrics_count_requests_decisions_calls_and_costs(serve) -> None:
    server = serve(prices=PRICES, api_keys=(TOKEN,))
    sdk = client(server, TOKEN)
    weak_text, strong_text = prompt("A weak one"), prompt("A strong one")
    sdk.responses.create(model="router-fast-1.0", input=weak_text)
    list(sdk.responses.create(model="router-fast-0.0", input=strong_text, stream=True))
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model="router-fast-cascade", input="x")
    assert samples(server, "routellm_requests_total", status="200") == 2.0
    assert samples(server, "routellm_requests_total", status="400") == 1.0
    assert samples(server, "routellm_decisions_total", router="fast", choice="weak") == 1.0
    assert samples(server, "routellm_decisions_total", router="fast", choice="strong") == 1.0
    assert samples(server, "routellm_upstream_calls_total", side="weak", outcome="ok") == 1.0
    assert samples(server, "routellm_upstream_calls_total", side="strong", outcome="ok") == 1.0
    assert samples(server, "routellm_cost_usd_total", router="fast", model=WEAK) == pytest.approx(
        usd("weak", weak_text)
    )
    assert samples(server, "routellm_cost_usd_total", router="fast", model=STRONG) == pytest.approx(
        usd("strong", strong_text)
    )
    assert samples(server, "routellm_in_flight_requests") == 0.0


def test_the_feedback_store_records_each_decision_and_takes_verdicts(serve, tmp_path) -> None:
    path = tmp_path / "feedback.sqlite"
    server = serve(feedback=str(path))
    sdk = client(server)
    text = prompt("Name a prime above 100")
    first = sdk.responses.create(model="router-fast-1.0", input=text, instructions="Be brief.")
    streamed = list(sdk.responses.create(model="router-fast-0.0", input=prompt("Name a colour"), stream=True))
    followed = sdk.responses.create(model="router-fast-0.0", input=prompt("Another"), previous_response_id=first.id)
    decision = record_of(first)["decision_id"]
    with FeedbackStore(path) as store:
        rows = {row.decision_id: row for row in store.decisions()}
        assert set(rows) == {decision, streamed[-1].response.model_extra["routellm"]["decision_id"]}
        assert rows[decision].prompt == text  # the routing text: the user's, not the instructions
        # the continuation's call was added to its decision, on the weak side that stored the response
        assert [a.model for a in rows[decision].record.attempts] == [WEAK, WEAK]
    assert record_of(followed)["decision_id"] == decision
    verdict = httpx.post(f"{server.url}/v1/feedback", json={"decision_id": decision, "verdict": "bad"})
    assert verdict.status_code == 200 and isinstance(verdict.json()["label_id"], int)


# ---- LangChain's ChatOpenAI on the Responses API ---------------------------------------------------------------
def test_langchain_chat_openai_on_the_responses_api(serve, mock) -> None:
    server = serve()

    def model(name: str, **kw: Any) -> ChatOpenAI:
        return ChatOpenAI(
            model=name, base_url=f"{server.url}/v1", api_key="unused", use_responses_api=True, max_retries=0, **kw
        )

    text = prompt("Define osmosis")
    message = model("router-fast-1.0").invoke(text)
    assert message.text == f"[{WEAK}] {text}"
    assert message.response_metadata["model_name"] == WEAK and message.id.startswith("resp_")
    words = len(text.split())
    assert (message.usage_metadata["input_tokens"], message.usage_metadata["output_tokens"]) == (words, words + 1)
    streamed = prompt("Define diffusion")
    assert "".join(chunk.text for chunk in model("router-fast-0.0").stream(streamed)) == f"[{STRONG}] {streamed}"
    tooled = prompt("Look it up [tool]")
    call = model("router-fast-1.0").bind_tools([TOOL]).invoke(tooled)
    assert [(c["name"], c["args"]) for c in call.tool_calls] == [("lookup", {"echo": tooled})]

    # a conversation carried by previous_response_id: only the new turn is sent, to the side that stored the rest
    first_turn = HumanMessage(prompt("Pick a number"))
    reply = model("router-fast-0.0").invoke([first_turn])
    follow = prompt("Double it")
    second = model("router-fast-1.0", use_previous_response_id=True).invoke([first_turn, reply, HumanMessage(follow)])
    assert second.text == f"[{STRONG}] {follow}"
    (sent,) = received(mock, follow)
    assert sent["previous_response_id"] == reply.id and sent["model"] == STRONG
    assert len(sent["input"]) == 1


def test_the_openapi_schema_documents_the_route(serve) -> None:
    document = httpx.get(f"{serve().url}/openapi.json", timeout=10).json()
    operation = document["paths"]["/v1/responses"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ResponsesRequest")
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert document["components"]["schemas"]["ResponsesRequest"]["required"] == ["model", "input"]
