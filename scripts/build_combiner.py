"""Fit the shipped escalation combiner (``Escalation(check="combined")``) on the shared ZeroEval answer data.

Reproduce with::

    .venv/bin/python scripts/build_combiner.py      # -> core/routellm_core/escalation/shipped_combiner (seconds)

The recipe lives in ``bench/escalation.py`` (``SHIPPED_SIGNALS``, ``shipped_recipe``, ``shipped_training_rows``,
``fit_shipped_combiner``), so the bench scores exactly what ships: a logistic regression (ridge ``l2=1`` on
standardised signals) from the agreement of two cheap answers, the prompt's length, a refusal in the first answer
and the logit of the shipped ``default`` router's win rate, to "the first cheap answer was right", on ``gsm``,
``crux`` and ``math-l5`` with every (first, second) cheap pair of the bench's triples pooled. It writes
``config.json``, ``model.safetensors`` and ``MODEL_CARD.md`` (with the leave-one-task-out ROC AUC of the recipe).
The fit is deterministic (Newton's method from zero weights), so a rerun gives the same weights.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the recipe is bench/escalation.py's

from bench.escalation import (  # noqa: E402
    SHIPPED_SIGNALS,
    TRIPLES,
    _auc,
    fit_shipped_combiner,
    shipped_training_rows,
)
from routellm_core import load_router  # noqa: E402
from routellm_core.escalation.checks import SHIPPED_COMBINER_DIR  # noqa: E402

_WHY = {
    "agreement.agreement": "share of the check answers whose final answer equals the first's (1 or 0 with one check "
    "answer)",
    "answer_features.log_prompt_chars": "log(1 + characters of the prompt)",
    "answer_features.refusal": "1 when the first answer reads as a refusal",
    "win_rate_logit": "logit of the prompt router's P(strong beats weak)",
}


def _card(combiner: object, meta: dict) -> str:
    weights = combiner.weights()  # type: ignore[attr-defined]
    lines = [
        '# Shipped escalation combiner (`Escalation(check="combined")`)',
        "",
        "A logistic regression from a cheap answer's check signals to P(the cheap answer is right); a routed call "
        "escalates to the strong model when it is below the escalation threshold (default 0.5).",
        "",
        "- Reproduce: `python scripts/build_combiner.py` (recipe: `bench/escalation.py`, `shipped_recipe`).",
        "- Data: ZeroEval's graded answers in the shared data (`zeroeval/`, Apache-2.0): "
        + ", ".join(f"{t} {n:,} rows" for t, n in meta["rows_per_task"].items())
        + f" ({meta['n_rows']:,} in all; one row per prompt and (first, second) cheap pair; pairs: "
        + "; ".join(f"{c[0]} + {c[1]}" for _s, c in TRIPLES)
        + "). Label: the first cheap answer was graded right.",
        "- Win rate: the shipped `default` router's `predict_win_rate` (its reference pair), as a routed call "
        "records it. With another router the win-rate scale differs; refit with `routellm train --feedback STORE "
        "--combiner-out DIR`.",
        "- Agreement: offline the answers are the grader's final answers, compared with each task's grader rule; "
        "online the combiner compares the two replies with answer kind `auto` (choice letter, number, JSON, tool "
        "call or normalised text, guessed from the first reply).",
        "- Not used: log-probabilities and self-verification (the data has neither), and signals whose offline "
        "meaning differs from the online one (see `SHIPPED_SIGNALS` in `bench/escalation.py`).",
        "",
        "| signal | meaning | weight (standardised) | mean | scale |",
        "|---|---|---|---|---|",
        f"| (intercept) | | {weights['(intercept)']:+.3f} | | |",
    ]
    names = combiner.feature_names_  # type: ignore[attr-defined]
    for i, name in enumerate(names):
        lines.append(
            f"| `{name}` | {_WHY.get(name, '')} | {weights[name]:+.3f} | "
            f"{combiner.mean_[i]:.3f} | {combiner.scale_[i]:.3f} |"  # type: ignore[attr-defined]
        )
    lines += [
        "",
        "## Quality: ROC AUC of P(cheap answer right), per task",
        "",
        "*in-sample*: the shipped weights (fitted on all three tasks); *leave-one-task-out*: the same recipe fitted "
        "on the other two tasks. Cost-quality curves: `BENCHMARKS.md`, escalation section.",
        "",
        "| task | rows | cheap accuracy | agreement alone | in-sample | leave-one-task-out |",
        "|---|---|---|---|---|---|",
    ]
    for task, q in meta["quality"].items():
        lines.append(
            f"| {task} | {q['n_rows']:,} | {q['cheap_accuracy']:.3f} | {q['auc_agreement']:.3f} | "
            f"{q['auc_in_sample']:.3f} | {q['auc_loto']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SHIPPED_COMBINER_DIR, help="checkpoint folder to write")
    args = parser.parse_args(argv)
    rows = shipped_training_rows(load_router("default"))
    combiner = fit_shipped_combiner(rows)
    quality = {}
    for task, (signals, y) in rows.items():
        loto = fit_shipped_combiner(rows, [t for t in rows if t != task])
        quality[task] = {
            "n_rows": len(y),
            "cheap_accuracy": float(y.mean()),
            "auc_agreement": _auc(signals["agreement.agreement"], y),
            "auc_in_sample": _auc(combiner.predict_signals(signals), y),
            "auc_loto": _auc(loto.predict_signals(signals), y),
        }
    meta = {
        "recipe": "bench/escalation.py shipped_recipe; scripts/build_combiner.py",
        "data": "zeroeval gsm, crux, math-l5 (first cheap answer graded right)",
        "router": "default",
        "signals": list(SHIPPED_SIGNALS),
        "n_rows": int(sum(len(y) for _s, y in rows.values())),
        "rows_per_task": {t: len(y) for t, (_s, y) in rows.items()},
        "positive_share": float(sum(y.sum() for _s, y in rows.values()) / sum(len(y) for _s, y in rows.values())),
        "quality": quality,
    }
    combiner.metadata_ = meta
    combiner.save(args.out)
    (args.out / "MODEL_CARD.md").write_text(_card(combiner, meta), encoding="utf-8")
    print(f"fitted on {meta['n_rows']:,} rows -> {args.out}")
    for task, q in quality.items():
        print(
            f"  {task}: AUC agreement {q['auc_agreement']:.3f}, in-sample {q['auc_in_sample']:.3f}, "
            f"leave-one-task-out {q['auc_loto']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
