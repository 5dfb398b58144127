"""What the six benchmarks allow a prompt-only router: in-domain ceilings, and which pair the router scores.

Issue 12 asks the default to reach, under protocol (a) (``bench/default_router.py``), an APGR at least the length
heuristic's and at least 0.52 on MMLU, GSM8K, MT Bench, the DC-Router test split, CRUX and MATH-L5. This script
measures how far any router of this kind could get, next to *random*, *length* and *oracle* in the same run:

- **default recipe (a)**: ``DifficultyRouter()`` trained without the benchmark (as ``bench/default_router.py``),
  scoring the reference pair (GPT-4-1106 / Mixtral; DC-Router: its own pair), and scoring the benchmark's own
  pair through ``pairwise_win_rate`` (CRUX: gpt-4-turbo / Mixtral, MATH-L5: gpt-4-turbo / Llama-3-8B);
- **default recipe (b)**: the same, plus the benchmark's own golden labels of four folds out of five (pooled
  out-of-fold scores): what the recipe reaches *with* in-domain labels;
- **ridge on the pair's gain (b)**: an in-domain ridge regression (penalty by generalised cross-validation) from
  the static embedding and the prompt features to the pair's gain (strong score minus weak score), 5-fold: a
  pair-specific router trained on the benchmark itself, the most a linear model of these inputs shows; also on
  the prompt features alone;
- on the benchmarks with many scored models (DC-Router, CRUX, MATH-L5), two routers that **read the answers**
  (not routers, bounds): *true difficulty*, the other models' mean score on the prompt (harder -> strong), and
  *best function of true difficulty*, the pair's mean gain per decile of it (deciles' gains estimated out of
  fold). They say whether "harder prompts to the strong model" is even the right direction.

Random's spread (sd of the 10 seeds' APGR) is printed beside each benchmark: a smaller difference is no difference.

Run: ``python -m bench.routing_ceiling [--targets mmlu,...]`` (about 3 minutes on 2 cores); writes
``bench/results/routing_ceiling.json`` and its section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.common import (
    SEED,
    Settings,
    bench_parser,
    log,
    machine_info,
    publish,
)
from bench.default_router import APGR_FLOOR, SOURCES, TARGETS, _training
from bench.quality import PRETTY, dcrouter_bench, random_result
from routellm_core import data
from routellm_core.data import Benchmark
from routellm_core.data.records import GoldenLabel
from routellm_core.embedding.cache import CachedEmbedder
from routellm_core.embedding.embedders import Embedder, embedder_from_name
from routellm_core.embedding.static import STATIC_NAME
from routellm_core.evaluation.metrics import evaluate, length_scores, oracle_scores
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE
from routellm_core.routers.difficulty import DifficultyRouter, prompt_features
from routellm_core.routers.random import RandomRouter

SECTION = "## What the benchmarks allow: in-domain ceilings and the scored pair"
FOLDS = 5
#: Ridge penalties tried by generalised cross-validation (features standardised).
ALPHAS = np.logspace(-1, 5, 13)
#: In-memory embedding cache size: every training and benchmark prompt (about 60,000) fits.
MEMORY_ENTRIES = 200_000
#: Benchmarks whose golden labels score many models (the answer-reading bounds need them).
MANY_MODELS = ("dcrouter", "crux", "math_l5")
ROWS = (
    "default recipe (a), reference pair",
    "default recipe (a), own pair",
    "default recipe (b), reference pair",
    "default recipe (b), own pair",
    "ridge on the pair's gain (b)",
    "ridge on the pair's gain (b), prompt features only",
    "reads the answers: true difficulty",
    "reads the answers: best function of true difficulty",
)


def ridge_gcv(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Ridge on standardised features, penalty by generalised cross-validation; predictions for ``x_test``."""
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    a, b = (x_train - mean) / scale, (x_test - mean) / scale
    y0 = y_train.mean()
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    uy = u.T @ (y_train - y0)
    best, coef = np.inf, np.zeros(a.shape[1])
    for alpha in ALPHAS:
        shrink = s**2 / (s**2 + alpha)
        rss = float(np.sum((y_train - y0 - u @ (shrink * uy)) ** 2))
        gcv = len(y_train) * rss / max(len(y_train) - float(shrink.sum()), 1.0) ** 2
        if gcv < best:
            best, coef = gcv, vt.T @ (s / (s**2 + alpha) * uy)
    return b @ coef + y0


def _folds(prompts: Sequence[str]) -> np.ndarray:
    unique = sorted(set(prompts))
    order = np.random.default_rng(SEED).permutation(len(unique))
    fold_of = {unique[j]: i % FOLDS for i, j in enumerate(order)}
    return np.array([fold_of[p] for p in prompts])


def _benchmark(target: str) -> tuple[Benchmark, tuple[str, str], set[str], list[GoldenLabel]]:
    """The benchmark, the pair protocol (a) scores, the test prompts to drop from training, its own labels."""
    if target == "dcrouter":
        bench, _ = dcrouter_bench(Settings(eval_limit=None))
        return bench, (bench.strong_model, bench.weak_model), {p.strip() for p in bench.prompts}, []
    bench = data.load_benchmark(target)
    own = data.golden_labels_zeroeval(target) if target in ("crux", "math_l5") else bench.golden_labels(target)
    return bench, (STRONG_REFERENCE, WEAK_REFERENCE), set(), list(own)


def _scores(router: DifficultyRouter, prompts: list[str], pair: tuple[str, str]) -> np.ndarray | None:
    if not all(m in router.models_ for m in pair):
        return None
    return router.pairwise_win_rate(prompts, *pair)


def run_target(target: str, embedder: Embedder) -> dict[str, Any]:
    """Every row for one benchmark."""
    start = time.perf_counter()
    bench, reference, test, own = _benchmark(target)
    if target == "dcrouter":
        own = [g for g in data.golden_labels_dcrouter("test") if g.prompt.strip() in test]
    own_pair = (bench.strong_model, bench.weak_model)
    prompts = list(bench.prompts)
    gain = np.asarray(bench.strong - bench.weak, dtype=np.float64)
    apgr: dict[str, float | None] = {
        "random": random_result(bench).apgr,
        "length": evaluate(length_scores(bench), bench).apgr,
        "oracle": evaluate(oracle_scores(bench), bench).apgr,
    }
    seeds = [evaluate(RandomRouter(seed=s).predict_win_rate(prompts), bench).apgr for s in range(10)]

    def score(name: str, values: np.ndarray | None) -> None:
        apgr[name] = None if values is None else evaluate(values, bench).apgr

    base = _training(target, SOURCES, test, {"labels"})["labels"]
    router = DifficultyRouter(strong_model=reference[0], weak_model=reference[1], embedder=embedder).fit(base)
    score(ROWS[0], router.predict_win_rate(prompts))
    score(ROWS[1], _scores(router, prompts, own_pair))

    folds = _folds(prompts)
    fold_of = dict(zip(prompts, folds))
    in_bench = set(prompts)
    ref_b, own_b = np.zeros(len(bench)), np.zeros(len(bench))
    for f in range(FOLDS):
        train = base + [g for g in own if g.prompt not in in_bench or fold_of[g.prompt] != f]
        fitted = DifficultyRouter(strong_model=reference[0], weak_model=reference[1], embedder=embedder).fit(train)
        rows = np.flatnonzero(folds == f)
        texts = [prompts[i] for i in rows]
        ref_b[rows] = fitted.predict_win_rate(texts)
        own_scores = _scores(fitted, texts, own_pair)
        own_b[rows] = np.nan if own_scores is None else own_scores
    score(ROWS[2], ref_b)
    score(ROWS[3], own_b if np.isfinite(own_b).all() else None)

    feats = prompt_features(prompts)
    x = np.hstack([embedder.embed(prompts).astype(np.float64), feats])
    for name, inputs in ((ROWS[4], x), (ROWS[5], feats)):
        out = np.zeros(len(bench))
        for f in range(FOLDS):
            train_rows, test_rows = folds != f, folds == f
            out[test_rows] = ridge_gcv(inputs[train_rows], gain[train_rows], inputs[test_rows])
        score(name, out)

    extra: dict[str, Any] = {}
    if target in MANY_MODELS:
        by_prompt = {g.prompt: g.scores for g in own}
        scored = [[v for m, v in by_prompt[p].items() if m not in own_pair] for p in prompts]
        others = np.array([np.mean(v) if v else np.nan for v in scored])
        extra["prompts_without_other_models"] = int(np.isnan(others).sum())  # given the mean: no information
        others = np.where(np.isnan(others), np.nanmean(others), others)
        score(ROWS[6], -others)
        rank = np.empty(len(others), dtype=int)  # equal-size deciles; ties (0/1 scores) split in prompt order
        rank[np.argsort(others, kind="stable")] = np.arange(len(others))
        decile = rank * 10 // len(others)
        best = np.zeros(len(bench))
        for f in range(FOLDS):
            train_rows = folds != f
            for d in np.unique(decile[folds == f]):
                cell = train_rows & (decile == d)
                best[(folds == f) & (decile == d)] = gain[cell].mean() if cell.any() else gain[train_rows].mean()
        score(ROWS[7], best)
        extra["gain_by_difficulty_decile"] = [
            round(float(gain[decile == d].mean()), 3) for d in range(int(decile.max()) + 1)
        ]
    seconds = time.perf_counter() - start
    log(f"{target}: " + ", ".join(f"{k} {v:.3f}" for k, v in apgr.items() if v is not None) + f" ({seconds:.0f}s)")
    return {
        "n_prompts": len(bench),
        "own_pair": list(own_pair),
        "reference_pair": list(reference),
        "random_sd": float(np.std(seeds, ddof=1)),
        "apgr": apgr,
        "seconds": seconds,
        **extra,
    }


def _cell(value: float | None, entry: dict[str, Any]) -> str:
    if value is None:
        return "n/a"
    clears = value >= max(entry["apgr"]["length"], APGR_FLOOR)
    return f"**{value:.3f}**" if clears else f"{value:.3f}"


def section(res: dict[str, Any] | None) -> list[str]:
    """The ``BENCHMARKS.md`` section (empty without results)."""
    if not res:
        return []
    targets = res["targets"]
    names = [PRETTY.get(t, t) for t in targets]
    lines = [
        SECTION,
        "",
        f"- Command: `{res['command']}` ({res['seconds'] / 60:.1f} min; {res['machine']['nproc']} CPU cores, "
        f"{res['machine']['cpu_model']}, {res['machine']['date_utc']})",
        "- What any router of this kind could reach (issue 12's targets: at least length and at least "
        f"{APGR_FLOOR} on every benchmark). **(a)**: trained without the benchmark, as `bench/default_router.py`. "
        "**(b)**: plus the benchmark's own labels of 4 folds out of 5, pooled out-of-fold scores. *reference "
        "pair*: GPT-4-1106 / Mixtral (DC-Router: its own pair), what protocol (a) scores; *own pair*: the pair the "
        "benchmark's quality is measured on, through `pairwise_win_rate` (differs on CRUX and MATH-L5). "
        "*ridge on the pair's gain*: a ridge from the static embedding and prompt features to strong minus weak "
        "score, trained on the benchmark itself. *reads the answers*: not routers but bounds, from the other "
        "models' scores on the same prompt (harder -> strong; and the best function of that difficulty).",
        f"- **Bold**: at least length and at least {APGR_FLOOR}. Random's spread (sd over its 10 seeds) is the "
        "noise: a smaller difference is no difference. See `bench/routing_ceiling.py` for the exact protocol.",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(targets),
        "| prompts | " + " | ".join(str(targets[t]["n_prompts"]) for t in targets) + " |",
        "| random (sd) | "
        + " | ".join(f"{targets[t]['apgr']['random']:.3f} (±{targets[t]['random_sd']:.3f})" for t in targets)
        + " |",
        "| length | " + " | ".join(f"{targets[t]['apgr']['length']:.3f}" for t in targets) + " |",
        "| oracle | " + " | ".join(f"{targets[t]['apgr']['oracle']:.3f}" for t in targets) + " |",
    ]
    for row in ROWS:
        lines.append(f"| {row} | " + " | ".join(_cell(targets[t]["apgr"].get(row), targets[t]) for t in targets) + " |")
    deciles = {t: e["gain_by_difficulty_decile"] for t, e in targets.items() if "gain_by_difficulty_decile" in e}
    if deciles:
        lines += [
            "",
            "The pair's mean gain (strong score minus weak score) by decile of true difficulty (the other models' "
            "mean score on the prompt), **hardest decile first**: where the gain peaks on easy prompts, sending hard "
            "prompts to the strong model is the wrong direction.",
            "",
            "| benchmark | " + " | ".join(f"d{i + 1}" for i in range(10)) + " |",
            "|---|" + "---|" * 10,
            *[
                f"| {PRETTY.get(t, t)} | " + " | ".join(f"{g:+.2f}" for g in gains) + " |"
                for t, gains in deciles.items()
            ],
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = bench_parser("bench.routing_ceiling", __doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma list (default: all six)")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    start = time.time()
    embedder = CachedEmbedder(embedder_from_name(STATIC_NAME), max_entries=MEMORY_ENTRIES)  # each prompt once
    res: dict[str, Any] = {
        "command": " ".join(["python -m bench.routing_ceiling", *given]),
        "machine": machine_info(),
        "targets": {t: run_target(t, embedder) for t in args.targets.split(",")},
    }
    res["seconds"] = time.time() - start
    return publish(res, args, "routing_ceiling", SECTION, section)


if __name__ == "__main__":
    main()
