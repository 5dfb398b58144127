"""Fixtures of the server tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from routellm_core.server import ServerThread
from routellm_core.server.mock_upstream import create_mock_upstream


@pytest.fixture(scope="module")
def mock() -> Iterator[ServerThread]:
    """The mock upstream (an OpenAI-compatible echo) on a free 127.0.0.1 port, one per test module."""
    with ServerThread(create_mock_upstream(keep=256)) as server:
        yield server
