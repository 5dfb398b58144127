"""Real use: local embeddings in a VectorStoreIndex, the router as a query engine's LLM and as an agent's LLM.

Everything runs offline: the shipped MiniLM through ``RouteLLMEmbedding``, the shipped default router, and
LlamaIndex mock LLMs as the strong / weak children.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from li_fakes import LabelledLLM, Recorder
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.span_handlers import SimpleSpanHandler
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding, RoutingDecisionEvent, rag_query
from routellm_core import InvalidInputError, default_embedder, load_router

ROUTER = "default"  # the shipped router
ALWAYS_STRONG, ALWAYS_WEAK = 0.0, 1.0

DOCUMENTS = {
    "eiffel": "The Eiffel Tower in Paris was completed in 1889 and is 330 metres tall.",
    "photosynthesis": "Photosynthesis lets plants turn sunlight, water and carbon dioxide into glucose and oxygen.",
    "gil": "Python's Global Interpreter Lock lets only one thread run Python bytecode at a time.",
    "haiku": "A haiku is a Japanese poem of three lines with five, seven and five syllables.",
}

pytestmark = pytest.mark.usefixtures("offline_settings")


def multiply(a: int = 6, b: int = 7) -> int:
    """Multiply two integers."""
    return a * b


# ---- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def router_model() -> Any:
    return load_router(ROUTER)


@pytest.fixture(scope="module")
def index(embed_model: RouteLLMEmbedding) -> VectorStoreIndex:
    docs = [Document(text=text, doc_id=name) for name, text in DOCUMENTS.items()]
    return VectorStoreIndex.from_documents(docs, embed_model=embed_model)


# ---- the embedding adapter --------------------------------------------------------------------------------
def test_embedding_is_the_shared_minilm(embed_model: RouteLLMEmbedding) -> None:
    assert embed_model.embedder is default_embedder()
    assert embed_model.model_name == default_embedder().name
    assert RouteLLMEmbedding.class_name() == "RouteLLMEmbedding"
    vector = embed_model.get_text_embedding("The Eiffel Tower is in Paris.")
    assert len(vector) == 384 and all(isinstance(v, float) for v in vector)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    direct = default_embedder().embed(["The Eiffel Tower is in Paris."])[0]
    np.testing.assert_allclose(vector, direct, atol=1e-6)


async def test_embedding_forms_agree(embed_model: RouteLLMEmbedding) -> None:
    texts = ["How tall is the Eiffel Tower?", "Plants release oxygen.", "Threads and the GIL."]
    batch = embed_model.get_text_embedding_batch(texts)
    singles = [embed_model.get_text_embedding(t) for t in texts]
    query = embed_model.get_query_embedding(texts[0])
    abatch = await embed_model.aget_text_embedding_batch(texts)
    aquery = await embed_model.aget_query_embedding(texts[0])
    atext = await embed_model.aget_text_embedding(texts[1])
    np.testing.assert_allclose(batch, singles, atol=1e-5)
    np.testing.assert_allclose(batch, abatch, atol=1e-5)
    np.testing.assert_allclose(query, batch[0], atol=1e-5)
    np.testing.assert_allclose(aquery, batch[0], atol=1e-5)
    np.testing.assert_allclose(atext, batch[1], atol=1e-5)
    assert embed_model.get_text_embedding_batch([]) == []


def test_embedding_rejects_blank_text(embed_model: RouteLLMEmbedding) -> None:
    with pytest.raises(InvalidInputError):
        embed_model.get_query_embedding("   ")


def test_retrieval_is_semantic(index: VectorStoreIndex) -> None:
    retriever = index.as_retriever(similarity_top_k=1)
    expected = {
        "How tall is the Paris landmark built in 1889?": "eiffel",
        "Which gas do plants give off?": "photosynthesis",
        "Why can't my Python threads run bytecode in parallel?": "gil",
        "How many syllables are in each line of the Japanese poem?": "haiku",
    }
    for query, doc_id in expected.items():
        (hit,) = retriever.retrieve(query)
        assert hit.node.ref_doc_id == doc_id, query


# ---- the router in a query engine -------------------------------------------------------------------------
QUERY = "How tall is the Eiffel Tower?"


@pytest.mark.parametrize(("threshold", "choice"), [(ALWAYS_STRONG, "strong"), (ALWAYS_WEAK, "weak")])
async def test_query_engine_routes_through_the_router(
    index: VectorStoreIndex, router_model: Any, events: Recorder, threshold: float, choice: str
) -> None:
    strong, weak = LabelledLLM("strong"), LabelledLLM("weak")
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=threshold, route_on="rag_query")
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)

    response = engine.query(QUERY)
    assert str(response) == f"[{choice}] {QUERY}"
    assert "330 metres" in (strong.prompts + weak.prompts)[-1], "the retrieved context reached the chosen model"
    assert response.source_nodes[0].node.ref_doc_id == "eiffel"

    aresponse = await index.as_query_engine(llm=llm, similarity_top_k=1).aquery(QUERY)
    assert str(aresponse) == f"[{choice}] {QUERY}"

    streaming = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=True).query(QUERY)
    assert "".join(streaming.response_gen) == f"[{choice}] {QUERY}"

    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 3 and {d.choice for d in decisions} == {choice}
    assert {d.model for d in decisions} == {f"{choice}-model"}
    expected = llm.decide(QUERY)  # rag_query routes on the question, not on the retrieved context
    assert all(d.win_rate == pytest.approx(expected.win_rate) for d in decisions)
    chosen, other = (strong, weak) if choice == "strong" else (weak, strong)
    assert len(chosen.prompts) == 3 and not other.prompts


def test_query_engine_default_routing_text_is_the_whole_prompt(index: VectorStoreIndex, router_model: Any) -> None:
    strong = LabelledLLM("strong")
    llm = RouteLLM(strong=strong, weak=LabelledLLM("weak"), router=router_model, threshold=ALWAYS_STRONG)
    index.as_query_engine(llm=llm, similarity_top_k=1).query(QUERY)
    prompt = strong.prompts[-1]
    assert rag_query(prompt) == QUERY
    assert "Context information is below" in prompt


def test_query_engine_spans_nest(index: VectorStoreIndex, router_model: Any) -> None:
    handler = SimpleSpanHandler(open_spans={}, completed_spans=[], dropped_spans=[], current_span_ids={})
    root = get_dispatcher()
    root.add_span_handler(handler)
    try:
        llm = RouteLLM(strong=LabelledLLM("strong"), weak=LabelledLLM("weak"), router=router_model)
        index.as_query_engine(llm=llm, similarity_top_k=1).query(QUERY)
    finally:
        root.span_handlers.remove(handler)
    spans = {s.id_: s for s in handler.completed_spans}
    (router_span,) = [s for s in spans.values() if s.id_.startswith("RouteLLM.chat-")]
    (child_span,) = [s for s in spans.values() if s.id_.startswith("LabelledLLM.chat-")]
    assert child_span.parent_id == router_span.id_
    # ...and the router's span sits inside the query engine's own spans
    ancestors = []
    parent = router_span.parent_id
    while parent in spans:
        ancestors.append(parent.split("-")[0])
        parent = spans[parent].parent_id
    assert any(name.endswith(".query") for name in ancestors), ancestors


# ---- the router as an agent's LLM -------------------------------------------------------------------------
@pytest.mark.parametrize("streaming", [True, False])
@pytest.mark.parametrize(("threshold", "choice"), [(ALWAYS_STRONG, "strong"), (ALWAYS_WEAK, "weak")])
async def test_function_agent_routes_every_step(
    router_model: Any, events: Recorder, streaming: bool, threshold: float, choice: str
) -> None:
    strong = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    weak = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=threshold)
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(multiply)], llm=llm, system_prompt="Use tools.", streaming=streaming
    )
    request = "What is 6 times 7?"
    handler = agent.run(request)
    tool_results = [e async for e in handler.stream_events() if isinstance(e, ToolCallResult)]
    result = await handler

    assert [r.tool_output.content for r in tool_results] == ["42"]
    assert "Tool calls complete." in str(result)
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 2, "two agent steps (tool call, then answer), each routed"
    assert {d.choice for d in decisions} == {choice}
    # the second step ends with a tool result, yet it is routed on the user's request
    expected = llm.decide(request).win_rate
    assert all(d.win_rate == pytest.approx(expected) for d in decisions)
    chosen, other = (strong, weak) if choice == "strong" else (weak, strong)
    assert chosen.last_called_chat_function.count("astream_chat" if streaming else "achat") == 2
    assert other.last_called_chat_function == []


async def test_agent_workflow_with_the_router(router_model: Any, events: Recorder) -> None:
    llm = RouteLLM(
        strong=MockFunctionCallingLLMWithChatMemoryOfLastCall(),
        weak=MockFunctionCallingLLMWithChatMemoryOfLastCall(),
        router=router_model,
    )
    agent = FunctionAgent(name="calculator", description="Multiplies.", tools=[multiply], llm=llm)
    workflow = AgentWorkflow(agents=[agent], root_agent="calculator")
    result = await workflow.run(user_msg="What is 6 times 7?")
    assert "Tool calls complete." in str(result)
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 2
    assert decisions[0].choice == llm.decide("What is 6 times 7?").choice


class ReActScriptLLM(LabelledLLM):
    """A ReAct-format child: asks for the multiply tool, then answers once it sees the observation."""

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self.prompts.append(prompt)
        if "Observation: 42" in prompt:
            return CompletionResponse(
                text=f"Thought: I can answer without using any more tools.\nAnswer: 42 ({self.label})"
            )
        return CompletionResponse(
            text="Thought: I need to use a tool to help me answer the question.\n"
            'Action: multiply\nAction Input: {"a": 6, "b": 7}'
        )

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self.complete(prompt).text
        self.prompts.pop()
        self.prompts.append(prompt)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=text, delta=text)

        return gen()


async def test_react_agent_keeps_one_model_per_request(router_model: Any, events: Recorder) -> None:
    """ReAct sends each tool result back as a *user* "Observation: ..." message; it must not be routed afresh."""
    from llama_index.core.agent.workflow import ReActAgent

    request = "Prove that the product of six and seven is forty-two, using the multiply tool."
    observation = "Observation: 42"
    request_rate, observation_rate = router_model.predict_win_rate([request, observation])
    # A threshold between the two win rates: routing the observation afresh would switch models.
    threshold = float(request_rate + observation_rate) / 2
    choice = "strong" if request_rate >= threshold else "weak"
    strong, weak = ReActScriptLLM("strong"), ReActScriptLLM("weak")
    llm = RouteLLM(strong=strong, weak=weak, router=router_model, threshold=threshold)
    agent = ReActAgent(tools=[FunctionTool.from_defaults(multiply)], llm=llm)
    result = await agent.run(request)

    assert f"42 ({choice})" in str(result)
    decisions = events.of(RoutingDecisionEvent)
    assert len(decisions) == 2, "two ReAct steps (action, then answer)"
    assert {d.choice for d in decisions} == {choice}
    assert all(d.win_rate == pytest.approx(request_rate) for d in decisions)
    chosen, other = (strong, weak) if choice == "strong" else (weak, strong)
    assert len(chosen.prompts) == 2 and other.prompts == []
