"""Cost-quality metrics as RouteLLM defines them: PGR, APGR, CPT, plus ROC AUC, baselines and plots.

A router gives each benchmark prompt a score (its predicted P(strong beats weak)). Sending the ``k``
highest-scoring prompts to the strong model and the rest to the weak one gives one point of the cost-quality
curve: (strong-call fraction ``k/n``, mean quality). We compute every ``k = 0..n``, so results are exact and
deterministic (RouteLLM samples about ten thresholds and interpolates; on its oracle and baselines the exact
curve reproduces its published figures).

Ties: prompts with equal scores form a group that a threshold cannot split (RouteLLM routes with
``score >= threshold``). Inside a group the curve is interpolated linearly between the group's ends, which is
the expected quality under a random order of the tied prompts. The curve therefore depends neither on the
order of the prompts nor on how a sort breaks ties, and a constant router gives the straight line from weak to
strong (APGR 0.5).

- ``PGR(q) = (q - q_weak) / (q_strong - q_weak)``.
- ``APGR``: area under PGR against the strong-call fraction on [0, 1] (trapezoid rule); random ~ 0.5.
- ``CPT(x)``: the smallest strong-call fraction ``k/n`` whose PGR reaches ``x``; lower is better.
- ``AUC``: ROC AUC of the scores for prompts where strong beats weak against prompts where weak beats strong
  (prompts where they tie are left out); equal scores count one half.

Human-vote battles (Chatbot Arena) score no model per prompt, so they give no cost-quality curve;
:func:`evaluate_battles` instead measures how well the win rate predicts the vote between a strong-tier and a
weak-tier model (pairwise accuracy at a threshold, and ROC AUC); the rule is in its docstring.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from routellm_core._optional import requires_extra
from routellm_core.data import ARENA_STRONG_MODELS, ARENA_WEAK_MODELS, Benchmark
from routellm_core.data.records import Battle
from routellm_core.errors import InvalidInputError, TrainingDataError
from routellm_core.evaluation.scoring import WinRateScorer

Curve = tuple[np.ndarray, np.ndarray]

_EPS = 1e-9


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Metrics of one router on one benchmark.

    Attributes:
        name: Router or baseline name.
        benchmark: Benchmark name.
        apgr: Average performance gap recovered (area under PGR vs strong-call fraction).
        cpt50: Smallest strong-call fraction reaching PGR 0.5 (a fraction in [0, 1], not a percentage).
        cpt80: Smallest strong-call fraction reaching PGR 0.8.
        auc: ROC AUC of the scores (strong-better vs weak-better prompts); NaN where not defined.
        curve: ``(fractions, qualities)``: strong-call fraction ``k/n`` and mean quality, ``k = 0..n``.
        q_strong: Quality of always calling the strong model.
        q_weak: Quality of always calling the weak model.
    """

    name: str
    benchmark: str
    apgr: float
    cpt50: float
    cpt80: float
    auc: float
    curve: Curve
    q_strong: float
    q_weak: float

    @property
    def pgr_curve(self) -> np.ndarray:
        """PGR at each point of the curve."""
        return pgr(self.curve[1], self.q_strong, self.q_weak)

    def cpt(self, target: float) -> float:
        """Smallest strong-call fraction whose PGR reaches ``target`` (NaN if none does)."""
        return _cpt(self.curve[0], self.pgr_curve, target)

    def quality_at(self, fraction: float) -> float:
        """Quality when sending ``fraction`` of the prompts to strong (linear between curve points)."""
        return float(np.interp(fraction, self.curve[0], self.curve[1]))

    def as_dict(self) -> dict[str, Any]:
        """The scalar metrics as a plain dict (no curve)."""
        return {
            "name": self.name,
            "benchmark": self.benchmark,
            "apgr": self.apgr,
            "cpt50": self.cpt50,
            "cpt80": self.cpt80,
            "auc": self.auc,
            "q_strong": self.q_strong,
            "q_weak": self.q_weak,
        }


# ---- metric primitives ----------------------------------------------------------------------------------
def pgr(quality: float | np.ndarray, q_strong: float, q_weak: float) -> float | np.ndarray:
    """Performance gap recovered: ``(quality - q_weak) / (q_strong - q_weak)``.

    Raises:
        TrainingDataError: Strong and weak have the same quality, so there is no gap to recover.
    """
    gap = float(q_strong) - float(q_weak)
    if gap == 0.0:
        raise TrainingDataError("strong and weak models have the same quality; PGR is undefined")
    if isinstance(quality, np.ndarray):
        return (quality - q_weak) / gap
    return (float(quality) - q_weak) / gap


def _score_array(scores: Sequence[float] | np.ndarray, n: int, items: str) -> np.ndarray:
    """``scores`` as a float vector, one per item (a column ``(n, 1)`` is accepted); ``items`` names them."""
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"scores must be numbers, one for each of {n} {items}: {exc}") from None
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise InvalidInputError(f"scores must be one number for each of {n} {items}, got shape {values.shape}")
    if values.shape[0] != n:
        raise InvalidInputError(f"{values.shape[0]} scores for {n} {items}")
    if not np.isfinite(values).all():
        raise InvalidInputError("scores must be finite numbers")
    return values


def _check_scores(scores: Sequence[float] | np.ndarray, bench: Benchmark) -> np.ndarray:
    return _score_array(scores, len(bench), f"prompts of {bench.name!r}")


def cost_quality_curve(scores: Sequence[float] | np.ndarray, bench: Benchmark) -> Curve:
    """The cost-quality curve of routing the highest-scoring prompts to strong.

    Returns:
        ``(fractions, qualities)``, each of length ``n + 1``: strong-call fraction ``k/n`` and mean quality
        when the ``k`` highest-scoring prompts go to strong (tied scores interpolated, see module docstring).
    """
    values = _check_scores(scores, bench)
    n = len(bench)
    order = np.argsort(-values, kind="stable")
    sorted_scores = values[order]
    gain = (bench.strong - bench.weak)[order]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    bounds = np.concatenate([[0], np.flatnonzero(sorted_scores[1:] != sorted_scores[:-1]) + 1, [n]])
    k = np.arange(n + 1)
    group = np.minimum(np.searchsorted(bounds, k, side="right") - 1, len(bounds) - 2)
    start, end = bounds[group], bounds[group + 1]
    gained = cum[start] + (k - start) / (end - start) * (cum[end] - cum[start])
    return k / n, bench.q_weak + gained / n


def _apgr(fractions: np.ndarray, pgrs: np.ndarray) -> float:
    return float(np.sum((pgrs[1:] + pgrs[:-1]) * np.diff(fractions)) / 2.0)


def _cpt(fractions: np.ndarray, pgrs: np.ndarray, target: float) -> float:
    reached = np.flatnonzero(pgrs >= target - _EPS)
    return float(fractions[reached[0]]) if reached.size else float("nan")


def apgr_from_curve(fractions: np.ndarray, qualities: np.ndarray, bench: Benchmark) -> float:
    """APGR of a precomputed curve (trapezoid rule over its fractions)."""
    return _apgr(np.asarray(fractions, dtype=np.float64), pgr(np.asarray(qualities), bench.q_strong, bench.q_weak))


def cpt_from_curve(fractions: np.ndarray, qualities: np.ndarray, bench: Benchmark, target: float = 0.5) -> float:
    """CPT of a precomputed curve: smallest fraction whose PGR reaches ``target`` (NaN if none)."""
    return _cpt(np.asarray(fractions), pgr(np.asarray(qualities), bench.q_strong, bench.q_weak), target)


def apgr(scores: Sequence[float] | np.ndarray, bench: Benchmark) -> float:
    """Average performance gap recovered: area under PGR vs strong-call fraction on [0, 1]."""
    return apgr_from_curve(*cost_quality_curve(scores, bench), bench)


def cpt(scores: Sequence[float] | np.ndarray, bench: Benchmark, target: float = 0.5) -> float:
    """Call-performance threshold: the smallest strong-call fraction whose PGR reaches ``target``."""
    return cpt_from_curve(*cost_quality_curve(scores, bench), bench, target)


def _roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney ROC AUC of positive vs negative scores (equal scores count one half); NaN if a class is empty."""
    if not pos.size or not neg.size:
        return float("nan")
    both = np.concatenate([pos, neg])
    order = np.argsort(both, kind="stable")
    sorted_vals = both[order]
    bounds = np.concatenate([[0], np.flatnonzero(sorted_vals[1:] != sorted_vals[:-1]) + 1, [both.size]])
    avg_rank = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of 1-based ranks start+1..end
    ranks = np.empty(both.size)
    ranks[order] = np.repeat(avg_rank, np.diff(bounds))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2.0
    return float(u / (pos.size * neg.size))


def auc(scores: Sequence[float] | np.ndarray, bench: Benchmark) -> float:
    """ROC AUC of the scores: strong-better prompts (positives) vs weak-better prompts; ties left out.

    Returns:
        The AUC (equal scores count one half), or NaN when either class is empty.
    """
    values = _check_scores(scores, bench)
    diff = bench.strong - bench.weak
    return _roc_auc(values[diff > 0], values[diff < 0])


# ---- baselines ------------------------------------------------------------------------------------------
def oracle_scores(bench: Benchmark) -> np.ndarray:
    """The oracle's scores: ``strong - weak`` quality, so the prompts where strong gains most go first."""
    return np.asarray(bench.strong - bench.weak, dtype=np.float64)


def length_scores(bench: Benchmark) -> np.ndarray:
    """Prompt-length heuristic: longer prompts (in characters) go to strong first."""
    return np.array([len(p) for p in bench.prompts], dtype=np.float64)


def random_router_result(bench: Benchmark, n_seeds: int = 10, seed: int = 0) -> EvalResult:
    """The random router, averaged over ``n_seeds`` seeded draws of uniform scores.

    The curve is the mean of the per-seed curves (so APGR is the mean APGR); AUC is the mean AUC.
    """
    if n_seeds < 1:
        raise InvalidInputError(f"n_seeds must be at least 1, got {n_seeds}")
    rng = np.random.default_rng(seed)
    qualities = np.zeros(len(bench) + 1)
    aucs = []
    fractions = np.arange(len(bench) + 1) / len(bench)
    for _ in range(n_seeds):
        scores = rng.random(len(bench))
        fractions, q = cost_quality_curve(scores, bench)
        qualities += q
        aucs.append(auc(scores, bench))
    mean_auc = float(np.nanmean(aucs)) if not np.isnan(aucs).all() else float("nan")  # NaN: a class is empty
    return evaluate_curve(fractions, qualities / n_seeds, bench, name="random", auc=mean_auc)


# ---- evaluation -----------------------------------------------------------------------------------------
def evaluate_curve(
    fractions: np.ndarray, qualities: np.ndarray, bench: Benchmark, *, name: str = "router", auc: float = float("nan")
) -> EvalResult:
    """Metrics of a precomputed cost-quality curve (e.g. an average of curves)."""
    f = np.array(fractions, dtype=np.float64)  # copies: the result's arrays are frozen, the caller's are not
    q = np.array(qualities, dtype=np.float64)
    if f.shape != q.shape or f.ndim != 1 or f.size < 2:
        raise InvalidInputError("fractions and qualities must be 1-D arrays of the same length (2 or more)")
    if not (np.isfinite(f).all() and np.isfinite(q).all()):
        raise InvalidInputError("fractions and qualities must be finite numbers")
    pgrs = pgr(q, bench.q_strong, bench.q_weak)
    f.flags.writeable = False
    q.flags.writeable = False
    return EvalResult(
        name=name,
        benchmark=bench.name,
        apgr=_apgr(f, pgrs),
        cpt50=_cpt(f, pgrs, 0.5),
        cpt80=_cpt(f, pgrs, 0.8),
        auc=auc,
        curve=(f, q),
        q_strong=bench.q_strong,
        q_weak=bench.q_weak,
    )


def evaluate(scores: Sequence[float] | np.ndarray, bench: Benchmark, name: str = "router") -> EvalResult:
    """All metrics of one set of per-prompt scores on a benchmark.

    Raises:
        InvalidInputError: Wrong number of scores, or non-finite scores.
    """
    fractions, qualities = cost_quality_curve(scores, bench)
    return evaluate_curve(fractions, qualities, bench, name=name, auc=auc(scores, bench))


def evaluate_router(
    router: WinRateScorer,
    bench: Benchmark,
    batch_size: int = 256,
    name: str | None = None,
    *,
    show_progress: bool = False,
) -> EvalResult:
    """Score every benchmark prompt with ``router.predict_win_rate`` (in batches) and evaluate.

    Args:
        router: A fitted router.
        bench: The benchmark.
        batch_size: Prompts per ``predict_win_rate`` call.
        name: Result name; the router's registry name when ``None``.
        show_progress: Show a progress bar over the batches.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    prompts = list(bench.prompts)
    starts = tqdm(range(0, len(prompts), batch_size), desc=f"scoring {bench.name}", disable=not show_progress)
    parts = [router.predict_win_rate(prompts[i : i + batch_size]) for i in starts]
    scores = np.concatenate(parts)
    return evaluate(scores, bench, name=name if name is not None else router.name)


# ---- human-vote battles ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class BattleEvalResult:
    """How well a router's win rates predict human votes between a strong-tier and a weak-tier model.

    Attributes:
        name: Router or baseline name.
        n_battles: Battles counted (strong tier vs weak tier; ties included only with ``ties="weak"``).
        n_strong_wins: Counted battles the strong-tier model won: the positives.
        n_weak_wins: Counted battles the weak-tier model won.
        n_ties: Ties (``tie`` or ``tie (bothbad)``) between the two tiers: negatives with ``ties="weak"``, not
            counted with ``ties="drop"``.
        accuracy: Share of counted battles where ``win rate >= threshold`` agrees with "the strong-tier model won".
        auc: ROC AUC of the win rates, positives vs negatives (equal scores count one half); NaN if a class is empty.
        threshold: The threshold behind ``accuracy``.
        majority_accuracy: Accuracy of always answering the larger class: the floor ``accuracy`` has to beat.
    """

    name: str
    n_battles: int
    n_strong_wins: int
    n_weak_wins: int
    n_ties: int
    accuracy: float
    auc: float
    threshold: float
    majority_accuracy: float

    def as_dict(self) -> dict[str, Any]:
        """The result as a plain dict."""
        return dict(self.__dict__)


def _tier_battles(
    battles: Sequence[Battle], strong_models: Collection[str], weak_models: Collection[str]
) -> tuple[list[int], np.ndarray]:
    """Indices of the battles between the tiers, and each one's outcome: +1 strong tier won, -1 weak won, 0 tie."""
    strong, weak = set(strong_models), set(weak_models)
    if not strong or not weak:
        raise InvalidInputError("strong_models and weak_models must each name at least one model")
    if strong & weak:
        raise InvalidInputError(f"models in both tiers: {sorted(strong & weak)}")
    index: list[int] = []
    outcome: list[int] = []
    for i, b in enumerate(battles):
        if b.model_a in strong and b.model_b in weak:
            strong_side = "model_a"
        elif b.model_b in strong and b.model_a in weak:
            strong_side = "model_b"
        else:
            continue
        index.append(i)
        outcome.append(0 if b.winner == "tie" else 1 if b.winner == strong_side else -1)
    if not index:
        raise TrainingDataError(
            f"no battle pits one of {sorted(strong)} against one of {sorted(weak)}; nothing to evaluate"
        )
    return index, np.array(outcome, dtype=np.int64)


def evaluate_battles(
    scores: Sequence[float] | np.ndarray,
    battles: Sequence[Battle],
    *,
    strong_models: Collection[str] = ARENA_STRONG_MODELS,
    weak_models: Collection[str] = ARENA_WEAK_MODELS,
    ties: Literal["weak", "drop"] = "weak",
    threshold: float = 0.5,
    name: str = "router",
) -> BattleEvalResult:
    """Pairwise accuracy and ROC AUC of win rates against human votes (Chatbot Arena battles).

    The rule: a battle counts when one model is in ``strong_models`` and the other in ``weak_models`` (either
    order); all other battles are ignored. By default the tiers are the Arena data's GPT-4 class (gpt-4, claude-1,
    claude-2) and its open models of 14B parameters or fewer (:data:`~routellm_core.data.ARENA_STRONG_MODELS`,
    :data:`~routellm_core.data.ARENA_WEAK_MODELS`), mirroring RouteLLM's top-tier vs lower-tier pairs; the middle
    (gpt-3.5-turbo, claude-instant-1, palm-2, 30-70B open models) is in neither. The battle's prompt is positive
    when the strong-tier model won the vote. It is negative when the weak-tier model won and, with
    ``ties="weak"`` (the default), when the vote was a tie (``tie`` or ``tie (bothbad)``): the weak model's answer
    was judged no worse, so a strong call would have bought nothing. ``ties="drop"`` leaves ties out instead.

    ``accuracy`` predicts "strong won" when ``score >= threshold`` (how the routers route); compare it with
    ``majority_accuracy``. ``auc`` needs no threshold. On the shared Arena file the default rule keeps 131
    battles: 101 strong-tier wins, 6 weak-tier wins, 24 ties.

    Args:
        scores: One win rate per battle (``P(strong beats weak)`` on the battle's prompt), aligned with ``battles``.
        battles: The battles, e.g. :func:`~routellm_core.data.arena_battles`.
        strong_models: Models of the strong tier.
        weak_models: Models of the weak tier (none may also be in ``strong_models``).
        ties: ``"weak"``: a tie counts as "strong not needed"; ``"drop"``: ties are left out.
        threshold: Threshold for ``accuracy``, in [0, 1].
        name: Result name.

    Raises:
        InvalidInputError: Scores not aligned with the battles or not finite, a bad ``ties``, or overlapping tiers.
        InvalidThresholdError: ``threshold`` is not a number in [0, 1].
        TrainingDataError: No battle pits the two tiers against each other (or only ties, with ``ties="drop"``).
    """
    from routellm_core.decisions import check_threshold

    thr = check_threshold(threshold)
    if ties not in ("weak", "drop"):
        raise InvalidInputError(f"ties must be 'weak' or 'drop', got {ties!r}")
    values = _score_array(scores, len(battles), "battles")
    index, outcome = _tier_battles(battles, strong_models, weak_models)
    picked = values[index]
    n_ties = int((outcome == 0).sum())
    if ties == "drop":
        picked, outcome = picked[outcome != 0], outcome[outcome != 0]
        if not outcome.size:
            raise TrainingDataError("every battle between the two tiers is a tie; nothing to evaluate with ties='drop'")
    positive = outcome == 1
    n_pos = int(positive.sum())
    return BattleEvalResult(
        name=name,
        n_battles=int(outcome.size),
        n_strong_wins=n_pos,
        n_weak_wins=int((outcome == -1).sum()),
        n_ties=n_ties,
        accuracy=float(np.mean((picked >= thr) == positive)),
        auc=_roc_auc(picked[positive], picked[~positive]),
        threshold=thr,
        majority_accuracy=max(n_pos, outcome.size - n_pos) / outcome.size,
    )


def evaluate_router_on_battles(
    router: WinRateScorer,
    battles: Sequence[Battle],
    *,
    strong_models: Collection[str] = ARENA_STRONG_MODELS,
    weak_models: Collection[str] = ARENA_WEAK_MODELS,
    ties: Literal["weak", "drop"] = "weak",
    threshold: float = 0.5,
    batch_size: int = 256,
    name: str | None = None,
) -> BattleEvalResult:
    """Score the prompts of the tier-vs-tier battles with ``router.predict_win_rate`` and :func:`evaluate_battles`.

    Each distinct prompt is scored once, in batches of ``batch_size``; the other arguments are
    :func:`evaluate_battles`'s.
    """
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")
    index, _ = _tier_battles(battles, strong_models, weak_models)
    picked = [battles[i] for i in index]
    prompts = list(dict.fromkeys(b.prompt for b in picked))
    parts = [router.predict_win_rate(prompts[i : i + batch_size]) for i in range(0, len(prompts), batch_size)]
    by_prompt = dict(zip(prompts, np.concatenate(parts).tolist()))
    return evaluate_battles(
        [by_prompt[b.prompt] for b in picked],
        picked,
        strong_models=strong_models,
        weak_models=weak_models,
        ties=ties,
        threshold=threshold,
        name=name if name is not None else router.name,
    )


def format_results(results: Sequence[EvalResult]) -> str:
    """A Markdown table of results: APGR, CPT(50%), CPT(80%), AUC."""
    lines = ["| router | benchmark | APGR | CPT(50%) | CPT(80%) | AUC |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r.name} | {r.benchmark} | {r.apgr:.3f} | {100 * r.cpt50:.1f}% | {100 * r.cpt80:.1f}% | {r.auc:.3f} |"
        )
    return "\n".join(lines)


def plot_cost_quality(
    curves: Mapping[str, Curve | EvalResult],
    bench: Benchmark,
    path: str | os.PathLike[str],
    title: str | None = None,
) -> Path:
    """Plot cost-quality curves (quality vs % strong calls) with the strong and weak levels, as a PNG.

    Args:
        curves: Label -> ``(fractions, qualities)`` or an :class:`EvalResult`.
        bench: The benchmark the curves were computed on.
        path: Output PNG path (parent folders are created).
        title: Figure title; defaults to the benchmark name.

    Returns:
        The path written.
    """
    with requires_extra("plots", "plot_cost_quality"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        fractions, qualities = curve.curve if isinstance(curve, EvalResult) else curve
        ax.plot(np.asarray(fractions) * 100.0, np.asarray(qualities), label=label, linewidth=1.6)
    ax.axhline(bench.q_strong, color="red", linestyle="--", linewidth=1, label=f"{bench.strong_model} (strong)")
    ax.axhline(bench.q_weak, color="grey", linestyle="--", linewidth=1, label=f"{bench.weak_model} (weak)")
    ax.set_xlim(0, 100)
    ax.set_xlabel("Strong model calls (%)")
    ax.set_ylabel("Quality")
    ax.set_title(title or f"Cost-quality on {bench.name} ({len(bench)} prompts)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    return out


__all__ = [
    "BattleEvalResult",
    "Curve",
    "EvalResult",
    "apgr",
    "apgr_from_curve",
    "auc",
    "cost_quality_curve",
    "cpt",
    "cpt_from_curve",
    "evaluate",
    "evaluate_battles",
    "evaluate_curve",
    "evaluate_router",
    "evaluate_router_on_battles",
    "format_results",
    "length_scores",
    "oracle_scores",
    "pgr",
    "plot_cost_quality",
    "random_router_result",
]
