"""What evaluation needs of a router: scores for texts. A protocol, so evaluation sits below the routers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class WinRateScorer(Protocol):
    """Anything that scores routing texts with P(strong beats weak), e.g. every ``WinRateModel``."""

    name: str
    #: Strong-call fraction (as a key like ``"0.3"``) -> threshold; calibration writes it.
    calibrated_thresholds: dict[str, float]

    def predict_win_rate(self, texts: Sequence[str]) -> np.ndarray:
        """One win rate in [0, 1] per text."""
        ...
