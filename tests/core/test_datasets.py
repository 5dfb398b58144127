"""Tests for the benchmark loaders, shared training sources and users' own data files (``routellm_core.data``)."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from routellm_core import data as ds
from routellm_core.data.records import Battle, GoldenLabel, golden_to_battles
from routellm_core.errors import TrainingDataError

# Every test here reads the shared data (skipped, naming the folder looked in, when it is missing); the data
# folder's own checks and users' files need none and live in test_user_files.py.
pytestmark = pytest.mark.usefixtures("shared_data_dir")


def _norm_words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _folder(name: str) -> Path:
    """A folder of the shared data; the test is skipped (naming the folder) when this checkout lacks it."""
    path = ds.data_dir() / name
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} not found")
    return path


# ---- benchmarks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "n", "n_all", "q_strong", "q_weak"),
    [
        ("mmlu", 14_037, 14_042, 0.806, 0.681),
        ("gsm8k", 1_307, 1_319, 0.858, 0.637),
        ("mt_bench", 72, 80, 9.21, 8.28),
    ],
)
def test_benchmarks_reproduce_guide_table(name: str, n: int, n_all: int, q_strong: float, q_weak: float) -> None:
    bench = ds.load_benchmark(name)
    assert bench.name == name
    assert len(bench) == n
    assert bench.q_strong == pytest.approx(q_strong, abs=0.005)
    assert bench.q_weak == pytest.approx(q_weak, abs=0.005)
    assert bench.strong_model == ds.STRONG == "gpt-4-1106-preview"
    assert bench.weak_model == ds.WEAK == "mistralai/Mixtral-8x7B-Instruct-v0.1"
    assert len(ds.load_benchmark(name, drop_contaminated=False)) == n_all
    assert not set(p.strip() for p in bench.prompts) & ds.contaminated_prompts(name)


def test_contaminated_prompts_sizes_and_names() -> None:
    assert len(ds.contaminated_prompts("mmlu")) == 5
    assert len(ds.contaminated_prompts("gsm8k")) == 12
    assert len(ds.contaminated_prompts("mt-bench")) == 8
    with pytest.raises(TrainingDataError, match="unknown benchmark"):
        ds.contaminated_prompts("hellaswag")
    with pytest.raises(TrainingDataError, match="unknown benchmark"):
        ds.load_benchmark("arena")


def test_mt_bench_routes_on_turn_one_and_averages_both_turns() -> None:
    bench = ds.load_mt_bench()
    assert bench.ids is not None and len(bench.ids) == 72
    root = ds.data_dir() / "routellm-evals" / "mt_bench"
    questions = {str(q["question_id"]): q for q in map(json.loads, (root / "question.jsonl").open())}
    grades: dict[tuple[str, str], list[float]] = {}
    for j in map(json.loads, (root / "judgements.jsonl").open()):
        grades.setdefault((str(j["question_id"]), j["model"]), []).append(j["score"])
    for i in (0, 35, 71):
        qid = bench.ids[i]
        assert bench.prompts[i] == questions[qid]["turns"][0]
        assert len(grades[(qid, ds.STRONG)]) == 2
        assert bench.strong[i] == pytest.approx(np.mean(grades[(qid, ds.STRONG)]))
        assert bench.weak[i] == pytest.approx(np.mean(grades[(qid, ds.WEAK)]))


def test_benchmark_is_cached_and_immutable() -> None:
    bench = ds.load_mmlu()
    assert ds.load_mmlu() is bench
    assert isinstance(bench.prompts, tuple)
    with pytest.raises(ValueError):
        bench.strong[0] = 0.0
    with pytest.raises(AttributeError):
        bench.name = "other"  # type: ignore[misc]
    # MMLU keeps RouteLLM's 105 repeated questions (same question under two subjects).
    assert len(bench.prompts) - len(set(bench.prompts)) == 105


def test_benchmark_subset_and_validation() -> None:
    bench = ds.load_mt_bench()
    sub = bench.subset(np.arange(10))
    assert len(sub) == 10 and sub.prompts == bench.prompts[:10] and sub.ids == bench.ids[:10]
    mask = bench.strong > bench.weak
    assert len(bench.subset(mask)) == int(mask.sum())
    with pytest.raises(TrainingDataError, match="prompts"):
        ds.Benchmark("x", ("a", "b"), np.array([1.0]), np.array([0.0, 1.0]))
    with pytest.raises(TrainingDataError, match="no prompts"):
        ds.Benchmark("x", (), np.array([]), np.array([]))


# ---- golden labels from the shared data -------------------------------------------------------------------
def test_golden_labels_of_benchmarks() -> None:
    mmlu = ds.golden_labels_mmlu()
    assert len(mmlu) == 14_037
    assert {lab.source for lab in mmlu} == {"mmlu"}
    assert set(mmlu[0].scores) == {ds.STRONG, ds.WEAK}
    mt = ds.golden_labels_mt_bench()
    bench = ds.load_mt_bench()
    assert [lab.prompt for lab in mt] == list(bench.prompts)
    assert [lab.scores[ds.STRONG] for lab in mt] == pytest.approx(list(bench.strong))
    assert len(ds.golden_labels_gsm8k()) == 1_307
    # callers get a fresh list: mutating it leaves the cache alone
    mmlu.clear()
    assert len(ds.golden_labels_mmlu()) == 14_037


def test_golden_labels_dcrouter() -> None:
    train, test = ds.golden_labels_dcrouter("train"), ds.golden_labels_dcrouter("test")
    assert (len(train), len(test)) == (5_608, 500)
    assert all(len(lab.scores) == 9 and lab.source == "dcrouter" for lab in train)
    assert len(golden_to_battles(test)) == 500 * 36
    with pytest.raises(TrainingDataError, match="split"):
        ds.golden_labels_dcrouter("dev")


def test_golden_labels_mmlu_pro() -> None:
    labels = ds.golden_labels_mmlu_pro()
    assert len(labels) == 12_032
    first = labels[0]
    lines = first.prompt.split("\n")
    assert lines[0] == "Which of the following would most likely provide examples of mitotic cell divisions?"
    assert lines[1].startswith("A. ") and lines[-1] == "Answer:"
    counts = Counter(len(lab.scores) for lab in labels)
    assert counts[30] == 10_326 and sum(counts.values()) == 12_032  # empty cells are omitted, not zero
    gpt4o = [lab.scores["gpt-4o-2024-05-13"] for lab in labels if "gpt-4o-2024-05-13" in lab.scores]
    assert np.mean(gpt4o) == pytest.approx(0.72, abs=0.005)
    assert ds.WEAK in first.scores  # Mixtral mapped onto the reference name
    raw = ds.golden_labels_mmlu_pro(canonical_names=False)
    assert "Mixtral-8x7B-Instruct-v0.1" in raw[0].scores and ds.WEAK not in raw[0].scores


# ---- ZeroEval and Chatbot Arena ----------------------------------------------------------------------------
def _zeroeval_models(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    """``zeroeval/models.csv``: (task, model) -> its row (accuracy, rows, ...)."""
    with (folder / "models.csv").open(encoding="utf-8", newline="") as fh:
        return {(row["task"], row["model"]): row for row in csv.DictReader(fh)}


@pytest.mark.parametrize(
    ("name", "task", "n_prompts", "n_models"), [("crux", "crux", 800, 48), ("math_l5", "math-l5", 721, 40)]
)
def test_golden_labels_zeroeval_match_models_csv(name: str, task: str, n_prompts: int, n_models: int) -> None:
    models = _zeroeval_models(_folder("zeroeval"))
    labels = ds.golden_labels_zeroeval(name, canonical_names=False)
    assert len(labels) == n_prompts == len({lab.prompt for lab in labels})
    assert {lab.source for lab in labels} == {name}
    seen = {m for lab in labels for m in lab.scores}
    assert len(seen) == n_models and seen == {m for (t, m) in models if t == task}
    for model in seen:  # every model's accuracy and answered-row count as ZeroEval's own table gives them
        row = models[(task, model)]
        scores = [lab.scores[model] for lab in labels if model in lab.scores]
        assert len(scores) == int(row["rows"]), model  # an empty cell is no answer: left out, not scored 0
        assert np.mean(scores) == pytest.approx(float(row["accuracy"]), abs=5e-5), model
        assert set(scores) <= {0.0, 1.0}


def test_golden_labels_zeroeval_names() -> None:
    crux = ds.golden_labels_crux()
    assert ds.WEAK in crux[0].scores and "Mixtral-8x7B-Instruct-v0.1" not in crux[0].scores  # the reference name
    assert [lab.prompt for lab in ds.golden_labels_math_l5()] == [
        lab.prompt for lab in ds.golden_labels_zeroeval("math-l5")
    ]
    with pytest.raises(TrainingDataError, match="unknown ZeroEval benchmark"):
        ds.golden_labels_zeroeval("gsm")


@pytest.mark.parametrize("name", ["crux", "math_l5"])
def test_zeroeval_benchmarks_left_out_like_the_others(name: str) -> None:
    models = _zeroeval_models(_folder("zeroeval"))
    task = name.replace("_", "-")
    bench = ds.load_benchmark(name.replace("_", "-"))
    strong, weak = ds.ZEROEVAL_PAIRS[name]
    assert (bench.name, bench.strong_model, bench.weak_model) == (name, strong, weak)
    raw_weak = "Mixtral-8x7B-Instruct-v0.1" if weak == ds.WEAK else weak
    # both reference models answered every prompt, so the benchmark is the whole file
    assert len(bench) == int(models[(task, strong)]["rows"]) == int(models[(task, raw_weak)]["rows"])
    assert bench.q_strong == pytest.approx(float(models[(task, strong)]["accuracy"]), abs=5e-5)
    assert bench.q_weak == pytest.approx(float(models[(task, raw_weak)]["accuracy"]), abs=5e-5)
    assert bench.q_strong > bench.q_weak
    assert ds.load_benchmark(name) is bench
    assert ds.contaminated_prompts(name) == frozenset()  # ZeroEval publishes no contamination list
    assert name in ds.BENCHMARKS and name in ds.TRAINING_SOURCES


def test_arena_battles_follow_the_file() -> None:
    path = _folder("arena-battles") / "battles.jsonl"
    with path.open(encoding="utf-8") as fh:  # not splitlines(): prompts hold U+2028 and friends
        raw = [json.loads(line) for line in fh if line.strip()]
    battles = ds.arena_battles()
    assert len(battles) == len(raw) == 769
    assert {b.source for b in battles} == {"arena"}
    for b, r in zip(battles, raw):
        assert (b.prompt, b.model_a, b.model_b) == (r["prompt"], r["model_a"], r["model_b"])
        assert b.winner == ("tie" if r["winner"].startswith("tie") else r["winner"])
    assert Counter(r["winner"] for r in raw)["tie (bothbad)"] > 0  # the Arena's own tie spelling is read
    models = {b.model_a for b in battles} | {b.model_b for b in battles}
    assert len(models) == 29
    # the evaluation tiers name models of this file (a typo would silently empty a tier)
    assert ds.ARENA_STRONG_MODELS.issubset(models) and ds.ARENA_WEAK_MODELS.issubset(models)
    assert not ds.ARENA_STRONG_MODELS & ds.ARENA_WEAK_MODELS


# ---- contamination and leave-one-benchmark-out -------------------------------------------------------------
def test_drop_contaminated_filters_training_data() -> None:
    eval_prompt = sorted(ds.contaminated_prompts("gsm8k"))[0]
    labels = [
        GoldenLabel(prompt=f"  {eval_prompt}\n", scores={"a": 1.0, "b": 0.0}),
        GoldenLabel(prompt="something unrelated", scores={"a": 1.0, "b": 0.0}),
    ]
    kept = ds.drop_contaminated(labels, ["gsm8k"])
    assert [lab.prompt for lab in kept] == ["something unrelated"]
    battles = golden_to_battles(labels)
    assert len(ds.drop_contaminated(battles, ["gsm8k", "mmlu"])) == 1
    assert len(ds.drop_contaminated(battles, [])) == 2


def test_drop_eval_overlap_catches_wrapped_and_reoptioned_copies() -> None:
    gsm = ds.load_gsm8k().prompts[3]
    mmlu = ds.load_mmlu().prompts[100]
    question = mmlu.split("\nA.")[0]
    scores = {"a": 1.0, "b": 0.0}
    labels = [
        GoldenLabel(prompt=f"Solve carefully.\n{gsm.upper()}  Put the answer in \\boxed{{}}.", scores=scores),
        GoldenLabel(prompt=ds.format_multiple_choice(question, ["x", "y", "z", "w", "v"]), scores=scores),
        GoldenLabel(prompt="What is the capital of France?", scores=scores),
    ]
    kept = ds.drop_eval_overlap(labels, ["gsm8k", "mmlu"])
    assert [lab.prompt for lab in kept] == ["What is the capital of France?"]
    assert len(ds.drop_eval_overlap(labels, ["mt_bench"])) == 3


def test_containing_matches_a_text_inside_a_prompt_and_not_the_reverse() -> None:
    from routellm_core.data.overlap import containing

    question = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."
    wrapped = f"Solve carefully.\n{question.upper()}  Put the answer in \\boxed{{}}."
    assert containing([wrapped, "What is the capital of France?"], [question]).tolist() == [True, False]
    assert containing([question], [wrapped]).tolist() == [False]  # the shorter text does not contain the longer
    assert containing([question], [question.lower() + "!"]).tolist() == [True]  # punctuation and case ignored
    assert containing([], [question]).tolist() == [] and containing([question], []).tolist() == [False]


def test_training_battles_counts_and_sampling() -> None:
    mmlu = ds.training_battles(["mmlu"])
    assert len(mmlu) == 14_037 and all(b.source == "mmlu" for b in mmlu)
    dc = ds.training_battles(["dcrouter"], max_pairs_per_prompt=5, seed=1)
    assert len(dc) == 5_608 * 5
    assert all(isinstance(b, Battle) and b.model_a < b.model_b for b in dc[:100])
    assert len({(b.model_a, b.model_b) for b in dc}) == 36  # every pair still meets across prompts
    assert [b.model_dump() for b in dc[:50]] == [
        b.model_dump() for b in ds.training_battles(["dcrouter"], max_pairs_per_prompt=5, seed=1)[:50]
    ]
    other = ds.training_battles(["dcrouter"], max_pairs_per_prompt=5, seed=2)
    assert [(b.model_a, b.model_b) for b in dc[:50]] != [(b.model_a, b.model_b) for b in other[:50]]
    # the winner follows the golden scores
    label = ds.golden_labels_dcrouter()[0]
    for b in dc[:5]:
        sa, sb = label.scores[b.model_a], label.scores[b.model_b]
        assert b.winner == ("model_a" if sa > sb else "model_b" if sb > sa else "tie")
    with pytest.raises(TrainingDataError, match="unknown"):
        ds.training_battles(["hellaswag"])
    with pytest.raises(TrainingDataError, match="max_pairs_per_prompt"):
        ds.training_battles(["mmlu"], max_pairs_per_prompt=0)


@pytest.mark.slow
def test_training_battles_leave_mmlu_out_is_honest() -> None:
    battles = ds.training_battles(["mmlu", "mmlu_pro"], exclude=["mmlu"])
    assert {b.source for b in battles} == {"mmlu_pro"}
    # MMLU-Pro holds 6,810 re-optioned MMLU questions; all of them must go.
    assert len({b.prompt for b in battles}) == 12_032 - 6_810
    mmlu_questions = {_norm_words(p.split("\nA.")[0]) for p in ds.load_mmlu(drop_contaminated=False).prompts}
    assert not any(_norm_words(p.split("\nA.")[0]) in mmlu_questions for p in {b.prompt for b in battles})


def test_training_battles_leave_gsm8k_out_drops_wrapped_copies() -> None:
    full = {lab.prompt for lab in ds.golden_labels_dcrouter()}
    kept = {b.prompt for b in ds.training_battles(["dcrouter"], exclude=["gsm8k"])}
    dropped = full - kept
    assert len(dropped) == 200  # GSM8K test questions wrapped in an instruction inside DC-Router
    gsm = {_norm_words(p) for p in ds.load_gsm8k(drop_contaminated=False).prompts}
    assert all(any(g in _norm_words(p) for g in gsm) for p in list(dropped)[:20])


def test_training_battles_new_sources() -> None:
    arena = ds.training_battles(["arena"])
    assert arena == ds.arena_battles()  # human votes are used as they are
    for name, n_prompts in (("crux", 800), ("math_l5", 721)):
        battles = ds.training_battles([name], max_pairs_per_prompt=8)
        assert len(battles) == n_prompts * 8 and {b.source for b in battles} == {name}
    mixed = ds.training_battles(["arena", "crux", "math_l5"], exclude=["crux"])
    assert {b.source for b in mixed} == {"arena", "math_l5"}  # the left-out benchmark's own source is skipped


def test_training_battles_leave_math_l5_out_drops_copies() -> None:
    math_texts = [_norm_words(lab.prompt) for lab in ds.golden_labels_math_l5()]
    math_set = set(math_texts)
    full = {lab.prompt for lab in ds.golden_labels_mmlu()} | {lab.prompt for lab in ds.golden_labels_dcrouter()}
    kept = {b.prompt for b in ds.training_battles(["mmlu", "dcrouter", "arena"], exclude=["math_l5"])}
    dropped = full - kept
    assert dropped  # MMLU's maths questions and one DC-Router prompt are MATH level-5 problems
    for p in dropped:
        assert any(t in _norm_words(p) for t in math_texts if len(t.split()) >= 10) or (
            _norm_words(p.split("\nA.")[0]) in math_set
        )
    assert not any(_norm_words(p.split("\nA.")[0]) in math_set for p in kept)
