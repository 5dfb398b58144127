"""Learning curves: APGR against the number of in-domain labels, warm-started vs trained from scratch.

The benchmark's own golden labels play the user's traffic: for each seed, ``k`` of its prompts (seeded) are the
labels and the rest of it is the test set. On each test set we measure

- **warm start**: the k=0 router warm-started on the ``k`` labels (``fit(battles, init=...)``, defaults);
- **scratch**: the same recipe trained on the ``k`` labels alone;
- **k=0**: the router before any label, trained with the benchmark left out (DC-Router: every source with the
  test prompts removed), so it never saw the benchmark. Two recipes (``--recipe``):

  - ``fast``: mf on the static embedder with the shipped hyperparameters, trained on the battles of
    ``SOURCES`` (protocol (a) of ``bench/quality.py``); scratch is mf from random weights;
  - ``default``: the shipped ``default``'s recipe (``DifficultyRouter()``), trained on the golden labels of
    every shared training source (protocol (a) of ``bench/default_router.py``); scratch is a difficulty router
    on the ``k`` golden labels;
- **length** and **random** (the registry's random router, 10 seeds), as in ``bench/quality.py``.

Five seeds; the tables give mean ± sd. ``k`` stops where fewer than 20% of the benchmark (or 20 prompts) would be
left to test on (MT Bench: k <= 50). Targets (issue 11): the warm start never below the k=0 router beyond noise
(the paired difference's mean + 2 standard errors below 0 counts as below), and at k=200 no more than 0.02 below the
in-domain 5-fold figure, which is protocol (b) of ``bench/quality.py`` for this recipe (the k=0 training set plus
4/5 of the benchmark's labels per fold, pooled out-of-fold scores over the whole benchmark).

Run: ``python -m bench.learning_curves [--recipe fast|default] [--quick]`` (about 5 minutes on 2 cores); writes
``bench/results/learning_curves[_default].json``, ``bench/plots/learning_curves[_default].png`` and the recipe's
section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    DEFAULT_EVAL_LIMIT,
    DEFAULT_PLOTS,
    DEFAULT_RESULTS,
    DEFAULT_TRAIN_LIMIT,
    REPO,
    SEED,
    Timer,
    log,
    machine_info,
    read_json,
    replace_section,
    seeded_subset,
    write_json,
)
from bench.quality import MF_PARAMS, PRETTY, dcrouter_bench, random_result
from routellm_core.data import TRAINING_SOURCES, Benchmark, load_benchmark, training_battles, training_labels
from routellm_core.data.records import GoldenLabel, golden_to_battles, limit_prompts_per_source
from routellm_core.errors import TrainingDataError
from routellm_core.evaluation.metrics import evaluate, length_scores
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE, WinRateModel
from routellm_core.routers.difficulty import DifficultyRouter
from routellm_core.routers.mf import MatrixFactorizationRouter

BENCHMARKS: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench", "dcrouter", "crux", "math_l5")
KS: tuple[int, ...] = (0, 25, 50, 100, 200, 500, 1000)
SOURCES: tuple[str, ...] = ("mmlu", "gsm8k", "mt_bench", "dcrouter", "mmlu_pro")
SEEDS = 5
FOLDS = 5
#: k of the second target, and its tolerance against the in-domain 5-fold APGR.
TARGET_K = 200
TARGET_GAP = 0.02
ROUTERS = ("warm start", "scratch", "k=0 router", "length", "random")
SECTION = "## Learning curves: APGR against in-domain labels (`{recipe}` recipe)"


@dataclass(frozen=True)
class Recipe:
    """How one recipe builds its routers and what it trains on.

    Attributes:
        name: ``fast`` or ``default``.
        sources: The k=0 router's training sources.
        golden: Whether the k=0 router trains on golden labels as they are (else on their battles).
        records: Training records of a list of golden labels (mf: their battles; difficulty: as they are).
        new: An unfitted router for ``(strong, weak, embedder, epochs)``.
        description: What the k=0, warm and scratch routers are, for the report.
    """

    name: str
    sources: tuple[str, ...]
    golden: bool
    records: Callable[[list[GoldenLabel]], list[Any]]
    new: Callable[[str, str, Any, int], WinRateModel]
    description: str

    def base(self, exclude: Sequence[str]) -> list[Any]:
        """The k=0 router's training records with ``exclude`` left out of every source."""
        return (training_labels if self.golden else training_battles)(self.sources, exclude=exclude)


def _mf(strong: str, weak: str, embedder: Any, epochs: int) -> WinRateModel:
    return MatrixFactorizationRouter(
        **{**MF_PARAMS, "epochs": epochs}, strong_model=strong, weak_model=weak, embedder=embedder
    )


def _difficulty(strong: str, weak: str, embedder: Any, epochs: int) -> WinRateModel:
    return DifficultyRouter(strong_model=strong, weak_model=weak, embedder=embedder)


RECIPES: dict[str, Recipe] = {
    "fast": Recipe(
        "fast",
        SOURCES,
        False,
        golden_to_battles,
        _mf,
        f"**k=0 router**: mf on the `fast` recipe trained on the battles of {', '.join(SOURCES)} with the benchmark "
        "left out (protocol (a); DC-Router: its test prompts removed; {limit}), so "
        "it never saw the benchmark. **warm start**: that router warm-started on the k labels "
        "(`train_router('mf', battles, init=router)`: the init's logit refitted by penalised logistic regression, "
        "see README). **scratch**: the same mf recipe trained on the k labels only.",
    ),
    "default": Recipe(
        "default",
        tuple(TRAINING_SOURCES),
        True,
        list,
        _difficulty,
        "**k=0 router**: the shipped `default`'s recipe (`DifficultyRouter()`) trained on the golden labels of "
        f"{', '.join(TRAINING_SOURCES)} with the benchmark left out (protocol (a) of `bench/default_router.py`; "
        "DC-Router: its test prompts removed; {limit}), so it never saw the "
        "benchmark; it scores the benchmark's pair (its profiles where it has them, else its reference pair's). "
        "**warm start**: that router warm-started on the k labels' battles (`train_router('difficulty', battles, "
        "init=router)`: the pair's logit refitted over its standardised features by penalised logistic regression, "
        "see README). **scratch**: a difficulty router trained on the k golden labels only.",
    ),
}


def max_k(n: int) -> int:
    """Largest number of labels that leaves at least 20% of the benchmark, and 20 prompts, to test on."""
    return min(int(n * 0.8), n - 20)


def load(name: str, recipe: Recipe, eval_limit: int | None, train_limit: int | None) -> tuple[Benchmark, list[Any]]:
    """The benchmark (MMLU: the default set's seeded slice) and the k=0 router's training records."""
    if name == "dcrouter":
        from bench.common import Settings

        bench, _ = dcrouter_bench(Settings(eval_limit=eval_limit))
        held = {p.strip() for p in dcrouter_bench(Settings())[0].prompts}
        base = [b for b in recipe.base(()) if b.prompt.strip() not in held]
    else:
        full = load_benchmark(name)
        bench = full.subset(seeded_subset(len(full), eval_limit))
        base = recipe.base([name])
    return bench, limit_prompts_per_source(base, train_limit)


def scores_of(router: WinRateModel, X: np.ndarray | list[str]) -> np.ndarray:
    """Win rates from precomputed embeddings (mf), or from the prompts themselves (difficulty reads their text)."""
    if isinstance(X, np.ndarray):
        return router.predict_from_embeddings(X)
    return router.predict_win_rate(list(X))


def apgr_of(router: WinRateModel, X: Any, bench: Benchmark) -> float:
    return evaluate(scores_of(router, X), bench).apgr


def in_domain_kfold(bench: Benchmark, base: list[Any], X: Any, embedder: Any, args: argparse.Namespace) -> float:
    """Protocol (b) for this recipe: k=0 training set + 4/5 of the labels, pooled out-of-fold APGR."""
    recipe = RECIPES[args.recipe]
    unique = list(dict.fromkeys(bench.prompts))
    order = np.random.default_rng(SEED).permutation(len(unique))
    fold_of = {unique[j]: i % FOLDS for i, j in enumerate(order)}
    folds = np.array([fold_of[p] for p in bench.prompts])
    labels = bench.golden_labels()
    scores = np.zeros(len(bench))
    for f in range(FOLDS):
        test = np.flatnonzero(folds == f)
        train = base + recipe.records([labels[i] for i in np.flatnonzero(folds != f)])
        router = recipe.new(bench.strong_model, bench.weak_model, embedder, args.epochs).fit(train)
        scores[test] = scores_of(router, X[test] if isinstance(X, np.ndarray) else [X[i] for i in test])
    return evaluate(scores, bench).apgr


def curve(name: str, args: argparse.Namespace, embedder: Any) -> dict[str, Any]:
    """One benchmark's learning curve (all k, all seeds) and its in-domain 5-fold figure."""
    recipe = RECIPES[args.recipe]
    with Timer() as t_load:
        bench, base = load(name, recipe, args.eval_limit, args.train_limit)
    # mf scores from precomputed embeddings; difficulty reads the prompts too (its prompt features)
    X: Any = embedder.embed(list(bench.prompts)) if recipe.name == "fast" else list(bench.prompts)
    with Timer() as t_init:
        init = recipe.new(STRONG_REFERENCE, WEAK_REFERENCE, embedder, args.epochs).fit(base)
    log(f"{name}: {len(bench)} prompts, k=0 router on {len(base)} records ({t_init.s:.0f}s)")
    labels = bench.golden_labels()
    ks = [k for k in args.ks if k <= max_k(len(bench))]
    rows: dict[int, dict[str, list[float]]] = {}

    def new() -> WinRateModel:
        return recipe.new(bench.strong_model, bench.weak_model, embedder, args.epochs)

    for k in ks:
        for seed in range(1 if k == 0 else args.seeds):
            order = np.random.default_rng(1000 + seed).permutation(len(bench))
            test = np.sort(order[k:])
            sub = bench.subset(test)
            Xt = X[test] if isinstance(X, np.ndarray) else [X[i] for i in test]
            given = [labels[i] for i in order[:k]]
            battles = golden_to_battles(given)
            row = rows.setdefault(k, {r: [] for r in ROUTERS})
            # the k=0 router scores the benchmark's pair (models in its model space keep their own weights; others
            # start from the reference pair's): a warm start without labels
            row["k=0 router"].append(apgr_of(new().fit([], init=init), Xt, sub))  # type: ignore[call-arg]
            warm = new().fit(battles, init=init)  # type: ignore[call-arg]
            row["warm start"].append(apgr_of(warm, Xt, sub))
            try:
                row["scratch"].append(apgr_of(new().fit(recipe.records(given)), Xt, sub))
            except TrainingDataError:  # too few labels to train (no decided battle, or a model never seen)
                row["scratch"].append(float("nan"))
            row["length"].append(evaluate(length_scores(sub), sub).apgr)
            row["random"].append(random_result(sub).apgr)
        log(f"{name} k={k}: warm {np.mean(rows[k]['warm start']):.3f}, k=0 {np.mean(rows[k]['k=0 router']):.3f}")
    with Timer() as t_kfold:
        kfold = in_domain_kfold(bench, base, X, embedder, args)
    log(f"{name}: in-domain {FOLDS}-fold APGR {kfold:.3f} ({t_kfold.s:.0f}s)")
    return {
        "n_prompts": len(bench),
        "strong_model": bench.strong_model,
        "weak_model": bench.weak_model,
        "q_strong": bench.q_strong,
        "q_weak": bench.q_weak,
        "k0_training_records": len(base),
        "kfold_apgr": kfold,
        "rows": {str(k): v for k, v in rows.items()},
        "seconds": {"load": t_load.s, "k0_fit": t_init.s, "kfold": t_kfold.s},
    }


def targets(entry: dict[str, Any]) -> dict[str, Any]:
    """The two targets: warm never below k=0 beyond noise; warm at k=200 (or the largest k) near the k-fold."""
    worst = None
    below = []
    for k, row in entry["rows"].items():
        if k == "0":
            continue
        diff = np.array(row["warm start"]) - np.array(row["k=0 router"])
        upper = float(diff.mean() + 2 * diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float(diff[0])
        worst = diff.mean() if worst is None else min(worst, diff.mean())
        if upper < 0:
            below.append(int(k))
    ks = [int(k) for k in entry["rows"]]
    k_target = TARGET_K if TARGET_K in ks else max(ks)
    warm = float(np.mean(entry["rows"][str(k_target)]["warm start"]))
    return {
        "below_k0_at": below,
        "worst_mean_diff": worst,
        "target_k": k_target,
        "warm_at_target_k": warm,
        "gap_to_kfold": entry["kfold_apgr"] - warm,
        "within_gap": warm >= entry["kfold_apgr"] - TARGET_GAP,
    }


def plot(data: dict[str, Any], path: Path) -> Path:
    """One panel per benchmark: APGR against k, with the k-fold figure as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(data["benchmarks"])
    fig = Figure(figsize=(4.2 * min(3, len(names)), 3.4 * ((len(names) + 2) // 3)))
    FigureCanvasAgg(fig)
    for i, name in enumerate(names):
        entry = data["benchmarks"][name]
        ax = fig.add_subplot((len(names) + 2) // 3, min(3, len(names)), i + 1)
        ks = [int(k) for k in entry["rows"]]
        x = [max(k, 10) for k in ks]  # log axis: k=0 drawn at 10
        for router, style in zip(ROUTERS, ("-o", "-s", ":", "--", "-.")):
            values = [np.array(entry["rows"][str(k)][router], dtype=float) for k in ks]
            shown = [(xi, v[~np.isnan(v)]) for xi, v in zip(x, values) if (~np.isnan(v)).any()]
            ax.errorbar(
                [xi for xi, _ in shown],
                [v.mean() for _, v in shown],
                yerr=[v.std() for _, v in shown],
                fmt=style,
                label=router,
                capsize=2,
                markersize=3,
                linewidth=1.2,
            )
        ax.axhline(entry["kfold_apgr"], color="black", linestyle="--", linewidth=0.8, label="in-domain 5-fold")
        ax.set_xscale("log")
        ax.set_title(f"{PRETTY.get(name, name)} ({entry['n_prompts']} prompts)", fontsize=9)
        ax.set_xlabel("in-domain labels k (k=0 at 10)", fontsize=8)
        ax.set_ylabel("APGR on the rest", fontsize=8)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def section(data: dict[str, Any] | None, out: Path = REPO / "BENCHMARKS.md") -> list[str]:
    """The ``BENCHMARKS.md`` section of a learning-curves run (empty without results)."""
    if not data:
        return []
    s = data["settings"]
    recipe = RECIPES[s.get("recipe_name", "fast")]
    lines = [
        SECTION.format(recipe=recipe.name),
        "",
        f"- Command: `{s['command']}` ({data['seconds'] / 60:.1f} min on {data['machine']['nproc']} cores"
        + (", **quick run: numbers meaningless**" if s.get("quick") else "")
        + ")",
        "- The benchmark's own labels play your traffic: per seed, k of its prompts are labelled and the rest of it "
        f"is the test set; {s['seeds']} seeds, mean ± sd. "
        + recipe.description.format(
            limit=f"at most {s['train_limit']} prompts per source" if s["train_limit"] else "all of each source"
        )
        + " **in-domain 5-fold**: protocol (b) for this recipe (k=0 training set + 4/5 of the benchmark's labels, "
        "pooled out-of-fold scores on the whole benchmark).",
        "- Targets: the warm start never below the k=0 router beyond noise (paired difference over seeds: mean + "
        f"2 standard errors < 0 counts as below), and at k={TARGET_K} (MT Bench: its largest k) no more than "
        f"{TARGET_GAP} below the in-domain 5-fold APGR (above it counts as met).",
        *[f"- {note}" for note in s.get("notes", [])],
        "",
        "| benchmark | k=0 APGR | in-domain 5-fold | warm start at target k | never below k=0? | ≥ 5-fold − 0.02? |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in data["benchmarks"].items():
        t = entry["targets"]
        k0 = np.mean(entry["rows"]["0"]["k=0 router"])
        below = "yes" if not t["below_k0_at"] else f"**no** (k = {', '.join(map(str, t['below_k0_at']))})"
        within = "yes" if t["within_gap"] else f"**no** ({t['gap_to_kfold']:+.3f})"
        lines.append(
            f"| {PRETTY.get(name, name)} | {k0:.3f} | {entry['kfold_apgr']:.3f} | "
            f"{t['warm_at_target_k']:.3f} (k={t['target_k']}) | {below} | {within} |"
        )
    lines.append("")
    for name, entry in data["benchmarks"].items():
        lines += [
            f"**{PRETTY.get(name, name)}** — {entry['n_prompts']} prompts, strong `{entry['strong_model']}` "
            f"{entry['q_strong']:.3f}, weak `{entry['weak_model']}` {entry['q_weak']:.3f}; in-domain 5-fold APGR "
            f"{entry['kfold_apgr']:.3f}.",
            "",
            "| k | " + " | ".join(ROUTERS) + " | warm − k=0 |",
            "|---|" + "---|" * (len(ROUTERS) + 1),
        ]
        for k, row in entry["rows"].items():
            cells = []
            for router in ROUTERS:
                v = np.array(row[router], dtype=float)
                cells.append("n/a" if np.isnan(v).all() else f"{np.nanmean(v):.3f} ± {np.nanstd(v):.3f}")
            diff = np.array(row["warm start"]) - np.array(row["k=0 router"])
            lines.append(f"| {k} | " + " | ".join(cells) + f" | {diff.mean():+.3f} ± {diff.std():.3f} |")
        lines.append("")
    if data.get("plot"):
        lines += [f"![learning curves]({rel(data['plot'], out)})", ""]
    return lines


def rel(path: str, out: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(out.parent.resolve()))
    except ValueError:
        return path


def results_stem(recipe: str) -> str:
    """File name (no suffix) of a recipe's results and plot: ``learning_curves`` for fast, else suffixed."""
    return "learning_curves" if recipe == "fast" else f"learning_curves_{recipe}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from routellm_core.embedding.static import STATIC_NAME
    from routellm_core.routers.training import training_embedder

    torch.set_num_threads(1)  # as bench/quality.py: deterministic, and no thread thrashing on 2 cores
    start = time.time()
    embedder = training_embedder(STATIC_NAME)
    data: dict[str, Any] = {
        "settings": {
            "command": args.command,
            "benchmarks": list(args.benchmarks),
            "ks": list(args.ks),
            "seeds": args.seeds,
            "eval_limit": args.eval_limit,
            "train_limit": args.train_limit,
            "epochs": args.epochs,
            "quick": args.quick,
            "recipe_name": args.recipe,
            "recipe": {"fast": "fast (mf on the static embedder)", "default": "default (difficulty)"}[args.recipe],
            "notes": list(args.note),
        },
        "machine": machine_info(),
        "benchmarks": {},
    }
    for name in args.benchmarks:
        entry = curve(name, args, embedder)
        entry["targets"] = targets(entry)
        data["benchmarks"][name] = entry
    stem = results_stem(args.recipe)
    data["plot"] = str(plot(data, args.plots_dir / f"{stem}.png"))
    data["seconds"] = time.time() - start
    write_json(args.results_dir / f"{stem}.json", data)
    if args.markdown:
        heading = SECTION.format(recipe=args.recipe)
        replace_section(args.markdown, heading, section(read_json(args.results_dir / f"{stem}.json"), args.markdown))
    return data


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.learning_curves", description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", default=",".join(BENCHMARKS), help="comma list (default: all six)")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="fast", help="the routers' recipe")
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="label counts")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--eval-limit", type=int, default=DEFAULT_EVAL_LIMIT, help="prompts per benchmark (MMLU)")
    parser.add_argument(
        "--train-limit",
        type=int,
        default=None,
        help=f"k=0 prompts per source (default: fast {DEFAULT_TRAIN_LIMIT}, default all; 0: all)",
    )
    parser.add_argument("--epochs", type=int, default=40, help="mf epochs (k=0, scratch and k-fold routers)")
    parser.add_argument("--note", action="append", default=[], help="a line for the report (repeatable)")
    parser.add_argument("--quick", action="store_true", help="smoke test: MT Bench, k <= 25, 2 seeds, tiny data")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--plots-dir", type=Path, default=DEFAULT_PLOTS)
    parser.add_argument("--markdown", type=Path, help="report whose section to update (default: BENCHMARKS.md)")
    parser.add_argument("--no-markdown", action="store_true", help="leave BENCHMARKS.md alone (--quick implies it)")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    shown = [a for i, a in enumerate(given) if a != "--note" and (i == 0 or given[i - 1] != "--note")]
    args.command = " ".join(["python -m bench.learning_curves", *shown])
    if args.note:
        args.command += f" --note ... (x{len(args.note)}, shown below)"
    if args.train_limit is None:
        args.train_limit = DEFAULT_TRAIN_LIMIT if args.recipe == "fast" else None
    args.train_limit = args.train_limit or None
    args.benchmarks = tuple(args.benchmarks.split(","))
    args.ks = tuple(int(k) for k in args.ks.split(","))
    if args.quick:
        args.benchmarks, args.ks, args.seeds = ("mt_bench",), (0, 25), 2
        args.train_limit, args.epochs = 20, 2
    if args.no_markdown or (args.quick and args.markdown is None):
        args.markdown = None
    elif args.markdown is None:
        args.markdown = REPO / "BENCHMARKS.md"
    return run(args)


if __name__ == "__main__":
    main()
