"""RoutingPolicy (threshold / calibrated fraction) and the ``routellm`` CLI, asserting what each command writes.

Routing choices asserted here are known in advance: a router trained in the test (through ``routellm train``) on
obvious golden labels (proofs and algorithms: the big model wins; chit-chat: the small one does) routes unseen
prompts of the same kinds. The shipped routers' quality is checked in ``test_quality_floors.py``; micro-batching
in ``test_batching.py``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from obvious_prompts import EASY, HARD

from routellm_core import InvalidInputError, InvalidThresholdError, load_router
from routellm_core.cli import main
from routellm_core.data import STRONG, WEAK, training_battles
from routellm_core.evaluation.calibration import DEFAULT_FRACTIONS, strong_call_fraction
from routellm_core.routing.batching import MicroBatcher
from routellm_core.routing.policy import RoutingPolicy

PROMPTS = [
    "Prove that every finite integral domain is a field.",
    "hi",
    "Write a haiku about autumn leaves.",
    "What is 17 * 23?",
    "Translate 'good night' into German.",
    "Explain how transformers use self-attention, with the equations.",
]

UNSEEN_HARD = [
    "Prove that the square root of 2 is irrational.",
    "Integrate sin(x)^3 dx and show every step.",
    "Implement a red-black tree in C with deletion and prove it stays balanced.",
    "Show that the harmonic series diverges, with a rigorous proof.",
]
UNSEEN_EASY = ["Hello, how are you today?", "Say hi to my mum.", "Thank you so much!", "Good night, see you."]
#: Calibration traffic for the trained router: seen and unseen prompts of both kinds.
TRAFFIC = HARD + EASY + UNSEEN_HARD + UNSEEN_EASY


@pytest.fixture(scope="module")
def default_router():
    return load_router("default")


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _variants(prompts: list[str], copies: int) -> list[str]:
    """``copies`` distinct variants of each prompt (the same kind of traffic, enough of it to calibrate on)."""
    return [f"{p} (variant {i})" for i in range(copies) for p in prompts]


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _apgr_lines(text: str) -> dict[str, float]:
    """``{"router": 0.75, "random": ..., "oracle": ...}`` from ``routellm evaluate``'s report."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^\s*(\w+)\s+APGR\s+(-?[0-9.]+)", text, re.MULTILINE)}


@pytest.fixture(scope="module")
def obvious_router(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``routellm train --golden ... --calibration-prompts ...``: the big model wins hard prompts, small wins easy."""
    folder = tmp_path_factory.mktemp("obvious")
    rows = [{"prompt": p, "scores": {"big": 1.0, "small": 0.0}} for p in HARD]
    rows += [{"prompt": p, "scores": {"big": 0.0, "small": 1.0}} for p in EASY]
    golden = _write_jsonl(folder / "labels.jsonl", rows)
    traffic = folder / "traffic.txt"
    traffic.write_text("\n".join(TRAFFIC) + "\n", encoding="utf-8")
    out = folder / "router"
    args = ["train", "--router", "sw_ranking", "--golden", str(golden), "--strong-model", "big"]
    args += ["--weak-model", "small", "--calibration-prompts", str(traffic), "--out", str(out)]
    assert main([*args, "--force"]) == 0  # 24 calibration prompts: fewer than the 50 train asks for without it
    return out


# ---- the policy --------------------------------------------------------------------------------------------
def test_default_router_loads_offline_with_calibration(default_router) -> None:
    assert default_router.name == "difficulty"
    assert default_router.strong_model == "gpt-4-1106-preview"
    assert set(default_router.calibrated_thresholds) == {f"0.{i}" for i in range(1, 10)}
    p = default_router.predict_win_rate(PROMPTS)
    assert p.shape == (len(PROMPTS),) and np.all((p >= 0) & (p <= 1))


def test_strong_fraction_resolves_through_calibration(default_router) -> None:
    policy = RoutingPolicy(default_router, strong_fraction=0.3)
    assert policy.threshold == pytest.approx(default_router.calibrated_thresholds["0.3"])
    assert RoutingPolicy(default_router, strong_fraction=0.0).threshold == 1.0
    with pytest.raises(InvalidThresholdError, match="not both"):
        RoutingPolicy(default_router, threshold=0.5, strong_fraction=0.3)
    with pytest.raises(InvalidThresholdError):
        RoutingPolicy(default_router, strong_fraction=2)


def test_policy_routes_what_the_labels_taught(obvious_router: Path) -> None:
    policy = RoutingPolicy(obvious_router, threshold=0.5)
    assert [d.choice for d in policy.decide_batch(UNSEEN_HARD + UNSEEN_EASY)] == ["strong"] * 4 + ["weak"] * 4
    assert policy.decide(UNSEEN_HARD[0]).choice == "strong" and policy.decide(UNSEEN_EASY[0]).choice == "weak"


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


# ---- the micro-batcher alone ---------------------------------------------------------------------------------
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


# ---- routellm train / route / calibrate / evaluate -----------------------------------------------------------
def test_cli_train_golden_writes_a_router_that_follows_the_labels(obvious_router: Path) -> None:
    config = json.loads((obvious_router / "config.json").read_text())
    assert config["router"] == "sw_ranking"
    router = load_router(obvious_router)
    assert (router.strong_model, router.weak_model) == ("big", "small")
    hard, easy = router.predict_win_rate(UNSEEN_HARD), router.predict_win_rate(UNSEEN_EASY)
    assert hard.min() > 0.5 > easy.max(), (hard, easy)


def test_cli_train_calibration_prompts_set_the_thresholds(obvious_router: Path) -> None:
    """``--calibration-prompts``: each stored threshold sends its fraction of those prompts to strong."""
    router = load_router(obvious_router)
    assert sorted(float(k) for k in router.calibrated_thresholds) == pytest.approx(list(DEFAULT_FRACTIONS))
    n = len(TRAFFIC)
    for fraction in DEFAULT_FRACTIONS:
        share = strong_call_fraction(router, TRAFFIC, router.threshold_for(fraction))
        assert share == pytest.approx(math.ceil(fraction * n - 1e-9) / n), fraction


def test_cli_route_prints_the_decisions_it_knows(obvious_router: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = [UNSEEN_HARD[0], UNSEEN_EASY[0], UNSEEN_HARD[1]]
    assert main(["route", "--router", str(obvious_router), "--threshold", "0.5", *prompts]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["choice"] for r in rows] == ["strong", "weak", "strong"]
    assert [r["prompt"] for r in rows] == prompts
    assert {r["router"] for r in rows} == {str(obvious_router)} and {r["threshold"] for r in rows} == {0.5}
    expected = load_router(obvious_router).predict_win_rate(prompts)
    np.testing.assert_allclose([r["win_rate"] for r in rows], expected, atol=1e-6)


def test_cli_route_strong_fraction_uses_the_shipped_calibration(
    default_router, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["route", "--strong-fraction", "0.5", *PROMPTS]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert len(rows) == len(PROMPTS) and {r["router"] for r in rows} == {"default"}
    threshold = default_router.threshold_for(0.5)
    expected = default_router.predict_win_rate(PROMPTS)
    for row, p in zip(rows, expected):
        assert row["threshold"] == pytest.approx(threshold)
        assert row["win_rate"] == pytest.approx(p, abs=1e-6)
        assert row["choice"] == ("strong" if p >= threshold else "weak")


def test_cli_calibrate_prints_thresholds_that_hit_the_fractions(
    obvious_router: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    traffic = tmp_path / "traffic.txt"
    traffic.write_text("\n".join(TRAFFIC), encoding="utf-8")
    assert (
        main(["calibrate", "--router", str(obvious_router), "--prompts", str(traffic), "--fractions", "0.25,0.5"]) == 0
    )
    table = json.loads(capsys.readouterr().out)
    assert set(table) == {"0.25", "0.5"}
    router = load_router(obvious_router)
    for key, threshold in table.items():
        assert strong_call_fraction(router, TRAFFIC, threshold) == pytest.approx(float(key))
    half = table["0.5"]
    assert (
        main(["calibrate", "--router", str(obvious_router), "--prompts", str(traffic), "--threshold", str(half)]) == 0
    )
    assert json.loads(capsys.readouterr().out) == {"threshold": half, "strong_fraction": pytest.approx(0.5)}


def test_cli_calibrate_write_stores_the_thresholds(
    obvious_router: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--write`` stores the new thresholds in the checkpoint folder, keeping the other calibrated points (each
    recalibrated on the same prompts), so ``threshold_for`` and ``--strong-fraction`` use them afterwards."""
    folder = Path(shutil.copytree(obvious_router, tmp_path / "router"))
    before = load_router(folder).calibrated_thresholds
    easy = _variants(EASY + UNSEEN_EASY, 5)  # 60 prompts: enough for --write
    only_easy = tmp_path / "easy.txt"
    only_easy.write_text("\n".join(easy), encoding="utf-8")
    args = ["calibrate", "--router", str(folder), "--prompts", str(only_easy), "--fractions", "0.25,0.5", "--write"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    printed = json.loads(captured.out)
    router = load_router(folder)
    assert set(printed) == {"0.25", "0.5"}
    for key, threshold in printed.items():
        assert router.calibrated_thresholds[key] == pytest.approx(threshold)
        assert router.threshold_for(float(key)) == pytest.approx(threshold)
        assert strong_call_fraction(router, easy, threshold) == pytest.approx(float(key))
    assert router.calibrated_thresholds != before
    assert set(before) <= set(router.calibrated_thresholds), "--write dropped calibrated points"
    for key in before:  # every kept point describes the same (new) traffic
        share = strong_call_fraction(router, easy, router.calibrated_thresholds[key])
        assert share == pytest.approx(float(key), abs=1 / 60 + 1e-9), key


def test_cli_evaluate_golden_reports_the_known_metrics(
    obvious_router: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A held-out file of 8 prompts: the big model gains a point on each of 4 hard prompts, nothing on 3 easy ones and
    loses one on the last easy one (q_strong 7/8, q_weak 4/8). In gains per prompt the oracle orders +1 x4, 0 x3, -1:
    APGR 47/48. A router that puts every hard prompt first reaches at least 41/48 (the -1 right after them);
    random stays near 0.5."""
    path = tmp_path / "eval.csv"
    rows = [f'"{p}",1,0' for p in UNSEEN_HARD] + [f'"{p}",1,1' for p in UNSEEN_EASY[:3]] + [f'"{UNSEEN_EASY[3]}",0,1']
    path.write_text("prompt,big,small\n" + "\n".join(rows) + "\n", encoding="utf-8")
    plot = tmp_path / "curve.png"
    args = ["evaluate", "--router", str(obvious_router), "--golden", str(path)]  # the router's own pair: big/small
    assert main([*args, "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "8 prompts" in out
    apgr = _apgr_lines(out)
    assert apgr["oracle"] == pytest.approx(47 / 48, abs=1e-3)
    assert 41 / 48 - 1e-3 <= apgr["router"] <= 47 / 48 + 1e-3
    assert 0.3 < apgr["random"] < 0.7
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a model named on the command line is the one looked up in the file
    assert main([*args, "--strong-model", "gpt-4o"]) != 0
    assert "no score for 'gpt-4o'" in capsys.readouterr().err


def test_cli_evaluate_shared_benchmark(shared_data_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["evaluate", "--router", "random", "--benchmark", "mt_bench"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "warning" not in captured.err and "in-sample" not in out  # random was trained on nothing
    assert "mt_bench: 72 prompts" in out
    apgr = _apgr_lines(out)
    assert apgr["oracle"] == pytest.approx(0.96, abs=0.01)  # GUIDE.md's table
    assert apgr["random"] == pytest.approx(0.5, abs=0.06) and apgr["router"] == pytest.approx(0.5, abs=0.15)


def test_cli_train_sources_and_exclude(shared_data_dir: Path, tmp_path: Path, capsys) -> None:
    """``--sources mt_bench,gsm8k --exclude gsm8k``: the held-out benchmark's own source is skipped, so the router
    is trained on MT Bench's 72 prompts only (not GSM8K's 1,307)."""
    out = tmp_path / "mf_no_gsm8k"
    args = ["train", "--router", "mf", "--sources", "mt_bench,gsm8k", "--exclude", "gsm8k"]
    assert main([*args, "--params", '{"epochs": 2, "show_progress": false}', "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "-> " + str(out) in captured.out
    # progress on stderr while it runs: which sources, what was loaded
    assert "routellm train: reading the shared sources mt_bench,gsm8k (held out: gsm8k)" in captured.err
    assert "routellm train: 72 battles over 72 distinct prompts" in captured.err
    router = load_router(out)
    assert (router.metadata["sources"], router.metadata["excluded"]) == (["mt_bench", "gsm8k"], ["gsm8k"])
    expected = training_battles(["mt_bench"])
    assert router.metadata["n_prompts"] == len({b.prompt for b in expected}) == 72
    assert router.metadata["n_battles"] == sum(b.winner != "tie" for b in expected)
    assert sorted(router.metadata["models"]) == sorted([STRONG, WEAK])


def test_cli_evaluate_without_arguments_says_the_default_is_scored_in_sample(shared_data_dir: Path, capsys) -> None:
    """``routellm evaluate`` alone scores MT Bench, which the shipped default was trained on: a warning says so,
    gives the held-out figure its checkpoint records (model card: 0.524) and how to score a router held out."""
    assert main(["evaluate"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(
        "warning: scoring mt_bench (the default benchmark: no --benchmark given), which default was trained on"
    )
    assert "in-sample" in captured.err and "held out" in captured.err
    assert "APGR 0.524 (length 0.548, random 0.508)" in captured.err
    assert "--exclude mt_bench" in captured.err and "routellm evaluate --router no_mt_bench" in captured.err
    router_line = next(line for line in captured.out.splitlines() if line.strip().startswith("router"))
    assert router_line.endswith("(in-sample: trained on this benchmark)")
    assert _apgr_lines(captured.out)["router"] > 0.524 + 0.05  # what in-sample inflates


def test_cli_train_shows_progress_and_says_the_checkpoint_needs_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue: a long ``routellm train`` printed nothing, wrote a checkpoint without thresholds without saying
    so, and ``route --strong-fraction`` then pointed a CLI user to a Python function. Now the embedding stage shows
    a bar (here from 4 prompts a chunk), the missing thresholds are named with the command that adds them, and
    that command makes ``--strong-fraction`` work."""
    from routellm_core import cli

    monkeypatch.setattr(cli._ProgressEmbedder, "CHUNK", 4)
    golden = _write_jsonl(
        tmp_path / "labels.jsonl",
        [{"prompt": p, "scores": {"big": 1.0, "small": 0.0}} for p in HARD]
        + [{"prompt": p, "scores": {"big": 0.0, "small": 1.0}} for p in EASY],
    )
    out = tmp_path / "router"
    args = [
        "train",
        "--router",
        "sw_ranking",
        "--golden",
        str(golden),
        "--strong-model",
        "big",
        "--weak-model",
        "small",
    ]
    assert main([*args, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    n = len(set(HARD + EASY))
    assert f"routellm train: embedding {n} distinct prompts with sentence-transformers/all-MiniLM-L6-v2" in captured.err
    assert f"{n}/{n}" in captured.err  # the bar reached the end
    hint = f"routellm calibrate --router {out} --prompts YOUR_PROMPTS.txt --write"
    assert f"note: {out} has no calibrated thresholds" in captured.err and hint in captured.err
    assert captured.out.strip().endswith(f"-> {out}")  # stdout keeps the one result line

    assert main(["route", "--router", str(out), "--strong-fraction", "0.3", "hello"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "has no calibrated thresholds" in captured.err and hint in captured.err
    assert "calibrate_threshold(" not in captured.err  # a command for a CLI user, not a Python function

    traffic = tmp_path / "traffic.txt"
    traffic.write_text("\n".join(_variants(TRAFFIC, 3)), encoding="utf-8")  # 72 prompts
    assert main(["calibrate", "--router", str(out), "--prompts", str(traffic), "--fractions", "0.5"]) == 0
    assert f"not written: add --write to store these thresholds in {out}" in capsys.readouterr().err
    assert main(["calibrate", "--router", str(out), "--prompts", str(traffic), "--fractions", "0.5", "--write"]) == 0
    capsys.readouterr()
    assert main(["route", "--router", str(out), "--strong-fraction", "0.5", "--file", str(traffic)]) == 0
    choices = [row["choice"] for row in _json_lines(capsys.readouterr().out)]
    assert choices.count("strong") == 3 * len(TRAFFIC) // 2


def test_cli_reports_errors_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    """Bad arguments exit with status 2 and one line on stderr naming the problem; nothing is printed as a result."""
    assert main(["route", "--router", "no-such-router", "hello"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("routellm: error:") and "unknown router 'no-such-router'" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert main(["route", "--threshold", "1.5", "hello"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("routellm: error:") and "threshold" in captured.err and "1.5" in captured.err
    assert len(captured.err.strip().splitlines()) == 1


# ---- learning from your traffic: calibrate merge, clear input errors, train --feedback --init ----------------
def test_cli_calibrate_short_list_keeps_the_nine_point_table(tmp_path: Path, capsys) -> None:
    """The reported bug: ``--fractions 0.1,0.2,0.3 --write`` replaced the 9-point table, after which
    ``--strong-fraction 0.5`` sent ~95% of traffic to strong. Now every point is recalibrated on the same prompts."""
    from routellm_core.routers.registry import PRETRAINED_DIR

    folder = Path(shutil.copytree(PRETRAINED_DIR / "fast", tmp_path / "fast"))
    traffic = tmp_path / "traffic.txt"
    prompts = _variants(TRAFFIC, 5)
    traffic.write_text("\n".join(prompts), encoding="utf-8")
    args = ["calibrate", "--router", str(folder), "--prompts", str(traffic), "--fractions", "0.1,0.2,0.3", "--write"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert set(json.loads(captured.out)) == {"0.1", "0.2", "0.3"}
    assert "its other points 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 recalibrated on the same prompts" in captured.err
    assert set(load_router(folder).calibrated_thresholds) == {f"{f:g}" for f in DEFAULT_FRACTIONS}
    assert main(["route", "--router", str(folder), "--strong-fraction", "0.5", "--file", str(traffic)]) == 0
    choices = [row["choice"] for row in _json_lines(capsys.readouterr().out)]
    assert choices.count("strong") / len(choices) == pytest.approx(0.5, abs=0.02)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's stderr when it failed with one clear line and printed no result."""
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured
    assert captured.err.startswith("routellm: error: ")
    return captured.err


def test_cli_calibrate_write_refuses_shipped_routers_and_says_to_copy_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walkthrough's bug: ``--router default --write`` printed "wrote thresholds into default" and made a folder
    ./default that the name never loads (it always means the shipped router). Now a shipped name, the shipped
    folder itself and a registry name are refused with the way out, and that way out works."""
    from routellm_core.routers.registry import PRETRAINED_DIR

    monkeypatch.chdir(tmp_path)
    traffic = tmp_path / "traffic.txt"
    prompts = _variants(TRAFFIC, 3)  # 72 prompts
    traffic.write_text("\n".join(prompts), encoding="utf-8")
    shipped = {name: (PRETRAINED_DIR / name / "config.json").read_bytes() for name in ("default", "fast")}
    for name in ("default", "fast"):
        assert main(["calibrate", "--router", name, "--prompts", str(traffic), "--write"]) == 2
        err = _one_error_line(capsys)
        assert f"--write cannot change the shipped router '{name}'" in err and "copy it first" in err
        assert f"routellm train --init {name} --out my_router" in err and str(PRETRAINED_DIR / name) in err
        assert not (tmp_path / name).exists()  # no folder the name would never load
    assert main(["calibrate", "--router", str(PRETRAINED_DIR / "fast"), "--prompts", str(traffic), "--write"]) == 2
    assert "it is the copy inside the installed package" in _one_error_line(capsys)
    assert main(["calibrate", "--router", "random", "--prompts", str(traffic), "--write"]) == 2
    assert "'random' is a registry name with no folder" in _one_error_line(capsys)
    assert not (tmp_path / "random").exists()
    # a folder named like a shipped router (left by the old behaviour): the error says how to name it
    shutil.copytree(PRETRAINED_DIR / "fast", tmp_path / "fast")
    assert main(["calibrate", "--router", "fast", "--prompts", str(traffic), "--write"]) == 2
    assert "(the folder fast here is --router ./fast)" in _one_error_line(capsys)
    assert {name: (PRETRAINED_DIR / name / "config.json").read_bytes() for name in shipped} == shipped

    # the way out the error names: copy, calibrate the copy, route with it
    assert main(["train", "--init", "default", "--out", "my_router"]) == 0
    assert capsys.readouterr().out.strip().endswith("so the pair scores like its init -> my_router")
    assert main(["calibrate", "--router", "my_router", "--prompts", str(traffic), "--write"]) == 0
    captured = capsys.readouterr()
    assert "wrote thresholds into my_router" in captured.err and "warning" not in captured.err
    assert json.loads(captured.out) == pytest.approx(load_router("my_router").calibrated_thresholds)
    assert load_router("default").calibrated_thresholds != load_router("my_router").calibrated_thresholds
    assert main(["route", "--router", "my_router", "--strong-fraction", "0.3", "--file", str(traffic)]) == 0
    choices = [row["choice"] for row in _json_lines(capsys.readouterr().out)]
    assert choices.count("strong") == math.ceil(0.3 * len(prompts))


def test_cli_calibrate_unknown_router_says_what_router_takes(tmp_path: Path, capsys) -> None:
    traffic = tmp_path / "traffic.txt"
    traffic.write_text("\n".join(PROMPTS), encoding="utf-8")
    assert main(["calibrate", "--router", "my_routr", "--prompts", str(traffic)]) == 2
    err = _one_error_line(capsys)
    assert "unknown router 'my_routr': --router takes a registry name (bert, causal_llm, difficulty, mf" in err
    assert "a shipped router (default, fast)" in err
    assert "or a checkpoint folder (one that `routellm train --out DIR` wrote)" in err


def test_cli_calibrate_write_refuses_too_few_prompts_unless_forced(tmp_path: Path, capsys) -> None:
    """The walkthrough's bug: ``--write`` on a one-prompt file replaced a good table with nine equal thresholds.
    Now a sample under 50 prompts, or one where two fractions share a threshold, is refused (the table stays as
    it was); without --write the table is printed with a warning; --force writes it anyway."""
    from routellm_core.routers.registry import PRETRAINED_DIR

    folder = Path(shutil.copytree(PRETRAINED_DIR / "fast", tmp_path / "mine"))
    good = load_router(folder).calibrated_thresholds
    config = (folder / "config.json").read_bytes()
    files = {}
    for name, lines in {
        "one": ["hi"],
        "few": _variants(TRAFFIC, 3)[:49],
        "same": ["hi"] * 60,
        "enough": _variants(TRAFFIC, 3)[:50],
    }.items():
        files[name] = tmp_path / f"{name}.txt"
        files[name].write_text("\n".join(lines), encoding="utf-8")
    cal = ["calibrate", "--router", str(folder), "--prompts"]

    assert main([*cal, str(files["one"]), "--write"]) == 2
    err = _one_error_line(capsys)
    assert "calibrate --write refused: 1 prompt given, 50 or more needed to place the calibration points" in err
    assert "fractions 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 all map to the same threshold" in err
    assert f"{folder} is left as it was" in err and "--force" in err
    assert main([*cal, str(files["few"]), "--write"]) == 2
    assert "49 prompts given, 50 or more needed" in _one_error_line(capsys)
    assert main([*cal, str(files["same"]), "--write"]) == 2
    err = _one_error_line(capsys)
    assert "on these 60 prompts fractions 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 all map to the same" in err
    assert (folder / "config.json").read_bytes() == config

    # without --write: printed, with a warning
    assert main([*cal, str(files["one"]), "--fractions", "0.2,0.8"]) == 0
    captured = capsys.readouterr()
    table = json.loads(captured.out)
    assert set(table) == {"0.2", "0.8"} and table["0.2"] == table["0.8"]
    assert captured.err.startswith("warning: 1 prompt given, 50 or more needed") and "rough" in captured.err
    assert main([*cal, str(files["one"]), "--force"]) == 2
    assert "--force only lets --write store thresholds" in _one_error_line(capsys)

    # 50 distinct prompts are enough; --force writes a thin sample anyway
    assert main([*cal, str(files["enough"]), "--write"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and f"wrote thresholds into {folder}" in captured.err
    written = load_router(folder).calibrated_thresholds
    assert written != good and len(set(written.values())) == 9
    assert main([*cal, str(files["one"]), "--write", "--force"]) == 0
    assert "warning: 1 prompt given" in capsys.readouterr().err
    assert len(set(load_router(folder).calibrated_thresholds.values())) == 1


_CAL = ["calibrate", "--router", "fast", "--prompts"]
_TRAIN = ["train", "--golden", "{tmp}/labels.jsonl", "--out", "{tmp}/o"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*_CAL, "{tmp}/missing.txt"], "prompts file {tmp}/missing.txt does not exist"),
        ([*_CAL, "{tmp}/bad.jsonl"], "bad.jsonl, line 2: invalid JSON"),
        ([*_CAL, "{tmp}/noprompt.csv"], "missing column(s) ['prompt']"),
        ([*_CAL, "{tmp}/ok.txt", "--fractions", "0.1,x"], "--fractions must be comma-separated numbers"),
        ([*_TRAIN, "--params", "{epochs: 3}"], "--params is not valid JSON"),
        ([*_TRAIN, "--params", "[3]"], "--params must be a JSON object"),
        ([*_TRAIN, "--params", '{"epochs": -3}'], "mf parameter 'epochs' = -3 is invalid"),
        ([*_TRAIN, "--params", '{"epoch": 3}'], "mf takes no parameter(s) ['epoch']"),
        ([*_TRAIN, "--init", "mf"], "init 'mf' is neither a shipped router"),
        (
            ["train", "--feedback", "{tmp}/no.db", "--init", "fast", "--out", "{tmp}/o"],
            "store {tmp}/no.db does not exist",
        ),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    (tmp_path / "bad.jsonl").write_text('{"prompt": "fine"}\n{"prompt": oops}\n', encoding="utf-8")
    (tmp_path / "noprompt.csv").write_text("text,label\nhello,1\n", encoding="utf-8")
    (tmp_path / "ok.txt").write_text("\n".join(PROMPTS), encoding="utf-8")
    _write_jsonl(tmp_path / "labels.jsonl", [{"prompt": p, "scores": {STRONG: 1, WEAK: 0}} for p in HARD])
    assert main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("routellm: error: ") and message.replace("{tmp}", str(tmp_path)) in captured.err
    assert not (tmp_path / "o").exists()  # nothing trained, nothing saved


@pytest.mark.parametrize(("init", "kind"), [("fast", "mf"), ("default", "difficulty")])
def test_cli_train_feedback_init_warm_starts_on_the_store(tmp_path: Path, capsys, init: str, kind: str) -> None:
    """``train --feedback store.db --init fast|default``: the init's router type, the store's pair, its prompts for
    calibration, and a count that says which battles were used and that ties were dropped."""
    from routellm_core.learning.feedback import DecisionRecord, FeedbackStore

    store = FeedbackStore(tmp_path / "store.db")
    labelled = [(p, "model_a") for p in HARD] + [(p, "model_b") for p in EASY] + [(p, "tie") for p in UNSEEN_EASY]
    for i, (prompt, winner) in enumerate(labelled):
        record = DecisionRecord(decision_id=f"c{i}", strong_model="gpt-4o", weak_model="gpt-4o-mini", served="weak")
        store.add(prompt, "gpt-4o", "gpt-4o-mini", winner, source="judge", judge="j", record=record)
    out = tmp_path / "mine"
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", init, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err  # 8 strong wins, 8 weak wins: not one-sided
    line = captured.out.strip()
    # difficulty: the pair's battles also refit the profiles a ladder compares (the profiles gpt-4o and gpt-4o-mini
    # resolve to); its two-model win rate scores on the profiles without them, refitted on top
    refit = (
        "profiles refit: gpt-4o-2024-08-06 (16 labels), gpt-4o-mini-2024-07-18 (16 labels); "
        if kind == "difficulty"
        else ""
    )
    assert line == (
        f"warm-started {kind} from {init} on 16 of 20 battles; 4 ties dropped ({kind} learns from wins and losses "
        f"only); {refit}thresholds recalibrated on 20 prompts -> {out}"
    )
    router = load_router(out)
    assert router.name == kind
    assert (router.strong_model, router.weak_model) == ("gpt-4o", "gpt-4o-mini")
    hard, easy = router.predict_win_rate(UNSEEN_HARD), router.predict_win_rate(UNSEEN_EASY)
    assert hard.min() > easy.max()  # the labels, not only the init, decide


def test_cli_train_warns_when_thumbs_labels_all_say_strong(tmp_path: Path, capsys) -> None:
    """The walkthrough's drift: thumbs verdicts on weak answers make only strong wins ('bad') and ties ('good',
    dropped), so the warm-started router's win rates climb and a fixed threshold sends most calls to strong. The
    labelling stays as it is; ``train`` now says so with the counts, and ``--strong-fraction`` (recalibrated)
    still routes the asked share."""
    from routellm_core.learning.feedback import DecisionRecord, FeedbackStore

    store = FeedbackStore(tmp_path / "store.db")
    prompts = _variants(HARD + EASY, 2)  # 32 prompts
    for i, prompt in enumerate(prompts):
        record = DecisionRecord(decision_id=f"d{i}", strong_model="gpt-4o", weak_model="gpt-4o-mini", served="weak")
        store.record_decision(record, prompt)
        store.add_verdict(f"d{i}", "bad" if i % 4 == 0 else "good")  # 8 thumbs down, 24 thumbs up
    out = tmp_path / "mine"
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", "default", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("warm-started difficulty from default on 8 of 32 battles; 24 ties dropped")
    err = captured.err
    assert "routellm train: warning: 8 of 8 kept battles say the strong model won; 24 ties dropped" in err
    assert "a fixed threshold will now send most calls to strong; route with --strong-fraction" in err
    assert "whose thresholds this training recalibrated on 32 prompts" in err
    assert "'good' on a weak answer is stored as a tie, which difficulty drops," in err
    before, after = (float(x) for x in re.search(r"calibration prompts went from ([0-9.]+) to ([0-9.]+)", err).groups())
    assert before == pytest.approx(float(load_router("default").predict_win_rate(prompts).mean()), abs=0.006)
    assert after == pytest.approx(float(load_router(out).predict_win_rate(prompts).mean()), abs=0.006)
    assert after > before + 0.05  # what the warning is about

    # what it advises works: the recalibrated 20% point sends 20% of the traffic to strong
    traffic = tmp_path / "traffic.txt"
    traffic.write_text("\n".join(prompts), encoding="utf-8")
    assert main(["route", "--router", str(out), "--strong-fraction", "0.2", "--file", str(traffic)]) == 0
    choices = [row["choice"] for row in _json_lines(capsys.readouterr().out)]
    assert choices.count("strong") == math.ceil(0.2 * len(prompts))

    # balanced labels (a 'weak' verdict says the weak answer was the better one): no warning
    for i in range(1, 32, 4):
        store.add_verdict(f"d{i}", "weak")
    assert main(["train", "--feedback", str(tmp_path / "store.db"), "--init", "default", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "on 16 of 32 battles; 16 ties dropped" in captured.out and "warning" not in captured.err


# ---- routellm serve: auth fails closed (issue 22) ------------------------------------------------------------
SERVE = [
    "serve", "--strong", "openai:mock-strong", "--strong-base-url", "http://127.0.0.1:9/v1",
    "--weak", "openai:mock-weak", "--weak-base-url", "http://127.0.0.1:9/v1",
]  # fmt: skip


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """``runner.run`` replaced by a recorder: the CLI is checked up to the point it would serve, never listening."""
    calls: list[dict] = []
    monkeypatch.setattr(
        "routellm_core.server.runner.run", lambda settings, **kw: calls.append({"settings": settings, **kw})
    )
    monkeypatch.delenv("ROUTELLM_SERVER_API_KEYS", raising=False)
    return calls


def _argparse_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_serve_api_key_is_not_an_abbreviation_of_api_keys_env(served: list, capsys) -> None:
    """``--api-key mytoken`` used to be taken silently as ``--api-keys-env mytoken`` (auth then off)."""
    assert "unrecognized arguments: --api-key mytoken" in _argparse_error(["serve", "--api-key", "mytoken"], capsys)
    err = _argparse_error([*SERVE, "--api-key", "mytoken"], capsys)
    assert "unrecognized arguments: --api-key mytoken" in err
    assert "mytoken" not in err.replace("--api-key mytoken", "")  # not read as a variable name either
    # no parser of the routellm command takes a prefix of an option for the option
    assert "unrecognized arguments: --thresh" in _argparse_error(["route", "--thresh", "0.5", "hi"], capsys)
    assert "unrecognized arguments: --label-frac" in _argparse_error([*SERVE, "--label-frac", "0.5"], capsys)
    assert "unrecognized arguments: --fraction" in _argparse_error(
        ["calibrate", "--prompts", "p", "--fraction", "1"], capsys
    )
    assert "the following arguments are required: --out" in _argparse_error(["train", "--ou", "x"], capsys)
    assert served == []


def test_serve_needs_a_pair_or_named_models(served: list, capsys) -> None:
    for argv in (["serve"], ["serve", "--strong", "openai:gpt-4o"], ["serve", "--weak", "openai:gpt-4o-mini"]):
        assert main(argv) == 2
        assert "give --strong and --weak" in capsys.readouterr().err
    assert main(["serve", "--model", "openai:gpt-4o"]) == 2
    assert "at least two models" in capsys.readouterr().err
    assert served == []


def test_serve_api_keys_env_must_hold_a_token(served: list, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_UNSET_VAR", raising=False)
    assert "$SOME_UNSET_VAR is unset or empty" in _argparse_error(["serve", "--api-keys-env", "SOME_UNSET_VAR"], capsys)
    assert "$SOME_UNSET_VAR is unset or empty" in _argparse_error([*SERVE, "--api-keys-env", "SOME_UNSET_VAR"], capsys)
    monkeypatch.setenv("SOME_EMPTY_VAR", " , ")
    assert "$SOME_EMPTY_VAR is unset or empty" in _argparse_error([*SERVE, "--api-keys-env", "SOME_EMPTY_VAR"], capsys)
    assert served == []
    monkeypatch.setenv("SOME_TOKEN_VAR", "tok-1,tok-2")
    err = _argparse_error([*SERVE, "--api-keys-env", "SOME_TOKEN_VAR", "--no-auth"], capsys)
    assert "not allowed with argument --api-keys-env" in err
    assert main([*SERVE, "--api-keys-env", "SOME_TOKEN_VAR", "--host", "0.0.0.0"]) == 0
    (call,) = served
    assert call["host"] == "0.0.0.0" and call["settings"].bearer_tokens() == [b"tok-1", b"tok-2"]


def test_serve_without_tokens_binds_to_loopback_only(served: list, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        assert main([*SERVE, "--host", host]) == 2
        err = capsys.readouterr().err
        assert f"refusing to serve on {host} without auth" in err and "--no-auth" in err
    assert served == []
    for host in ("127.0.0.1", "::1", "localhost"):
        assert main([*SERVE, "--host", host]) == 0
    assert [c["host"] for c in served] == ["127.0.0.1", "::1", "localhost"]
    assert all(c["settings"].bearer_tokens() == [] for c in served)
    # the default variable, when it holds tokens, turns auth on; --no-auth serves anyone, and reads no token
    monkeypatch.setenv("ROUTELLM_SERVER_API_KEYS", "tok-default")
    assert main([*SERVE, "--host", "0.0.0.0"]) == 0
    assert served[-1]["settings"].bearer_tokens() == [b"tok-default"]
    assert main([*SERVE, "--host", "0.0.0.0", "--no-auth"]) == 0
    assert served[-1]["host"] == "0.0.0.0" and served[-1]["settings"].bearer_tokens() == []


def test_serve_learning_loop_options_are_checked(served: list, capsys, tmp_path: Path) -> None:
    store = str(tmp_path / "feedback.sqlite")
    judge = ["--judge", "openai:mock-judge", "--judge-base-url", "http://127.0.0.1:9/v1"]
    assert main([*SERVE, "--label-fraction", "0.5"]) == 2
    assert "--label-fraction needs --judge MODEL and --feedback PATH" in capsys.readouterr().err
    assert main([*SERVE, *judge, "--label-fraction", "0.5"]) == 2
    assert "needs --judge MODEL and --feedback PATH" in capsys.readouterr().err
    assert main([*SERVE, *judge, "--feedback", store]) == 2
    assert "--judge needs --feedback PATH and --label-fraction F" in capsys.readouterr().err
    assert "must be a number in [0, 1]" in _argparse_error([*SERVE, "--label-fraction", "2"], capsys)
    assert served == []
    assert main([*SERVE, *judge, "--feedback", store, "--label-fraction", "0.25"]) == 0
    settings = served[-1]["settings"]
    assert (settings.feedback, settings.judge, settings.label_fraction) == (store, "openai:mock-judge", 0.25)
    assert settings.judge_base_url == "http://127.0.0.1:9/v1"


def test_serve_first_log_line_says_whether_auth_is_on(tmp_path: Path) -> None:
    """In a subprocess (the CLI configures logging), with uvicorn's serving replaced: nothing listens."""
    import os
    import subprocess
    import sys

    script = (
        "import sys, uvicorn\n"
        "uvicorn.run = lambda *a, **k: print('SERVED', file=sys.stderr, flush=True)\n"
        "from routellm_core.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "ROUTELLM_SERVER_API_KEYS"}
    base = [sys.executable, "-c", script, *SERVE, "--router", "fast", "--port", "1"]
    off = subprocess.run(base, env=env, capture_output=True, text=True, timeout=120)
    assert off.returncode == 0, off.stderr
    lines = off.stderr.strip().splitlines()
    assert "auth OFF" in lines[0] and "127.0.0.1:1" in lines[0], lines
    assert lines[-1] == "SERVED"
    env["ROUTELLM_TEST_CLI_TOKENS"] = "tok-secret-cli"
    on = subprocess.run(
        [*base, "--api-keys-env", "ROUTELLM_TEST_CLI_TOKENS"], env=env, capture_output=True, text=True, timeout=120
    )
    assert on.returncode == 0, on.stderr
    lines = on.stderr.strip().splitlines()
    assert "auth on (1 bearer token(s))" in lines[0], lines
    assert "tok-secret-cli" not in on.stderr


def test_a_policy_is_named_as_it_was_loaded_or_renamed(default_router) -> None:
    """Decisions name the router as it was loaded ("default"), an instance by its type, or the name given; a
    renamed policy shares the router and threshold."""
    assert RoutingPolicy("default", threshold=0.5).decide("hi").router == "default"
    policy = RoutingPolicy(default_router, threshold=0.5)
    assert policy.router_name == "difficulty"
    mine = policy.renamed("mine")
    assert mine.decide("hi").router == "mine" and mine.router is policy.router and mine.threshold == 0.5
    assert policy.router_name == "difficulty"  # the original keeps its name
    for bad in ("", "  ", 3):
        with pytest.raises(InvalidInputError, match="non-empty string"):
            RoutingPolicy(default_router, threshold=0.5, name=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="non-empty string"):
            policy.renamed(bad)  # type: ignore[arg-type]
