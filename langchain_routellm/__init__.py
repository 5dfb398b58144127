"""LangChain integration of the learned LLM router: route each call between a strong and a weak model.

- :class:`ChatRouteLLM`: a chat model that delegates each call to the chosen child chat model.
- :class:`RouteLLMRunnable`: routes any input between two arbitrary Runnables.
- :class:`RouteLLMMiddleware`: per-step routing inside ``langchain.agents.create_agent`` agents.
"""

from typing import TYPE_CHECKING

from routellm_core._optional import requires_extra

with requires_extra("langchain", "langchain_routellm"):
    import langchain_core  # noqa: F401

from langchain_routellm._messages import routing_text
from langchain_routellm.chat_models import ChatRouteLLM
from langchain_routellm.embeddings import LangChainEmbedder
from langchain_routellm.runnables import RouteLLMRunnable
from routellm_core.decisions import METADATA_KEY, RoutingDecision
from routellm_core.errors import InvalidInputError, ModelCallError
from routellm_core.escalation import Escalation
from routellm_core.routing.objective import Objective
from routellm_core.routing.policy import RoutingPolicy

if TYPE_CHECKING:
    from langchain_routellm.middleware import RouteLLMMiddleware

__all__ = [
    "METADATA_KEY",
    "ChatRouteLLM",
    "Escalation",
    "InvalidInputError",
    "LangChainEmbedder",
    "ModelCallError",
    "Objective",
    "RouteLLMMiddleware",
    "RouteLLMRunnable",
    "RoutingDecision",
    "RoutingPolicy",
    "routing_text",
]


def __getattr__(name: str) -> object:
    # The middleware pulls in langchain.agents / langgraph (~0.7 s): import it only when asked for.
    if name == "RouteLLMMiddleware":
        from langchain_routellm.middleware import RouteLLMMiddleware

        return RouteLLMMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
