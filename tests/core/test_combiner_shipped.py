"""The shipped escalation combiner: ``Escalation(check="combined")`` is fitted out of the box, online and offline.

The engine runs with the shipped ``default`` router (its threshold set to 1.0 so nothing is pre-routed and every
call takes the cheap attempt) and plain callables as the models. Outcomes are known from the shared answer data the
combiner was fitted on: a cheap answer whose check answer agrees was right 77-98% of the time on every task, one
whose check answer disagrees 15-37% of the time, so agreement keeps the answer and disagreement escalates at 0.5.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from text_engine import text_engine

from routellm_core.decisions import ServedDecision, Side
from routellm_core.errors import InvalidInputError, NotFittedError
from routellm_core.escalation import CHECKS, CheckInput, Escalation, LogisticCombiner
from routellm_core.escalation.checks import SHIPPED_COMBINER_DIR, shipped_combiner
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.engine import RoutingEngine, RoutingOptions

ROOT = Path(__file__).resolve().parents[2]
#: The signals the shipped combiner reads (documented in docs/escalation.md and its MODEL_CARD.md).
SIGNALS = {
    "agreement.agreement",
    "answer_features.log_prompt_chars",
    "answer_features.refusal",
    "win_rate_logit",
}
PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips "
    "did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "What is the capital of France?",
    "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total does it take?",
]
WORKING = "Let me work through this step by step. First I add the two amounts, then I check the units. "


def combined_engine(escalation: Escalation | None = None, **options: Any) -> RoutingEngine:
    return text_engine(
        RoutingOptions(router="default", threshold=1.0, escalate=escalation or Escalation(check="combined"), **options),
    )


def call(routed: RoutingEngine, prompt: str, weak: str, second: str, strong: str = "It is 7.") -> tuple[Any, Any]:
    calls: list[str] = []

    def attempt(side: Side, record: ServedDecision) -> str:
        calls.append(side)
        return weak if side == "weak" else strong

    def other(record: ServedDecision) -> str:
        calls.append("second")
        return second

    value, record = routed.call(routed.route(prompt), attempt, second=other)
    return value, record, calls


def test_combined_is_the_shipped_fitted_combiner() -> None:
    check = Escalation(check="combined").make_check()
    assert isinstance(check, LogisticCombiner)
    assert set(check.feature_names_) == SIGNALS  # no log-probabilities or self-verification: the data has neither
    assert CHECKS["combined"]().weights() == check.weights()  # the same shipped weights, a fresh object each time
    assert CHECKS["combined"]() is not check
    assert check.weights()["agreement.agreement"] > 0
    with pytest.raises(NotFittedError):  # your own combiner still starts unfitted
        LogisticCombiner().predict_signals({"agreement.agreement": np.ones(1)})


def test_shipped_files_are_safetensors_and_json_and_ship_in_the_wheel() -> None:
    import tomllib
    from setuptools import find_namespace_packages

    shipped = sorted(f.name for f in SHIPPED_COMBINER_DIR.iterdir())
    assert shipped == ["MODEL_CARD.md", "config.json", "model.safetensors"]
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        pkg
        for where in cfg["packages"]["find"]["where"]
        for pkg in find_namespace_packages(str(ROOT / where), include=cfg["packages"]["find"]["include"])
    }
    assert "routellm_core.escalation.shipped_combiner" in found
    for f in SHIPPED_COMBINER_DIR.iterdir():
        assert any(f.match(p) for p in cfg["package-data"]["*"]), f.name


def test_agreement_is_kept_and_disagreement_escalated_offline() -> None:
    check = shipped_combiner()
    n = len(PROMPTS)
    from routellm_core import load_router

    win = load_router("default").predict_win_rate(PROMPTS).tolist()
    answers = [WORKING + "The answer is 72."] * n
    agree = CheckInput(answers, others=[["72"] * n], prompts=PROMPTS, outputs=answers, win_rates=win)
    disagree = CheckInput(answers, others=[["70"] * n], prompts=PROMPTS, outputs=answers, win_rates=win)
    p_agree, p_disagree = check.confidence(agree), check.confidence(disagree)
    assert (p_agree > 0.5).all() and (p_disagree < 0.5).all()
    # prompts far shorter or longer than any in the data (36 to 2,160 characters) read as the nearest seen, not
    # extrapolated: two lengths beyond either end score alike
    prompts = ["2+2?", "2+2=?", "x" * 10**5, "x" * 10**6]
    beyond = CheckInput(["4"] * 4, others=[["5"] * 4], prompts=prompts, win_rates=[0.55] * 4)
    p = check.confidence(beyond)
    assert p[0] == p[1] and p[2] == p[3] and p[0] != p[2]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_online_the_shipped_combiner_keeps_agreement_and_escalates_disagreement(prompt: str) -> None:
    routed = combined_engine()
    value, record, calls = call(routed, prompt, weak=WORKING + "The answer is 72.", second="So it is 72")
    assert value == WORKING + "The answer is 72." and sorted(calls) == ["second", "weak"]
    assert (record.served, record.escalated) == ("weak", False)
    first = record.attempts[0]
    assert first.kept and first.signals["agreement.agreement"] == 1.0 and first.confidence > 0.5
    assert set(first.signals) >= SIGNALS

    value, record, calls = call(routed, prompt, weak=WORKING + "The answer is 72.", second="So it is 70")
    assert value == "It is 7." and sorted(calls) == ["second", "strong", "weak"]
    assert (record.served, record.escalated) == ("strong", True)
    first = record.attempts[0]
    assert not first.kept and first.signals["agreement.agreement"] == 0.0 and first.confidence < 0.5


def test_the_store_keeps_the_combiners_signals(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    routed = combined_engine(feedback=store)
    _, record, _ = call(routed, PROMPTS[0], weak=WORKING + "72", second="72")
    stored = store.decision(record.id)
    assert stored is not None
    assert set(stored.record.attempts[0].signals) >= SIGNALS
    assert stored.record.attempts[0].confidence == pytest.approx(record.attempts[0].confidence)


def test_escalation_takes_a_saved_combiner_folder(tmp_path: Path) -> None:
    folder = shipped_combiner().save(tmp_path / "mine")
    for given in (str(folder), folder):
        check = Escalation(check=given).make_check()
        assert isinstance(check, LogisticCombiner) and check.weights() == shipped_combiner().weights()
    value, record, _ = call(combined_engine(Escalation(check=str(folder))), PROMPTS[1], WORKING + "9", "8")
    assert record.escalated and value == "It is 7."
    with pytest.raises(InvalidInputError, match="saved LogisticCombiner"):
        Escalation(check=str(tmp_path / "nowhere"))


def test_the_build_script_reproduces_the_shipped_weights(shared_data_dir: Path) -> None:
    """The recipe (``bench/escalation.py``, run by ``scripts/build_combiner.py``) fitted anew gives the shipped
    weights, and left-one-task-out it ranks cheap answers better than agreement alone on every task."""
    sys.path.insert(0, str(ROOT))
    from bench.escalation import _auc, fit_shipped_combiner, shipped_training_rows
    from routellm_core import load_router

    rows = shipped_training_rows(load_router("default"))
    refit = fit_shipped_combiner(rows)
    shipped = shipped_combiner()
    for name, weight in shipped.weights().items():
        assert refit.weights()[name] == pytest.approx(weight, abs=1e-9)
    for task, (signals, y) in rows.items():
        loto = fit_shipped_combiner(rows, [t for t in rows if t != task]).predict_signals(signals)
        assert _auc(loto, y) > _auc(signals["agreement.agreement"], y), task
