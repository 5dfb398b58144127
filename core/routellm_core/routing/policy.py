"""A routing policy: a router plus the threshold in force, shared by the LangChain and LlamaIndex integrations."""

from __future__ import annotations

import os
from collections.abc import Sequence

from routellm_core.decisions import RoutingDecision, check_threshold
from routellm_core.embedding.embedders import Embedder, check_texts
from routellm_core.errors import InvalidThresholdError
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.registry import load_router
from routellm_core.routing.batching import MicroBatcher

RouterSpec = str | os.PathLike[str] | WinRateModel

#: The strong-call share a router routes at when given neither a threshold nor a strong fraction.
DEFAULT_STRONG_FRACTION = 0.5


def router_label(router: RouterSpec | RoutingPolicy) -> str:
    """A JSON-friendly label for a router spec: the registry name of an instance or policy, else the name/path."""
    if isinstance(router, RoutingPolicy):
        return router.router_name
    if isinstance(router, WinRateModel):
        return router.name
    return os.fspath(router)


class RoutingPolicy:
    """Turns routing texts into decisions; concurrent calls are micro-batched into one scoring batch.

    Args:
        router: Pretrained name (``"default"``), checkpoint path, registry name, or a router instance.
        threshold: Send to strong when P(strong wins) >= threshold. When neither this nor ``strong_fraction`` is
            given: the router's calibrated threshold for half of its calibration traffic (``threshold_for(0.5)``),
            so a router whose scores all sit above 0.5 still routes; 0.5 for a router without calibration.
        strong_fraction: Instead of a threshold, the target fraction of strong calls, resolved through the
            router's shipped calibration.
        embedder: Embedder to load the router with (must match the checkpoint's).
        max_batch_size: Largest micro-batch.

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
    ) -> None:
        if threshold is not None and strong_fraction is not None:
            raise InvalidThresholdError("give either threshold or strong_fraction, not both")
        self.router = router if isinstance(router, WinRateModel) else load_router(router, embedder=embedder)
        if strong_fraction is not None:
            self.strong_fraction: float | None = check_threshold(strong_fraction, "strong_fraction")
            self.threshold = self.router.threshold_for(self.strong_fraction)
        else:
            self.strong_fraction = None
            self.threshold = check_threshold(self._default_threshold() if threshold is None else threshold)
        self._batcher: MicroBatcher[str, RoutingDecision] = MicroBatcher(
            self._decide_many, max_batch_size=max_batch_size
        )

    def _default_threshold(self) -> float:
        if self.router.calibrated_thresholds:
            return self.router.threshold_for(DEFAULT_STRONG_FRACTION)
        return 0.5

    @property
    def router_name(self) -> str:
        """Registry name of the router."""
        return self.router.name

    def _decide_many(self, texts: list[str]) -> list[RoutingDecision]:
        return self.router.decide(texts, self.threshold)

    def decide(self, text: str) -> RoutingDecision:
        """Decision for one routing text (batched with concurrent callers in other threads)."""
        check_texts([text])
        return self._batcher.submit(text)

    async def adecide(self, text: str) -> RoutingDecision:
        """Async decision for one routing text, batched with the event loop's other pending calls."""
        check_texts([text])
        return await self._batcher.asubmit(text)

    def decide_batch(self, texts: Sequence[str]) -> list[RoutingDecision]:
        """Decisions for a batch of routing texts in one scoring call."""
        return self.router.decide(texts, self.threshold)

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
