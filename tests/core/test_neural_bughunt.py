"""Bugs a user met training, saving and serving the neural routers on CPU, each pinned by a test.

A checkpoint's weights were written owner-only (``save_file``) while its config was readable; out-of-range
``--params`` trained nothing and saved a checkpoint that then refused to load (or crashed in torch with a
traceback); constructor checks raised bare ``ValueError`` (a traceback from ``routellm train``); all-tie labels
trained routers that score every prompt alike; a relative ``base_model`` was saved as given, so the checkpoint
loaded only from the folder it was trained in; a folder that is not a model gave a tokenizer error about
sentencepiece; another router's weights listed every tensor name of a whole network in one error line; refitting
kept the thresholds calibrated on the previous fit's scores.

Fast: the bert fits take one step of the packaged MiniLM on a handful of prompts; the causal LM is a tiny
two-block Llama built from its config (a real transformers architecture) with MiniLM's tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from obvious_prompts import EASY as OBVIOUS_EASY
from obvious_prompts import HARD as OBVIOUS_HARD
from obvious_prompts import obvious_battles, write_battles

from routellm_core import Battle, CheckpointError, InvalidInputError, TrainingDataError, load_router
from routellm_core.checkpoint import CONFIG_FILE, WEIGHTS_FILE
from routellm_core.cli import main

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

S, W = "big", "small"
HARD, EASY = OBVIOUS_HARD[:4], OBVIOUS_EASY[:4]
TINY_BERT = dict(max_length=16, epochs=1, max_steps=1, validation_fraction=0.0, show_progress=False)


def _battles() -> list[Battle]:
    return obvious_battles(S, W)


def _ties() -> list[Battle]:
    return [Battle(prompt=p, model_a=S, model_b=W, winner="tie") for p in HARD + EASY]


def _train(tmp_path: Path, router: str, params: dict, battles: list[Battle] | None = None) -> list[str]:
    labels = write_battles(tmp_path / "battles.jsonl", _battles() if battles is None else battles)
    return [
        "train",
        "--router",
        router,
        "--battles",
        str(labels),
        "--strong-model",
        S,
        "--weak-model",
        W,
        "--params",
        json.dumps(params),
        "--out",
        str(tmp_path / "out"),
    ]


# ---- checkpoints are readable, and load from anywhere ------------------------------------------------------
def test_bert_checkpoint_from_a_relative_base_loads_elsewhere_and_is_readable(tmp_path, minilm, monkeypatch) -> None:
    """A relative ``base_model`` is kept absolute (the checkpoint loads from another working directory), and the
    weights file gets the umask's mode like ``config.json`` (``save_file`` made it owner-only: 0600)."""
    from routellm_core.routers.bert import BertRouter

    monkeypatch.chdir(minilm.parent)
    router = BertRouter(base_model=minilm.name, **TINY_BERT, strong_model=S, weak_model=W).fit(_battles())
    expected = router.predict_win_rate(HARD + EASY)
    old = os.umask(0o022)
    try:
        ckpt = router.save(tmp_path / "ckpt")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((ckpt / WEIGHTS_FILE).stat().st_mode)
    assert mode == stat.S_IMODE((ckpt / CONFIG_FILE).stat().st_mode) == 0o644
    assert json.loads((ckpt / CONFIG_FILE).read_text())["params"]["base_model"] == str(minilm)
    monkeypatch.chdir(tmp_path)  # where no folder of that name exists
    loaded = load_router("ckpt")
    np.testing.assert_array_equal(loaded.predict_win_rate(HARD + EASY), expected)


def test_refit_drops_the_previous_fits_thresholds() -> None:
    """Thresholds calibrated on one fit's scores do not describe another fit's: a refit starts without them."""
    from routellm_core.evaluation.calibration import calibrate_thresholds
    from routellm_core.routers.bert import BertRouter

    router = BertRouter(**TINY_BERT, strong_model=S, weak_model=W).fit(_battles())
    calibrate_thresholds(router, HARD + EASY, (0.25, 0.5))
    assert set(router.calibrated_thresholds) == {"0.25", "0.5"}
    router.fit(_battles(), seed=7)
    assert router.calibrated_thresholds == {}
    with pytest.raises(CheckpointError, match="no calibrated thresholds"):
        router.threshold_for(0.5)


def test_causal_llm_round_trip_from_a_relative_base(tmp_path, tiny_llama, monkeypatch) -> None:
    """A causal LM base given relative to the working directory: trained, saved, loaded from elsewhere, same
    scores; the adapters' file is readable like the config."""
    from routellm_core.routers.causal_llm import CausalLLMRouter

    monkeypatch.chdir(tiny_llama.parent)
    router = CausalLLMRouter(
        base_model=tiny_llama.name,
        lora_r=2,
        lora_alpha=4,
        max_length=16,
        max_steps=1,
        validation_fraction=0.0,
        show_progress=False,
        strong_model=S,
        weak_model=W,
    ).fit(_battles())
    expected = router.predict_win_rate(HARD + EASY)
    old = os.umask(0o022)
    try:
        ckpt = router.save(tmp_path / "llm")
    finally:
        os.umask(old)
    assert stat.S_IMODE((ckpt / WEIGHTS_FILE).stat().st_mode) == 0o644
    monkeypatch.chdir(tmp_path)
    np.testing.assert_allclose(load_router("llm").predict_win_rate(HARD + EASY), expected, atol=1e-6)


# ---- bad parameters: one clear line, nothing written -------------------------------------------------------
@pytest.mark.parametrize(
    ("router", "params", "message"),
    [
        ("bert", {"epochs": -3}, "bert parameter 'epochs' = -3 is invalid"),  # used to save an unloadable checkpoint
        ("bert", {"lr": -1}, "bert parameter 'lr' = -1 is invalid"),  # used to crash in torch's AdamW
        ("bert", {"epochs": 1.5}, "bert parameter 'epochs' = 1.5 is invalid"),
        ("bert", {"weights_dtype": "bf16"}, "weights_dtype must be one of"),  # used to be a ValueError traceback
        ("causal_llm", {"label_tokens": ["A", "A", "B"]}, "label_tokens must be 3 distinct strings"),
        ("causal_llm", {"validation_fraction": 1.0}, "causal_llm parameter 'validation_fraction' = 1.0 is invalid"),
        ("causal_llm", {"dtype": "int8"}, "dtype must be one of"),
        ("sw_ranking", {"gamma": 0.5}, "sw_ranking parameter 'gamma' = 0.5 is invalid"),  # used to save, then refuse
    ],
)
def test_cli_refuses_bad_neural_params_before_training(tmp_path, capsys, router, params, message) -> None:
    assert main(_train(tmp_path, router, params)) == 2
    err = capsys.readouterr().err
    assert err.startswith("routellm: error: ") and len(err.strip().splitlines()) == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_lora_layers_outside_the_base_are_one_clear_line(tmp_path, capsys, tiny_llama) -> None:
    params = {"base_model": str(tiny_llama), "lora_layers": [5], "max_steps": 1}
    assert main(_train(tmp_path, "causal_llm", params)) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after transformers' own "Loading weights" bar
    assert last == "routellm: error: lora_layers [5] out of range for a model of 2 blocks"
    assert not (tmp_path / "out").exists()


def test_a_looser_but_equal_value_is_taken_as_its_type() -> None:
    """``{"epochs": 2.0}`` (JSON has one number type) trains as 2 epochs instead of failing in ``range``."""
    from routellm_core.routers.sw_ranking import SWRankingRouter

    router = SWRankingRouter(newton_steps=4.0, strong_model=S, weak_model=W)
    router.check_params()
    assert router.newton_steps == 4 and isinstance(router.newton_steps, int)


# ---- labels that cannot teach the router -------------------------------------------------------------------
def test_all_tie_labels_are_refused_by_the_neural_routers() -> None:
    from routellm_core.routers.bert import BertRouter
    from routellm_core.routers.sw_ranking import SWRankingRouter

    with pytest.raises(TrainingDataError, match="all 8 battles between 'big' and 'small' are ties"):
        BertRouter(**TINY_BERT, strong_model=S, weak_model=W).fit(_ties())
    with pytest.raises(TrainingDataError, match="all 8 training battles are ties"):
        SWRankingRouter(strong_model=S, weak_model=W).fit(_ties())


def test_all_tie_labels_cli_writes_nothing(tmp_path, capsys) -> None:
    assert main(_train(tmp_path, "bert", {"max_steps": 1}, battles=_ties())) == 2
    assert "are ties" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---- base folders that are not models ----------------------------------------------------------------------
def test_a_base_that_is_not_a_model_folder_is_named(tmp_path) -> None:
    from routellm_core.routers.bert import BertRouter
    from routellm_core.routers.causal_llm import CausalLLMRouter

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"folder without a config\.json"):
        BertRouter(base_model=str(empty), **TINY_BERT, strong_model=S, weak_model=W).fit(_battles())
    text = tmp_path / "notes.txt"
    text.write_text("not a model", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"notes.txt' is a file; it takes a model folder or a \.gguf file"):
        CausalLLMRouter(base_model=str(text), strong_model=S, weak_model=W).fit(_battles())


# ---- another router's weights -------------------------------------------------------------------------------
def test_another_routers_weights_are_named_briefly(tmp_path) -> None:
    """The mf config beside a network's weights: the error says so in one short line, not 100 tensor names."""
    from routellm_core.checkpoint import save_tensors
    from routellm_core.routers.registry import PRETRAINED_DIR

    ckpt = tmp_path / "mixed"
    shutil.copytree(PRETRAINED_DIR / "fast", ckpt)
    save_tensors(ckpt, {f"bert.encoder.layer.{i}.dense.weight": np.zeros((2, 2), np.float16) for i in range(100)})
    with pytest.raises(CheckpointError) as caught:
        load_router(ckpt)
    message = str(caught.value)
    assert "does not hold this router's weights" in message and "and 95 more" in message
    assert len(message) < 600


def test_invalid_input_stays_a_value_error() -> None:
    """Callers catching ``ValueError`` (the constructor's old type) still catch the new errors."""
    from routellm_core.routers.causal_llm import CausalLLMRouter

    with pytest.raises(ValueError, match="3 distinct"):
        CausalLLMRouter(label_tokens=("A", "A", "C"))
    assert issubclass(InvalidInputError, ValueError)
