"""``bench.escalation.per_predicted_cost``: the exploratory cost-aware order, on cases worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from bench.escalation import PRICES, per_predicted_cost


def test_escalates_first_where_a_wrong_answer_is_likeliest_per_predicted_dollar() -> None:
    strong = "gpt-4o-2024-08-06"
    p_in, p_out = PRICES[strong]
    # same prompt length; the first cheap answer's length stands for the strong answer's
    table = SimpleNamespace(prompts=["x" * 400] * 3, output_chars={"cheap": [400.0, 4000.0, 400.0]})
    conf = np.array([0.5, 0.2, 0.9])  # P(wrong): 0.5, 0.8, 0.1
    cost = (100 * p_in + np.array([100.0, 1000.0, 100.0]) * p_out) / 1e6
    by_hand = (1 - conf) / (cost * 1e6)  # 0.5 / 1250, 0.8 / 10250 (eight times dearer), 0.1 / 1250
    order = per_predicted_cost(conf, table, strong, "cheap")
    assert np.argsort(order).tolist() == np.argsort(-by_hand).tolist() == [0, 2, 1]
    assert order.min() == 0.0 and order.max() == 1.0
