"""One routing-text contract: the same conversation gives the same text (and decision) in both frameworks."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from llama_index.core.base.llms.types import ChatMessage, MessageRole

from langchain_routellm._messages import routing_text as lc_routing_text
from llamaindex_routellm._messages import routing_text as li_routing_text
from routellm_core.errors import InvalidInputError
from routellm_core.routing.text import Turn, canonical_route_on, routing_text

CONVERSATION = [
    ("system", "You are terse."),
    ("user", "  What is a monad?  "),
    ("assistant", "A monoid in the category of endofunctors."),
    ("user", "Explain that for a Python programmer."),
]


def as_langchain(turns: list[tuple[str, str]]) -> list:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[role](text) for role, text in turns]


def as_llamaindex(turns: list[tuple[str, str]]) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole(role), content=text) for role, text in turns]


@pytest.mark.parametrize("route_on", ["last_user", "last_human", "conversation", "rag_query"])
def test_same_conversation_same_text_in_both_frameworks(route_on: str) -> None:
    core = routing_text([Turn(role, text) for role, text in CONVERSATION], route_on)  # type: ignore[arg-type]
    assert lc_routing_text(as_langchain(CONVERSATION), route_on) == core  # type: ignore[arg-type]
    assert li_routing_text(as_llamaindex(CONVERSATION), route_on) == core  # type: ignore[arg-type]


def test_the_documented_texts() -> None:
    turns = [Turn(role, text) for role, text in CONVERSATION]  # type: ignore[arg-type]
    assert routing_text(turns) == "Explain that for a Python programmer."
    assert routing_text(turns, "conversation") == (
        "user: What is a monad?\n\n"
        "assistant: A monoid in the category of endofunctors.\n\n"
        "user: Explain that for a Python programmer."
    )
    rag = "Context information is below.\n---\nDocs\n---\nQuery: Who wrote it?\nAnswer: "
    assert routing_text([Turn("user", rag)], "rag_query") == "Who wrote it?"


def test_tool_results_and_react_observations_are_never_the_request() -> None:
    question = "What is 6 times 7, using the tool?"
    lc = [
        HumanMessage(question),
        AIMessage("", tool_calls=[{"name": "m", "args": {}, "id": "1"}]),
        ToolMessage("42", tool_call_id="1"),
    ]
    assert lc_routing_text(lc) == question
    react = [
        ChatMessage(role=MessageRole.USER, content=question),
        ChatMessage(role=MessageRole.ASSISTANT, content="Thought: I need a tool.\nAction: multiply\nAction Input: {}"),
        ChatMessage(role=MessageRole.USER, content="Observation: 42"),
    ]
    assert li_routing_text(react) == question
    assert li_routing_text(react, "conversation").count("Observation") == 0
    # A user who starts a fresh request with the word is still a user.
    assert li_routing_text([ChatMessage(role=MessageRole.USER, content="Observation: the sky is green?")])


def test_aliases_and_unknown_modes() -> None:
    assert canonical_route_on("last_human") == "last_user"
    with pytest.raises(InvalidInputError, match="route_on must be one of"):
        routing_text([Turn("user", "hi")], "first_user")


@pytest.mark.parametrize(
    ("turns", "match"),
    [
        ([], "conversation is empty"),
        ([Turn("system", "sys"), Turn("tool", "42")], "no user message"),
        ([Turn("user", "   ")], "empty or whitespace only"),
        ([Turn("user", "", non_text=True)], r"only images or other non-text content"),
    ],
)
def test_unroutable_conversations(turns: list[Turn], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        routing_text(turns)


def test_blank_text_and_non_text_content_are_told_apart() -> None:
    """An empty or blank user text is "empty or whitespace only"; the images message is only for user turns that
    hold non-text parts (a blank text beside an image is still the image case)."""
    with pytest.raises(InvalidInputError) as blank:
        routing_text([Turn("user", ""), Turn("assistant", "hi"), Turn("user", " \n")])
    assert "empty or whitespace only" in str(blank.value) and "images" not in str(blank.value)
    with pytest.raises(InvalidInputError) as image:
        routing_text([Turn("user", ""), Turn("user", "", non_text=True)])
    assert "only images or other non-text content" in str(image.value) and "whitespace" not in str(image.value)


def test_same_call_same_decision_record_in_both_frameworks() -> None:
    from langchain_core.language_models import GenericFakeChatModel
    from llama_index.core.llms import MockLLM

    from langchain_routellm import ChatRouteLLM
    from llamaindex_routellm import RouteLLM
    from routellm_core import load_router
    from routellm_core.routing.policy import RoutingPolicy

    policy = RoutingPolicy(load_router("fast"), threshold=0.5)
    lc = ChatRouteLLM(
        strong=GenericFakeChatModel(messages=iter(["strong answer"])),
        weak=GenericFakeChatModel(messages=iter(["weak answer"])),
        router=policy,
        strong_name="big",
        weak_name="small",
    )
    li = RouteLLM(strong=MockLLM(), weak=MockLLM(), router=policy)
    lc_record = lc.invoke(as_langchain(CONVERSATION)).response_metadata["routellm"]
    li_record = li.chat(as_llamaindex(CONVERSATION)).additional_kwargs["routellm"]
    assert lc_record.keys() == li_record.keys()
    assert {k: type(v) for k, v in lc_record.items() if k != "model"} == {
        k: type(v) for k, v in li_record.items() if k != "model"
    }
    same = ("router", "win_rate", "threshold", "choice", "served", "fallback", "continued")
    assert {k: lc_record[k] for k in same} == {k: li_record[k] for k in same}
    assert lc_record["decision_id"] != li_record["decision_id"]


def test_a_user_saying_observation_in_a_chat_is_still_a_request() -> None:
    """Only a user turn right after an assistant turn that named an ``Action:`` is a ReAct tool result."""
    question = "Observation: my proof by induction fails at n = 2, why?"
    chat = [("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", question)]
    assert lc_routing_text(as_langchain(chat)) == question
    assert li_routing_text(as_llamaindex(chat)) == question
    react = [
        ("user", "Multiply 6 by 7."),
        ("assistant", "Thought: use a tool.\nAction: multiply"),
        ("user", "Observation: 42"),
    ]
    assert lc_routing_text(as_langchain(react)) == li_routing_text(as_llamaindex(react)) == "Multiply 6 by 7."
