"""Untrusted files: checkpoints and data files are parsed without pickle or eval, and crafted ones are refused.

Every crafted file must fail with a :class:`~routellm_core.errors.RouteLLMError` (``CheckpointError`` for
checkpoints, ``TrainingDataError`` for data files, ``UnknownRouterError`` for an unknown router name) whose
message names the problem, and nothing in a file is ever executed.

Symlinks (decision, documented in the README): links inside a checkpoint folder are followed, and what they point
to goes through exactly the same checks (regular file, size limit read bounded, JSON + pydantic, safetensors
names / shapes / values), so a link can neither run code nor bypass a limit; device files are refused.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from safetensors.numpy import load_file, save_file

import routellm_core.checkpoint as ckpt
from langchain_routellm import LangChainEmbedder
from routellm_core import (
    STRONG_REFERENCE,
    WEAK_REFERENCE,
    Battle,
    CheckpointError,
    EmbeddingError,
    RouteLLMError,
    TrainingDataError,
    UnknownRouterError,
    load_router,
)
from routellm_core.checkpoint import load_tensors, read_config
from routellm_core.data import load_battles, load_benchmark_file, load_golden_labels

S, W = STRONG_REFERENCE, WEAK_REFERENCE
DIM = 16  # width of the fake embedder
EMBEDDER = LangChainEmbedder(DeterministicFakeEmbedding(size=DIM), name="fake-16")


# ---- fixtures: small real checkpoints (fast fake embedder) ---------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    battles = [
        Battle(prompt=f"prompt {i}", model_a=S, model_b=W if i % 3 else "third-model", winner="model_a")
        if i % 4 == 0
        else Battle(prompt=f"prompt {i}", model_a=S, model_b=W, winner="model_b" if i % 2 else "tie")
        for i in range(24)
    ]
    root = tmp_path_factory.mktemp("checkpoints")
    mf = load_router("mf", embedder=EMBEDDER, dim=4, epochs=3, validation_fraction=0.0).fit(battles)
    sw = load_router("sw_ranking", embedder=EMBEDDER).fit(battles)
    return {"mf": mf.save(root / "mf"), "sw_ranking": sw.save(root / "sw_ranking")}


def clone(saved: dict[str, Path], name: str, tmp_path: Path) -> Path:
    target = tmp_path / f"{name}-copy"
    shutil.copytree(saved[name], target)
    return target


def use(path: Path, **kwargs: Any) -> np.ndarray:
    """Load a checkpoint and score one text (some problems only show on first use)."""
    kwargs.setdefault("embedder", EMBEDDER)
    return load_router(path, **kwargs).predict_win_rate(["What is the capital of France?"])


def refused(path: Path, error: type[RouteLLMError] = CheckpointError, match: str | None = None) -> RouteLLMError:
    with pytest.raises(error, match=match) as info:
        use(path)
    assert str(info.value).strip()
    return info.value


def edit_config(path: Path, **changes: Any) -> None:
    config = json.loads((path / "config.json").read_text())
    for key, value in changes.items():
        if key in ("params", "metadata") and isinstance(value, dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    (path / "config.json").write_text(json.dumps(config))


def edit_tensors(path: Path, **changes: np.ndarray) -> None:
    tensors = load_file(str(path / "model.safetensors"))
    tensors.update(changes)
    save_file(tensors, str(path / "model.safetensors"))


def test_pristine_checkpoints_load(saved: dict[str, Path]) -> None:
    for path in saved.values():
        rates = use(path)
        assert rates.shape == (1,) and 0.0 <= rates[0] <= 1.0


# ---- crafted tensors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "tensor", "shape"),
    [
        ("mf", "model_vectors", (5, 4)),
        ("mf", "model_vectors", (3, 7)),
        ("mf", "projection", (9, DIM)),
        ("mf", "head", (3,)),
        ("mf", "head", (4, 1)),
        ("mf", "bias", (1,)),
        ("sw_ranking", "embeddings", (3, DIM)),
        ("sw_ranking", "wins", (2, 2)),
        ("sw_ranking", "losses", (24, 7)),
        ("sw_ranking", "pair_models", (2, 3)),
    ],
)
def test_wrong_shapes_are_refused(saved: dict[str, Path], tmp_path: Path, name: str, tensor: str, shape: tuple) -> None:
    path = clone(saved, name, tmp_path)
    dtype = np.int64 if tensor == "pair_models" else np.float32
    edit_tensors(path, **{tensor: np.zeros(shape, dtype=dtype)})
    refused(path, match="shape|disagree|pair table")


@pytest.mark.parametrize(("name", "tensor"), [("mf", "projection"), ("sw_ranking", "embeddings")])
def test_embedding_width_mismatch_is_refused_on_first_use(saved: dict[str, Path], tmp_path: Path, name, tensor) -> None:
    """The embedder's width is only known once it runs: a checkpoint of another width fails on first use."""
    path = clone(saved, name, tmp_path)
    rows = load_file(str(path / "model.safetensors"))[tensor].shape[0]
    edit_tensors(path, **{tensor: np.ones((rows, DIM + 3), dtype=np.float16 if name == "sw_ranking" else np.float32)})
    error = refused(path, EmbeddingError, match=f"{DIM + 3}-d embeddings")
    assert str(DIM) in str(error)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    ("name", "tensor"),
    [
        ("mf", "model_vectors"),
        ("mf", "projection"),
        ("mf", "head"),
        ("mf", "bias"),
        ("sw_ranking", "wins"),
        ("sw_ranking", "losses"),
        ("sw_ranking", "embeddings"),
    ],
)
def test_nan_and_inf_are_refused(saved: dict[str, Path], tmp_path: Path, name: str, tensor: str, bad: float) -> None:
    path = clone(saved, name, tmp_path)
    arr = load_file(str(path / "model.safetensors"))[tensor].copy()
    arr.flat[0] = bad
    edit_tensors(path, **{tensor: arr})
    refused(path, match="NaN or infinite")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"wins": "negative"}, id="negative-wins"),
        pytest.param({"losses": "huge"}, id="huge-losses"),
        pytest.param({"pair_models": "float"}, id="float-pair-table"),
        pytest.param({"pair_models": "out-of-range"}, id="pair-index-out-of-range"),
        pytest.param({"pair_models": "negative"}, id="negative-pair-index"),
        pytest.param({"empty": True}, id="no-battles"),
    ],
)
def test_crafted_sw_ranking_tables_are_refused(saved: dict[str, Path], tmp_path: Path, changes: dict) -> None:
    path = clone(saved, "sw_ranking", tmp_path)
    t = load_file(str(path / "model.safetensors"))
    kind = next(iter(changes.values()))
    if "wins" in changes:
        t["wins"] = -np.abs(t["wins"]) - 1
    elif "losses" in changes:
        t["losses"] = np.full_like(t["losses"], 3e38)
    elif kind == "float":
        t["pair_models"] = t["pair_models"].astype(np.float32) + 0.5
    elif kind == "out-of-range":
        t["pair_models"] = t["pair_models"] + 100
    elif kind == "negative":
        t["pair_models"] = t["pair_models"] - 100
    else:
        t = {
            "embeddings": np.zeros((0, DIM), np.float16),
            "wins": np.zeros((0, 1), np.float32),
            "losses": np.zeros((0, 1), np.float32),
            "pair_models": np.zeros((1, 2), np.int64),
        }
    save_file(t, str(path / "model.safetensors"))
    refused(path, match="sw_ranking")


def test_mf_weights_that_overflow_are_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    path = clone(saved, "mf", tmp_path)
    t = load_file(str(path / "model.safetensors"))
    edit_tensors(path, head=np.full_like(t["head"], 3e38), projection=np.full_like(t["projection"], 3e38))
    refused(path, match="overflow")


@pytest.mark.parametrize("name", ["mf", "sw_ranking"])
def test_missing_and_unexpected_tensors(saved: dict[str, Path], tmp_path: Path, name: str) -> None:
    path = clone(saved, name, tmp_path)
    tensors = load_file(str(path / "model.safetensors"))
    save_file({**tensors, "__extra__": np.zeros(3, np.float32)}, str(path / "model.safetensors"))
    refused(path, match="unexpected tensors")
    first = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != first}, str(path / "model.safetensors"))
    refused(path, match="missing tensors")
    (path / "model.safetensors").unlink()
    refused(path, match="no model.safetensors")


# ---- oversized files ---------------------------------------------------------------------------------------
def test_oversized_weights_are_refused(saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = clone(saved, "sw_ranking", tmp_path)
    use(path)
    monkeypatch.setattr(ckpt, "MAX_WEIGHTS_BYTES", 256)
    error = refused(path, match="above the 256-byte limit")
    assert "model.safetensors" in str(error)


def test_oversized_config_is_refused(saved: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = clone(saved, "mf", tmp_path)
    monkeypatch.setattr(ckpt, "MAX_CONFIG_BYTES", 64)
    refused(path, match="larger than 64 bytes")


# ---- safetensors headers that lie --------------------------------------------------------------------------
def _raw_safetensors(header: dict[str, Any] | bytes, data: bytes, declared: int | None = None) -> bytes:
    body = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(body) if declared is None else declared) + body + data


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            _raw_safetensors({"head": {"dtype": "F32", "shape": [10**9], "data_offsets": [0, 4 * 10**9]}}, b"\0" * 16),
            id="tensor-larger-than-file",
        ),
        pytest.param(
            _raw_safetensors({"head": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16),
            id="shape-disagrees-with-offsets",
        ),
        pytest.param(
            _raw_safetensors({"head": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, b"\0" * 16),
            id="offsets-leave-a-hole",
        ),
        pytest.param(
            _raw_safetensors({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, 2**62),
            id="header-length-beyond-file",
        ),
        pytest.param(_raw_safetensors(b"{not json", b""), id="header-not-json"),
        pytest.param(
            _raw_safetensors({"head": {"dtype": "PICKLE", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
            id="unknown-dtype",
        ),
        pytest.param(b"\x01\x02", id="truncated"),
        pytest.param(b"", id="empty"),
    ],
)
def test_lying_safetensors_headers_are_refused(saved: dict[str, Path], tmp_path: Path, raw: bytes) -> None:
    path = clone(saved, "mf", tmp_path)
    (path / "model.safetensors").write_bytes(raw)
    refused(path, match="safetensors")


# ---- pickles are never unpickled ---------------------------------------------------------------------------
class _Payload:
    """Creates the marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_pickles_are_never_executed(saved: dict[str, Path], tmp_path: Path) -> None:
    # the payload is live: unpickling it does create its marker
    probe = tmp_path / "probe-marker"
    pickle.loads(pickle.dumps(_Payload(probe))).close()
    assert probe.exists()

    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Payload(marker))
    path = clone(saved, "mf", tmp_path)
    for name in ("pytorch_model.bin", "model.pkl", "model.pt", "training_args.bin"):
        (path / name).write_bytes(payload)  # lying around in the folder: ignored
    use(path)
    (path / "model.safetensors").write_bytes(payload)  # renamed to the weights file: refused unread
    refused(path, match="safetensors")
    (path / "config.json").write_bytes(payload)  # renamed to the config: refused
    refused(path, match="config.json")
    assert not marker.exists()


# ---- crafted configs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "changes", "match"),
    [
        ("mf", {"params": {"weights_file": "../../etc/passwd"}}, "weights_file"),
        ("mf", {"params": {"embedder": "../../etc/passwd"}}, "embedder"),
        ("mf", {"params": {"strong_model": "attacker-model"}}, "strong_model"),
        ("mf", {"params": {"__class__": "os.system"}}, "__class__"),
        ("mf", {"params": {"dim": "abc"}}, "'dim'"),
        ("mf", {"params": {"dim": [4]}}, "'dim'"),
        ("mf", {"params": {"dim": 0}}, "'dim'"),
        ("mf", {"params": {"use_bias": {"$eval": "1"}}}, "'use_bias'"),
        ("sw_ranking", {"params": {"chunk_size": 0}}, "'chunk_size'"),
        ("sw_ranking", {"params": {"chunk_size": -1}}, "'chunk_size'"),
        ("sw_ranking", {"params": {"newton_steps": 10**12}}, "'newton_steps'"),  # a CPU-time bomb
        ("sw_ranking", {"params": {"gamma": "__import__('os').system('id')"}}, "'gamma'"),
        ("sw_ranking", {"params": {"gamma": 1e300}}, "'gamma'"),
        ("sw_ranking", {"params": {"l2": -1.0}}, "'l2'"),
        ("mf", {"unexpected_key": 1}, "unexpected_key"),
        ("mf", {"format_version": 99}, "format_version"),
        ("mf", {"format_version": "one"}, "format_version"),
        ("mf", {"strong_model": 5}, "strong_model"),
        ("mf", {"strong_model": None}, "strong_model"),
        ("mf", {"params": None}, "params"),
        ("mf", {"router": ""}, "router"),
        ("mf", {"calibrated_thresholds": {"0.5": 7.0}}, "outside"),
        ("mf", {"calibrated_thresholds": {"half": 0.5}}, "calibrated_thresholds"),
        ("mf", {"metadata": {"models": "gpt-4"}}, "model list"),
        ("mf", {"metadata": {"models": [S, "someone-else", "third-model"]}}, "not in the training data"),
        ("sw_ranking", {"metadata": {"models": [S]}}, "models"),
        ("mf", {"embedder": "../../../etc/passwd"}, "embedder"),
    ],
)
def test_crafted_configs_are_refused(saved: dict[str, Path], tmp_path: Path, name: str, changes: dict, match: str):
    path = clone(saved, name, tmp_path)
    edit_config(path, **changes)
    refused(path, match=match)


def test_nan_literals_in_config_params_are_refused(saved: dict[str, Path], tmp_path: Path) -> None:
    path = clone(saved, "sw_ranking", tmp_path)
    text = (path / "config.json").read_text()
    (path / "config.json").write_text(text.replace('"gamma": 10.0', '"gamma": NaN'))
    refused(path, match="'gamma'.*finite")


@pytest.mark.parametrize(
    "router", ["../../etc/passwd", "os:system", "routellm_core.routers.mf:MatrixFactorizationRouter"]
)
def test_router_names_are_registry_keys_not_import_paths(saved: dict[str, Path], tmp_path: Path, router: str) -> None:
    path = clone(saved, "mf", tmp_path)
    edit_config(path, router=router)
    refused(path, UnknownRouterError, match="unknown router")


def test_embedder_names_are_never_paths(saved: dict[str, Path], tmp_path: Path) -> None:
    """Without an explicit embedder the config's embedder name is rebuilt only for known names."""
    path = clone(saved, "mf", tmp_path)
    edit_config(path, embedder="../../../../etc/passwd")
    with pytest.raises(CheckpointError, match="cannot be rebuilt by name"):
        load_router(path)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * 100_000, id="deeply-nested"),
        pytest.param(b'{"router": "mf", "x": ' + b"9" * 10_000 + b"}", id="huge-integer"),
        pytest.param(b"\xff\xfe{\x00}\x00", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[1, 2, 3]", id="not-an-object"),
        pytest.param(b"\"__import__('os').system('id')\"", id="a-string"),
    ],
)
def test_unparseable_configs_are_refused(saved: dict[str, Path], tmp_path: Path, raw: bytes) -> None:
    path = clone(saved, "mf", tmp_path)
    (path / "config.json").write_bytes(raw)
    refused(path, match="config.json")


@pytest.mark.parametrize("name", ["../model.safetensors", "/etc/passwd", "sub/model.safetensors"])
def test_weights_file_names_must_be_bare(saved: dict[str, Path], name: str) -> None:
    with pytest.raises(CheckpointError, match="bare file name"):
        load_tensors(saved["mf"], {"head": (4,)}, filename=name)


# ---- symlinks ---------------------------------------------------------------------------------------------------
def test_symlinked_files_are_followed_and_checked_the_same(saved: dict[str, Path], tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("root:x:0:0:TOP-SECRET-CONTENT\n")

    # a folder linked to a good checkpoint loads
    linked = tmp_path / "linked"
    linked.symlink_to(saved["mf"], target_is_directory=True)
    use(linked)

    path = clone(saved, "mf", tmp_path)
    (path / "config.json").unlink()
    (path / "config.json").symlink_to(secret)
    error = refused(path, match="not valid JSON")
    assert "TOP-SECRET" not in str(error)  # the linked file's content never shows in the message

    path = clone(saved, "mf", tmp_path / "b")
    (path / "config.json").unlink()
    (path / "config.json").symlink_to("/dev/zero")  # endless: never read
    refused(path, match="no config.json")

    path = clone(saved, "mf", tmp_path / "c")
    (path / "model.safetensors").unlink()
    (path / "model.safetensors").symlink_to("/dev/zero")
    refused(path, match="no model.safetensors")

    path = clone(saved, "mf", tmp_path / "d")
    (path / "model.safetensors").unlink()
    (path / "model.safetensors").symlink_to(secret)
    error = refused(path, match="safetensors")
    assert "TOP-SECRET" not in str(error)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_config_linked_to_a_proc_file_is_read_bounded(saved: dict[str, Path], tmp_path: Path) -> None:
    """/proc files report size 0: the read itself is bounded, and their content never shows in the message."""
    path = clone(saved, "mf", tmp_path)
    (path / "config.json").unlink()
    (path / "config.json").symlink_to("/proc/self/status")
    error = refused(path, match="not valid JSON")
    assert "VmRSS" not in str(error) and str(os.getpid()) not in str(error)


def test_read_config_never_follows_names_from_the_config(saved: dict[str, Path]) -> None:
    config = read_config(saved["mf"])
    assert config.router == "mf"
    with pytest.raises(CheckpointError, match="not found"):
        read_config(saved["mf"] / ".." / "does-not-exist")


# ---- the neural routers: crafted configs fail before any weights are read ----------------------------------
@pytest.mark.parametrize(
    ("router", "params", "match"),
    [
        ("bert", {"weights_dtype": "pickle"}, "weights_dtype"),
        ("bert", {"max_length": -5}, "max_length"),
        ("bert", {"eval_batch_size": 0}, "eval_batch_size"),
        ("bert", {"base_model": "/nonexistent/../../etc/model"}, "/nonexistent"),
        ("bert", {"weights_file": "../../etc/passwd"}, "weights_file"),
        ("causal_llm", {"dtype": "load"}, "dtype"),
        ("causal_llm", {"label_tokens": ["A"]}, "label_tokens"),
        ("causal_llm", {"base_model": "/nonexistent/model.gguf"}, "/nonexistent"),
    ],
)
def test_crafted_neural_router_configs_are_refused(tmp_path: Path, router: str, params: dict, match: str) -> None:
    path = tmp_path / router
    path.mkdir()
    config = {"router": router, "strong_model": S, "weak_model": W, "params": params}
    (path / "config.json").write_text(json.dumps(config))
    save_file({"x": np.zeros(1, np.float32)}, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=match):
        load_router(path)


# ---- data files ----------------------------------------------------------------------------------------------
EVIL = "__import__('os').system('touch {marker}')"


def test_code_in_data_files_is_just_text(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = EVIL.format(marker=marker)
    battles = tmp_path / "battles.jsonl"
    battles.write_text(
        json.dumps({"prompt": evil, "model_a": "eval('1')", "model_b": "b", "winner": "model_a"})
        + "\n"
        + json.dumps({"prompt": '=HYPERLINK("http://x")', "model_a": "a", "model_b": "b", "winner": "tie"})
        + "\n"
    )
    loaded = load_battles(battles)
    assert loaded[0].prompt == evil and loaded[0].model_a == "eval('1')"
    assert loaded[1].prompt.startswith("=HYPERLINK")

    labels = tmp_path / "labels.csv"
    labels.write_text(f'prompt,model-x,model-y\n"{evil}",1,0\n"!!python/object/apply:os.system [id]",0,1\n')
    loaded_labels = load_golden_labels(labels)
    assert loaded_labels[0].prompt == evil and loaded_labels[0].scores == {"model-x": 1.0, "model-y": 0.0}
    bench = load_benchmark_file(labels, "model-x", "model-y")
    assert bench.prompts[1].startswith("!!python")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("deep.jsonl", b"[" * 100_000 + b"\n", "line 1: invalid JSON"),
        ("deep-object.jsonl", b'{"prompt": ' + b"[" * 100_000 + b"\n", "line 1: invalid JSON"),
        ("bigint.jsonl", b'{"prompt": "x", "scores": {"a": ' + b"9" * 10_000 + b"}}\n", "line 1: invalid JSON"),
        ("latin1.jsonl", '{"prompt": "café", "scores": {"a": 1}}\n'.encode("latin-1"), "not UTF-8"),
        ("latin1.csv", "prompt,a,b\ncafé,1,0\n".encode("latin-1"), "not UTF-8"),
        ("latin1-header.csv", "prómpt,a\nx,1\n".encode("latin-1"), "not UTF-8"),
        ("nan.jsonl", b'{"prompt": "x", "scores": {"a": NaN, "b": 1}}\n', "not finite"),
        ("inf.jsonl", b'{"prompt": "x", "scores": {"a": 1e999, "b": 1}}\n', "not finite"),
        ("inf.csv", b"prompt,a,b\nx,inf,1\n", "not finite"),
        ("nan.csv", b"prompt,a,b\nx,nan,1\n", "not finite"),
        ("string-score.jsonl", b'{"prompt": "x", "scores": {"a": "__import__(\'os\')"}}\n', "non-numeric"),
        ("list.jsonl", b'["prompt", "a"]\n', "expected a JSON object"),
        ("huge-field.csv", b"prompt,a\n" + b"x" * 200_000 + b",1\n", "malformed CSV"),
        ("ragged.csv", b"prompt,a,b\nx,1\n", "2 fields"),
        ("empty.csv", b"", "empty"),
        ("blank.jsonl", b"\n\n", "no golden labels"),
        ("notes.txt", b"prompt,a\nx,1\n", "unsupported file type"),
    ],
)
def test_malformed_label_files_are_refused(tmp_path: Path, name: str, raw: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(TrainingDataError, match=match) as info:
        load_golden_labels(path)
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("name", "raw", "match"),
    [
        ("deep.jsonl", b"[" * 100_000 + b"\n", "line 1: invalid JSON"),
        (
            "latin1.jsonl",
            '{"prompt": "café", "model_a": "a", "model_b": "b", "winner": "tie"}\n'.encode("latin-1"),
            "not UTF-8",
        ),
        ("latin1.csv", "prompt,model_a,model_b,winner\ncafé,a,b,tie\n".encode("latin-1"), "not UTF-8"),
        (
            "code-winner.jsonl",
            b'{"prompt": "x", "model_a": "a", "model_b": "b", "winner": "eval(\'a\')"}\n',
            "unknown winner",
        ),
        ("same-model.jsonl", b'{"prompt": "x", "model_a": "a", "model_b": "a", "winner": "tie"}\n', "both"),
        ("no-prompt.csv", b"prompt,model_a,model_b,winner\n ,a,b,tie\n", "empty prompt"),
        ("columns.csv", b"prompt,a,b\nx,1,0\n", "missing column"),
    ],
)
def test_malformed_battle_files_are_refused(tmp_path: Path, name: str, raw: bytes, match: str) -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    with pytest.raises(TrainingDataError, match=match) as info:
        load_battles(path)
    assert name in str(info.value)
