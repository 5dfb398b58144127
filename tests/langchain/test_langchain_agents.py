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
from fitted_router import HARD, TRIVIA, expected_side
from langchain.agents import create_agent
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt
from lc_fakes import ToolEchoChatModel, children, shared_router, split_threshold
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware
from routellm_core.errors import InvalidInputError, ModelCallError

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
        record = final.response_metadata["routellm"]
        # The router's choice stays strong; the request stays on the side that served it, and says why.
        assert (record["choice"], record["served"], record["continued"]) == ("strong", "weak", True)
        assert (record["fallback"], record["fallback_error"]) == (True, "TimeoutError")
        assert kids["strong"].calls == ["HumanMessage"], "no second try of the failed model within the request"

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

    def test_options_are_checked_when_no_model_is_a_string(self, router: Any) -> None:
        # nothing would read a keyword argument that is no option: no model is built by init_chat_model
        with pytest.raises(
            InvalidInputError,
            match=r"RouteLLMMiddleware: unknown options 'objectve' \(did you mean 'objective'\?\), 'escalte' \(did "
            r"you mean 'escalate'\?\), 'fallbak' \(did you mean 'fallback'\?\);.*no model here is one",
        ):
            RouteLLMMiddleware(models=list(children().values()), objectve="budget=0.01", escalte=True, fallbak=True)
        with pytest.raises(InvalidInputError, match=r"unknown option 'temperature';.*'provider:model' strings"):
            RouteLLMMiddleware(**children(), router=router, temperature=0.2)

    @pytest.mark.filterwarnings("ignore:WARNING! treshold is not default parameter")  # ChatOpenAI's, before ours
    def test_provider_kwargs_reach_models_given_as_strings_and_typos_do_not(self, router: Any) -> None:
        strings = {"strong": "openai:gpt-4o", "weak": "openai:gpt-4o-mini", "api_key": "sk-test-not-a-key"}
        with pytest.raises(
            InvalidInputError,
            match=r"unknown option 'treshold' \(did you mean 'threshold'\?\); not a field of ChatOpenAI either",
        ):
            RouteLLMMiddleware(**strings, router=router, treshold=0.3)
        middleware = RouteLLMMiddleware(
            **strings, router=router, threshold=0.3, temperature=0.2, timeout=7, base_url="http://127.0.0.1:9/v1"
        )
        assert middleware.policy.threshold == 0.3
        for model in middleware.models.values():
            assert type(model).__name__ == "ChatOpenAI"
            assert (model.temperature, model.request_timeout, model.openai_api_base) == (
                0.2,
                7,
                "http://127.0.0.1:9/v1",
            )
        one_string = {"strong": "openai:gpt-4o", "weak": children()["weak"], "api_key": "sk-test-not-a-key"}
        assert RouteLLMMiddleware(**one_string, router=router, max_retries=0).models["strong"].max_retries == 0


# ---- with a router fitted in the test (expected choices known in advance) ----------------------------------------
@tool
def capital_of(country: str) -> str:
    """Look up the capital of a country."""
    return "Lima"


class TestMiddlewareTurnsWithAKnownRouter:
    def test_each_human_turn_starts_a_fresh_decision(self, known_router: Any) -> None:
        """Turns alternate trivia (with a tool step) and hard prompts; each turn's first step is decided anew
        on its own message, and the tool step continues the decision of the step that called the tool."""
        kids = children()
        middleware = RouteLLMMiddleware(**kids, router=known_router, strong_fraction=0.5)
        agent = create_agent(kids["weak"], tools=[capital_of], middleware=[middleware], checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "turns"}}
        turns = [TRIVIA[0], HARD[0], TRIVIA[0], HARD[1]]  # TRIVIA[0] asks for a capital: the weak side calls the tool
        for prompt in turns:
            agent.invoke({"messages": [HumanMessage(prompt)]}, config)
        messages = agent.get_state(config).values["messages"]
        starts = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
        ids = []
        for prompt, start, end in zip(turns, starts, [*starts[1:], len(messages)], strict=True):
            steps = ai_steps(messages[start:end])
            first = steps[0].response_metadata["routellm"]
            assert first["continued"] is False and first["choice"] == expected_side(prompt)
            ids.append(first["decision_id"])
            for later in steps[1:]:  # the answer to a tool result stays with the side that called the tool
                record = later.response_metadata["routellm"]
                assert record["continued"] is True and record["decision_id"] == first["decision_id"]
                assert later.text.startswith(f"[{expected_side(prompt)}] The tool said: Lima")
        assert len(set(ids)) == len(turns)
        assert [len(ai_steps(messages[s:e])) for s, e in zip(starts, [*starts[1:], len(messages)])] == [2, 1, 2, 1]


class ApprovalChatModel(ToolEchoChatModel):
    """A child that asks a human for approval (a LangGraph interrupt) before answering."""

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any) -> ChatResult:
        approval = interrupt("approve the strong model?")
        self.calls.append(f"resumed:{approval}")
        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"[{self.label}] approved: {approval}"))])

    def _stream(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        yield ChatGenerationChunk(message=AIMessageChunk(self._generate(messages).generations[0].message.text))


class TestInterruptsPassThrough:
    """A LangGraph interrupt raised inside the chosen model is control flow, not a failure: it pauses the graph
    unwrapped, the other model is never called (even with ``fallback=True``), and resuming answers normally."""

    def agent(self, how: str, known_router: Any) -> tuple[Any, dict[str, Any]]:
        kids = {"strong": ApprovalChatModel(label="strong", model="fake-strong-1"), "weak": children()["weak"]}
        if how == "chat_model":
            llm = ChatRouteLLM(**kids, router=known_router, strong_fraction=0.5, fallback=True)
            return create_agent(llm, tools=[], checkpointer=InMemorySaver()), kids
        middleware = RouteLLMMiddleware(**kids, router=known_router, strong_fraction=0.5, fallback=True)
        return create_agent(kids["weak"], tools=[], middleware=[middleware], checkpointer=InMemorySaver()), kids

    @pytest.mark.parametrize("how", ["chat_model", "middleware"])
    async def test_interrupt_pauses_and_resumes(self, known_router: Any, how: str) -> None:
        for run in ("sync", "async"):
            agent, kids = self.agent(how, known_router)
            config = {"configurable": {"thread_id": f"{how}-{run}"}}
            start = {"messages": [HumanMessage(HARD[0])]}
            paused = agent.invoke(start, config) if run == "sync" else await agent.ainvoke(start, config)
            assert [i.value for i in paused["__interrupt__"]] == ["approve the strong model?"]
            assert kids["weak"].calls == [], "an interrupt is not a failure: no fallback"
            resume = Command(resume="yes")
            done = agent.invoke(resume, config) if run == "sync" else await agent.ainvoke(resume, config)
            final = done["messages"][-1]
            assert final.text == "[strong] approved: yes"
            record = final.response_metadata["routellm"]
            assert (record["choice"], record["served"], record["fallback"]) == ("strong", "strong", False)
            assert kids["strong"].calls == ["resumed:yes"] and kids["weak"].calls == []

    def test_interrupt_while_streaming(self, known_router: Any) -> None:
        agent, kids = self.agent("chat_model", known_router)
        config = {"configurable": {"thread_id": "stream"}}
        updates = list(agent.stream({"messages": [HumanMessage(HARD[0])]}, config, stream_mode="updates"))
        assert "__interrupt__" in updates[-1]
        tokens = [m.text for m, _ in agent.stream(Command(resume="ok"), config, stream_mode="messages")]
        assert "".join(tokens) == "[strong] approved: ok"
        assert kids["weak"].calls == []

    @pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
    @pytest.mark.parametrize("how", ["chat_model", "middleware"])
    def test_graph_stream_events_v3(self, known_router: Any, how: str) -> None:
        """LangGraph's v3 event stream: the routed model's tokens in ``messages``, the interrupt in
        ``interrupts``, and the decision on the final state's message."""
        agent, kids = self.agent(how, known_router)
        config = {"configurable": {"thread_id": how}}
        trivia = agent.stream_events({"messages": [HumanMessage(TRIVIA[0])]}, config, version="v3")
        assert ["".join(m.text) for m in trivia.messages] == [f"[weak] You said: {TRIVIA[0]}"]
        assert trivia.output["messages"][-1].response_metadata["routellm"]["choice"] == "weak"

        paused = agent.stream_events({"messages": [HumanMessage(HARD[0])]}, config, version="v3")
        assert list(paused.messages) == [] and paused.interrupted
        assert [i.value for i in paused.interrupts] == ["approve the strong model?"]
        resumed = agent.stream_events(Command(resume="yes"), config, version="v3")
        assert ["".join(m.text) for m in resumed.messages] == ["[strong] approved: yes"]
        record = resumed.output["messages"][-1].response_metadata["routellm"]
        assert (record["served"], record["fallback"]) == ("strong", False) and not resumed.interrupted
        assert kids["weak"].calls == ["HumanMessage"], "the weak model answered the trivia turn only"
