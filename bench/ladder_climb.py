"""The online climb: escalation rung by rung up a price ladder through the core ``LadderEngine``
(``Escalation(climb=True)``), on ZeroEval's real answers, next to the offline evaluation that predicts it.

**Traffic**: every problem of ZeroEval ``gsm`` (GSM8K test) and ``crux``, in a seeded order, with each model's graded
correctness, final answer and real token counts (input tokens = prompt characters / 4, output tokens = the model's
raw output characters / 4, rounded), priced per token with ``bench.ladder``'s table. No model is called: each
request goes through ``LadderEngine.route`` and ``LadderEngine.call`` with an ``attempt`` that returns the named
model's precomputed answer and reports its tokens through the engine's ``usage`` hook, so the engine learns output
lengths online, the climb's check compares the final answers (``AgreementCheck`` with the task's answer kind, as
``bench.ladder``), and every number below is read off the engine's records (cost: the sum of the attempts' prices).
**Ladders**: ``bench.ladder``'s two known-model ladders per task (open 8B < 70B < gpt-4o; flash < 4o-mini < 4o <
sonnet). **Router**: the shipped ``default`` recipe trained on every shared source except the task's own
(``bench.ladder.loo_router``), so the traffic is new to it.

**Online policies**: ``Objective.cost_weight(λ)`` with the climb, for λ on a log grid (each a fresh engine over the
whole task): the objective picks the first rung, the climb goes up while consecutive rungs disagree. Next to each
online point, in the same run at the same mean cost: the offline curves of ``routellm_core.evaluate_ladder`` (the
router without and with escalation along the ladder: what the online climb should reach), length (longer prompts up
the ladder, with and without escalation), random mixes (5 seeds), and the single models' upper hull (random mixing
of two neighbours). The online points differ from the offline ones in one way only: online, the objective prices
each request with the output lengths the engine learned so far, offline with each model's mean cost.

**Noise**: the sd of an online point's mean quality over 1,000 bootstrap resamples of the requests. **Cost at the
best single model's quality**: the least mean cost at which the online points' upper envelope (a random mix of two
neighbouring λ is a policy too) reaches the best single model's quality, as a multiple of that model's cost (the
issue's target: at most 0.5 on GSM8K and CRUX).

Run: ``python -m bench.ladder_climb`` (about 3 minutes on 2 cores); writes ``bench/results/ladder_climb.json`` and its
section of ``BENCHMARKS.md``. ``--quick``: a smoke run (200 problems of GSM8K, one ladder, 4 weights, the shipped
router; numbers meaningless).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import SEED, bench_parser, log, machine_info, publish
from bench.ladder import (
    LADDERS,
    LEFT_OUT,
    PRICE_REFS,
    RANDOM_SEEDS,
    length_choices,
    loo_router,
    prices,
    random_choices,
    token_tables,
)
from routellm_core.data.zeroeval_answers import ZEROEVAL_ANSWER_KINDS
from routellm_core.decisions import ServedDecision, Side
from routellm_core.escalation import AgreementCheck, Escalation
from routellm_core.escalation.ladder import LadderCurve, evaluate_choices, evaluate_ladder
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import Objective

SECTION = "## The online climb: escalation rung by rung through the LadderEngine (ZeroEval GSM8K, CRUX)"
TASKS: tuple[str, ...] = ("gsm", "crux")
#: The cost weights swept online (quality points per USD).
WEIGHTS = np.logspace(1.5, 4.0, 16)
BOOTSTRAP = 1000


@dataclass(frozen=True)
class Answer:
    """A model's precomputed answer: its final answer (what the check compares) and its token counts."""

    text: str
    input_tokens: int
    output_tokens: int


def engine(router: Any, models: Sequence[str], weight: float, check: AgreementCheck, price: Any) -> LadderEngine:
    """The core N-model engine over ``models`` climbing with ``check``, answers reporting their tokens."""
    options = RoutingOptions(
        router=router,
        objective=Objective.cost_weight(weight),
        prices={m: price[m] for m in models},
        escalate=Escalation(climb=True, check=check),
    )
    return LadderEngine(
        options,
        list(models),
        owner="bench.ladder_climb",
        is_empty=lambda a: a.output_tokens <= 0 and not a.text,
        chunk_text=lambda a: a.text,
        answer_text=lambda a: a.text,
        answer_value=lambda a: a.text or None,
        usage=lambda a: (a.input_tokens, a.output_tokens),
    )


def drive(eng: LadderEngine, t: dict[str, Any], order: np.ndarray) -> dict[str, np.ndarray]:
    """Every request (in ``order``) through ``eng.route`` and ``eng.call``: the served model's quality, the record's
    cost, the sequential steps, whether it climbed past its first rung, the served model."""
    n = len(order)
    quality, cost, steps = np.empty(n), np.empty(n), np.empty(n)
    climbed = np.zeros(n, dtype=bool)
    served: list[str] = []
    for k, i in enumerate(order):

        def attempt(side: Side, record: ServedDecision, i: int = int(i)) -> Answer:
            m = record.model
            answer = t["answers"][m][i]
            return Answer(
                "" if answer is None else str(answer), int(t["input_tokens"][i]), int(t["output_tokens"][m][i])
            )

        _, record = eng.call(eng.route(t["prompts"][i]), attempt)
        called = [a.model for a in record.attempts]
        quality[k] = t["quality"][record.model][i]
        cost[k] = sum(a.cost for a in record.attempts if a.cost is not None)
        if not np.isclose(cost[k], sum(t["costs"][m][i] for m in called), rtol=1e-9, atol=1e-15):
            raise SystemExit("a record's cost differs from the table's prices x tokens")
        steps[k] = max(1, len(called) - 1)  # the first two rungs answer together
        climbed[k] = record.ladder is not None and record.model != record.ladder.chosen
        served.append(record.model)
    return {"quality": quality, "cost": cost, "steps": steps, "climbed": climbed, "served": np.array(served)}


def envelope_cost_for(points: np.ndarray, quality: float) -> float | None:
    """The least mean cost at which the upper concave envelope of ``points`` (cost, quality) reaches ``quality``."""
    pts = points[np.argsort(points[:, 0])]
    hull: list[np.ndarray] = []
    for p in pts:
        if hull and p[1] <= hull[-1][1]:  # costs no less and scores no better than a point kept
            continue
        while len(hull) >= 2 and _cross(hull[-1] - hull[-2], p - hull[-2]) >= 0:  # below the chord: not on top
            hull.pop()
        hull.append(p)
    env = np.array(hull)
    if env[:, 1].max() < quality - 1e-12:
        return None
    j = int(np.argmax(env[:, 1] >= quality - 1e-12))
    if j == 0:
        return float(env[0, 0])
    (c0, q0), (c1, q1) = env[j - 1], env[j]
    return float(c0 + (quality - q0) / (q1 - q0) * (c1 - c0))


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


def one_ladder(
    router: Any, t: dict[str, Any], models: Sequence[str], check: AgreementCheck, price: Any, weights: np.ndarray
) -> dict[str, Any]:
    """The online climb at each weight, and every offline row at its cost."""
    q, c, a = ({m: t[key][m] for m in models} for key in ("quality", "costs", "answers"))
    n, k = len(t["prompts"]), len(models)
    pred = router.predict_success(t["prompts"], list(models))
    offline: dict[str, LadderCurve] = {
        "router": evaluate_ladder(pred, t["prompts"], q, c),
        "router + escalation": evaluate_ladder(pred, t["prompts"], q, c, answers=a, check=check),
    }
    lengths = length_choices(t["prompts"], k)
    offline["length"] = evaluate_choices(lengths, q, c, name="length")
    offline["length + escalation"] = evaluate_choices(lengths, q, c, answers=a, check=check, name="length")
    randoms = [evaluate_choices(random_choices(n, k, s), q, c, name="random") for s in range(RANDOM_SEEDS)]
    ref = offline["router"]
    best = max(ref.singles, key=lambda m: ref.singles[m][1])
    best_cost, best_q = ref.singles[best]
    order = np.random.default_rng(SEED).permutation(n)
    rng = np.random.default_rng(SEED + 1)
    boot = rng.integers(0, n, (BOOTSTRAP, n))
    points = []
    for w in weights:
        t0 = time.time()
        got = drive(engine(router, models, float(w), check, price), t, order)
        mean_cost, mean_q = float(got["cost"].mean()), float(got["quality"].mean())
        at = {name: curve.quality_at(mean_cost) for name, curve in offline.items()}
        at["random"] = float(np.mean([r.quality_at(mean_cost) for r in randoms]))
        at["hull"] = ref.hull_quality_at(mean_cost)
        points.append(
            {
                "weight": float(w),
                "cost_usd_per_1k": 1e3 * mean_cost,
                "quality": mean_q,
                "quality_sd": float(got["quality"][boot].mean(axis=1).std()),
                "steps": float(got["steps"].mean()),
                "climbed": float(got["climbed"].mean()),
                "shares": {m: float(np.mean(got["served"] == m)) for m in models},
                "offline_at_cost": at,
            }
        )
        log(
            f"  λ={w:9.3g}: {1e3 * mean_cost:.3f} USD/1k, quality {mean_q:.3f} (offline router + escalation "
            f"{at['router + escalation']:.3f}, hull {at['hull']:.3f}), steps {got['steps'].mean():.2f} "
            f"[{time.time() - t0:.0f}s]"
        )
    pts = np.array([[p["cost_usd_per_1k"] / 1e3, p["quality"]] for p in points])
    online_cost = envelope_cost_for(pts, best_q)

    def x_best(cost: float | None) -> float | None:
        return None if cost is None else cost / best_cost

    return {
        "n_prompts": n,
        "ladder": list(ref.models),
        "singles": {m: {"cost_usd_per_1k": 1e3 * cq[0], "quality": cq[1]} for m, cq in ref.singles.items()},
        "best_single": {"model": best, "cost_usd_per_1k": 1e3 * best_cost, "quality": best_q},
        "online": points,
        "cost_x_best@best": {
            "online climb": x_best(online_cost),
            **{name: x_best(curve.cost_for(best_q)) for name, curve in offline.items()},
            "random": _mean_or_none([x_best(r.cost_for(best_q)) for r in randoms]),
        },
    }


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(np.mean([v for v in values if v is not None]))


def run(args: Any) -> dict[str, Any]:
    logging.getLogger("routellm_core.routers.difficulty").setLevel(logging.ERROR)
    price = prices()
    out: dict[str, Any] = {}
    tasks = TASKS[:1] if args.quick else TASKS
    for task in tasks:
        t0 = time.time()
        if args.quick:
            from routellm_core.routing.policy import build_policy

            router, router_name = build_policy("default", None, None, None).router, "shipped default (quick run)"
        else:
            router, router_name = loo_router(task), f"default recipe without {LEFT_OUT[task]}"
        log(f"{task}: router ({router_name}) ready in {time.time() - t0:.0f}s")
        ladders = {name: ms for name, (ms, unknown) in LADDERS[task].items() if unknown is None}
        if args.quick:
            ladders = dict(list(ladders.items())[:1])
        models = sorted({m for ms in ladders.values() for m in ms})
        t = token_tables(task, models, price)
        if args.quick:
            keep = np.arange(200)
            t = {
                "prompts": [t["prompts"][i] for i in keep],
                "quality": {m: v[keep] for m, v in t["quality"].items()},
                "costs": {m: v[keep] for m, v in t["costs"].items()},
                "answers": {m: [v[i] for i in keep] for m, v in t["answers"].items()},
                "input_tokens": t["input_tokens"][keep],
                "output_tokens": {m: v[keep] for m, v in t["output_tokens"].items()},
            }
        check = AgreementCheck(kind=ZEROEVAL_ANSWER_KINDS[task])
        weights = WEIGHTS[::5] if args.quick else WEIGHTS
        out[task] = {"router": router_name, "answer_kind": check.kind, "ladders": {}}
        for name, ms in ladders.items():
            log(f"{task} / {name}")
            out[task]["ladders"][name] = one_ladder(router, t, ms, check, price, weights)
    return out


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def section(res: dict[str, Any] | None) -> list[str]:
    """The BENCHMARKS.md section."""
    if not res:
        return [SECTION, "", "Not run yet: `python -m bench.ladder_climb`."]
    lines = [
        SECTION,
        "",
        f"`{res['command']}` ({res['seconds']:.0f} s; {res['machine']}). " + " ".join(__doc__.split("\n\n")[1].split()),
        "",
        "Each online row is one cost weight λ run through the engine over the whole task; the offline columns are "
        "the other policies' quality at the online row's mean cost, in the same run (the router's offline curves "
        "knowing the models' mean costs; length; random mixes; the single models' hull). *steps*: mean sequential "
        "model calls; *climbed*: share of requests served above the rung the objective chose.",
    ]
    for task, entry in res["tasks"].items():
        for name, lad in entry["ladders"].items():
            best = lad["best_single"]
            lines += [
                "",
                f"**{task} — {name}** ({lad['n_prompts']} problems; router: {entry['router']}; best single: "
                f"{best['model']}, {best['quality']:.3f} at {best['cost_usd_per_1k']:.3f} USD per 1k). Singles: "
                + ", ".join(f"{m} {s['quality']:.3f} @ {s['cost_usd_per_1k']:.3f}" for m, s in lad["singles"].items())
                + ".",
                "",
                "| λ | USD per 1k | online climb (± sd) | offline router + escalation | offline router | length "
                "+ escalation | length | random | hull | steps | climbed |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for p in lad["online"]:
                at = p["offline_at_cost"]
                lines.append(
                    f"| {p['weight']:.3g} | {p['cost_usd_per_1k']:.3f} | **{p['quality']:.3f}** ± "
                    f"{p['quality_sd']:.3f} | {_f(at['router + escalation'])} | {_f(at['router'])} | "
                    f"{_f(at['length + escalation'])} | {_f(at['length'])} | {_f(at['random'])} | {_f(at['hull'])} | "
                    f"{p['steps']:.2f} | {p['climbed']:.2f} |"
                )
            cx = lad["cost_x_best@best"]
            lines += [
                "",
                "Cost to reach the best single model's quality, × its cost: "
                + ", ".join(f"{k} {_f(v, '.2f')}" for k, v in cx.items())
                + ".",
            ]
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = bench_parser("bench.ladder_climb", __doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 GSM8K problems, one ladder, 4 weights")
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    start = time.time()
    models = sorted({m for task in TASKS for ms, _ in LADDERS[task].values() for m in ms} & set(PRICE_REFS))
    res: dict[str, Any] = {
        "command": " ".join(["python -m bench.ladder_climb", *given]),
        "machine": machine_info(),
        "prices_usd_per_1m_tokens": {m: list(prices()[m]) for m in models},
        "tasks": run(args),
    }
    res["seconds"] = time.time() - start
    return publish(res, args, "ladder_climb", SECTION, section)


if __name__ == "__main__":
    main()
