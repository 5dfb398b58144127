"""Refitting the escalation combiner from a real feedback store (``routellm train --feedback ... --combiner-out``).

Decisions come from a real engine (the shipped ``default`` router, the shipped combiner, plain callables as models)
recording into a SQLite store in a temporary folder; verdicts are attached with ``add_verdict`` as a user (or a
golden grader) would. Each store's labels say something known in advance about agreement, and the refit must move the
shipped combiner that way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from text_engine import text_engine

from routellm_core import load_router
from routellm_core.cli import main
from routellm_core.decisions import ServedDecision, Side
from routellm_core.errors import InvalidInputError, TrainingDataError
from routellm_core.escalation import CheckInput, Escalation, LogisticCombiner
from routellm_core.escalation.checks import shipped_combiner
from routellm_core.learning.combiner import MIN_COMBINER_LABELS, combiner_training_data, refit_combiner
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.engine import RoutingEngine, RoutingOptions

QUESTIONS = [
    "Natalia sold clips to {n} of her friends in April, and then she sold half as many clips in May. How many clips "
    "did Natalia sell altogether?",
    "Weng earns ${n} an hour for babysitting. Yesterday she did 50 minutes of babysitting. How much did she earn?",
    "A robe takes {n} bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
    "What is {n} plus 17?",
]


def engine(store: FeedbackStore, threshold: float) -> RoutingEngine:
    """Nothing pre-routed (router threshold 1.0); the check threshold decides kept vs escalated."""
    return text_engine(
        RoutingOptions(
            router="default", threshold=1.0, escalate=Escalation(check="combined", threshold=threshold), feedback=store
        ),
    )


def record(routed: RoutingEngine, prompt: str, agree: bool) -> ServedDecision:
    def attempt(side: Side, rec: ServedDecision) -> str:
        return "The answer is 12." if side == "weak" else "It is 13."

    def second(rec: ServedDecision) -> str:
        return "12" if agree else "14"

    _, rec = routed.call(routed.route(prompt), attempt, second=second)
    return rec


def fill(
    store: FeedbackStore, n: int, verdict_for: Any, *, threshold: float = 0.0, source: str = "user"
) -> list[ServedDecision]:
    """``n`` decisions, each question in turn agreeing and disagreeing, each given ``verdict_for(agree)`` (None:
    none)."""
    routed = engine(store, threshold)
    out = []
    for i in range(n):
        agree = (i // len(QUESTIONS)) % 2 == 0
        rec = record(routed, QUESTIONS[i % len(QUESTIONS)].format(n=10 + i), agree)
        verdict = verdict_for(agree)
        if verdict is not None:
            store.add_verdict(rec.id, verdict, source=source)  # type: ignore[arg-type]
        out.append(rec)
    return out


def confidences(combiner: LogisticCombiner) -> tuple[float, float]:
    """(agreeing, disagreeing) confidence on one prompt, with the default router's win rate as online."""
    prompt = [QUESTIONS[0].format(n=48)]
    win = load_router("default").predict_win_rate(prompt).tolist()
    batch = {
        agree: CheckInput(["The answer is 12."], [["12" if agree else "14"]], prompts=prompt, win_rates=win)
        for agree in (True, False)
    }
    return float(combiner.confidence(batch[True])[0]), float(combiner.confidence(batch[False])[0])


def test_labels_that_punish_disagreement_sharpen_the_combiner(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    fill(store, 64, lambda agree: "good" if agree else "bad")
    combiner, data = refit_combiner(store)
    assert len(data) == 64 and data.labels.sum() == 32
    shipped = shipped_combiner()
    agree, disagree = confidences(combiner)
    assert disagree < agree
    assert disagree < confidences(shipped)[1]  # every kept disagreement was bad: even less trust in one
    assert combiner.weights()["agreement.agreement"] > shipped.weights()["agreement.agreement"]
    assert combiner.feature_names_ == shipped.feature_names_


def test_labels_that_reward_disagreement_turn_the_combiner_around(tmp_path: Path) -> None:
    """Traffic where the check model is the one that is wrong: kept answers were good exactly when they disagreed."""
    store = FeedbackStore(tmp_path / "fb.db")
    fill(store, 200, lambda agree: "bad" if agree else "weak")
    combiner, data = refit_combiner(store)
    assert len(data) == 200
    agree, disagree = confidences(combiner)
    assert disagree > agree
    assert combiner.weights()["agreement.agreement"] < 0 < shipped_combiner().weights()["agreement.agreement"]


def test_a_few_labels_stay_near_the_shipped_combiner(tmp_path: Path) -> None:
    """The warm start: the same contradicting labels, 20 instead of 200, move the weights far less."""
    weights = []
    for n in (20, 200):
        store = FeedbackStore(tmp_path / f"fb{n}.db")
        fill(store, n, lambda agree: "bad" if agree else "good")
        weights.append(refit_combiner(store)[0].weights()["agreement.agreement"])
    shipped = shipped_combiner().weights()["agreement.agreement"]
    assert weights[1] < weights[0] < shipped
    assert weights[0] > 0  # 20 labels do not overturn what the shared data says


def test_only_served_weak_answers_with_a_label_count(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    kept = fill(store, 24, lambda agree: "good")  # threshold 0: every weak answer served
    # at threshold 0.5 every disagreement escalates; its "bad" is about the strong answer, not the weak one
    escalated = [r for r in fill(store, 8, lambda agree: "bad", threshold=0.5) if r.escalated]
    assert len(escalated) == 4
    fill(store, 4, lambda agree: None)  # no verdict
    data = combiner_training_data(store, shipped_combiner().feature_names_)
    assert len(data) == 28  # 24 kept + the 4 agreeing kept ones of the second batch
    assert not set(data.decision_ids) & {r.id for r in escalated}
    assert data.skipped == {"escalated (weak answer not served)": 4, "no label": 4}
    assert set(data.decision_ids) >= {r.id for r in kept}


def test_a_golden_label_outranks_the_users(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    decisions = fill(store, 2, lambda agree: "good")  # the user liked both
    store.add_verdict(decisions[0].id, "bad", source="golden")  # the grader says the first was wrong
    data = combiner_training_data(store, shipped_combiner().feature_names_)
    assert dict(zip(data.decision_ids, data.labels.tolist())) == {decisions[0].id: 0.0, decisions[1].id: 1.0}
    only_user = combiner_training_data(store, shipped_combiner().feature_names_, sources=["user"])
    assert only_user.labels.tolist() == [1.0, 1.0]
    with pytest.raises(InvalidInputError, match="label sources"):
        combiner_training_data(store, ["agreement.agreement"], sources=["crowd"])


def test_too_few_labels_are_refused_with_the_number(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    fill(store, MIN_COMBINER_LABELS - 1, lambda agree: "good")
    with pytest.raises(TrainingDataError, match=f"at least {MIN_COMBINER_LABELS} labelled decisions.*has 19"):
        refit_combiner(store)


def test_decisions_under_another_check_are_named_not_used(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    routed = text_engine(
        RoutingOptions(router="default", threshold=1.0, escalate=Escalation(threshold=0.0), feedback=store),
    )
    for i in range(25):
        store.add_verdict(record(routed, QUESTIONS[3].format(n=i), True).id, "good")
    with pytest.raises(TrainingDataError, match="25 other signals"):
        refit_combiner(store)


def test_cli_refits_the_combiner_next_to_the_router(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "fb.db"
    with FeedbackStore(db) as store:
        fill(store, 40, lambda agree: "good" if agree else "bad")
    out = tmp_path / "combiner"
    args = ["train", "--feedback", str(db), "--init", "default", "--out", str(tmp_path / "router")]
    assert main([*args, "--combiner-out", str(out)]) == 0
    printed = capsys.readouterr().out
    said = "refitted the escalation combiner from the shipped combiner on 40 labelled decisions (20 good, 20 bad"
    assert said in printed
    assert sorted(f.name for f in out.iterdir()) == ["config.json", "model.safetensors"]
    refit = Escalation(check=str(out)).make_check()
    assert confidences(refit)[1] < confidences(shipped_combiner())[1]
    # a second refit can start from the first
    again = tmp_path / "again"
    assert main([*args, "--combiner-out", str(again), "--combiner-init", str(out)]) == 0
    assert f"from {out} on 40" in capsys.readouterr().out


def test_cli_refuses_a_refit_it_cannot_do(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "fb.db"
    with FeedbackStore(db) as store:
        fill(store, 5, lambda agree: "good")
    base = ["train", "--init", "default", "--out", str(tmp_path / "router")]
    assert main([*base, "--feedback", str(db), "--combiner-out", str(tmp_path / "c")]) == 2
    assert f"at least {MIN_COMBINER_LABELS} labelled decisions" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() and not (tmp_path / "router").exists()
    assert main([*base, "--battles", str(tmp_path / "x.jsonl"), "--combiner-out", str(tmp_path / "c")]) == 2
    assert "--combiner-out refits the escalation combiner from a feedback store: give --feedback" in (
        capsys.readouterr().err
    )
    assert main([*base, "--feedback", str(db), "--combiner-init", str(tmp_path / "c")]) == 2
    assert "give --combiner-out too" in capsys.readouterr().err


def test_refit_keeps_a_valid_checkpoint(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    fill(store, 30, lambda agree: "good" if agree else "bad")
    combiner, _ = refit_combiner(store)
    loaded = LogisticCombiner.load(combiner.save(tmp_path / "c"))
    batch = CheckInput(["12", "12"], [["12", "14"]], prompts=["What is 5 plus 7?"] * 2, win_rates=[0.6, 0.6])
    np.testing.assert_allclose(loaded.confidence(batch), combiner.confidence(batch))
    assert loaded.signal_names == tuple(shipped_combiner().feature_names_)
