"""Per-step routing inside agents: create_agent with ChatRouteLLM, and RouteLLMMiddleware.

Tool-result step policy under test (documented in docs/README-langchain.md):
- ``tool_step="continue"`` (default): a step whose last message is a tool result goes to the model that issued
  the tool call, read from that AI message's ``routellm`` metadata (``continued: True``).
- ``tool_step="route"``: routed like any other step; the routing text is still the latest human message.
"""

from __future__ import annotations

import functools
from typing import Any
from uuid import UUID

import pytest
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import children, shared_router, split_threshold
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware
from routellm_core.errors import ModelCallError

WEATHER_Q = "What is the weather in 'Paris' right now?"
MATH_Q = "Prove that the square root of 2 is irrational, then check the weather in 'Berlin'."


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is sunny in {city}."


@pytest.fixture(scope="module")
def router() -> Any:
    return shared_router()


@functools.cache
def mixed() -> float:
    """Between the two questions' win rates: one goes to each model."""
    return split_threshold([WEATHER_Q, MATH_Q])


def expected(router: Any, text: str) -> str:
    return router.decide([text], mixed())[0].choice


def ai_steps(messages: list[Any]) -> list[AIMessage]:
    return [m for m in messages if isinstance(m, AIMessage)]


def check_tool_loop(messages: list[Any], choice: str, *, continued: bool = True) -> None:
    """Human -> AI(tool call) -> Tool -> AI(final), both AI steps served by ``choice``."""
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    call, result, final = messages[1], messages[2], messages[3]
    assert call.tool_calls[0]["name"] == "get_weather"
    assert isinstance(result, ToolMessage) and result.text.startswith("It is sunny")
    assert final.text.startswith(f"[{choice}] The tool said: It is sunny")
    assert call.response_metadata["routellm"]["choice"] == choice
    assert call.response_metadata["routellm"]["continued"] is False
    assert final.response_metadata["routellm"]["choice"] == choice
    assert final.response_metadata["routellm"]["continued"] is continued


class ChatRuns(BaseCallbackHandler):
    def __init__(self) -> None:
        self.chat: list[tuple[UUID, UUID | None, dict[str, Any]]] = []
        self.chains: dict[UUID, tuple[str | None, UUID | None]] = {}

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: UUID, **kw: Any) -> None:
        self.chains[run_id] = (kw.get("name"), kw.get("parent_run_id"))

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any) -> None:
        self.chat.append((run_id, kw.get("parent_run_id"), kw.get("invocation_params") or {}))


class TestCreateAgentWithChatRouteLLM:
    def test_questions_go_to_different_models(self, router: Any) -> None:
        assert {expected(router, WEATHER_Q), expected(router, MATH_Q)} == {"strong", "weak"}

    @pytest.mark.parametrize("question", [WEATHER_Q, MATH_Q])
    def test_tool_loop_stays_on_the_model_that_called_the_tool(self, router: Any, question: str) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=mixed())
        agent = create_agent(llm, tools=[get_weather])
        out = agent.invoke({"messages": [HumanMessage(question)]})
        check_tool_loop(out["messages"], expected(router, question))

    @pytest.mark.parametrize("threshold", [0.0, 1.0])
    def test_tool_loop_on_either_model(self, router: Any, threshold: float) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=threshold)
        out = create_agent(llm, tools=[get_weather]).invoke({"messages": [HumanMessage(WEATHER_Q)]})
        check_tool_loop(out["messages"], "strong" if threshold == 0.0 else "weak")

    def test_each_turn_is_routed_anew(self, router: Any) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=mixed())
        agent = create_agent(llm, tools=[get_weather], checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t1"}}
        questions = ["hi there", WEATHER_Q, "Explain the proof of Fermat's little theorem in detail."]
        for question in questions:
            agent.invoke({"messages": [HumanMessage(question)]}, config)
        messages = agent.get_state(config).values["messages"]
        turn_starts = [messages[i + 1] for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
        for question, first_ai in zip(questions, turn_starts, strict=True):
            meta = first_ai.response_metadata["routellm"]
            decision = router.decide([question], mixed())[0]
            assert meta["continued"] is False
            assert meta["choice"] == decision.choice
            assert meta["win_rate"] == pytest.approx(decision.win_rate)

    def test_tool_step_route_policy_routes_on_the_latest_human_message(self, router: Any) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=mixed(), tool_step="route")
        out = create_agent(llm, tools=[get_weather]).invoke({"messages": [HumanMessage(WEATHER_Q)]})
        # the tool result is not the routing text: the final step is scored on the same human message
        check_tool_loop(out["messages"], expected(router, WEATHER_Q), continued=False)
        call, final = ai_steps(out["messages"])
        assert final.response_metadata["routellm"]["win_rate"] == call.response_metadata["routellm"]["win_rate"]

    def test_continue_follows_the_model_that_actually_answered_after_a_fallback(self, router: Any) -> None:
        kids = children()
        kids["strong"].error = TimeoutError("timed out")
        llm = ChatRouteLLM(**kids, router=router, threshold=0.0, fallback=True)
        out = create_agent(llm, tools=[get_weather]).invoke({"messages": [HumanMessage(WEATHER_Q)]})
        call, final = ai_steps(out["messages"])
        assert call.response_metadata["routellm"]["fallback"] is True
        assert call.response_metadata["routellm"]["model"] == "fake-weak-1"
        # the tool result goes back to the weak model, which issued the call; no second fallback
        assert final.text.startswith("[weak]")
        assert final.response_metadata["routellm"]["choice"] == "weak"
        assert final.response_metadata["routellm"]["fallback"] is False
        assert kids["strong"].calls == ["HumanMessage"]

    async def test_async_agent(self, router: Any) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=mixed())
        out = await create_agent(llm, tools=[get_weather]).ainvoke({"messages": [HumanMessage(MATH_Q)]})
        check_tool_loop(out["messages"], expected(router, MATH_Q))

    def test_structured_response_format(self, router: Any) -> None:
        class Weather(BaseModel):
            """A weather report."""

            city: str
            summary: str

        llm = ChatRouteLLM(**children(), router=router, threshold=mixed())
        agent = create_agent(llm, tools=[get_weather], response_format=Weather)
        out = agent.invoke({"messages": [HumanMessage("Report the weather for 'Rome' as 'sunny'")]})
        assert out["structured_response"] == Weather(city="Rome", summary="sunny")
        assert ai_steps(out["messages"])[0].response_metadata["routellm"]["continued"] is False

    def test_model_runs_nest_under_the_router_run(self, router: Any) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=mixed())
        runs = ChatRuns()
        create_agent(llm, tools=[get_weather]).invoke(
            {"messages": [HumanMessage(WEATHER_Q)]}, config={"callbacks": [runs]}
        )
        assert len(runs.chat) == 2
        for _, parent, _ in runs.chat:
            assert runs.chains[parent][0] == "ChatRouteLLM"
            assert runs.chains[runs.chains[parent][1]][0] == "model"

    def test_stream_messages_mode_has_no_duplicate_tokens(self, router: Any) -> None:
        llm = ChatRouteLLM(**children(), router=router, threshold=mixed())
        agent = create_agent(llm, tools=[get_weather])
        tokens: list[str] = []
        metas: list[dict[str, Any]] = []
        final: AIMessage | None = None
        for message, meta in agent.stream({"messages": [HumanMessage(WEATHER_Q)]}, stream_mode="messages"):
            if isinstance(message, AIMessageChunk) and meta["langgraph_node"] == "model":
                tokens.append(message.text)
                metas.append(meta)
        for update in agent.stream({"messages": [HumanMessage(WEATHER_Q)]}, stream_mode="values"):
            final = update["messages"][-1]
        assert final is not None
        assert "".join(tokens) == final.text
        assert all(m["routellm"]["choice"] == expected(router, WEATHER_Q) for m in metas)


class TestMiddleware:
    def make(self, router: Any, **kwargs: Any) -> tuple[Any, dict[str, Any], RouteLLMMiddleware]:
        kids = children()
        kwargs.setdefault("threshold", mixed())
        middleware = RouteLLMMiddleware(**kids, router=router, **kwargs)
        agent = create_agent(kids["weak"], tools=[get_weather], middleware=[middleware])
        return agent, kids, middleware

    @pytest.mark.parametrize("question", [WEATHER_Q, MATH_Q])
    def test_routes_each_step(self, router: Any, question: str) -> None:
        agent, kids, _ = self.make(router)
        out = agent.invoke({"messages": [HumanMessage(question)]})
        choice = expected(router, question)
        check_tool_loop(out["messages"], choice)
        assert kids[choice].calls == ["HumanMessage", "ToolMessage"]

    @pytest.mark.parametrize("threshold", [0.0, 1.0])
    def test_either_model_gets_the_tools(self, router: Any, threshold: float) -> None:
        agent, _, _ = self.make(router, threshold=threshold)
        out = agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})
        side = "strong" if threshold == 0.0 else "weak"
        check_tool_loop(out["messages"], side)

    def test_route_policy(self, router: Any) -> None:
        agent, _, _ = self.make(router, tool_step="route")
        out = agent.invoke({"messages": [HumanMessage(MATH_Q)]})
        check_tool_loop(out["messages"], expected(router, MATH_Q), continued=False)

    async def test_async(self, router: Any) -> None:
        agent, _, _ = self.make(router)
        out = await agent.ainvoke({"messages": [HumanMessage(WEATHER_Q)]})
        check_tool_loop(out["messages"], expected(router, WEATHER_Q))

    def test_model_run_carries_the_decision(self, router: Any) -> None:
        agent, _, _ = self.make(router)
        runs = ChatRuns()
        seen_meta: list[dict[str, Any]] = []

        class Meta(BaseCallbackHandler):
            def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
                seen_meta.append({"metadata": kw.get("metadata") or {}, "tags": kw.get("tags") or []})

        agent.invoke({"messages": [HumanMessage(WEATHER_Q)]}, config={"callbacks": [runs, Meta()]})
        choice = expected(router, WEATHER_Q)
        assert len(seen_meta) == 2
        for entry in seen_meta:
            assert entry["metadata"]["routellm"]["choice"] == choice
            assert f"routellm:{choice}" in entry["tags"]

    def test_failure_names_the_model_and_fallback(self, router: Any) -> None:
        agent, kids, _ = self.make(router, threshold=0.0)
        kids["strong"].error = RuntimeError("overloaded")
        with pytest.raises(ModelCallError, match="RouteLLMMiddleware: the chosen strong model 'fake-strong-1'"):
            agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})
        assert kids["weak"].calls == []

        agent, kids, _ = self.make(router, threshold=0.0, fallback=True)
        kids["strong"].error = RuntimeError("overloaded")
        out = agent.invoke({"messages": [HumanMessage(WEATHER_Q)]})
        call, final = ai_steps(out["messages"])
        assert call.response_metadata["routellm"]["fallback"] is True
        assert final.text.startswith("[weak]")

    def test_repr_is_short_and_secret_free(self, router: Any) -> None:
        _, _, middleware = self.make(router)
        assert repr(middleware).startswith("RouteLLMMiddleware(strong='fake-strong-1', weak='fake-weak-1'")
