"""Shared fixtures: tests never touch the network, share one loaded embedder, and one policy for missing data.

Test helpers (``lc_fakes``, ``fitted_router``) are plain modules in ``tests/helpers``, imported by their bare name
(``from lc_fakes import ...``): pyproject.toml puts that folder on ``sys.path`` (``tests/`` is not a package), so
``pytest`` and ``python -m pytest`` both import one copy of them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# caches (the ONNX export, embeddings) stay in the checkout, not in the user's ~/.cache
os.environ.setdefault("ROUTELLM_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "routellm"))


@pytest.fixture(scope="session")
def embedder():
    """The shared, cached offline MiniLM embedder (loaded once per test session)."""
    from routellm_core import default_embedder

    return default_embedder()


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The shared benchmark data folder; every test that reads it asks for this fixture, directly or through
    another fixture.

    When the folder is missing the test is skipped, and the reason names the folder actually looked in
    (``$ROUTELLM_DATA_DIR`` when set, else the ``../shared/data`` candidates). Tests that need no data never ask
    for it, so they always run.
    """
    from routellm_core.data import DataNotFoundError, data_dir

    try:
        return data_dir()
    except DataNotFoundError as exc:
        pytest.skip(f"shared benchmark data not available: {exc}")


@pytest.fixture(scope="session")
def known_router() -> Any:
    """A router fitted in the tests on obvious battles (proofs -> strong, trivia -> weak), calibrated on
    ``fitted_router.TRAFFIC``: integration tests assert choices known in advance with it (see ``fitted_router``)."""
    from fitted_router import known_router

    return known_router()


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (``pgserver``, the ``dev`` extra) for the whole session; never skipped."""
    from postgres_server import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> Any:
    """The URL of a fresh, empty database on the session's PostgreSQL server (dropped after the test)."""
    from postgres_server import fresh_database

    with fresh_database(postgres_server) as url:
        yield url
