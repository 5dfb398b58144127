"""'Is routing worth it on my traffic?': ``traffic_report`` and ``routellm report`` on a feedback store."""

from __future__ import annotations

import numpy as np
import pytest

from routellm_core import Battle, GoldenLabel, InvalidInputError
from routellm_core.cli import main
from routellm_core.learning.feedback import DecisionRecord, FeedbackStore
from routellm_core.learning.report import labelled_traffic, traffic_report
from routellm_core.routers.training import train_router

STRONG, WEAK = "gpt-4o", "gpt-4o-mini"
#: Greetings the weak model answers as well as the strong one; proofs the strong model wins. Lengths overlap, so
#: the prompt-length heuristic cannot separate them the way a router trained on these labels can.
GREETINGS = [f"hello there, how are you doing today, my dear old friend number {i}?" for i in range(40)]
PROOFS = [f"prove that the sum of the first {i} odd numbers is a square" for i in range(40)]


def fill_store(path, strong_wins_proofs: bool = True) -> FeedbackStore:
    """A store of judged calls: ties on greetings, proofs won by strong (or by weak when asked)."""
    store = FeedbackStore(path)
    for i, prompt in enumerate(GREETINGS + PROOFS):
        record = DecisionRecord(decision_id=f"call-{i}", strong_model=STRONG, weak_model=WEAK, served="weak")
        proof = prompt in PROOFS
        winner = ("model_a" if strong_wins_proofs else "model_b") if proof else "tie"
        store.add(prompt, STRONG, WEAK, winner, source="judge", judge="test-judge", record=record)
    return store


def test_win_shares_from_battles_and_scores_from_golden_labels() -> None:
    battles = [
        Battle(prompt="p1", model_a=STRONG, model_b=WEAK, winner="model_a"),
        Battle(prompt="p1", model_a=WEAK, model_b=STRONG, winner="tie"),
        Battle(prompt="p2", model_a=WEAK, model_b=STRONG, winner="model_a"),
        Battle(prompt="p3", model_a="other", model_b=STRONG, winner="model_a"),  # another pair: not counted
    ]
    traffic, used = labelled_traffic(battles, STRONG, WEAK)
    assert used == 3 and traffic.prompts == ("p1", "p2")
    assert traffic.strong.tolist() == [0.75, 0.0] and traffic.weak.tolist() == [0.25, 1.0]
    golden = [GoldenLabel(prompt="q", scores={STRONG: 0.9, WEAK: 0.4, "x": 1.0})]
    traffic, used = labelled_traffic(golden, STRONG, WEAK)
    assert traffic.strong.tolist() == [0.9] and traffic.weak.tolist() == [0.4]


def test_report_on_a_store_says_yes_when_a_warm_start_learns_the_traffic(tmp_path) -> None:
    store = fill_store(tmp_path / "store.db")
    report = traffic_report("fast", store, n_bootstrap=300)  # the pair comes from the store's decisions
    assert (report.strong_model, report.weak_model) == (STRONG, WEAK)
    assert report.n_prompts == 80 and report.q_strong == pytest.approx(0.75) and report.q_weak == pytest.approx(0.25)
    names = [row.name for row in report.rows]
    assert names == ["fast (as is)", "fast + your labels (5-fold)", "length", "random"]
    warm = report.rows[1]
    # held-out folds: the warm-started routers send the proofs first, close to the oracle's APGR of 0.75 (all
    # 40 proofs first: PGR climbs to 1 at 50% strong calls and stays there); random's is 0.5
    assert warm.apgr.value > 0.7 and warm.apgr.low > 0.6 and warm.cpt80.value < 0.6  # random: 0.8, oracle: 0.4
    assert report.rows[0].apgr.low < warm.apgr.low
    random_row = report.rows[3]
    assert random_row.apgr.value == 0.5 and random_row.apgr.low < 0.5 < random_row.apgr.high
    assert report.verdict.startswith("Yes: fast + your labels (5-fold) routes better than random")
    text = report.to_markdown()
    assert "| fast + your labels (5-fold) |" in text and f"**Verdict:** {report.verdict}" in text
    png = report.plot(tmp_path / "curves.png")
    assert png.stat().st_size > 1000


def test_a_warm_started_router_is_measured_through_its_init(tmp_path) -> None:
    store = fill_store(tmp_path / "store.db")
    mine = train_router("mf", store.battles(), init="fast", strong_model=STRONG, weak_model=WEAK)
    mine.save(tmp_path / "mine")
    report = traffic_report(tmp_path / "mine", store, n_bootstrap=200)
    assert report.base == "fast" and report.rows[0].name == "fast (as is)"
    assert "was warm-started from `fast`" in report.notes[0]


def test_verdicts_when_weak_is_as_good_and_when_labels_are_too_few(tmp_path) -> None:
    store = fill_store(tmp_path / "store.db", strong_wins_proofs=False)
    report = traffic_report("fast", store, n_bootstrap=200)
    assert report.verdict.startswith("No: on your labelled traffic the weak model (gpt-4o-mini)")
    assert report.rows == ()
    few = [Battle(prompt=p, model_a=STRONG, model_b=WEAK, winner="model_a") for p in PROOFS[:5]]
    with pytest.raises(InvalidInputError, match="only 5 labelled prompt"):
        traffic_report("fast", few, strong_model=STRONG, weak_model=WEAK)
    with pytest.raises(InvalidInputError, match="do not compare the router's pair"):
        traffic_report("fast", few)


@pytest.mark.slow
def test_cli_report_on_a_store(tmp_path, capsys) -> None:
    fill_store(tmp_path / "store.db")
    plot = tmp_path / "report.png"
    out_json = tmp_path / "report.json"
    args = ["report", "--router", "fast", "--feedback", str(tmp_path / "store.db"), "--bootstrap", "200"]
    assert main([*args, "--plot", str(plot), "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "**Verdict:** Yes" in out and plot.stat().st_size > 1000
    import json

    data = json.loads(out_json.read_text())
    assert data["strong_model"] == STRONG and len(data["rows"]) == 4
    assert np.isfinite(data["rows"][1]["apgr"]["low"])
    assert main(["report", "--router", "fast", "--feedback", str(tmp_path / "missing.db")]) == 2
    assert (
        capsys.readouterr().err.strip() == f"routellm: error: feedback store {tmp_path / 'missing.db'} does not exist"
    )
