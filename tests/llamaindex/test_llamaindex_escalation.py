"""Escalation in LlamaIndex: ``RouteLLM(escalate=...)`` (router fitted in the tests; scripted child LLMs)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fitted_router import HARD, TRIVIA
from li_fakes import ToolCallingLLM
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.bridge.pydantic import Field
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM
from routellm_core.escalation import Escalation
from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.routing.cascade import SAMPLE_TEMPERATURE


class Scripted(MockLLM):
    """Completes with ``reply`` (streamed word by word), reports token usage, and records its temperatures."""

    name: str = "scripted"
    reply: str = ""
    temperature: float = 0.0
    verdict: str = "Yes"
    seen: list[float] = Field(default_factory=list)

    def __init__(self, name: str, reply: str, **kw: Any) -> None:
        super().__init__()
        self.name, self.reply, self.seen = name, reply, []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.name)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.seen.append(self.temperature)
        if VERIFY_QUESTION in prompt:  # asked about its own answer (a chat call arrives as a prompt)
            return CompletionResponse(text=self.verdict)
        return CompletionResponse(text=self.reply, additional_kwargs={"prompt_tokens": 30, "completion_tokens": 4})

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self.seen.append(self.temperature)

        def gen() -> CompletionResponseGen:
            text = ""
            for word in self.reply.split(" "):
                text += word + " "
                yield CompletionResponse(text=text, delta=word + " ")

        return gen()


def multiply(a: int = 6, b: int = 7) -> int:
    """Multiply two integers."""
    return a * b


def llms(weak: str, second: str) -> dict[str, Scripted]:
    return {
        "strong": Scripted(name="big", reply="Strong: 12"),
        "weak": Scripted(name="small", reply=weak),
        "second": Scripted(name="other-small", reply=second),
    }


def routed(known_router: Any, m: dict[str, Scripted], **kw: Any) -> RouteLLM:
    return RouteLLM(
        strong=m["strong"],
        weak=m["weak"],
        router=known_router,
        strong_fraction=0.5,
        escalate=Escalation(second=m["second"]),
        **kw,
    )


def test_agreement_keeps_the_weak_answer_and_disagreement_escalates(known_router: Any) -> None:
    m = llms(weak="The answer is 42.", second="42")
    response = routed(known_router, m).complete(TRIVIA[0])
    record = response.additional_kwargs["routellm"]
    assert response.text == "The answer is 42." and not m["strong"].seen
    assert [(a["model"], a["role"], a["kept"]) for a in record["attempts"]] == [
        ("small", "answer", True),
        ("other-small", "check", False),
    ]
    assert record["attempts"][0]["input_tokens"] == 30
    m = llms(weak="The answer is 42.", second="43")
    chat = routed(known_router, m, prices={"big": (1.0, 2.0), "small": (0.1, 0.2), "other-small": (0.1, 0.2)}).chat(
        [ChatMessage(role="user", content=TRIVIA[0])]
    )
    record = chat.additional_kwargs["routellm"]
    assert chat.message.content == "Strong: 12"
    assert (record["served"], record["escalated"], record["model"]) == ("strong", True, "big")
    assert record["cost"] == (30 * 1.2 + 4 * 2.4) / 1e6


def test_pre_route_and_resampling(known_router: Any) -> None:
    m = llms(weak="Paris", second="unused")
    llm = RouteLLM(strong=m["strong"], weak=m["weak"], router=known_router, strong_fraction=0.5, escalate=Escalation())
    assert llm.complete(HARD[0]).additional_kwargs["routellm"]["served"] == "strong" and not m["weak"].seen
    record = llm.complete(TRIVIA[1]).additional_kwargs["routellm"]
    assert sorted(m["weak"].seen) == [0.0, SAMPLE_TEMPERATURE]  # asked again, warmer, for the check
    assert not record["escalated"] and m["weak"].temperature == 0.0


def test_streams_and_async_follow_the_check(known_router: Any) -> None:
    m = llms(weak="It is 42.", second="41")
    llm = routed(known_router, m)
    chunks = list(llm.stream_complete(TRIVIA[2]))
    assert chunks[-1].text.strip() == "Strong: 12"
    assert all("It is" not in c.text for c in chunks)
    assert chunks[0].additional_kwargs["routellm"]["escalated"]

    async def both() -> tuple[Any, list[Any]]:
        response = await llm.acomplete(TRIVIA[2])
        stream = await llm.astream_complete(TRIVIA[2])
        return response, [c async for c in stream]

    response, achunks = asyncio.run(both())
    assert response.text == "Strong: 12" and achunks[-1].text.strip() == "Strong: 12"
    kept = routed(known_router, llms(weak="It is 42.", second="42"))
    assert list(kept.stream_complete(TRIVIA[2]))[-1].text.strip() == "It is 42."


def test_self_verification_asks_the_weak_llm_about_its_answer(known_router: Any) -> None:
    for verdict, escalated in (("Yes.", False), ("No, that is wrong.", True)):
        m = llms(weak="Paris", second="unused")
        m["weak"].verdict = verdict
        llm = RouteLLM(
            strong=m["strong"],
            weak=m["weak"],
            router=known_router,
            strong_fraction=0.5,
            escalate=Escalation(check="self_verification"),
        )
        records = [
            llm.complete(TRIVIA[3]).additional_kwargs["routellm"],
            llm.chat([ChatMessage(role="user", content=TRIVIA[3])]).additional_kwargs["routellm"],
            asyncio.run(llm.acomplete(TRIVIA[3])).additional_kwargs["routellm"],
            list(llm.stream_complete(TRIVIA[3]))[-1].additional_kwargs["routellm"],
        ]
        for record in records:
            assert record["escalated"] is escalated
            assert record["attempts"][1]["model"] == "small (verify)"
        assert not m["second"].seen


@pytest.mark.parametrize("ids", [True, False])
@pytest.mark.parametrize("streaming", [True, False])
async def test_an_escalated_tool_call_is_answered_by_the_strong_model(
    known_router: Any, streaming: bool, ids: bool
) -> None:
    # the two cheap answers call the tool with different arguments, so the strong model makes the call; on the tool
    # result all three answer "done": routed anew, the step would keep the cheap answer they agree on. Without
    # ids in the message the agent names the call by what the child's parser says
    strong, weak, second = (
        ToolCallingLLM(name, {"a": a}, done="done", ids=ids) for name, a in (("big", 6), ("small", 1), ("other", 2))
    )
    llm = RouteLLM(strong=strong, weak=weak, router=known_router, threshold=1.0, escalate=Escalation(second=second))
    agent = FunctionAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm, streaming=streaming)
    result = await agent.run("What is 6 times 7?")
    assert str(result) == "done"
    assert strong.log == [("big", "user"), ("big", "tool")]
    assert weak.log == [("small", "user")] and second.log == [("other", "user")]


ACTION = 'Thought: I need a tool.\nAction: multiply\nAction Input: {"a": 6, "b": 7}'
QUESTION = "What is 6 times 7? Use the multiply tool."


class Cycling(Scripted):
    """Answers its ``replies`` in turn (a model sampled again that sometimes agrees, sometimes not)."""

    replies: list[str] = Field(default_factory=list)

    def __init__(self, name: str, replies: list[str]) -> None:
        super().__init__(name, replies[0])
        self.replies = list(replies)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.reply = self.replies[len(self.seen) % len(self.replies)]
        return super().complete(prompt, formatted, **kwargs)


def react_step(llm: RouteLLM) -> dict[str, Any]:
    """One ReAct action step on the question; its record."""
    return llm.chat([ChatMessage(role="user", content=QUESTION)]).additional_kwargs["routellm"]


def observation_step(llm: RouteLLM) -> dict[str, Any]:
    """The step after the action: ReAct's rewritten action, then the observation as a user message; its record."""
    messages = [
        ChatMessage(role="user", content=QUESTION),
        ChatMessage(role="assistant", content=ACTION.replace('"', "'")),
        ChatMessage(role="user", content="Observation: 42"),
    ]
    return llm.chat(messages).additional_kwargs["routellm"]


def test_a_react_observation_continues_on_the_model_that_named_the_action(known_router: Any) -> None:
    strong, weak = Scripted(name="big", reply=ACTION), Scripted(name="small", reply=ACTION)
    second = Cycling("other-small", [ACTION, "Action: add"])  # agrees, then not
    llm = RouteLLM(strong=strong, weak=weak, router=known_router, threshold=1.0, escalate=Escalation(second=second))
    first = react_step(llm)
    assert first["model"] == "small" and not first["escalated"]
    step = observation_step(llm)
    assert step["continued"] and step["decision_id"] == first["decision_id"] and step["model"] == "small"


def test_the_same_react_input_served_by_two_models_is_routed_anew(known_router: Any) -> None:
    """Two runs of the same question whose actions different models served: the observation cannot say whose it
    is, so it is routed anew rather than continued on the other run's model."""
    strong, weak = Scripted(name="big", reply=ACTION), Scripted(name="small", reply=ACTION)
    second = Cycling("other-small", [ACTION, "Action: add"])
    llm = RouteLLM(strong=strong, weak=weak, router=known_router, threshold=1.0, escalate=Escalation(second=second))
    runs = [react_step(llm), react_step(llm)]
    assert [r["model"] for r in runs] == ["small", "big"]  # the second run's check disagreed
    step = observation_step(llm)
    assert not step["continued"] and step["decision_id"] not in {r["decision_id"] for r in runs}
