"""``router-auto`` budgets probed as an operator and its clients use them: a window too long for the controller in
the model name or the request field is a 400 naming the limit (it was a 500: ``OverflowError`` building the engine).

The three models are tests/server/test_server_ladder.py's: the mock echo under the names tiny, mid and big, priced
0.1, 1 and 10 USD per million tokens, profiled from far-apart real models.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from routellm_core.routing.objective import MAX_WINDOW
from routellm_core.server import ServerThread, create_app
from routellm_core.server.auto import MAX_ENGINES

PRICES = {"tiny": (0.1, 0.1), "mid": (1.0, 1.0), "big": (10.0, 10.0)}
PRIORS = {"tiny": "like:chatglm-6b", "mid": "like:Qwen2.5-32B-Instruct", "big": "like:o1-preview-2024-09-12"}
PROMPT = "Prove that the square root of 2 is irrational."


@pytest.fixture(scope="module")
def server(mock: ServerThread) -> Iterator[ServerThread]:
    app = create_app(
        routers=("fast",),
        api_keys_env=None,
        models=tuple(f"{name}=openai:{name},base_url={mock.url}/v1" for name in ("tiny", "mid", "big")),
        prices=PRICES,
        priors=PRIORS,
    )
    with ServerThread(app) as running:
        yield running


def ask(server: ServerThread, model: str, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], **fields}
    return httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (f"router-auto-budget-1.5-w{10**30}", {}),
        (f"router-auto-budget-1.5-w{MAX_WINDOW + 1}-cascade", {}),
        ("router-auto", {"routellm": {"objective": f"budget=1.5,window={10**30}"}}),
    ],
)
def test_a_window_too_long_is_a_400_naming_the_limit(server: ServerThread, model: str, fields: dict[str, Any]) -> None:
    answer = ask(server, model, **fields)
    assert answer.status_code == 400, answer.text
    assert f"at most {MAX_WINDOW:,}" in answer.json()["error"]["message"]
    # the longest window is served, under its own metrics label
    served = ask(server, f"router-auto-budget-1.5-w{MAX_WINDOW}")
    assert served.status_code == 200 and served.json()["routellm"]["ladder"]["budget"] == 1.5
    labels = {
        s.labels.get("objective")
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics", timeout=10).text)
        for s in family.samples
        if s.name == "routellm_ladder_budget_target_usd_per_1k"
    }
    assert f"budget=1.5,window={MAX_WINDOW}" in labels


def test_a_call_answered_after_its_engine_was_evicted_leaves_no_budget_series(server: ServerThread) -> None:
    """A slow call on router-auto-budget-7.77 whose engine more objectives than the server keeps evict while it
    runs: once it answers, none of that objective's series is back on /metrics (its spend came back alone, one
    stale series per eviction, for good)."""

    def budget_series() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics", timeout=10).text):
            for sample in family.samples:
                if sample.name.startswith("routellm_ladder_budget") or sample.name == "routellm_ladder_cost_weight":
                    found.setdefault(sample.labels["objective"], set()).add(sample.name)
        return found

    slow: dict[str, httpx.Response] = {}
    body = {"model": "router-auto-budget-7.77", "messages": [{"role": "user", "content": "[sleep:1.5] " + PROMPT}]}
    caller = threading.Thread(
        target=lambda: slow.setdefault("answer", httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60))
    )
    caller.start()
    deadline = time.monotonic() + 10
    while "budget=7.77" not in budget_series() and time.monotonic() < deadline:  # routed: its gauges are set
        time.sleep(0.05)
    assert "budget=7.77" in budget_series()
    for i in range(MAX_ENGINES + 1):  # more objectives than a worker keeps: 7.77's engine is evicted
        assert ask(server, f"router-auto-budget-{2 + i / 100:.2f}").status_code == 200
    assert "budget=7.77" not in budget_series()
    caller.join(timeout=60)
    assert slow["answer"].status_code == 200, slow["answer"].text
    assert "budget=7.77" not in budget_series()
    spends = {o for o, names in budget_series().items() if "routellm_ladder_budget_spend_usd_per_1k" in names}
    targets = {o for o, names in budget_series().items() if "routellm_ladder_budget_target_usd_per_1k" in names}
    assert spends == targets


def test_objectives_beyond_the_label_limit_share_one_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any client may ask for a new objective per request (router-auto-budget-1.0001, -1.0002, ...), and a series once
    written stays (counters always, gauges under --workers): a process labels its first MAX_OBJECTIVE_LABELS
    objectives only, counts the others' requests under "other" and keeps no gauge of theirs (a review's case: the
    series grew with every objective asked for)."""
    from routellm_core.server.metrics import MAX_OBJECTIVE_LABELS, OTHER_OBJECTIVES, ServerMetrics

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = ServerMetrics()
    for i in range(MAX_OBJECTIVE_LABELS + 20):
        objective = f"budget={1 + i / 10_000:g}"
        metrics.ladder_answer(objective, "mid", 0.001, 0.001)
        metrics.budget(objective, 1.0, 1.0, 0.5)
        metrics.shares(objective, {"big": 0.2}, {"big": 0.1})
    seen: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render()):
        for sample in family.samples:
            if "objective" in sample.labels:
                seen.setdefault(sample.name, set()).add(sample.labels["objective"])
    assert len(seen["routellm_ladder_requests_total"]) == MAX_OBJECTIVE_LABELS + 1
    assert OTHER_OBJECTIVES in seen["routellm_ladder_requests_total"]
    assert len(seen["routellm_ladder_budget_target_usd_per_1k"]) == MAX_OBJECTIVE_LABELS
    assert len(seen["routellm_ladder_share_cap"]) == MAX_OBJECTIVE_LABELS
