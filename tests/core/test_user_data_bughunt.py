"""Users' own files and embedders as users bring them: Excel CSVs, odd bytes, shared and broken embedding caches.

Each test pins a bug found by feeding real files to the loaders, the shipped embedders and the SQLite cache.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from routellm_core import load_router
from routellm_core.data import DataNotFoundError, load_battles, load_benchmark_file, load_golden_labels
from routellm_core.data.benchmarks import Benchmark
from routellm_core.embedding.cache import CachedEmbedder
from routellm_core.embedding.embedders import MINILM_NAME, TransformerEmbedder, minilm_path
from routellm_core.embedding.static import STATIC_DIR, STATIC_NAME, StaticEmbedder
from routellm_core.errors import InvalidInputError, TrainingDataError
from routellm_core.evaluation import metrics

BATTLES_HEADER = "prompt,model_a,model_b,winner"


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


# ---- files as spreadsheets and editors write them ---------------------------------------------------------
def test_excel_csv_utf8_with_bom_and_crlf_loads(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a byte-order mark and ends lines with CRLF; the BOM hid the prompt column."""
    text = 'prompt,big,small\r\n"Prove it,\r\nthen explain",1,0\r\ncafé crème,0.5,1\r\n'
    path = _write(tmp_path / "eval.csv", "\ufeff" + text)
    labels = load_golden_labels(path)
    assert [lab.prompt for lab in labels] == ["Prove it,\r\nthen explain", "café crème"]
    assert [lab.scores for lab in labels] == [{"big": 1.0, "small": 0.0}, {"big": 0.5, "small": 1.0}]
    bench = load_benchmark_file(path, "big", "small")  # what `routellm evaluate --golden eval.csv` reads
    assert bench.strong.tolist() == [1.0, 0.5] and bench.weak.tolist() == [0.0, 1.0]
    battles = load_battles(_write(tmp_path / "b.csv", f"\ufeff{BATTLES_HEADER}\r\nhi,a,b,TIE\r\nyo,a,b,b"))
    assert [(b.prompt, b.winner) for b in battles] == [("hi", "tie"), ("yo", "model_b")]


def test_jsonl_with_bom_loads(tmp_path: Path) -> None:
    row = '{"prompt": "hi", "model_a": "a", "model_b": "b", "winner": "tie (bothbad)"}'
    battles = load_battles(_write(tmp_path / "b.jsonl", "\ufeff" + row + "\r\n\r\n"))
    assert [(b.prompt, b.winner) for b in battles] == [("hi", "tie")]
    labels = load_golden_labels(_write(tmp_path / "g.jsonl", '\ufeff{"prompt": "hi", "scores": {"x": 1}}'))
    assert labels[0].scores == {"x": 1.0}


def test_spreadsheet_trailing_empty_columns_load(tmp_path: Path) -> None:
    """Trailing commas make blank header names; two of them were refused as "duplicate column names"."""
    path = _write(tmp_path / "g.csv", "prompt,big,small,,\nhi,1,0,,\n")
    assert load_golden_labels(path)[0].scores == {"big": 1.0, "small": 0.0}


def test_value_under_a_blank_header_is_refused(tmp_path: Path) -> None:
    """It used to become the scores of a model named ''."""
    path = _write(tmp_path / "g.csv", "prompt,big,small,\nhi,1,0,5\n")
    with pytest.raises(TrainingDataError, match=r"g\.csv, line 2: value '5' in column 4, which has no name"):
        load_golden_labels(path)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ('{"prompt": "p", "model_a": "a", "model_b": "b", "winner": 1}', "winner must be a string, got int 1"),
        ('{"prompt": "p", "model_a": 7, "model_b": "b", "winner": "tie"}', "model_a must be a string, got int 7"),
        ('{"prompt": ["hi"], "model_a": "a", "model_b": "b", "winner": "tie"}', "prompt must be a string, got list"),
    ],
)
def test_wrong_types_are_named_not_called_missing(tmp_path: Path, row: str, match: str) -> None:
    with pytest.raises(TrainingDataError, match=match):
        load_battles(_write(tmp_path / "b.jsonl", row + "\n"))


def test_not_utf8_says_how_to_fix_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "g.csv", "prompt,big,small\ncafé,1,0\n", encoding="cp1252")
    with pytest.raises(TrainingDataError, match=r"not UTF-8 text .*b'\\xe9'.*save it as UTF-8"):
        load_golden_labels(path)


def test_gzip_files_are_named_as_such(tmp_path: Path) -> None:
    row = b'{"prompt": "p", "model_a": "a", "model_b": "b", "winner": "tie"}\n'
    (tmp_path / "b.jsonl").write_bytes(gzip.compress(row))
    with pytest.raises(TrainingDataError, match="gzip-compressed; decompress it first"):
        load_battles(tmp_path / "b.jsonl")
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(row))
    with pytest.raises(TrainingDataError, match="compressed files are not read"):
        load_battles(tmp_path / "b.jsonl.gz")


def test_semicolon_csv_and_over_long_field_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="must be comma-separated"):
        load_battles(_write(tmp_path / "b.csv", "prompt;model_a;model_b;winner\nhi;a;b;a\n"))
    long = _write(tmp_path / "long.csv", f'{BATTLES_HEADER}\n"{"y" * 200_000}",a,b,a\n')
    with pytest.raises(TrainingDataError, match=r"line 2: malformed CSV .*use JSONL"):
        load_battles(long)


def test_folder_and_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataNotFoundError, match=r"is a folder; give the path of a \.jsonl or \.csv file"):
        load_battles(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    _write(tmp_path / "b.csv", f"{BATTLES_HEADER}\nhi,a,b,a\n")
    assert load_battles("~/b.csv")[0].winner == "model_a"


# ---- embedders: the packaged models named by path, and ~ -------------------------------------------------
def test_shipped_static_folder_by_path_is_the_shipped_space() -> None:
    """Given as a path, the shipped vectors were named "model2vec:minilm_static" and `fast` refused them."""
    by_path = StaticEmbedder(STATIC_DIR)
    assert by_path.name == STATIC_NAME
    router = load_router("fast", embedder=by_path)
    assert 0.0 <= float(router.predict_win_rate(["Prove that there are infinitely many primes."])[0]) <= 1.0


def test_packaged_minilm_by_path_is_the_minilm_space() -> None:
    """Same folder, same vectors: the name was "hf:model", which checkpoints trained on MiniLM refused."""
    assert TransformerEmbedder(minilm_path()).name == MINILM_NAME
    assert TransformerEmbedder(str(minilm_path()) + "/").name == MINILM_NAME


def test_home_relative_model_and_cache_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    shutil.copytree(STATIC_DIR, home / "vectors")
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    cached = CachedEmbedder(StaticEmbedder("~/vectors", name=STATIC_NAME), cache_dir="~/cache")
    np.testing.assert_allclose(cached.embed(["hello there"]), StaticEmbedder().embed(["hello there"]), atol=1e-6)
    assert (home / "cache" / "embeddings.sqlite").is_file()
    assert not (work / "~").exists()  # not a folder literally named "~" in the working directory


# ---- the embedding cache ----------------------------------------------------------------------------------
def _other_vectors(folder: Path) -> StaticEmbedder:
    """A copy of the shipped static vectors with every token vector's components reversed: another model."""
    shutil.copytree(STATIC_DIR, folder)
    table = load_file(str(folder / "model.safetensors"))["embeddings"]
    save_file({"embeddings": np.ascontiguousarray(table[:, ::-1])}, str(folder / "model.safetensors"))
    return StaticEmbedder(folder)


def test_two_local_models_with_one_folder_name_do_not_share_vectors(tmp_path: Path) -> None:
    shipped = StaticEmbedder(shutil.copytree(STATIC_DIR, tmp_path / "a" / "model"))
    other = _other_vectors(tmp_path / "b" / "model")
    assert shipped.name == other.name == "model2vec:model"
    text = ["Summarise the French revolution in three sentences."]
    CachedEmbedder(shipped, cache_dir=tmp_path / "cache").embed(text)
    got = CachedEmbedder(other, cache_dir=tmp_path / "cache").embed(text)
    np.testing.assert_allclose(got, other.embed(text), atol=1e-6)
    assert float((got * shipped.embed(text)).sum()) < 0.99  # really another model's vector


def test_max_tokens_is_part_of_the_cache_key(tmp_path: Path) -> None:
    text = ["word " * 50 + "entirely different ending about quantum chromodynamics"]
    CachedEmbedder(StaticEmbedder(), cache_dir=tmp_path).embed(text)
    short = StaticEmbedder(max_tokens=8)
    np.testing.assert_allclose(CachedEmbedder(short, cache_dir=tmp_path).embed(text), short.embed(text), atol=1e-6)


@pytest.mark.parametrize(
    "blob",
    [b"\x00\x01\x02", np.full(256, np.nan, np.float32).tobytes(), np.full(10, 10**-0.5, np.float32).tobytes()],
    ids=["truncated", "nan", "other-width"],
)
def test_malformed_cached_rows_are_recomputed_and_rewritten(tmp_path: Path, blob: bytes) -> None:
    inner = StaticEmbedder()
    texts = ["alpha centauri", "beta decay"]
    cached = CachedEmbedder(inner, cache_dir=tmp_path)
    cached.embed(texts)
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as db:
        db.execute("UPDATE emb SET vec = ? WHERE key = ?", (blob, cached._key(texts[0])))
    np.testing.assert_allclose(CachedEmbedder(inner, cache_dir=tmp_path).embed(texts), inner.embed(texts), atol=1e-6)
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as db:
        (stored,) = db.execute("SELECT vec FROM emb WHERE key = ?", (cached._key(texts[0]),)).fetchone()
    np.testing.assert_allclose(np.frombuffer(stored, np.float32), inner.embed(texts[:1])[0], atol=1e-6)


@pytest.mark.parametrize("kind", ["corrupt-file", "folder-is-a-file", "database-is-a-folder"])
def test_unusable_cache_folder_warns_and_embeds_in_memory(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "cache"
    if kind == "corrupt-file":
        folder.mkdir()
        (folder / "embeddings.sqlite").write_bytes(b"not a database " * 100)
    elif kind == "folder-is-a-file":
        folder.write_text("x")
    else:
        (folder / "embeddings.sqlite").mkdir(parents=True)
    inner = StaticEmbedder()
    with pytest.warns(RuntimeWarning, match="embedding cache .* is unusable .* in memory only"):
        cached = CachedEmbedder(inner, cache_dir=folder)
    np.testing.assert_allclose(cached.embed(["hello", "hello"]), inner.embed(["hello", "hello"]), atol=1e-6)


def test_cache_that_refuses_writes_warns_once_and_keeps_embedding(tmp_path: Path) -> None:
    """A database every insert fails on (as a read-only shared copy does) used to fail the embedding itself."""
    inner = StaticEmbedder()
    CachedEmbedder(inner, cache_dir=tmp_path).embed(["already cached"])
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as db:
        db.execute("CREATE TRIGGER no_writes BEFORE INSERT ON emb BEGIN SELECT RAISE(ABORT, 'no writes'); END")
    cached = CachedEmbedder(inner, cache_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="no writes"):
        got = cached.embed(["already cached", "a new prompt"])
    np.testing.assert_allclose(got, inner.embed(["already cached", "a new prompt"]), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        np.testing.assert_allclose(cached.embed(["yet another"]), inner.embed(["yet another"]), atol=1e-6)


# ---- metrics ----------------------------------------------------------------------------------------------
def _bench(strong: list[float], weak: list[float]) -> Benchmark:
    prompts = tuple(f"p{i}" for i in range(len(strong)))
    return Benchmark("mine", prompts, np.array(strong), np.array(weak), "big", "small")


def test_scores_of_the_wrong_shape_or_type_are_refused() -> None:
    bench = _bench([1, 1, 0, 1], [0, 1, 0, 0])
    with pytest.raises(InvalidInputError, match=r"one number for each of 4 prompts .* shape \(2, 2\)"):
        metrics.evaluate(np.ones((2, 2)), bench)  # was flattened into four scores
    with pytest.raises(InvalidInputError, match="scores must be numbers"):
        metrics.evaluate(["high", "low", "low", "high"], bench)
    column = metrics.evaluate(np.array([[0.9], [0.1], [0.2], [0.8]]), bench)
    assert column.apgr == metrics.evaluate([0.9, 0.1, 0.2, 0.8], bench).apgr
    with pytest.raises(InvalidInputError, match="finite"):
        metrics.evaluate_curve(np.array([0.0, 1.0]), np.array([np.nan, 1.0]), bench)


def test_tied_router_and_one_prompt_benchmark() -> None:
    bench = _bench([1, 1, 0, 1], [0, 1, 0, 0])  # q_strong 0.75, q_weak 0.25: PGR = strong-call fraction
    tied = metrics.evaluate([0.3] * 4, bench)
    assert (tied.apgr, tied.cpt50, tied.cpt80) == (0.5, 0.5, 1.0)
    one = _bench([1], [0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" from averaging NaN AUCs
        random = metrics.random_router_result(one)
    assert random.apgr == 0.5 and np.isnan(random.auc)


def test_route_reads_a_text_prompts_file_as_notepad_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A byte-order mark and CRLF line ends are no part of a prompt, and a form feed inside a line does not split it
    (``str.splitlines`` did both wrong: three prompts, the first starting with U+FEFF)."""
    from routellm_core.cli import main

    path = tmp_path / "prompts.txt"
    path.write_bytes("\ufeffWhat is 2+2?\r\nProve it\x0cthen more\r\n\r\n".encode())
    assert main(["route", "--file", str(path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["prompt"] for row in rows] == ["What is 2+2?", "Prove it\x0cthen more"]


#: The shipped fast router (mf on the static vectors).
FAST_DIR = Path(__file__).resolve().parents[2] / "core" / "routellm_core" / "pretrained" / "fast"


@pytest.mark.parametrize("given", ["path", "none"])
def test_a_checkpoint_recorded_under_the_static_folders_name_still_loads(tmp_path: Path, given: str) -> None:
    """Before the shipped models given by path kept their names, a router trained with ``StaticEmbedder(STATIC_DIR)``
    recorded ``model2vec:minilm_static``: such checkpoints load with that embedder, or rebuild it by that name."""
    from routellm_core.embedding.embedders import FORMER_NAMES

    assert FORMER_NAMES["model2vec:minilm_static"] == STATIC_NAME
    folder = shutil.copytree(FAST_DIR, tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    config["embedder"] = "model2vec:minilm_static"
    (folder / "config.json").write_text(json.dumps(config))
    if given == "path":
        router = load_router(folder, embedder=StaticEmbedder(STATIC_DIR))
    else:  # rebuilt by the old name, saying so (any model2vec model in a folder of that name had it)
        with pytest.warns(UserWarning, match="rebuilt as the shipped ones"):
            router = load_router(folder)
    shipped = load_router("fast")
    prompts = ["Prove that there are infinitely many primes.", "hi"]
    assert np.allclose(router.predict_win_rate(prompts), shipped.predict_win_rate(prompts))


def test_a_checkpoint_of_another_embedder_is_still_refused(tmp_path: Path) -> None:
    from routellm_core.errors import CheckpointError

    folder = shutil.copytree(FAST_DIR, tmp_path / "other")
    config = json.loads((folder / "config.json").read_text())
    config["embedder"] = "model2vec:my-own-vectors"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="embedder mismatch"):
        load_router(folder, embedder=StaticEmbedder(STATIC_DIR))
