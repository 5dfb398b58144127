"""Training helpers: a disk-cached embedder for training runs, and fit + calibrate in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from routellm_core.calibration import DEFAULT_FRACTIONS, calibrate_thresholds
from routellm_core.embedders import MINILM_NAME, Embedder, TransformerEmbedder, embedder_from_name
from routellm_core.embedding_cache import CachedEmbedder
from routellm_core.paths import cache_dir
from routellm_core.records import Battle
from routellm_core.registry import load_router
from routellm_core.routers.base import WinRateModel


def training_embedder(name: str = MINILM_NAME) -> Embedder:
    """The named embedder with a persistent SQLite cache, so repeated training runs embed each prompt once."""
    if name == MINILM_NAME:
        return CachedEmbedder(TransformerEmbedder(), cache_dir=cache_dir() / "embeddings")
    return embedder_from_name(name)


def train_router(
    router: str | WinRateModel,
    battles: Sequence[Battle],
    *,
    embedder: Embedder | None = None,
    calibration_prompts: Sequence[str] | None = None,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    **params: Any,
) -> WinRateModel:
    """Build (by registry name) or take a router, fit it on ``battles`` and optionally calibrate it.

    Args:
        router: Registry name (``"mf"``, ``"sw_ranking"``...) or an unfitted router instance.
        battles: Training battles.
        embedder: Embedder for routers that embed text; the disk-cached MiniLM when ``None``.
        calibration_prompts: If given, thresholds for ``fractions`` are computed on them and stored.
        fractions: Strong-call fractions to calibrate.
        **params: Constructor parameters when ``router`` is a name.
    """
    model = load_router(router, **params) if isinstance(router, str) else router
    if model.uses_embedder and model.embedder is None:
        model.embedder = embedder or training_embedder()
    model.fit(battles)
    if calibration_prompts:
        calibrate_thresholds(model, calibration_prompts, fractions)
    return model
