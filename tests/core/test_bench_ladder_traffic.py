"""The traffic ``bench.ladder`` reads beside ZeroEval's: DC-Router's test split as one table, MMLU-Pro as one table per
category, each priced per token with the assumed answer length; and its baseline grids stay bounded on long ladders.

Counts and categories are read independently from the data files here, not from the code under test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from bench.ladder import (
    ASSUMED_OUTPUT_TOKENS,
    MAX_BASELINE_POLICIES,
    OUTSIDE_LADDERS,
    length_choices,
    outside_tables,
    outside_traffic,
    prices,
    random_choices,
)


def test_mmlu_pro_is_one_traffic_per_category_priced_per_token(shared_data_dir: Path) -> None:
    models = OUTSIDE_LADDERS["mmlu-pro"]["8B < flash < 70B < pro < gpt-4o"]
    price = prices()
    tables = outside_tables(outside_traffic("mmlu-pro"), models, price)
    with (shared_data_dir / "mmlu-pro" / "questions.jsonl").open(encoding="utf-8") as fh:
        categories = Counter(json.loads(line)["category"] for line in fh)
    assert [t["name"] for t in tables] == sorted(categories)
    for t in tables:
        n = len(t["prompts"])
        assert 0.9 * categories[t["name"]] <= n <= categories[t["name"]]  # questions every model answered
        for m in models:
            assert set(np.unique(t["quality"][m])) <= {0.0, 1.0}
            i = n // 2
            expected = (len(t["prompts"][i]) / 4 * price[m][0] + ASSUMED_OUTPUT_TOKENS * price[m][1]) / 1e6
            assert t["costs"][m][i] == pytest.approx(expected)
        assert t["answers"] is None  # no answers: no escalation rows


def test_dcrouter_is_its_test_split(shared_data_dir: Path) -> None:
    (models,) = OUTSIDE_LADDERS["dcrouter"].values()
    (table,) = outside_tables(outside_traffic("dcrouter"), models, prices())
    rows = json.loads((shared_data_dir / "llmrouter-dcrouter" / "test.json").read_text(encoding="utf-8"))
    assert len(models) == 9 and len(table["prompts"]) == len(rows) == 500
    first = rows[0]["scores"]
    assert {m: table["quality"][m][0] for m in models} == pytest.approx({m: first[m] for m in models})


@pytest.mark.parametrize("k", [3, 5, 9])
def test_baseline_grids_stay_bounded_and_monotone(k: int) -> None:
    prompts = [f"p{'x' * (i % 97)}" for i in range(400)]
    lengths = length_choices(prompts, k)
    assert 0 < len(lengths) <= MAX_BASELINE_POLICIES and lengths.max() <= k - 1
    order = np.argsort([len(p) for p in prompts], kind="stable")
    assert (np.diff(lengths[:, order], axis=1) >= 0).all()  # longer prompts never go down the ladder
    mixes = random_choices(len(prompts), k, seed=0)
    assert 0 < len(mixes) <= MAX_BASELINE_POLICIES and mixes.max() <= k - 1
