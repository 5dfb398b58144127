"""Escalation in LangChain: ``ChatRouteLLM(escalate=...)`` and ``RouteLLMRunnable(escalate=...)``.

The router is fitted in the tests (trivia -> weak, proofs -> strong); the children are scripted chat models, so
each case knows whether the cheap answers agree and therefore which model must serve.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from typing import Any

import pytest
from fitted_router import HARD, TRIVIA
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from pydantic import Field

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware, RouteLLMRunnable
from routellm_core.escalation import Escalation
from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE


class Scripted(BaseChatModel):
    """Answers with ``reply`` (text, or tool calls), streams it word by word, and records each call's kwargs."""

    model: str = "scripted"
    reply: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    temperature: float | None = None
    logprobs: list[float] | None = None
    verdict: str = "Yes"
    calls: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model}

    def bind_tools(self, tools: Any, **kwargs: Any) -> Scripted:
        return self

    def _message(self, messages: list[BaseMessage]) -> AIMessage:
        if messages and isinstance(messages[-1], ToolMessage):  # after a tool result: the final answer
            return AIMessage(content=f"{self.model}: {messages[-1].content}")
        if messages and messages[-1].content == VERIFY_QUESTION:  # asked about its own answer
            return AIMessage(content=self.verdict)
        return AIMessage(
            content=self.reply,
            tool_calls=[{**c, "id": f"call-{i}", "type": "tool_call"} for i, c in enumerate(self.tool_calls)],
            usage_metadata={"input_tokens": 20, "output_tokens": 5, "total_tokens": 25},
            response_metadata=(
                {"logprobs": {"content": [{"token": "t", "logprob": lp} for lp in self.logprobs]}}
                if self.logprobs is not None
                else {}
            ),
        )

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        self.calls.append(kw)
        return ChatResult(generations=[ChatGeneration(message=self._message(messages))])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.calls.append(kw)
        for word in self.reply.split(" "):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=word + " "))
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


def models(weak: str, second: str, strong: str = "The strong answer: 12") -> dict[str, Scripted]:
    return {
        "strong": Scripted(model="big", reply=strong),
        "weak": Scripted(model="small", reply=weak),
        "second": Scripted(model="other-small", reply=second),
    }


def router(known_router: Any, m: dict[str, Scripted], **kw: Any) -> ChatRouteLLM:
    return ChatRouteLLM(
        strong=m["strong"],
        weak=m["weak"],
        router=known_router,
        strong_fraction=0.5,
        escalate=Escalation(second=m["second"]),
        **kw,
    )


class Tags(BaseCallbackHandler):
    def __init__(self) -> None:
        self.runs: list[tuple[str, list[str]]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, tags: Any = None, **kw: Any) -> None:
        self.runs.append((str((kw.get("invocation_params") or {}).get("model_name")), list(tags or [])))


def test_agreeing_answers_keep_the_weak_model(known_router: Any) -> None:
    m = models(weak="It is 42.", second="42")
    tags = Tags()
    message = router(known_router, m).invoke(TRIVIA[0], config={"callbacks": [tags]})
    record = message.response_metadata["routellm"]
    assert message.text == "It is 42." and not m["strong"].calls
    assert (record["served"], record["escalated"]) == ("weak", False)
    assert [(a["model"], a["role"], a["kept"]) for a in record["attempts"]] == [
        ("small", "answer", True),
        ("other-small", "check", False),
    ]
    assert record["attempts"][0]["signals"]["agreement"] == 1.0
    assert record["attempts"][0]["input_tokens"] == 20
    by_model = dict(tags.runs)
    assert "routellm:check" in by_model["other-small"] and "nostream" in by_model["other-small"]
    assert "routellm:held" in by_model["small"]


def test_disagreeing_answers_escalate_with_prices(known_router: Any) -> None:
    m = models(weak="It is 42.", second="41")
    prices = {"big": (2.5, 10.0), "small": (0.15, 0.6), "other-small": (0.1, 0.4)}
    message = router(known_router, m, prices=prices).invoke(TRIVIA[1])
    record = message.response_metadata["routellm"]
    assert message.text == "The strong answer: 12"
    assert (record["served"], record["model"], record["escalated"], record["fallback"]) == (
        "strong",
        "big",
        True,
        False,
    )
    assert [a["role"] for a in record["attempts"]] == ["answer", "check", "escalation"]
    assert record["cost"] == pytest.approx((20 * (0.15 + 0.1 + 2.5) + 5 * (0.6 + 0.4 + 10.0)) / 1e6)


def test_pre_routed_prompts_never_pay_for_cheap_answers(known_router: Any) -> None:
    m = models(weak="It is 42.", second="41")
    record = router(known_router, m).invoke(HARD[0]).response_metadata["routellm"]
    assert record["served"] == "strong" and not record["escalated"]
    assert not m["weak"].calls and not m["second"].calls


def test_second_none_samples_the_weak_model_again_warmer(known_router: Any) -> None:
    m = models(weak="Paris", second="unused")
    llm = ChatRouteLLM(
        strong=m["strong"], weak=m["weak"], router=known_router, strong_fraction=0.5, escalate=Escalation()
    )
    record = llm.invoke(TRIVIA[2]).response_metadata["routellm"]
    assert len(m["weak"].calls) == 2 and {c.get("temperature") for c in m["weak"].calls} == {None, SAMPLE_TEMPERATURE}
    assert record["attempts"][1]["model"] == "small (resampled)" and not record["escalated"]


def test_async_and_streaming_serve_the_same_model(known_router: Any) -> None:
    m = models(weak="It is 42.", second="41")
    llm = router(known_router, m)
    message = asyncio.run(llm.ainvoke(TRIVIA[3]))
    assert message.response_metadata["routellm"]["escalated"]
    chunks = list(llm.stream(TRIVIA[3]))
    assert "".join(c.text for c in chunks).strip() == "The strong answer: 12"
    assert chunks[0].response_metadata["routellm"]["escalated"]
    kept = router(known_router, models(weak="It is 42.", second="42"))
    chunks = list(kept.stream(TRIVIA[3]))
    assert "".join(c.text for c in chunks).strip() == "It is 42."
    assert chunks[0].response_metadata["routellm"]["served"] == "weak"


def test_langgraph_message_stream_never_shows_a_discarded_weak_answer(known_router: Any) -> None:
    from langgraph.graph import END, START, MessagesState, StateGraph

    llm = router(known_router, models(weak="weakword answer", second="different"))

    def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("chat", node).add_edge(START, "chat").add_edge("chat", END).compile()
    streamed = [
        chunk.text for chunk, _ in graph.stream({"messages": [HumanMessage(TRIVIA[4])]}, stream_mode="messages")
    ]
    assert "weakword" not in "".join(streamed)
    assert "strong answer" in "".join(streamed)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_agent_step_escalates_on_disagreeing_tool_calls_and_the_tool_step_stays(known_router: Any) -> None:
    m = models(weak="", second="")
    m["weak"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    m["second"].tool_calls = [{"name": "get_weather", "args": {"city": "Lyon"}}]
    m["strong"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris, France"}}]
    llm = router(known_router, m).bind_tools([get_weather])
    question = HumanMessage(TRIVIA[5])
    step = llm.invoke([question])
    record = step.response_metadata["routellm"]
    assert record["escalated"] and step.tool_calls[0]["args"] == {"city": "Paris, France"}
    calls_before = (len(m["weak"].calls), len(m["second"].calls))
    m["strong"].tool_calls = []
    m["strong"].reply = "Sunny."
    answer = llm.invoke([question, step, ToolMessage("sunny", tool_call_id=step.tool_calls[0]["id"])])
    follow = answer.response_metadata["routellm"]
    assert follow["decision_id"] == record["decision_id"] and follow["continued"] and follow["served"] == "strong"
    assert (len(m["weak"].calls), len(m["second"].calls)) == calls_before  # the tool step is not re-checked


def test_agreeing_tool_calls_keep_the_weak_step(known_router: Any) -> None:
    m = models(weak="", second="")
    m["weak"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    m["second"].tool_calls = [{"name": " get_weather ", "args": {"city": " Paris "}}]
    step = router(known_router, m).bind_tools([get_weather]).invoke(TRIVIA[6])
    assert not step.response_metadata["routellm"]["escalated"] and not m["strong"].calls


def test_tool_calls_whose_names_differ_in_case_escalate(known_router: Any) -> None:
    """A function name is case-sensitive in every provider's API: Get_Weather is another tool, so the step
    escalates (it agreed while names were case-folded)."""
    m = models(weak="", second="")
    m["weak"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    m["second"].tool_calls = [{"name": "Get_Weather", "args": {"city": "Paris"}}]
    m["strong"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    step = router(known_router, m).bind_tools([get_weather]).invoke(TRIVIA[6])
    assert step.response_metadata["routellm"]["escalated"] and m["strong"].calls


def test_tool_calls_whose_arguments_differ_in_case_escalate(known_router: Any) -> None:
    """A tool runs its arguments as given (an id, a path): another case is another call, so the step escalates."""
    m = models(weak="", second="")
    m["weak"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    m["second"].tool_calls = [{"name": "get_weather", "args": {"city": "paris"}}]
    step = router(known_router, m).bind_tools([get_weather]).invoke(TRIVIA[6])
    assert step.response_metadata["routellm"]["escalated"]


def test_runnable_escalates_structured_answers(known_router: Any) -> None:
    def answering(value: Any) -> RunnableLambda:
        return RunnableLambda(lambda _: value)

    calls: list[str] = []
    runnable = RouteLLMRunnable(
        strong=RunnableLambda(lambda _: calls.append("strong") or {"city": "Paris", "country": "France"}),
        weak=answering({"city": "Paris", "country": "FR"}),
        router=known_router,
        strong_fraction=0.5,
        escalate=Escalation(second=answering({"city": "Paris", "country": "France"})),
        include_decision=True,
    )
    out = runnable.invoke({"question": TRIVIA[7]})
    assert out["routellm"]["escalated"] and out["output"]["country"] == "France" and calls == ["strong"]
    with pytest.raises(TypeError, match=r"escalate\.second must be a Runnable"):
        RouteLLMRunnable(
            strong=answering(1), weak=answering(2), router=known_router, escalate=Escalation(second="gpt-4o-mini")
        )


def test_agent_middleware_escalates_a_step_whose_tool_calls_disagree(known_router: Any) -> None:
    from langchain.agents import create_agent

    m = models(weak="", second="")
    m["weak"].tool_calls = [{"name": "get_weather", "args": {"city": "Paris"}}]
    m["second"].tool_calls = [{"name": "get_weather", "args": {"city": "Rome"}}]
    m["strong"].tool_calls = [{"name": "get_weather", "args": {"city": "Oslo"}}]
    middleware = RouteLLMMiddleware(
        strong=m["strong"],
        weak=m["weak"],
        router=known_router,
        strong_fraction=0.5,
        escalate=Escalation(second=m["second"]),
    )
    agent = create_agent(model=m["weak"], tools=[get_weather], middleware=[middleware])
    result = agent.invoke({"messages": [HumanMessage(TRIVIA[8])]})
    ai = [msg for msg in result["messages"] if isinstance(msg, AIMessage)]
    first, final = ai[0].response_metadata["routellm"], ai[-1].response_metadata["routellm"]
    assert first["escalated"] and ai[0].tool_calls[0]["args"] == {"city": "Oslo"}
    assert [a["role"] for a in first["attempts"]] == ["answer", "check", "escalation"]
    assert final["continued"] and final["served"] == "strong" and ai[-1].text == "big: sunny in Oslo"
    assert len(m["weak"].calls) == 1 and len(m["second"].calls) == 1  # the tool step was not checked again


def test_logprob_check_escalates_unsure_answers_without_a_second_call(known_router: Any) -> None:
    def run(logprobs: list[float] | None) -> dict[str, Any]:
        m = models(weak="Paris", second="unused")
        m["weak"].logprobs = logprobs
        llm = ChatRouteLLM(
            strong=m["strong"],
            weak=m["weak"],
            router=known_router,
            strong_fraction=0.5,
            escalate=Escalation(check="logprobs", threshold=0.5),
        )
        record = llm.invoke(TRIVIA[9]).response_metadata["routellm"]
        assert not m["second"].calls and len(m["weak"].calls) == 1
        return record

    sure = run([-0.01, -0.05])  # geometric mean token probability ~0.97
    assert not sure["escalated"] and sure["attempts"][0]["confidence"] == pytest.approx(math.exp(-0.03))
    unsure = run([-1.5, -2.0])  # ~0.17
    assert unsure["escalated"] and unsure["attempts"][0]["signals"]["min_logprob"] == -2.0
    assert run(None)["escalated"]  # no log-probabilities: nothing vouches for the answer


@pytest.mark.parametrize(("verdict", "escalated"), [("Yes, it is correct.", False), ("No.", True)])
def test_self_verification_asks_the_weak_model_about_its_answer(
    known_router: Any, verdict: str, escalated: bool
) -> None:
    m = models(weak="Paris is the capital.", second="unused")
    m["weak"].verdict = verdict
    llm = ChatRouteLLM(
        strong=m["strong"],
        weak=m["weak"],
        router=known_router,
        strong_fraction=0.5,
        escalate=Escalation(check="self_verification"),
    )
    for message in (llm.invoke(TRIVIA[9]), asyncio.run(llm.ainvoke(TRIVIA[9]))):
        record = message.response_metadata["routellm"]
        assert record["escalated"] is escalated
        assert [a["role"] for a in record["attempts"]][:2] == ["answer", "check"]
        assert record["attempts"][1]["model"] == "small (verify)"
    assert not m["second"].calls
