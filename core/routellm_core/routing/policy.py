"""A routing policy: a router plus the threshold in force, shared by the LangChain and LlamaIndex integrations."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

from routellm_core.decisions import RoutingDecision, check_threshold
from routellm_core.embedding.embedders import Embedder, check_texts
from routellm_core.errors import InvalidInputError, InvalidThresholdError
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.registry import load_router
from routellm_core.routing.batching import MicroBatcher

RouterSpec = str | os.PathLike[str] | WinRateModel

#: The strong-call share a router routes at when given neither a threshold nor a strong fraction.
DEFAULT_STRONG_FRACTION = 0.5


def router_label(router: RouterSpec | RoutingPolicy) -> str:
    """A JSON-friendly label for a router spec: a policy's :attr:`~RoutingPolicy.router_name`, an instance's
    registry name, else the pretrained name or checkpoint path as given."""
    if isinstance(router, RoutingPolicy):
        return router.router_name
    if isinstance(router, WinRateModel):
        return router.name
    return os.fspath(router)


def _checked_name(name: object) -> str:
    """A policy's name: a non-empty string.

    Raises:
        InvalidInputError: Anything else.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"a routing policy's name must be a non-empty string, got {name!r:.80}")
    return name


class RoutingPolicy:
    """Turns routing texts into decisions; concurrent calls are micro-batched into one scoring batch.

    The micro-batcher scores win rates only; each call applies its own threshold (the policy's, or the one it
    passes), so concurrent calls at different thresholds share one batch and each is decided exactly once.

    Args:
        router: Pretrained name (``"default"``), checkpoint path, registry name, or a router instance.
        threshold: Send to strong when P(strong wins) >= threshold. When neither this nor ``strong_fraction`` is
            given: the router's calibrated threshold for half of its calibration traffic (``threshold_for(0.5)``),
            so a router whose scores all sit above 0.5 still routes; 0.5 for a router without calibration.
        strong_fraction: Instead of a threshold, the target fraction of strong calls, resolved through the
            router's shipped calibration.
        embedder: Embedder to load the router with (must match the checkpoint's).
        max_batch_size: Largest micro-batch.
        name: What decisions call the router (:attr:`router_name`); default: the name or path it was loaded by
            (``"default"``, ``"./my-router"``), or an instance's registry name (``"difficulty"``).

    Raises:
        InvalidThresholdError: Both ``threshold`` and ``strong_fraction`` given, or either outside [0, 1].
    """

    def __init__(
        self,
        router: RouterSpec = "default",
        *,
        threshold: float | None = None,
        strong_fraction: float | None = None,
        embedder: Embedder | None = None,
        max_batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        if threshold is not None and strong_fraction is not None:
            raise InvalidThresholdError("give either threshold or strong_fraction, not both")
        self.router = router if isinstance(router, WinRateModel) else load_router(router, embedder=embedder)
        self._name = router_label(router) if name is None else _checked_name(name)
        if strong_fraction is not None:
            self.strong_fraction: float | None = check_threshold(strong_fraction, "strong_fraction")
            self.threshold = self.router.threshold_for(self.strong_fraction)
        else:
            self.strong_fraction = None
            self.threshold = check_threshold(self._default_threshold() if threshold is None else threshold)
        self._batcher: MicroBatcher[str, float] = MicroBatcher(self._win_rates, max_batch_size=max_batch_size)

    def _default_threshold(self) -> float:
        if self.router.calibrated_thresholds:
            return self.router.threshold_for(DEFAULT_STRONG_FRACTION)
        return 0.5

    @property
    def router_name(self) -> str:
        """What decisions call the router: the name or path it was loaded by (``"default"``, so the shipped
        router and your own trained one of the same type tell apart in records and metrics), or an instance's
        registry name (``"difficulty"``, ``"mf"``); see ``name``."""
        return self._name

    def renamed(self, name: str) -> RoutingPolicy:
        """This policy under another :attr:`router_name` (the same router, threshold and scoring batches).

        Raises:
            InvalidInputError: ``name`` is not a non-empty string.
        """
        twin = copy.copy(self)
        twin._name = _checked_name(name)
        return twin

    def _win_rates(self, texts: list[str]) -> list[float]:
        return [float(p) for p in self.router.predict_win_rate(texts)]

    def threshold_of(self, threshold: float | None = None) -> float:
        """The threshold a call decides at: ``threshold`` when given (checked), else the policy's.

        Raises:
            InvalidThresholdError: ``threshold`` is not a number in [0, 1].
        """
        return self.threshold if threshold is None else check_threshold(threshold)

    def decide(self, text: str, threshold: float | None = None) -> RoutingDecision:
        """Decision for one routing text at ``threshold`` (default: the policy's); the win rate is scored in a
        batch with concurrent callers in other threads.

        Raises:
            InvalidThresholdError: A bad ``threshold``.
            InvalidInputError: A blank or non-text routing text.
        """
        thr = self.threshold_of(threshold)
        check_texts([text])
        return RoutingDecision.of(self.router_name, self._batcher.submit(text), thr)

    async def adecide(self, text: str, threshold: float | None = None) -> RoutingDecision:
        """Async :meth:`decide`: the win rate is scored off the loop, batched with the loop's other pending calls."""
        thr = self.threshold_of(threshold)
        check_texts([text])
        return RoutingDecision.of(self.router_name, await self._batcher.asubmit(text), thr)

    def decide_batch(self, texts: Sequence[str], threshold: float | None = None) -> list[RoutingDecision]:
        """Decisions for a batch of routing texts in one scoring call, at ``threshold`` (default: the policy's)."""
        thr = self.threshold_of(threshold)
        return [RoutingDecision.of(self.router_name, p, thr) for p in self.router.predict_win_rate(texts)]

    def __repr__(self) -> str:
        return f"RoutingPolicy(router={self.router_name!r}, threshold={self.threshold})"


def build_policy(
    router: RouterSpec | RoutingPolicy,
    threshold: float | None = None,
    strong_fraction: float | None = None,
    embedder: Embedder | None = None,
) -> RoutingPolicy:
    """The policy for an integration's router arguments; a ready policy is used as is, so it stays shared.

    Raises:
        InvalidThresholdError: A ``RoutingPolicy`` together with ``threshold``, ``strong_fraction`` or ``embedder``
            (the policy carries its own), or a bad threshold / fraction.
    """
    if isinstance(router, RoutingPolicy):
        if threshold is not None or strong_fraction is not None or embedder is not None:
            raise InvalidThresholdError(
                "a RoutingPolicy carries its own threshold and embedder; "
                "do not also pass threshold, strong_fraction or embedder"
            )
        return router
    return RoutingPolicy(router, threshold=threshold, strong_fraction=strong_fraction, embedder=embedder)
