"""A child's cache still hits when the conversation holds routed replies.

LangChain keys a chat model's cache (``set_llm_cache``) by the serialized messages. A routed reply carries this
router's record (``response_metadata["routellm"]``), whose decision id is new on every run: sent on to the child, it
made every conversation from the second turn (an agent's second step) a cache miss on every replay, so a replayed
conversation paid the model again each time. The children now get earlier replies without the record; the caller's
messages keep it. (LangChain itself marks a reply served from the cache with ``usage_metadata["total_cost"] = 0``,
so the first replay's second turn differs from the original's and misses once, as it does without a router; from
the second replay on, every turn hits.)

Routers are real (the fitted ``known_router``: trivia goes to the weak model); the children are ``lc_fakes``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fitted_router import TRIVIA
from langchain.agents import create_agent
from langchain_core.caches import InMemoryCache
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.tools import tool
from lc_fakes import ToolEchoChatModel, children
from pydantic import BaseModel

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware, RouteLLMRunnable
from routellm_core.routers.base import WinRateModel


def two_turns(llm: ChatRouteLLM, mode: str) -> list[BaseMessage]:
    """A two-turn chat through ``llm`` (``invoke`` or ``ainvoke``; LangChain's ``stream`` never reads the cache):
    the whole history."""

    def ask(history: list[BaseMessage]) -> AIMessage:
        return llm.invoke(history) if mode == "invoke" else asyncio.run(llm.ainvoke(history))

    history: list[BaseMessage] = [HumanMessage(TRIVIA[1])]
    history.append(ask(history))
    history.append(HumanMessage(TRIVIA[2]))
    history.append(ask(history))
    return history


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_a_replayed_chat_is_answered_from_the_childs_cache(
    known_router: WinRateModel, llm_cache: InMemoryCache, mode: str
) -> None:
    kids = children()
    llm = ChatRouteLLM(**kids, router=known_router)
    first = two_turns(llm, mode)
    assert len(kids["weak"].calls) == 2, "precondition: trivia goes to the weak model, each turn a new call"
    two_turns(llm, mode)  # LangChain's cached first reply says total_cost 0: the second turn misses once
    calls = len(kids["weak"].calls)
    again = two_turns(llm, mode)
    assert len(kids["weak"].calls) == calls, "a replayed second turn missed the child's cache"
    assert [m.content for m in again] == [m.content for m in first]
    ids = [m.response_metadata["routellm"]["decision_id"] for m in (first[1], again[1])]
    assert ids[0] != ids[1], "each run is a new decision, and the caller's replies keep their record"


def test_an_agent_replayed_hits_the_cache_at_every_step(known_router: WinRateModel, llm_cache: InMemoryCache) -> None:
    """The middleware's steps: the tool step's conversation holds the first step's routed reply."""

    @tool
    def weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    strong = ToolEchoChatModel(label="strong", model="fake-strong-1")
    weak = ToolEchoChatModel(label="weak", model="fake-weak-1")
    middleware = RouteLLMMiddleware(strong=strong, weak=weak, router=known_router)
    agent = create_agent(model=weak, tools=[weather], middleware=[middleware])
    question = {"messages": [HumanMessage(f"{TRIVIA[1]} What is the weather in 'Paris'?")]}
    first = agent.invoke(question)
    assert len(weak.calls) + len(strong.calls) == 2, "precondition: a tool call, then the answer"
    agent.invoke(question)  # the tool step misses once, as without a router (see the module's note)
    calls = len(weak.calls) + len(strong.calls)
    again = agent.invoke(question)
    assert len(weak.calls) + len(strong.calls) == calls, "a replayed agent step missed the child's cache"
    assert [m.content for m in again["messages"]] == [m.content for m in first["messages"]]
    assert "routellm" in again["messages"][1].response_metadata


class Weather(BaseModel):
    """A structured answer."""

    city: str


@pytest.mark.parametrize("front", ["runnable", "structured"])
def test_runnables_and_structured_output_hand_children_no_record(
    known_router: WinRateModel, llm_cache: InMemoryCache, front: str
) -> None:
    """``RouteLLMRunnable`` over chat models, and ``ChatRouteLLM.with_structured_output`` (built on it), give their
    children the conversation without earlier routed replies' records too; the caller's messages keep theirs."""
    kids = children()
    seen: list[bool] = []
    for kid in kids.values():
        original = type(kid)._generate

        def spy(self: Any, messages: list[BaseMessage], *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(any("routellm" in m.response_metadata for m in messages if isinstance(m, AIMessage)))
            return _original(self, messages, *args, **kwargs)

        object.__setattr__(kid, "_generate", spy.__get__(kid))
    routed = ChatRouteLLM(**kids, router=known_router)
    history: list[BaseMessage] = [HumanMessage(TRIVIA[1]), routed.invoke(TRIVIA[1])]
    assert "routellm" in history[1].response_metadata
    history.append(HumanMessage(f"{TRIVIA[2]} What is the weather in 'Paris'?"))
    if front == "runnable":
        RouteLLMRunnable(**kids, router=known_router).invoke(history)
    else:
        assert routed.with_structured_output(Weather).invoke(history) == Weather(city="Paris")
    assert seen and not any(seen), "a child got a routed reply's record"
    assert "routellm" in history[1].response_metadata
