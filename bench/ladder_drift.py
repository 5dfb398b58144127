"""A budget and share caps held online while the traffic drifts: the core ``LadderEngine`` under
``Objective.budget(B)`` and ``Objective.shares(caps)`` on a stream whose task changes half-way (ZeroEval GSM8K, then
MATH level 5: harder problems, ~3x longer answers).

**Traffic**: per seed, ``N_HALF`` GSM8K test problems, then ``N_HALF`` MATH-L5 problems (each drawn without
replacement, seeded), with each model's graded correctness and real token counts from ZeroEval's answers (no model
is called): input tokens = prompt characters / 4, output tokens = the model's raw output characters / 4, priced
per token with ``bench.ladder``'s table (``genai-prices``; open models at Together AI's Turbo endpoints).
**Ladder**: Llama-3.1-8B, Gemini-1.5-Flash, GPT-4o-mini, Llama-3.1-70B, GPT-4o.
**Router**: the shipped ``default`` recipe (``DifficultyRouter`` on the static embedder) trained on every shared
source **except GSM8K and MATH-L5**, so the stream is traffic it never saw; nothing is trained on the stream.

**Controller**: each request goes through ``LadderEngine.route`` and ``LadderEngine.call`` with an ``attempt`` that
returns the model's precomputed answer and reports its token counts through the engine's ``usage`` hook, so the
engine's ``ModelLadder`` learns output lengths online and every record carries its real cost (the realised spend
below is the sum of the records' attempt costs). Next to it, in the same run and on the same requests:

- *fixed weight*: ``Objective.cost_weight(λ)`` run through the same engine, ``λ`` bisected (on a log scale) so that
  the **first half** realises spend ``B`` (as near as a deterministic weight can: the spend jumps where many
  requests switch model at once): what one deploys without a controller, tuned on last week's traffic;
- each single model, the single models' upper hull at the controller's realised spend (a random mix of two
  neighbours on the cost axis: RouterBench's zero router), a random mix of all models at the same spend (shares
  proportional to ``exp(-β × mean cost)``, ``β`` solved for the spend; its expected quality), the router's own
  offline frontier at that spend (its cost-weight sweep knowing each half's mean costs: the target an online
  controller chases) and the oracle (true correctness as the prediction, same sweep).

**Noise**: the sd of a half's mean spend over 1,000 bootstrap resamples of its requests (per seed); the
controller is *within noise* on a half when ``|spend − B| <= 2 sd``. **Settling**: requests after the switch
until the trailing 100-request window's spend, once out of ±10% of ``B``, is first back inside (a 100-request
window's own noise is larger than that band, so "back and staying" is not measurable on one seed), on the
realised spend and on a *denoised* spend (each request priced at its chosen model's mean cost on
that request's task: only the routing decisions vary, not the answer lengths).

**Share caps** (:data:`SHARE_SCENARIOS`, the same streams and seeds): ``Objective.shares(caps)`` through the same
engine, next to (a) *fixed penalties*: the smallest constant penalties at which the first half, routed by
``argmax p - penalty``, serves each capped model at most its cap (from the router's predictions on that half), put
in the share controller's place in the engine; (b) the budget controller at the share controller's realised spend
over the stream (quality at equal spend, paired per request); (c) the best predicted model uncapped
(``cost_weight(0)``: the share a cap takes from). Per capped model and half: its share (mean over seeds, min-max),
its largest share in a block of ``BLOCK`` requests and over any ``BLOCK`` in a row, and the blocks beyond a binomial
2 sd over the cap (``cap + 2 sqrt(cap (1 - cap) / BLOCK)``).

Run: ``python -m bench.ladder_drift`` (about 2 minutes on 2 cores); writes ``bench/results/ladder_drift.json`` and
its section of ``BENCHMARKS.md``. ``--quick`` is a smoke run (tiny stream, the shipped checkpoint; numbers
meaningless).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from bench.common import SEED, bench_parser, log, machine_info, publish
from bench.ladder import LEFT_OUT, PRICE_REFS, loo_router, prices, token_tables
from routellm_core.decisions import ServedDecision, Side
from routellm_core.escalation.ladder import evaluate_ladder
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import DEFAULT_WINDOW, Objective
from routellm_core.routing.shares import ShareController

SECTION = "## Budget held online on drifting traffic (LadderEngine, ZeroEval GSM8K then MATH-L5)"
MODELS: tuple[str, ...] = (
    "Meta-Llama-3.1-8B-Instruct",
    "gemini-1.5-flash",
    "gpt-4o-mini-2024-07-18",
    "Meta-Llama-3.1-70B-Instruct",
    "gpt-4o-2024-08-06",
)
SHORT = {
    "Meta-Llama-3.1-8B-Instruct": "Llama-8B",
    "gemini-1.5-flash": "Flash",
    "gpt-4o-mini-2024-07-18": "4o-mini",
    "Meta-Llama-3.1-70B-Instruct": "Llama-70B",
    "gpt-4o-2024-08-06": "4o",
}
#: The stream's first and second half.
TASKS: tuple[str, str] = ("gsm", "math-l5")
#: Target spend, USD per 1,000 requests (between the cheapest and the costliest model on both halves).
BUDGET = 0.5
N_HALF = 600
SEEDS = 5
BLOCK = 100
BOOTSTRAP = 1000
#: Settling: back within this fraction of the budget, over a trailing window of SETTLE_WINDOW requests.
SETTLE_BAND = 0.1
SETTLE_WINDOW = 100
#: A second controller with a shorter window than ``Objective.budget``'s default (faster, noisier).
SHORT_WINDOW = 50
#: Policies run through the engine: the controller (default window), the short-window one, the fixed weight.
POLICIES: dict[str, str] = {
    "controller": "controller (`budget`, window 200)",
    "controller_short": f"controller (`budget`, window {SHORT_WINDOW})",
    "fixed": "fixed weight (tuned on 1st half)",
}
#: Share scenarios on the same streams and seeds: caps by ladder name (``Objective.shares``, its default window).
#: The router ranks GPT-4o first and GPT-4o-mini second on nearly every prompt of both tasks (Llama-70B is rarely
#: even third), so the second scenario caps those two: a cap on Llama-70B would never bind.
SHARE_SCENARIOS: dict[str, dict[str, float]] = {
    "4o_20": {"gpt-4o-2024-08-06": 0.2},
    "4o_10_mini_50": {"gpt-4o-2024-08-06": 0.1, "gpt-4o-mini-2024-07-18": 0.5},
}
#: Policies of each share scenario, all run through the engine.
SHARE_POLICIES: dict[str, str] = {
    "controller": f"share controller (`shares`, window {DEFAULT_WINDOW})",
    "fixed": "fixed penalty (tuned on 1st half)",
    "budget": "budget controller at the share controller's spend",
    "uncapped": "best predicted, uncapped",
}


class Answer(NamedTuple):
    """A model's precomputed answer, as the attempt returns it (the engine's ``usage`` hook reads the tokens)."""

    text: str
    input_tokens: int
    output_tokens: int


@dataclass
class Stream:
    """One seed's traffic: per request its prompt, task, and per model correctness, tokens and cost."""

    prompts: list[str]
    task: np.ndarray  # (n,) 0 = first half's task, 1 = second's
    quality: np.ndarray  # (n, M) 0/1
    input_tokens: np.ndarray  # (n,)
    output_tokens: np.ndarray  # (n, M)
    cost: np.ndarray  # (n, M) USD
    answers: list[list[str]]  # (n, M)

    def __len__(self) -> int:
        return len(self.prompts)

    def half(self, h: int) -> np.ndarray:
        return np.flatnonzero(self.task == h)

    def ladder_of(self, h: int, predictions: np.ndarray) -> Any:
        """``evaluate_ladder`` on half ``h`` (its quality and costs per model) with ``predictions``, one row per
        request of that half."""
        idx = self.half(h)
        q, c = self.quality[idx], self.cost[idx]
        return evaluate_ladder(
            predictions,
            [self.prompts[i] for i in idx],
            {m: q[:, j] for j, m in enumerate(MODELS)},
            {m: c[:, j] for j, m in enumerate(MODELS)},
        )


def load_task(task: str, price: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """A task's prompts, correctness, integer token counts and costs (``bench.ladder``'s tables and pricing), one
    column per model of :data:`MODELS`."""
    t = token_tables(task, MODELS, price)
    return {
        "prompts": t["prompts"],
        "quality": np.column_stack([t["quality"][m] for m in MODELS]),
        "input_tokens": t["input_tokens"],
        "output_tokens": np.column_stack([t["output_tokens"][m] for m in MODELS]),
        "cost": np.column_stack([t["costs"][m] for m in MODELS]),
        "answers": [[str(a) for a in row] for row in zip(*(t["answers"][m] for m in MODELS), strict=True)],
    }


def make_stream(tables: Sequence[dict[str, Any]], n_half: int, seed: int) -> Stream:
    """``n_half`` requests of the first task, then ``n_half`` of the second (seeded, without replacement)."""
    rng = np.random.default_rng(SEED + seed)
    parts = []
    for h, t in enumerate(tables):
        n = len(t["prompts"])
        if n_half > n:
            raise SystemExit(f"{TASKS[h]} has {n} prompts, fewer than {n_half} per half")
        parts.append((h, t, rng.choice(n, n_half, replace=False)))
    return Stream(
        prompts=[t["prompts"][i] for _, t, idx in parts for i in idx],
        task=np.concatenate([np.full(len(idx), h) for h, _, idx in parts]),
        quality=np.vstack([t["quality"][idx] for _, t, idx in parts]),
        input_tokens=np.concatenate([t["input_tokens"][idx] for _, t, idx in parts]),
        output_tokens=np.vstack([t["output_tokens"][idx] for _, t, idx in parts]),
        cost=np.vstack([t["cost"][idx] for _, t, idx in parts]),
        answers=[t["answers"][i] for _, t, idx in parts for i in idx],
    )


def engine(router: Any, objective: Objective, price: dict[str, tuple[float, float]]) -> LadderEngine:
    """The core N-model engine over :data:`MODELS`, answers reporting their tokens through ``usage``."""
    options = RoutingOptions(router=router, objective=objective, prices={m: price[m] for m in MODELS})
    return LadderEngine(
        options,
        MODELS,
        owner="bench.ladder_drift",
        is_empty=lambda a: not a.text,
        chunk_text=lambda a: a.text,
        answer_text=lambda a: a.text,
        usage=lambda a: (a.input_tokens, a.output_tokens),
    )


def drive(eng: LadderEngine, stream: Stream, n: int | None = None) -> dict[str, np.ndarray]:
    """Every request of ``stream`` (the first ``n``) through ``eng.route`` and ``eng.call``: the served model, the
    record's cost, the expected cost of the chosen model, the controller's window spend and the weight in force."""
    n = len(stream) if n is None else n
    col = {m: j for j, m in enumerate(MODELS)}
    served = np.empty(n, dtype=int)
    cost, expected, spend, weight = (np.full(n, np.nan) for _ in range(4))
    for i in range(n):
        route = eng.route(stream.prompts[i])

        def attempt(side: Side, record: ServedDecision, i: int = i) -> Answer:
            j = col[record.model]  # the model to call is the one the record names
            return Answer(stream.answers[i][j], int(stream.input_tokens[i]), int(stream.output_tokens[i, j]))

        _, record = eng.call(route, attempt)
        served[i] = col[record.model]
        cost[i] = sum(a.cost for a in record.attempts if a.cost is not None)
        lad = route.ladder
        expected[i] = lad.expected_cost
        spend[i] = np.nan if lad.spend is None else lad.spend
        weight[i] = lad.value
    if not np.allclose(cost, stream.cost[np.arange(n), served], rtol=1e-6, atol=1e-12):
        raise SystemExit("the records' costs differ from the stream's prices x tokens")
    return {"served": served, "cost": cost, "expected": expected, "window_spend": spend, "weight": weight}


def tune_weight(router: Any, stream: Stream, price: dict[str, tuple[float, float]], budget: float) -> float:
    """The fixed cost weight whose engine realises ``budget`` (USD per 1k) on the stream's first half: bisection
    on log10(weight) in [-3, 10], each try a fresh engine over the first half."""
    n1 = len(stream.half(0))
    lo, hi = -3.0, 10.0  # spend falls as the weight grows

    def spend(logw: float) -> float:
        return 1000 * drive(engine(router, Objective.cost_weight(10**logw), price), stream, n1)["cost"].mean()

    s_lo, s_hi = spend(lo), spend(hi)
    if s_lo <= budget:
        return 10**lo
    for _ in range(22):
        mid = (lo + hi) / 2
        s_mid = spend(mid)
        if s_mid > budget:
            lo, s_lo = mid, s_mid
        else:
            hi, s_hi = mid, s_mid
    # spend jumps where many requests switch model at once: keep the side nearer the budget
    return 10**lo if s_lo - budget < budget - s_hi else 10**hi


def bootstrap_sd(x: np.ndarray, rng: np.random.Generator, n: int = BOOTSTRAP) -> float:
    """The sd of ``x``'s mean over bootstrap resamples."""
    idx = rng.integers(0, len(x), (n, len(x)))
    return float(x[idx].mean(axis=1).std())


def mix_at(spend: float, cost: np.ndarray, quality: np.ndarray) -> dict[str, Any]:
    """A random mix of all models at mean cost ``spend``: shares ∝ exp(-β × cost), ``β`` solved by bisection."""
    if spend <= cost.min():
        shares = (cost == cost.min()).astype(float)
    elif spend >= cost.max():
        shares = (cost == cost.max()).astype(float)
    else:
        z = (cost - cost.mean()) / cost.std()

        def shares_of(beta: float) -> np.ndarray:
            w = np.exp(-beta * z - (-beta * z).max())
            return w / w.sum()

        lo, hi = -60.0, 60.0  # mean cost falls as beta grows
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if shares_of(mid) @ cost > spend else (lo, mid)
        shares = shares_of((lo + hi) / 2)
    return {"quality": float(shares @ quality), "spend": float(shares @ cost), "shares": shares.tolist()}


def settling(per_request: np.ndarray, switch: int, budget: float) -> int | None:
    """Requests after ``switch`` until the trailing window's spend (``per_request`` in USD; ``budget`` USD per 1k),
    having left the band around ``budget``, is first back inside it: 0 if it never left, None if it never returns."""
    c = np.r_[0.0, np.cumsum(per_request)]
    w = SETTLE_WINDOW
    ends = np.arange(max(switch, w), len(per_request) + 1)  # window = requests [end - w, end)
    inside = np.abs(1000 * (c[ends] - c[ends - w]) / w - budget) <= SETTLE_BAND * budget
    left = np.flatnonzero(~inside)
    if not len(left):
        return 0
    back = np.flatnonzero(inside[left[0] :])
    return int(ends[left[0] + back[0]] - switch) if len(back) else None


def half_row(
    run: dict[str, np.ndarray], idx: np.ndarray, stream: Stream, budget: float, rng: np.random.Generator
) -> dict[str, Any]:
    """A policy's spend (USD per 1k), its bootstrap sd and quality on the requests ``idx``."""
    cost = run["cost"][idx]
    spend, sd = 1000 * cost.mean(), 1000 * bootstrap_sd(cost, rng)
    return {
        "spend": float(spend),
        "spend_sd": sd,
        "within_noise": bool(abs(spend - budget) <= 2 * sd),
        "quality": float(stream.quality[idx, run["served"][idx]].mean()),
        "expected_spend": float(1000 * run["expected"][idx].mean()),
        "shares": np.bincount(run["served"][idx], minlength=len(MODELS)).astype(float).tolist(),
    }


def one_seed(
    router: Any, stream: Stream, price: dict[str, tuple[float, float]], budget: float, seed: int
) -> dict[str, Any]:
    """The controller, the tuned fixed weight and every baseline on one seed's stream."""
    rng = np.random.default_rng(SEED + 1000 + seed)
    t0 = time.time()
    ctrl = drive(engine(router, Objective.budget(budget), price), stream)
    t_ctrl = time.time() - t0
    short = drive(engine(router, Objective.budget(budget, window=SHORT_WINDOW), price), stream)
    lam = tune_weight(router, stream, price, budget)
    fixed = drive(engine(router, Objective.cost_weight(lam), price), stream)
    runs = {"controller": ctrl, "controller_short": short, "fixed": fixed}
    pred = np.asarray(router.predict_success(stream.prompts, list(MODELS)), dtype=np.float64)
    halves = []
    for h in (0, 1):
        idx = stream.half(h)
        q, c = stream.quality[idx], stream.cost[idx]
        curve, oracle = stream.ladder_of(h, pred[idx]), stream.ladder_of(h, q)
        row: dict[str, Any] = {pol: half_row(r, idx, stream, budget, rng) for pol, r in runs.items()}
        s = row["controller"]["spend"] / 1000
        row["at_controller_spend"] = {
            "hull": curve.hull_quality_at(s),
            "random_mix": mix_at(s, c.mean(0), q.mean(0))["quality"],
            "router_offline": curve.quality_at(s),
            "oracle": oracle.quality_at(s),
        }
        sf = row["fixed"]["spend"] / 1000
        row["at_fixed_spend"] = {"hull": curve.hull_quality_at(sf), "router_offline": curve.quality_at(sf)}
        row["at_budget"] = {"hull": curve.hull_quality_at(budget / 1000), "oracle": oracle.quality_at(budget / 1000)}
        row["singles"] = {
            m: {"spend": 1000 * float(c[:, j].mean()), "quality": float(q[:, j].mean())} for j, m in enumerate(MODELS)
        }
        # per model: realised output tokens vs what the engine expected (its expected cost of the chosen model)
        row["cost_over_expected"] = {
            m: float(ctrl["cost"][idx][sel].sum() / ctrl["expected"][idx][sel].sum())
            for j, m in enumerate(MODELS)
            if (sel := ctrl["served"][idx] == j).any()
        }
        halves.append(row)
    switch = len(stream.half(0))
    means = np.vstack([stream.cost[stream.task == h].mean(0) for h in (0, 1)])  # (2, M) per-task mean cost
    blocks = []
    for b in range(0, len(stream), BLOCK):
        sl = slice(b, b + BLOCK)
        rows = np.arange(b, min(b + BLOCK, len(stream)))
        blk: dict[str, float] = {"start": b}
        for pol, r in runs.items():
            blk[f"{pol}_spend"] = 1000 * float(r["cost"][sl].mean())
            blk[f"{pol}_quality"] = float(stream.quality[rows, r["served"][sl]].mean())
        blk["controller_expected"] = 1000 * float(ctrl["expected"][sl].mean())
        blk["controller_window_spend"] = float(ctrl["window_spend"][sl][-1])
        blk["controller_weight"] = float(np.median(ctrl["weight"][sl]))
        blocks.append(blk)
    denoised = {pol: means[stream.task, r["served"]] for pol, r in runs.items()}
    return {
        "seed": seed,
        "fixed_weight": lam,
        "controller_seconds": t_ctrl,
        "halves": halves,
        "blocks": blocks,
        "settling": {
            **{pol: settling(r["cost"], switch, budget) for pol, r in runs.items()},
            **{f"{pol}_denoised": settling(denoised[pol], switch, budget) for pol in runs},
        },
        "per_request": {pol: r["cost"].tolist() for pol, r in runs.items()},
    }


def _mean(vals: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in vals) else float(np.mean(vals))  # type: ignore[arg-type]


class FixedPenalties(ShareController):
    """A fixed penalty per capped model, put in the engine's place of the share controller: every request goes to
    ``argmax p - penalty`` (ties to the cheaper), with no window, no correction and no limit (its caps are 1, which
    the limit never reaches): what one deploys without a controller, the penalties tuned on last week's traffic."""

    def __init__(self, penalties: np.ndarray, capped: Sequence[int], n_models: int) -> None:
        super().__init__(dict.fromkeys(capped, 1.0), n_models, DEFAULT_WINDOW)
        self.fixed = np.asarray(penalties, dtype=np.float64)

    def penalties(self, pred: np.ndarray) -> np.ndarray:
        """The fixed penalties, whatever the request."""
        return self.fixed.copy()


def fixed_penalties(pred: np.ndarray, caps: dict[int, float]) -> np.ndarray:
    """The smallest fixed penalties (per model, 0 on the uncapped) at which ``pred``'s rows, routed by
    ``argmax p - penalty``, serve each capped model at most its cap: coordinate updates, each capped model's penalty
    just above (by a margin) the ``(k+1)``-th largest lead over the best other model (``k = floor(cap x rows)``),
    until none moves. Where two capped models share a row on both thresholds, each update raises the other's by the
    margin alone and the two chase each other: the margin then doubles until an uncapped model takes the row.

    Raises:
        SystemExit: No penalties found that hold the caps.
    """
    n = len(pred)
    lam, margin = np.zeros(pred.shape[1]), 1e-9
    allowed = {m: int(np.floor(cap * n + 1e-9)) for m, cap in caps.items()}

    def holds() -> bool:
        served = np.bincount(np.argmax(pred - lam, axis=1), minlength=pred.shape[1])
        return all(served[m] <= k for m, k in allowed.items())

    for _ in range(500):
        before = lam.copy()
        for m, k in allowed.items():
            others = pred - lam
            others[:, m] = -np.inf
            lead = np.sort(pred[:, m] - others.max(axis=1))[::-1]
            lam[m] = 0.0 if k >= n else max(0.0, float(lead[k]) + margin)
        if holds():  # the updates only climb, each to a lower bound of any penalties that hold: the first that hold
            return lam
        if float(np.max(np.abs(lam - before))) <= 4 * margin:  # a chase
            margin *= 2
    raise SystemExit(f"no fixed penalties found that hold the caps {caps} on {n} rows (last {lam})")


def share_engine(router: Any, caps: dict[str, float], price: dict[str, tuple[float, float]], lam: np.ndarray) -> Any:
    """:func:`engine` under ``Objective.shares(caps)`` with the fixed penalties ``lam`` in the controller's place."""
    eng = engine(router, Objective.shares(caps), price)
    eng.shares = FixedPenalties(lam, [MODELS.index(m) for m in caps], len(MODELS))
    return eng


def block_shares(served: np.ndarray, m: int, start: int, end: int) -> tuple[list[float], float]:
    """Model ``m``'s share of each full block of :data:`BLOCK` requests of ``[start, end)`` (counted from
    ``start``), and its largest share over any ``BLOCK`` consecutive requests there (a sliding window)."""
    hit = (served[start:end] == m).astype(float)
    w = min(BLOCK, len(hit))
    blocks = [float(hit[b : b + BLOCK].mean()) for b in range(0, len(hit) - BLOCK + 1, BLOCK)] or [float(hit.mean())]
    c = np.r_[0.0, np.cumsum(hit)]
    return blocks, float(np.max(c[w:] - c[:-w]) / w)


def over_block_cap(cap: float) -> float:
    """The share above which a block of :data:`BLOCK` requests exceeds ``cap`` beyond noise (binomial 2 sd)."""
    return cap + 2 * np.sqrt(cap * (1 - cap) / BLOCK)


def share_seed(router: Any, stream: Stream, price: dict[str, tuple[float, float]], seed: int) -> dict[str, Any]:
    """Every share scenario on one seed's stream: the share controller, the fixed penalty tuned on the first half,
    the budget controller at the share controller's realised spend and the best predicted model uncapped (shared by
    the scenarios), all through the engine; the router's offline curve and the hull at the controller's spend."""
    rng = np.random.default_rng(SEED + 2000 + seed)
    pred = np.asarray(router.predict_success(stream.prompts, list(MODELS)), dtype=np.float64)
    uncapped = drive(engine(router, Objective.cost_weight(0.0), price), stream)
    curves = [stream.ladder_of(h, pred[stream.half(h)]) for h in (0, 1)]
    out: dict[str, Any] = {}
    for name, caps in SHARE_SCENARIOS.items():
        by_index = {MODELS.index(m): c for m, c in caps.items()}
        t0 = time.time()
        ctrl = drive(engine(router, Objective.shares(caps), price), stream)
        t_ctrl = time.time() - t0
        lam = fixed_penalties(pred[stream.half(0)], by_index)
        fixed = drive(share_engine(router, caps, price, lam), stream)
        spend = 1000 * float(ctrl["cost"].mean())
        budget = drive(engine(router, Objective.budget(spend), price), stream)
        runs = {"controller": ctrl, "fixed": fixed, "budget": budget, "uncapped": uncapped}
        halves = []
        for h in (0, 1):
            idx = stream.half(h)
            row: dict[str, Any] = {}
            for pol, r in runs.items():
                cost, served = r["cost"][idx], r["served"][idx]
                capped = {}
                for m, cap in caps.items():
                    blocks, window_max = block_shares(r["served"], MODELS.index(m), int(idx[0]), int(idx[-1]) + 1)
                    capped[m] = {
                        "share": float(np.mean(served == MODELS.index(m))),
                        "blocks": blocks,
                        "block_max": max(blocks),
                        "window_max": window_max,
                        "blocks_over": int(sum(b > over_block_cap(cap) for b in blocks)),
                    }
                row[pol] = {
                    "spend": 1000 * float(cost.mean()),
                    "spend_sd": 1000 * bootstrap_sd(cost, rng),
                    "quality": float(stream.quality[idx, served].mean()),
                    "shares": (np.bincount(served, minlength=len(MODELS)) / len(idx)).tolist(),
                    "capped": capped,
                }
            # quality at (near) equal spend: the share controller minus the budget controller, request by request
            diff = stream.quality[idx, ctrl["served"][idx]] - stream.quality[idx, budget["served"][idx]]
            row["quality_vs_budget"] = {"diff": float(diff.mean()), "sd": bootstrap_sd(diff, rng)}
            s = row["controller"]["spend"] / 1000
            row["at_controller_spend"] = {
                "router_offline": curves[h].quality_at(s),
                "hull": curves[h].hull_quality_at(s),
            }
            halves.append(row)
        whole = (
            stream.quality[np.arange(len(stream)), ctrl["served"]]
            - stream.quality[np.arange(len(stream)), budget["served"]]
        )
        out[name] = {
            "fixed_penalties": {m: float(lam[MODELS.index(m)]) for m in caps},
            "controller_seconds": t_ctrl,
            "stream_spend": {pol: 1000 * float(r["cost"].mean()) for pol, r in runs.items()},
            "stream_quality": {
                pol: float(stream.quality[np.arange(len(stream)), r["served"]].mean()) for pol, r in runs.items()
            },
            "stream_quality_vs_budget": {"diff": float(whole.mean()), "sd": bootstrap_sd(whole, rng)},
            "halves": halves,
        }
    return out


def _spread(vals: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(vals)), "min": float(np.min(vals)), "max": float(np.max(vals))}


def aggregate_shares(seeds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per scenario, half and policy: means over seeds with the per-seed spread (min, max), the pooled spend sd
    (√Σsd²/seeds) and, per capped model, the blocks beyond a binomial 2 sd over the cap (summed over seeds)."""
    n = len(seeds)
    out: dict[str, Any] = {}
    for name, caps in SHARE_SCENARIOS.items():
        runs = [s[name] for s in seeds]
        halves = []
        for h in (0, 1):
            rows = [r["halves"][h] for r in runs]
            row: dict[str, Any] = {}
            for pol in SHARE_POLICIES:
                ps = [r[pol] for r in rows]
                row[pol] = {
                    "spend": float(np.mean([p["spend"] for p in ps])),
                    "spend_sd_pooled": float(np.sqrt(np.sum([p["spend_sd"] ** 2 for p in ps])) / n),
                    "quality": float(np.mean([p["quality"] for p in ps])),
                    "quality_sd_over_seeds": float(np.std([p["quality"] for p in ps])),
                    "shares": np.mean([p["shares"] for p in ps], axis=0).tolist(),
                    "capped": {
                        m: {
                            "share": _spread([p["capped"][m]["share"] for p in ps]),
                            "block_max": _spread([p["capped"][m]["block_max"] for p in ps]),
                            "window_max": _spread([p["capped"][m]["window_max"] for p in ps]),
                            "blocks_over": int(sum(p["capped"][m]["blocks_over"] for p in ps)),
                            "blocks": int(sum(len(p["capped"][m]["blocks"]) for p in ps)),
                            "over_at": float(over_block_cap(caps[m])),
                        }
                        for m in caps
                    },
                }
            row["quality_vs_budget"] = {
                "diff": float(np.mean([r["quality_vs_budget"]["diff"] for r in rows])),
                "sd_pooled": float(np.sqrt(np.sum([r["quality_vs_budget"]["sd"] ** 2 for r in rows])) / n),
            }
            row["at_controller_spend"] = {
                k: _mean([r["at_controller_spend"][k] for r in rows]) for k in ("router_offline", "hull")
            }
            halves.append(row)
        out[name] = {
            "caps": caps,
            "fixed_penalties": {m: _spread([r["fixed_penalties"][m] for r in runs]) for m in caps},
            "stream_spend": {pol: float(np.mean([r["stream_spend"][pol] for r in runs])) for pol in SHARE_POLICIES},
            "stream_quality": {pol: float(np.mean([r["stream_quality"][pol] for r in runs])) for pol in SHARE_POLICIES},
            "stream_quality_vs_budget": {
                "diff": float(np.mean([r["stream_quality_vs_budget"]["diff"] for r in runs])),
                "sd_pooled": float(np.sqrt(np.sum([r["stream_quality_vs_budget"]["sd"] ** 2 for r in runs])) / n),
            },
            "controller_seconds": float(np.mean([r["controller_seconds"] for r in runs])),
            "controller_blocks": {
                m: np.mean(
                    [
                        r["halves"][0]["controller"]["capped"][m]["blocks"]
                        + r["halves"][1]["controller"]["capped"][m]["blocks"]
                        for r in runs
                    ],
                    axis=0,
                ).tolist()
                for m in caps
            },
            "halves": halves,
        }
    return out


def aggregate(seeds: list[dict[str, Any]], budget: float, switch: int) -> dict[str, Any]:
    """Means over seeds, the pooled noise, the seed-mean trailing-window settling."""
    halves = []
    for h in (0, 1):
        rows = [s["halves"][h] for s in seeds]
        row: dict[str, Any] = {}
        for pol in POLICIES:
            sds = np.array([r[pol]["spend_sd"] for r in rows])
            spends = [r[pol]["spend"] for r in rows]
            row[pol] = {
                "spend": float(np.mean(spends)),
                "spend_sd_one_seed": float(np.sqrt(np.mean(sds**2))),
                "spend_sd_pooled": float(np.sqrt(np.sum(sds**2)) / len(seeds)),
                "spend_sd_over_seeds": float(np.std(spends)),
                "seeds_within_noise": sum(r[pol]["within_noise"] for r in rows),
                "quality": float(np.mean([r[pol]["quality"] for r in rows])),
                "quality_sd_over_seeds": float(np.std([r[pol]["quality"] for r in rows])),
                "expected_spend": float(np.mean([r[pol]["expected_spend"] for r in rows])),
                "shares": (np.mean([r[pol]["shares"] for r in rows], axis=0) / switch).tolist(),
            }
            row[pol]["pooled_within_noise"] = bool(abs(row[pol]["spend"] - budget) <= 2 * row[pol]["spend_sd_pooled"])
        for key in ("at_controller_spend", "at_fixed_spend", "at_budget"):
            row[key] = {b: _mean([r[key][b] for r in rows]) for b in rows[0][key]}
        row["singles"] = {
            m: {k: _mean([r["singles"][m][k] for r in rows]) for k in ("spend", "quality")} for m in MODELS
        }
        row["cost_over_expected"] = {
            m: _mean([r["cost_over_expected"][m] for r in rows])
            for m in MODELS
            if all(m in r["cost_over_expected"] for r in rows)
        }
        halves.append(row)
    blocks = [
        {k: _mean([s["blocks"][b][k] for s in seeds]) for k in seeds[0]["blocks"][b]}
        for b in range(len(seeds[0]["blocks"]))
    ]
    settle = {k: [s["settling"][k] for s in seeds] for k in seeds[0]["settling"]}
    seed_mean = {
        pol: settling(np.mean([s["per_request"][pol] for s in seeds], axis=0), switch, budget) for pol in POLICIES
    }
    return {"halves": halves, "blocks": blocks, "settling": settle, "settling_seed_mean": seed_mean}


def run(args: Any) -> dict[str, Any]:
    logging.getLogger("routellm_core.routers.difficulty").setLevel(logging.ERROR)
    price = prices()
    t0 = time.time()
    if args.quick:
        from routellm_core.routing.policy import build_policy

        router, router_name = build_policy("default", None, None, None).router, "shipped default (quick run)"
    else:
        router = loo_router(*TASKS)
        router_name = f"default recipe without {', '.join(LEFT_OUT[t] for t in TASKS)}"
    log(f"router ({router_name}) ready in {time.time() - t0:.0f}s")
    tables = [load_task(t, price) for t in TASKS]
    seeds, share_seeds = [], []
    for seed in range(args.seeds):
        t0 = time.time()
        stream = make_stream(tables, args.n_half, seed)
        res = one_seed(router, stream, price, args.budget, seed)
        seeds.append(res)
        h = res["halves"]
        log(
            f"seed {seed} ({time.time() - t0:.0f}s): controller {h[0]['controller']['spend']:.3f} / "
            f"{h[1]['controller']['spend']:.3f}, fixed λ={res['fixed_weight']:.3g} {h[0]['fixed']['spend']:.3f} / "
            f"{h[1]['fixed']['spend']:.3f} USD per 1k (target {args.budget}); settling {res['settling']}"
        )
        t0 = time.time()
        shares = share_seed(router, stream, price, seed)
        share_seeds.append({"seed": seed, **shares})
        log(
            f"seed {seed} shares ({time.time() - t0:.0f}s): "
            + "; ".join(
                f"{name} controller / fixed: "
                + ", ".join(
                    f"{SHORT[m]} {sc['halves'][0]['controller']['capped'][m]['share']:.1%} / "
                    f"{sc['halves'][1]['controller']['capped'][m]['share']:.1%}, "
                    f"{sc['halves'][0]['fixed']['capped'][m]['share']:.1%} / "
                    f"{sc['halves'][1]['fixed']['capped'][m]['share']:.1%}"
                    for m in SHARE_SCENARIOS[name]
                )
                for name, sc in shares.items()
            )
        )
    agg = aggregate(seeds, args.budget, args.n_half)
    for s in seeds:  # keep the JSON small: the per-request series only fed the seed-mean settling
        s.pop("per_request")
    return {
        "router": router_name,
        "budget_usd_per_1k": args.budget,
        "window": Objective.budget(args.budget).window,
        "short_window": SHORT_WINDOW,
        "n_half": args.n_half,
        "tasks": list(TASKS),
        "models": list(MODELS),
        "aggregate": agg,
        "seeds": seeds,
        "shares": {
            "scenarios": SHARE_SCENARIOS,
            "window": DEFAULT_WINDOW,
            "aggregate": aggregate_shares(share_seeds),
            "seeds": share_seeds,
        },
    }


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def section(res: dict[str, Any] | None) -> list[str]:
    if not res:
        return [SECTION, "", "Not run yet: `python -m bench.ladder_drift`."]
    agg, b = res["aggregate"], res["budget_usd_per_1k"]
    m = res["machine"]
    n_seeds = len(res["seeds"])
    lines = [
        SECTION,
        "",
        f"`{res['command']}` on {m['nproc']} CPUs ({m['cpu_model']}), {m['date_utc']}, {res['seconds']:.0f} s. "
        f"Offline traffic from ZeroEval's graded answers (no model called): {res['n_half']} GSM8K test problems, then "
        f"{res['n_half']} MATH level-5 problems, {n_seeds} seeds. Ladder: "
        + " < ".join(SHORT.get(x, x) for x in res["models"])
        + f", priced per token as in the price-ladder section (input = prompt chars / 4, output = raw output chars / 4"
        f"). Router: {res['router']} (the stream is traffic it never saw). The core `LadderEngine` runs every request "
        f"(`route` + `call`; the attempt returns the precomputed answer and reports its tokens through `usage`, so "
        f"the engine learns output lengths online and the records carry the real costs). Target **B = {b:g} USD per "
        f"1k requests**, `Objective.budget({b:g})` (window {res['window']}). *Fixed weight*: `Objective.cost_weight(λ)` "
        "with λ bisected so the engine realises B on the first half of each seed's stream. Noise: sd of a half's "
        f"mean spend over {BOOTSTRAP} bootstrap resamples of its requests; *pooled* = the mean over seeds' sd "
        f"(√Σsd²/{n_seeds}); within noise = |spend − B| ≤ 2 sd.",
        "",
        "| half | policy | spend USD/1k (sd one seed; pooled) | seeds within 2 sd | mean over seeds within 2 pooled sd "
        "| quality | engine's expected spend |",
        "|---|---|---|---|---|---|---|",
    ]
    names = ("GSM8K (1st)", "MATH-L5 (2nd)")
    for h, row in enumerate(agg["halves"]):
        for pol, label in POLICIES.items():
            r = row[pol]
            lines.append(
                f"| {names[h]} | {label} | {r['spend']:.3f} ({r['spend_sd_one_seed']:.3f}; {r['spend_sd_pooled']:.3f}) "
                f"| {r['seeds_within_noise']}/{n_seeds} | {'yes' if r['pooled_within_noise'] else '**no**'} "
                f"| {r['quality']:.3f} (sd {r['quality_sd_over_seeds']:.3f}) | {r['expected_spend']:.3f} |"
            )
    lines += [
        "",
        "Quality next to the controller, at its realised spend on each half (mean over seeds):",
        "",
        "| half | controller | hull of single models | random mix, all models | router offline (knows the half's "
        "mean costs) | oracle | hull at B | oracle at B |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for h, row in enumerate(agg["halves"]):
        a, ab = row["at_controller_spend"], row["at_budget"]
        lines.append(
            f"| {names[h]} | {row['controller']['quality']:.3f} | {_f(a['hull'])} | {_f(a['random_mix'])} | "
            f"{_f(a['router_offline'])} | {_f(a['oracle'])} | {_f(ab['hull'])} | {_f(ab['oracle'])} |"
        )
    lines += [
        "",
        "Single models (spend USD/1k, quality), each half: "
        + "; ".join(
            f"{names[h]}: "
            + ", ".join(f"{SHORT[x]} {v['spend']:.3f} / {v['quality']:.3f}" for x, v in row["singles"].items())
            for h, row in enumerate(agg["halves"])
        )
        + ".",
        "",
        "Fixed weight at its own spend, quality of the hull there: "
        + "; ".join(
            f"{names[h]}: fixed {row['fixed']['quality']:.3f} vs hull {_f(row['at_fixed_spend']['hull'])}"
            for h, row in enumerate(agg["halves"])
        )
        + ". Controller's shares per model: "
        + "; ".join(
            f"{names[h]}: " + ", ".join(f"{SHORT[x]} {s:.0%}" for x, s in zip(MODELS, row["controller"]["shares"]))
            for h, row in enumerate(agg["halves"])
        )
        + ".",
        "",
        f"Per block of {BLOCK} requests (mean over seeds; the switch is at request {res['n_half']}): realised spend "
        "USD/1k, the engine's expected spend of its choices, quality, the controller's median weight.",
        "",
        "| requests | controller spend | controller expected | controller quality | weight | window-"
        f"{SHORT_WINDOW} spend | fixed spend | fixed quality |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for blk in agg["blocks"]:
        lines.append(
            f"| {blk['start']:.0f}–{blk['start'] + BLOCK - 1:.0f} | {blk['controller_spend']:.3f} | "
            f"{blk['controller_expected']:.3f} | {blk['controller_quality']:.3f} | {blk['controller_weight']:.3g} | "
            f"{blk['controller_short_spend']:.3f} | {blk['fixed_spend']:.3f} | {blk['fixed_quality']:.3f} |"
        )
    st = agg["settling"]
    lines += [
        "",
        f"Settling after the switch (requests until the trailing {SETTLE_WINDOW}-request spend, once out of "
        f"±{SETTLE_BAND:.0%} of B, is first back inside; — = not within the stream; per seed, realised / denoised "
        "(each request at its model's mean cost on its task); then on the seed-mean realised spend): "
        + "; ".join(
            f"{label}: {', '.join(_f(x, 'd') for x in st[pol])} / "
            f"{', '.join(_f(x, 'd') for x in st[f'{pol}_denoised'])}; seed-mean {_f(agg['settling_seed_mean'][pol], 'd')}"
            for pol, label in POLICIES.items()
        )
        + ".",
        "",
        "Realised ÷ expected cost of the controller's chosen models, per half: "
        + "; ".join(
            f"{names[h]}: " + ", ".join(f"{SHORT[x]} {v:.2f}" for x, v in row["cost_over_expected"].items())
            for h, row in enumerate(agg["halves"])
        )
        + ".",
        *share_section(res),
    ]
    return lines


def _pct(x: dict[str, float]) -> str:
    """A share's mean over seeds with its range."""
    return f"{x['mean']:.1%} ({x['min']:.1%}–{x['max']:.1%})"


def share_section(res: dict[str, Any]) -> list[str]:
    """The share scenarios' part of the section (none in results written before they existed)."""
    sh = res.get("shares")
    if not sh:
        return []
    w = sh["window"]
    names = ("GSM8K (1st)", "MATH-L5 (2nd)")
    lines = [
        "",
        f"**Share caps on the same traffic.** The same streams, seeds and router, each request through the engine "
        f"under `Objective.shares(caps)` (window {w}): the best predicted model, each capped model served at most its "
        f"cap of the last {w} requests (a penalty per capped model set by the `ShareController`). Next to it, on the "
        "same requests and through the same engine: *fixed penalty*: the smallest constant penalties at which the "
        "first half, routed by `argmax p − penalty`, serves each capped model at most its cap (from the router's "
        "predictions on that half), in the controller's place; *budget controller*: `Objective.budget(S)` with S the "
        "share controller's realised spend over the seed's whole stream (quality at equal spend); *uncapped*: "
        "`Objective.cost_weight(0)`, the best predicted model (the share the cap takes from). A capped model's "
        "*share*: mean over seeds (min–max over seeds); *worst block*: its largest share in one of the half's blocks "
        f"of {BLOCK} requests, mean over seeds (max over seeds); *worst {BLOCK} in a row*: the same over any {BLOCK} "
        "consecutive requests of the half; *blocks over*: blocks whose share exceeds the cap by more than a binomial "
        f"2 sd (cap + 2√(cap(1 − cap)/{BLOCK})), over all seeds. Spend USD/1k (pooled bootstrap sd).",
    ]
    for name, sc in sh["aggregate"].items():
        caps = sc["caps"]
        title = ", ".join(f"{SHORT[m]} ≤ {c:.0%}" for m, c in caps.items())
        head = "| half | policy | spend USD/1k (sd) | quality (sd over seeds) |"
        rule = "|---|---|---|---|"
        for m in caps:
            thr = sc["halves"][0]["controller"]["capped"][m]["over_at"]
            head += (
                f" {SHORT[m]} share | {SHORT[m]} worst block | {SHORT[m]} worst {BLOCK} in a row | "
                f"{SHORT[m]} blocks over {thr:.1%} |"
            )
            rule += "---|---|---|---|"
        lines += ["", f"Caps {title} (`{name}`):", "", head, rule]
        for h, row in enumerate(sc["halves"]):
            for pol, label in SHARE_POLICIES.items():
                r = row[pol]
                line = (
                    f"| {names[h]} | {label} | {r['spend']:.3f} ({r['spend_sd_pooled']:.3f}) | {r['quality']:.3f} "
                    f"({r['quality_sd_over_seeds']:.3f}) |"
                )
                for m in caps:
                    x = r["capped"][m]
                    line += (
                        f" {_pct(x['share'])} | {x['block_max']['mean']:.0%} ({x['block_max']['max']:.0%}) | "
                        f"{x['window_max']['mean']:.0%} ({x['window_max']['max']:.0%}) | "
                        f"{x['blocks_over']}/{x['blocks']} |"
                    )
                lines.append(line)
        qv = sc["stream_quality_vs_budget"]
        lines += [
            "",
            "Fixed penalties (mean over seeds, min–max): "
            + ", ".join(
                f"{SHORT[m]} {v['mean']:.3f} ({v['min']:.3f}–{v['max']:.3f})" for m, v in sc["fixed_penalties"].items()
            )
            + ". Quality, share controller − budget controller on the same requests (pooled paired bootstrap sd): "
            + "; ".join(
                f"{names[h]} {row['quality_vs_budget']['diff']:+.3f} ({row['quality_vs_budget']['sd_pooled']:.3f})"
                for h, row in enumerate(sc["halves"])
            )
            + f"; whole stream {qv['diff']:+.3f} ({qv['sd_pooled']:.3f}), at stream spends "
            f"{sc['stream_spend']['controller']:.3f} (shares) and {sc['stream_spend']['budget']:.3f} (budget). "
            "At the share controller's spend on each half, the router's offline curve (knowing the half's mean "
            "costs) / the single models' hull: "
            + "; ".join(
                f"{names[h]} {_f(row['at_controller_spend']['router_offline'])} / "
                f"{_f(row['at_controller_spend']['hull'])}"
                for h, row in enumerate(sc["halves"])
            )
            + ". Share controller's shares per model: "
            + "; ".join(
                f"{names[h]}: "
                + ", ".join(f"{SHORT[x]} {v:.0%}" for x, v in zip(MODELS, row["controller"]["shares"], strict=True))
                for h, row in enumerate(sc["halves"])
            )
            + ". The share controller's share of each capped model per block of "
            f"{BLOCK} requests in stream order (mean over seeds; the switch at request {res['n_half']}): "
            + "; ".join(f"{SHORT[m]} " + ", ".join(f"{x:.0%}" for x in v) for m, v in sc["controller_blocks"].items())
            + f". Controller time: {sc['controller_seconds']:.1f} s per seed's stream.",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = bench_parser("bench.ladder_drift", __doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=BUDGET, help="target USD per 1k requests")
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--n-half", type=int, default=N_HALF, help="requests per half of the stream")
    parser.add_argument("--quick", action="store_true", help="smoke run: 120 requests per half, 2 seeds")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.n_half = min(args.seeds, 2), min(args.n_half, 120)
    given = list(sys.argv[1:] if argv is None else argv)
    start = time.time()
    res: dict[str, Any] = {
        "command": " ".join(["python -m bench.ladder_drift", *given]),
        "machine": machine_info(),
        "prices_usd_per_1m_tokens": {x: list(prices()[x]) for x in MODELS},
        "price_refs": {x: PRICE_REFS[x] for x in MODELS},
        **run(args),
    }
    res["seconds"] = time.time() - start
    return publish(res, args, "ladder_drift", SECTION, section)


if __name__ == "__main__":
    main()
