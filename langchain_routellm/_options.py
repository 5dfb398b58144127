"""The routing options ``ChatRouteLLM`` and ``RouteLLMRunnable`` share, and the engine they build from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import PrivateAttr, ValidationError, model_validator
from typing_extensions import Self

from langchain_routellm._models import model_name, runnable_name
from langchain_routellm._routing import (
    Engine,
    build_engine,
    check_members,
    init_child,
    ladder_members,
    priors_by_name,
    side_name,
)
from routellm_core.decisions import Route, Side
from routellm_core.errors import InvalidInputError, reraise_routellm_error, unknown_options_error
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.learning.labelling import TrafficLabelling
from routellm_core.routing.engine import ROUTING_FIELDS, RoutingOptions, accepted_keys, checked_routing_update
from routellm_core.routing.policy import RoutingPolicy


class RouterOptions(RoutingOptions):
    """The core's routing options (:class:`~routellm_core.routing.engine.RoutingOptions`) and the routed-call engine
    built from them. Subclasses declare ``strong`` / ``weak`` and ``models`` (with their own types), and call
    :meth:`_build_members` and :meth:`_build_routing`."""

    models: list[Any] | dict[str, Any] | None = None
    """N priced models instead of ``strong`` / ``weak``: a list (named by ``names``, else by each model's own name)
    or a dict ``{name: model}``; each call goes to the model ``objective`` picks (a :class:`LadderEngine`). Once
    built, a dict by name."""

    names: list[str] | None = None
    """With a list ``models=[...]``: the models' names, in the same order (prices, ``priors``, records)."""

    #: Name of the integration in error messages.
    _owner: ClassVar[str] = "RouteLLM"

    #: Where keyword arguments that are no option belong instead, added to the unknown-option error.
    _unknown_hint: ClassVar[str] = ""

    #: Keyword arguments that make the weak side sample again for the escalation check (``Escalation(second=None)``).
    _resample_kwargs: ClassVar[dict[str, Any]] = {}

    _engine: Engine = PrivateAttr()
    _second: Any = PrivateAttr(default=None)
    #: Among N models, each model's own resampled form for the escalation check, when it cannot take
    #: ``_resample_kwargs`` at call time (structured output built by ``ChatRouteLLM.with_structured_output``).
    _resampled: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, **kwargs: Any) -> None:
        """Validate the fields; the router's own errors (unknown router, bad threshold...) keep their type."""
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            reraise_routellm_error(exc)
            raise

    @model_validator(mode="before")
    @classmethod
    def _known_options(cls, data: Any) -> Any:
        """Refuse a keyword argument that is no field (a misspelt option would otherwise be ignored silently)."""
        if isinstance(data, Mapping):
            valid = accepted_keys(cls)
            unknown = [key for key in data if key not in valid]
            if unknown:
                raise unknown_options_error(cls._owner, unknown, valid, cls._unknown_hint)
        return data

    def _build_members(self, build: Callable[[Any, str], Any]) -> None:
        """Check that ``strong`` and ``weak`` or ``models`` were given, and build each model by ``build(spec,
        field)``; ``models`` becomes a dict by name."""
        check_members(
            self._owner,
            models=self.models,
            strong=getattr(self, "strong", None),
            weak=getattr(self, "weak", None),
            names=self.names,
            options=self,
        )
        if self.models is None:
            self.strong = build(self.strong, "strong")  # type: ignore[has-type]
            self.weak = build(self.weak, "weak")  # type: ignore[has-type]
        else:
            listed = self.models
            self.models = ladder_members(self.models, self.names, build, self._owner)
            self.priors = priors_by_name(self.priors, listed, list(self.models))  # "openai:gpt-5" is named gpt-5

    def _build_routing(self) -> None:
        """Build the engine (policy, dispatcher, labelling) once the models are built: two models' or, with
        ``models=[...]``, the N-model engine."""
        second = self.escalate.second if self.escalate is not None else None
        if second is not None and self._second is None:
            self._second = self._build_second(second)
        second_name = runnable_name(self._second) if self._second is not None else None
        names: dict[Side, str] | list[str]
        if self.models is not None:
            names = list(self.models)
        else:
            names = {
                "strong": self.strong_name or model_name(self._child("strong")),
                "weak": self.weak_name or model_name(self._child("weak")),
            }
        self._engine = build_engine(self, names, owner=self._owner, second_name=second_name)

    def _build_second(self, spec: Any) -> Any:
        """The escalation check's second cheap model (``Escalation(second=...)``)."""
        return init_child(spec, {}, "escalate.second")

    def _called(self, side: Side, name: str | None = None) -> Any:
        """The model that answers for ``side``: among N models the listed one named ``name`` (a record's
        ``model``), else the side's child."""
        if self.models is not None and name is not None:
            return self.models[name]
        return self._child(side)

    def _name_of(self, route: Route, side: Side) -> str:
        """The name of the model standing for ``side`` in ``route``."""
        return side_name(self._engine, route, side)

    def _second_child(self, name: str | None = None) -> tuple[Any, dict[str, Any]]:
        """The model giving the second cheap answer and the extra call keywords: ``Escalation.second``, else the
        weak side (among N models the chosen model, named ``name``) asked to sample again."""
        if self._second is not None:
            return self._second, {}
        if name is not None and name in self._resampled:
            return self._resampled[name], {}
        return self._called("weak", name), dict(self._resample_kwargs)

    def _child(self, side: Side) -> Any:
        return getattr(self, side)

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy (router + threshold in force), shared by copies made by ``bind_tools``."""
        return self._engine.policy

    @property
    def model_names(self) -> dict[str, str]:
        """Names of the two sides, as reported in metadata (``{"strong": ..., "weak": ...}``); with
        ``models=[...]``, each listed name's model (``{name: the model's own name}``)."""
        if self.models is not None:
            return {name: model_name(model) for name, model in self.models.items()}
        return dict(self._engine.names)  # type: ignore[arg-type]

    @property
    def feedback_store(self) -> FeedbackStore | None:
        """The feedback store (``feedback=``), to attach verdicts by decision id; ``None`` without one."""
        return self._engine.feedback_store

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling of these calls (its labeller's ``stats``, ``flush()``...), if configured."""
        return self._engine.labelling

    def _same_models(self, update: Mapping[str, Any]) -> bool:
        """Whether ``update`` keeps the listed names (``bind_tools`` binding each model anew), so the copy shares the
        engine."""
        if "names" in update:
            return False
        new = update.get("models", self.models)
        if self.models is None or new is None:
            return self.models is None and new is None
        return isinstance(new, Mapping) and list(new) == list(self.models)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; changed routing fields rebuild the engine (``bind_tools`` copies, which change only the models,
        keep sharing it).

        Raises:
            InvalidInputError: ``update`` names something that is no field, or a routing option the router refuses
                (its subclass: ``InvalidThresholdError``...).
            ValidationError: Another bad routing option, titled for this class as at construction.
        """
        if unknown := [key for key in update or () if key not in type(self).model_fields]:
            raise unknown_options_error(f"{self._owner}.model_copy", unknown, type(self).model_fields)
        try:  # model_copy runs no validators: read the routing options as the constructor does
            update = checked_routing_update(update)
        except ValidationError as exc:  # titled for this front end, as the constructor's error is
            raise _retitled(exc, type(self).__name__) from None
        if update and ("models" in update or "names" in update) and not self._same_models(update):
            if self.models is None:
                raise InvalidInputError(
                    f"{self._owner}: a copy of a two-model router cannot take models=; build a new one"
                )
            # other models: build the copy anew (members, engine, controller), as the constructor would
            fields = {name: getattr(self, name) for name in type(self).model_fields}
            return type(self)(**{**fields, "names": None, **update})
        copy = super().model_copy(update=update, deep=deep)
        if "escalate" in (update or {}):
            copy._second = None
            copy._resampled = {}
        if set(update or ()) & ROUTING_FIELDS:
            copy._build_routing()
        return copy


def _retitled(exc: ValidationError, title: str) -> ValidationError:
    """``exc`` (pydantic's error for the core's ``RoutingOptions``) titled ``title``, with the same errors."""
    kept = ("type", "loc", "input", "ctx")
    errors = [{key: value for key, value in error.items() if key in kept} for error in exc.errors()]
    return ValidationError.from_exception_data(title, errors)  # type: ignore[arg-type]
