"""The random router: the baseline every cost-quality curve is compared to."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from routellm_core.data.records import Battle
from routellm_core.routers.base import WinRateModel


class RandomRouter(WinRateModel):
    """Uniform scores in [0, 1], a deterministic hash of (seed, text): same text, same decision.

    Args:
        seed: Changes every score; average several seeds for a random-router curve.
    """

    name = "random"
    uses_embedder = False
    config_keys = ("seed",)

    def __init__(self, seed: int = 0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.seed = seed

    def fit(self, battles: Sequence[Battle]) -> RandomRouter:
        """Nothing to learn; returns ``self``."""
        return self

    def _is_fitted(self) -> bool:
        return True

    def _predict(self, texts: list[str]) -> np.ndarray:
        out = np.empty(len(texts))
        for i, text in enumerate(texts):
            digest = hashlib.blake2b(f"{self.seed}\0{text}".encode("utf-8", "surrogatepass"), digest_size=8)
            out[i] = int.from_bytes(digest.digest(), "big") / 2**64
        return out
