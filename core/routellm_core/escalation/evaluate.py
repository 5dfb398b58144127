"""Offline evaluation of escalation: the cost-quality curve of "cheap first, check, escalate", pre-routing included.

Inputs are per-prompt tables: every model's final answer (None: none extracted), its quality score and its cost.
``cheap[0]`` answers first; ``cheap[1:]`` give the check answers (called at the same time, so one sequential call).
For a check threshold ``t`` a prompt escalates when the check's confidence is below ``t``; with the prompt router's
win rates, prompts at or above a pre-route threshold go straight to the strong model. Cost accounting per prompt:

- pre-routed: the strong model's cost only (one sequential call);
- otherwise: every cheap model's cost (run concurrently: one sequential call) and, if escalated, the strong model's
  cost too (a second sequential call);
- check threshold 0 means the check is skipped: only ``cheap[0]`` is called and paid (that is prompt-only routing).

Every pair (pre-route threshold, check threshold) is one policy, one point (mean cost, mean quality); the curve keeps
their upper frontier. Between two frontier policies a request-level random mix is also a policy, so
:meth:`EscalationCurve.cost_for` interpolates linearly along the upper concave hull of the frontier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from routellm_core.errors import InvalidInputError
from routellm_core.escalation.checks import (
    AgreementCheck,
    AnswerFeaturesCheck,
    Check,
    CheckInput,
    LogisticCombiner,
    check_confidence,
    shipped_combiner,
)

_EPS = 1e-12


@dataclass(frozen=True, eq=False)
class EscalationCurve:
    """The cost-quality frontier of an escalation policy family.

    Attributes:
        points: ``(k, 2)``: mean cost and mean quality of each frontier policy, by increasing cost.
        calls: Mean sequential model calls per request of each frontier policy.
        strong_share: Share of requests the strong model serves (pre-routed or escalated).
        pre_route_thresholds: Win-rate threshold of each policy (``inf``: nothing pre-routed).
        check_thresholds: Check threshold of each policy (escalate below it; 0: check skipped).
        n_prompts: Prompts evaluated.
        n_policies: Policies evaluated before keeping the frontier.
    """

    points: np.ndarray
    calls: np.ndarray
    strong_share: np.ndarray
    pre_route_thresholds: np.ndarray
    check_thresholds: np.ndarray
    n_prompts: int
    n_policies: int

    @property
    def max_quality(self) -> float:
        """The best mean quality on the curve."""
        return float(self.points[-1, 1])

    def hull_indices(self) -> np.ndarray:
        """Indices of the frontier points on the upper concave hull (cost ascending)."""
        hull: list[int] = []
        pts = self.points
        for i in range(len(pts)):
            while len(hull) >= 2:
                a, b = pts[hull[-2]], pts[hull[-1]]
                # drop b if it lies on or below the segment a -> i
                cross = (b[0] - a[0]) * (pts[i, 1] - a[1]) - (b[1] - a[1]) * (pts[i, 0] - a[0])
                if cross >= 0:
                    hull.pop()
                else:
                    break
            hull.append(i)
        return np.asarray(hull, dtype=int)

    def _locate(self, quality: float) -> tuple[int, int, float] | None:
        q = float(quality)
        hull = self.hull_indices()
        pts = self.points[hull]
        if q > pts[-1, 1] + _EPS:
            return None
        if q <= pts[0, 1] + _EPS:
            return int(hull[0]), int(hull[0]), 0.0
        j = int(np.searchsorted(pts[:, 1], q - _EPS))
        j = min(max(j, 1), len(pts) - 1)
        qa, qb = pts[j - 1, 1], pts[j, 1]
        share = 0.0 if qb - qa <= _EPS else float(np.clip((q - qa) / (qb - qa), 0.0, 1.0))
        return int(hull[j - 1]), int(hull[j]), share

    def _interp(self, quality: float, values: np.ndarray) -> float | None:
        where = self._locate(quality)
        if where is None:
            return None
        a, b, share = where
        return float(values[a] + share * (values[b] - values[a]))

    def cost_for(self, quality: float) -> float | None:
        """The least mean cost reaching mean ``quality`` (a random mix of two frontier policies where needed), or
        None when no policy reaches it."""
        return self._interp(quality, self.points[:, 0])

    def calls_for(self, quality: float) -> float | None:
        """Mean sequential calls per request of the policy :meth:`cost_for` picks."""
        return self._interp(quality, self.calls)

    def strong_share_for(self, quality: float) -> float | None:
        """Share of requests the strong model serves under the policy :meth:`cost_for` picks."""
        return self._interp(quality, self.strong_share)

    def quality_for(self, cost: float) -> float:
        """The best mean quality at mean cost ``cost`` or less (NaN when even the cheapest policy costs more)."""
        pts = self.points[self.hull_indices()]
        if cost < pts[0, 0] - _EPS:
            return float("nan")
        return float(np.interp(cost, pts[:, 0], pts[:, 1]))

    def as_dict(self, hull_only: bool = False) -> dict[str, Any]:
        """The frontier (or only its upper concave hull's points) as plain lists."""
        k = self.hull_indices() if hull_only else np.arange(len(self.points))
        return {
            "cost": self.points[k, 0].tolist(),
            "quality": self.points[k, 1].tolist(),
            "calls": self.calls[k].tolist(),
            "strong_share": self.strong_share[k].tolist(),
            "pre_route_threshold": [None if not np.isfinite(t) else float(t) for t in self.pre_route_thresholds[k]],
            "check_threshold": [None if not np.isfinite(t) else float(t) for t in self.check_thresholds[k]],
            "n_prompts": self.n_prompts,
            "n_policies": self.n_policies,
        }


def _column(table: Mapping[str, Sequence[Any]], model: str, what: str, n: int | None) -> list[Any]:
    if model not in table:
        raise InvalidInputError(f"{what} has no entry for model {model!r}")
    values = list(table[model])
    if n is not None and len(values) != n:
        raise InvalidInputError(f"{what}[{model!r}] has {len(values)} values for {n} prompts")
    return values


def _numbers(values: list[Any], what: str) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be numbers") from None
    if not np.isfinite(out).all():
        raise InvalidInputError(f"{what} holds NaN or infinite values")
    return out


def _confidence(
    check: str | Check | Sequence[float] | np.ndarray,
    first: list[Any],
    others: list[list[Any]],
    win_rates: np.ndarray | None,
    prompts: Sequence[str] | None,
    outputs: Sequence[str | None] | None,
    output_chars: Sequence[float] | None,
) -> np.ndarray | None:
    n = len(first)
    if isinstance(check, str):
        if check == "none":
            return None
        if check == "agreement":
            check = AgreementCheck()
        elif check == "answer_features":
            check = AnswerFeaturesCheck()
        elif check == "combined":
            check = shipped_combiner()
        else:
            raise InvalidInputError(
                f"unknown check {check!r}; expected 'agreement', 'answer_features', 'combined', 'none', a Check object "
                "or per-prompt confidences"
            )
    if isinstance(check, (Check, LogisticCombiner)):
        batch = CheckInput(
            first=first,
            others=others,
            prompts=prompts,
            outputs=outputs,
            output_chars=output_chars,
            win_rates=None if win_rates is None else win_rates.tolist(),
        )
        return check_confidence(check, batch)
    conf = _numbers(list(check), "check confidences")
    if conf.shape != (n,):
        raise InvalidInputError(f"{conf.shape[0]} check confidences for {n} prompts")
    if (conf < 0).any() or (conf > 1).any():
        raise InvalidInputError("check confidences must be in [0, 1]")
    return conf


def evaluate_escalation(
    answers: Mapping[str, Sequence[Any]],
    quality: Mapping[str, Sequence[float]],
    costs: Mapping[str, Sequence[float]],
    *,
    strong: str,
    cheap: Sequence[str],
    check: str | Check | Sequence[float] | np.ndarray = "agreement",
    win_rates: Sequence[float] | np.ndarray | None = None,
    prompts: Sequence[str] | None = None,
    outputs: Sequence[str | None] | None = None,
    output_chars: Sequence[float] | None = None,
) -> EscalationCurve:
    """The cost-quality curve of escalation from ``cheap[0]`` to ``strong`` (module docstring: the accounting).

    Args:
        answers: Model name -> final answer per prompt (None: no answer extracted); needed for the cheap models.
        quality: Model name -> quality score per prompt (e.g. 0/1 correct); needed for ``strong`` and ``cheap[0]``.
        costs: Model name -> cost per prompt; needed for ``strong`` and every cheap model.
        strong: The strong model.
        cheap: ``cheap[0]`` answers first; ``cheap[1:]`` answer for the check.
        check: ``"agreement"`` (final answers compared, kind guessed), ``"answer_features"``, ``"none"`` (no check:
            prompt-only routing), a :class:`~routellm_core.escalation.checks.Check` object (a fitted
            :class:`~routellm_core.escalation.checks.LogisticCombiner` too), or per-prompt confidences in [0, 1].
        win_rates: The prompt router's P(strong beats weak) per prompt: pre-route thresholds are swept too.
        prompts: The prompts (answer-feature checks need them).
        outputs: ``cheap[0]``'s raw outputs (refusal detection), when kept.
        output_chars: ``cheap[0]``'s raw output lengths in characters.

    Raises:
        InvalidInputError: A model is missing from a table, lengths differ, a value is not a finite number, or the
            check is unknown.
    """
    cheap = list(cheap)
    if not cheap:
        raise InvalidInputError("cheap must name at least one model (cheap[0] answers first)")
    if strong in cheap:
        raise InvalidInputError(f"the strong model {strong!r} is also listed as cheap")
    if len(set(cheap)) != len(cheap):
        raise InvalidInputError(f"cheap lists a model twice: {cheap}")
    q_strong = _numbers(_column(quality, strong, "quality", None), f"quality[{strong!r}]")
    n = q_strong.shape[0]
    if n == 0:
        raise InvalidInputError("no prompts to evaluate")
    q_cheap = _numbers(_column(quality, cheap[0], "quality", n), f"quality[{cheap[0]!r}]")
    c_strong = _numbers(_column(costs, strong, "costs", n), f"costs[{strong!r}]")
    c_cheap = [_numbers(_column(costs, m, "costs", n), f"costs[{m!r}]") for m in cheap]
    if any((c < 0).any() for c in [c_strong, *c_cheap]):
        raise InvalidInputError("costs must not be negative")
    no_check = isinstance(check, str) and check == "none"
    first = [None] * n if no_check and cheap[0] not in answers else _column(answers, cheap[0], "answers", n)
    others = [] if no_check else [_column(answers, m, "answers", n) for m in cheap[1:]]
    w = None
    if win_rates is not None:
        w = _numbers(list(np.asarray(win_rates).reshape(-1)), "win_rates")
        if w.shape[0] != n:
            raise InvalidInputError(f"{w.shape[0]} win rates for {n} prompts")
    conf = _confidence(check, first, others, w, prompts, outputs, output_chars)

    order = np.argsort(-w, kind="stable") if w is not None else np.arange(n)
    qs, cs, qc = q_strong[order], c_strong[order], q_cheap[order]
    cc0 = c_cheap[0][order]
    cc_all = np.sum(c_cheap, axis=0)[order]
    if w is not None:
        ws = w[order]
        ends = np.flatnonzero(np.r_[ws[1:] != ws[:-1], True]) + 1
        ks = np.r_[0, ends]
        pre_thr = np.r_[np.inf, ws[ends - 1]]
    else:
        ks = np.array([0])
        pre_thr = np.array([np.inf])

    # rows: check thresholds; row 0 = check skipped (only cheap[0] called, nothing escalated)
    rows_q = [qc]
    rows_c = [cc0]
    rows_e = [np.zeros(n)]
    check_thr = [0.0]
    if conf is not None:
        cs_conf = conf[order]
        thresholds = np.r_[np.unique(conf), np.inf]
        esc = cs_conf[None, :] < thresholds[:, None]
        rows_q.extend(np.where(esc, qs[None, :], qc[None, :]))
        rows_c.extend(cc_all[None, :] + esc * cs[None, :])
        rows_e.extend(esc.astype(np.float64))
        check_thr.extend(thresholds.tolist())
    rq, rc, re_ = np.vstack(rows_q), np.vstack(rows_c), np.vstack(rows_e)

    def suffix(a: np.ndarray) -> np.ndarray:  # sum over positions >= k, for k = 0..n
        tot = np.concatenate([np.zeros((a.shape[0], 1)), np.cumsum(a, axis=1)], axis=1)
        return tot[:, -1:] - tot

    pre_q = np.r_[0.0, np.cumsum(qs)][ks]
    pre_c = np.r_[0.0, np.cumsum(cs)][ks]
    total_q = (pre_q[None, :] + suffix(rq)[:, ks]) / n
    total_c = (pre_c[None, :] + suffix(rc)[:, ks]) / n
    escalated = suffix(re_)[:, ks]
    rest = (n - ks)[None, :]
    calls = (ks[None, :] + rest + escalated) / n
    strong_share = (ks[None, :] + escalated) / n
    thr_check = np.broadcast_to(np.asarray(check_thr)[:, None], total_q.shape)
    thr_pre = np.broadcast_to(pre_thr[None, :], total_q.shape)

    flat = [a.reshape(-1) for a in (total_c, total_q, calls, strong_share, thr_pre, thr_check)]
    idx = np.lexsort((-flat[1], flat[0]))
    keep: list[int] = []
    best = -np.inf
    for i in idx:
        if flat[1][i] > best + _EPS:
            keep.append(int(i))
            best = flat[1][i]
    k = np.asarray(keep, dtype=int)
    return EscalationCurve(
        points=np.column_stack([flat[0][k], flat[1][k]]),
        calls=flat[2][k].copy(),
        strong_share=flat[3][k].copy(),
        pre_route_thresholds=flat[4][k].copy(),
        check_thresholds=flat[5][k].copy(),
        n_prompts=n,
        n_policies=int(flat[0].shape[0]),
    )


__all__ = ["EscalationCurve", "evaluate_escalation"]
