"""Escalation, offline: a cheap answer first, a check, the strong model only when the check is not confident.

Everything is computed from ZeroEval's graded answers (``zeroeval/<task>_answers.csv``; no model is called) for
``gsm``, ``crux`` and ``math-l5`` and several (strong; cheap, second) triples. Costs are priced per token (the
table :data:`PRICES`, USD per 1M input / output tokens, from the providers' public price pages): input tokens =
prompt characters / 4, output tokens = the model's raw output characters (``<task>_output_chars.csv``) / 4. The
ZeroEval prompt template around each question is not counted (the same for every model).

Compared on the same cost axis, in the same run:

- **always cheap** (the first cheap model), **always strong**, the **oracle** (knows which prompts the cheap model
  gets wrong and the strong one right; sends just those, cheapest first);
- **prompt-only routing** between strong and the first cheap model: the shipped ``default`` router's win rates
  (``pairwise_win_rate(strong, cheap)``), prompt length (longer -> strong), random (mean over 5 seeds);
- **escalation** (``routellm_core.evaluate_escalation``; the default router pre-routes, its threshold swept too):
  *agreement* (the second cheap model's final answer against the first, the grader's own comparison rule),
  *agreement without pre-routing*, *answer features* (length ratio, no answer, refusal), and the *learned
  combiner* (logistic over both checks' signals and the router's win rate) scored **leave-one-task-out**: fitted
  on the other two tasks' prompts of the same triple, applied to this one.

The shipped ``default`` router was trained with ZeroEval's CRUX and MATH-L5 golden labels and with GSM8K's
(``gsm`` is the GSM8K test set): its prompt-only numbers here are **in-domain**; the escalation checks need no
training (the combiner is left-one-task-out). So the run also trains the ``default`` recipe on every shared source
but the task's own (``bench.ladder.loo_router``, as a user's traffic is unseen) and reports prompt-only routing and
agreement + pre-route with *that* router on both sides, the CRUX target counted against it too.

One row is an idea measured, not shipped: *learned combiner per predicted strong cost* escalates first where a
wrong cheap answer is likeliest per predicted dollar of the strong answer (prompt tokens, and the first cheap answer's
length standing for the strong answer's), a cost-aware order an engine could apply online; not counted toward a
target.

Beside them, not a policy: the **agreement-only bound** (``bench.agreement_bound``), the best cost-quality reachable
by serving the strong answer or one both cheap models agree on, knowing which agreed answers are right: how far any
agreement check could go.

For each: cost (x always-strong's) to reach 95%, 99% and 100% of the strong model's accuracy (a random mix of two
frontier policies where needed), the mean sequential calls there, and the best quality reached.

Run: ``python -m bench.escalation`` (well under a minute on 2 cores); writes ``bench/results/escalation.json`` and
its section of ``BENCHMARKS.md``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.agreement_bound import agreement_bound
from bench.common import SEED, bench_parser, log, machine_info, publish
from routellm_core.data.zeroeval_answers import ZEROEVAL_ANSWER_KINDS, ZEROEVAL_ANSWER_TASKS, load_answer_table
from routellm_core.escalation import AgreementCheck, AnswerFeaturesCheck, CheckInput, LogisticCombiner
from routellm_core.escalation.answers import answers_agree
from routellm_core.escalation.evaluate import EscalationCurve, evaluate_escalation

SECTION = "## Escalation: cheap answer first, check, then the strong model (offline, ZeroEval answers)"
#: USD per 1M (input, output) tokens. Sources (list prices, late 2024): OpenAI https://openai.com/api/pricing
#: (gpt-4o-2024-08-06 2.50/10.00, gpt-4o-mini 0.15/0.60, gpt-3.5-turbo-0125 0.50/1.50); Google
#: https://ai.google.dev/pricing (gemini-1.5-flash, prompts <= 128k tokens, after the Aug 2024 cut: 0.075/0.30);
#: Anthropic https://www.anthropic.com/pricing (claude-3-5-sonnet 3/15, claude-3-haiku 0.25/1.25); Together AI
#: https://www.together.ai/pricing (Llama-3.1-8B-Instruct-Turbo 0.18/0.18; Qwen2-7B-Instruct, gemma-2-9b-it at
#: the serverless size tiers "up to 8B" 0.20/0.20 and "8.1B-21B" 0.30/0.30).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-2024-08-06": (2.50, 10.00),
    "gpt-4o-mini-2024-07-18": (0.15, 0.60),
    "gpt-3.5-turbo-0125": (0.50, 1.50),
    "gemini-1.5-flash": (0.075, 0.30),
    "claude-3-5-sonnet-20240620": (3.00, 15.00),
    "claude-3-haiku-20240307": (0.25, 1.25),
    "Meta-Llama-3.1-8B-Instruct": (0.18, 0.18),
    "Qwen2-7B-Instruct": (0.20, 0.20),
    "gemma-2-9b-it": (0.30, 0.30),
}
#: (strong, (first cheap, second cheap)).
TRIPLES: tuple[tuple[str, tuple[str, str]], ...] = (
    ("gpt-4o-2024-08-06", ("gpt-4o-mini-2024-07-18", "gemini-1.5-flash")),
    ("gpt-4o-2024-08-06", ("gemini-1.5-flash", "gpt-4o-mini-2024-07-18")),
    ("gpt-4o-2024-08-06", ("Meta-Llama-3.1-8B-Instruct", "Qwen2-7B-Instruct")),
    ("gpt-4o-2024-08-06", ("Meta-Llama-3.1-8B-Instruct", "gemma-2-9b-it")),
    ("claude-3-5-sonnet-20240620", ("claude-3-haiku-20240307", "gpt-4o-mini-2024-07-18")),
)
#: Shares of the strong model's accuracy at which the cost is reported.
LEVELS = (0.95, 0.99, 1.00)
RANDOM_SEEDS = 5
ESCALATION_ROWS = (
    "escalation: agreement + pre-route",
    "escalation: agreement, no pre-route",
    "escalation: answer features + pre-route",
    "escalation: learned combiner + pre-route (LOTO)",
    "escalation: shipped combiner recipe + pre-route (LOTO)",
)
#: Not a held-out row: the shipped combiner was fitted on all three tasks (never counted toward the targets).
SHIPPED_IN_SAMPLE_ROW = "escalation: shipped combiner + pre-route (in-sample)"
#: The same two policies with the default recipe trained without the task (prompt-only and the pre-route).
LOO_PROMPT_ROW = "prompt-only: default, task left out"
LOO_ESCALATION_ROW = "escalation: agreement + pre-route by the default, task left out"
PROMPT_ROWS = ("prompt-only: default", "prompt-only: length", "prompt-only: random", LOO_PROMPT_ROW)
POINT_ROWS = ("always cheap", "always strong", "oracle")
#: Not shipped (an idea measured): escalate first where a wrong cheap answer is likeliest per predicted strong dollar.
PER_COST_ROW = "exploratory: learned combiner per predicted strong cost + pre-route (LOTO; not shipped)"
#: Not a policy (``bench.agreement_bound``): never counted toward a target, shown to say how far agreement could go.
BOUND_ROW = "bound: strong, or an answer the cheap pair agree on (knowing which are right)"


def _triple_name(strong: str, cheap: Sequence[str]) -> str:
    return f"{strong}; {cheap[0]}, {cheap[1]}"


def _priced(table: Any, model: str, output_chars: np.ndarray) -> np.ndarray:
    """USD per prompt at ``model``'s price: the prompt's characters / 4 in, ``output_chars`` / 4 out."""
    p_in, p_out = PRICES[model]
    in_tokens = np.array([len(p) for p in table.prompts], dtype=np.float64) / 4.0
    return (in_tokens * p_in + output_chars / 4.0 * p_out) / 1e6


def _costs(table: Any, models: Sequence[str]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for m in models:
        chars = np.array([np.nan if c is None else c for c in table.output_chars[m]], dtype=np.float64)
        out[m] = _priced(table, m, np.where(np.isfinite(chars), chars, np.nanmedian(chars)))
    return out


def _point_curve(cost: float, quality: float) -> EscalationCurve:
    one = np.ones(1)
    return EscalationCurve(np.array([[cost, quality]]), one, one * 0, one * np.inf, one * 0, 0, 1)


def _oracle(qs: np.ndarray, qc: np.ndarray, cs: np.ndarray, cc: np.ndarray) -> EscalationCurve:
    """Start from always-cheap; switch the prompts the strong model gets right and the cheap one wrong, cheapest
    switch first (each gains the same)."""
    n = len(qs)
    gain = qs - qc
    cand = np.flatnonzero(gain > 0)
    order = cand[np.argsort((cs - cc)[cand], kind="stable")]
    cost = cc.sum() + np.r_[0.0, np.cumsum((cs - cc)[order])]
    quality = qc.sum() + np.r_[0.0, np.cumsum(gain[order])]
    k = len(cost)
    return EscalationCurve(
        np.column_stack([cost / n, quality / n]),
        np.ones(k),
        np.arange(k) / n,
        np.full(k, np.nan),
        np.full(k, np.nan),
        n,
        k,
    )


def _mean_cost_for(curves: list[EscalationCurve], q: float) -> tuple[float | None, float | None]:
    costs = [c.cost_for(q) for c in curves]
    calls = [c.calls_for(q) for c in curves]
    if any(x is None for x in costs):
        return None, None
    return float(np.mean(costs)), float(np.mean(calls))  # type: ignore[arg-type]


def _batch(table: Any, cheap: Sequence[str], win: np.ndarray) -> CheckInput:
    c0 = cheap[0]
    chars = [0.0 if c is None else c for c in table.output_chars[c0]]
    return CheckInput(
        first=table.answers[c0],
        others=[table.answers[m] for m in cheap[1:]],
        prompts=list(table.prompts),
        outputs=table.outputs.get(c0),
        output_chars=chars,
        win_rates=win.tolist(),
    )


def per_predicted_cost(conf: np.ndarray, table: Any, strong: str, first: str) -> np.ndarray:
    """Confidences re-ordered by P(cheap answer wrong) / the strong answer's predicted cost (prompt tokens, and the
    first cheap answer's length as the strong answer's), as ranks in [0, 1]: escalating lowest first spends the
    strong model where a wrong answer is likeliest per dollar (what a cost-aware escalation would do online)."""
    chars = np.array([0.0 if c is None else c for c in table.output_chars[first]], dtype=np.float64)
    value = (1.0 - np.asarray(conf, dtype=np.float64)) / (_priced(table, strong, chars) + 1e-15)
    rank = np.argsort(np.argsort(-value, kind="stable"), kind="stable")
    return rank / max(len(rank) - 1, 1)


def _combiner(task: str) -> LogisticCombiner:
    return LogisticCombiner(checks=(AgreementCheck(kind=ZEROEVAL_ANSWER_KINDS[task]), AnswerFeaturesCheck()))


# ---- the shipped combiner's recipe (scripts/build_combiner.py writes its checkpoint) ---------------------------
#: The signals the shipped combiner reads: those that mean the same offline (ZeroEval's graded answers) and online
#: (a routed call's cheap answers). Left out: log-probabilities and self-verification (not in the data), and the
#: signals whose offline meaning differs from the online one (``no_answer`` / ``first_missing`` /
#: ``others_missing``: offline "the grader extracted no answer", online "the answer was empty", which escalates
#: before any check; ``log_answer_chars``: offline the extracted final answer, online the whole reply;
#: ``log_output_chars`` / ``log_length_ratio``: offline every reply is reasoning in ZeroEval's forced JSON format,
#: online replies are not, and it adds nothing left-one-task-out; ``agree_0``: a copy of ``agreement``).
SHIPPED_SIGNALS: tuple[str, ...] = (
    "agreement.agreement",
    "answer_features.log_prompt_chars",
    "answer_features.refusal",
    "win_rate_logit",
)


def shipped_recipe() -> LogisticCombiner:
    """The shipped combiner, unfitted: agreement read with the ``auto`` answer kind online (offline the answers are
    the grader's final answers, compared with each task's grader rule), answer features, the router's win rate."""
    return LogisticCombiner(checks=(AgreementCheck(kind="auto"), AnswerFeaturesCheck()), signal_names=SHIPPED_SIGNALS)


def shipped_training_rows(router: Any) -> dict[str, tuple[dict[str, np.ndarray], np.ndarray]]:
    """Per task: the shipped combiner's signals and labels (was the first cheap answer right?), every triple's
    (first, second) cheap pair pooled. The win rate is the router's own (its reference pair), as a routed call
    records it."""
    out: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    for task in ZEROEVAL_ANSWER_TASKS:
        table = load_answer_table(task)
        win = np.clip(np.asarray(router.predict_win_rate(list(table.prompts)), dtype=np.float64), 0.0, 1.0)
        parts, labels = [], []
        for _strong, cheap in TRIPLES:
            signals = _combiner(task).signals(_batch(table, cheap, win))
            parts.append({k: signals[k] for k in SHIPPED_SIGNALS})
            labels.append(np.asarray(table.correct[cheap[0]], dtype=np.float64))
        out[task] = ({k: np.concatenate([p[k] for p in parts]) for k in SHIPPED_SIGNALS}, np.concatenate(labels))
    return out


def fit_shipped_combiner(
    rows: dict[str, tuple[dict[str, np.ndarray], np.ndarray]], tasks: Sequence[str] | None = None
) -> LogisticCombiner:
    """The shipped recipe fitted on ``tasks``' rows (default: all)."""
    use = list(rows) if tasks is None else list(tasks)
    signals = {k: np.concatenate([rows[t][0][k] for t in use]) for k in SHIPPED_SIGNALS}
    return shipped_recipe().fit_signals(signals, np.concatenate([rows[t][1] for t in use]))


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    from routellm_core.evaluation.metrics import _roc_auc

    return _roc_auc(scores[labels > 0.5], scores[labels < 0.5])


def shipped_quality(router: Any) -> dict[str, Any]:
    """How well the shipped combiner's P(cheap answer right) ranks answers, per task (all triples pooled): ROC AUC
    and log loss of the shipped checkpoint (in-sample: it was fitted on all three tasks) and of the same recipe
    fitted on the other two tasks (leave-one-task-out), next to agreement alone; and whether a refit of the recipe
    reproduces the shipped weights."""
    from routellm_core.escalation.checks import shipped_combiner

    rows = shipped_training_rows(router)
    shipped = shipped_combiner()
    refit = fit_shipped_combiner(rows)
    out: dict[str, Any] = {
        "signals": list(SHIPPED_SIGNALS),
        "weights": shipped.weights(),
        "refit_max_abs_weight_diff": float(max(abs(refit.weights()[k] - v) for k, v in shipped.weights().items())),
        "tasks": {},
    }
    for task, (signals, y) in rows.items():
        loto = fit_shipped_combiner(rows, [t for t in rows if t != task]).predict_signals(signals)
        ins = shipped.predict_signals(signals)
        entry: dict[str, Any] = {"n_rows": len(y), "cheap_accuracy": float(y.mean())}
        for name, p in (("agreement", signals["agreement.agreement"]), ("in_sample", ins), ("loto", loto)):
            entry[f"auc_{name}"] = _auc(np.asarray(p, dtype=np.float64), y)
        for name, p in (("in_sample", ins), ("loto", loto)):
            q = np.clip(p, 1e-9, 1 - 1e-9)
            entry[f"log_loss_{name}"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
            entry[f"mean_p_{name}"] = float(np.mean(p))
        out["tasks"][task] = entry
    return out


def run(router: Any, loo_routers: dict[str, Any]) -> dict[str, Any]:
    """Every policy on every task and triple; ``loo_routers``: per task, the default recipe trained without it."""
    tables = {t: load_answer_table(t) for t in ZEROEVAL_ANSWER_TASKS}
    # win rates of the default router (and of the one that never saw the task) for every (task, strong, first cheap)
    wins: dict[tuple[str, str, str], np.ndarray] = {}
    loo_wins: dict[tuple[str, str, str], np.ndarray] = {}
    for task, table in tables.items():
        for strong, cheap in TRIPLES:
            key = (task, strong, cheap[0])
            if key not in wins:
                wins[key] = np.clip(router.pairwise_win_rate(list(table.prompts), strong, cheap[0]), 0.0, 1.0)
                loo_wins[key] = np.clip(
                    loo_routers[task].pairwise_win_rate(list(table.prompts), strong, cheap[0]), 0.0, 1.0
                )
    # leave-one-task-out combiner confidences
    combined: dict[tuple[str, str], np.ndarray] = {}
    for strong, cheap in TRIPLES:
        signals = {}
        labels = {}
        for task, table in tables.items():
            batch = _batch(table, cheap, wins[(task, strong, cheap[0])])
            signals[task] = _combiner(task).signals(batch)
            labels[task] = np.asarray(table.correct[cheap[0]], dtype=np.float64)
        for task in tables:
            train = [t for t in tables if t != task]
            merged = {k: np.concatenate([signals[t][k] for t in train]) for k in signals[task]}
            model = _combiner(task).fit_signals(merged, np.concatenate([labels[t] for t in train]))
            combined[(task, _triple_name(strong, cheap))] = model.predict_signals(signals[task])
    # the shipped combiner (in-sample) and its recipe fitted on the other two tasks (LOTO), every triple's rows
    from routellm_core.escalation.checks import shipped_combiner

    recipe_rows = shipped_training_rows(router)
    shipped = shipped_combiner()
    shipped_conf: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for task, (task_signals, _y) in recipe_rows.items():
        n = len(tables[task].prompts)
        loto = fit_shipped_combiner(recipe_rows, [t for t in recipe_rows if t != task]).predict_signals(task_signals)
        ins = shipped.predict_signals(task_signals)
        for j, (strong, cheap) in enumerate(TRIPLES):
            block = slice(j * n, (j + 1) * n)
            shipped_conf[(task, _triple_name(strong, cheap))] = (ins[block], loto[block])

    out: dict[str, Any] = {}
    for task, table in tables.items():
        n = len(table.prompts)
        kind = ZEROEVAL_ANSWER_KINDS[task]
        out[task] = {"n_prompts": n, "answer_kind": kind, "triples": {}}
        for strong, cheap in TRIPLES:
            name = _triple_name(strong, cheap)
            models = [strong, *cheap]
            quality = {m: np.asarray(table.correct[m], dtype=np.float64) for m in models}
            costs = _costs(table, models)
            win = wins[(task, strong, cheap[0])]
            qs, qc = quality[strong], quality[cheap[0]]
            cs, cc = costs[strong], costs[cheap[0]]
            lengths = np.array([len(p) for p in table.prompts], dtype=np.float64)
            common = {"strong": strong, "prompts": list(table.prompts)}
            curves: dict[str, list[EscalationCurve]] = {
                "always cheap": [_point_curve(float(cc.mean()), float(qc.mean()))],
                "always strong": [_point_curve(float(cs.mean()), float(qs.mean()))],
                "oracle": [_oracle(qs, qc, cs, cc)],
                "prompt-only: default": [
                    evaluate_escalation(
                        table.answers, quality, costs, cheap=[cheap[0]], check="none", win_rates=win, **common
                    )
                ],
                "prompt-only: length": [
                    evaluate_escalation(
                        table.answers, quality, costs, cheap=[cheap[0]], check="none", win_rates=lengths, **common
                    )
                ],
                "prompt-only: random": [
                    evaluate_escalation(
                        table.answers,
                        quality,
                        costs,
                        cheap=[cheap[0]],
                        check="none",
                        win_rates=np.random.default_rng(SEED + s).random(n),
                        **common,
                    )
                    for s in range(RANDOM_SEEDS)
                ],
            }
            loo_win = loo_wins[(task, strong, cheap[0])]
            curves[LOO_PROMPT_ROW] = [
                evaluate_escalation(
                    table.answers, quality, costs, cheap=[cheap[0]], check="none", win_rates=loo_win, **common
                )
            ]
            batch = _batch(table, cheap, win)
            agree = AgreementCheck(kind=kind)
            chars = batch.output_chars
            curves["escalation: agreement + pre-route"] = [
                evaluate_escalation(
                    table.answers, quality, costs, cheap=list(cheap), check=agree, win_rates=win, **common
                )
            ]
            curves[LOO_ESCALATION_ROW] = [
                evaluate_escalation(
                    table.answers, quality, costs, cheap=list(cheap), check=agree, win_rates=loo_win, **common
                )
            ]
            curves["escalation: agreement, no pre-route"] = [
                evaluate_escalation(table.answers, quality, costs, cheap=list(cheap), check=agree, **common)
            ]
            curves["escalation: answer features + pre-route"] = [
                evaluate_escalation(
                    table.answers,
                    quality,
                    costs,
                    cheap=[cheap[0]],
                    check=AnswerFeaturesCheck(),
                    win_rates=win,
                    outputs=batch.outputs,
                    output_chars=chars,
                    **common,
                )
            ]
            curves["escalation: learned combiner + pre-route (LOTO)"] = [
                evaluate_escalation(
                    table.answers,
                    quality,
                    costs,
                    cheap=list(cheap),
                    check=combined[(task, name)],
                    win_rates=win,
                    **common,
                )
            ]
            curves[PER_COST_ROW] = [
                evaluate_escalation(
                    table.answers,
                    quality,
                    costs,
                    cheap=list(cheap),
                    check=per_predicted_cost(combined[(task, name)], table, strong, cheap[0]),
                    win_rates=win,
                    **common,
                )
            ]
            for row, conf in zip(
                (SHIPPED_IN_SAMPLE_ROW, "escalation: shipped combiner recipe + pre-route (LOTO)"),
                shipped_conf[(task, name)],
            ):
                curves[row] = [
                    evaluate_escalation(
                        table.answers, quality, costs, cheap=list(cheap), check=conf, win_rates=win, **common
                    )
                ]
            curves[BOUND_ROW] = [
                agreement_bound(
                    quality,
                    costs,
                    table.answers,
                    anchor=strong,
                    others=list(cheap),
                    agree=lambda x, y, kind=kind: answers_agree(x, y, kind),
                )
            ]
            strong_cost = float(cs.mean())
            q_strong = float(qs.mean())
            agreed = np.asarray(agree.signals(batch)["agreement"], dtype=bool)
            rows: dict[str, Any] = {}
            for row, cs_list in curves.items():
                entry: dict[str, Any] = {"max_quality": float(np.mean([c.max_quality for c in cs_list]))}
                for level in LEVELS:
                    cost, calls = _mean_cost_for(cs_list, level * q_strong)
                    entry[f"cost_x_strong@{level:.2f}"] = None if cost is None else cost / strong_cost
                    entry[f"calls@{level:.2f}"] = None if row == BOUND_ROW else calls
                    entry[f"cost_usd_per_1k@{level:.2f}"] = None if cost is None else cost * 1000
                if row.startswith(("escalation", "prompt-only")) and row != "prompt-only: random":
                    entry["hull"] = cs_list[0].as_dict(hull_only=True)
                rows[row] = entry
            # never costlier than prompt-only (default) at equal quality: on a grid of its reachable qualities
            po = curves["prompt-only: default"][0]
            esc = curves["escalation: agreement + pre-route"][0]
            grid = np.linspace(po.points[0, 1], po.max_quality, 101)
            worst = max((esc.cost_for(q) or np.inf) - (po.cost_for(q) or 0.0) for q in grid)
            po, esc = curves[LOO_PROMPT_ROW][0], curves[LOO_ESCALATION_ROW][0]
            grid = np.linspace(po.points[0, 1], po.max_quality, 101)
            worst_loo = max((esc.cost_for(q) or np.inf) - (po.cost_for(q) or 0.0) for q in grid)
            out[task]["triples"][name] = {
                "strong": strong,
                "cheap": list(cheap),
                "q_strong": q_strong,
                "q_cheap": float(qc.mean()),
                "q_second": float(quality[cheap[1]].mean()),
                "agreement_rate": float(np.mean(agreed)),
                "accuracy_where_agreed": {"cheap": float(qc[agreed].mean()), "strong": float(qs[agreed].mean())},
                "accuracy_where_disagreed": {"cheap": float(qc[~agreed].mean()), "strong": float(qs[~agreed].mean())},
                "strong_cost_usd_per_1k": strong_cost * 1000,
                "cheap_cost_usd_per_1k": float(cc.mean()) * 1000,
                "second_cost_usd_per_1k": float(costs[cheap[1]].mean()) * 1000,
                "escalation_minus_prompt_only_max_cost_usd_per_1k": worst * 1000,
                "escalation_minus_prompt_only_max_cost_usd_per_1k_task_left_out": worst_loo * 1000,
                "rows": rows,
            }
            log(f"{task} / {name}: done")
    return out


def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    out: list[dict[str, Any]] = []
    gsm = res["tasks"]["gsm"]["triples"]
    for strong, cheap in TRIPLES[0], TRIPLES[2]:
        t = gsm[_triple_name(strong, cheap)]["rows"]
        best = min(
            ((t[r]["cost_x_strong@0.99"], r) for r in ESCALATION_ROWS if t[r]["cost_x_strong@0.99"] is not None),
            default=(None, None),
        )
        agree = t["escalation: agreement + pre-route"]["cost_x_strong@0.99"]
        out.append(
            {
                "target": f"GSM8K: >=99% of {strong}'s accuracy at <=0.35x its cost ({cheap[0]} + {cheap[1]})",
                "agreement_value": agree,
                "best_value": best[0],
                "best_row": best[1],
                "met": agree is not None and agree <= 0.35,
            }
        )
    crux = res["tasks"]["crux"]["triples"]
    for strong, cheap in TRIPLES:
        t = crux[_triple_name(strong, cheap)]["rows"]
        po = t["prompt-only: default"]["cost_usd_per_1k@0.95"]
        esc = t["escalation: agreement + pre-route"]["cost_usd_per_1k@0.95"]
        ratio = None if po is None or esc is None else esc / po
        ratios = [
            (t[r]["cost_usd_per_1k@0.95"] / po, r)
            for r in ESCALATION_ROWS
            if po is not None and t[r]["cost_usd_per_1k@0.95"] is not None
        ]
        best = min(ratios, default=(None, None))
        bound = t[BOUND_ROW]["cost_usd_per_1k@0.95"]
        out.append(
            {
                "target": f"CRUX: 95% of strong accuracy at <=0.7x prompt-only (default)'s cost ({_triple_name(strong, cheap)})",
                "agreement_value": ratio,
                "best_value": best[0],
                "best_row": best[1],
                "bound_value": None if po is None or bound is None else bound / po,
                "met": ratio is not None and ratio <= 0.7,
            }
        )
    for strong, cheap in TRIPLES:
        t = crux[_triple_name(strong, cheap)]["rows"]
        po = t[LOO_PROMPT_ROW]["cost_usd_per_1k@0.95"]
        esc = t[LOO_ESCALATION_ROW]["cost_usd_per_1k@0.95"]
        ratio = None if po is None or esc is None else esc / po
        bound = t[BOUND_ROW]["cost_usd_per_1k@0.95"]
        out.append(
            {
                "target": "CRUX, the default trained without CRUX on both sides: 95% of strong accuracy at <=0.7x "
                f"prompt-only's cost ({_triple_name(strong, cheap)})",
                "agreement_value": ratio,
                "bound_value": None if po is None or bound is None else bound / po,
                "met": ratio is not None and ratio <= 0.7,
            }
        )
    for key, who in (("", "(default)"), ("_task_left_out", "(the default trained without the task on both sides)")):
        worst = max(
            tr[f"escalation_minus_prompt_only_max_cost_usd_per_1k{key}"]
            for task in res["tasks"].values()
            for tr in task["triples"].values()
        )
        out.append(
            {
                "target": f"every task and triple: escalation (agreement + pre-route) never costlier than prompt-only "
                f"{who} at equal quality",
                "agreement_value": worst,
                "met": worst <= 1e-9,
            }
        )
    return out


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def section(res: dict[str, Any] | None) -> list[str]:
    if not res:
        return [SECTION, "", "Not run yet: `python -m bench.escalation`."]
    lines = [
        SECTION,
        "",
        f"`{res['command']}` on {res['machine']['nproc']} CPUs ({res['machine']['cpu_model']}), "
        f"{res['machine']['date_utc']}, {res['seconds']:.0f} s. Offline: ZeroEval's graded answers, no model called. "
        "Costs priced per token (`PRICES` in `bench/escalation.py`, USD per 1M input/output tokens from the "
        "providers' price pages; input = prompt chars / 4, output = raw output chars / 4). Cost columns: mean cost "
        "as a multiple of always-strong's, to reach 95% / 99% / 100% of the strong model's accuracy (a random mix "
        "of two frontier policies where needed; — = not reached); calls: mean sequential model calls per request "
        "at the 99% point. Escalation pays both cheap models (run concurrently) on every prompt not pre-routed, "
        "and the strong model too when escalated; a pre-routed prompt pays only the strong model.",
        "",
        "The `default` router's prompt-only numbers are **in-domain** (it was trained with CRUX, MATH-L5 and GSM8K "
        "golden labels); the agreement and answer-feature checks need no training; the learned combiner is "
        "**leave-one-task-out** (fitted on the other two tasks, same triple). The rows *task left out* use the "
        "default recipe trained on every shared source but the task's own, for prompt-only routing and for the "
        "pre-route alike (the router a user's unseen traffic meets).",
        "",
        f"*{PER_COST_ROW}* is an idea measured, not shipped: the learned combiner's confidences re-ordered by P(cheap "
        "answer wrong) / the strong answer's predicted cost (prompt tokens, and the first cheap answer's length "
        "standing for the strong answer's), escalating where a wrong answer is likeliest per dollar; not counted "
        "toward a target.",
        "",
        f"*{BOUND_ROW}* is not a policy (`bench.agreement_bound`): the best any policy reaches that serves the "
        "strong model's answer or one both cheap models agree on, picking per prompt with full knowledge of which "
        "agreed answers are right and never paying for a pair that disagrees. Where a target lies beyond it, a "
        "policy meets it only by serving cheap answers the pair did not confirm (the pre-route's unchecked share, "
        "or answers kept although the pair disagreed): it needs a signal that tells right from wrong among those.",
        "",
        "### Targets (issue 20)",
        "",
    ]
    for t in res["targets"]:
        val = t["agreement_value"]
        extra = ""
        if "best_row" in t and t.get("best_value") is not None:
            extra = f"; best escalation row: {t['best_row']}: {t['best_value']:.3f}"
        if t.get("bound_value") is not None:
            extra += f"; agreement-only bound (not a policy) {t['bound_value']:.3f}"
        verdict = "**met**" if t["met"] else "**not met**"
        lines.append(f"- {verdict}: {t['target']}: agreement + pre-route {_fmt(val, 3)}{extra}")
    lines += _shipped_section(res.get("shipped_combiner"))
    for task, tres in res["tasks"].items():
        lines += ["", f"### {task} ({tres['n_prompts']} prompts; answers compared as `{tres['answer_kind']}`)", ""]
        for name, tr in tres["triples"].items():
            lines += [
                f"**{name}** — accuracy strong {tr['q_strong']:.4f}, cheap {tr['q_cheap']:.4f}, second "
                f"{tr['q_second']:.4f}; cheap answers agree on {tr['agreement_rate']:.1%} (accuracy there: cheap "
                f"{tr['accuracy_where_agreed']['cheap']:.3f}, strong {tr['accuracy_where_agreed']['strong']:.3f}; where "
                f"they disagree: cheap {tr['accuracy_where_disagreed']['cheap']:.3f}, strong "
                f"{tr['accuracy_where_disagreed']['strong']:.3f}); USD per 1k requests: "
                f"strong {tr['strong_cost_usd_per_1k']:.3f}, cheap {tr['cheap_cost_usd_per_1k']:.3f}, second "
                f"{tr['second_cost_usd_per_1k']:.3f}",
                "",
                "| policy | best quality | cost @95% | cost @99% | cost @100% | calls @99% |",
                "|---|---|---|---|---|---|",
            ]
            for row, e in tr["rows"].items():
                lines.append(
                    f"| {row} | {e['max_quality']:.4f} | {_fmt(e['cost_x_strong@0.95'], 3)} | "
                    f"{_fmt(e['cost_x_strong@0.99'], 3)} | {_fmt(e['cost_x_strong@1.00'], 3)} | "
                    f"{_fmt(e['calls@0.99'])} |"
                )
            lines.append("")
    return lines


def _shipped_section(sc: dict[str, Any] | None) -> list[str]:
    if not sc:
        return []
    lines = [
        "",
        '### Shipped combiner (`Escalation(check="combined")`)',
        "",
        "Fitted by `scripts/build_combiner.py` on all three tasks, every triple's (first, second) cheap pair pooled, "
        f"signals {', '.join(f'`{k}`' for k in sc['signals'])} (win rate: the `default` router's own, as a routed "
        "call records it). ROC AUC and log loss of its P(first cheap answer right) per task, all triples pooled: "
        "*in-sample* = the shipped weights (they saw this task); *LOTO* = the same recipe fitted on the other two "
        "tasks (a held-out estimate). The cost tables below have both as rows (`shipped combiner ...`); only the "
        "LOTO row counts toward the targets. A refit of the recipe reproduces the shipped weights to "
        f"{sc['refit_max_abs_weight_diff']:.1e}.",
        "",
        "| task | rows | cheap accuracy | AUC agreement alone | AUC in-sample | AUC LOTO | log loss in-sample | "
        "log loss LOTO | mean P in-sample | mean P LOTO |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, q in sc["tasks"].items():
        lines.append(
            f"| {task} | {q['n_rows']:,} | {q['cheap_accuracy']:.3f} | {q['auc_agreement']:.3f} | "
            f"{q['auc_in_sample']:.3f} | {q['auc_loto']:.3f} | {q['log_loss_in_sample']:.3f} | "
            f"{q['log_loss_loto']:.3f} | {q['mean_p_in_sample']:.3f} | {q['mean_p_loto']:.3f} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = bench_parser("bench.escalation", __doc__.splitlines()[0])
    args = parser.parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    start = time.time()
    from bench.ladder import loo_router
    from routellm_core import load_router

    loo = {}
    for task in ZEROEVAL_ANSWER_TASKS:
        t0 = time.time()
        loo[task] = loo_router(task)
        log(f"default recipe without {task} trained in {time.time() - t0:.0f}s")
    res: dict[str, Any] = {
        "command": " ".join(["python -m bench.escalation", *given]),
        "machine": machine_info(),
        "prices_usd_per_1m_tokens": {m: {"input": p[0], "output": p[1]} for m, p in PRICES.items()},
        "tasks": run(load_router("default"), loo),
    }
    res["targets"] = targets(res)
    res["shipped_combiner"] = shipped_quality(load_router("default"))
    res["seconds"] = time.time() - start
    return publish(res, args, "escalation", SECTION, section)


if __name__ == "__main__":
    main()
