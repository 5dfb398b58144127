"""Bugs found by a bug hunt of N-model ladders and escalation through the LangChain front end, each pinned by a test.

The router is the shipped ``default`` (loaded once, ``lc_fakes.shared_router``); the models are labelled fakes. The
ladder stand-ins (tiny < mid < big, priced 0.1 / 1 / 10 USD per million tokens) are those of
``tests/langchain/test_langchain_ladder.py``: ``Objective.margin(1.0)`` picks tiny. Between two models,
``threshold=1.0`` sends every call to the weak model (no win rate reaches 1), so it is the escalation's first answer.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from lc_fakes import ToolEchoChatModel, shared_router
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM
from routellm_core.escalation import Escalation
from routellm_core.escalation.checks import VERIFY_QUESTION
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.objective import Objective

PRIORS = {
    "tiny": ModelPrior(like="chatglm-6b"),
    "mid": ModelPrior(like="Qwen2.5-32B-Instruct"),
    "big": ModelPrior(like="o1-preview-2024-09-12"),
}
PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
WEATHER_Q = "What is the weather in 'Paris' right now?"
PROOF = "Prove that the square root of 2 is irrational."


class Weather(BaseModel):
    """The weather in a city."""

    city: str


class Verifying(ToolEchoChatModel):
    """A fake that answers the self-verification question with ``verdict`` (and anything else as its parent)."""

    verdict: str = "Yes"

    def _reply(self, messages: list[BaseMessage], stop: Any, **kwargs: Any) -> AIMessage:
        if messages and messages[-1].content == VERIFY_QUESTION:
            self.calls.append("verify")
            return AIMessage(
                content=self.verdict, usage_metadata={"input_tokens": 9, "output_tokens": 1, "total_tokens": 10}
            )
        return super()._reply(messages, stop, **kwargs)


class Warm(ToolEchoChatModel):
    """A fake answering ``"The answer is 1."``, and ``"The answer is 2."`` when asked again warmer (the escalation
    check's resample passes a temperature): its two cheap answers disagree, so a call escalates."""

    def _reply(self, messages: Any, stop: Any, **kwargs: Any) -> AIMessage:
        message = super()._reply(messages, stop, **kwargs)
        number = 2 if kwargs.get("temperature") else 1
        return message.model_copy(update={"content": f"[{self.label}] The answer is {number}."})


def usd(model: str, attempt: dict[str, Any]) -> float:
    """What ``attempt``'s reported tokens cost at ``model``'s price."""
    price_in, price_out = PRICES[model]
    return (attempt["input_tokens"] * price_in + attempt["output_tokens"] * price_out) / 1e6


def pair(cls: Callable[..., ToolEchoChatModel] = ToolEchoChatModel, **kwargs: Any) -> ChatRouteLLM:
    """Two models, every call routed to the weak one (tiny); big is the strong one."""
    return ChatRouteLLM(
        strong=cls(label="big", model="big"),
        weak=cls(label="tiny", model="tiny"),
        router=shared_router(),
        threshold=1.0,
        prices=PRICES,
        **kwargs,
    )


def ladder(cls: Callable[..., ToolEchoChatModel] = ToolEchoChatModel, **kwargs: Any) -> ChatRouteLLM:
    """tiny, mid and big; ``Objective.margin(1.0)`` picks tiny, whose escalation target is big."""
    models = {name: cls(label=name, model=name) for name in ("big", "tiny", "mid")}
    return ChatRouteLLM(
        models=models, router=shared_router(), objective=Objective.margin(1.0), priors=PRIORS, prices=PRICES, **kwargs
    )


def test_precondition_tiny_is_chosen_and_big_is_its_escalation() -> None:
    record = ladder().invoke(PROOF).response_metadata["routellm"]
    assert (record["ladder"]["chosen"], record["ladder"]["strong"]) == ("tiny", "big")
    assert pair().invoke(PROOF).response_metadata["routellm"]["model"] == "tiny"


# ---- structured output under escalation: the check's second answer is named and priced -----------------------------
@pytest.mark.parametrize("build", [pair, ladder], ids=["two-models", "ladder"])
def test_structured_escalation_names_and_prices_the_second_model(build: Any) -> None:
    """The second cheap answer of a structured call was recorded as model 'RunnableSequence' (the structured-output
    chain), which has no price: the check's cost and the request's cost were None."""
    second = ToolEchoChatModel(label="other", model="mid")  # calls the same tool with the same arguments: agrees
    out = build(escalate=Escalation(second=second, threshold=0.5)).with_structured_output(Weather, include_raw=True)
    result = out.invoke(WEATHER_Q)
    assert result["parsed"] == Weather(city="Paris")
    record = result["raw"].response_metadata["routellm"]
    answer, check = record["attempts"]
    assert (answer["model"], answer["role"], check["model"], check["role"]) == ("tiny", "answer", "mid", "check")
    assert len(second.calls) == 1
    usage = result["raw"].usage_metadata
    assert (answer["input_tokens"], answer["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
    assert check["input_tokens"] == usage["input_tokens"]  # the same question, asked of mid
    assert answer["cost"] == pytest.approx(usd("tiny", answer))
    assert check["cost"] == pytest.approx(usd("mid", check))
    assert record["cost"] == pytest.approx(usd("tiny", answer) + usd("mid", check))


def test_structured_escalation_resampling_the_weak_model_is_named_as_such() -> None:
    """Between two models, ``second=None`` resamples the weak model: the check was recorded as 'RunnableSequence'
    (unpriced) instead of 'tiny (resampled)', priced as tiny (as for plain calls)."""
    llm = pair(escalate=Escalation(threshold=0.5))
    plain = llm.invoke(WEATHER_Q).response_metadata["routellm"]["attempts"]
    result = llm.with_structured_output(Weather, include_raw=True).invoke(WEATHER_Q)
    answer, check = result["raw"].response_metadata["routellm"]["attempts"]
    assert [(a["model"], a["role"]) for a in plain] == [("tiny", "answer"), ("tiny (resampled)", "check")]
    assert (check["model"], check["role"]) == ("tiny (resampled)", "check")
    assert check["cost"] == pytest.approx(usd("tiny", check)) and answer["cost"] == pytest.approx(usd("tiny", answer))


def test_two_model_structured_output_keeps_the_routers_prices() -> None:
    """``prices=`` was dropped by ``with_structured_output`` between two models (not among N): the record of a
    structured call with ``include_raw=True`` had no cost for models only ``prices=`` knows."""
    result = pair().with_structured_output(Weather, include_raw=True).invoke(WEATHER_Q)
    record = result["raw"].response_metadata["routellm"]
    (attempt,) = record["attempts"]
    usage = result["raw"].usage_metadata
    assert (attempt["model"], attempt["input_tokens"], attempt["output_tokens"]) == (
        "tiny",
        usage["input_tokens"],
        usage["output_tokens"],
    )
    assert record["cost"] == pytest.approx((usage["input_tokens"] + usage["output_tokens"]) * 0.1 / 1e6)


@pytest.mark.parametrize("build", [pair, ladder], ids=["two-models", "ladder"])
@pytest.mark.parametrize(("verdict", "served"), [("Yes", "tiny"), ("No", "big")])
def test_structured_output_takes_the_self_verification_check(build: Any, verdict: str, served: str) -> None:
    """``ChatRouteLLM(escalate=Escalation(check="self_verification")).with_structured_output(...)`` raised
    InvalidInputError ("RouteLLMRunnable cannot ask the self-verification question") on every call, though the same
    router's plain calls take that check."""

    llm = build(
        functools.partial(Verifying, verdict=verdict), escalate=Escalation(check="self_verification", threshold=0.75)
    )
    result = llm.with_structured_output(Weather, include_raw=True).invoke(WEATHER_Q)
    assert result["parsed"] == Weather(city="Paris")
    record = result["raw"].response_metadata["routellm"]
    assert record["model"] == served and record["escalated"] is (served == "big")
    roles = [(a["model"], a["role"]) for a in record["attempts"]]
    assert roles[:2] == [("tiny", "answer"), ("tiny (verify)", "check")]
    assert roles[2:] == ([("big", "escalation")] if served == "big" else [])
    models = llm.models if llm.models is not None else {"tiny": llm.weak, "big": llm.strong}
    assert models["tiny"].calls == ["HumanMessage", "verify"]  # the weak model was asked about its own answer

    async def run() -> Any:
        return await llm.with_structured_output(Weather).ainvoke(WEATHER_Q)

    assert asyncio.run(run()) == Weather(city="Paris")
    assert models["tiny"].calls[2:] == ["HumanMessage", "verify"]


# ---- streaming=True: invoke consumes the stream, and the record is the priced one ----------------------------------
@pytest.mark.parametrize("build", [pair, ladder], ids=["two-models", "ladder"])
def test_streaming_invoke_records_tokens_and_cost(build: Any) -> None:
    """``streaming=True`` made ``invoke`` return the first chunk's record (no tokens, cost None) where a plain
    ``invoke`` of the same call returns the priced one."""
    message = build(streaming=True).invoke(PROOF)
    record = message.response_metadata["routellm"]
    (attempt,) = record["attempts"]
    usage = message.usage_metadata
    assert usage is not None and usage["output_tokens"] > 0
    assert (attempt["input_tokens"], attempt["output_tokens"]) == (usage["input_tokens"], usage["output_tokens"])
    assert record["cost"] == pytest.approx(usd("tiny", attempt))

    async def run() -> AIMessage:
        return await build(streaming=True).ainvoke(PROOF)

    arecord = asyncio.run(run()).response_metadata["routellm"]
    assert arecord["cost"] == pytest.approx(record["cost"])


def test_streaming_invoke_of_an_escalated_call_records_every_attempt_priced() -> None:
    """An escalated call under ``streaming=True``: the cheap answers and the strong model's, each with its cost."""

    llm = ChatRouteLLM(
        strong=ToolEchoChatModel(label="big", model="big"),
        weak=Warm(label="tiny", model="tiny"),  # its resampled answer differs: the call escalates
        router=shared_router(),
        threshold=1.0,
        prices=PRICES,
        streaming=True,
        escalate=Escalation(threshold=0.5),
    )
    message = llm.invoke(PROOF)
    record = message.response_metadata["routellm"]
    assert message.text == f"[big] You said: {PROOF}" and record["escalated"] is True
    assert [(a["model"], a["role"]) for a in record["attempts"]] == [
        ("tiny", "answer"),
        ("tiny (resampled)", "check"),
        ("big", "escalation"),
    ]
    strong = record["attempts"][2]
    assert strong["output_tokens"] == message.usage_metadata["output_tokens"]
    assert strong["cost"] == pytest.approx(usd("big", strong))
    assert record["cost"] == pytest.approx(sum(usd(a["model"].split(" ")[0], a) for a in record["attempts"]))


# ---- model_copy takes what the constructor takes -----------------------------------------------------------------
@pytest.mark.parametrize("build", [pair, ladder], ids=["two-models", "ladder"])
def test_model_copy_takes_escalate_true_as_the_constructor_does(build: Any) -> None:
    """``escalate=True`` (the defaults) is accepted by the constructor; ``model_copy(update={"escalate": True})``
    failed with AttributeError ('bool' object has no attribute 'second') on construction of the engine."""
    copy = build().model_copy(update={"escalate": True})
    assert copy.escalate == Escalation()
    record = copy.invoke(PROOF).response_metadata["routellm"]
    assert [a["role"] for a in record["attempts"]][:2] == ["answer", "check"]


# ---- core: an escalated stream whose strong model fails falls back to the held cheap answer -------------------------
@pytest.mark.parametrize("mode", ["invoke", "stream", "astream", "streaming-invoke"])
def test_an_escalated_stream_whose_strong_model_fails_serves_the_held_answer(mode: str) -> None:
    """With ``fallback=True``, an escalated call whose strong model fails before any output serves the weak answer
    already held and paid for (as ``invoke`` does). A stream used to call the weak model a third time, serve that
    new, unchecked answer and record a fourth attempt."""
    weak = Warm(label="tiny", model="tiny")
    llm = ChatRouteLLM(
        strong=ToolEchoChatModel(label="big", model="big", error=ConnectionError("big is down")),
        weak=weak,
        router=shared_router(),
        threshold=1.0,
        prices=PRICES,
        fallback=True,
        escalate=Escalation(threshold=0.5),
        streaming=mode == "streaming-invoke",
    )
    if mode in ("invoke", "streaming-invoke"):
        message = llm.invoke(PROOF)
        text, record = message.text, message.response_metadata["routellm"]
    else:

        async def collect() -> list[Any]:
            return [chunk async for chunk in llm.astream(PROOF)]

        chunks = list(llm.stream(PROOF)) if mode == "stream" else asyncio.run(collect())
        text, record = "".join(c.text for c in chunks), chunks[0].response_metadata["routellm"]
    assert text == "[tiny] The answer is 1."
    assert len(weak.calls) == 2  # the answer and its resample; never a third call
    assert (record["served"], record["fallback"], record["fallback_from"]) == ("weak", True, "big")
    assert [(a["model"], a["role"], a["kept"], a["error"]) for a in record["attempts"]] == [
        ("tiny", "answer", True, None),
        ("tiny (resampled)", "check", False, None),
        ("big", "escalation", False, "ConnectionError"),
    ]
