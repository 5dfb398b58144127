"""Build the shipped escalation-share calibration: quantiles of each built-in check's confidence on ZeroEval answers.

``Escalation(share=s)`` starts a routed call's escalation threshold from these quantiles (the threshold with about
``s`` of the confidences below it) and then follows the live traffic's own confidences
(:mod:`routellm_core.routing.tracking`). This script measures the confidences offline, without calling any model,
on the shared ZeroEval answer data (``<data>/zeroeval/``: graded final answers, raw output lengths and the cheap
models' raw outputs of GSM8K, CRUXEval and MATH level 5; see its README):

- ``agreement``: the first cheap model's final answer against a second cheap model's (the grader's comparison rule:
  first number for ``gsm`` / ``math-l5``, exact string for ``crux``), for the pairs in :data:`PAIRS`;
- ``answer_features``: the first cheap model's answer alone (its raw output's length against the prompt's, no
  extracted answer, a refusal), for each pair's first model.

Every (task, pair) cell weighs the same (GSM8K's 1,319 prompts do not outweigh MATH-L5's 721). The quantiles are
taken at the levels ``(i + 0.5) / 100`` for ``i = 0..99``, so they are an evenly weighted 100-point sample of the
pooled distribution, rounded to 4 decimals. The other checks (``logprobs``, ``self_verification``, a fitted
``combined`` one, a user's check) have no answer data here: they start from the uniform prior instead.

Run from the repository root (a few seconds; deterministic, rerunning rewrites the same bytes)::

    .venv/bin/python scripts/calibrate_escalation_share.py

It writes ``core/routellm_core/escalation/share_calibration.json`` (``--out`` for elsewhere).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from routellm_core.data.zeroeval_answers import ZEROEVAL_ANSWER_KINDS, ZEROEVAL_ANSWER_TASKS, load_answer_table
from routellm_core.escalation.checks import AgreementCheck, AnswerFeaturesCheck, CheckInput, check_confidence

#: (first cheap model, second cheap model): the cheap pairs of ``bench/escalation.py`` plus one more.
PAIRS: tuple[tuple[str, str], ...] = (
    ("gpt-4o-mini-2024-07-18", "gemini-1.5-flash"),
    ("Meta-Llama-3.1-8B-Instruct", "Qwen2-7B-Instruct"),
    ("Meta-Llama-3.1-8B-Instruct", "gemma-2-9b-it"),
    ("claude-3-haiku-20240307", "gpt-4o-mini-2024-07-18"),
    ("gpt-3.5-turbo-0125", "claude-3-haiku-20240307"),
)
#: Quantile levels: an evenly weighted sample of 100 points.
LEVELS = tuple((i + 0.5) / 100 for i in range(100))
FORMAT_VERSION = 1
DEFAULT_OUT = (
    Path(__file__).resolve().parent.parent / "core" / "routellm_core" / "escalation" / "share_calibration.json"
)


def weighted_quantiles(samples: list[np.ndarray], levels: tuple[float, ...]) -> list[float]:
    """Quantiles of the pooled samples, each sample weighing the same in total (inverse CDF: the smallest value
    whose cumulative weight reaches the level)."""
    values = np.concatenate(samples)
    weights = np.concatenate([np.full(s.size, 1.0 / s.size) for s in samples])
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(weights[order]) / weights.sum()
    at = np.searchsorted(cumulative, np.asarray(levels) - 1e-12, side="left")
    return [round(float(values[min(i, values.size - 1)]), 4) for i in at]


def measure() -> dict[str, list[np.ndarray]]:
    """Each check's confidences per (task, pair) cell."""
    out: dict[str, list[np.ndarray]] = {"agreement": [], "answer_features": []}
    for task in ZEROEVAL_ANSWER_TASKS:
        table = load_answer_table(task)
        agreement = AgreementCheck(kind=ZEROEVAL_ANSWER_KINDS[task])
        features = AnswerFeaturesCheck()
        for first, second in PAIRS:
            batch = CheckInput(
                first=table.answers[first],
                others=[table.answers[second]],
                prompts=list(table.prompts),
                outputs=table.outputs.get(first),
                output_chars=[0.0 if c is None else c for c in table.output_chars[first]],
            )
            out["agreement"].append(check_confidence(agreement, batch))
            out["answer_features"].append(check_confidence(features, batch))
    return out


def build() -> dict[str, object]:
    """The calibration document."""
    confidences = measure()
    checks = {}
    for name, samples in confidences.items():
        pooled_mean = float(np.mean([s.mean() for s in samples]))
        checks[name] = {"mean": round(pooled_mean, 4), "quantiles": weighted_quantiles(samples, LEVELS)}
    return {
        "format_version": FORMAT_VERSION,
        "what": "quantiles of each built-in escalation check's confidence, the prior of Escalation(share=...)",
        "built_by": "scripts/calibrate_escalation_share.py",
        "data": "zeroeval (graded answers of ZeroEval commit 570c6269a2e4930ee06a17e713fece1ba52cf1dd)",
        "tasks": list(ZEROEVAL_ANSWER_TASKS),
        "pairs": [list(p) for p in PAIRS],
        "cells": len(ZEROEVAL_ANSWER_TASKS) * len(PAIRS),
        "weighting": "every (task, pair) cell weighs the same",
        "levels": [round(x, 4) for x in LEVELS],
        "checks": checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the JSON")
    args = parser.parse_args()
    document = build()
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    for name, entry in document["checks"].items():  # type: ignore[union-attr]
        q = entry["quantiles"]
        print(f"{name}: mean {entry['mean']}, quantiles 10/50/90%: {q[10]}, {q[50]}, {q[90]}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
