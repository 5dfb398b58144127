"""``router-auto``: the model names and request field that route among the named models (``--model``), and the
engines that serve them.

- ``router-auto``: the server's objective (``--objective``, default ``margin=0.05``);
- ``router-auto-<kind>-<value>``: another objective, with ``<kind>`` one of ``margin`` (the cheapest model predicted
  within ``value`` of the best), ``budget`` (USD per 1,000 requests, held on live traffic), ``max`` (USD per
  request) or ``weight`` (quality points per USD): ``router-auto-budget-1.5``, ``router-auto-margin-0.02``; a
  budget held over another window than the last 200 requests adds ``-w<requests>``: ``router-auto-budget-1.5-w500``;
- ``...-cascade[-<share>%|-<threshold>]`` after either: escalation along the ladder with the server's check;
  ``...-climb[-<share>%|-<threshold>]``: escalation rung by rung (``Escalation(climb=True)``);
- the request field ``"routellm": {"objective": "budget=1.5"}`` sets the objective of a bare ``router-auto...``, in
  the objective's text form (``"budget=1.5,window=500"``, as ``--objective`` takes it); share caps are given only
  so (``"shares=gpt-4o:5%;llama3:70b:30%"``): a model name has no form for them.

Each distinct objective and escalation setting gets its own
:class:`~routellm_core.routing.ladder.LadderEngine` (its own budget controller), built on first use and kept among
the :data:`MAX_ENGINES` most recently used per worker; the server's own objective's engine is always kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from routellm_core.errors import InvalidInputError
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import DEFAULT_WINDOW, Objective
from routellm_core.server.answers import escalation_setting, split_cascade
from routellm_core.server.errors import ErrorResponse

#: The model name of routing among the named models.
AUTO_MODEL = "router-auto"
#: The objective kinds as model names write them, and the objective each one is.
NAME_KINDS: dict[str, str] = {
    "margin": "margin",
    "budget": "budget",
    "max": "max_cost",
    "max_cost": "max_cost",
    "weight": "cost_weight",
    "cost_weight": "cost_weight",
}
#: How model names write each objective kind (``GET /v1/models``).
NAME_OF_KIND: dict[str, str] = {"margin": "margin", "budget": "budget", "max_cost": "max", "cost_weight": "weight"}
#: What starts a budget's window in a model name (``router-auto-budget-1.5-w500``).
WINDOW_MARK = "w"
#: The request field of the server's own options (never sent to an upstream).
REQUEST_FIELD = "routellm"
#: The keys the request field takes.
REQUEST_KEYS = ("objective",)
#: Engines kept per worker besides the server objective's (least recently used dropped first).
MAX_ENGINES = 32

#: ``(escalation kind, value, climb)``: ``("server", None, ...)`` for the server's settings, ``("share" |
#: "threshold", value, ...)``; ``climb``: rung by rung.
Setting = tuple[str, float | None, bool]
#: ``(objective, escalation kind, escalation value, climb)``: what an engine is kept by.
EngineKey = tuple[Objective, str | None, float | None, bool]


def is_auto(model: str) -> bool:
    """Whether a model name (without its ``-cascade`` part) asks for ``router-auto``."""
    return model == AUTO_MODEL or model.startswith(AUTO_MODEL + "-")


def _bad(message: str, param: str = "model") -> ErrorResponse:
    return ErrorResponse(400, message, code="invalid_model" if param == "model" else "invalid_request", param=param)


def objective_name(objective: Objective) -> str | None:
    """The ``router-auto`` model name of an objective: ``router-auto-margin-0.05``, ``router-auto-budget-1.5-w500``
    (None for share caps: only the request field and ``--objective`` give them)."""
    if objective.kind not in NAME_OF_KIND:
        return None
    name = f"{AUTO_MODEL}-{NAME_OF_KIND[objective.kind]}-{objective.value:g}"
    return name if objective.window == DEFAULT_WINDOW else f"{name}-{WINDOW_MARK}{objective.window}"


def objective_in_name(model: str, asked: str) -> Objective | None:
    """The objective a ``router-auto...`` name (without ``-cascade``) asks for; None for bare ``router-auto``.

    Raises:
        ErrorResponse: 400 for a part after ``router-auto-`` that is not ``<kind>-<value>[-w<requests>]`` with a
            known kind, a value the objective accepts, and a window only on a budget.
    """
    rest = model[len(AUTO_MODEL) :]
    if not rest:
        return None
    kind, sep, value = rest[1:].partition("-")
    if kind not in NAME_KINDS or not sep or "," in value or "=" in value:  # the text form is the field's, not a name's
        raise _bad(
            f"model {asked!r:.120}: after router-auto give an objective as <kind>-<value> with kind one of "
            f"{sorted(NAME_KINDS)} (router-auto-budget-1.5, router-auto-margin-0.02, a budget's window as "
            f"router-auto-budget-1.5-{WINDOW_MARK}500; share caps go in the request field "
            f'\'{REQUEST_FIELD}\': {{"objective": "shares=<model>:<share>;..."}}), got {rest[1:]!r:.80}'
        )
    text = f"{NAME_KINDS[kind]}={value}"
    number, dash, last = value.rpartition("-")
    if dash and last.startswith(WINDOW_MARK):  # -w<requests> (a value's own '-' is an exponent's: 1e-05)
        window = last[len(WINDOW_MARK) :]
        if not window.isdigit():
            raise _bad(
                f"model {asked!r:.120}: a budget's window is -{WINDOW_MARK}<requests> after its value "
                f"(router-auto-budget-1.5-{WINDOW_MARK}500), got {last!r:.40}"
            )
        text = f"{NAME_KINDS[kind]}={number},window={window}"
    try:
        return Objective.parse(text)
    except InvalidInputError as exc:
        raise _bad(f"model {asked!r:.120}: {exc}") from None


def objective_in_body(options: Any) -> Objective | None:
    """The objective of the request field ``"routellm": {"objective": "<kind>=<value>"}`` (None without one; a budget
    may add its window: ``"budget=1.5,window=500"``).

    Raises:
        ErrorResponse: 400 for a field that is not an object, an unknown key, or a bad objective.
    """
    if options is None:
        return None
    if not isinstance(options, Mapping):
        raise _bad(
            f'\'{REQUEST_FIELD}\' must be an object such as {{"objective": "budget=1.5"}}, got '
            f"{type(options).__name__}",
            REQUEST_FIELD,
        )
    unknown = sorted(set(options) - set(REQUEST_KEYS))
    if unknown:
        raise _bad(f"'{REQUEST_FIELD}' takes only {list(REQUEST_KEYS)}, got {unknown}", REQUEST_FIELD)
    value = options.get("objective")
    if value is None:
        return None
    param = f"{REQUEST_FIELD}.objective"
    if not isinstance(value, str):
        raise _bad(f"'{param}' must be a string such as 'budget=1.5', got {type(value).__name__}", param)
    try:
        return Objective.parse(value)
    except InvalidInputError as exc:
        raise _bad(f"'{param}': {exc}", param) from None


def engine_label(objective: Objective, setting: Setting | None) -> str:
    """How the metrics name an engine: its objective and escalation setting (``budget=1.5``,
    ``budget=1.5,window=500``, ``margin=0.05,cascade``, ``budget=1.5,cascade=10%``, ``margin=0.02,cascade=0.5``,
    ``margin=0.05,climb``)."""
    if setting is None:
        return str(objective)
    kind, value, climb = setting
    word = "climb" if climb else "cascade"
    if kind == "server" or value is None:
        return f"{objective},{word}"
    return f"{objective},{word}={round(value * 100):d}%" if kind == "share" else f"{objective},{word}={value:g}"


def split_climb(model: str) -> tuple[str, str | None]:
    """The objective part of a ``router-auto...`` name and its climb part: None without ``-climb``, ``""`` for the
    server's escalation settings (``router-auto-budget-1.5-climb-10%`` -> ``("router-auto-budget-1.5", "10%")``)."""
    return split_cascade(model, "climb")


class AutoEngine(LadderEngine):
    """A ``router-auto`` engine: a :class:`~routellm_core.routing.ladder.LadderEngine` with the name the metrics
    give it (:func:`engine_label`).

    Args:
        label: The engine's name in the metrics.
        *args: :class:`~routellm_core.routing.ladder.LadderEngine`'s arguments.
        **kwargs: :class:`~routellm_core.routing.ladder.LadderEngine`'s keyword arguments.
    """

    def __init__(self, label: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = label
        #: Dropped from the worker's engines: calls still in flight on it no longer set its metrics' gauges.
        self.retired = False


class AutoRouting:
    """The named models' upstreams and the ``router-auto`` engines of one worker.

    Args:
        upstreams: Each named model's upstream, by name (the ladder's order).
        objective: The server's objective (bare ``router-auto``).
        build: Builds the engine of an objective and an escalation setting (``None``: no escalation; else a
            :data:`Setting`).

    Raises:
        InvalidInputError, UnknownModelError: The server objective's engine cannot be built (a model without a
            price, profile or prior...): the server fails at startup, not on the first request.
    """

    def __init__(
        self,
        upstreams: Mapping[str, Any],
        objective: Objective,
        build: Callable[[Objective, Setting | None], AutoEngine],
    ) -> None:
        self.upstreams = dict(upstreams)
        self.objective = objective
        self._build = build
        self.default = build(objective, None)
        self._engines: OrderedDict[EngineKey, AutoEngine] = OrderedDict()
        #: Called with an engine dropped from the cache (the metrics forget its gauges).
        self.on_evict: Callable[[AutoEngine], None] | None = None

    @property
    def names(self) -> list[str]:
        """The named models."""
        return list(self.upstreams)

    def engine_for(self, model: str, escalation: str | None, asked: str, options: Any) -> AutoEngine:
        """The engine a ``router-auto...`` name (split from its ``-cascade`` part) and the request field ask for.

        Raises:
            ErrorResponse: 400 for a bad objective or escalation part, or an objective in both the name and the
                request field.
        """
        objective, setting = self.setting_of(model, escalation, asked, options)
        if objective == self.objective and setting is None:
            return self.default
        key: EngineKey = (objective, *(setting or (None, None, False)))
        found = self._engines.get(key)
        if found is None:  # built on the event loop's thread: no other request runs between the get and the set
            try:
                built = self._build(objective, setting)
            except InvalidInputError as exc:  # share caps naming a model not served, or caps that cannot hold
                raise _bad(f"objective {str(objective)!r:.120}: {exc}", f"{REQUEST_FIELD}.objective") from None
            found = self._engines[key] = built
            while len(self._engines) > MAX_ENGINES:
                _, dropped = self._engines.popitem(last=False)
                dropped.retired = True
                if self.on_evict is not None:
                    self.on_evict(dropped)
        else:
            self._engines.move_to_end(key)
        return found

    def setting_of(
        self, model: str, escalation: str | None, asked: str, options: Any
    ) -> tuple[Objective, Setting | None]:
        """The objective and escalation setting a ``router-auto...`` name and the request field ask for, checked
        without building an engine (``GET /v1/models/{model}`` evicts no engine and its budget state).

        Raises:
            ErrorResponse: As :meth:`engine_for`.
        """
        model, climbing = split_climb(model)
        if climbing is not None and escalation is not None:
            raise _bad(f"model {asked!r:.120}: give -climb or -cascade, not both")
        if climbing is not None:
            escalation = climbing
        named = objective_in_name(model, asked)
        given = objective_in_body(options)
        if named is not None and given is not None:
            raise _bad(
                f"model {asked!r:.120} names an objective and '{REQUEST_FIELD}.objective' gives another: give it "
                "in one place (router-auto with the field, or the name alone)",
                f"{REQUEST_FIELD}.objective",
            )
        # as precise as its metrics label (6 significant digits): objectives one label names share one engine
        objective = Objective.parse(str(given or named or self.objective))
        climb = climbing is not None
        if escalation is None:
            return objective, None
        if not escalation:
            return objective, ("server", None, climb)
        return objective, (*escalation_setting(escalation, asked, "climb" if climb else "cascade"), climb)

    def model_ids(self) -> list[str]:
        """The ``router-auto`` names ``GET /v1/models`` lists: bare, the server objective written out, and each
        with escalation (any other objective is accepted too: ``router-auto-<kind>-<value>[-w<requests>]``)."""
        named = objective_name(self.objective)
        names = [AUTO_MODEL] if named is None else [AUTO_MODEL, named]
        return [*names, *(f"{name}-{word}" for word in ("cascade", "climb") for name in names)]


__all__ = [
    "AUTO_MODEL",
    "MAX_ENGINES",
    "NAME_KINDS",
    "NAME_OF_KIND",
    "REQUEST_FIELD",
    "WINDOW_MARK",
    "AutoEngine",
    "AutoRouting",
    "EngineKey",
    "Setting",
    "engine_label",
    "is_auto",
    "objective_in_body",
    "objective_in_name",
    "objective_name",
    "split_climb",
]
