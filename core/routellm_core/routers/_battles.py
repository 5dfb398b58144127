"""Battles turned into arrays: unique prompts, model indices and win weights (ties count half to each side)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from routellm_core.data.records import Battle, check_trainable
from routellm_core.errors import TrainingDataError


@dataclass(frozen=True)
class BattleArrays:
    """Index form of a battle list.

    Attributes:
        prompts: Unique prompts, in first-seen order.
        models: Sorted model names.
        prompt_idx: Per battle, index into ``prompts``.
        a_idx: Per battle, index of model_a into ``models``.
        b_idx: Per battle, index of model_b.
        a_score: Per battle, 1 if model_a won, 0 if model_b won, 0.5 for a tie.
    """

    prompts: list[str]
    models: list[str]
    prompt_idx: np.ndarray
    a_idx: np.ndarray
    b_idx: np.ndarray
    a_score: np.ndarray


def battle_arrays(battles: Sequence[Battle], *, required_models: Sequence[str] = ()) -> BattleArrays:
    """Convert battles to arrays, checking the data can train a router that scores ``required_models``.

    Raises:
        TrainingDataError: No battles, a single model, or a required model absent from the battles.
    """
    models = check_trainable(battles)
    absent = [m for m in required_models if m not in models]
    if absent:
        raise TrainingDataError(
            f"reference model(s) {absent} appear in no training battle; models seen: {models[:20]}"
            + (" ..." if len(models) > 20 else "")
        )
    model_index = {m: i for i, m in enumerate(models)}
    prompt_index: dict[str, int] = {}
    p_idx, a_idx, b_idx, a_score = [], [], [], []
    for b in battles:
        p_idx.append(prompt_index.setdefault(b.prompt, len(prompt_index)))
        a_idx.append(model_index[b.model_a])
        b_idx.append(model_index[b.model_b])
        a_score.append(1.0 if b.winner == "model_a" else 0.0 if b.winner == "model_b" else 0.5)
    return BattleArrays(
        prompts=list(prompt_index),
        models=models,
        prompt_idx=np.asarray(p_idx, dtype=np.int64),
        a_idx=np.asarray(a_idx, dtype=np.int64),
        b_idx=np.asarray(b_idx, dtype=np.int64),
        a_score=np.asarray(a_score, dtype=np.float32),
    )
