"""LangChain front end: records of cached and streamed structured calls, and an agents bug hunt.

Each test failed before its fix:

1. A LangChain cache hit on the ``generate()`` path replayed the first call's record: its decision id (feedback would
   label the first decision twice) and its cost (as if spent again). A child answering from the cache under ``invoke``
   was recorded at full price.
2. Streamed structured output (``with_structured_output(...).stream``) recorded no tokens and no cost.
3. Agents (``create_agent`` with ``RouteLLMMiddleware``): a step answered from LangChain's cache was recorded at full
   price, and the self-verification question's run had no decision in its metadata (its tracer could not tell which
   step it checked). Parallel tool calls, a tool error and a checkpointed thread across turns were checked too.

The router is the real shipped ``default`` router; the chat models are the offline fakes of ``lc_fakes``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import ToolException, tool
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import ToolEchoChatModel, children, shared_router
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware
from routellm_core.escalation import Escalation
from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.learning.feedback import FeedbackStore

PRICES = {"fake-weak-1": (0.5, 1.5), "fake-strong-1": (5.0, 15.0)}
GREETING = "Hello there, how are you today?"
WEATHER_Q = "What is the weather in 'Paris' right now?"


class Weather(BaseModel):
    """The weather question's structured answer."""

    city: str


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


def price(model: str, tokens_in: int, tokens_out: int) -> float:
    rate_in, rate_out = PRICES[model]
    return (tokens_in * rate_in + tokens_out * rate_out) / 1e6


def child_usage(question: str, *, structured: bool = False) -> tuple[int, int]:
    """The tokens a fresh fake child reports for ``question`` (asked directly, never through the router)."""
    fake = ToolEchoChatModel()
    if structured:
        message = fake.with_structured_output(Weather, include_raw=True).invoke(question)["raw"]
    else:
        message = fake.invoke(question)
    usage = message.usage_metadata
    return usage["input_tokens"], usage["output_tokens"]


# ---- 1. cache hits ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_router_cache_hit_is_marked_and_spends_nothing(router: Any, tmp_path: Path, mode: str) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    kids = children()
    llm = ChatRouteLLM(**kids, router=router, threshold=1.0, cache=InMemoryCache(), feedback=store, prices=PRICES)

    def generate() -> Any:
        prompts = [[HumanMessage(GREETING)]]
        result = llm.generate(prompts) if mode == "sync" else asyncio.run(llm.agenerate(prompts))
        return result.generations[0][0]

    first, again = generate(), generate()
    assert kids["weak"].calls == ["HumanMessage"], "the second call was served by the cache"
    assert again.message.text == first.message.text

    tokens_in, tokens_out = child_usage(GREETING)
    fresh = first.message.response_metadata["routellm"]
    assert len(fresh["decision_id"]) == 32 and fresh["cached"] is False
    assert fresh["cost"] == pytest.approx(price("fake-weak-1", tokens_in, tokens_out))

    hit = again.message.response_metadata["routellm"]
    assert again.generation_info["routellm"] == hit
    assert hit["cached"] is True
    assert hit["decision_id"] is None, "a hit must not hand out the first decision's id again"
    assert hit["cost"] == 0.0
    assert [(a["model"], a["input_tokens"], a["output_tokens"], a["cost"]) for a in hit["attempts"]] == [
        ("fake-weak-1", 0, 0, 0.0)
    ]
    assert (hit["choice"], hit["model"], hit["win_rate"]) == (fresh["choice"], fresh["model"], fresh["win_rate"])
    (row,) = store.decisions()
    assert row.decision_id == fresh["decision_id"], "a hit adds no decision to the feedback store"
    assert row.record.cost == pytest.approx(fresh["cost"])


def test_a_router_cache_hit_leaves_the_first_answers_record_alone(router: Any) -> None:
    cache = InMemoryCache()
    llm = ChatRouteLLM(**children(), router=router, threshold=1.0, cache=cache, prices=PRICES)
    first = llm.generate([[HumanMessage(GREETING)]]).generations[0][0]
    decision_id = first.message.response_metadata["routellm"]["decision_id"]
    llm.generate([[HumanMessage(GREETING)]])
    third = llm.generate([[HumanMessage(GREETING)]]).generations[0][0]
    assert first.message.response_metadata["routellm"]["decision_id"] == decision_id
    assert first.generation_info["routellm"]["decision_id"] == decision_id
    assert third.message.response_metadata["routellm"]["cached"] is True


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_child_cache_hit_under_invoke_is_a_new_decision_that_spends_nothing(
    router: Any, tmp_path: Path, llm_cache: InMemoryCache, mode: str
) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    kids = children()
    llm = ChatRouteLLM(**kids, router=router, threshold=1.0, feedback=store, prices=PRICES)

    def ask() -> AIMessage:
        return llm.invoke(GREETING) if mode == "invoke" else asyncio.run(llm.ainvoke(GREETING))

    first, again = ask(), ask()
    assert kids["weak"].calls == ["HumanMessage"], "the child answered the second call from the cache"
    tokens_in, tokens_out = child_usage(GREETING)
    fresh, hit = first.response_metadata["routellm"], again.response_metadata["routellm"]
    assert fresh["cost"] == pytest.approx(price("fake-weak-1", tokens_in, tokens_out))
    assert fresh["cached"] is False
    assert hit["cached"] is True
    assert hit["decision_id"] != fresh["decision_id"], "the router decided anew"
    assert hit["cost"] == 0.0
    assert [(a["input_tokens"], a["output_tokens"]) for a in hit["attempts"]] == [(0, 0)]
    rows = {row.decision_id: row for row in store.decisions()}
    assert rows[hit["decision_id"]].record.cost == 0.0
    assert rows[fresh["decision_id"]].record.cost == pytest.approx(fresh["cost"])


# ---- 2. streamed structured output -----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("schema", [Weather, Weather.model_json_schema()], ids=["pydantic", "dict"])
def test_streamed_structured_output_records_tokens_and_cost(
    router: Any, tmp_path: Path, mode: str, schema: Any
) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    llm = ChatRouteLLM(**children(), router=router, threshold=1.0, feedback=store, prices=PRICES)
    structured = llm.with_structured_output(schema)

    async def collect() -> list[Any]:
        return [chunk async for chunk in structured.astream(WEATHER_Q)]

    chunks = list(structured.stream(WEATHER_Q)) if mode == "stream" else asyncio.run(collect())
    parsed = Weather(city="Paris") if schema is Weather else {"city": "Paris"}
    assert chunks == [parsed], "the caller gets the parsed values only"

    tokens_in, tokens_out = child_usage(WEATHER_Q, structured=True)
    (row,) = store.decisions()
    (attempt,) = row.record.attempts
    assert (attempt.model, attempt.input_tokens, attempt.output_tokens) == ("fake-weak-1", tokens_in, tokens_out)
    assert row.record.cost == pytest.approx(price("fake-weak-1", tokens_in, tokens_out))


# ---- 3. agents -------------------------------------------------------------------------------------------------------
@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny in {city}."


@tool
def get_time(city: str) -> str:
    """Get the local time for a city."""
    raise ToolException(f"the clock of {city} is broken")


get_time.handle_tool_error = True

#: Three models the shipped router profiles, cheapest first, with made-up prices.
LADDER = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "o1-preview-2024-09-12")
LADDER_PRICES = dict(zip(LADDER, [(0.1, 0.2), (1.0, 2.0), (10.0, 20.0)], strict=True))


class ParallelToolsChatModel(ToolEchoChatModel):
    """Calls every bound tool at once (parallel tool calls) where the echo fake would call one."""

    def _reply(self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any) -> AIMessage:
        message = super()._reply(messages, stop, **kwargs)
        tools = kwargs.get("tools") or []
        if not message.tool_calls or len(tools) < 2:
            return message
        calls = [
            {
                "name": t["function"]["name"],
                "args": {"city": "Paris"},
                "id": f"call_{i}_{len(self.calls)}",
                "type": "tool_call",
            }
            for i, t in enumerate(tools)
        ]
        return message.model_copy(update={"tool_calls": calls})


def test_parallel_tool_calls_and_a_tool_error_stay_on_one_priced_model_across_turns(
    router: Any, tmp_path: Path
) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    models = {name: ParallelToolsChatModel(label=name, model=name) for name in LADDER}
    middleware = RouteLLMMiddleware(models=models, router=router, prices=LADDER_PRICES, feedback=store)
    agent = create_agent(
        models[LADDER[0]], tools=[get_weather, get_time], middleware=[middleware], checkpointer=InMemorySaver()
    )
    config: Any = {"configurable": {"thread_id": "s6"}}
    agent.invoke({"messages": [HumanMessage("What is the weather and the time in 'Paris'?")]}, config)
    agent.invoke({"messages": [HumanMessage("Thanks! Anything else?")]}, config)
    messages = agent.get_state(config).values["messages"]

    kinds = [type(m).__name__ for m in messages]
    assert kinds == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "ToolMessage",
        "AIMessage",
        "HumanMessage",
        "AIMessage",
    ]
    call, weather, clock, final, _, second_turn = messages[1:]
    assert [c["name"] for c in call.tool_calls] == ["get_weather", "get_time"]
    assert (weather.status, clock.status) == ("success", "error")
    first, continued, fresh = (m.response_metadata["routellm"] for m in (call, final, second_turn))
    assert final.text.startswith(f"[{first['model']}] The tool said: the clock of Paris is broken")
    assert (continued["decision_id"], continued["model"], continued["continued"]) == (
        first["decision_id"],
        first["model"],
        True,
    )
    assert fresh["continued"] is False and fresh["decision_id"] != first["decision_id"]
    for message in (call, final, second_turn):
        record = message.response_metadata["routellm"]
        usage = message.usage_metadata
        assert record["model"] in LADDER and record["ladder"]["chosen"] == record["model"]
        assert record["cost"] == pytest.approx(price_of(record["model"], usage["input_tokens"], usage["output_tokens"]))
    # one row per decision: the tool step continues the first turn's, it adds none, but its call and cost join it
    rows = store.decisions()
    assert [row.decision_id for row in rows] == [first["decision_id"], fresh["decision_id"]]
    assert [a.model for a in rows[0].record.attempts] == [first["model"], continued["model"]]
    assert rows[0].record.cost == pytest.approx(first["cost"] + continued["cost"])
    assert rows[1].record.cost == pytest.approx(fresh["cost"])


def price_of(model: str, tokens_in: int, tokens_out: int) -> float:
    rate_in, rate_out = LADDER_PRICES[model]
    return (tokens_in * rate_in + tokens_out * rate_out) / 1e6


def test_an_agent_step_answered_from_the_cache_is_marked_and_spends_nothing(
    router: Any, llm_cache: InMemoryCache
) -> None:
    kids = children()
    middleware = RouteLLMMiddleware(**kids, router=router, threshold=1.0, prices=PRICES)
    agent = create_agent(kids["weak"], tools=[get_weather], middleware=[middleware])
    first = agent.invoke({"messages": [HumanMessage(GREETING)]})["messages"][-1]
    again = agent.invoke({"messages": [HumanMessage(GREETING)]})["messages"][-1]
    assert kids["weak"].calls == ["HumanMessage"], "the second run's step came from the cache"
    assert again.text == first.text
    tokens_in, tokens_out = (first.usage_metadata[key] for key in ("input_tokens", "output_tokens"))
    fresh, hit = first.response_metadata["routellm"], again.response_metadata["routellm"]
    assert fresh["cost"] == pytest.approx(price("fake-weak-1", tokens_in, tokens_out)) and fresh["cached"] is False
    assert (hit["cached"], hit["cost"], hit["model"]) == (True, 0.0, "fake-weak-1")
    assert hit["decision_id"] != fresh["decision_id"], "the step was routed anew"


class Runs(BaseCallbackHandler):
    """The chat-model runs of a call: their last message's text, tags and ``routellm`` metadata."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, list[str], dict[str, Any] | None]] = []

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, tags: Any = None, metadata: Any = None, **kw: Any
    ) -> None:
        self.runs.append((messages[0][-1].text, list(tags or []), (metadata or {}).get("routellm")))


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_the_self_verification_run_of_an_agent_step_carries_its_decision(router: Any, mode: str) -> None:
    kids = children()
    middleware = RouteLLMMiddleware(
        **kids, router=router, threshold=1.0, escalate=Escalation(check="self_verification", threshold=0.5)
    )
    agent = create_agent(kids["weak"], tools=[get_weather], middleware=[middleware])
    runs = Runs()
    config: Any = {"callbacks": [runs], "tags": ["mine"]}
    payload = {"messages": [HumanMessage(GREETING)]}
    out = agent.invoke(payload, config) if mode == "invoke" else asyncio.run(agent.ainvoke(payload, config))
    decision_id = out["messages"][-1].response_metadata["routellm"]["decision_id"]
    (check,) = [run for run in runs.runs if "routellm:check" in run[1]]
    assert check[0] == VERIFY_QUESTION
    assert {"mine", "routellm:weak", "nostream"} <= set(check[1])
    assert check[2] is not None and check[2]["decision_id"] == decision_id
