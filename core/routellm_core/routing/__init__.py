"""The request path: routing text, the policy (router + threshold, micro-batched), dispatch with fallback, and the
routed-call engine every front end (LangChain, LlamaIndex, the server) holds."""

from routellm_core.routing.policy import RoutingPolicy, build_policy

__all__ = ["RoutingPolicy", "build_policy"]
