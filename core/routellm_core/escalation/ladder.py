"""Offline evaluation of a price ladder: N priced models, a router predicting each one's success per prompt, and
optionally escalation up the ladder when consecutive models' answers disagree.

Inputs are per-prompt tables keyed by model name: quality scores, costs and (for escalation) final answers. The
ladder is the models ordered by mean cost. A router gives ``P(model answers well | prompt)`` per prompt and model
(``predict_success``, e.g. the ``difficulty`` router's), and one objective, swept over its parameter, turns those
predictions and each model's mean cost ``ĉ`` into one routing policy per parameter value:

- ``"cost_weight"`` (the default): each prompt goes to ``argmax_m p_m - λ ĉ_m``, swept over ``λ`` from 0 (best
  predicted model) to infinity (cheapest model). For each ``λ`` this is the best predicted quality under an average
  budget (per 1,000 requests, say): the Lagrangian of "maximise predicted quality subject to mean cost <= B".
- ``"margin"``: the cheapest model predicted within ``δ`` of the best predicted one, swept over ``δ`` in [0, 1].
- ``"max_cost"``: the best predicted model whose mean cost is within a per-request cap, swept over the models'
  costs (N policies).

**Escalation** (``answers`` given): a policy's chosen rung ``s`` is called together with the next rung up the
*climb* (concurrent: one sequential call); if the check says their answers agree, the upper answer is served, else
the climb's next rung is called and compared with the previous one, and so on; the climb's last rung is served as it
is (so a climb with one rung above its start calls only that rung: comparing the two would decide nothing). Every
called model is paid. With a router (:func:`evaluate_ladder`) a prompt's climb skips the costlier rungs
not predicted better than every rung below them on it (a dearer model predicted no better is not worth asking);
without one (:func:`evaluate_choices`) it goes through every costlier rung. This is the online climb
(:mod:`routellm_core.routing.climb`). Both families, with and without escalation, are evaluated and the curve keeps
their frontier.

Each policy is one point (mean cost, mean quality) computed with the *actual* per-prompt costs and qualities; the
curve keeps their upper frontier. Between two policies (or two single models) a request-level random mix is a
policy too, so budgets are read on upper concave envelopes: :meth:`LadderCurve.quality_at` for the router,
:meth:`LadderCurve.hull_quality_at` for the single models (their upper hull: RouterBench's "zero router", the
baseline any router must beat). :meth:`LadderCurve.area_above_hull` averages the difference over budgets evenly
spaced on a log-cost axis from the cheapest to the costliest model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from routellm_core.errors import InvalidInputError
from routellm_core.escalation.checks import AgreementCheck, Check, CheckInput, check_confidence, needs_second_answer

Objective = Literal["cost_weight", "margin", "max_cost"]
OBJECTIVES: tuple[str, ...] = ("cost_weight", "margin", "max_cost")
#: Budgets :meth:`LadderCurve.area_above_hull` averages over.
AREA_BUDGETS = 101
#: At most this many swept values per objective (quantiles of the breakpoints beyond it). ``cost_weight`` has at most
#: ``n_prompts * (n_models - 1)`` breakpoints, so every policy of the benchmarks' ladders is swept.
MAX_SWEEP = 6000
#: Swept values per :func:`choose` call (bounds its ``(values, prompts, models)`` arrays).
_CHUNK = 256
_EPS = 1e-12


def _envelope(points: np.ndarray) -> np.ndarray:
    """The non-decreasing upper concave envelope of (cost, quality) points, from the cheapest point on."""
    pts = points[np.lexsort((-points[:, 1], points[:, 0]))]
    hull: list[np.ndarray] = []
    for p in pts:
        if hull and p[1] <= hull[-1][1] + _EPS:
            continue  # costlier and no better: never on a non-decreasing envelope
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0:
                hull.pop()  # b is on or below the segment a -> p
            else:
                break
        hull.append(p)
    return np.asarray(hull, dtype=np.float64)


def _quality_on(env: np.ndarray, budget: float) -> float:
    if budget < env[0, 0] - _EPS:
        return float("nan")
    return float(np.interp(budget, env[:, 0], env[:, 1]))


def _cost_on(env: np.ndarray, quality: float) -> float | None:
    if quality > env[-1, 1] + _EPS:
        return None
    if quality <= env[0, 1] + _EPS:
        return float(env[0, 0])
    return float(np.interp(quality, env[:, 1], env[:, 0]))


@dataclass(frozen=True, eq=False)
class LadderCurve:
    """A router's cost-quality frontier on a price ladder, next to the ladder's single models.

    Attributes:
        models: The ladder, cheapest (by mean cost) first.
        points: ``(k, 2)``: mean cost and mean quality of each frontier policy, by increasing cost.
        calls: Mean sequential model calls per request of each frontier policy.
        shares: ``(k, n_models)``: share of requests each model serves under each frontier policy.
        escalated: Share of requests that went past the first call under each frontier policy.
        settings: Each frontier policy's objective, swept value and whether it escalates.
        singles: Each model's mean cost and mean quality.
        hull: The single models' upper hull: ``(h, 2)`` points (mean cost, mean quality).
        n_prompts: Prompts evaluated.
        n_policies: Policies evaluated before keeping the frontier.
    """

    models: tuple[str, ...]
    points: np.ndarray
    calls: np.ndarray
    shares: np.ndarray
    escalated: np.ndarray
    settings: list[dict[str, Any]]
    singles: dict[str, tuple[float, float]]
    hull: np.ndarray
    n_prompts: int
    n_policies: int
    _envelope: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_envelope", _envelope(self.points))

    @property
    def budget_range(self) -> tuple[float, float]:
        """Mean cost of the cheapest and of the costliest single model."""
        costs = [c for c, _ in self.singles.values()]
        return min(costs), max(costs)

    def quality_at(self, budget: float) -> float:
        """The router's best mean quality at mean cost ``budget`` or less (its policies mixed where that helps;
        NaN below its cheapest policy)."""
        return _quality_on(self._envelope, budget)

    def hull_quality_at(self, budget: float) -> float:
        """The best mean quality a random mix of single models reaches at mean cost ``budget`` or less."""
        return _quality_on(self.hull, budget)

    def cost_for(self, quality: float) -> float | None:
        """The router's least mean cost reaching mean ``quality`` (None: it never does)."""
        return _cost_on(self._envelope, quality)

    def hull_cost_for(self, quality: float) -> float | None:
        """The least mean cost at which mixing single models reaches mean ``quality``."""
        return _cost_on(self.hull, quality)

    def budgets(self, n: int = AREA_BUDGETS) -> np.ndarray:
        """``n`` budgets evenly spaced on a log-cost axis from the cheapest to the costliest single model."""
        lo, hi = self.budget_range
        if lo <= 0:
            raise InvalidInputError("area_above_hull needs positive mean costs (a log-cost axis)")
        return np.geomspace(lo, hi, n)

    def area_above_hull(self, n: int = AREA_BUDGETS) -> float:
        """Mean of (router quality - hull quality) over :meth:`budgets`: positive when the router beats mixing
        single models. Budgets below the router's cheapest policy (none, when a policy sends everything to the
        cheapest model, as every swept objective does) are left out."""
        diffs = [self.quality_at(b) - self.hull_quality_at(b) for b in self.budgets(n)]
        return float(np.nanmean(diffs))

    def as_dict(self) -> dict[str, Any]:
        """The curve, hull and single models as plain lists, with the area above the hull."""
        return {
            "models": list(self.models),
            "cost": self.points[:, 0].tolist(),
            "quality": self.points[:, 1].tolist(),
            "calls": self.calls.tolist(),
            "escalated": self.escalated.tolist(),
            "shares": self.shares.tolist(),
            "settings": self.settings,
            "singles": {m: {"cost": c, "quality": q} for m, (c, q) in self.singles.items()},
            "hull": {"cost": self.hull[:, 0].tolist(), "quality": self.hull[:, 1].tolist()},
            "area_above_hull": self.area_above_hull(),
            "n_prompts": self.n_prompts,
            "n_policies": self.n_policies,
        }


def _table(table: Mapping[str, Sequence[Any]], models: Sequence[str], what: str, n: int) -> np.ndarray:
    out = np.empty((len(models), n))
    for j, m in enumerate(models):
        if m not in table:
            raise InvalidInputError(f"{what} has no entry for model {m!r}")
        try:
            values = np.asarray(list(table[m]), dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{what}[{m!r}] must be numbers") from None
        if values.shape != (n,):
            raise InvalidInputError(f"{what}[{m!r}] has {values.shape[0]} values for {n} prompts")
        if not np.isfinite(values).all():
            raise InvalidInputError(f"{what}[{m!r}] holds NaN or infinite values")
        out[j] = values
    return out


@dataclass(frozen=True)
class _Ladder:
    """The checked tables, rows in ladder order (cheapest first)."""

    models: tuple[str, ...]
    quality: np.ndarray  # (N, n)
    costs: np.ndarray  # (N, n)
    agree: dict[tuple[int, int], np.ndarray] | None  # (i, j), i < j: rung i's answer agrees with rung j's, (n,)
    pred: np.ndarray | None = None  # (n, N): the router's predictions, which decide each prompt's climb


def _ladder(
    quality: Mapping[str, Sequence[float]],
    costs: Mapping[str, Sequence[float]],
    answers: Mapping[str, Sequence[Any]] | None,
    check: str | Check,
    check_threshold: float,
) -> tuple[_Ladder, np.ndarray]:
    """The ladder, and the permutation from ``quality``'s key order to ladder order."""
    names = list(quality)
    if len(names) < 2:
        raise InvalidInputError(f"a ladder needs at least two models, got {names}")
    lengths = {len(list(v)) for v in quality.values()}
    if len(lengths) != 1 or 0 in lengths:
        raise InvalidInputError("quality must give every model the same, non-zero number of prompts")
    n = lengths.pop()
    q = _table(quality, names, "quality", n)
    c = _table(costs, names, "costs", n)
    if (c < 0).any():
        raise InvalidInputError("costs must not be negative")
    order = np.argsort(c.mean(axis=1), kind="stable")
    models = tuple(names[j] for j in order)
    agree = None
    if answers is not None:
        if isinstance(check, str):
            if check != "agreement":
                raise InvalidInputError(f"unknown ladder check {check!r}; expected 'agreement' or a Check object")
            check = AgreementCheck()
        if not needs_second_answer(check):
            raise InvalidInputError(
                f"the ladder's escalation compares consecutive models' answers; {getattr(check, 'name', check)!r} "
                "reads one answer (score a one-answer check with evaluate_escalation)"
            )
        rows = []
        for m in models:
            if m not in answers:
                raise InvalidInputError(f"answers has no entry for model {m!r}")
            col = list(answers[m])
            if len(col) != n:
                raise InvalidInputError(f"answers[{m!r}] has {len(col)} values for {n} prompts")
            rows.append(col)
        agree = {
            (i, j): check_confidence(check, CheckInput(first=rows[i], others=[rows[j]])) >= check_threshold
            for i in range(len(models))
            for j in range(i + 1, len(models))
        }
    return _Ladder(models, q[order], c[order], agree), order


def _outcomes(ladder: _Ladder, escalate: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per starting rung and prompt: cost, quality, sequential calls and the rung that serves, each ``(N, n)``."""
    q, c = ladder.quality, ladder.costs
    k, n = q.shape
    rung = np.arange(k)[:, None] * np.ones(n, dtype=int)
    if not escalate or ladder.agree is None:
        return c.copy(), q.copy(), np.ones((k, n)), rung.copy()
    cost, served, called = c.copy(), rung.copy(), np.zeros((k, n))
    cols = np.arange(n)
    for s in range(k - 1):
        done = np.zeros(n, dtype=bool)
        current = np.full(n, s)  # the last rung called: the next one is checked against it
        best = ladder.pred[:, s].copy() if ladder.pred is not None else None
        for r in range(s + 1, k):
            step = ~done if best is None else ~done & (ladder.pred[:, r] > best)  # type: ignore[index]
            agree = np.zeros(n, dtype=bool)
            for i in range(s, r):
                on = current == i
                agree[on] = ladder.agree[(i, r)][on]
            cost[s] += np.where(step, c[r], 0.0)
            called[s] += step
            served[s] = np.where(step, r, served[s])
            done |= step & agree
            current = np.where(step, r, current)
            if best is not None:
                best = np.where(step, ladder.pred[:, r], best)  # type: ignore[index]
        # one rung above the start: comparing the two would decide nothing, so only that rung is called
        direct = np.full(n, s == k - 2) if ladder.pred is None else _rungs_above(ladder.pred, s) == 1
        cost[s] -= np.where(direct, c[s], 0.0)
    qual = q[served, cols[None, :].repeat(k, axis=0)]
    return cost, qual, np.maximum(called, 1.0), served


def _rungs_above(pred: np.ndarray, s: int) -> np.ndarray:
    """Per prompt, how many costlier rungs a climb from rung ``s`` goes through (each predicted better than every
    rung before it on the climb)."""
    best, count = pred[:, s].copy(), np.zeros(len(pred), dtype=int)
    for r in range(s + 1, pred.shape[1]):
        up = pred[:, r] > best
        count += up
        best = np.where(up, pred[:, r], best)
    return count


def _sweep_values(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    v = np.unique(values[np.isfinite(values) & (values > lo) & (values < hi)])
    if len(v) > MAX_SWEEP:
        v = np.unique(np.quantile(v, np.linspace(0, 1, MAX_SWEEP)))
    return np.r_[lo, v, hi]


def choose(pred: np.ndarray, cost: np.ndarray, objective: str, values: np.ndarray) -> np.ndarray:
    """The model each policy picks per prompt: ``(P, n)`` indices into the models.

    Args:
        pred: ``(n, N)`` predicted P(model answers well) per prompt and model.
        cost: Expected cost per model, ``(N,)`` or per prompt ``(n, N)``.
        objective: ``"cost_weight"`` (``argmax p - value * cost``), ``"margin"`` (the cheapest model predicted
            within ``value`` of the best) or ``"max_cost"`` (the best predicted model costing at most ``value``;
            the cheapest when none does).
        values: ``(P,)`` the objective's parameter per policy.

    Raises:
        InvalidInputError: An unknown objective.
    """
    cost = np.broadcast_to(np.asarray(cost, dtype=np.float64), pred.shape)
    v = np.asarray(values, dtype=np.float64)[:, None, None]
    if objective == "cost_weight":
        with np.errstate(invalid="ignore"):  # inf * 0 for "infinite" weights on free models
            score = np.nan_to_num(pred[None] - v * cost[None], nan=0.0, neginf=-np.inf)
        # ties go to the cheaper model: argmax over the models sorted by cost
        return _cheapest_first(score, cost)
    if objective == "margin":
        gap = pred.max(axis=1, keepdims=True) - pred
        ok = gap[None] <= v + _EPS
        return _cheapest_first(np.where(ok, -cost[None], -np.inf), cost)
    if objective == "max_cost":
        allowed = cost[None] <= v + _EPS
        score = np.where(allowed, pred[None], -np.inf)
        cheapest = np.argmin(cost, axis=1)[None].repeat(len(v), axis=0)
        return np.where(allowed.any(axis=2), _cheapest_first(score, cost), cheapest)
    raise InvalidInputError(f"unknown objective {objective!r}; expected one of {list(OBJECTIVES)}")


def _cheapest_first(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """``argmax`` of ``score`` ``(P, n, N)`` over the models, ties going to the cheaper model."""
    order = np.argsort(cost, axis=1, kind="stable")  # (n, N)
    ranked = np.take_along_axis(score, order[None].repeat(len(score), axis=0), axis=2)
    best = np.argmax(ranked, axis=2)
    return np.take_along_axis(order[None].repeat(len(score), axis=0), best[..., None], axis=2)[..., 0]


def _choices(pred: np.ndarray, est_cost: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """Rung per policy and prompt ``(P, n)``, and each policy's swept value; ``pred`` is ``(n, N)``."""
    if objective == "cost_weight":
        # one λ inside each interval between breakpoints (never on one, where rounding may break the tie towards the
        # dearer rung and lose the next interval's policy), then "infinity": the cheapest rung everywhere
        b = _sweep_values(_cost_weight_breakpoints(pred, est_cost), 0.0, np.inf)[1:-1]
        inner = (b[1:] + b[:-1]) / 2 if len(b) else b
        values = np.r_[0.0, inner, 2.0 * b[-1:] + 1.0, 1e300]
    elif objective == "margin":
        values = _sweep_values((pred.max(axis=1, keepdims=True) - pred).reshape(-1), 0.0, 1.0)
    elif objective == "max_cost":
        values = np.sort(est_cost)
    else:
        raise InvalidInputError(f"unknown objective {objective!r}; expected one of {list(OBJECTIVES)}")
    chunks = [choose(pred, est_cost, objective, values[i : i + _CHUNK]) for i in range(0, len(values), _CHUNK)]
    return np.concatenate(chunks), values


def _cost_weight_breakpoints(pred: np.ndarray, est_cost: np.ndarray) -> np.ndarray:
    """The λ > 0 at which a prompt's best rung under ``p - λ ĉ`` changes: two rungs tie there and none is better."""
    lo, hi = np.triu_indices(len(est_cost), 1)
    dc = est_cost[hi] - est_cost[lo]  # rungs are cheapest first: >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(dc > 0, (pred[:, hi] - pred[:, lo]) / dc, np.nan)  # (n, pairs)
    lam = np.where(lam > 0, lam, np.nan)
    tie = pred[:, lo] - np.nan_to_num(lam) * est_cost[lo]
    best = np.max(pred[:, None, :] - np.nan_to_num(lam)[..., None] * est_cost, axis=2)
    return lam[np.isfinite(lam) & (best <= tie + 1e-9)]


def _curve(
    ladder: _Ladder, families: list[tuple[np.ndarray, list[dict[str, Any]]]], escalations: Sequence[bool]
) -> LadderCurve:
    k, n = ladder.quality.shape
    cols = np.arange(n)
    costs, quals, calls, shares, esc, settings = [], [], [], [], [], []
    for escalate in escalations:
        cost, qual, ncalls, served = _outcomes(ladder, escalate)
        for choice, info in families:
            costs.append(cost[choice, cols].mean(axis=1))
            quals.append(qual[choice, cols].mean(axis=1))
            calls.append(ncalls[choice, cols].mean(axis=1))
            s = served[choice, cols]
            shares.append(np.stack([(s == j).mean(axis=1) for j in range(k)], axis=1))
            esc.append((ncalls[choice, cols] > 1).mean(axis=1))
            settings += [{**d, "escalate": bool(escalate and ladder.agree is not None)} for d in info]
    cost_all, qual_all = np.concatenate(costs), np.concatenate(quals)
    idx = np.lexsort((-qual_all, cost_all))
    keep: list[int] = []
    best = -np.inf
    for i in idx:
        if qual_all[i] > best + _EPS:
            keep.append(int(i))
            best = qual_all[i]
    kk = np.asarray(keep, dtype=int)
    singles = {m: (float(ladder.costs[j].mean()), float(ladder.quality[j].mean())) for j, m in enumerate(ladder.models)}
    return LadderCurve(
        models=ladder.models,
        points=np.column_stack([cost_all[kk], qual_all[kk]]),
        calls=np.concatenate(calls)[kk],
        shares=np.concatenate(shares)[kk],
        escalated=np.concatenate(esc)[kk],
        settings=[settings[i] for i in kk],
        singles=singles,
        hull=_envelope(np.array(list(singles.values()))),
        n_prompts=n,
        n_policies=len(cost_all),
    )


def _predictions(router: Any, prompts: Sequence[str], names: list[str], priors: Any, n: int) -> np.ndarray:
    if hasattr(router, "predict_success"):
        kwargs = {"priors": priors} if priors else {}
        pred = np.asarray(router.predict_success(list(prompts), names, **kwargs), dtype=np.float64)
    elif isinstance(router, Mapping):
        pred = _table(router, names, "router predictions", n).T
    else:
        try:
            pred = np.asarray(router, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(
                "router must have predict_success(texts, models), or be predictions: model -> per-prompt "
                "values, or an (n_prompts, n_models) array in quality's model order"
            ) from None
    if pred.shape != (n, len(names)):
        raise InvalidInputError(f"router predictions have shape {pred.shape}, expected {(n, len(names))}")
    if not np.isfinite(pred).all():
        raise InvalidInputError("router predictions hold NaN or infinite values")
    return pred


def evaluate_ladder(
    router: Any,
    prompts: Sequence[str],
    quality: Mapping[str, Sequence[float]],
    costs: Mapping[str, Sequence[float]],
    *,
    answers: Mapping[str, Sequence[Any]] | None = None,
    objective: Objective = "cost_weight",
    check: str | Check = "agreement",
    check_threshold: float = 0.5,
    priors: Mapping[str, Any] | None = None,
) -> LadderCurve:
    """A router's cost-quality curve on a price ladder, the single models and their hull (module docstring).

    Args:
        router: Anything with ``predict_success(texts, models)`` (the ``difficulty`` router), or its
            predictions: model -> per-prompt P(answers well), or an ``(n_prompts, n_models)`` array with columns
            in ``quality``'s key order.
        prompts: The prompts, aligned with every table.
        quality: Model name -> quality per prompt (e.g. 0/1 correct); its keys are the ladder.
        costs: Model name -> cost per prompt (e.g. USD, priced per token).
        answers: Model name -> final answer per prompt (None: none extracted): escalation along the ladder.
        objective: ``"cost_weight"`` (default), ``"margin"`` or ``"max_cost"`` (module docstring).
        check: How consecutive rungs' answers are compared: ``"agreement"`` (kind guessed per answer) or a
            :class:`~routellm_core.escalation.checks.Check` such as ``AgreementCheck(kind="number")``.
        check_threshold: The answers agree when the check's confidence is at least this.
        priors: Priors for models the router has no profile for (passed to ``predict_success``).

    Raises:
        InvalidInputError: Fewer than two models, a model missing from a table, lengths that differ, a value
            that is not a finite number, negative costs, or an unknown objective or check.
    """
    if objective not in OBJECTIVES:
        raise InvalidInputError(f"unknown objective {objective!r}; expected one of {list(OBJECTIVES)}")
    ladder, order = _ladder(quality, costs, answers, check, check_threshold)
    n = ladder.quality.shape[1]
    if len(prompts) != n:
        raise InvalidInputError(f"{len(prompts)} prompts for {n} quality values per model")
    pred = _predictions(router, prompts, list(quality), priors, n)[:, order]
    ladder = replace(ladder, pred=pred)
    choice, values = _choices(pred, ladder.costs.mean(axis=1), objective)
    info = [{"objective": objective, "value": float(v)} for v in values]
    return _curve(ladder, [(choice, info)], (False, True) if answers is not None else (False,))


def evaluate_choices(
    choices: np.ndarray | Sequence[Sequence[int]],
    quality: Mapping[str, Sequence[float]],
    costs: Mapping[str, Sequence[float]],
    *,
    answers: Mapping[str, Sequence[Any]] | None = None,
    check: str | Check = "agreement",
    check_threshold: float = 0.5,
    name: str = "choices",
) -> LadderCurve:
    """The frontier of explicit routing policies on a ladder (baselines: length cut points, random mixes).

    Args:
        choices: ``(n_policies, n_prompts)``: each policy's model per prompt, as an index into ``quality``'s keys.
        quality: As for :func:`evaluate_ladder`.
        costs: As for :func:`evaluate_ladder`.
        answers: As for :func:`evaluate_ladder` (each policy also escalates along the ladder).
        check: As for :func:`evaluate_ladder`.
        check_threshold: As for :func:`evaluate_ladder`.
        name: Recorded as each policy's objective.

    Raises:
        InvalidInputError: As :func:`evaluate_ladder`, or choices of the wrong shape or out of range.
    """
    ladder, order = _ladder(quality, costs, answers, check, check_threshold)
    k, n = ladder.quality.shape
    ch = np.asarray(choices)
    if ch.ndim != 2 or ch.shape[1] != n or not np.issubdtype(ch.dtype, np.integer):
        raise InvalidInputError(f"choices must be integers of shape (n_policies, {n})")
    if ch.size and (ch.min() < 0 or ch.max() >= k):
        raise InvalidInputError(f"choices must index the {k} models of quality")
    rank = np.empty(k, dtype=int)
    rank[order] = np.arange(k)  # quality's key order -> ladder order
    info = [{"objective": name, "value": float(i)} for i in range(len(ch))]
    return _curve(ladder, [(rank[ch], info)], (False, True) if answers is not None else (False,))


__all__ = ["OBJECTIVES", "LadderCurve", "choose", "evaluate_choices", "evaluate_ladder"]
