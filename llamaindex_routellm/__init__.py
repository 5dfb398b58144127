"""LlamaIndex integration of the learned LLM router.

Example:
    >>> from llamaindex_routellm import RouteLLM, RouteLLMEmbedding
    >>> llm = RouteLLM(strong=strong_llm, weak=weak_llm, router="default", threshold=0.5)
    >>> index = VectorStoreIndex.from_documents(docs, embed_model=RouteLLMEmbedding())
    >>> index.as_query_engine(llm=llm).query("...")
"""

from routellm_core._optional import requires_extra

with requires_extra("llamaindex", "llamaindex_routellm"):
    import llama_index.core  # noqa: F401

from llamaindex_routellm._messages import routing_text
from llamaindex_routellm.base import RouteLLM
from llamaindex_routellm.embeddings import LlamaIndexEmbedder, RouteLLMEmbedding
from llamaindex_routellm.events import RoutingDecisionEvent, RoutingFallbackEvent
from routellm_core.errors import StreamInterruptedError
from routellm_core.escalation import Escalation
from routellm_core.routing.objective import Objective
from routellm_core.routing.text import RouteOn, rag_query

__all__ = [
    "Escalation",
    "LlamaIndexEmbedder",
    "Objective",
    "RouteLLM",
    "RouteLLMEmbedding",
    "RouteOn",
    "RoutingDecisionEvent",
    "RoutingFallbackEvent",
    "StreamInterruptedError",
    "rag_query",
    "routing_text",
]
