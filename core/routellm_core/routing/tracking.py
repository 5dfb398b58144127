"""Hold a share on live traffic: a sliding-window distribution of recent values, started from a prior.

:class:`QuantileTracker` keeps the last ``window`` values it observed. While fewer have come, the prior (a sample of
the expected distribution, e.g. shipped quantiles) fills the rest of the window: its points together weigh
``window - n`` for ``n`` observations so far, so the first calls follow the prior and the live values take over
as the window fills. :meth:`QuantileTracker.cut` is the threshold with about a given share of that blended
distribution strictly below it: the escalation step escalates a share of its checked calls with it (confidence
below the cut), and a budget controller can hold a strong-call share the same way (win rates at or above the cut
of ``1 - share``).

Ties: a threshold alone reaches only the shares at which the distinct values split the window (a value is always
entirely below it or not), and with heavy ties (an agreement check's 0/1 confidences) those are few. So
:meth:`~QuantileTracker.split` also names the *tie* at the cut and the part of it to count below: a caller splits
that tie by a draw that is fixed per request (the escalation step hashes the decision id), so the share is reached
in expectation at any target, and one request always gets the same answer.

Thread-safe: one lock guards the window (a sync engine's threads and an event loop's calls share one tracker).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routellm_core.decisions import check_threshold
from routellm_core.errors import InvalidInputError

#: Values a tracker keeps by default (the escalation share's window).
DEFAULT_WINDOW = 200


@dataclass(frozen=True)
class Cut:
    """A share of a distribution: the values below ``threshold``, and ``tie_share`` of those equal to ``tie``."""

    threshold: float
    tie: float | None = None
    tie_share: float = 0.0

    def below(self, value: float, draw: float) -> bool:
        """Whether ``value`` is in the share, ``draw`` in [0, 1) splitting the tie (fixed per request)."""
        return value < self.threshold or (value == self.tie and draw < self.tie_share)


class QuantileTracker:
    """The recent values' distribution (the last ``window``), blended with a prior while the window fills.

    Args:
        prior: A sample of the expected distribution (e.g. quantiles at evenly spaced levels), at least one value,
            each in ``[low, high]``.
        window: How many recent values the distribution holds (at least 1).
        low: The smallest possible value.
        high: The largest possible value.

    Raises:
        InvalidInputError: An empty or non-finite prior, a value outside ``[low, high]``, a bad window or range.
    """

    def __init__(
        self, prior: Sequence[float], *, window: int = DEFAULT_WINDOW, low: float = 0.0, high: float = 1.0
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise InvalidInputError(f"window must be an int >= 1, got {window!r}")
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise InvalidInputError(f"the range must be finite with low < high, got [{low!r}, {high!r}]")
        self.low = float(low)
        self.high = float(high)
        self.window = window
        try:
            points = np.asarray(prior, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise InvalidInputError("the prior must be a sequence of numbers") from None
        if points.size == 0:
            raise InvalidInputError("the prior needs at least one value")
        for value in points:
            self._check(float(value), "prior value")
        self.prior = np.sort(points)
        self._recent: deque[float] = deque(maxlen=window)
        self._seen = 0
        self._lock = threading.Lock()

    def _check(self, value: float, what: str) -> float:
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise InvalidInputError(f"{what} must be a number in [{self.low}, {self.high}], got {value!r}")
        return value

    # ---- state ---------------------------------------------------------------------------------------------
    def observe(self, value: float) -> None:
        """Add one value (the oldest leaves a full window).

        Raises:
            InvalidInputError: ``value`` is not a number in ``[low, high]``.
        """
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
            raise InvalidInputError(f"a tracked value must be a number, got {type(value).__name__}")
        value = self._check(float(value), "a tracked value")
        with self._lock:
            self._recent.append(value)
            self._seen += 1

    @property
    def seen(self) -> int:
        """Values observed since the start."""
        with self._lock:
            return self._seen

    @property
    def prior_weight(self) -> float:
        """The share of the blended distribution the prior still holds (1 before any value, 0 once full)."""
        with self._lock:
            return 1.0 - len(self._recent) / self.window

    def _distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct values (ascending) and their weights: each observed value 1, the prior ``window - n``."""
        with self._lock:
            recent = np.fromiter(self._recent, dtype=np.float64, count=len(self._recent))
        left = self.window - recent.size
        values = np.concatenate([self.prior, recent]) if left > 0 else recent
        weights = (
            np.concatenate([np.full(self.prior.size, left / self.prior.size), np.ones(recent.size)])
            if left > 0
            else np.ones(recent.size)
        )
        distinct, where = np.unique(values, return_inverse=True)
        return distinct, np.bincount(where.reshape(-1), weights=weights, minlength=distinct.size)

    # ---- reading -------------------------------------------------------------------------------------------
    def share_below(self, threshold: float) -> float:
        """The blended distribution's share strictly below ``threshold``."""
        values, weights = self._distribution()
        return float(weights[values < threshold].sum() / weights.sum())

    def split(self, share: float) -> Cut:
        """Where ``share`` of the blended distribution lies: the values strictly below :attr:`Cut.threshold`, and
        :attr:`Cut.tie_share` of the tie at :attr:`Cut.tie` (the smallest value at or above the threshold).

        ``share`` 0 gives ``low`` (nothing below), 1 a value just above ``high`` (everything below). Otherwise the
        threshold is halfway between the largest value wholly below and the tie (``low`` stands in at the start).

        Raises:
            InvalidThresholdError: ``share`` is not a number in [0, 1].
        """
        share = check_threshold(share, "share")
        if share <= 0.0:
            return Cut(self.low)
        if share >= 1.0:
            return Cut(float(np.nextafter(self.high, np.inf)))
        values, weights = self._distribution()
        total = weights.sum()
        below = np.concatenate([[0.0], np.cumsum(weights)]) / total  # below[k]: the share under values[k]
        k = min(int(np.searchsorted(below, share + 1e-12, side="right")) - 1, values.size - 1)
        tie_share = float(np.clip((share - below[k]) / (weights[k] / total), 0.0, 1.0))
        threshold = (self.low + float(values[0])) / 2.0 if k == 0 else (float(values[k - 1]) + float(values[k])) / 2
        return Cut(threshold, float(values[k]) if tie_share > 0 else None, tie_share)

    def cut(self, share: float) -> float:
        """The threshold of :meth:`split` (values strictly below it: at most ``share``)."""
        return self.split(share).threshold

    def __repr__(self) -> str:
        return f"QuantileTracker(window={self.window}, seen={self.seen}, prior={self.prior.size} points)"


__all__ = ["DEFAULT_WINDOW", "Cut", "QuantileTracker"]
