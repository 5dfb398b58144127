"""Fixtures of the server tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from routellm_core.server import OpenAIUpstream, ServerThread, Upstream, create_app
from routellm_core.server.mock_upstream import create_mock_upstream

#: The mock's two upstream names the default ``serve`` routes between.
MOCK_STRONG, MOCK_WEAK = "mock-strong", "mock-weak"


@pytest.fixture(scope="module")
def mock() -> Iterator[ServerThread]:
    """The mock upstream (an OpenAI-compatible echo) on a free 127.0.0.1 port, one per test module."""
    with ServerThread(create_mock_upstream(keep=256)) as server:
        yield server


@pytest.fixture()
def serve(mock: ServerThread) -> Iterator[Callable[..., ServerThread]]:
    """``serve(strong=..., weak=..., **settings)``: a routing server with the shipped ``fast`` router, by default in
    front of the mock echo (a module may define its own ``serve``)."""
    servers: list[ServerThread] = []

    def start(strong: Upstream | None = None, weak: Upstream | None = None, **options: Any) -> ServerThread:
        options.setdefault("routers", ("fast",))
        options.setdefault("api_keys_env", None)
        app = create_app(
            strong=strong or OpenAIUpstream(MOCK_STRONG, base_url=f"{mock.url}/v1", api_key="k"),
            weak=weak or OpenAIUpstream(MOCK_WEAK, base_url=f"{mock.url}/v1", api_key="k"),
            **options,
        )
        server = ServerThread(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
