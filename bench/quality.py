"""Routing quality: APGR / CPT(50%) / CPT(80%) of every router and three baselines, in two protocols.

- **(a) leave-one-benchmark-out (LOBO)**: for each of MT Bench, MMLU and GSM8K (by default; ``--benchmarks``
  also takes ZeroEval's ``crux`` and ``math_l5``), routers are trained on the other shared sources with that
  benchmark excluded (its own source skipped, its contaminated and overlapping prompts removed from every other
  source: ``training_battles(..., exclude=[bench])``). ``--sources`` also takes ``arena``, ``crux``, ``math_l5``.
- **(b) in-domain k-fold**: the LOBO training set plus the benchmark's own golden labels from k-1 folds
  (folds over unique prompts, seeded); each prompt is scored by the model that did not see its fold, and
  the pooled out-of-fold scores are evaluated on the whole benchmark.
- **dcrouter**: the DC-Router test split (500 prompts, 9 open models) routed between two of its models,
  trained on every source with the test prompts removed.

Plus cost-quality PNGs, the "% strong calls for 95% of GPT-4 quality" table next to RouteLLM's claims, and
MT Bench against the commercial routers (Martian, Unify) graded in the shared data.

mf / sw_ranking embed each prompt once through the disk-cached MiniLM (``training_embedder()``) and score with
``predict_from_embeddings``. Everything is seeded; a rerun gives the same numbers.

Run alone: ``python -m bench.quality [--quick] [--neural]`` (``python -m bench`` runs everything).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    DEFAULT_EVAL_LIMIT,
    DEFAULT_TRAIN_LIMIT,
    SEED,
    Settings,
    Timer,
    checkpoint_dir,
    log,
    machine_info,
    sample_items,
    seeded_subset,
    write_json,
)
from routellm_core.data import (
    Benchmark,
    data_dir,
    golden_labels_dcrouter,
    load_benchmark,
    training_battles,
)
from routellm_core.data.records import Battle, golden_to_battles, limit_prompts_per_source
from routellm_core.embedding.embedders import Embedder
from routellm_core.evaluation.metrics import (
    EvalResult,
    evaluate,
    evaluate_curve,
    length_scores,
    oracle_scores,
    plot_cost_quality,
)
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE, WinRateModel
from routellm_core.routers.random import RandomRouter

#: mf hyperparameters: the shipped default router's (scripts/train_default.py).
MF_PARAMS: dict[str, Any] = {"dim": 128, "lr": 3e-3, "weight_decay": 1e-5, "noise": 0.1, "seed": SEED}
#: DC-Router pair: the best and a weak model of its train split (mean score 0.62 vs 0.37).
DCROUTER_STRONG = "llama-3.1-nemotron-51b-instruct"
DCROUTER_WEAK = "mistral-7b-instruct-v0.3"
#: RouteLLM's published claims: % GPT-4 calls for 95% of GPT-4 quality (blog / README).
ROUTELLM_CLAIMS: dict[str, list[tuple[str, str, str]]] = {
    "mt_bench": [
        ("26%", "mf", "Chatbot Arena battles only"),
        ("14%", "mf", "Arena + GPT-4-judge-labelled augmentation (Nectar)"),
        ("<15%", "best router", "'cost reduction of over 85%' (Arena + augmentation)"),
    ],
    "mmlu": [("~55%", "best router", "'cost reduction of 45%' (Arena + MMLU-validation golden labels)")],
    "gsm8k": [("~65%", "best router", "'cost reduction of 35%' (Arena + augmentation)")],
}
#: Unify's published MT Bench result in the shared data (GUIDE): 8.758 with 45.6% GPT-4 calls.
UNIFY_PUBLISHED = {"score": 8.758, "strong_calls": 0.456}
NUM_RANDOM_SEEDS = 10
PRETTY = {
    "mt_bench": "MT Bench",
    "mmlu": "MMLU",
    "gsm8k": "GSM8K",
    "crux": "CRUX",
    "math_l5": "MATH-L5",
    "dcrouter": "DC-Router test",
}


# ---- routers -----------------------------------------------------------------------------------------------
class Embedders:
    """The embedders in play, built once: the disk-cached MiniLM and (optionally) the shipped static one."""

    def __init__(self, settings: Settings) -> None:
        from routellm_core.embedding.static import STATIC_NAME
        from routellm_core.routers.training import training_embedder

        # cached: each prompt is embedded once across all the fits of a run (MiniLM's cache is also on disk)
        self.minilm: Embedder = training_embedder()
        self.static = training_embedder(STATIC_NAME) if settings.static else None
        self._memo: dict[tuple[str, str], np.ndarray] = {}

    def embed(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """Embed in chunks (keeps the cache's SQLite queries and memory small)."""
        parts = [embedder.embed(list(texts[i : i + 2048])) for i in range(0, len(texts), 2048)]
        return np.concatenate(parts) if parts else np.zeros((0, 1), dtype=np.float32)


def learned_routers(emb: Embedders, settings: Settings) -> dict[str, Callable[[str, str], WinRateModel]]:
    """Name -> factory(strong, weak) of the embedding routers measured on full benchmarks."""
    from routellm_core.routers.mf import MatrixFactorizationRouter
    from routellm_core.routers.sw_ranking import SWRankingRouter

    out: dict[str, Callable[[str, str], WinRateModel]] = {
        "mf": lambda s, w: MatrixFactorizationRouter(**MF_PARAMS, strong_model=s, weak_model=w, embedder=emb.minilm),
        "sw_ranking": lambda s, w: SWRankingRouter(strong_model=s, weak_model=w, embedder=emb.minilm),
    }
    if emb.static is not None:
        static = emb.static
        out["mf[static]"] = lambda s, w: MatrixFactorizationRouter(
            **MF_PARAMS, strong_model=s, weak_model=w, embedder=static
        )
    return {k: v for k, v in out.items() if settings.wants(k)}


def fit_and_score(
    factory: Callable[[str, str], WinRateModel],
    battles: Sequence[Battle],
    emb: Embedders,
    prompts: Sequence[str],
    settings: Settings,
    strong: str = STRONG_REFERENCE,
    weak: str = WEAK_REFERENCE,
) -> tuple[np.ndarray, WinRateModel, dict[str, float]]:
    """Train a router and score ``prompts`` via precomputed embeddings; returns scores, router, timings."""
    router = factory(strong, weak)
    if hasattr(router, "epochs"):
        router.epochs = settings.mf_epochs  # type: ignore[attr-defined]
    with Timer() as t_fit:
        router.fit(battles)
    embedder = router.get_embedder()
    with Timer() as t_score:
        scores = router.predict_from_embeddings(emb.embed(embedder, prompts))
    return np.asarray(scores, dtype=np.float64), router, {"fit_s": t_fit.s, "score_s": t_score.s}


def random_result(bench: Benchmark, name: str = "random") -> EvalResult:
    """The registry's random router, mean curve over seeds 0..9 (each seed hashes prompts differently)."""
    curves = []
    aucs = []
    for seed in range(NUM_RANDOM_SEEDS):
        r = evaluate(RandomRouter(seed=seed).predict_win_rate(list(bench.prompts)), bench, name=name)
        curves.append(r.curve[1])
        aucs.append(r.auc)
    fractions = np.arange(len(bench) + 1) / len(bench)
    finite = [a for a in aucs if np.isfinite(a)]
    mean_auc = float(np.mean(finite)) if finite else float("nan")
    return evaluate_curve(fractions, np.mean(curves, axis=0), bench, name=name, auc=mean_auc)


def baselines(bench: Benchmark) -> list[EvalResult]:
    """random (10 seeds), oracle, prompt length."""
    return [
        random_result(bench),
        evaluate(oracle_scores(bench), bench, name="oracle"),
        evaluate(length_scores(bench), bench, name="length"),
    ]


# ---- metrics on curves -------------------------------------------------------------------------------------
def first_fraction_reaching(result: EvalResult, quality: float) -> float:
    """Smallest strong-call fraction whose quality reaches ``quality`` (NaN if none)."""
    fractions, qualities = result.curve
    hit = np.flatnonzero(qualities >= quality - 1e-9)
    return float(fractions[hit[0]]) if hit.size else float("nan")


def row(result: EvalResult, **extra: Any) -> dict[str, Any]:
    """Scalar metrics of a result plus the % strong calls for 95% of the strong model's quality."""
    d = result.as_dict()
    d["strong_for_95pct_quality"] = first_fraction_reaching(result, 0.95 * result.q_strong)
    d.update(extra)
    return d


def bench_info(bench: Benchmark, full_size: int) -> dict[str, Any]:
    return {
        "n_prompts": len(bench),
        "full_size": full_size,
        "sliced": len(bench) != full_size,
        "q_strong": bench.q_strong,
        "q_weak": bench.q_weak,
        "strong_model": bench.strong_model,
        "weak_model": bench.weak_model,
    }


def train_info(battles: Sequence[Battle]) -> dict[str, Any]:
    by_source: dict[str, set[str]] = {}
    for b in battles:
        by_source.setdefault(str(b.source), set()).add(b.prompt)
    return {
        "n_battles": len(battles),
        "n_prompts": len({b.prompt for b in battles}),
        "prompts_per_source": {k: len(v) for k, v in sorted(by_source.items())},
    }


# ---- protocols ---------------------------------------------------------------------------------------------
def load_benches(settings: Settings) -> dict[str, tuple[Benchmark, int]]:
    """Each benchmark (seeded subsample when ``eval_limit`` is set) with its full size."""
    out = {}
    for name in settings.benchmarks:
        full = load_benchmark(name)
        out[name] = (full.subset(seeded_subset(len(full), settings.eval_limit)), len(full))
    return out


def lobo(settings: Settings, emb: Embedders, benches: dict[str, tuple[Benchmark, int]]) -> dict[str, Any]:
    """Protocol (a): each benchmark left out of training entirely."""
    out: dict[str, Any] = {}
    for name, (bench, full_size) in benches.items():
        with Timer() as t_load:
            battles = limit_prompts_per_source(training_battles(settings.sources, exclude=[name]), settings.train_limit)
        entry: dict[str, Any] = {
            "bench": bench_info(bench, full_size),
            "train": {**train_info(battles), "sources": [s for s in settings.sources if s != name], "load_s": t_load.s},
            "results": [],
            "timings": {},
            "_scores": {},
        }
        results: list[EvalResult] = baselines(bench)
        for rname, factory in learned_routers(emb, settings).items():
            log(f"LOBO {name}: training {rname} on {len(battles)} battles")
            scores, _, timing = fit_and_score(factory, battles, emb, bench.prompts, settings)
            results.append(evaluate(scores, bench, name=rname))
            entry["timings"][rname] = timing
            entry["_scores"][rname] = scores
            log(f"LOBO {name}: {rname} APGR {results[-1].apgr:.3f} ({timing['fit_s']:.0f}s fit)")
        entry["results"] = [row(r) for r in results]
        entry["_results"] = results  # EvalResult objects for plots (dropped before writing JSON)
        out[name] = entry
    return out


def kfold(settings: Settings, emb: Embedders, benches: dict[str, tuple[Benchmark, int]]) -> dict[str, Any]:
    """Protocol (b): in-domain k-fold; LOBO training set + the benchmark's other folds, pooled out-of-fold."""
    out: dict[str, Any] = {}
    k = settings.folds
    for name, (bench, full_size) in benches.items():
        base = limit_prompts_per_source(training_battles(settings.sources, exclude=[name]), settings.train_limit)
        unique = list(dict.fromkeys(bench.prompts))
        order = np.random.default_rng(SEED).permutation(len(unique))
        fold_of_prompt = {unique[j]: i % k for i, j in enumerate(order)}
        folds = np.array([fold_of_prompt[p] for p in bench.prompts])
        labels = bench.golden_labels(source=name)
        # mf[static] is left out of k-fold to keep the default set short (its protocol-(a) rows show its cost)
        routers = {k: v for k, v in learned_routers(emb, settings).items() if k != "mf[static]"}
        scores = {rname: np.zeros(len(bench)) for rname in routers}
        timings: dict[str, float] = {}
        for f in range(k):
            test = np.flatnonzero(folds == f)
            if not test.size:
                continue
            in_domain = golden_to_battles([labels[i] for i in np.flatnonzero(folds != f)])
            battles = base + in_domain
            for rname, factory in routers.items():
                s, _, timing = fit_and_score(factory, battles, emb, [bench.prompts[i] for i in test], settings)
                scores[rname][test] = s
                timings[rname] = timings.get(rname, 0.0) + timing["fit_s"] + timing["score_s"]
            log(f"k-fold {name}: fold {f + 1}/{k} done")
        results = [evaluate(scores[r], bench, name=r) for r in scores]
        out[name] = {
            "bench": bench_info(bench, full_size),
            "folds": k,
            "train": {
                **train_info(base),
                "in_domain_battles_per_fold": round(len(labels) * (k - 1) / k),
                "sources": [s for s in settings.sources if s != name] + [f"{name} ({k - 1}/{k} folds)"],
            },
            "results": [row(r) for r in results],
            "timings": timings,
            "_results": results,
        }
    return out


def dcrouter_bench(settings: Settings) -> tuple[Benchmark, int]:
    full = Benchmark.from_golden_labels("dcrouter", golden_labels_dcrouter("test"), DCROUTER_STRONG, DCROUTER_WEAK)
    return full.subset(seeded_subset(len(full), settings.eval_limit)), len(full)


def dcrouter(settings: Settings, emb: Embedders) -> dict[str, Any]:
    """DC-Router test split: route between two of its 9 models; test prompts removed from training."""
    bench, full_size = dcrouter_bench(settings)
    test_prompts = {p.strip() for p in dcrouter_bench(Settings())[0].prompts}
    battles = [b for b in training_battles(settings.sources) if b.prompt.strip() not in test_prompts]
    battles = limit_prompts_per_source(battles, settings.train_limit)
    results = baselines(bench)
    timings = {}
    for rname, factory in learned_routers(emb, settings).items():
        log(f"dcrouter: training {rname}")
        scores, _, timing = fit_and_score(
            factory, battles, emb, bench.prompts, settings, DCROUTER_STRONG, DCROUTER_WEAK
        )
        results.append(evaluate(scores, bench, name=rname))
        timings[rname] = timing
    return {
        "bench": bench_info(bench, full_size),
        "train": {**train_info(battles), "sources": list(settings.sources), "note": "DC-Router test prompts removed"},
        "results": [row(r) for r in results],
        "timings": timings,
        "_results": results,
    }


# ---- neural routers (sampled) ------------------------------------------------------------------------------
def neural(
    settings: Settings,
    benches: dict[str, tuple[Benchmark, int]],
    lobo_out: dict[str, Any],
    emb: Embedders,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """bert and causal_llm, LOBO, trained on a seeded sample of reference-pair battles, evaluated on a seeded
    subsample of each benchmark (MT Bench whole); mf / random / oracle / length on the same subsample."""
    from routellm_core.routers.registry import get_router_class

    out: dict[str, Any] = {}
    ckpt_dir = checkpoint_dir(settings)
    for name, (bench, full_size) in benches.items():
        pool = [
            b
            for b in training_battles(settings.sources, exclude=[name])
            if {b.model_a, b.model_b} == {STRONG_REFERENCE, WEAK_REFERENCE}
        ]
        idx = seeded_subset(len(bench), settings.neural_eval if name != "mt_bench" else None)
        sub = bench.subset(idx)
        entry: dict[str, Any] = {
            "bench": {**bench_info(sub, full_size), "sliced": len(sub) != full_size},
            "train": {"pool": len(pool), "sources": [s for s in settings.sources if s != name]},
            "results": [],
            "timings": {},
            "subsample_idx": [int(i) for i in idx],
            "scores": {},
        }
        results = baselines(sub)
        causal_benches = settings.extra.get("causal_benchmarks") or list(benches)
        for rname in [r for r in ("bert", "causal_llm") if settings.wants(r)]:
            if rname == "causal_llm" and name not in causal_benches:
                continue
            max_len = 256 if rname == "bert" else settings.extra.get("causal_max_length", 128)
            params: dict[str, Any] = {"seed": SEED, "max_length": max_len, "epochs": 1, "show_progress": False}
            params.update(
                {"batch_size": 16, "eval_batch_size": 32}
                if rname == "bert"
                else {"batch_size": 8, "eval_batch_size": 16}
            )
            if settings.quick:
                params.update(max_steps=2)
            cls = get_router_class(rname)
            accepted = inspect.signature(cls.__init__).parameters
            params = {k: v for k, v in params.items() if k in accepted}  # the neural routers' APIs still move
            router = cls(**params)
            n_train = settings.neural_train if rname == "bert" else settings.extra.get("neural_train_causal", 200)
            train = sample_items(pool, n_train, seed=SEED)
            entry["train"][f"n_battles_{rname}"] = len(train)
            log(f"neural {name}: training {rname} on {len(train)} battles")
            with Timer() as t_fit:
                router.fit(train)
            with Timer() as t_score:
                scores = router.predict_win_rate(list(sub.prompts))
            results.append(evaluate(scores, sub, name=rname))
            entry["scores"][rname] = [float(x) for x in scores]
            entry["timings"][rname] = {
                "fit_s": t_fit.s,
                "score_s": t_score.s,
                "per_prompt_ms": 1000 * t_score.s / len(sub),
            }
            log(f"neural {name}: {rname} APGR {results[-1].apgr:.3f} fit {t_fit.s:.0f}s score {t_score.s:.0f}s")
            if name == "mt_bench":  # keep one checkpoint of each for the overhead benchmark
                router.save(ckpt_dir / rname)
            entry["results"] = [row(r) for r in results]
            out[name] = entry
            if on_progress is not None:
                on_progress(out)
        entry["results"] = [row(r) for r in results]
        out[name] = entry
    merge_into_neural(out, lobo_out, benches)
    return out


def _scores_path(settings: Settings) -> Path:
    return checkpoint_dir(settings) / "lobo_scores.npz"


def save_lobo_scores(settings: Settings, lobo_out: dict[str, Any]) -> None:
    """Keep protocol-(a) scores of the full benchmarks (for the neural tables' same-subsample rows)."""
    arrays = {f"{b}|{r}": s for b, e in lobo_out.items() for r, s in e["_scores"].items()}
    if arrays and not settings.eval_limit:
        path = _scores_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)


def merge_saved_lobo(settings: Settings) -> None:
    """Merge saved protocol-(a) scores into ``neural.json`` (when both exist)."""
    path, target = _scores_path(settings), settings.results_dir / "neural.json"
    if not (path.is_file() and target.is_file()):
        return
    data = json.loads(target.read_text())
    saved = np.load(path)
    lobo_like: dict[str, Any] = {}
    for key in saved.files:
        b, r = key.split("|", 1)
        lobo_like.setdefault(b, {"_scores": {}})["_scores"][r] = saved[key]
    benches = {name: (load_benchmark(name), len(load_benchmark(name))) for name in data["neural"]}
    merge_into_neural(data["neural"], lobo_like, benches)
    write_json(target, data)


def merge_into_neural(
    neural_out: dict[str, Any], lobo_out: dict[str, Any], benches: dict[str, tuple[Benchmark, int]]
) -> None:
    """Add the protocol-(a) embedding routers (trained on the full training set), scored on the neural
    routers' subsample, so each neural table compares like with like."""
    for name, entry in neural_out.items():
        if name not in lobo_out or name not in benches:
            continue
        bench = benches[name][0]
        if len(bench) != entry["bench"]["full_size"]:
            continue  # this run's benchmark is itself a slice: indices would not match
        idx = np.asarray(entry["subsample_idx"], dtype=np.int64)
        sub = bench.subset(idx)
        added = {f"{r} (LOBO, full training)": s for r, s in lobo_out[name]["_scores"].items() if len(s) == len(bench)}
        entry["results"] = [r for r in entry["results"] if r["name"] not in added]
        entry["results"] += [row(evaluate(s[idx], sub, name=label)) for label, s in added.items()]


# ---- claims and commercial routers -------------------------------------------------------------------------
def claims_table(lobo_out: dict[str, Any], kfold_out: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per benchmark: % strong calls for 95% of GPT-4 quality, ours (both protocols) next to RouteLLM's."""
    rows = []
    for name, entry in lobo_out.items():
        ours = {r["name"]: r["strong_for_95pct_quality"] for r in entry["results"]}
        kf = {r["name"]: r["strong_for_95pct_quality"] for r in kfold_out[name]["results"]} if kfold_out else {}
        rows.append(
            {
                "benchmark": name,
                "target_quality": 0.95 * entry["bench"]["q_strong"],
                "q_strong": entry["bench"]["q_strong"],
                "q_weak": entry["bench"]["q_weak"],
                "target_pgr": (0.95 * entry["bench"]["q_strong"] - entry["bench"]["q_weak"])
                / (entry["bench"]["q_strong"] - entry["bench"]["q_weak"]),
                "ours_lobo": ours,
                "ours_kfold": kf,
                "train_lobo": entry["train"]["sources"],
                "theirs": ROUTELLM_CLAIMS.get(name, []),
                "sliced": entry["bench"]["sliced"],
            }
        )
    return rows


def commercial_scores(question_ids: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Martian's and Unify's MT Bench scores from the GPT-4 judge grades in the shared data.

    A question's score is the mean of its valid grades over both turns (``-1``, an unparsable grade, is
    skipped, as in our MT Bench loader); the model's score is the mean over questions.
    """
    path = data_dir() / "routellm-evals" / "external-benchmarks" / "mt-bench" / "gpt-4_single.jsonl"
    grades: dict[tuple[str, str], list[float]] = {}
    n_invalid: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            obj = json.loads(line)
            model = str(obj["model"])
            if float(obj["score"]) < 0:
                n_invalid[model] = n_invalid.get(model, 0) + 1
                continue
            grades.setdefault((model, str(obj["question_id"])), []).append(float(obj["score"]))
    out: dict[str, dict[str, Any]] = {}
    for model in sorted({m for m, _ in grades}):
        per_q = {q: float(np.mean(v)) for (m, q), v in grades.items() if m == model}
        all_turns = [s for (m, _), v in grades.items() if m == model for s in v]
        kept = per_q if question_ids is None else {q: per_q[q] for q in question_ids if q in per_q}
        out[model] = {
            "score_our_questions": float(np.mean(list(kept.values()))),
            "n_questions": len(kept),
            "score_all_80_per_question": float(np.mean(list(per_q.values()))),
            "score_all_turns_mean": float(np.mean(all_turns)),
            "invalid_grades": n_invalid.get(model, 0),
        }
    return out


def commercial(lobo_out: dict[str, Any], kfold_out: dict[str, Any] | None, bench: Benchmark) -> dict[str, Any]:
    """Strong-call % our routers need on MT Bench to match Martian's and Unify's scores."""
    scores = commercial_scores(bench.ids)
    needed: dict[str, dict[str, Any]] = {}
    for proto, src in (("lobo", lobo_out), ("kfold", kfold_out)):
        if not src or "mt_bench" not in src:
            continue
        for r in src["mt_bench"]["_results"]:
            needed.setdefault(proto, {})[r.name] = {
                m: first_fraction_reaching(r, v["score_our_questions"]) for m, v in scores.items()
            }
    return {
        "scores": scores,
        "unify_published": UNIFY_PUBLISHED,
        "needed": needed,
        "gpt4": bench.q_strong,
        "mixtral": bench.q_weak,
        "n_questions": len(bench),
    }


# ---- plots -------------------------------------------------------------------------------------------------
def plot_all(out: dict[str, Any], plots_dir: Path, suffix: str = "") -> dict[str, str]:
    """One PNG per benchmark: all routers and baselines, with the strong and weak levels."""
    written = {}
    for name, entry in out.items():
        results: list[EvalResult] = entry["_results"]
        bench_stub = Benchmark(
            name,
            ("x",),
            np.array([entry["bench"]["q_strong"]]),
            np.array([entry["bench"]["q_weak"]]),
            strong_model=entry["bench"]["strong_model"],
            weak_model=entry["bench"]["weak_model"],
        )
        curves = {f"{r.name} (APGR {r.apgr:.3f})": r for r in results}
        n = entry["bench"]["n_prompts"]
        sliced = " - SLICE" if entry["bench"]["sliced"] else ""
        title = f"{PRETTY.get(name, name)}{suffix}: {n} prompts{sliced}"
        path = plot_cost_quality(
            curves,
            bench_stub,
            plots_dir / f"{name}{'_' + suffix.strip(' ()').replace(' ', '_') if suffix else ''}.png",
            title=title,
        )
        written[name] = str(path)
    return written


def strip_private(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_private(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [strip_private(v) for v in obj]
    return obj


# ---- entry point -------------------------------------------------------------------------------------------
def run(settings: Settings, *, neural_only: bool = False) -> dict[str, Any]:
    """Run the quality benchmarks and write ``quality.json`` (and ``neural.json`` when asked) + PNGs.

    With ``neural_only``, run protocol (a) for the selected embedding routers (for the same-subsample rows)
    and the neural routers, and write ``neural.json`` only.
    """
    import torch

    # One thread: deterministic reductions, and no OpenMP spin-wait thrashing on a shared 2-core machine
    # (mf trains ~15x faster here with 1 thread than with 2 under load).
    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    start = time.time()
    timings: dict[str, float] = {}
    emb = Embedders(settings)
    benches = load_benches(settings)
    with Timer() as t:
        lobo_out = lobo(settings, emb, benches)
    timings["lobo_s"] = t.s
    if neural_only:

        def partial(out: dict[str, Any]) -> None:  # partial results survive an interrupted run
            write_json(
                settings.results_dir / "neural.json",
                {
                    "settings": settings.as_dict(),
                    "machine": machine_info(),
                    "neural": out,
                    "seconds": time.time() - start,
                },
            )

        with Timer() as t:
            neural_out = neural(settings, benches, lobo_out, emb, on_progress=partial)
        write_json(
            settings.results_dir / "neural.json",
            {
                "settings": settings.as_dict(),
                "machine": machine_info(),
                "neural": neural_out,
                "seconds": time.time() - start,
            },
        )
        merge_saved_lobo(settings)
        return {"neural": neural_out}
    kfold_on, dcrouter_on = settings.folds > 1, True
    kfold_out = None
    if kfold_on:
        with Timer() as t:
            kfold_out = kfold(settings, emb, benches)
        timings["kfold_s"] = t.s
    dc_out = None
    if dcrouter_on:
        with Timer() as t:
            dc_out = dcrouter(settings, emb)
        timings["dcrouter_s"] = t.s
    plots_dir = settings.plots_dir / "all_data" if settings.all_data else settings.plots_dir
    plots = plot_all(lobo_out, plots_dir)
    if dc_out:
        plots.update(plot_all({"dcrouter": dc_out}, plots_dir))
    result = {
        "settings": settings.as_dict(),
        "machine": machine_info(),
        "lobo": lobo_out,
        "kfold": kfold_out,
        "dcrouter": dc_out,
        "claims": claims_table(lobo_out, kfold_out),
        # Martian's and Unify's grades exist for MT Bench only
        "commercial": commercial(lobo_out, kfold_out, benches["mt_bench"][0]) if "mt_bench" in benches else None,
        "plots": plots,
        "timings": timings,
        "seconds": time.time() - start,
    }
    save_lobo_scores(settings, lobo_out)
    merge_saved_lobo(settings)
    if settings.neural:
        with Timer() as t:
            neural_out = neural(settings, benches, lobo_out, emb)
        write_json(
            settings.results_dir / "neural.json",
            {"settings": settings.as_dict(), "machine": machine_info(), "neural": neural_out, "seconds": t.s},
        )
    write_json(settings.results_dir / settings.quality_file, strip_private(result))
    return result


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="tiny slice for smoke tests (numbers meaningless)")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_EVAL_LIMIT, help="prompts per benchmark (seeded subsample)"
    )
    parser.add_argument(
        "--train-limit", type=int, default=DEFAULT_TRAIN_LIMIT, help="unique training prompts per source"
    )
    parser.add_argument("--all-data", action="store_true", help="whole benchmarks and sources (no limits; long)")
    parser.add_argument("--neural", action="store_true", help="also bert and causal_llm (slow on CPU)")
    parser.add_argument("--neural-train", type=int, default=600, help="training battles for the neural routers")
    parser.add_argument("--neural-eval", type=int, default=300, help="prompts per benchmark for the neural routers")
    parser.add_argument("--neural-only", action="store_true", help="only protocol (a) + the neural routers")
    parser.add_argument("--neural-train-causal", type=int, default=200, help="training battles for causal_llm")
    parser.add_argument("--causal-benchmarks", help="benchmarks for causal_llm (default: all; it is slow on CPU)")
    parser.add_argument("--causal-max-length", type=int, default=128, help="routing-text tokens for causal_llm")
    parser.add_argument("--no-static", action="store_true", help="skip mf on the static embedder")
    parser.add_argument("--routers", help="comma-separated routers to run (default: all); baselines always run")
    parser.add_argument(
        "--benchmarks", help="comma-separated benchmarks (default: mmlu,gsm8k,mt_bench; also crux, math_l5)"
    )
    parser.add_argument(
        "--sources",
        help="comma-separated training sources (default: mmlu,gsm8k,mt_bench,dcrouter,mmlu_pro; also arena, crux, math_l5)",
    )
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--plots-dir", type=Path, default=None)


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings(
        eval_limit=None if args.all_data else args.limit,
        train_limit=None if args.all_data else args.train_limit,
        neural=args.neural,
        neural_train=args.neural_train,
        neural_eval=args.neural_eval,
        static=not args.no_static,
        quick=args.quick,
    )
    s.extra["neural_train_causal"] = args.neural_train_causal
    s.extra["causal_max_length"] = args.causal_max_length
    if args.causal_benchmarks:
        s.extra["causal_benchmarks"] = args.causal_benchmarks.split(",")
    if args.routers:
        s.routers = tuple(args.routers.split(","))
    if args.benchmarks:
        s.benchmarks = tuple(args.benchmarks.split(","))
    if args.sources:
        s.sources = tuple(args.sources.split(","))
    elif args.quick:
        s.sources = ("mmlu", "gsm8k", "mt_bench", "dcrouter")  # MMLU-Pro is the slow one to load
    if args.quick:
        s.eval_limit = min(s.eval_limit or 20, 20)
        s.train_limit = min(s.train_limit or 20, 20)
        s.mf_epochs = 1
        s.folds = 2
        s.neural_train = min(s.neural_train, 16)
        s.neural_eval = min(s.neural_eval, 8)
    if args.results_dir:
        s.results_dir = args.results_dir
    if args.plots_dir:
        s.plots_dir = args.plots_dir
    return s


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Routing-quality benchmarks")
    add_args(parser)
    args = parser.parse_args(argv)
    settings = settings_from(args)
    settings.extra["command"] = "python -m bench.quality " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.neural_only:
        settings.neural = True
    run(settings, neural_only=args.neural_only)


if __name__ == "__main__":
    main()
