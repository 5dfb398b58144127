"""Threshold calibration: pick the threshold that sends a target share of traffic to the strong model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from routellm_core.decisions import check_threshold
from routellm_core.errors import InvalidThresholdError
from routellm_core.evaluation.scoring import WinRateScorer

#: The strong-call fractions calibrated for shipped routers.
DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def threshold_for_fraction(scores: np.ndarray, strong_fraction: float) -> float:
    """Threshold at which about ``strong_fraction`` of ``scores`` are >= it (strong calls).

    Returns the score of the ``ceil(f * n)``-th highest prompt, so exactly that many route strong when scores
    are distinct; 1.0 for a fraction of 0 is the cut above every possible score except 1.0 itself.
    """
    frac = check_threshold(strong_fraction, "strong_fraction")
    ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if ordered.size == 0:
        raise ValueError("no scores to calibrate on")
    k = int(np.ceil(frac * ordered.size))
    if k == 0:
        return float(np.nextafter(ordered[0], np.inf)) if ordered[0] < 1.0 else 1.0
    return float(ordered[k - 1])


def calibrate_threshold(router: WinRateScorer, prompts: Sequence[str], strong_fraction: float) -> float:
    """Threshold that routes about ``strong_fraction`` of ``prompts`` to the strong model.

    Args:
        router: A fitted router.
        prompts: Representative traffic (your own prompts are best).
        strong_fraction: Target share of strong calls in [0, 1].
    """
    return threshold_for_fraction(router.predict_win_rate(prompts), strong_fraction)


def calibrate_thresholds(
    router: WinRateScorer,
    prompts: Sequence[str],
    fractions: Iterable[float] = DEFAULT_FRACTIONS,
    *,
    merge: bool = True,
) -> dict[str, float]:
    """Thresholds for several strong-call fractions on ``prompts``, keyed like ``"0.3"``; stored on the router.

    Args:
        router: A fitted router.
        prompts: Representative traffic.
        fractions: Strong-call fractions in [0, 1].
        merge: Keep every fraction already in the router's table, recalibrated on the same ``prompts``, so a
            short list (``0.1, 0.2, 0.3``) never shrinks a nine-point table and every point describes the same
            traffic. ``False`` replaces the table with ``fractions`` only.

    Returns:
        The thresholds of ``fractions`` (the router's table may hold more points, see ``merge``).

    Raises:
        InvalidThresholdError: A fraction outside [0, 1].
    """
    wanted = {_key(check_threshold(f, "strong_fraction")): float(f) for f in fractions}
    if not wanted:
        raise InvalidThresholdError("no strong-call fractions to calibrate")
    keep = {_key(float(k)): float(k) for k in router.calibrated_thresholds} if merge else {}
    scores = router.predict_win_rate(prompts)
    table = {k: threshold_for_fraction(scores, f) for k, f in sorted({**keep, **wanted}.items(), key=lambda x: x[1])}
    router.calibrated_thresholds = table
    return {k: table[k] for k in wanted}


def _key(fraction: float) -> str:
    return f"{fraction:g}"


def strong_call_fraction(router: WinRateScorer, prompts: Sequence[str], threshold: float) -> float:
    """Share of ``prompts`` the router sends to strong at ``threshold``."""
    thr = check_threshold(threshold)
    return float(np.mean(router.predict_win_rate(prompts) >= thr))
