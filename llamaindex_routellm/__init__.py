"""LlamaIndex integration of the learned LLM router.

Example:
    >>> from llamaindex_routellm import RouteLLM, RouteLLMEmbedding
    >>> llm = RouteLLM(strong=strong_llm, weak=weak_llm, router="default", threshold=0.5)
    >>> index = VectorStoreIndex.from_documents(docs, embed_model=RouteLLMEmbedding())
    >>> index.as_query_engine(llm=llm).query("...")
"""

from llamaindex_routellm._utils import RouteOn, rag_query, routing_text
from llamaindex_routellm.base import RouteLLM, StreamInterruptedError
from llamaindex_routellm.embeddings import RouteLLMEmbedding
from llamaindex_routellm.events import RoutingDecisionEvent, RoutingFallbackEvent

__all__ = [
    "RouteLLM",
    "RouteLLMEmbedding",
    "RouteOn",
    "RoutingDecisionEvent",
    "RoutingFallbackEvent",
    "StreamInterruptedError",
    "rag_query",
    "routing_text",
]
