"""The routing options ``ChatRouteLLM`` and ``RouteLLMRunnable`` share, and the engine they build from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import PrivateAttr, ValidationError
from typing_extensions import Self

from langchain_routellm._models import model_name
from langchain_routellm._routing import build_engine, init_child
from routellm_core.decisions import Side
from routellm_core.errors import reraise_routellm_error
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.learning.labelling import TrafficLabelling
from routellm_core.routing.engine import ROUTING_FIELDS, RoutingEngine, RoutingOptions
from routellm_core.routing.policy import RoutingPolicy


class RouterOptions(RoutingOptions):
    """The core's routing options (:class:`~routellm_core.routing.engine.RoutingOptions`) and the routed-call engine
    built from them. Subclasses declare ``strong`` and ``weak`` and call :meth:`_build_routing`."""

    #: Name of the integration in error messages.
    _owner: ClassVar[str] = "RouteLLM"

    #: Keyword arguments that make the weak side sample again for the escalation check (``Escalation(second=None)``).
    _resample_kwargs: ClassVar[dict[str, Any]] = {}

    _engine: RoutingEngine = PrivateAttr()
    _second: Any = PrivateAttr(default=None)

    def __init__(self, **kwargs: Any) -> None:
        """Validate the fields; the router's own errors (unknown router, bad threshold...) keep their type."""
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise

    def _build_routing(self) -> None:
        """Build the engine (policy, dispatcher, labelling) once ``strong`` / ``weak`` are built."""
        names: dict[Side, str] = {
            "strong": self.strong_name or model_name(self._child("strong")),
            "weak": self.weak_name or model_name(self._child("weak")),
        }
        second = self.escalate.second if self.escalate is not None else None
        if second is not None and self._second is None:
            self._second = self._build_second(second)
        second_name = model_name(self._second) if self._second is not None else None
        self._engine = build_engine(self, names, owner=self._owner, second_name=second_name)

    def _build_second(self, spec: Any) -> Any:
        """The escalation check's second cheap model (``Escalation(second=...)``)."""
        return init_child(spec, {}, "escalate.second")

    def _second_child(self) -> tuple[Any, dict[str, Any]]:
        """The model giving the second cheap answer and the extra call keywords: ``Escalation.second``, else the
        weak side asked to sample again."""
        if self._second is not None:
            return self._second, {}
        return self._child("weak"), dict(self._resample_kwargs)

    def _child(self, side: Side) -> Any:
        return getattr(self, side)

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (router + threshold in force), shared by copies made by ``bind_tools``."""
        return self._engine.policy

    @property
    def model_names(self) -> dict[Side, str]:
        """Names of the two sides, as reported in metadata."""
        return dict(self._engine.names)

    @property
    def feedback_store(self) -> FeedbackStore | None:
        """The feedback store (``feedback=``), to attach verdicts by decision id; ``None`` without one."""
        return self._engine.feedback_store

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling of these calls (its labeller's ``stats``, ``flush()``...), if configured."""
        return self._engine.labelling

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; changed routing fields rebuild the engine (``bind_tools`` copies, which change only the sides,
        keep sharing it)."""
        copy = super().model_copy(update=update, deep=deep)
        if "escalate" in (update or {}):
            copy._second = None
        if set(update or ()) & ROUTING_FIELDS:
            copy._build_routing()
        return copy
