"""Escalation: answer extraction and comparison, checks, the Escalation config, and the offline evaluation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import routellm_core
from routellm_core.errors import CheckpointError, InvalidInputError, InvalidThresholdError, NotFittedError
from routellm_core.escalation import (
    AgreementCheck,
    AnswerFeaturesCheck,
    CheckInput,
    Escalation,
    LogisticCombiner,
    answers_agree,
    evaluate_escalation,
    extract_choice,
    extract_number,
    extract_tool_calls,
    is_refusal,
    normalise_answer,
    normalise_text,
)


# ---- answers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "letter"),
    [("B", "B"), ("(c)", "C"), ("B. Paris", "B"), ("The answer is (D).", "D"), ("Answer: A", "A"), ("", None)],
)
def test_choice_letter(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_choice_agreement() -> None:
    assert answers_agree("(B)", "B. because ...", "choice")
    assert not answers_agree("A", "B", "choice")


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("18", 18.0),
        ("$1,234.50", 1234.5),
        ("-7 degrees", -7.0),
        ("3.75 hours", 3.75),
        ("The total is 42 apples, not 7", 42.0),
        ("1/4", 0.25),
        ("no number here", None),
        (None, None),
    ],
)
def test_first_number(text: str | None, number: float | None) -> None:
    assert extract_number(text) == number


def test_number_agreement_first_number_rule() -> None:
    assert answers_agree("18", "18.00", "number")
    assert answers_agree("$1,000", "1000 dollars", "number")
    assert answers_agree("-3", "-3.0", "number")
    assert not answers_agree("-3", "3", "number")
    assert answers_agree("2:00 pm", "2 o'clock", "number")  # only the first number counts, as the grader does
    assert answers_agree("Cannot be determined", "cannot be determined.", "number")  # no number: text rule
    assert not answers_agree(None, None, "number")


def test_json_field_equality() -> None:
    a = {"name": "Ada  Lovelace", "year": 1815, "notes": "x"}
    b = '```json\n{"year": 1815.0, "name": "ada lovelace", "notes": "y"}\n```'
    assert not answers_agree(a, b, "json")
    assert answers_agree(a, b, "json", fields=("name", "year"))
    assert not answers_agree(a, "not json", "json")


def test_tool_call_argument_normalisation() -> None:
    a = [{"name": "get_weather", "arguments": '{"city": "Paris", "days": 3}'}]
    b = [{"type": "function", "function": {"name": " get_weather ", "arguments": {"days": 3.0, "city": " Paris "}}}]
    assert extract_tool_calls(a) == extract_tool_calls(b)
    assert answers_agree(a, b, "tool_call")
    # argument values are compared exactly (a tool runs them): another case is another call
    lower = [{"name": "get_weather", "arguments": {"city": "paris", "days": 3}}]
    assert not answers_agree(a, lower, "tool_call")
    c = [{"name": "get_weather", "arguments": {"city": "Lyon", "days": 3}}]
    assert not answers_agree(a, c, "tool_call")
    two = [{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"x": 1}}]
    assert answers_agree(two, list(reversed(two)), "tool_call")  # order of the calls ignored
    assert extract_tool_calls([{"name": "f", "arguments": "{not json"}]) is None


def test_text_normalisation() -> None:
    assert normalise_text('  "Hello,   World!" ') == "hello, world"
    assert answers_agree("Paris.", "paris", "text")
    assert not answers_agree("'ABC'", "'abc'", "exact")  # exact keeps case (Python literals)
    assert answers_agree(" [1, 2] ", "[1, 2]", "exact")
    assert normalise_answer("18", "number") != normalise_answer("18", "text")


def test_user_extractor_and_unknown_kind() -> None:
    last_word = lambda s: s.split()[-1] if s.split() else None  # noqa: E731
    assert answers_agree("so it is blue", "I think blue", extract=last_word)
    assert not answers_agree("so it is blue", "red", extract=last_word)
    with pytest.raises(InvalidInputError, match="unknown answer kind"):
        normalise_answer("x", "nope")


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("I cannot answer this question.", True),
        ("As an AI language model, I ...", True),
        ("The answer is 12.", False),
        (None, False),
    ],
)
def test_refusals(text: str | None, refused: bool) -> None:
    assert is_refusal(text) is refused


# ---- checks -----------------------------------------------------------------------------------------------
def test_agreement_and_feature_checks() -> None:
    batch = CheckInput(
        first=["12", None, "7", "5"],
        others=[["12.0", "3", "8", "5"], ["12", "3", "7", None]],
        prompts=["What is 3*4?", "q", "q2", "q3"],
        outputs=["It is 12.", None, "I'm sorry, I can't help with that.", "x" * 500],
    )
    agree = AgreementCheck(kind="number")
    assert agree.confidence(batch).tolist() == [1.0, 0.0, 0.5, 0.5]
    sig = agree.signals(batch)
    assert sig["first_missing"].tolist() == [0, 1, 0, 0]
    feats = AnswerFeaturesCheck()
    s = feats.signals(batch)
    assert s["no_answer"].tolist() == [0, 1, 0, 0]
    assert s["refusal"].tolist() == [0, 0, 1, 0]
    conf = feats.confidence(batch)
    assert conf[1] == 0.0 and conf[2] == 0.0 and conf[0] > conf[3]
    assert ((conf >= 0) & (conf <= 1)).all()
    with pytest.raises(InvalidInputError, match="has 1 answers"):
        CheckInput(first=["a", "b"], others=[["a"]])


def test_embedding_agreement_free_text() -> None:
    batch = CheckInput(
        first=["The cat sat on the mat.", "Paris is the capital of France."],
        others=[["A cat was sitting on the mat.", "Quarterly revenue grew by ten percent."]],
    )
    conf = AgreementCheck(kind="embedding").confidence(batch)
    assert conf.shape == (2,) and conf[0] > conf[1]


def _labelled(seed: int = 0, n: int = 400) -> tuple[CheckInput, np.ndarray]:
    rng = np.random.default_rng(seed)
    right = rng.random(n) < 0.7
    first = [str(i) if r else str(i + 1) for i, r in enumerate(right)]
    other = [str(i) if rng.random() < 0.85 else str(i + 2) for i in range(n)]
    batch = CheckInput(
        first=first,
        others=[other],
        prompts=["p" * int(x) for x in rng.integers(20, 200, n)],
        output_chars=rng.integers(50, 500, n).tolist(),
        win_rates=rng.random(n).tolist(),
    )
    return batch, right.astype(float)


def test_combiner_fit_save_load_round_trip(tmp_path: Path) -> None:
    batch, y = _labelled()
    combiner = LogisticCombiner(checks=(AgreementCheck(kind="number"), AnswerFeaturesCheck()))
    with pytest.raises(NotFittedError):
        combiner.predict(batch)
    p = combiner.fit(batch, y).predict(batch)
    assert ((p > 0) & (p < 1)).all()
    assert combiner.weights()["agreement.agreement"] > 0  # agreeing answers are right more often
    combiner.save(tmp_path / "c")
    assert sorted(f.name for f in (tmp_path / "c").iterdir()) == ["config.json", "model.safetensors"]
    mode = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "c").iterdir()}
    assert mode["model.safetensors"] == mode["config.json"]  # weights follow the umask, not owner-only
    loaded = LogisticCombiner.load(tmp_path / "c")
    np.testing.assert_allclose(loaded.predict(batch), p)
    assert loaded.checks[0].kind == "number"


def test_combiner_refuses_corrupt_files(tmp_path: Path) -> None:
    batch, y = _labelled()
    folder = (
        LogisticCombiner(checks=(AgreementCheck(kind="number"),), use_win_rate=False).fit(batch, y).save(tmp_path / "c")
    )
    weights = folder / "model.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(b"\x00garbage" + good[20:])
    with pytest.raises(CheckpointError):
        LogisticCombiner.load(folder)
    weights.write_bytes(good)
    config = json.loads((folder / "config.json").read_text())
    config["feature_names"] = config["feature_names"][:-1]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="feature names"):
        LogisticCombiner.load(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        LogisticCombiner.load(folder)
    with pytest.raises(CheckpointError):
        LogisticCombiner.load(tmp_path / "missing")


# ---- Escalation config ------------------------------------------------------------------------------------
def test_escalation_config_validation() -> None:
    assert routellm_core.Escalation is Escalation
    e = Escalation()
    assert e.second is None and e.effective_threshold == 0.5
    assert isinstance(e.make_check(), AgreementCheck)
    assert Escalation(threshold=1).threshold == 1.0
    assert Escalation(share=0.2).effective_threshold is None
    with pytest.raises(InvalidThresholdError, match=r"\[0, 1\]"):
        Escalation(threshold=1.5)
    with pytest.raises(InvalidThresholdError):
        Escalation(share=-0.1)
    with pytest.raises(InvalidThresholdError):
        Escalation(threshold=float("nan"))
    with pytest.raises(InvalidInputError, match="not both"):
        Escalation(threshold=0.5, share=0.3)
    with pytest.raises(InvalidInputError, match="unknown escalation check"):
        Escalation(check="vibes")
    with pytest.raises(InvalidInputError, match="callable"):
        Escalation(extract="last word")  # type: ignore[arg-type]
    assert Escalation(check="answer_features", second="gemini-1.5-flash").second == "gemini-1.5-flash"


# ---- evaluate_escalation ----------------------------------------------------------------------------------
def _synthetic() -> tuple[dict, dict, dict]:
    # 10 prompts; the cheap models agree exactly when cheap is right (prompts 0-5); strong is always right.
    n = 10
    truth = [str(i) for i in range(n)]
    cheap_a = [t if i < 6 else "x" for i, t in enumerate(truth)]
    cheap_b = [t if i < 6 else "y" for i, t in enumerate(truth)]
    answers = {"a": cheap_a, "b": cheap_b, "S": truth}
    quality = {"a": [1.0] * 6 + [0.0] * 4, "b": [1.0] * 6 + [0.0] * 4, "S": [1.0] * n}
    costs = {"a": [1.0] * n, "b": [0.5] * n, "S": [10.0] * n}
    return answers, quality, costs


def test_evaluate_escalation_synthetic_by_hand() -> None:
    answers, quality, costs = _synthetic()
    curve = routellm_core.evaluate_escalation(answers, quality, costs, strong="S", cheap=["a", "b"], check="agreement")
    # escalate the 4 disagreements: everyone pays a + b (1.5), 4 also pay S (10): (15 + 40) / 10 = 5.5
    assert curve.cost_for(1.0) == pytest.approx(5.5)
    assert curve.calls_for(1.0) == pytest.approx(1.4)
    assert curve.max_quality == pytest.approx(1.0)
    # the cheapest policy skips the check: only a is called
    assert curve.points[0].tolist() == [pytest.approx(1.0), pytest.approx(0.6)]
    assert curve.cost_for(0.6) == pytest.approx(1.0)
    assert curve.cost_for(1.01) is None
    # half-way: a random mix of "skip" (1.0, 0.6) and "escalate disagreements" (5.5, 1.0)
    assert curve.cost_for(0.8) == pytest.approx(3.25)
    assert (np.diff(curve.points[:, 0]) > 0).all() and (np.diff(curve.points[:, 1]) > 0).all()


def test_evaluate_escalation_pre_route() -> None:
    answers, quality, costs = _synthetic()
    # a router sure about prompts 8 and 9 (cheap wrong there): pre-routing them pays 10 instead of 1.5 + 10
    win = [0.1] * 8 + [0.9, 0.9]
    curve = evaluate_escalation(answers, quality, costs, strong="S", cheap=["a", "b"], win_rates=win)
    assert curve.cost_for(1.0) == pytest.approx((8 * 1.5 + 2 * 10 + 2 * 10) / 10)
    # calls: 2 pre-routed (1 each), 2 escalated (2 each), 6 kept (1 each)
    assert curve.calls_for(1.0) == pytest.approx(1.2)
    # prompt-only routing is the same sweep with no check
    only = evaluate_escalation(answers, quality, costs, strong="S", cheap=["a"], check="none", win_rates=win)
    grid = np.linspace(0.6, only.max_quality, 9)
    assert all(curve.cost_for(q) <= only.cost_for(q) + 1e-12 for q in grid)


def test_evaluate_escalation_input_errors() -> None:
    answers, quality, costs = _synthetic()
    with pytest.raises(InvalidInputError, match="no entry"):
        evaluate_escalation(answers, quality, costs, strong="T", cheap=["a", "b"])
    with pytest.raises(InvalidInputError, match="values for 10"):
        evaluate_escalation(answers, {**quality, "a": [1.0]}, costs, strong="S", cheap=["a", "b"])
    with pytest.raises(InvalidInputError, match="at least one"):
        evaluate_escalation(answers, quality, costs, strong="S", cheap=[])
    with pytest.raises(InvalidInputError, match="unknown check"):
        evaluate_escalation(answers, quality, costs, strong="S", cheap=["a", "b"], check="vibes")
    with pytest.raises(InvalidInputError, match="win rates"):
        evaluate_escalation(answers, quality, costs, strong="S", cheap=["a", "b"], win_rates=[0.5])
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        evaluate_escalation(answers, quality, costs, strong="S", cheap=["a", "b"], check=[2.0] * 10)


def test_gsm_agreement_beats_always_cheap_below_strong_cost(shared_data_dir: Path) -> None:
    from routellm_core.data.zeroeval_answers import load_answer_table

    table = load_answer_table("gsm")
    strong, cheap = "gpt-4o-2024-08-06", ["gpt-4o-mini-2024-07-18", "gemini-1.5-flash"]
    quality = {m: table.correct[m] for m in (strong, *cheap)}
    n = len(table.prompts)
    costs = {strong: [10.0] * n, cheap[0]: [0.6] * n, cheap[1]: [0.3] * n}  # about gpt-4o's price ratios
    curve = evaluate_escalation(
        table.answers, quality, costs, strong=strong, cheap=cheap, check=AgreementCheck(kind="number")
    )
    q_cheap, q_strong = float(np.mean(quality[cheap[0]])), float(np.mean(quality[strong]))
    assert curve.max_quality > q_cheap
    cost = curve.cost_for(curve.max_quality)
    assert cost is not None and cost < 10.0
    assert curve.cost_for(q_strong) is not None and curve.cost_for(q_strong) < 0.35 * 10.0


def test_logprob_check_reads_the_geometric_mean_token_probability() -> None:
    from routellm_core.escalation import LogprobCheck

    batch = CheckInput(first=["a", "b", "c"], logprobs=[[-0.1, -0.3], None, [float("-inf"), -0.5]])
    check = LogprobCheck()
    signals = check.signals(batch)
    assert signals["has_logprobs"].tolist() == [1.0, 0.0, 1.0]
    assert check.confidence(batch).tolist() == pytest.approx([math.exp(-0.2), 0.0, math.exp(-0.5)])
    assert LogprobCheck(when_missing=1.0).confidence(batch)[1] == 1.0
    with pytest.raises(InvalidInputError, match="when_missing"):
        LogprobCheck(when_missing=2.0)
    with pytest.raises(InvalidInputError, match="logprobs has 1 items"):
        CheckInput(first=["a", "b"], logprobs=[[0.0]])
