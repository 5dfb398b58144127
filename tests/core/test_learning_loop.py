"""Learning the user's traffic inside the app: decisions recorded, a sample labelled by a judge, verdicts attached.

Real LangChain and LlamaIndex objects and the real shipped ``fast`` router; the children are local fakes whose
answers say which side wrote them, so the judge (a content-based callable, or a judge *model* that reads the
judging prompt) has a verdict the test knows in advance: the strong side's answer wins.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from lc_fakes import ToolEchoChatModel
from li_fakes import LabelledLLM
from llama_index.core.base.llms.types import CompletionResponse
from llama_index.core.llms import MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback

from langchain_routellm import ChatRouteLLM, RouteLLMRunnable
from llamaindex_routellm import RouteLLM
from routellm_core import FeedbackStoreError, InvalidInputError, load_router
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.policy import RoutingPolicy

PROMPTS = [
    "What is the capital of France?",
    "Prove that the square root of two is irrational.",
    "Write a haiku about autumn.",
    "Explain the CAP theorem with an example.",
    "How many legs does a spider have?",
    "Derive the closed form of the Fibonacci sequence.",
]
ALWAYS_STRONG, ALWAYS_WEAK = 0.0, 1.0


def strong_wins(prompt: str, answer_a: str, answer_b: str) -> str:
    """A judge that prefers the strong side's answer (the store puts the strong model as model_a)."""
    if "strong" in answer_a and "strong" not in answer_b:
        return "model_a"
    if "strong" in answer_b and "strong" not in answer_a:
        return "model_b"
    return "tie"


@pytest.fixture(scope="module")
def fast() -> Any:
    return load_router("fast")


def lc_children() -> dict[str, ToolEchoChatModel]:
    return {
        "strong": ToolEchoChatModel(label="strong", model="fake-strong-1"),
        "weak": ToolEchoChatModel(label="weak", model="fake-weak-1"),
    }


class JudgeChatModel(BaseChatModel):
    """A LangChain chat model used as the judge: reads MT-Bench's pairwise prompt, says which answer is strong's."""

    @property
    def _llm_type(self) -> str:
        return "judge"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        text = messages[-1].text
        first = text.split("[The Start of Assistant A's Answer]")[1].split("[The End of Assistant A's Answer]")[0]
        verdict = "[[A]]" if "strong" in first else "[[B]]"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"Reasoning... {verdict}"))])


def test_langchain_loop_records_labels_and_verdicts(fast: Any, tmp_path: Path) -> None:
    store = tmp_path / "feedback.db"
    llm = ChatRouteLLM(
        **lc_children(), router=fast, threshold=ALWAYS_WEAK, feedback=store, judge=JudgeChatModel(), label_fraction=1.0
    )
    ids = []
    for prompt in PROMPTS:
        message = llm.invoke(prompt)
        assert message.text.startswith("[weak]"), "labelling never changes the caller's answer"
        ids.append(message.response_metadata["routellm"]["decision_id"])
    assert llm.labelling is not None and llm.labelling.labeller is not None
    assert llm.labelling.labeller.flush(timeout=30)
    stats = llm.labelling.labeller.stats
    assert stats.stored == len(PROMPTS) and stats.judge_errors == stats.other_model_errors == 0

    battles = FeedbackStore(store).battles()
    assert sorted(b.prompt for b in battles) == sorted(PROMPTS)
    assert {(b.model_a, b.model_b, b.winner) for b in battles} == {("fake-strong-1", "fake-weak-1", "model_a")}

    # The app's own verdict, attached afterwards by the decision id the response carries.
    assert llm.feedback_store is not None
    assert llm.feedback_store.add_verdict(ids[0], "bad", source="user") is not None
    user = llm.feedback_store.battles(sources=["user"])
    assert [(b.prompt, b.winner) for b in user] == [(PROMPTS[0], "model_a")], "a bad weak answer: strong wins"


async def test_langchain_async_and_streaming_label_in_the_background(fast: Any, tmp_path: Path) -> None:
    llm = ChatRouteLLM(
        **lc_children(),
        router=fast,
        threshold=ALWAYS_STRONG,
        feedback=tmp_path / "fb.db",
        judge=strong_wins,
        label_fraction=1.0,
    )
    answer = await llm.ainvoke(PROMPTS[1])
    chunks = [c async for c in llm.astream(PROMPTS[2])]
    assert answer.text.startswith("[strong]") and "".join(c.text for c in chunks).startswith("[strong]")
    labeller = llm.labelling.labeller  # type: ignore[union-attr]
    assert await labeller.aflush(timeout=30)
    assert labeller.stats.stored == 2
    assert {b.winner for b in llm.feedback_store.battles()} == {"model_a"}  # type: ignore[union-attr]


def test_sampling_fraction_is_seeded_by_decision_id(fast: Any, tmp_path: Path) -> None:
    llm = ChatRouteLLM(
        **lc_children(), router=fast, feedback=tmp_path / "fb.db", judge=strong_wins, label_fraction=0.5, label_seed=3
    )
    ids = [llm.invoke(p).response_metadata["routellm"]["decision_id"] for p in PROMPTS * 4]
    labeller = llm.labelling.labeller  # type: ignore[union-attr]
    assert labeller.flush(timeout=30)
    expected = sum(labeller.should_label(i) for i in ids)
    assert 0 < expected < len(ids)
    assert labeller.stats.submitted == expected
    assert len(llm.feedback_store.battles()) == expected  # type: ignore[union-attr]


def test_a_failing_or_garbage_judge_never_reaches_the_caller(fast: Any, tmp_path: Path) -> None:
    def broken(prompt: str, a: str, b: str) -> str:
        raise RuntimeError("judge down")

    for judge, counter in ((broken, "judge_errors"), (lambda p, a, b: "no idea", "judge_errors")):
        llm = ChatRouteLLM(
            **lc_children(), router=fast, feedback=tmp_path / f"{counter}.db", judge=judge, label_fraction=1.0
        )
        assert llm.invoke(PROMPTS[0]).text.startswith("[")
        assert llm.labelling.labeller.flush(timeout=30)  # type: ignore[union-attr]
        assert getattr(llm.labelling.labeller.stats, counter) == 1  # type: ignore[union-attr]
        assert llm.feedback_store.battles() == []  # type: ignore[union-attr]


def test_runnable_labels_its_two_sides(fast: Any, tmp_path: Path) -> None:
    kids = lc_children()
    rag = RouteLLMRunnable(
        strong=kids["strong"],
        weak=kids["weak"],
        router=fast,
        threshold=ALWAYS_WEAK,
        feedback=tmp_path / "fb.db",
        judge=strong_wins,
        label_fraction=1.0,
    )
    assert rag.invoke(PROMPTS[3]).text.startswith("[weak]")
    assert rag.labelling.labeller.flush(timeout=30)  # type: ignore[union-attr]
    assert [b.winner for b in rag.feedback_store.battles()] == ["model_a"]  # type: ignore[union-attr]


def test_options_are_checked(fast: Any, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="need feedback="):
        ChatRouteLLM(**lc_children(), router=fast, judge=strong_wins, label_fraction=0.1)
    with pytest.raises(InvalidInputError, match="needs a judge"):
        ChatRouteLLM(**lc_children(), router=fast, feedback=tmp_path / "a.db", label_fraction=0.1)
    with pytest.raises(InvalidInputError, match="judge must be"):
        ChatRouteLLM(**lc_children(), router=fast, feedback=tmp_path / "b.db", judge=42, label_fraction=0.1)
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("my notes, not a database\n" * 10)
    with pytest.raises(FeedbackStoreError, match=re.escape(str(not_sqlite))):
        RouteLLM(strong=MockLLM(), weak=MockLLM(), router=fast, feedback=not_sqlite, strong_name="a", weak_name="b")
    assert not_sqlite.read_text() == "my notes, not a database\n" * 10
    # Two sides with one name: labels could not tell the models apart. Refused when built, never after an answer.
    with pytest.raises(InvalidInputError, match="both sides are named 'MockLLM'"):
        RouteLLM(strong=MockLLM(), weak=MockLLM(), router=fast, feedback=tmp_path / "c.db")
    same = {"strong": ToolEchoChatModel(model="same"), "weak": ToolEchoChatModel(model="same")}
    with pytest.raises(InvalidInputError, match="set strong_name= and weak_name="):
        ChatRouteLLM(**same, router=fast, feedback=tmp_path / "d.db")
    named = ChatRouteLLM(**same, router=fast, feedback=tmp_path / "d.db", strong_name="big", weak_name="small")
    assert named.invoke(PROMPTS[0]).text


class JudgeLLM(MockLLM):
    """A LlamaIndex LLM used as the judge (through ``achat``): picks the answer written by the strong side."""

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        first = prompt.split("[The Start of Assistant A's Answer]")[1].split("[The End of Assistant A's Answer]")[0]
        return CompletionResponse(text="[[A]]" if "[strong]" in first else "[[B]]")


async def test_llamaindex_loop_with_a_judge_llm(fast: Any, tmp_path: Path) -> None:
    policy = RoutingPolicy(fast, threshold=ALWAYS_WEAK)
    llm = RouteLLM(
        strong=LabelledLLM("strong"),
        weak=LabelledLLM("weak"),
        router=policy,
        feedback=tmp_path / "fb.db",
        judge=JudgeLLM(),
        label_fraction=1.0,
    )
    sync = llm.complete(PROMPTS[0])
    asyn = await llm.acomplete(PROMPTS[1])
    streamed = "".join(c.delta or "" for c in llm.stream_complete(PROMPTS[2]))
    assert sync.text.startswith("[weak]") and asyn.text.startswith("[weak]") and streamed.startswith("[weak]")
    labeller = llm.labelling.labeller  # type: ignore[union-attr]
    assert await labeller.aflush(timeout=30)
    assert labeller.stats.stored == 3 and labeller.stats.unparseable == 0
    battles = llm.feedback_store.battles()  # type: ignore[union-attr]
    assert {(b.model_a, b.model_b, b.winner) for b in battles} == {("strong-model", "weak-model", "model_a")}
    record = sync.additional_kwargs["routellm"]
    assert llm.feedback_store.add_verdict(record["decision_id"], "good") is not None  # type: ignore[union-attr]


def test_middleware_records_every_step_and_labels_the_text_answer(fast: Any, tmp_path: Path) -> None:
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool

    from langchain_routellm import RouteLLMMiddleware

    @tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return f"It is sunny in {city}."

    kids = lc_children()
    middleware = RouteLLMMiddleware(
        **kids, router=fast, threshold=ALWAYS_WEAK, feedback=tmp_path / "fb.db", judge=strong_wins, label_fraction=1.0
    )
    agent = create_agent(kids["weak"], tools=[get_weather], middleware=[middleware])
    out = agent.invoke({"messages": [HumanMessage("What is the weather in Paris? Use the get_weather tool.")]})
    records = [m.response_metadata["routellm"] for m in out["messages"] if m.type == "ai"]
    assert len(records) == 2 and records[1]["continued"], "the tool step continues the first decision"
    assert records[0]["decision_id"] == records[1]["decision_id"]
    labeller = middleware.labelling.labeller  # type: ignore[union-attr]
    assert labeller.flush(timeout=30)
    # One request, one decision: the tool-call step has no text to judge, the continued step is not relabelled.
    assert (labeller.stats.skipped_empty, labeller.stats.submitted) == (1, 0)
    agent.invoke({"messages": [HumanMessage("Say hello to me.")]})
    assert labeller.flush(timeout=30)
    assert labeller.stats.stored == 1
    assert middleware.labelling.store.stats().as_dict()["decisions"] == 2  # type: ignore[union-attr]


async def test_labelling_calls_never_appear_in_the_callers_traces(fast: Any, tmp_path: Path) -> None:
    from langchain_core.callbacks import AsyncCallbackHandler

    class ChatRuns(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.models: list[str] = []

        async def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            self.models.append(kwargs.get("metadata", {}).get("ls_model_name", "?"))

    kids = lc_children()
    llm = ChatRouteLLM(
        **kids, router=fast, threshold=ALWAYS_WEAK, feedback=tmp_path / "fb.db", judge=strong_wins, label_fraction=1.0
    )
    runs = ChatRuns()
    await llm.ainvoke(PROMPTS[0], {"callbacks": [runs]})
    assert await llm.labelling.labeller.aflush(timeout=30)  # type: ignore[union-attr]
    assert kids["strong"].calls, "the other model was asked, for the label"
    assert runs.models == ["fake-weak-1"], "only the routed call is in the caller's trace"
