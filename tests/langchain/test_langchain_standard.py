"""The langchain-tests standard suites (pinned: langchain-tests==1.1.9) for ChatRouteLLM, run offline.

The router is real (the shipped default router); the two children are local
deterministic chat models that support the claimed features: tool calling with ``tool_choice``, structured
output, usage metadata and streaming.
"""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests
from lc_fakes import children, shared_router

from langchain_routellm import ChatRouteLLM


class _Params:
    @property
    def chat_model_class(self) -> type[ChatRouteLLM]:
        return ChatRouteLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {**children(), "router": shared_router(), "threshold": 0.5}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        # per-call kwargs go to the chosen child, so a ``model=`` override reaches it
        return "fake-override-2"


class TestChatRouteLLMUnit(_Params, ChatModelUnitTests):
    """Standard unit tests."""


class TestChatRouteLLMIntegration(_Params, ChatModelIntegrationTests):
    """Standard integration tests, offline: the children are local models."""
