"""Price ladders, offline: N priced models, the ``difficulty`` router's per-model predictions, escalation up the
ladder, and how fast the router learns a ladder's traffic (and a model it never profiled) from labels; on ZeroEval's
answers, DC-Router's test split and MMLU-Pro's categories.

Everything comes from ZeroEval's graded answers (``zeroeval/<task>_{correctness,answers,output_chars}.csv``; no
model is called) on ``gsm`` (GSM8K test), ``crux`` and ``math-l5``. Costs are priced per token with
``routellm_core.data.prices`` (the ``genai-prices`` table; the open models at Together AI's serverless "Turbo"
endpoints, named in :data:`PRICE_REFS`): input tokens = prompt characters / 4, output tokens = the model's raw
output characters / 4. Hidden reasoning tokens would not be counted, so no o1 model is on a ladder.

**Router**: for each task a ``DifficultyRouter()`` (the shipped ``default`` recipe) trained on every shared
source **except that benchmark** (``training_labels(..., exclude=[source])``: GSM8K for ``gsm``, CRUX, MATH-L5),
so every number is on traffic the router never saw. ``routellm_core.evaluate_ladder`` sweeps the ``cost_weight``
objective (each prompt to ``argmax p_m - λ ĉ_m``, ``ĉ`` the model's mean cost: the best predicted quality under an
average budget). Next to it, in the same run: every single model, their upper hull (random mixing of two
neighbours: the baseline), random mixes (share grid, 5 seeds), length (longer prompts up the ladder, every
monotone set of cut points on a 5% grid), the two-model router (the router's win rate of the top rung over the
bottom one, thresholds swept) and the prompt oracle (true quality as the prediction). With answers, each policy
also escalates along the ladder (consecutive rungs' final answers compared with the grader's rule). Beside them,
not a policy, the *agreement-only bound* (``bench.agreement_bound``): the least cost at the best single model's
quality of serving its answer or one two other ladder models agree on, knowing which agreed answers are right.

**Area above hull**: the mean of (curve quality - hull quality) over 101 budgets evenly spaced on a log-cost axis
from the cheapest to the costliest model (positive: better than mixing single models). *min gap*: the smallest
such difference. *cost @ best*: the least mean cost reaching the best single model's quality, as a multiple of
that model's cost. Noise: the router's area re-measured on 50 bootstrap resamples of the prompts (sd), the gap at
each budget re-measured on the same resamples (its own sd: "at or above the hull at every budget" holds where no gap is
below minus twice its sd), and the spread of random's area over seeds.

**Learning curve**: each task's prompts split in half (seeded); k golden labels (k in 0, 25, 50, 100, 200; 3
seeds) from the first half, scoring the ladder's models, warm-start the task's router
(``train_router(None, labels, init=router)``: every labelled model's profile refitted); the curve is measured on
the other half. The *unknown-model* ladders put a model on the ladder the router never profiled (``deepseek-chat``
on GSM8K, ``deepseek-v2-chat-0628`` on CRUX: neither is in any training source but the left-out one), starting
from the stated prior ``ModelPrior(like="gpt-4o-mini-2024-07-18")``.

**Traffic without answers** (no escalation rows): DC-Router's test split (500 prompts, its 9 open models) and
MMLU-Pro (5 models from Llama-3.1-8B to gpt-4o), each MMLU-Pro category its own traffic, with routers trained without
DC-Router, and without MMLU-Pro and MMLU, respectively, and without any record that contains a prompt of the traffic;
the traffic leaves out its prompts that contain a training prompt (DC-Router wraps GSM8K and MMLU questions in
instructions). No output lengths exist there: every answer is assumed
:data:`ASSUMED_OUTPUT_TOKENS` long. The models those routers have no profile for start from a stated prior (the
model each is nearest to, :data:`OUTSIDE_PRIORS`), and a few DC-Router models no maintained table prices are billed
at their nearest priced model's price (:data:`OUTSIDE_PRICE_REFS`). Length and random grids are coarser on long
ladders (at most :data:`MAX_BASELINE_POLICIES` policies each).

Never trained or tuned on arena-hard-auto, arena-bench-v1 or routerbench. Run: ``python -m bench.ladder``
(about 6 minutes on 2 cores); writes ``bench/results/ladder.json`` and its section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import datetime
import itertools
import math
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.agreement_bound import agreement_bound
from bench.common import SEED, bench_parser, log, machine_info, publish
from routellm_core.data.prices import price_of
from routellm_core.data.records import GoldenLabel
from routellm_core.data.zeroeval_answers import ZEROEVAL_ANSWER_KINDS, load_answer_table
from routellm_core.escalation import AgreementCheck
from routellm_core.escalation.answers import answers_agree
from routellm_core.escalation.ladder import AREA_BUDGETS, LadderCurve, evaluate_choices, evaluate_ladder
from routellm_core.routers.profiles import ModelPrior, resolve_model
from routellm_core.routing.ladder import pair_win_rate

SECTION = "## Price ladders: N priced models, per-model predictions, escalation (offline, ZeroEval answers)"
#: ZeroEval task -> the training source left out for it.
LEFT_OUT: dict[str, str] = {"gsm": "gsm8k", "crux": "crux", "math-l5": "math_l5"}
#: When every model is priced: the table's prices may depend on the time of the request (DeepSeek's off-peak hours,
#: a provider's price change on a date), so the benchmarks price at one fixed time (DeepSeek at its peak-hours price).
PRICED_AT = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.timezone.utc)
#: ZeroEval model -> the priced model reference (genai-prices) it is billed as.
PRICE_REFS: dict[str, str] = {
    "Meta-Llama-3.1-8B-Instruct": "together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
    "Meta-Llama-3.1-70B-Instruct": "together:meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo",
    "gpt-4o-2024-08-06": "openai:gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18": "openai:gpt-4o-mini-2024-07-18",
    "gemini-1.5-flash": "google:gemini-1.5-flash",
    "claude-3-5-sonnet-20240620": "anthropic:claude-3-5-sonnet-20240620",
    "deepseek-chat": "deepseek:deepseek-chat",
    "deepseek-v2-chat-0628": "deepseek:deepseek-chat",
}
OPEN = ("Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3.1-70B-Instruct")
API = ("gemini-1.5-flash", "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06", "claude-3-5-sonnet-20240620")
#: task -> ladder name -> (models, the model the router has no profile for, or None).
LADDERS: dict[str, dict[str, tuple[tuple[str, ...], str | None]]] = {
    "gsm": {
        "open 8B < 70B < gpt-4o": ((*OPEN, "gpt-4o-2024-08-06"), None),
        "flash < 4o-mini < 4o < sonnet": (API, None),
        "8B < deepseek-chat (unknown) < gpt-4o": (
            ("Meta-Llama-3.1-8B-Instruct", "deepseek-chat", "gpt-4o-2024-08-06"),
            "deepseek-chat",
        ),
    },
    "crux": {
        "open 8B < 70B < gpt-4o": ((*OPEN, "gpt-4o-2024-08-06"), None),
        "flash < 4o-mini < 4o < sonnet": (API, None),
        "8B < deepseek-v2-chat (unknown) < gpt-4o": (
            ("Meta-Llama-3.1-8B-Instruct", "deepseek-v2-chat-0628", "gpt-4o-2024-08-06"),
            "deepseek-v2-chat-0628",
        ),
    },
    "math-l5": {
        "open 8B < 70B < gpt-4o": ((*OPEN, "gpt-4o-2024-08-06"), None),
        "flash < 4o-mini < 4o < sonnet": (API, None),
    },
}
UNKNOWN_PRIOR = ModelPrior(like="gpt-4o-mini-2024-07-18")

# ---- traffic without answers: DC-Router's test split and MMLU-Pro's categories --------------------------------
#: Output tokens assumed for every model's answer where the data has no answers (DC-Router, MMLU-Pro).
ASSUMED_OUTPUT_TOKENS = 300
#: Task -> the training sources left out of its router (MMLU-Pro holds ~6.8k MMLU questions: MMLU goes too).
OUTSIDE_LEFT_OUT: dict[str, tuple[str, ...]] = {"dcrouter": ("dcrouter",), "mmlu-pro": ("mmlu_pro", "mmlu")}
#: Model -> the priced reference it is billed as (the maintained table), for the models it prices.
OUTSIDE_PRICE_REFS: dict[str, str] = {
    "mistral-7b-instruct-v0.3": "openrouter:mistralai/mistral-7b-instruct-v0.3",
    "llama-3.1-8b-instruct": "openrouter:meta-llama/llama-3.1-8b-instruct",
    "gemma-2-9b-it": "openrouter:google/gemma-2-9b-it",
    "qwen2.5-7b-instruct": "openrouter:qwen/qwen-2.5-7b-instruct",
    "llama-3.3-nemotron-super-49b-v1": "openrouter:llama-3.3-nemotron-super-49b-v1",
    # the models no table prices, at the price of the priced model they stand nearest to (stated, like prices=)
    "llama3-chatqa-1.5-8b": "openrouter:meta-llama/llama-3-8b-instruct",
    "llama3-chatqa-1.5-70b": "openrouter:meta-llama/llama-3-70b-instruct",
    "codegemma-7b": "openrouter:google/gemma-2-9b-it",
    "llama-3.1-nemotron-51b-instruct": "openrouter:llama-3.3-nemotron-super-49b-v1",
    "Meta-Llama-3_1-8B-Instruct": PRICE_REFS["Meta-Llama-3.1-8B-Instruct"],
    "Meta-Llama-3_1-70B-Instruct": PRICE_REFS["Meta-Llama-3.1-70B-Instruct"],
    "gemini-1.5-flash-002": "google:gemini-1.5-flash-002",
    "gemini-1.5-pro-002": "google:gemini-1.5-pro-002",
    "gpt-4o-2024-05-13": "openai:gpt-4o-2024-05-13",
}
#: The stand-ins: a model DC-Router or MMLU-Pro scores that the left-out router has no profile for starts from the
#: profile of the model it is nearest to (``ModelPrior(like=...)``), as a user would state it.
OUTSIDE_PRIORS: dict[str, dict[str, ModelPrior]] = {
    "dcrouter": {
        "codegemma-7b": ModelPrior(like="gemma-7b"),
        "llama-3.1-8b-instruct": ModelPrior(like="Meta-Llama-3.1-8B-Instruct"),
        "llama-3.1-nemotron-51b-instruct": ModelPrior(like="Meta-Llama-3.1-70B-Instruct"),
        "llama-3.3-nemotron-super-49b-v1": ModelPrior(like="Meta-Llama-3.1-70B-Instruct"),
        "llama3-chatqa-1.5-70b": ModelPrior(like="Meta-Llama-3-70B-Instruct"),
        "llama3-chatqa-1.5-8b": ModelPrior(like="Meta-Llama-3-8B-Instruct"),
        "mistral-7b-instruct-v0.3": ModelPrior(like="Mistral-7B-Instruct-v0.2"),
    },
    "mmlu-pro": {
        "gemini-1.5-flash-002": ModelPrior(like="gemini-1.5-flash"),
        "gemini-1.5-pro-002": ModelPrior(like="gemini-1.5-pro"),
    },
}
#: Task -> ladder name -> models.
OUTSIDE_LADDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "dcrouter": {
        "the 9 open models": (
            "mistral-7b-instruct-v0.3",
            "llama3-chatqa-1.5-8b",
            "llama-3.1-8b-instruct",
            "gemma-2-9b-it",
            "codegemma-7b",
            "qwen2.5-7b-instruct",
            "llama-3.3-nemotron-super-49b-v1",
            "llama-3.1-nemotron-51b-instruct",
            "llama3-chatqa-1.5-70b",
        ),
    },
    "mmlu-pro": {
        "8B < 70B < gpt-4o (every model profiled)": (
            "Meta-Llama-3_1-8B-Instruct",
            "Meta-Llama-3_1-70B-Instruct",
            "gpt-4o-2024-05-13",
        ),
        "8B < flash < 70B < pro < gpt-4o": (
            "Meta-Llama-3_1-8B-Instruct",
            "gemini-1.5-flash-002",
            "Meta-Llama-3_1-70B-Instruct",
            "gemini-1.5-pro-002",
            "gpt-4o-2024-05-13",
        ),
    },
}
#: Most policies one baseline family (length cut points, random mixes) evaluates on a ladder.
MAX_BASELINE_POLICIES = 3000
LABELS_K = (0, 25, 50, 100, 200)
LABEL_SEEDS = 3
RANDOM_SEEDS = 5
#: Bootstrap resamples of the prompts (20 under-estimated a budget's gap sd by half on MMLU-Pro biology).
BOOTSTRAP = 50
#: Length router: cut points at these quantiles of prompt length.
LENGTH_GRID = np.linspace(0.0, 1.0, 21)
#: Random mixes: shares of each rung on this grid (sum 1).
RANDOM_STEP = 0.1


def prices() -> dict[str, tuple[float, float]]:
    """USD per 1M (input, output) tokens of every ladder model, from the maintained table."""
    out = {}
    for model, ref in {**PRICE_REFS, **OUTSIDE_PRICE_REFS}.items():
        price = price_of(ref, at=PRICED_AT)
        if price is None:
            raise SystemExit(f"no price for {ref!r} in the genai-prices table")
        out[model] = price
    return out


def _tables(task: str, models: Sequence[str], price: dict[str, tuple[float, float]]) -> dict[str, Any]:
    table = load_answer_table(task)
    in_tokens = np.array([len(p) for p in table.prompts], dtype=np.float64) / 4.0
    quality, costs, answers = {}, {}, {}
    for m in models:
        p_in, p_out = price[m]
        chars = np.array(table.output_chars[m], dtype=np.float64)
        costs[m] = (in_tokens * p_in + chars / 4.0 * p_out) / 1e6
        quality[m] = np.array(table.correct[m], dtype=np.float64)
        answers[m] = table.answers[m]
    return {"prompts": list(table.prompts), "quality": quality, "costs": costs, "answers": answers}


def token_tables(task: str, models: Sequence[str], price: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """:func:`_tables` with whole token counts (``input_tokens``, ``output_tokens`` by model) and the costs they
    price: what an engine's records carry when the answers report those counts.

    Raises:
        SystemExit: The whole-token costs differ from the fractional ones by more than 1% on any model.
    """
    t = _tables(task, models, price)
    table = load_answer_table(task)
    tin = np.rint(np.array([len(p) for p in t["prompts"]], dtype=np.float64) / 4.0).astype(int)
    tout = {m: np.rint(np.asarray(table.output_chars[m], dtype=np.float64) / 4.0).astype(int) for m in models}
    costs = {m: (tin * price[m][0] + tout[m] * price[m][1]) / 1e6 for m in models}
    if not all(np.isclose(costs[m].sum(), t["costs"][m].sum(), rtol=0.01) for m in models):
        raise SystemExit(f"{task}: whole-token costs differ from the fractional ones by more than 1%")
    return {**t, "input_tokens": tin, "output_tokens": tout, "costs": costs}


def loo_router(*tasks: str) -> Any:
    """The shipped recipe trained on every shared source but the tasks' own."""
    from routellm_core import data
    from routellm_core.embedding.static import STATIC_NAME
    from routellm_core.routers.difficulty import DifficultyRouter
    from routellm_core.routers.training import training_embedder

    records = data.training_labels(data.TRAINING_SOURCES, exclude=[LEFT_OUT[task] for task in tasks])
    return DifficultyRouter(embedder=training_embedder(STATIC_NAME)).fit(records)


def outside_router(task: str, evaluated: Sequence[str]) -> tuple[Any, frozenset[str]]:
    """The shipped recipe trained on every shared source but those :data:`OUTSIDE_LEFT_OUT` names for ``task``, and
    without the records whose prompt contains an ``evaluated`` prompt; and the evaluated prompts that contain a
    training prompt (DC-Router wraps GSM8K and MMLU questions in instructions): the traffic leaves those out."""
    from routellm_core import data
    from routellm_core.data.overlap import containing
    from routellm_core.embedding.static import STATIC_NAME
    from routellm_core.routers.difficulty import DifficultyRouter
    from routellm_core.routers.training import training_embedder

    sources = [s for s in data.TRAINING_SOURCES if s not in OUTSIDE_LEFT_OUT[task]]
    records = data.training_labels(sources)
    copies = containing([r.prompt for r in records], evaluated)
    records = [r for r, copy in zip(records, copies, strict=True) if not copy]
    trained = sorted({r.prompt for r in records})
    seen = frozenset(p for p, hit in zip(evaluated, containing(evaluated, trained), strict=True) if hit)
    router = DifficultyRouter(embedder=training_embedder(STATIC_NAME)).fit(records)
    return router, seen


def outside_traffic(task: str) -> dict[str, list[GoldenLabel]]:
    """``task``'s traffic, read once: DC-Router's test split as one group (``"all"``), MMLU-Pro by category."""
    from routellm_core.data.corpora import format_multiple_choice, golden_labels_dcrouter, golden_labels_mmlu_pro
    from routellm_core.data.readers import iter_jsonl
    from routellm_core.data.workspace import data_file, root

    if task == "dcrouter":
        return {"all": golden_labels_dcrouter("test")}
    category = {}
    for _, obj in iter_jsonl(data_file(root(), "mmlu-pro", "questions.jsonl")):
        category[format_multiple_choice(str(obj["question"]), obj["options"])] = str(obj["category"])
    groups: dict[str, list[GoldenLabel]] = {}
    for label in golden_labels_mmlu_pro(canonical_names=False):
        groups.setdefault(category[label.prompt], []).append(label)
    return groups


def outside_tables(
    traffic: dict[str, list[GoldenLabel]],
    models: Sequence[str],
    price: dict[str, tuple[float, float]],
    leave_out: frozenset[str] = frozenset(),
) -> list[dict[str, Any]]:
    """One table per group of ``traffic`` (:func:`outside_traffic`), the prompts every one of ``models`` is scored on
    (but those in ``leave_out``). Costs: prompt characters / 4 input tokens, :data:`ASSUMED_OUTPUT_TOKENS` output."""
    out = []
    for name, labels in sorted(traffic.items()):
        labels = [lab for lab in labels if all(m in lab.scores for m in models) and lab.prompt not in leave_out]
        prompts = [lab.prompt for lab in labels]
        tokens_in = np.array([len(p) for p in prompts], dtype=np.float64) / 4.0
        out.append(
            {
                "name": name,
                "prompts": prompts,
                "quality": {m: np.array([lab.scores[m] for lab in labels], dtype=np.float64) for m in models},
                "costs": {m: (tokens_in * price[m][0] + ASSUMED_OUTPUT_TOKENS * price[m][1]) / 1e6 for m in models},
                "answers": None,
            }
        )
    return out


def _subset(t: dict[str, Any], idx: np.ndarray) -> dict[str, Any]:
    return {
        "prompts": [t["prompts"][i] for i in idx],
        "quality": {m: v[idx] for m, v in t["quality"].items()},
        "costs": {m: v[idx] for m, v in t["costs"].items()},
        "answers": None if t.get("answers") is None else {m: [v[i] for i in idx] for m, v in t["answers"].items()},
    }


def _grid_points(k: int, most: int) -> int:
    """The most grid points ``g`` (at most ``most``) whose monotone assignments to ``k`` rungs, ``C(g + k - 2,
    k - 1)``, stay within :data:`MAX_BASELINE_POLICIES`."""
    g = most
    while g > 2 and math.comb(g + k - 2, k - 1) > MAX_BASELINE_POLICIES:
        g -= 1
    return g


def length_choices(prompts: Sequence[str], k: int) -> np.ndarray:
    """Every monotone assignment of length-quantile bands to rungs (longer prompts up the ladder); the cut points on
    :data:`LENGTH_GRID`, coarser on long ladders."""
    lengths = np.array([len(p) for p in prompts], dtype=np.float64)
    rank = (np.argsort(np.argsort(lengths, kind="stable"), kind="stable") + 0.5) / len(lengths)
    grid = np.linspace(0.0, 1.0, _grid_points(k, len(LENGTH_GRID)))
    rows = []
    for cuts in itertools.combinations_with_replacement(grid, k - 1):
        rows.append(np.searchsorted(np.asarray(cuts), rank, side="right"))
    return np.asarray(rows)


def random_choices(n: int, k: int, seed: int) -> np.ndarray:
    """Random mixes: for each share vector on the grid, each prompt's rung drawn with those shares."""
    u = np.random.default_rng(seed).random(n)
    steps = round(1 / RANDOM_STEP)
    while steps > 1 and math.comb(steps + k - 1, k - 1) > MAX_BASELINE_POLICIES:  # coarser shares on long ladders
        steps -= 1
    rows = []
    for combo in itertools.product(range(steps + 1), repeat=k - 1):
        if sum(combo) > steps:
            continue
        shares = np.array([*combo, steps - sum(combo)], dtype=np.float64) / steps
        rows.append(np.minimum(np.searchsorted(np.cumsum(shares), u, side="right"), k - 1))
    return np.asarray(rows)


def pair_choices(
    router: Any,
    prompts: Sequence[str],
    models: Sequence[str],
    costs: dict[str, np.ndarray],
    pred: np.ndarray | None = None,
) -> np.ndarray:
    """The two-model router: the top rung's win rate over the bottom one's; the top x% of prompts to the top. A pair
    the router did not train on under these names (known by a prior or an alias) gets it from ``pred``, the per-model
    predictions."""
    order = sorted(range(len(models)), key=lambda j: float(costs[models[j]].mean()))
    lo, hi = order[0], order[-1]
    if pred is None or {models[lo], models[hi]} <= set(router.models):
        win = router.pairwise_win_rate(list(prompts), models[hi], models[lo])
    else:
        win = np.array([pair_win_rate(row[hi], row[lo]) for row in pred])
    rank = np.argsort(np.argsort(-win, kind="stable"), kind="stable")
    n = len(prompts)
    return np.asarray([np.where(rank < round(f * n), hi, lo) for f in np.linspace(0, 1, 51)])


def _summary(curve: LadderCurve) -> dict[str, Any]:
    best_model = max(curve.singles, key=lambda m: curve.singles[m][1])
    best_cost, best_q = curve.singles[best_model]
    cost = curve.cost_for(best_q)
    gaps = [curve.quality_at(b) - curve.hull_quality_at(b) for b in curve.budgets()]
    return {
        "area_above_hull": curve.area_above_hull(),
        "min_gap": float(np.nanmin(gaps)),
        "cost_x_best@best": None if cost is None else cost / best_cost,
        "max_quality": float(curve.points[:, 1].max()),
        "n_points": len(curve.points),
    }


def gap_noise(curve: LadderCurve, boot_gaps: np.ndarray) -> dict[str, Any]:
    """The noise of the gap (curve - hull) budget by budget: ``boot_gaps`` holds each bootstrap resample's gaps at
    ``curve.budgets()``. A gap is below the hull beyond noise when it is under minus twice its own bootstrap sd (a
    single budget's gap is noisier than the area, which averages 101 of them).

    Returns:
        ``min_gap_noise`` (twice the sd at the budget of the smallest gap) and ``budgets_below_beyond_noise``.
    """
    gaps = np.array([curve.quality_at(b) - curve.hull_quality_at(b) for b in curve.budgets()])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a budget below every resample's cheapest policy: NaN
        noise = 2 * np.nanstd(boot_gaps, axis=0)
    below = gaps < -(np.nan_to_num(noise) + 1e-9)
    return {
        "min_gap_noise": float(noise[int(np.nanargmin(gaps))]),
        "budgets_below_beyond_noise": int(below.sum()),
    }


def _best_quality_row(curve: LadderCurve) -> dict[str, Any]:
    best = max(curve.singles, key=lambda m: curve.singles[m][1])
    return {"model": best, "cost": curve.singles[best][0], "quality": curve.singles[best][1]}


def evaluate_one(
    router: Any,
    t: dict[str, Any],
    models: Sequence[str],
    check: AgreementCheck | None,
    priors: dict[str, ModelPrior] | None = None,
) -> dict[str, Any]:
    """Every row of one ladder on one set of prompts (the escalation rows when the table has answers and a check)."""
    q, c = ({m: t[key][m] for m in models} for key in ("quality", "costs"))
    a = {m: t["answers"][m] for m in models} if t.get("answers") is not None and check is not None else None
    k, n = len(models), len(t["prompts"])
    rows: dict[str, Any] = {}
    pred = router.predict_success(t["prompts"], list(models), **({"priors": priors} if priors else {}))
    curve = evaluate_ladder(pred, t["prompts"], q, c)
    rows["router"] = _summary(curve)
    if a is not None:
        rows["router + escalation"] = _summary(evaluate_ladder(pred, t["prompts"], q, c, answers=a, check=check))
    rows["router (margin objective)"] = _summary(evaluate_ladder(pred, t["prompts"], q, c, objective="margin"))
    rng = np.random.default_rng(SEED)
    boot, boot_gaps = [], []
    for _ in range(BOOTSTRAP):
        idx = rng.integers(0, n, n)
        sub = _subset({"prompts": t["prompts"], "quality": q, "costs": c, "answers": None}, idx)
        resampled = evaluate_ladder(pred[idx], sub["prompts"], sub["quality"], sub["costs"])
        boot.append(resampled.area_above_hull())
        boot_gaps.append([resampled.quality_at(b) - resampled.hull_quality_at(b) for b in curve.budgets()])
    rows["router"]["area_bootstrap_sd"] = float(np.std(boot))
    rows["router"].update(gap_noise(curve, np.asarray(boot_gaps)))
    lengths = length_choices(t["prompts"], k)
    rows["length"] = _summary(evaluate_choices(lengths, q, c, name="length"))
    if a is not None:
        rows["length + escalation"] = _summary(evaluate_choices(lengths, q, c, answers=a, check=check, name="length"))
    rand = [_summary(evaluate_choices(random_choices(n, k, s), q, c, name="random")) for s in range(RANDOM_SEEDS)]
    rows["random"] = {
        key: (float(np.mean([r[key] for r in rand])) if all(r[key] is not None for r in rand) else None)
        for key in ("area_above_hull", "min_gap", "cost_x_best@best", "max_quality")
    }
    rows["random"]["area_sd_over_seeds"] = float(np.std([r["area_above_hull"] for r in rand]))
    rows["two-model router (bottom/top rung)"] = _summary(
        evaluate_choices(pair_choices(router, t["prompts"], list(models), c, pred), q, c, name="pair")
    )
    rows["oracle (prompt-only)"] = _summary(evaluate_ladder(q, t["prompts"], q, c))
    bound = None
    if a is not None and check is not None:
        best, kind = _best_quality_row(curve), check.kind
        frontier = agreement_bound(
            q,
            c,
            a,
            anchor=best["model"],
            others=[m for m in models if m != best["model"]],
            agree=lambda x, y: answers_agree(x, y, kind),
        )
        cost = frontier.cost_for(best["quality"])
        bound = {"cost_x_best@best": None if cost is None else cost / best["cost"], "max_quality": frontier.max_quality}
    return {
        "agreement_bound": bound,
        "n_prompts": n,
        "singles": {m: {"cost_usd_per_1k": 1e3 * cq[0], "quality": cq[1]} for m, cq in curve.singles.items()},
        "ladder": list(curve.models),
        "hull_models": [m for m, cq in curve.singles.items() if any(np.allclose(cq, h) for h in curve.hull)],
        "best_single": _best_quality_row(curve),
        "rows": rows,
        "curve": {key: curve.as_dict()[key] for key in ("cost", "quality", "settings")},
        "hull": curve.as_dict()["hull"],
    }


def learning_curve(
    router: Any,
    t: dict[str, Any],
    models: Sequence[str],
    check: AgreementCheck | None,
    priors: dict[str, ModelPrior] | None,
    task: str,
) -> dict[str, Any]:
    from routellm_core.routers.training import train_router

    n = len(t["prompts"])
    perm = np.random.default_rng(SEED).permutation(n)
    pool, held = perm[: n // 2], np.sort(perm[n // 2 :])
    test = _subset(t, held)
    q, c = ({m: test[key][m] for m in models} for key in ("quality", "costs"))
    a = {m: test["answers"][m] for m in models} if test["answers"] is not None and check is not None else None
    init = router
    if priors:
        init = train_router(None, [], init=router)  # a copy to state the priors on
        for name, prior in priors.items():
            init.add_model(name, prior)
    out: dict[str, Any] = {}
    for k in LABELS_K:
        if k > len(pool):  # a small traffic (an MMLU-Pro category) has fewer labels to draw
            continue
        areas, esc, costs = [], [], []
        for seed in range(LABEL_SEEDS if k else 1):
            picked = np.random.default_rng(seed + 1).choice(pool, k, replace=False) if k else []
            labels = [
                GoldenLabel(
                    prompt=t["prompts"][i],
                    scores={m: float(t["quality"][m][i]) for m in models},
                    source=f"{task}-traffic",
                )
                for i in picked
            ]
            fitted = train_router(None, labels, init=init) if k else init
            pred = fitted.predict_success(test["prompts"], list(models))
            curve = evaluate_ladder(pred, test["prompts"], q, c)
            s = _summary(curve)
            areas.append(s["area_above_hull"])
            costs.append(s["cost_x_best@best"])
            if a is not None:
                esc.append(evaluate_ladder(pred, test["prompts"], q, c, answers=a, check=check).area_above_hull())
        out[str(k)] = {
            "area_above_hull": float(np.mean(areas)),
            "area_sd_over_seeds": float(np.std(areas)),
            "area_with_escalation": float(np.mean(esc)) if esc else None,
            "cost_x_best@best": None if any(x is None for x in costs) else float(np.mean(costs)),
            "seeds": len(areas),
        }
    return {"n_held_out": len(held), "label_pool": len(pool), "by_k": out}


def run() -> dict[str, Any]:
    import logging

    # every ladder label is "ignored" by the reference pair's logit (it refits the profiles): not news here
    logging.getLogger("routellm_core.routers.difficulty").setLevel(logging.ERROR)
    price = prices()
    out: dict[str, Any] = {}
    for task, ladders in LADDERS.items():
        t0 = time.time()
        router = loo_router(task)
        log(f"{task}: router without {LEFT_OUT[task]} fitted in {time.time() - t0:.0f}s")
        models = sorted({m for ms, _ in ladders.values() for m in ms})
        t = _tables(task, models, price)
        check = AgreementCheck(kind=ZEROEVAL_ANSWER_KINDS[task])
        out[task] = {"left_out_source": LEFT_OUT[task], "answer_kind": check.kind, "ladders": {}}
        for name, (ms, unknown) in ladders.items():
            if unknown is not None and resolve_model(unknown, router.models) is not None:
                raise SystemExit(f"{unknown} has a profile in the {task} router: not an unknown model")
            priors = {unknown: UNKNOWN_PRIOR} if unknown else None
            res = evaluate_one(router, t, ms, check, priors)
            res["unknown_model"] = unknown
            res["learning_curve"] = learning_curve(router, t, ms, check, priors, task)
            out[task]["ladders"][name] = res
            r = res["rows"]["router"]
            log(
                f"{task} / {name}: area {r['area_above_hull']:+.4f} (sd {r['area_bootstrap_sd']:.4f}), "
                f"length {res['rows']['length']['area_above_hull']:+.4f}, "
                f"escalation {res['rows']['router + escalation']['area_above_hull']:+.4f}"
            )
    return out


def run_outside() -> dict[str, Any]:
    """The ladders on traffic without answers (no escalation rows): DC-Router's test split, MMLU-Pro per category."""
    price = prices()
    out: dict[str, Any] = {}
    for task, ladders in OUTSIDE_LADDERS.items():
        t0 = time.time()
        traffic = outside_traffic(task)
        router, seen = outside_router(task, [label.prompt for group in traffic.values() for label in group])
        log(
            f"{task}: router without {', '.join(OUTSIDE_LEFT_OUT[task])} and copies of the traffic fitted in "
            f"{time.time() - t0:.0f}s; {len(seen)} prompts of the traffic copy a training prompt: left out"
        )
        out[task] = {"left_out_sources": list(OUTSIDE_LEFT_OUT[task]), "left_out_prompts": len(seen), "ladders": {}}
        for name, ms in ladders.items():
            priors = {
                m: p for m, p in OUTSIDE_PRIORS[task].items() if m in ms and resolve_model(m, router.models) is None
            }
            missing = [m for m in ms if m not in priors and resolve_model(m, router.models) is None]
            if missing:
                raise SystemExit(f"{task}: no profile and no prior for {missing}")
            results = {}
            for t in outside_tables(traffic, ms, price, seen):
                res = evaluate_one(router, t, ms, None, priors)
                res["learning_curve"] = learning_curve(router, t, ms, None, priors, f"{task}-{t['name']}")
                results[t["name"]] = res
                r = res["rows"]["router"]
                log(
                    f"{task} / {name} / {t['name']} ({len(t['prompts'])}): area {r['area_above_hull']:+.4f} "
                    f"(sd {r['area_bootstrap_sd']:.4f}), length {res['rows']['length']['area_above_hull']:+.4f}"
                )
            out[task]["ladders"][name] = {
                "priors": {m: p.like for m, p in priors.items()},
                "traffic": results,
            }
    return out


def _every_ladder(res: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(task, ladder, result)`` of every ladder and traffic measured (an MMLU-Pro category is its own traffic)."""
    rows = [(task, name, lr) for task, tres in res["tasks"].items() for name, lr in tres["ladders"].items()]
    for task, tres in res.get("outside", {}).items():
        for name, lad in tres["ladders"].items():
            rows += [(task, f"{name} / {group}", lr) for group, lr in lad["traffic"].items()]
    return rows


def targets(res: dict[str, Any]) -> list[str]:
    """The issue's three targets, read off the results (noise: twice the router's bootstrap sd, of the gap at each
    budget for "at or above the hull at every budget", of the area for the areas)."""
    below, gains, esc = [], [], []
    beyond = above_hull = above_random = 0
    every = _every_ladder(res)
    for task, name, lr in every:
        r = lr["rows"]["router"]
        noise = 2 * r["area_bootstrap_sd"]
        if r["budgets_below_beyond_noise"]:
            below.append(
                f"{task} / {name} (min gap {r['min_gap']:+.4f}, noise there {r['min_gap_noise']:.4f}; "
                f"{r['budgets_below_beyond_noise']} of {AREA_BUDGETS} budgets below beyond noise)"
            )
        lc = lr["learning_curve"]["by_k"]
        gain = lc["50"]["area_above_hull"] - lc["0"]["area_above_hull"]
        beyond += gain > noise
        half = noise * math.sqrt(2)  # the learning curve is measured on half the prompts
        above_hull += lc["50"]["area_above_hull"] > half
        above_random += lc["50"]["area_above_hull"] > lr["rows"]["random"]["area_above_hull"] + half
        gains.append(f"{task} / {name}: {gain:+.4f} ({'beyond' if gain > noise else 'within'} noise {noise:.4f})")
        if task in ("gsm", "crux"):
            x = lr["rows"]["router + escalation"]["cost_x_best@best"]
            bound = (lr.get("agreement_bound") or {}).get("cost_x_best@best")
            esc.append(
                f"{task} / {name}: {_f(x, '.3f')}"
                + (" (met)" if x is not None and x <= 0.5 else "")
                + f" (agreement-only bound {_f(bound, '.3f')})"
            )
    return [
        "- No labels, curve at or above the hull at every budget (within noise): "
        + (f"**met** on every ladder ({len(every)})." if not below else "**not met** on " + "; ".join(below) + "."),
        f"- 50 labels, area above the k = 0 router's by more than noise: {beyond} of {len(every)}: "
        + "; ".join(gains)
        + ". Read as the issue words it (the k = 50 area above the hull by more than noise, twice the bootstrap sd "
        f"times √2 for the half measured): {above_hull} of {len(every)}; above random's area by that much: "
        f"{above_random} of {len(every)}.",
        "- Escalation along the ladder, best single model's quality at <= 0.5x its cost (GSM8K, CRUX): "
        + "; ".join(esc)
        + ".",
        "- The agreement-only bound is not a policy (`bench.agreement_bound`): the least cost at the best single "
        "model's quality of serving its answer or one two other ladder models agree on, knowing which agreed "
        "answers are right. Where it is above 0.5, a policy meets the target only by serving answers no other model "
        "confirmed (a cheaper model routed to unchecked, or kept although its check disagreed), right far more "
        "often than agreement can tell.",
        "- Read with care: random mixes also sit above the hull (the best of many random policies on a finite "
        "sample), so the router's area counts only where it clears random's; length, the other prompt-only "
        "baseline, is level with the router on most ladders.",
    ]


def _f(x: float | None, fmt: str = "+.4f") -> str:
    return "—" if x is None else format(x, fmt)


def section(res: dict[str, Any] | None) -> list[str]:
    if not res:
        return [SECTION, "", "Not run yet: `python -m bench.ladder`."]
    lines = [
        SECTION,
        "",
        f"`{res['command']}` on {res['machine']['nproc']} CPUs ({res['machine']['cpu_model']}), "
        f"{res['machine']['date_utc']}, {res['seconds']:.0f} s. Offline: ZeroEval's graded answers, no model called. "
        "Costs priced per token from the `genai-prices` table (`routellm_core.data.prices`) as of "
        f"{PRICED_AT:%Y-%m-%d %H:%M} UTC (open models at Together "
        "AI's Turbo endpoints; input = prompt chars / 4, output = raw output chars / 4). The router is the shipped "
        "`default` recipe **trained without the task's benchmark** (GSM8K, CRUX or MATH-L5 left out), sweeping the "
        "`cost_weight` objective (best predicted quality under an average budget). *area*: mean of (curve − hull) "
        "quality over 101 budgets log-spaced from the cheapest to the costliest model; *min gap*: the smallest "
        "difference; *cost @ best*: least mean cost reaching the best single model's quality, × that model's cost "
        f"(— = never reached). Noise: the router's bootstrap sd ({BOOTSTRAP} resamples; of the area, and of the gap at each "
        "budget for the every-budget target) and random's spread over 5 seeds. "
        "Then DC-Router's test split and MMLU-Pro's categories (no answers: no escalation; "
        f"{ASSUMED_OUTPUT_TOKENS} output tokens assumed per answer; routers trained without them; the models those "
        "routers never profiled start from a stated prior, as a user would give it).",
        "",
        "Prices (USD per 1M input / output tokens): "
        + ", ".join(f"{m} {p[0]:g} / {p[1]:g}" for m, p in res["prices_usd_per_1m_tokens"].items())
        + ".",
    ]
    lines += ["", "### Targets (issue 21)", "", *targets(res)]
    lines += _outside_section(res.get("outside") or {})
    for task, tres in res["tasks"].items():
        lines += ["", f"### {task} (router trained without `{tres['left_out_source']}`)", ""]
        for name, lr in tres["ladders"].items():
            singles = "; ".join(
                f"{m}: {s['quality']:.3f} at {s['cost_usd_per_1k']:.3f} USD/1k" for m, s in lr["singles"].items()
            )
            note = (
                f" Unknown to the router: `{lr['unknown_model']}` (prior: like gpt-4o-mini)."
                if lr["unknown_model"]
                else ""
            )
            lines += [
                f"**{name}** ({lr['n_prompts']} prompts) — {singles}; hull through {', '.join(lr['hull_models'])}.{note}",
                "",
                "| policy | area above hull | min gap | cost @ best | best quality |",
                "|---|---|---|---|---|",
            ]
            for row, e in lr["rows"].items():
                extra = ""
                if "area_bootstrap_sd" in e:
                    extra = f" (sd {e['area_bootstrap_sd']:.4f})"
                elif "area_sd_over_seeds" in e:
                    extra = f" (sd {e['area_sd_over_seeds']:.4f})"
                lines.append(
                    f"| {row} | {_f(e['area_above_hull'])}{extra} | {_f(e['min_gap'])} | "
                    f"{_f(e['cost_x_best@best'], '.3f')} | {e['max_quality']:.4f} |"
                )
            lc = lr["learning_curve"]
            lines += [
                "",
                f"Learning curve (k labels of this traffic from a pool of {lc['label_pool']}, measured on the other "
                f"{lc['n_held_out']} prompts; mean of 3 seeds): "
                + "; ".join(
                    f"k={k}: area {_f(v['area_above_hull'])} (sd {v['area_sd_over_seeds']:.4f}), with escalation "
                    f"{_f(v['area_with_escalation'])}, cost @ best {_f(v['cost_x_best@best'], '.3f')}"
                    for k, v in lc["by_k"].items()
                )
                + ".",
                "",
            ]
    return lines


def _outside_section(outside: dict[str, Any]) -> list[str]:
    """DC-Router and MMLU-Pro: one row per traffic (an MMLU-Pro category is its own)."""
    lines: list[str] = []
    for task, tres in outside.items():
        for name, lad in tres["ladders"].items():
            priors = ", ".join(f"{m} like {like}" for m, like in lad["priors"].items()) or "none"
            first = next(iter(lad["traffic"].values()))
            singles = "; ".join(
                f"{m}: {s['quality']:.3f} at {s['cost_usd_per_1k']:.3f} USD/1k" for m, s in first["singles"].items()
            )
            lines += [
                "",
                f"### {task}: {name} (router trained without {', '.join(tres['left_out_sources'])} and without "
                "the records containing a prompt of the traffic; the traffic without the "
                f"{tres['left_out_prompts']} prompts that contain a training prompt; no answers, so no escalation; "
                f"{ASSUMED_OUTPUT_TOKENS} output tokens assumed per answer)",
                "",
                f"Models the router had no profile for, with the prior stated: {priors}. "
                + ("Singles: " + singles + "." if len(lad["traffic"]) == 1 else "One row per category (traffic)."),
                "",
                "| traffic | prompts | router area (sd) | min gap | length | random (sd) | two-model router | oracle "
                "| router cost @ best | k = 50 labels: area |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            for group, lr in lad["traffic"].items():
                r, rows = lr["rows"]["router"], lr["rows"]
                lc = lr["learning_curve"]["by_k"]
                lines.append(
                    f"| {group} | {lr['n_prompts']} | {_f(r['area_above_hull'])} ({r['area_bootstrap_sd']:.4f}) | "
                    f"{_f(r['min_gap'])} | {_f(rows['length']['area_above_hull'])} | "
                    f"{_f(rows['random']['area_above_hull'])} ({rows['random']['area_sd_over_seeds']:.4f}) | "
                    f"{_f(rows['two-model router (bottom/top rung)']['area_above_hull'])} | "
                    f"{_f(rows['oracle (prompt-only)']['area_above_hull'])} | {_f(r['cost_x_best@best'], '.3f')} | "
                    f"{_f(lc['50']['area_above_hull'])} (k = 0: {_f(lc['0']['area_above_hull'])}) |"
                )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = bench_parser("bench.ladder", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    start = time.time()
    res: dict[str, Any] = {
        "command": " ".join(["python -m bench.ladder", *given]),
        "machine": machine_info(),
        "prices_usd_per_1m_tokens": {m: list(p) for m, p in prices().items()},
        "price_refs": {**PRICE_REFS, **OUTSIDE_PRICE_REFS},
        "tasks": run(),
        "outside": run_outside(),
    }
    res["seconds"] = time.time() - start
    return publish(res, args, "ladder", SECTION, section)


if __name__ == "__main__":
    main()
