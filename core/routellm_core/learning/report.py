"""Is routing worth it on my traffic? A router's cost-quality metrics on your labelled prompts, with intervals.

:func:`traffic_report` measures APGR, CPT(50%) and CPT(80%) (see :mod:`routellm_core.evaluation.metrics`) on labels from
your own traffic (a feedback store, battles or golden labels), next to the random router and the prompt-length
heuristic, each with a bootstrap 95% interval (prompts resampled with replacement, seeded), and ends in a plain
verdict. Every figure is measured on labels the router did not train on:

- ``<router> (as is)``: the router's own scores. A router that was itself warm-started on labelled traffic is
  replaced here by its init (recorded in its metadata), since it may have trained on these very labels.
- ``<router> + your labels (k-fold)``: for routers that warm-start (``mf``), the labels are split into ``folds``
  folds over prompts; for each fold a router is warm-started from the base router on the other folds and
  scores the held-out one. The pooled out-of-fold scores estimate what ``routellm train --init`` buys you on
  traffic it has not seen.

Quality with pairwise labels: a battle says which model answered a prompt better, not how good either answer
was. A routed prompt therefore scores the chosen model's share of the verdicts on that prompt (a win 1, a tie
1/2, a loss 0): always-strong scores the strong model's win share, always-weak one minus it, and PGR is the share
of that gap a router recovers. Golden labels (a score per model) are used as they are.
"""

from __future__ import annotations

import inspect
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from routellm_core.data import Benchmark
from routellm_core.data.records import Battle, GoldenLabel, compares, pair_battles
from routellm_core.errors import InvalidInputError, RouteLLMError, TrainingDataError
from routellm_core.evaluation.metrics import (
    EvalResult,
    cost_quality_curve,
    evaluate,
    evaluate_curve,
    length_scores,
    plot_cost_quality,
)
from routellm_core.routers.base import WinRateModel
from routellm_core.routers.registry import load_router, pretrained_routers

if TYPE_CHECKING:
    from routellm_core.learning.feedback import FeedbackStore

#: Fewest labelled prompts a report is computed on.
MIN_PROMPTS = 10
QUALITY_NOTE = (
    "quality of a routed prompt = the chosen model's share of the pairwise verdicts on it (win 1, tie 1/2, loss 0)"
)
GOLDEN_NOTE = "quality of a routed prompt = the chosen model's score in your golden labels"


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap 95% interval (percentiles 2.5 and 97.5)."""

    value: float
    low: float
    high: float

    def fmt(self, percent: bool = False) -> str:
        """``0.612 [0.571, 0.650]``, or in percent; ``never`` where the target is not reached."""

        def one(x: float) -> str:
            if not np.isfinite(x):
                return "never"
            return f"{100 * x:.0f}%" if percent else f"{x:.3f}"

        return f"{one(self.value)} [{one(self.low)}, {one(self.high)}]"


@dataclass(frozen=True)
class ReportRow:
    """One router or baseline in a report.

    Attributes:
        name: Label.
        apgr: APGR with its interval.
        cpt50: Strong-call fraction reaching PGR 0.5 (NaN: never) with its interval.
        cpt80: Strong-call fraction reaching PGR 0.8 with its interval.
        result: The full-data :class:`~routellm_core.evaluation.metrics.EvalResult` (its curve feeds the plot).
    """

    name: str
    apgr: Interval
    cpt50: Interval
    cpt80: Interval
    result: EvalResult


@dataclass(frozen=True)
class TrafficReport:
    """What :func:`traffic_report` measured; ``verdict`` is the one-line answer.

    Attributes:
        router: The router the report is about.
        base: The router measured as is (``router``, or its init when ``router`` was warm-started).
        strong_model: The strong model of the labelled pair.
        weak_model: The weak model.
        n_prompts: Labelled prompts.
        n_labels: Labels (battles or golden labels) between the pair.
        q_strong: Quality of always calling strong (see the module docstring).
        q_weak: Quality of always calling weak.
        folds: Folds of the warm-start rows (0: none were computed).
        n_bootstrap: Bootstrap resamples behind the intervals.
        rows: The routers and baselines.
        verdict: The plain answer.
        notes: What else the reader should know (e.g. why a row is missing).
        quality: How a routed prompt's quality is defined for these labels.
        traffic: The labelled prompts as a :class:`Benchmark` (per-prompt quality of each model).
    """

    router: str
    base: str
    strong_model: str
    weak_model: str
    n_prompts: int
    n_labels: int
    q_strong: float
    q_weak: float
    folds: int
    n_bootstrap: int
    rows: tuple[ReportRow, ...]
    verdict: str
    notes: tuple[str, ...]
    quality: str
    traffic: Benchmark

    def to_markdown(self) -> str:
        """The report as Markdown: the data, a table of metrics with intervals, the verdict."""
        lines = [
            f"## Is routing worth it? `{self.router}` on your traffic",
            "",
            f"- {self.n_prompts} labelled prompts ({self.n_labels} labels), strong `{self.strong_model}` vs weak "
            f"`{self.weak_model}`; {self.quality}: always-strong {self.q_strong:.3f}, always-weak {self.q_weak:.3f}.",
            *(
                [
                    f"- 95% intervals from {self.n_bootstrap} bootstrap resamples of the prompts. CPT(x%) = share of "
                    "strong calls needed to recover x% of the strong model's advantage (lower is better)."
                ]
                if self.rows
                else []
            ),
            *[f"- {note}" for note in self.notes],
            "",
        ]
        if self.rows:  # none when the strong model is not preferred: there is no advantage to recover
            lines += ["| router | APGR | CPT(50%) | CPT(80%) |", "|---|---|---|---|"]
            for row in self.rows:
                lines.append(f"| {row.name} | {row.apgr.fmt()} | {row.cpt50.fmt(True)} | {row.cpt80.fmt(True)} |")
            lines.append("")
        lines += [f"**Verdict:** {self.verdict}", ""]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (no curves)."""
        return {
            "router": self.router,
            "base": self.base,
            "strong_model": self.strong_model,
            "weak_model": self.weak_model,
            "n_prompts": self.n_prompts,
            "n_labels": self.n_labels,
            "q_strong": self.q_strong,
            "q_weak": self.q_weak,
            "folds": self.folds,
            "n_bootstrap": self.n_bootstrap,
            "rows": [
                {"name": r.name, **{m: vars(getattr(r, m)) for m in ("apgr", "cpt50", "cpt80")}} for r in self.rows
            ],
            "verdict": self.verdict,
            "notes": list(self.notes),
            "quality": self.quality,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """The cost-quality curves of every row as a PNG (needs the ``plots`` extra)."""
        curves = {f"{r.name} (APGR {r.result.apgr:.3f})": r.result for r in self.rows}
        title = f"{self.router} on your traffic ({self.n_prompts} labelled prompts)"
        return plot_cost_quality(curves, self.traffic, path, title=title)


# ---- labelled traffic ------------------------------------------------------------------------------------
def labelled_traffic(
    labels: Sequence[Battle] | Sequence[GoldenLabel], strong_model: str, weak_model: str, name: str = "your traffic"
) -> tuple[Benchmark, int]:
    """Per-prompt quality of the strong and weak model from battles (win shares) or golden labels (scores).

    Returns:
        The labelled prompts (sorted, so the same labels in any order give the same report) as a
        :class:`Benchmark`, and the number of labels between the pair that went in.

    Raises:
        TrainingDataError: No label compares the two models.
    """
    totals: dict[str, list[float]] = {}
    used = 0
    for item in labels:
        if not compares(item, strong_model, weak_model):
            continue
        if isinstance(item, GoldenLabel):
            s, w = item.scores[strong_model], item.scores[weak_model]
        else:
            s = 0.5 if item.winner == "tie" else float((item.winner == "model_a") == (item.model_a == strong_model))
            w = 1.0 - s
        acc = totals.setdefault(item.prompt, [0.0, 0.0, 0.0])
        acc[0], acc[1], acc[2] = acc[0] + s, acc[1] + w, acc[2] + 1
        used += 1
    if not totals:
        raise TrainingDataError(f"no label compares the strong model {strong_model!r} with the weak {weak_model!r}")
    prompts = sorted(totals)  # folds and bootstrap draws do not depend on the order the labels came in
    strong = np.array([totals[p][0] / totals[p][2] for p in prompts])
    weak = np.array([totals[p][1] / totals[p][2] for p in prompts])
    bench = Benchmark(name, tuple(prompts), strong, weak, strong_model=strong_model, weak_model=weak_model)
    return bench, used


def store_pair(store: FeedbackStore) -> tuple[str, str] | None:
    """The (strong, weak) pair of a feedback store: its decision-backed labels store strong as ``model_a``."""
    pairs = Counter((row.model_a, row.model_b) for row in store.labels() if row.decision_id is not None)
    return pairs.most_common(1)[0][0] if pairs else None


def _pair_name(item: Battle | GoldenLabel) -> str:
    """The models a label compares, for messages: ``a / b`` for a battle, the scored models for a golden label."""
    return (
        " / ".join(sorted((item.model_a, item.model_b))) if isinstance(item, Battle) else ", ".join(sorted(item.scores))
    )


def resolve_pair(
    labels: Sequence[Battle] | Sequence[GoldenLabel],
    router: WinRateModel,
    strong_model: str | None,
    weak_model: str | None,
    hint: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """Which two models the report compares: the ones given, else ``hint`` (a store's), else the router's pair.

    Raises:
        InvalidInputError: Only one of the two is given, or neither the hint nor the router's pair is in the labels.
    """
    if (strong_model is None) != (weak_model is None):
        raise InvalidInputError("give both strong_model and weak_model, or neither")
    if not labels:
        raise InvalidInputError(
            "there are no labels to report on: label traffic first (a judge with label_fraction=, the users' "
            "verdicts with add_verdict, or golden labels)"
        )
    if strong_model is not None and weak_model is not None:
        return strong_model, weak_model
    if hint is not None:
        return hint
    if any(compares(x, router.strong_model, router.weak_model) for x in labels):
        return router.strong_model, router.weak_model
    pairs = Counter(_pair_name(x) for x in labels)
    seen = "; ".join(p for p, _ in pairs.most_common(3))
    raise InvalidInputError(
        f"the labels do not compare the router's pair ({router.strong_model} / {router.weak_model}); they compare "
        f"{seen}: say which is strong (strong_model=..., weak_model=...; --strong-model / --weak-model)"
    )


# ---- the report ------------------------------------------------------------------------------------------
def traffic_report(
    router: str | os.PathLike[str] | WinRateModel,
    labels: Sequence[Battle] | Sequence[GoldenLabel] | FeedbackStore,
    *,
    strong_model: str | None = None,
    weak_model: str | None = None,
    folds: int = 5,
    n_bootstrap: int = 1000,
    seed: int = 0,
    name: str | None = None,
) -> TrafficReport:
    """Measure whether routing with ``router`` pays off on your labelled traffic.

    Args:
        router: A shipped name (``"default"``), a checkpoint folder or a fitted router.
        labels: A :class:`~routellm_core.learning.feedback.FeedbackStore`, battles, or golden labels.
        strong_model: The strong model of the pair to measure; inferred when ``None`` (a store's decision-backed
            labels, else the router's own pair).
        weak_model: The weak model.
        folds: Folds of the warm-start rows (0 or 1 skips them).
        n_bootstrap: Bootstrap resamples for the intervals.
        seed: Seed of the folds, the bootstrap and the random router.
        name: What the report calls the router (default: the name or folder it was given by; a fitted router's
            type, e.g. ``difficulty``). A server names it as its clients do (``default``).

    Raises:
        InvalidInputError: Bad arguments, fewer than :data:`MIN_PROMPTS` labelled prompts, or an unknown pair.
        TrainingDataError: No label between the pair.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0:
        raise InvalidInputError(f"folds must be a non-negative int, got {folds!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 100:
        raise InvalidInputError(f"n_bootstrap must be an int of at least 100, got {n_bootstrap!r}")
    model = router if isinstance(router, WinRateModel) else load_router(router)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInputError(f"name must be a non-empty string, got {name!r:.60}")
    label = name or (model.name if isinstance(router, WinRateModel) else os.fspath(router))
    hint = None
    if hasattr(labels, "battles") and hasattr(labels, "labels"):  # a FeedbackStore
        hint = store_pair(labels)  # type: ignore[arg-type]
        labels = labels.battles()  # type: ignore[union-attr]
    items = list(labels)  # type: ignore[arg-type]
    strong, weak = resolve_pair(items, model, strong_model, weak_model, hint)
    traffic, n_labels = labelled_traffic(items, strong, weak)
    if len(traffic) < MIN_PROMPTS:
        raise InvalidInputError(
            f"only {len(traffic)} labelled prompt(s) compare {strong} with {weak}; a report needs {MIN_PROMPTS}+"
        )
    base, base_label, notes = _base_router(model, label)
    others = Counter(_pair_name(x) for x in items if not compares(x, strong, weak))
    if others:  # e.g. a ladder's store: the figures are about one pair of its models
        seen = "; ".join(f"{pair}: {n}" for pair, n in others.most_common(3))
        count = sum(others.values())
        notes.append(
            f"{count} {'label compares' if count == 1 else 'labels compare'} other models ({seen}), not in these "
            "figures; --strong-model / --weak-model (strong_model= / weak_model=) report on another pair."
        )
    scores: dict[str, np.ndarray] = {f"{base_label} (as is)": base.predict_win_rate(list(traffic.prompts))}
    warm = _kfold_scores(base, items, traffic, strong, weak, folds, seed, notes)
    if warm is not None:
        scores[f"{base_label} + your labels ({folds}-fold)"] = warm
    scores["length"] = length_scores(traffic)
    gap = traffic.q_strong - traffic.q_weak
    if gap <= 0:
        rows: list[ReportRow] = []
        verdict = (
            f"No: on your labelled traffic the weak model ({weak}) is preferred at least as often as the strong "
            f"one (strong's share {traffic.q_strong:.0%}); send everything to the weak model."
        )
    else:
        rows, diffs, no_gap = _bootstrap_rows(traffic, scores, n_bootstrap, seed)
        verdict = _verdict(rows[1] if warm is not None else rows[0], rows, diffs, len(traffic))
        if no_gap >= 0.025:  # strong's advantage is not clear at 95%: say why the intervals are wide
            notes.append(
                f"In {no_gap:.0%} of the bootstrap resamples the weak model was preferred at least as often as the "
                f"strong one: on {len(traffic)} prompts the strong model's advantage is itself uncertain, and APGR "
                "divides by it, so the intervals (over the other resamples) are wide and may leave [0, 1]; label "
                "more traffic to narrow them."
            )
    return TrafficReport(
        router=label,
        base=base_label,
        strong_model=strong,
        weak_model=weak,
        n_prompts=len(traffic),
        n_labels=n_labels,
        q_strong=traffic.q_strong,
        q_weak=traffic.q_weak,
        folds=folds if warm is not None else 0,
        n_bootstrap=n_bootstrap,
        rows=tuple(rows),
        verdict=verdict,
        notes=tuple(notes),
        quality=GOLDEN_NOTE if items and isinstance(items[0], GoldenLabel) else QUALITY_NOTE,
        traffic=traffic,
    )


def _base_router(model: WinRateModel, label: str) -> tuple[WinRateModel, str, list[str]]:
    """The router to measure as is: ``model``, or its init when it was warm-started on labelled traffic."""
    init = model.metadata.get("warm_start", {}).get("init") if isinstance(model.metadata, dict) else None
    if not init:
        trained = model.metadata.get("trained_on_labels") if isinstance(model.metadata, dict) else None
        if not trained:
            return model, label, []
        files = [trained.get("feedback"), *trained.get("battles", []), *trained.get("golden", [])]
        note = (
            f"`{label}` was trained from scratch on labelled traffic ({', '.join(f for f in files if f)}), maybe "
            "these very labels: its figures are then in-sample and optimistic, and its k-fold row starts from a "
            "router that saw every fold. For an honest figure, report on labels it never saw, or warm-start "
            "(`routellm train --init`) and report that router."
        )
        return model, label, [note]
    if isinstance(init, str) and (init in pretrained_routers() or os.path.isdir(init)):
        note = (
            f"`{label}` was warm-started from `{init}` on labelled traffic, maybe these very labels: its rows are "
            f"`{init}` as is, and `{init}` warm-started on the other folds (the recipe that made `{label}`)."
        )
        return load_router(init), init, [note]
    note = (
        f"`{label}` was warm-started on labelled traffic (init `{init}` cannot be reloaded): if these labels were "
        "among them, its figures are optimistic."
    )
    return model, label, [note]


def _kfold_scores(
    base: WinRateModel,
    items: Sequence[Battle] | Sequence[GoldenLabel],
    traffic: Benchmark,
    strong: str,
    weak: str,
    folds: int,
    seed: int,
    notes: list[str],
) -> np.ndarray | None:
    """Out-of-fold scores of routers warm-started from ``base`` on the other folds (None when not possible)."""
    from routellm_core.routers.training import train_router

    if folds < 2:
        return None
    if "init" not in inspect.signature(type(base).fit).parameters:
        notes.append(f"`{base.name}` routers cannot be warm-started, so there is no k-fold row.")
        return None
    if len(traffic) < 2 * folds:
        notes.append(f"{len(traffic)} labelled prompts are too few for {folds} folds: no warm-start row.")
        return None
    battles, _ = pair_battles(items, strong, weak)
    order = np.random.default_rng(seed).permutation(len(traffic))
    fold_of = {traffic.prompts[j]: i % folds for i, j in enumerate(order)}
    out = np.zeros(len(traffic))
    for f in range(folds):
        test = np.array([fold_of[p] == f for p in traffic.prompts])
        train = [b for b in battles if fold_of.get(b.prompt, -1) not in (f, -1)]
        try:
            fitted = train_router(base.name, train, init=base, strong_model=strong, weak_model=weak)
        except RouteLLMError as exc:
            notes.append(f"warm start failed on fold {f + 1}, so there is no k-fold row: {exc}")
            return None
        out[test] = fitted.predict_win_rate([p for p, t in zip(traffic.prompts, test) if t])
    return out


def _bootstrap_rows(
    traffic: Benchmark, scores: dict[str, np.ndarray], n_bootstrap: int, seed: int
) -> tuple[list[ReportRow], dict[str, np.ndarray], float]:
    """Rows with intervals (paired bootstrap over prompts); also each row's APGR minus random's and length's, and
    the share of resamples left out because the strong model was not preferred in them.

    APGR is not confined to [0, 1] (a router that sends the prompts the strong model wins to it first and those the
    weak model wins last does better than always-strong in between: the oracle's APGR is above 1 wherever weak wins
    some prompts; one that does the opposite goes below 0), so neither the figures nor their percentiles are
    clipped. A resample in which the strong model is
    not preferred has no gap to recover: PGR there is undefined (no gap) or measures the wrong way round (a negative
    gap turns the best ranking into the worst), so it is left out, as the report gives no rows on such traffic.
    """
    rng = np.random.default_rng(seed)
    n = len(traffic)
    names = [*scores, "random"]
    samples = {name: np.full((n_bootstrap, 3), np.nan) for name in names}
    no_gap = 0
    for i in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        sub = traffic.subset(idx)
        if sub.q_strong <= sub.q_weak:
            no_gap += 1
            continue  # no gap to recover in this resample
        for name in names:
            s = rng.random(n) if name == "random" else scores[name][idx]
            r = evaluate_curve(*cost_quality_curve(s, sub), sub)
            samples[name][i] = (r.apgr, r.cpt50, r.cpt80)
    full = {name: evaluate(s, traffic, name=name) for name, s in scores.items()}
    # random's expected curve: a constant score ties every prompt, which the curve interpolates as the mean order
    full["random"] = evaluate_curve(*cost_quality_curve(np.zeros(n), traffic), traffic, name="random")
    rows = []
    for name in names:
        lo, hi = np.nanpercentile(samples[name], [2.5, 97.5], axis=0)
        r = full[name]
        rows.append(
            ReportRow(
                name,
                Interval(r.apgr, lo[0], hi[0]),
                Interval(r.cpt50, lo[1], hi[1]),
                Interval(r.cpt80, lo[2], hi[2]),
                r,
            )
        )
    diffs = {
        name: np.stack([samples[name][:, 0] - samples["random"][:, 0], samples[name][:, 0] - samples["length"][:, 0]])
        for name in scores
    }
    return rows, diffs, no_gap / n_bootstrap


def _verdict(primary: ReportRow, rows: Sequence[ReportRow], diffs: dict[str, np.ndarray], n: int) -> str:
    """One plain sentence from the primary row's APGR against random and length (paired bootstrap)."""
    length = next(r for r in rows if r.name == "length")
    d_random, d_length = diffs[primary.name]
    lo_r, hi_r = np.nanpercentile(d_random, [2.5, 97.5])
    lo_l = float(np.nanpercentile(d_length, 2.5))
    apgr = f"APGR {primary.apgr.fmt()}"
    if lo_r > 0 and lo_l > 0:
        cpt80 = primary.cpt80.value
        reach = f"; 80% of the strong model's advantage takes {cpt80:.0%} strong calls" if np.isfinite(cpt80) else ""
        return (
            f"Yes: {primary.name} routes better than random (0.50) and the length heuristic "
            f"({length.apgr.value:.3f}) on your traffic, {apgr}{reach}."
        )
    if lo_r > 0:
        return (
            f"Partly: {primary.name} beats random ({apgr}) but not clearly the length heuristic "
            f"({length.apgr.value:.3f}); routing by prompt length does about as well so far."
        )
    if hi_r < 0:
        return f"No: {primary.name} routes worse than random on your traffic ({apgr}); do not route with it as is."
    return (
        f"Not yet: with {n} labelled prompts, {primary.name} cannot be told apart from random ({apgr} vs 0.50); "
        "label more traffic (intervals narrow roughly with the square root of the count)."
    )


__all__ = [
    "GOLDEN_NOTE",
    "QUALITY_NOTE",
    "Interval",
    "ReportRow",
    "TrafficReport",
    "labelled_traffic",
    "resolve_pair",
    "store_pair",
    "traffic_report",
]
