"""Small fixes a user of training met: ``train``'s summary counting ties it never saw, a zero-step neural
training reported as trained, ``embedder=`` silently ignored by routers that embed nothing, and peft's
``is_gradient_checkpointing`` FutureWarning on every causal_llm load.

Real routers throughout: the shipped ``fast`` (mf) as a warm-start init, bert on the packaged MiniLM encoder, and
causal_llm on a two-block Llama with random weights (a real architecture, small enough for a CPU test).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from obvious_prompts import EASY as OBVIOUS_EASY
from obvious_prompts import HARD as OBVIOUS_HARD
from obvious_prompts import obvious_battles, write_battles

from routellm_core import STRONG_REFERENCE, WEAK_REFERENCE, Battle, InvalidInputError, load_router
from routellm_core.cli import main
from routellm_core.embedding.static import StaticEmbedder
from routellm_core.routers.training import train_router

pytest.importorskip("torch")
pytest.importorskip("transformers")

S, W = "big", "small"
HARD, EASY = OBVIOUS_HARD[:4], OBVIOUS_EASY[:4]
PAIR = {"strong_model": S, "weak_model": W}
TINY_BERT = {"max_length": 16, "validation_fraction": 0.0, "show_progress": False}
#: The FutureWarning peft 0.21 raises under transformers 5 (the message transformers writes).
PEFT_WARNING = "`is_gradient_checkpointing` is deprecated"


def _battles(strong: str = S, weak: str = W, ties: int = 0) -> list[Battle]:
    return obvious_battles(strong, weak, ties=ties)


# ---- 1. the train summary counts only the ties it says it dropped -----------------------------------------------
def test_warm_start_on_another_pair_drops_no_ties_it_ignored(tmp_path: Path, capsys) -> None:
    """``train --init fast --battles F`` where every battle is of another pair: the battles were ignored, yet the
    line said "3 ties dropped" too, counting ties among them."""
    out = tmp_path / "mine"
    labels = write_battles(tmp_path / "other.jsonl", _battles(ties=3))
    assert main(["train", "--init", "fast", "--battles", str(labels), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "11 battles not between" in line and "ignored" in line
    assert "ties dropped" not in line, line


def test_warm_start_counts_the_ties_of_its_own_pair_only(tmp_path: Path, capsys) -> None:
    """Two ties among the init's pair, three among another pair's battles: two were dropped, three ignored."""
    mine = _battles(STRONG_REFERENCE, WEAK_REFERENCE, ties=2)
    labels = write_battles(tmp_path / "mixed.jsonl", mine + _battles(ties=3))
    assert main(["train", "--init", "fast", "--battles", str(labels), "--out", str(tmp_path / "mine")]) == 0
    line = capsys.readouterr().out
    assert line.startswith("warm-started mf from fast on 8 of 21 battles; 2 ties dropped (mf learns"), line
    assert "11 battles not between" in line


# ---- 2. a neural training that ran no step says so ----------------------------------------------------------------
@pytest.mark.parametrize("zero", ["epochs", "max_steps"])
def test_bert_with_zero_steps_warns_that_nothing_was_trained(tmp_path: Path, capsys, zero: str) -> None:
    """``{"epochs": 0}`` or ``{"max_steps": 0}`` saves the untrained head; train printed "trained bert on 8 of 8
    battles". Allowed on purpose (docs/core.md: the untrained network as a baseline), but said plainly."""
    labels = write_battles(tmp_path / "battles.jsonl", _battles())
    base = ["train", "--router", "bert", "--battles", str(labels), "--strong-model", S, "--weak-model", W]
    out = tmp_path / "out"
    params = {**TINY_BERT, "epochs": 1, zero: 0}
    assert main([*base, "--params", json.dumps(params), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"warning: nothing was trained: {zero} is 0, so bert ran no training step"), line
    assert "trained bert on" not in line and line.endswith(f"-> {out}")
    assert load_router(out).metadata["training"]["steps"] == 0

    # one step is training: the ordinary line, counting the battles of its pair
    other = write_battles(tmp_path / "more.jsonl", _battles("c", "d"))
    params = {**TINY_BERT, "epochs": 1, "max_steps": 1}
    assert main([*base, "--battles", str(other), "--params", json.dumps(params), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line == f"trained bert on 8 of 16 battles -> {out}"


def test_causal_llm_with_zero_epochs_warns_that_nothing_was_trained(tmp_path: Path, capsys, tiny_llama) -> None:
    labels = write_battles(tmp_path / "battles.jsonl", _battles())
    params = {"base_model": str(tiny_llama), "max_length": 24, "epochs": 0, "show_progress": False}
    out = tmp_path / "out"
    args = ["train", "--router", "causal_llm", "--battles", str(labels), "--strong-model", S, "--weak-model", W]
    assert main([*args, "--params", json.dumps(params), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("warning: nothing was trained: epochs is 0, so causal_llm ran no training step"), line


# ---- 3. embedder= is refused where nothing embeds ------------------------------------------------------------------
def test_an_embedder_for_a_bert_checkpoint_is_refused(tmp_path: Path, minilm: Path) -> None:
    from routellm_core.routers.bert import BertRouter

    ckpt = BertRouter(**TINY_BERT, max_steps=1, strong_model=S, weak_model=W).fit(_battles()).save(tmp_path / "b")
    embedder = StaticEmbedder()
    with pytest.raises(InvalidInputError, match=r"a 'bert' router reads the prompts with its own encoder") as err:
        load_router(ckpt, embedder=embedder)
    assert str(ckpt) in str(err.value) and "drop embedder=" in str(err.value)
    with pytest.raises(InvalidInputError, match=r"load_router\('bert'\): a 'bert' router reads the prompts"):
        load_router("bert", embedder=embedder)
    assert load_router(ckpt).name == "bert"  # without it, it loads
    # a router that embeds still takes one
    assert load_router("mf", embedder=embedder).get_embedder() is embedder
    with pytest.raises(InvalidInputError, match=r"does not apply to training bert"):
        train_router("bert", _battles(), embedder=embedder, **TINY_BERT, max_steps=1, strong_model=S, weak_model=W)


def test_an_embedder_for_a_causal_llm_checkpoint_is_refused(tmp_path: Path, tiny_llama: Path) -> None:
    from routellm_core.routers.causal_llm import CausalLLMRouter

    router = CausalLLMRouter(
        base_model=str(tiny_llama), max_length=24, max_steps=1, validation_fraction=0.0, show_progress=False, **PAIR
    )
    ckpt = router.fit(_battles()).save(tmp_path / "c")
    with pytest.raises(InvalidInputError, match=r"a 'causal_llm' router reads the prompts with its own encoder"):
        load_router(ckpt, embedder=StaticEmbedder())


# ---- 4. peft's is_gradient_checkpointing FutureWarning is silenced around the load only ---------------------------
def test_a_causal_llm_load_shows_no_peft_future_warning(tmp_path: Path, tiny_llama: Path) -> None:
    from routellm_core.routers.causal_llm import CausalLLMRouter

    router = CausalLLMRouter(
        base_model=str(tiny_llama), max_length=24, max_steps=1, validation_fraction=0.0, show_progress=False, **PAIR
    )
    with warnings.catch_warnings(record=True) as fitting:
        warnings.simplefilter("always")
        ckpt = router.fit(_battles()).save(tmp_path / "c")
    with warnings.catch_warnings(record=True) as loading:
        warnings.simplefilter("always")
        loaded = load_router(ckpt)
        scores = loaded.predict_win_rate(HARD + EASY)  # the network is built (and LoRA added) on first use
    assert len(scores) == 8
    shown = [str(w.message) for w in fitting + loading if issubclass(w.category, FutureWarning)]
    assert not [m for m in shown if m.startswith(PEFT_WARNING)], shown

    # nowhere else: the same property read outside the load still warns
    model, _, _ = loaded._ensure_model()
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        model.get_base_model().is_gradient_checkpointing  # noqa: B018 - the read is what warns
    assert [str(w.message) for w in outside if str(w.message).startswith(PEFT_WARNING)]
