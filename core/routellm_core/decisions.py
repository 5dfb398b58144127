"""The one decision vocabulary: sides, the router's decision, a call's route, and the served decision record.

Every layer speaks it: routers score, the policy decides (:class:`RoutingDecision`), the routed-call engine routes
(:class:`Route`) and serves (:class:`ServedDecision`, whose :meth:`~ServedDecision.as_dict` is the one metadata
schema of LangChain, LlamaIndex and the server), and the feedback store records that same record.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from routellm_core.errors import InvalidThresholdError

#: The strong or the weak side of a routing pair: the one word for it across the code base.
Side = Literal["strong", "weak"]


def other_side(side: Side) -> Side:
    """The other side: ``"weak"`` for ``"strong"`` and vice versa."""
    return "weak" if side == "strong" else "strong"


def check_threshold(threshold: float, what: str = "threshold") -> float:
    """Return ``threshold`` as a float, or raise if it is not a finite number in [0, 1]."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)):
        raise InvalidThresholdError(f"{what} must be a number in [0, 1], got {type(threshold).__name__}")
    value = float(threshold)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidThresholdError(f"{what} must be in [0, 1], got {threshold!r}")
    return value


@dataclass(frozen=True)
class RoutingDecision:
    """One routing decision, as attached to responses and traces.

    Attributes:
        router: Router name.
        win_rate: Predicted P(strong beats weak) for the routing text.
        threshold: Threshold in force; strong is chosen when ``win_rate >= threshold``.
        choice: ``"strong"`` or ``"weak"``.
    """

    router: str
    win_rate: float
    threshold: float
    choice: Side

    @classmethod
    def of(cls, router: str, win_rate: float, threshold: float) -> RoutingDecision:
        """The decision for a win rate at a threshold: strong when ``win_rate >= threshold``."""
        return cls(router, float(win_rate), threshold, "strong" if win_rate >= threshold else "weak")

    def at(self, threshold: float) -> RoutingDecision:
        """The same win rate decided at another threshold."""
        return RoutingDecision.of(self.router, self.win_rate, check_threshold(threshold))

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form for metadata."""
        return {
            "router": self.router,
            "win_rate": self.win_rate,
            "threshold": self.threshold,
            "choice": self.choice,
        }


#: Key under which the decision record appears in response metadata and run metadata.
METADATA_KEY = "routellm"


def new_decision_id() -> str:
    """A fresh decision id (32 hex characters)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class LadderChoice:
    """How a call among N priced models chose its model (``models=[...]``): the record's ``ladder`` entry.

    The call then runs on a pair: ``weak`` is the chosen model when a costlier one stands above it to escalate or
    fall back to (``strong``); the chosen model is ``strong`` when it is the costliest worth calling.

    Attributes:
        models: The listed models, cheapest expected first.
        predictions: Predicted P(model answers well | prompt), per model (same order).
        expected_costs: Expected USD cost of this request per model (same order).
        chosen: The model the objective chose.
        objective: ``"margin"``, ``"max_cost"``, ``"cost_weight"``, ``"budget"`` or ``"shares"``.
        value: The objective's parameter in force (the margin, the per-request cap, the cost weight; for
            ``"budget"`` the cost weight the budget controller set; for ``"shares"`` the chosen model's penalty).
        strong: The pair's strong model (escalation and fallback target, or the chosen model).
        weak: The pair's weak model (the chosen model, or the one below it).
        budget: For ``"budget"``: the target USD per 1,000 requests.
        spend: For ``"budget"``: what the recent calls really cost, USD per 1,000 requests (before any call
            reported, the recent window's expected spend at ``value``).
        caps: For ``"shares"``: ``(model, largest share of requests)`` per capped model (``value`` is then the
            chosen model's penalty in force).
        shares: For ``"shares"``: ``(model, share of the recent served calls)`` per capped model (before any call
            reported, its share of the controller's recent choices).
        closed: For ``"shares"``: the capped models at their cap for this call, so neither its pair nor its climb
            escalates or falls back to them.
        ticket: The share controller's number of this call (internal: what the call served is counted against it;
            not recorded).
    """

    models: tuple[str, ...]
    predictions: tuple[float, ...]
    expected_costs: tuple[float, ...]
    chosen: str
    objective: str
    value: float
    strong: str
    weak: str
    budget: float | None = None
    spend: float | None = None
    caps: tuple[tuple[str, float], ...] | None = None
    shares: tuple[tuple[str, float], ...] | None = None
    closed: tuple[str, ...] | None = None
    ticket: int | None = field(default=None, compare=False, repr=False)

    @property
    def expected_cost(self) -> float:
        """The chosen model's expected cost of this request in USD."""
        return self.expected_costs[self.models.index(self.chosen)]

    @property
    def pair(self) -> dict[Side, str]:
        """The call's two models by side."""
        return {"strong": self.strong, "weak": self.weak}

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-safe)."""
        return {
            "models": list(self.models),
            "predictions": dict(zip(self.models, self.predictions, strict=True)),
            "expected_costs": dict(zip(self.models, self.expected_costs, strict=True)),
            "chosen": self.chosen,
            "expected_cost": self.expected_cost,
            "objective": self.objective,
            "value": self.value,
            "strong": self.strong,
            "weak": self.weak,
            "budget": self.budget,
            "spend": self.spend,
            "caps": None if self.caps is None else dict(self.caps),
            "shares": None if self.shares is None else dict(self.shares),
            "closed": None if self.closed is None else list(self.closed),
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> LadderChoice:
        """The choice from :meth:`as_dict`'s form.

        Raises:
            KeyError, TypeError, ValueError: A malformed entry.
        """
        models = tuple(str(m) for m in value["models"])
        predictions, costs = value["predictions"], value["expected_costs"]

        def opt(key: str) -> float | None:
            item = value.get(key)
            return None if item is None else float(item)

        def by_model(key: str) -> tuple[tuple[str, float], ...] | None:
            item = value.get(key)
            return None if item is None else tuple((str(m), float(v)) for m, v in dict(item).items())

        choice = cls(
            models=models,
            predictions=tuple(float(predictions[m]) for m in models),
            expected_costs=tuple(float(costs[m]) for m in models),
            chosen=str(value["chosen"]),
            objective=str(value["objective"]),
            value=float(value["value"]),
            strong=str(value["strong"]),
            weak=str(value["weak"]),
            budget=opt("budget"),
            spend=opt("spend"),
            caps=by_model("caps"),
            shares=by_model("shares"),
            closed=None if value.get("closed") is None else tuple(str(m) for m in value["closed"]),
        )
        if not {choice.chosen, choice.strong, choice.weak} <= set(models):
            raise ValueError("a ladder choice names a model it does not list")
        return choice


@dataclass(frozen=True)
class Route:
    """The decision for one call, before any side answered.

    Attributes:
        decision: Router name, win rate, threshold and the chosen side.
        id: Decision id, carried by every answer served under this decision (and by later steps that continue it).
        continued: Not scored anew: continued from an earlier answer of the same request (an agent's tool step).
        text: The routing text that was scored (``None`` for a continued route); feedback records it.
        side: The side to call first when it is not the router's choice: a continued request that a fallback
            moved to the other side stays there.
        fallback_error: With ``side``: the type of the failure that moved the request (from the earlier record).
        escalated: With ``side``: the earlier step escalated to it (not a fallback).
        ladder: For a call among N models: how its model was chosen and the pair it runs on.
    """

    decision: RoutingDecision
    id: str = field(default_factory=new_decision_id)
    continued: bool = False
    text: str | None = field(default=None, repr=False)
    side: Side | None = None
    fallback_error: str | None = None
    escalated: bool = False
    ladder: LadderChoice | None = None

    @property
    def choice(self) -> Side:
        """The router's choice."""
        return self.decision.choice

    @property
    def first_side(self) -> Side:
        """The side called first: ``side`` when set, else the router's choice."""
        return self.side or self.decision.choice


#: What an attempt did in a call: ``"answer"`` (its answer was the candidate), ``"check"`` (a second cheap answer
#: for the agreement check), ``"escalation"`` (the strong model after a check failed), ``"fallback"`` (the other
#: side after a failure).
AttemptRole = Literal["answer", "check", "escalation", "fallback"]
#: What an attempt's ``model`` adds to the model's name for the weak model sampled again (the agreement check's
#: second answer) and for its self-verification question: ``"gpt-4o-mini (resampled)"`` is a call of gpt-4o-mini.
RESAMPLED_SUFFIX = " (resampled)"
VERIFY_SUFFIX = " (verify)"


@dataclass(frozen=True)
class Attempt:
    """One model call inside a routed call (the decision record lists every one).

    Attributes:
        model: Name of the model called.
        side: The side it stood for (``"weak"`` for both cheap answers of an escalation).
        role: What the call was for (:data:`AttemptRole`).
        kept: Whether its answer was served.
        signals: The escalation check's signals on this answer (agreement, length ratio...), empty without a check.
        confidence: The check's confidence in this answer (escalate below the escalation threshold), or ``None``.
        error: Type of the failure when the call failed, else ``None``.
        input_tokens: Prompt tokens the model reported, or ``None``.
        output_tokens: Completion tokens the model reported, or ``None``.
        cost: Price of the call in USD from the price table, or ``None`` when unknown.
    """

    model: str
    side: Side
    role: AttemptRole = "answer"
    kept: bool = False
    signals: Mapping[str, float] = field(default_factory=dict)
    confidence: float | None = None
    error: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost: float | None = None

    @property
    def billed_model(self) -> str:
        """The model this call was made to and priced as: :attr:`model` without the :data:`RESAMPLED_SUFFIX` or
        :data:`VERIFY_SUFFIX` of a check's call (what a per-model cost series is keyed by)."""
        if self.role == "check":
            for suffix in (RESAMPLED_SUFFIX, VERIFY_SUFFIX):
                if self.model.endswith(suffix):
                    return self.model[: -len(suffix)]
        return self.model

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-safe)."""
        return {
            "model": self.model,
            "side": self.side,
            "role": self.role,
            "kept": self.kept,
            "signals": {k: float(v) for k, v in self.signals.items()},
            "confidence": self.confidence,
            "error": self.error,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
        }

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Attempt:
        """The attempt from :meth:`as_dict`'s form.

        Raises:
            KeyError, TypeError, ValueError: A malformed entry.
        """
        side = value["side"]
        role = value.get("role", "answer")
        if side not in ("strong", "weak") or role not in ("answer", "check", "escalation", "fallback"):
            raise ValueError(f"bad attempt side or role: {side!r}, {role!r}")

        def opt(key: str, kind: type) -> Any:
            item = value.get(key)
            return None if item is None else kind(item)

        return cls(
            model=str(value["model"]),
            side=side,
            role=role,
            kept=bool(value.get("kept", False)),
            signals={str(k): float(v) for k, v in dict(value.get("signals") or {}).items()},
            confidence=opt("confidence", float),
            error=opt("error", str),
            input_tokens=opt("input_tokens", int),
            output_tokens=opt("output_tokens", int),
            cost=opt("cost", float),
        )


@dataclass(frozen=True)
class ServedDecision:
    """The decision record attached to an answer: what the router decided and which side answered.

    Attributes:
        id: Decision id (use it to attach feedback later).
        router: Router name.
        win_rate: Predicted P(strong beats weak) for the routing text.
        threshold: Threshold in force; strong is chosen when ``win_rate >= threshold``.
        choice: The side the router chose.
        served: The side that answered (the other one after a fallback).
        model: Name of the model that answered.
        continued: The decision was continued from an earlier step of the same request, not scored anew.
        fallback_from: Name of the chosen model when it failed and the other side answered, else ``None``.
        fallback_error: Type of that failure (``"TimeoutError"``, ``"EmptyResponseError"``...), else ``None``.
        attempts: Every model called for this answer, in order (empty when only the served model was called and
            nothing was checked or priced).
        escalated: The cheap answer failed the escalation check and the strong model served.
        ladder: For a call among N priced models (``models=[...]``): the predictions compared, the expected costs
            and the choice; ``None`` for a two-model call.
    """

    id: str
    router: str
    win_rate: float
    threshold: float
    choice: Side
    served: Side
    model: str
    continued: bool = False
    fallback_from: str | None = None
    fallback_error: str | None = None
    attempts: tuple[Attempt, ...] = ()
    escalated: bool = False
    ladder: LadderChoice | None = None

    @property
    def fallback(self) -> bool:
        """Whether another model answered because the one called for the answer failed (an escalation to the
        strong model is not a fallback; a failed escalation served by the weak answer is)."""
        return self.fallback_from is not None or (self.served != self.choice and not self.escalated)

    @property
    def served_role(self) -> AttemptRole:
        """The role of the call that served: ``"fallback"`` after a failure, ``"escalation"`` after a failed check,
        else ``"answer"``."""
        return "fallback" if self.fallback else "escalation" if self.escalated else "answer"

    @property
    def failed_side(self) -> Side | None:
        """The side whose failure made another answer serve (its model is ``fallback_from``): the chosen side after
        a failed first call, the strong side after a failed escalation (or a climb's failed last rung); ``None``
        without a fallback."""
        if not self.fallback:
            return None
        return self.choice if self.served != self.choice and not self.escalated else "strong"

    @property
    def cost(self) -> float | None:
        """Total price of the attempts in USD, or ``None`` when any attempt's price is unknown (or none was made)."""
        costs = [a.cost for a in self.attempts]
        if not costs or any(c is None for c in costs):
            return None
        return float(sum(c for c in costs if c is not None))

    def as_dict(self) -> dict[str, Any]:
        """The one metadata schema, identical in every integration."""
        return {
            "decision_id": self.id,
            "router": self.router,
            "win_rate": self.win_rate,
            "threshold": self.threshold,
            "choice": self.choice,
            "served": self.served,
            "model": self.model,
            "fallback": self.fallback,
            "fallback_from": self.fallback_from,
            "fallback_error": self.fallback_error,
            "continued": self.continued,
            "escalated": self.escalated,
            "attempts": [a.as_dict() for a in self.attempts],
            "cost": self.cost,
            "ladder": self.ladder.as_dict() if self.ladder is not None else None,
            "cached": False,  # a front end whose cache replays an answer says so (LangChain's set_llm_cache)
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> ServedDecision | None:
        """The record from an answer's metadata, or ``None`` when it is missing or malformed."""
        try:
            choice, served = record["choice"], record.get("served", record["choice"])
            if choice not in ("strong", "weak") or served not in ("strong", "weak"):
                return None
            error = record.get("fallback_error")
            escalated = bool(record.get("escalated", False))
            fell_back = bool(record.get("fallback", served != choice and not escalated))
            return cls(
                id=str(record.get("decision_id") or new_decision_id()),
                router=str(record["router"]),
                win_rate=float(record["win_rate"]),
                threshold=check_threshold(float(record["threshold"])),
                choice=choice,
                served=served,
                model=str(record.get("model", "")),
                continued=bool(record.get("continued", False)),
                fallback_from=record.get("fallback_from") if fell_back else None,
                fallback_error=str(error) if fell_back and error else None,
                attempts=tuple(Attempt.from_dict(a) for a in record.get("attempts") or ()),
                escalated=escalated,
                ladder=LadderChoice.from_dict(record["ladder"]) if record.get("ladder") else None,
            )
        except (KeyError, TypeError, ValueError):
            return None

    def continuation(self) -> Route:
        """A route that keeps this request on the side that answered (same decision id and choice,
        ``continued=True``; after a fallback it starts on the side that served, and its records say so)."""
        decision = RoutingDecision(
            router=self.router, win_rate=self.win_rate, threshold=self.threshold, choice=self.choice
        )
        side = self.served if self.served != self.choice else None
        return Route(
            decision,
            id=self.id,
            continued=True,
            side=side,
            fallback_error=self.fallback_error,
            escalated=self.escalated,
            ladder=self.ladder,
        )
