"""The routed call among N priced models (``models=[...]``): per-model predictions, the objective, the budget
controller, and the pair each call runs on.

For each call the router predicts ``P(model answers well | prompt)`` for every listed model (the ``difficulty``
router's per-model profiles: :meth:`~routellm_core.routers.difficulty.DifficultyRouter.predict_success`), the
:class:`ModelLadder` gives each model's expected cost of the request (its price per token, the prompt's length and
the output lengths the model reported so far), and the :class:`~routellm_core.routing.objective.Objective` picks
one model. The call then runs on a *pair*, through the same two-model engine as any routed call: the chosen model
is the weak side and the best-predicted costlier model the strong side (the escalation and fallback target), or,
when nothing costlier is predicted better, the chosen model is the strong side. So escalation, fallback, streaming,
labelling and the record work for N models exactly as for two; the record's ``ladder`` entry says what was compared.
Under ``Escalation(climb=True)`` a call escalates rung by rung instead (:mod:`routellm_core.routing.climb`): its
pair is the chosen model and the next costlier one, and the record's pair is the chosen model and the one served.

Under ``Objective.budget`` a :class:`BudgetController` holds the mean spend on live traffic: it keeps the last
``window`` requests' predictions and expected costs, and sets the cost weight to the smallest one at which that
window would have spent no more than the budget (a quantile of the window's price-quality exchange rates), so a
drift in the traffic's mix moves the weight with it; what the calls really cost corrects the spend it aims at.
Under ``Objective.shares`` a :class:`~routellm_core.routing.shares.ShareController` holds each capped model's share of
the recent requests by a penalty per capped model.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from typing import Any, TypeVar

import numpy as np

from routellm_core.data.prices import price_of, unpriced_hint
from routellm_core.decisions import LadderChoice, Route, RoutingDecision, ServedDecision, Side
from routellm_core.errors import InvalidInputError, ModelCallError, close_name
from routellm_core.escalation.ladder import choose
from routellm_core.learning.labelling import MAX_LABEL_THREADS, TrafficLabelling
from routellm_core.routers.profiles import ModelPrior, UnknownModelError, close_model, resolve_model, same_model
from routellm_core.routing.cascade import Cascade, Pricing
from routellm_core.routing.climb import Climb, Climbed, ClimbRun, climb_async, climb_order, climb_sync
from routellm_core.routing.dispatch import log_route
from routellm_core.routing.engine import RoutingEngine, RoutingOptions, aheld, held, price_table, quietly
from routellm_core.routing.objective import Objective
from routellm_core.routing.policy import RoutingPolicy, build_policy
from routellm_core.routing.shares import ShareController

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Output tokens a model is expected to write before any model reported any.
DEFAULT_OUTPUT_TOKENS = 300
#: The traffic's output level: the mean of the last this many reports, of any model, each divided by its model's
#: verbosity (so a drift in the traffic moves every model's expected cost, whichever model served).
LEVEL_MEMORY = 20
#: A model's verbosity (its outputs relative to the level): the median of its last this many reports.
VERBOSITY_MEMORY = 50
#: Characters per token of the prompt-length estimate (corrected by the input tokens models report).
CHARS_PER_TOKEN = 4.0
#: The ladder reads the price table again after this many seconds: its prices may depend on the time of the request
#: (DeepSeek's off-peak hours, a provider's price change on a date), as the calls are billed.
PRICE_REFRESH_S = 300.0
#: The budget controller corrects its aim by expected / realised cost over at least this many recent calls (a shorter
#: window's ratio is too noisy: a few calls of a dear model with long answers swing it).
COST_RATIO_MEMORY = 200
#: Cost weights the budget controller tries: 0, then log-spaced (quality points per USD).
_WEIGHTS = np.r_[0.0, np.logspace(-3, 10, 261)]


def check_names(names: Sequence[str]) -> list[str]:
    """``names`` as a list, checked: at least two, each once.

    Raises:
        InvalidInputError: Fewer than two names, or a repeated one.
    """
    names = list(names)
    if len(names) < 2:
        raise InvalidInputError(f"models= needs at least two models, got {len(names)}")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"models= lists a name twice: {names}; give each model a distinct name")
    return names


class ModelLadder:
    """The listed models with their prices, and each one's expected cost of a request.

    Expected cost = (prompt tokens x input price + expected output tokens x output price) / 1e6, where prompt
    tokens are estimated from the routing text's length (scaled by what models report) and a model's expected
    output tokens are its *verbosity* times the traffic's output *level*. The level is the mean of the last
    :data:`LEVEL_MEMORY` reports of any model, each divided by its model's verbosity; a model's verbosity is the
    median of its last :data:`VERBOSITY_MEMORY` reports, each divided by the level of the *other* models' reports among
    those (no update when there are none, so a drift only one model reports moves the level, not its verbosity).
    So when the traffic turns to longer answers, the models served rarely get dearer as soon as the one served most
    reports it. Before any report: :attr:`output_tokens`; a model without a verbosity yet has 1.

    Args:
        names: The models' names (as they are priced and profiled).
        prices: USD per million input and output tokens by name, over the shipped table.
        output_tokens: The output tokens assumed per answer until a model reports some (:attr:`output_tokens`,
            which may be set later too: ``routellm route --output-tokens``).

    Raises:
        InvalidInputError: Fewer than two models, a repeated name, or a model without a known price.
    """

    def __init__(
        self,
        names: Sequence[str],
        prices: Mapping[str, tuple[float, float]] | None = None,
        *,
        output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ) -> None:
        names = check_names(names)
        if isinstance(output_tokens, bool) or not isinstance(output_tokens, int) or output_tokens < 1:
            raise InvalidInputError(f"output_tokens must be a positive int, got {output_tokens!r:.40}")
        #: Output tokens assumed per answer until a model reports some.
        self.output_tokens = output_tokens
        self._priced_at = _utcnow()
        found = {name: price_of(name, prices, at=self._priced_at) for name in names}
        missing = [name for name, price in found.items() if price is None]
        if missing:
            raise InvalidInputError(
                f"no price for {missing}{unpriced_hint(missing, prices)}: the shipped price table does not know "
                "them; give prices={name: (usd_per_million_input_tokens, usd_per_million_output_tokens)}"
            )
        self.names = tuple(names)
        self._given = prices
        self._prices = np.array([[float(found[n][0]), float(found[n][1])] for n in names])  # type: ignore[index]
        self._lock = threading.Lock()
        self._levels: deque[tuple[int, float]] = deque(maxlen=LEVEL_MEMORY)  # (model, output / its verbosity)
        self._verbosity: list[deque[float]] = [deque(maxlen=VERBOSITY_MEMORY) for _ in names]
        self._in_ratio_sum = 0.0
        self._in_ratio_n = 0

    @property
    def prices(self) -> np.ndarray:
        """USD per million (input, output) tokens of each model (one row per name): yours, else the table's now
        (read again every :data:`PRICE_REFRESH_S` seconds)."""
        now = _utcnow()
        if (now - self._priced_at).total_seconds() >= PRICE_REFRESH_S:
            found = [price_of(name, self._given, at=now) for name in self.names]
            if all(price is not None for price in found):  # a model the table dropped keeps its last price
                self._prices = np.array([[float(p[0]), float(p[1])] for p in found])  # type: ignore[index]
            self._priced_at = now
        return self._prices

    def index(self, name: str) -> int:
        """The position of ``name`` in :attr:`names`."""
        return self.names.index(name)

    def expected_costs(self, text: str) -> np.ndarray:
        """Each model's expected cost in USD, at the current estimates, of a request whose routing text is
        ``text``."""
        with self._lock:
            ratio = self._in_ratio_sum / self._in_ratio_n if self._in_ratio_n else 1.0
            out = self._level() * np.array([self._verbosity_of(j) for j in range(len(self.names))])
        tokens_in = max(1.0, len(text) / CHARS_PER_TOKEN) * ratio
        prices = self.prices
        return (tokens_in * prices[:, 0] + out * prices[:, 1]) / 1e6

    def observe(self, record: ServedDecision, text: str | None) -> None:
        """Learn output lengths (and how the routing text's length relates to prompt tokens) from a served
        record's attempts (not from a failed one, nor from an answer a cache replayed: no input and no output
        tokens, as LangChain's cache reports it)."""
        with self._lock:
            for attempt in record.attempts:
                name = attempt.model
                if name not in self.names or attempt.error is not None:
                    continue
                if attempt.input_tokens == 0 and not attempt.output_tokens:  # a cache's replay: no model wrote it
                    continue
                j = self.names.index(name)
                if attempt.output_tokens is not None:
                    tokens = max(float(attempt.output_tokens), 1.0)  # a 0-token reply must not zero a verbosity
                    others = [v for k, v in self._levels if k != j]
                    if others:
                        self._verbosity[j].append(tokens / max(float(np.mean(others)), 1.0))
                    self._levels.append((j, tokens / self._verbosity_of(j)))
                if attempt.input_tokens and text:  # 0: a provider that reports output tokens only
                    self._in_ratio_sum += attempt.input_tokens / max(1.0, len(text) / CHARS_PER_TOKEN)
                    self._in_ratio_n += 1

    def _level(self) -> float:
        return float(np.mean([v for _, v in self._levels])) if self._levels else float(self.output_tokens)

    def _verbosity_of(self, j: int) -> float:
        return float(np.median(self._verbosity[j])) if self._verbosity[j] else 1.0


#: (owner, model) pairs already warned that their prior is not used (the server builds an engine per objective).
_UNUSED_PRIORS_SAID: set[tuple[str, str]] = set()


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


class BudgetController:
    """Holds a mean spend per request on live traffic by setting the cost weight (``Objective.budget``).

    Each request adds its predictions and expected costs to a window of the last ``window`` requests; the cost weight
    in force is the smallest (of a log-spaced grid) at which the window's requests, routed by ``argmax p - weight x
    cost``, would have spent no more than the target on average. Each request keeps the expected costs it was
    routed on: re-pricing the window at the current estimates would set the weight from the old traffic's
    predictions at the new traffic's prices, which overspends when the two move together (harder prompts with
    longer answers: ``bench.ladder_drift`` measured 3.6x the target in the 100 requests after such a switch, against
    0.99x without re-pricing).

    The expected spend the controller aims the window at is corrected by what the calls really cost (:meth:`spent`,
    from the records) against what the controller expected them to spend: ``aim = target x expected / realised``
    over the last ``max(window, COST_RATIO_MEMORY)`` of each, within [0.25, 2] x target. So costs that run above or
    below their estimates (answers longer than learned, escalations, a window priced before the output lengths were
    learned) do not carry the spend away from the target.

    Args:
        usd_per_1k: The target spend in USD per 1,000 requests.
        window: How many recent requests the target is held over.
        seed: Seed of the random mix between two neighbouring weights.
    """

    def __init__(
        self,
        usd_per_1k: float,
        window: int,
        seed: int = 0,
    ) -> None:
        self.target = usd_per_1k / 1000.0
        self.window = window
        self._rows: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=window)
        memory = max(window, COST_RATIO_MEMORY)
        self._expected: deque[float] = deque(maxlen=memory)  # the window's expected spend per request, per route
        self._spent: deque[float] = deque(maxlen=memory)  # what the calls really cost
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._warned = False  # the budget is below what the cheapest choices cost: said once

    def weight(self, pred: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
        """Add one request (``pred``, ``cost``: per model) and return the cost weight for it and the window's
        expected spend per request under the controller.

        When no weight meets the target exactly (similar requests all switch model at once), the two neighbouring
        weights are mixed at random in the proportion whose expected spend is the target.
        """
        with self._lock:
            self._rows.append((pred, cost))
            p = np.vstack([r[0] for r in self._rows])
            c = np.vstack([r[1] for r in self._rows])
            u = float(self._rng.random())
            aim = self.aim
        rows = np.arange(len(c))

        def spend(g: int) -> float:
            picks = choose(p, c, "cost_weight", _WEIGHTS[g : g + 1])[0]
            return float(c[rows, picks].mean())

        # each request's chosen cost falls as the weight grows, so the window's spend does: bisect for the
        # smallest weight that spends no more than the aim
        lo, hi = 0, len(_WEIGHTS) - 1
        s_lo, s_hi = spend(lo), spend(hi)
        if s_hi > aim + 1e-15:  # even the cheapest choices overspend
            if not self._warned and len(rows) >= min(self.window, 20) and s_hi > self.target * 1.05:
                self._warned = True
                logger.warning(
                    "budget %.4g USD per 1,000 requests is below what the cheapest model costs on this traffic "
                    "(%.4g expected): every call goes to the cheapest model; raise the budget or add a cheaper model",
                    self.target * 1000,
                    s_hi * 1000,
                )
            return float(_WEIGHTS[hi]), self._expects(s_hi)
        if s_lo <= aim + 1e-15:
            return float(_WEIGHTS[lo]), self._expects(s_lo)
        while hi - lo > 1:  # spend(lo) > aim >= spend(hi)
            mid = (lo + hi) // 2
            s_mid = spend(mid)
            if s_mid <= aim + 1e-15:
                hi, s_hi = mid, s_mid
            else:
                lo, s_lo = mid, s_mid
        g = hi
        if s_hi >= aim:
            return float(_WEIGHTS[g]), self._expects(s_hi)
        above, below = s_lo, s_hi  # above > aim > below
        share = (aim - below) / (above - below)  # P(the costlier weight's choice)
        return float(_WEIGHTS[g - 1] if u < share else _WEIGHTS[g]), self._expects(aim)

    def _expects(self, spend: float) -> float:
        with self._lock:
            self._expected.append(float(spend))
        return float(spend)

    @property
    def realised(self) -> float | None:
        """What the recent calls really cost per request in USD (None before any reported)."""
        with self._lock:
            return float(np.mean(self._spent)) if self._spent else None

    def spent(self, usd: float) -> None:
        """Report what a routed call really cost in USD (its record's attempts, escalations included)."""
        with self._lock:
            self._spent.append(float(usd))

    @property
    def aim(self) -> float:
        """The window's expected spend per request the weight is set for: the target, scaled by expected / realised
        spend of the recent calls once a quarter of the memory reported."""
        if len(self._spent) < max(1, (self._spent.maxlen or 0) // 4) or not self._expected:
            return self.target
        expected, realised = float(np.mean(self._expected)), float(np.mean(self._spent))
        if realised <= 0:
            return 2 * self.target
        return float(np.clip(self.target * expected / realised, 0.25 * self.target, 2 * self.target))

    def __repr__(self) -> str:
        return f"BudgetController(target={self.target * 1000:g} USD per 1k, window={self.window})"


def labelling_of(options: RoutingOptions, judge: Any) -> TrafficLabelling | None:
    """One labelling for all the pairs' engines (each call passes its pair's names).

    Raises:
        InvalidInputError: A judge or label fraction without a feedback store.
    """
    if options.feedback is None:
        if judge is not None or options.label_fraction:
            raise InvalidInputError("judge= and label_fraction= need feedback= (a FeedbackStore or a path)")
        return None
    return TrafficLabelling(
        options.feedback,
        judge=judge,
        label_fraction=options.label_fraction,
        seed=options.label_seed,
        max_pending=options.label_concurrency,
        workers=min(options.label_concurrency, MAX_LABEL_THREADS),
    )


def pair_win_rate(p_strong: float, p_weak: float) -> float:
    """P(the strong model's answer beats the weak one's) from each one's P(answers well), ties counted half."""
    return p_strong * (1 - p_weak) + 0.5 * (p_strong * p_weak + (1 - p_strong) * (1 - p_weak))


class LadderEngine:
    """The routed-call engine among N priced models: same interface as :class:`RoutingEngine` (``route``,
    ``call``, ``stream``... with ``attempt(side, record)`` callbacks, where ``record.model`` names the model to
    call), each call run by the two-model engine of its pair.

    Args:
        options: The front end's routing options (``objective``, ``priors``, ``prices``, ``escalate``...).
        names: The listed models' names, in the front end's order.
        owner: Name of the front end, for error messages.
        engine_kwargs: What the front end gives :class:`RoutingEngine` (``is_empty``, ``answer_text``...);
            ``labelling``: a labelling to share with other engines instead of building one; ``output_tokens``: the
            ladder's assumed answer length (:class:`ModelLadder`).

    Raises:
        InvalidInputError: The router cannot predict per-model success (use the ``difficulty`` router, the
            ``default``), a model it has no profile or prior for, a prior whose key looks like such a model's name
            mistyped, a model without a price, or a threshold / strong fraction (they are the two-model knobs; use
            ``objective``).
    """

    def __init__(self, options: RoutingOptions, names: Sequence[str], *, owner: str, **engine_kwargs: Any) -> None:
        if options.threshold is not None or options.strong_fraction is not None:
            raise InvalidInputError(
                f"{owner}: threshold= and strong_fraction= choose between two models; with models=[...] give "
                "objective= (Objective.margin(0.05), Objective.budget(usd_per_1k)...)"
            )
        self.options = options
        self.owner = owner
        self.policy: RoutingPolicy = engine_kwargs.pop("policy", None) or build_policy(
            options.router, None, None, options.embedder
        )
        router = self.policy.router
        if not hasattr(router, "predict_success"):
            raise InvalidInputError(
                f"{owner}: models=[...] needs a router that predicts each model's success (the 'difficulty' router, "
                f"shipped as 'default'); {self.policy.router_name!r} only compares two models"
            )
        self.router = router
        self.priors = dict(options.priors or {})
        names = check_names(names)
        # priors for models not listed are allowed (one table for several ladders, a copy over fewer models),
        # unless a key looks like a listed model's name mistyped while that model has no prior of its own
        for key in [key for key in self.priors if key not in names]:  # another spelling of one listed model
            same = [name for name in names if name not in self.priors and same_model(name, key)]
            if len(same) == 1:
                self.priors[same[0]] = self.priors.pop(key)
        unused = [key for key in self.priors if key not in names]
        without = [name for name in names if name not in self.priors]
        typos = {key: close for key in unused if (close := close_name(key, without)) is not None}
        if typos:
            guess = ", ".join(f"{close!r} for {key!r}" for key, close in typos.items())
            raise InvalidInputError(
                f"{owner}: priors= names {list(typos)}, which models= does not list (models: {list(names)}); "
                f"did you mean {guess}? key each prior by its model's name"
            )
        profiles: dict[str, str] = {}
        for name in without:  # fail now, naming the model, rather than on the first call
            try:
                profiles[name] = router.resolve_model(name)
            except UnknownModelError as exc:
                listed = f" (priors= names {unused}, none of them listed)" if unused else ""
                raise UnknownModelError(
                    f"{owner}: {exc}; with models=[...] give priors={{{name!r}: ModelPrior(like=...)}}{listed}"
                ) from None
        self._check_priors(router, [name for name in names if name in self.priors])
        for name in names:  # a prior of a profiled model is not used: the twin check sees its profile
            if name not in profiles and (found := resolve_model(name, router.models)) is not None:
                profiles[name] = found
        self.ladder = ModelLadder(
            names, options.prices, output_tokens=engine_kwargs.pop("output_tokens", DEFAULT_OUTPUT_TOKENS)
        )
        self._check_twins(profiles)
        objective = options.objective  # a copy made without validation may still hold the "kind=value" form
        self.objective = Objective.parse(objective) if isinstance(objective, str) else objective or Objective.margin()
        self.controller = (
            BudgetController(self.objective.value, self.objective.window) if self.objective.kind == "budget" else None
        )
        #: Under ``Objective.shares``: the controller holding each capped model's share.
        self.shares = self._share_controller() if self.objective.kind == "shares" else None
        shared = engine_kwargs.pop("labelling", "own")  # a labelling to share (the server's engines per objective)
        self._engine_kwargs = engine_kwargs
        #: Under ``Escalation(climb=True)``: the climb's rules (the pairs' engines then escalate nothing themselves).
        self.climb = self._climb_of(options, engine_kwargs)
        self._pair_options = options
        if self.climb is not None:  # the front end itself may be the options: copy the fields, not the front end
            fields = {name: getattr(options, name) for name in RoutingOptions.model_fields}
            self._pair_options = RoutingOptions.model_construct(**{**fields, "escalate": None})
        judge = engine_kwargs.get("judge")
        self._labelling = (
            labelling_of(options, judge if judge is not None else options.judge) if shared == "own" else shared
        )
        self._engines: dict[tuple[str, str], RoutingEngine] = {}
        self._lock = threading.Lock()

    def _share_controller(self) -> ShareController:
        """The share controller of ``Objective.shares`` over the listed models.

        Raises:
            InvalidInputError: A capped model ``models=`` does not list, or caps that cannot hold (every model capped
                and the caps summing below 1: :class:`~routellm_core.routing.shares.ShareController`).
        """
        caps = self.objective.cap_of
        unknown = [name for name in caps if name not in self.names]
        if unknown:
            close = {name: guess for name in unknown if (guess := close_name(name, list(self.names))) is not None}
            hint = "".join(f"; did you mean {guess!r} for {name!r}?" for name, guess in close.items())
            raise InvalidInputError(
                f"{self.owner}: the shares objective caps {unknown}, which models= does not list (models: "
                f"{list(self.names)}){hint}"
            )
        try:
            return ShareController(
                {self.names.index(name): cap for name, cap in caps.items()}, len(self.names), self.objective.window
            )
        except InvalidInputError as exc:  # caps that cannot hold, said for this owner
            raise InvalidInputError(f"{self.owner}: {exc}") from None

    def _check_priors(self, router: Any, named: Sequence[str]) -> None:
        """Each listed model's prior names profiled models (else the first call would fail on it); a prior of a model
        the router profiles is not used (its profile, learned from labels, is): said once, here.

        Raises:
            InvalidInputError: A prior whose ``like`` or ``reference`` names no profiled model.
        """
        for name in named:
            prior = ModelPrior.of(self.priors[name], name)
            for target in [*([prior.like] if prior.like is not None else []), *prior.reference]:
                try:
                    router.resolve_model(target)
                except UnknownModelError:
                    close = close_model(target, router.models)
                    hint = f" (did you mean {close!r}?)" if close else ""
                    raise InvalidInputError(
                        f"{self.owner}: the prior of {name!r} names {target!r}, which the router has no profile "
                        f"for{hint}: ModelPrior(like=...) and reference= name profiled models (router.models)"
                    ) from None
            try:
                profiled = router.resolve_model(name)
            except UnknownModelError:
                continue
            if (self.owner, name) in _UNUSED_PRIORS_SAID:
                continue
            _UNUSED_PRIORS_SAID.add((self.owner, name))
            logger.warning(
                "%s: %r has a profile (%r): its prior is not used (drop it, or list the model under a name the "
                "router does not profile)",
                self.owner,
                name,
                profiled,
            )

    def _check_twins(self, profiles: Mapping[str, str]) -> None:
        """Two listed models that are one profile at one price cannot be told apart (same predictions, same costs).

        Raises:
            InvalidInputError: Two such models.
        """
        seen: dict[tuple[str, tuple[float, float]], str] = {}
        for name, profile in profiles.items():
            key = (profile, tuple(float(p) for p in self.ladder.prices[self.ladder.index(name)]))
            if (other := seen.setdefault(key, name)) != name:
                raise InvalidInputError(
                    f"{self.owner}: models= lists {other!r} and {name!r}, which are one model to the router (profile "
                    f"{profile!r}) at one price: it cannot tell them apart; list one, or give each its own price "
                    "(prices=)"
                )

    def _climb_of(self, options: RoutingOptions, kwargs: dict[str, Any]) -> Climb | None:
        escalate = options.escalate
        if escalate is None or not escalate.climb:
            return None
        answer_text, chunk_text = kwargs["answer_text"], kwargs["chunk_text"]
        cascade = Cascade(
            escalate,
            names={"strong": self.names[-1], "weak": self.names[0]},  # unused: the climb names each rung itself
            second_name="",
            answer_value=kwargs.get("answer_value") or answer_text,
            answer_text=answer_text,
            is_empty=kwargs["is_empty"],
            pricing=Pricing(kwargs.get("usage") or (lambda _value: (None, None)), price_table(options.prices)),
            join_chunks=kwargs.get("join_chunks") or (lambda chunks: "".join(chunk_text(c) for c in chunks)),
            logprobs=kwargs.get("logprobs") or (lambda _value: None),
        )
        return Climb(cascade, owner=self.owner, fallback=options.fallback, on_fallback=kwargs.get("on_fallback"))

    @property
    def names(self) -> tuple[str, ...]:
        """The listed models' names."""
        return self.ladder.names

    @property
    def feedback_store(self) -> Any:
        """The feedback store, or ``None`` without one."""
        return self._labelling.store if self._labelling is not None else None

    @property
    def labelling(self) -> TrafficLabelling | None:
        """The labelling the pairs' engines share (its labeller's ``stats``, ``flush()``...), if configured."""
        return self._labelling

    # ---- routing ---------------------------------------------------------------------------------------------
    def choice(self, text: str) -> LadderChoice:
        """The model the objective picks for routing text ``text``, the pair the call runs on and what was
        compared."""
        pred = np.asarray(
            self.router.predict_success([text], list(self.names), **({"priors": self.priors} if self.priors else {})),
            dtype=np.float64,
        )[0]
        cost = self.ladder.expected_costs(text)
        objective = self.objective
        budget = spend = caps = shares = ticket = None
        shut: tuple[int, ...] = ()  # capped models at their cap: not the pair's other side nor a climb's rung
        if self.shares is not None:
            chosen, penalties, ticket, shut = self.shares.choose(pred, cost)
            value = float(penalties[chosen])
            capped = [self.names[m] for m in self.shares.capped]
            caps = tuple(zip(capped, (float(c) for c in self.shares.caps), strict=True))
            shares = tuple(zip(capped, (float(x) for x in self.shares.shares), strict=True))
        else:
            if self.controller is not None:
                value, expected = self.controller.weight(pred, cost)
                realised = self.controller.realised
                kind, budget = "cost_weight", objective.value
                spend = 1000.0 * (expected if realised is None else realised)
            else:
                kind, value = objective.kind, objective.value
            chosen = int(choose(pred[None], cost[None], kind, np.array([value]))[0, 0])
        order = np.argsort(cost, kind="stable")
        open_pred = pred.copy()
        open_pred[[j for j in shut if j != chosen]] = -np.inf
        above = [j for j in order if cost[j] > cost[chosen] and open_pred[j] > pred[chosen]]
        ordered = [int(j) for j in order]
        climb = climb_order(open_pred[ordered], ordered.index(chosen)) if self.climb is not None else []
        if len(climb) > 1:  # the climb's first step: the next rung up predicted better
            strong, weak = ordered[climb[1]], chosen
        elif above:
            target = max(above, key=lambda j: (pred[j], -cost[j]))
            strong, weak = target, chosen
        else:
            others = [j for j in order if j != chosen and j not in shut] or [j for j in order if j != chosen]
            cheaper = [j for j in others if cost[j] <= cost[chosen]]
            strong, weak = chosen, (cheaper[-1] if cheaper else others[0])
        return LadderChoice(
            models=tuple(self.names[j] for j in ordered),
            predictions=tuple(float(pred[j]) for j in ordered),
            expected_costs=tuple(float(cost[j]) for j in ordered),
            chosen=self.names[chosen],
            objective=objective.kind,
            value=float(value),
            strong=self.names[strong],
            weak=self.names[weak],
            budget=budget,
            spend=spend,
            caps=caps,
            shares=shares,
            closed=None if self.shares is None else tuple(self.names[j] for j in shut if j != chosen),
            ticket=ticket,
        )

    def route(self, text: str, threshold: float | None = None) -> Route:
        """The route of one routing text: the chosen model, on its pair (``threshold`` must be None)."""
        if threshold is not None:
            raise InvalidInputError(f"{self.owner}: a call among N models takes no threshold; set objective=")
        ladder = self.choice(text)
        p = dict(zip(ladder.models, ladder.predictions, strict=True))
        choice: Side = "weak" if ladder.chosen == ladder.weak else "strong"
        if choice == "weak" and self.climb is not None and self.climb.straight_up(ladder):
            choice = "strong"  # a climb with one rung above: straight to it (the chosen model is its fallback)
        decision = RoutingDecision(
            router=self.policy.router_name,
            win_rate=pair_win_rate(p[ladder.strong], p[ladder.weak]),
            # the objective chose, not a threshold: 1.0 keeps the weak side, 0.0 the strong side
            threshold=1.0 if choice == "weak" else 0.0,
            choice=choice,
        )
        return log_route(Route(decision, text=text, ladder=ladder))

    async def aroute(self, text: str, threshold: float | None = None) -> Route:
        """Async :meth:`route` (scored off the event loop)."""
        return await asyncio.to_thread(self.route, text, threshold)

    def continued(self, record: ServedDecision | None) -> Route | None:
        """The route continuing an earlier step's record on the same pair (``tool_step="continue"``)."""
        if record is None or self.options.tool_step != "continue" or record.ladder is None:
            return None
        if not {record.ladder.strong, record.ladder.weak} <= set(self.names):  # a step of other models' history
            return None
        return log_route(record.continuation())

    def engine(self, route: Route) -> RoutingEngine:
        """The two-model engine of ``route``'s pair (built on first use, then shared)."""
        ladder = route.ladder
        if ladder is None:
            raise InvalidInputError(f"{self.owner}: this route was not made by the N-model engine")
        key = (ladder.strong, ladder.weak)
        with self._lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = RoutingEngine(
                    self._pair_options,
                    ladder.pair,
                    owner=self.owner,
                    policy=self.policy,
                    labelling=self._labelling,
                    **self._engine_kwargs,
                )
                self._engines[key] = engine
            return engine

    def holds(self, route: Route) -> bool:
        """Whether the call's answers are held for the escalation check (see :meth:`RoutingEngine.holds`)."""
        return self._climbs(route) or self.engine(route).holds(route)

    def held_attempt(self, route: Route, record: ServedDecision) -> bool:
        """Whether the answer of the attempt called with ``record`` is held (see :meth:`RoutingEngine.held_attempt`):
        under a climb every rung's, since any of them may be thrown away."""
        return self._climbs(route) or self.engine(route).held_attempt(route, record)

    def _climbs(self, route: Route) -> bool:
        return self.climb is not None and self.climb.applies(route)

    def planned(self, route: Route) -> ServedDecision:
        """The record a call under ``route`` carries before any model answered."""
        return self.engine(route).planned(route)

    def name_of(self, route: Route, side: Side) -> str:
        """The model standing for ``side`` in ``route``'s pair."""
        return self.engine(route).names[side]

    # ---- the routed call: the pair's engine, then learn the output lengths --------------------------------
    def call(
        self, route: Route, attempt: Callable[[Side, ServedDecision], T], **calls: Any
    ) -> tuple[T, ServedDecision]:
        """:meth:`RoutingEngine.call` on the route's pair (under a climb: up the ladder). A call that ends early after
        paying some attempts (cancelled, a failed escalation, the caller's control flow) still bills them."""
        on_final = self._on_final(route, calls.pop("on_final", None))
        if not self._climbs(route):
            return self.engine(route).call(route, attempt, on_final=on_final, **calls)
        done = self._climb(route, attempt, calls, on_final, stream=False)
        on_final(done.record)
        pair = self._pair_of(route, done)
        pair.record_call(route, done.record, pair.answer_text(done.value), calls.get("other_answer"))
        return done.value, done.record

    async def acall(
        self, route: Route, attempt: Callable[[Side, ServedDecision], Awaitable[T]], **calls: Any
    ) -> tuple[T, ServedDecision]:
        """Async :meth:`call`."""
        on_final = self._on_final(route, calls.pop("on_final", None))
        if not self._climbs(route):
            return await self.engine(route).acall(route, attempt, on_final=on_final, **calls)
        done = await self._aclimb(route, attempt, calls, on_final, stream=False)
        on_final(done.record)
        pair = self._pair_of(route, done)
        await pair.arecord_call(route, done.record, pair.answer_text(done.value), calls.get("other_answer"))
        return done.value, done.record

    def stream(
        self, route: Route, open_stream: Callable[[Side, ServedDecision], Iterator[Any]], **calls: Any
    ) -> Iterator[tuple[Any, ServedDecision]]:
        """:meth:`RoutingEngine.stream` on the route's pair (its priced record teaches the ladder and the controller
        however the stream ends; a caller's own ``on_final`` gets it too). A climb holds every answer until one is
        served, then relays its chunks."""
        on_final = self._on_final(route, calls.pop("on_final", None))
        if not self._climbs(route):
            yield from self.engine(route).stream(route, open_stream, on_final=on_final, **calls)
            return
        done = self._climb(route, held(open_stream), calls, on_final, stream=True)
        pair = self._pair_of(route, done)
        left, relayed = False, 0
        try:
            for chunk in done.value:
                yield chunk, done.record
                relayed += 1
        except BaseException:  # the caller closed the relay (or threw into it)
            left = True
            raise
        finally:
            on_final(done.record)
            if left:  # recorded as RoutingEngine.stream records a stream its caller left: the text relayed
                pair.record_call(route, done.record, self._text_of(pair, done.value[: relayed + 1]), None, sample=False)
        pair.record_call(route, done.record, self._text_of(pair, done.value), calls.get("other_answer"))

    async def astream(
        self, route: Route, open_stream: Callable[[Side, ServedDecision], AsyncIterator[Any]], **calls: Any
    ) -> AsyncIterator[tuple[Any, ServedDecision]]:
        """Async :meth:`stream`."""
        on_final = self._on_final(route, calls.pop("on_final", None))
        if not self._climbs(route):
            relayed = self.engine(route).astream(route, open_stream, on_final=on_final, **calls)
            async with aclosing(relayed):
                async for item in relayed:
                    yield item
            return
        done = await self._aclimb(route, aheld(open_stream), calls, on_final, stream=True)
        pair = self._pair_of(route, done)
        left, relayed = False, 0
        try:
            for chunk in done.value:
                yield chunk, done.record
                relayed += 1
        except BaseException:  # closed, cancelled, or thrown into
            left = True
            raise
        finally:
            on_final(done.record)
            if left:
                await pair.arecord_left(route, done.record, self._text_of(pair, done.value[: relayed + 1]))
        await pair.arecord_call(route, done.record, self._text_of(pair, done.value), calls.get("other_answer"))

    # ---- the climb ---------------------------------------------------------------------------------------
    def _run(self, route: Route, stream: bool) -> ClimbRun:
        assert self.climb is not None
        return self.climb.run(route, self.engine(route).planned(route), stream=stream)

    def _verify(self, calls: Mapping[str, Any]) -> Any:
        """The self-verification call a climb's check needs (refused when the front end cannot ask it)."""
        assert self.climb is not None
        return self.climb.cascade.verification(calls.get("verify"), self.owner)

    def _climb(
        self,
        route: Route,
        attempt: Callable[[Side, ServedDecision], Any],
        calls: Mapping[str, Any],
        on_final: Callable[[ServedDecision], None],
        *,
        stream: bool,
    ) -> Climbed:
        """Climb in this thread. Ended early, the climb's paid calls still bill and are recorded (a model's
        failure, a :class:`ModelCallError`, with the failed call), and the exception propagates."""
        verify, passthrough = self._verify(calls), self.engine(route).passthrough
        run = self._run(route, stream)
        try:
            return self._climbed(climb_sync(run, attempt, verify, passthrough))
        except BaseException as exc:
            if (record := self._ended(route, run, exc, on_final)) is not None:
                quietly(self._record_left, route, record)
            raise

    async def _aclimb(
        self,
        route: Route,
        attempt: Callable[[Side, ServedDecision], Awaitable[Any]],
        calls: Mapping[str, Any],
        on_final: Callable[[ServedDecision], None],
        *,
        stream: bool,
    ) -> Climbed:
        """Async :meth:`_climb` (a cancelled climb is recorded as a stream its caller left)."""
        verify, passthrough = self._verify(calls), self.engine(route).passthrough
        run = self._run(route, stream)
        try:
            return self._climbed(await climb_async(run, attempt, verify, passthrough))
        except BaseException as exc:
            if (record := self._ended(route, run, exc, on_final)) is not None:
                try:
                    await self.engine(replace(route, ladder=record.ladder)).arecord_left(route, record, "")
                except Exception:  # the caller's exception is the one to see
                    logger.exception("%s: could not record decision %s", self.owner, record.id)
            raise

    def _ended(
        self, route: Route, run: ClimbRun, exc: BaseException, on_final: Callable[[ServedDecision], None]
    ) -> ServedDecision | None:
        """The record of a climb that ``exc`` ended (None when no call finished), billed through ``on_final``: the
        rungs it paid; after a model's failure (:class:`ModelCallError`, which lists them) with the failed call."""
        record = run.paid()  # the rung reached: its pair, and the model that failed or was left
        if isinstance(exc, ModelCallError):
            record = self.engine(route).ended(route, exc, record)
        record = None if record is None else self._with_win_rate(record)
        if record is not None:
            quietly(on_final, record)
        return record

    def _record_left(self, route: Route, record: ServedDecision) -> None:
        self.engine(replace(route, ladder=record.ladder)).record_call(route, record, "", None, sample=False)

    def _climbed(self, done: Climbed) -> Climbed:
        """The climb's result with the record's win rate that of its pair (:meth:`_with_win_rate`)."""
        return Climbed(done.value, self._with_win_rate(done.record))

    @staticmethod
    def _with_win_rate(record: ServedDecision) -> ServedDecision:
        """``record`` with its win rate that of its pair (the chosen model and the one served, or the rung a climb
        went up to), as the feedback store records it."""
        ladder = record.ladder
        if ladder is None:
            return record
        p = dict(zip(ladder.models, ladder.predictions, strict=True))
        return replace(record, win_rate=pair_win_rate(p[ladder.strong], p[ladder.weak]))

    def _pair_of(self, route: Route, done: Climbed) -> RoutingEngine:
        """The engine of the climb's pair (the chosen model and the one served): it records and labels the call."""
        return self.engine(replace(route, ladder=done.record.ladder))

    @staticmethod
    def _text_of(pair: RoutingEngine, chunks: list[Any]) -> str:
        return "".join(pair.dispatcher.chunk_text(c) for c in chunks)

    def _on_final(
        self, route: Route, then: Callable[[ServedDecision], None] | None
    ) -> Callable[[ServedDecision], None]:
        def on_final(record: ServedDecision) -> None:
            self._served(route, record)
            if then is not None:
                then(record)

        return on_final

    def _served(self, route: Route, record: ServedDecision) -> None:
        """Learn from a served call: output lengths for the expected costs, the realised cost for the controller
        (the answering attempts' prices; a failed attempt bills nothing). Never raises: the answer is the caller's."""
        try:
            self.ladder.observe(record, route.text)
            if self.controller is not None:
                answered = [a.cost for a in record.attempts if a.error is None]
                if answered and all(c is not None for c in answered):
                    self.controller.spent(float(sum(c for c in answered if c is not None)))
            answered_by = {a.model for a in record.attempts if a.error is None}
            if self.shares is not None and record.model in self.names and record.model in answered_by:
                ticket = route.ladder.ticket if route.ladder is not None else None
                self.shares.served(self.names.index(record.model), ticket)
        except Exception:  # learning must not cost the caller an answer it already has
            logger.exception("%s: could not learn from decision %s", self.owner, record.id)

    def __repr__(self) -> str:
        return f"LadderEngine(owner={self.owner!r}, models={list(self.names)!r}, objective={self.objective})"


__all__ = [
    "COST_RATIO_MEMORY",
    "DEFAULT_OUTPUT_TOKENS",
    "LEVEL_MEMORY",
    "PRICE_REFRESH_S",
    "VERBOSITY_MEMORY",
    "BudgetController",
    "LadderEngine",
    "ModelLadder",
    "pair_win_rate",
]
