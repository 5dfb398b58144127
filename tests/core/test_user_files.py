"""The data folder's lookup and users' own battle / golden-label files: no shared data needed, so these always run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from routellm_core import data as ds
from routellm_core.data.records import golden_to_battles
from routellm_core.errors import TrainingDataError


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


# ---- prompt formatting -----------------------------------------------------------------------------------
def test_format_multiple_choice() -> None:
    text = ds.format_multiple_choice(" What is 2+2? ", ["3", "4"])
    assert text == "What is 2+2?\nA. 3\nB. 4\nAnswer:"


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
