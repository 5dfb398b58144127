"""RoutingPolicy (threshold / calibrated fraction, micro-batching) and the ``routellm`` CLI, on the shipped router."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from routellm_core import InvalidInputError, InvalidThresholdError, load_router
from routellm_core.batching import MicroBatcher
from routellm_core.cli import main
from routellm_core.policy import RoutingPolicy

PROMPTS = [
    "Prove that every finite integral domain is a field.",
    "hi",
    "Write a haiku about autumn leaves.",
    "What is 17 * 23?",
    "Translate 'good night' into German.",
    "Explain how transformers use self-attention, with the equations.",
]


@pytest.fixture(scope="module")
def default_router():
    return load_router("default")


def test_default_router_loads_offline_with_calibration(default_router) -> None:
    assert default_router.name == "mf"
    assert default_router.strong_model == "gpt-4-1106-preview"
    assert set(default_router.calibrated_thresholds) == {f"0.{i}" for i in range(1, 10)}
    p = default_router.predict_win_rate(PROMPTS)
    assert p.shape == (len(PROMPTS),) and np.all((p >= 0) & (p <= 1))
    assert len(set(np.round(p, 6))) > 1  # a real router separates prompts


def test_strong_fraction_resolves_through_calibration(default_router) -> None:
    policy = RoutingPolicy(default_router, strong_fraction=0.3)
    assert policy.threshold == pytest.approx(default_router.calibrated_thresholds["0.3"])
    assert RoutingPolicy(default_router, strong_fraction=0.0).threshold == 1.0
    with pytest.raises(InvalidThresholdError, match="not both"):
        RoutingPolicy(default_router, threshold=0.5, strong_fraction=0.3)
    with pytest.raises(InvalidThresholdError):
        RoutingPolicy(default_router, strong_fraction=2)


def test_decisions_agree_across_paths(default_router) -> None:
    policy = RoutingPolicy(default_router, threshold=0.7)
    batch = policy.decide_batch(PROMPTS)
    single = [policy.decide(p) for p in PROMPTS]

    async def run():
        return await asyncio.gather(*[policy.adecide(p) for p in PROMPTS * 20])

    concurrent = asyncio.run(run())
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(policy.decide, PROMPTS * 20))
    for got in (single, concurrent[: len(PROMPTS)], threaded[: len(PROMPTS)]):
        assert [d.choice for d in got] == [d.choice for d in batch]
        np.testing.assert_allclose([d.win_rate for d in got], [d.win_rate for d in batch], atol=1e-6)
    with pytest.raises(InvalidInputError):
        policy.decide("   ")


def test_micro_batcher_batches_concurrent_async_calls() -> None:
    sizes: list[int] = []

    def fn(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return [i * 2 for i in items]

    batcher = MicroBatcher(fn, max_batch_size=64)

    async def run():
        return await asyncio.gather(*[batcher.asubmit(i) for i in range(500)])

    assert asyncio.run(run()) == [i * 2 for i in range(500)]
    assert sum(sizes) == 500 and max(sizes) == 64 and len(sizes) < 20


def test_micro_batcher_isolates_a_failing_item_and_batches_threads() -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def fn(items: list[int]) -> list[int]:
        with lock:
            seen.append(len(items))
        if 13 in items:
            raise ValueError("unlucky")
        return items

    batcher = MicroBatcher(fn)
    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(batcher.submit, i) for i in range(200)]
    results = []
    for i, f in enumerate(futures):
        if i == 13:
            with pytest.raises(ValueError, match="unlucky"):
                f.result()
        else:
            results.append(f.result())
    assert results == [i for i in range(200) if i != 13]  # every other caller answered exactly once


def test_cli_route_calibrate_evaluate(tmp_path, capsys) -> None:
    assert main(["route", "--strong-fraction", "0.5", *PROMPTS[:2]]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["choice"] in ("strong", "weak") for row in lines] == [True, True]
    assert lines[0]["router"] == "mf"

    prompts = tmp_path / "traffic.txt"
    prompts.write_text("\n".join(PROMPTS * 5))
    assert main(["calibrate", "--prompts", str(prompts), "--fractions", "0.2,0.5"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"0.2", "0.5"} and table["0.2"] >= table["0.5"]

    plot = tmp_path / "curve.png"
    assert main(["evaluate", "--router", "random", "--benchmark", "mt_bench", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "oracle" in out and "APGR" in out and plot.stat().st_size > 1000


def test_cli_train_on_user_files(tmp_path, capsys) -> None:
    golden = tmp_path / "labels.jsonl"
    rows = [{"prompt": p, "scores": {"big": 1.0, "small": float(i % 2)}} for i, p in enumerate(PROMPTS * 3)]
    golden.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "ckpt"
    code = main(
        [
            "train",
            "--router",
            "sw_ranking",
            "--golden",
            str(golden),
            "--strong-model",
            "big",
            "--weak-model",
            "small",
            "--out",
            str(out),
        ]
    )
    assert code == 0 and (out / "config.json").is_file()
    assert load_router(out).predict_win_rate(["a new prompt"]).shape == (1,)


def test_cli_reports_errors_cleanly(capsys) -> None:
    assert main(["route", "--router", "no-such-router", "hello"]) == 2
    assert "unknown router 'no-such-router'" in capsys.readouterr().err
    assert main(["route", "--threshold", "1.5", "hello"]) == 2
