"""The router options ``ChatRouteLLM`` and ``RouteLLMRunnable`` share, and what they build from them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_serializer
from typing_extensions import Self

from langchain_routellm._routing import as_judge, dispatcher
from langchain_routellm._utils import RouteOn, ToolStep, model_name, reraise_routellm_error
from routellm_core.dispatch import Dispatcher
from routellm_core.embedders import Embedder
from routellm_core.feedback import FeedbackStore
from routellm_core.labelling import ROUTING_FIELDS, TrafficLabelling, traffic_labelling
from routellm_core.policy import RoutingPolicy, build_policy, router_label
from routellm_core.routers.base import Side, WinRateModel


class RouterOptions(BaseModel):
    """Router, threshold, routing text, fallback, names and feedback options; the policy, dispatcher and
    labelling built from them. Subclasses declare ``strong`` and ``weak`` and call :meth:`_build_routing`."""

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    #: Name of the integration in error messages.
    _owner: ClassVar[str] = "RouteLLM"

    router: str | Path | WinRateModel | RoutingPolicy = "default"
    """Router: ``"default"`` (shipped), a checkpoint path, a registry name, a router, or a RoutingPolicy."""

    @field_serializer("router")
    def _serialize_router(self, router: Any) -> str:
        return router_label(router)

    threshold: float | None = None
    """Send to strong when P(strong wins) >= threshold; when neither this nor ``strong_fraction`` is set, the
    router's calibrated threshold for half of its calibration traffic (0.5 without calibration)."""

    strong_fraction: float | None = None
    """Instead of a threshold: the target fraction of strong calls, resolved through the router's calibration."""

    embedder: Embedder | None = Field(default=None, exclude=True)
    """Embedder to load the router with (must match the checkpoint's); the router's own when ``None``."""

    route_on: RouteOn = "last_user"
    """Routing text of messages: ``"last_user"`` (latest human message's text; alias ``"last_human"``),
    ``"conversation"`` (human and AI turns, role-prefixed) or ``"rag_query"`` (the query inside a RAG prompt)."""

    tool_step: ToolStep = "continue"
    """A call whose last message is a tool result: ``"continue"`` with the side that issued the tool call (read
    from its ``routellm`` metadata), or ``"route"`` it like any other call."""

    fallback: bool = False
    """When the chosen side fails or answers empty before any output, call the other side once."""

    feedback: Any = Field(default=None, exclude=True)
    """A ``FeedbackStore`` or a path to one: every routed call's decision is recorded there, so the app can attach
    a verdict later by the response's ``decision_id`` (``llm.feedback_store.add_verdict(id, "bad")``)."""

    judge: Any = Field(default=None, exclude=True)
    """Judge for ``label_fraction``: a chat model (asked MT-Bench's pairwise question, twice with the answers
    swapped), a ``PairwiseJudge``, or a callable ``(prompt, answer_a, answer_b) -> "model_a" | "model_b" | "tie"``."""

    label_fraction: float = 0.0
    """Share of calls (seeded by decision id) on which the other side is also called, in the background, and the
    pair judged into ``feedback``; the caller's answer, latency and errors never change."""

    label_seed: int = 0
    """Seed of the ``label_fraction`` sampling."""

    strong_name: str | None = None
    """Name reported for the strong side in metadata and errors; derived from it when ``None``."""

    weak_name: str | None = None
    """Name reported for the weak side in metadata and errors; derived from it when ``None``."""

    _policy: RoutingPolicy = PrivateAttr()
    _names: dict[Side, str] = PrivateAttr()
    _dispatcher: Dispatcher = PrivateAttr()
    _labelling: TrafficLabelling | None = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        """Validate the fields; the router's own errors (unknown router, bad threshold...) keep their type."""
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise

    def _build_routing(self) -> None:
        """Build the policy, the names, the dispatcher and the labelling (``strong`` / ``weak`` already built)."""
        self._policy = build_policy(self.router, self.threshold, self.strong_fraction, self.embedder)
        self._names = {
            "strong": self.strong_name or model_name(self._child("strong")),
            "weak": self.weak_name or model_name(self._child("weak")),
        }
        self._dispatcher = dispatcher(self._names, fallback=self.fallback, owner=self._owner)
        self._labelling = traffic_labelling(
            self.feedback, as_judge(self.judge), self.label_fraction, self.label_seed, names=self._names
        )

    def _child(self, side: Side) -> Any:
        return getattr(self, side)

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (router + threshold in force), shared by copies made by ``bind_tools``."""
        return self._policy

    @property
    def model_names(self) -> dict[Side, str]:
        """Names of the two sides, as reported in metadata."""
        return dict(self._names)

    @property
    def feedback_store(self) -> FeedbackStore | None:
        """The feedback store (``feedback=``), to attach verdicts by decision id; ``None`` without one."""
        return self._labelling.store if self._labelling is not None else None

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling of these calls (its labeller's ``stats``, ``flush()``...), if configured."""
        return self._labelling

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; changed routing fields rebuild the policy, the dispatcher and the labelling (``bind_tools``
        copies, which change only the sides, keep sharing them)."""
        copy = super().model_copy(update=update, deep=deep)
        if set(update or ()) & ROUTING_FIELDS:
            copy._build_routing()
        return copy
