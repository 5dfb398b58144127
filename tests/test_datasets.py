"""Tests for the benchmark loaders, shared training sources and users' own data files."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from routellm_core import datasets as ds
from routellm_core.errors import TrainingDataError
from routellm_core.records import Battle, GoldenLabel, golden_to_battles

try:
    ds.data_dir()
except ds.DataNotFoundError as exc:  # pragma: no cover - depends on the checkout
    pytest.skip(f"shared benchmark data not available: {exc}", allow_module_level=True)


def _norm_words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


# ---- the data folder -------------------------------------------------------------------------------------
def test_data_dir_env_var_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ds.DataNotFoundError, match=ds.DATA_DIR_ENV) as info:
        ds.data_dir()
    assert isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, TrainingDataError)


def test_data_dir_env_var_points_to_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ds.DATA_DIR_ENV, str(tmp_path))
    assert ds.data_dir() == tmp_path.resolve()
    with pytest.raises(ds.DataNotFoundError, match="mmlu"):
        ds.load_mmlu()


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


def test_format_multiple_choice() -> None:
    text = ds.format_multiple_choice(" What is 2+2? ", ["3", "4"])
    assert text == "What is 2+2?\nA. 3\nB. 4\nAnswer:"


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
        ds.training_battles(["arena"])
    with pytest.raises(TrainingDataError, match="max_pairs_per_prompt"):
        ds.training_battles(["mmlu"], max_pairs_per_prompt=0)


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


# ---- users' own files ------------------------------------------------------------------------------------
def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_load_battles_jsonl_round_trip(tmp_path: Path) -> None:
    rows = [
        {"prompt": "hi", "model_a": "gpt", "model_b": "mix", "winner": "model_a"},
        {"prompt": "yo", "model_a": "gpt", "model_b": "mix", "winner": "mix", "source": "arena"},
        {"prompt": "hm", "model_a": "gpt", "model_b": "mix", "winner": "tie (bothbad)"},
        {"prompt": "ok", "model_a": "gpt", "model_b": "mix", "winner": "tie"},
    ]
    battles = ds.load_battles(_write_jsonl(tmp_path / "b.jsonl", rows), source="mine")
    assert [b.winner for b in battles] == ["model_a", "model_b", "tie", "tie"]
    assert [b.source for b in battles] == ["mine", "arena", "mine", "mine"]
    again = ds.load_battles(_write_jsonl(tmp_path / "c.jsonl", [b.model_dump() for b in battles]))
    assert again == battles


def test_load_battles_csv(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text('prompt,model_a,model_b,winner\n"multi\nline prompt",a,b,b\nsecond,a,b,model_b\n', encoding="utf-8")
    battles = ds.load_battles(path)
    assert [(b.prompt, b.winner) for b in battles] == [("multi\nline prompt", "model_b"), ("second", "model_b")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "p", "model_a": "a", "model_b": "b", "winner": "c"}, "unknown winner 'c'"),
        ({"prompt": "p", "model_a": "a", "model_b": "a", "winner": "tie"}, "two models"),
        ({"prompt": " ", "model_a": "a", "model_b": "b", "winner": "tie"}, "prompt"),
        ({"prompt": "p", "model_b": "b", "winner": "tie"}, "missing model_a"),
        ({"prompt": "p", "model_a": "a", "model_b": "b"}, "missing winner"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_load_battles_bad_rows_name_file_and_line(tmp_path: Path, row: object, message: str) -> None:
    good = {"prompt": "p", "model_a": "a", "model_b": "b", "winner": "model_a"}
    path = _write_jsonl(tmp_path / "bad.jsonl", [good, good, row])
    with pytest.raises(TrainingDataError, match=re.escape(message)) as info:
        ds.load_battles(path)
    assert "bad.jsonl, line 3" in str(info.value)


def test_load_battles_file_level_errors(tmp_path: Path) -> None:
    bad_json = tmp_path / "x.jsonl"
    bad_json.write_text('{"prompt": "p"\n', encoding="utf-8")
    with pytest.raises(TrainingDataError, match="line 1: invalid JSON"):
        ds.load_battles(bad_json)
    missing_col = tmp_path / "x.csv"
    missing_col.write_text("prompt,model_a,winner\np,a,model_a\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"missing column\(s\) \['model_b'\]"):
        ds.load_battles(missing_col)
    csv_bad_winner = tmp_path / "y.csv"
    csv_bad_winner.write_text('prompt,model_a,model_b,winner\n"two\nlines",a,b,a\np,a,b,c\n', encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"y\.csv, line 4: unknown winner"):
        ds.load_battles(csv_bad_winner)
    empty = tmp_path / "e.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="no battles"):
        ds.load_battles(empty)
    text_file = tmp_path / "x.txt"
    text_file.write_text("x", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="unsupported"):
        ds.load_battles(text_file)
    with pytest.raises(FileNotFoundError):
        ds.load_battles(tmp_path / "absent.jsonl")


def test_load_golden_labels_jsonl_and_csv(tmp_path: Path) -> None:
    rows = [{"prompt": "q1", "scores": {"a": 1, "b": 0.5}}, {"prompt": "q2", "scores": {"a": None, "b": True}}]
    labels = ds.load_golden_labels(_write_jsonl(tmp_path / "g.jsonl", rows))
    assert [lab.scores for lab in labels] == [{"a": 1.0, "b": 0.5}, {"b": 1.0}]
    path = tmp_path / "g.csv"
    path.write_text("prompt,a,b,source\nq1,1,0.5,x\nq2,,True,\n", encoding="utf-8")
    labels_csv = ds.load_golden_labels(path, source="mine")
    assert [lab.scores for lab in labels_csv] == [{"a": 1.0, "b": 0.5}, {"b": 1.0}]
    assert [lab.source for lab in labels_csv] == ["x", "mine"]
    round_trip = _write_jsonl(tmp_path / "rt.jsonl", [lab.model_dump() for lab in labels_csv])
    assert ds.load_golden_labels(round_trip) == labels_csv
    assert len(golden_to_battles(labels)) == 1  # q2 scores one model only: no pair


def test_load_golden_labels_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text("prompt,a,b\nq1,1,0\nq2,high,0\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match=r"g.csv, line 3, column 'a': non-numeric score 'high'"):
        ds.load_golden_labels(path)
    path.write_text("prompt,a,b\nq1,,\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="line 2: no model scores"):
        ds.load_golden_labels(path)
    path.write_text("prompt,a,b\nq1,1\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="line 2: 2 fields"):
        ds.load_golden_labels(path)
    path.write_text("prompt,a,b\nq1,nan,1\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="not finite"):
        ds.load_golden_labels(path)
    jl = _write_jsonl(tmp_path / "g.jsonl", [{"prompt": "q", "scores": {"a": "1"}}])
    with pytest.raises(TrainingDataError, match=r"g\.jsonl, line 1, model 'a': non-numeric score"):
        ds.load_golden_labels(jl)
    jl = _write_jsonl(tmp_path / "h.jsonl", [{"prompt": "q", "scores": [1, 0]}])
    with pytest.raises(TrainingDataError, match="'scores' must be an object"):
        ds.load_golden_labels(jl)


def test_load_benchmark_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("prompt,big,small\nq1,1,0\nq2,1,1\nq3,0,1\nq4,1,0\n", encoding="utf-8")
    bench = ds.load_benchmark_file(path, strong_model="big", weak_model="small")
    assert bench.name == "mine" and len(bench) == 4
    assert (bench.q_strong, bench.q_weak) == (0.75, 0.5)
    path.write_text("prompt,big,small\nq1,1,0\nq2,1,\n", encoding="utf-8")
    with pytest.raises(TrainingDataError, match="line 3: no score for 'small'"):
        ds.load_benchmark_file(path, strong_model="big", weak_model="small")
