"""Typed training records: pairwise battles and golden labels, and the conversion between them."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from routellm_core.errors import TrainingDataError

Winner = Literal["model_a", "model_b", "tie"]


class Battle(BaseModel):
    """One pairwise comparison: which of two models answered ``prompt`` better.

    Attributes:
        prompt: The user prompt both models answered.
        model_a: Name of the first model.
        model_b: Name of the second model.
        winner: ``"model_a"``, ``"model_b"`` or ``"tie"``.
        source: Optional name of the dataset the battle came from.
    """

    model_config = ConfigDict(frozen=True)

    prompt: str = Field(min_length=1)
    model_a: str = Field(min_length=1)
    model_b: str = Field(min_length=1)
    winner: Winner
    source: str | None = None

    @model_validator(mode="after")
    def _distinct_models(self) -> Battle:
        if self.model_a == self.model_b:
            raise ValueError(f"a battle needs two different models, got {self.model_a!r} twice")
        return self


class GoldenLabel(BaseModel):
    """Per-model quality scores for one prompt (correct 0/1, a fraction, or a judge grade).

    Attributes:
        prompt: The prompt the models answered.
        scores: Model name -> score; higher is better.
        source: Optional name of the dataset the label came from.
    """

    model_config = ConfigDict(frozen=True)

    prompt: str = Field(min_length=1)
    scores: dict[str, float]
    source: str | None = None

    @field_validator("scores")
    @classmethod
    def _finite_scores(cls, scores: dict[str, float]) -> dict[str, float]:
        if not scores:
            raise ValueError("a golden label needs at least one model score")
        for model, score in scores.items():
            if score != score or score in (float("inf"), float("-inf")):
                raise ValueError(f"score of {model!r} is not finite: {score}")
        return scores


def golden_to_battles(labels: Iterable[GoldenLabel], models: Sequence[str] | None = None) -> list[Battle]:
    """Turn golden labels into battles: every pair of scored models, higher score wins, equal ties.

    Args:
        labels: The golden labels.
        models: Only pair these models (all scored models when ``None``).

    Returns:
        The battles, in label order then model-pair order.
    """
    wanted = set(models) if models is not None else None
    battles: list[Battle] = []
    for label in labels:
        names = sorted(m for m in label.scores if wanted is None or m in wanted)
        for a, b in itertools.combinations(names, 2):
            sa, sb = label.scores[a], label.scores[b]
            winner: Winner = "model_a" if sa > sb else "model_b" if sb > sa else "tie"
            battles.append(Battle(prompt=label.prompt, model_a=a, model_b=b, winner=winner, source=label.source))
    return battles


def compares(record: Battle | GoldenLabel, model_a: str, model_b: str) -> bool:
    """Whether a record says something about two models: a battle between them, or a label scoring both."""
    if isinstance(record, Battle):
        return {record.model_a, record.model_b} == {model_a, model_b}
    return model_a in record.scores and model_b in record.scores


def pair_battles(records: Iterable[Battle | GoldenLabel], model_a: str, model_b: str) -> tuple[list[Battle], int]:
    """The records that compare two models, as battles between them (golden labels scoring both compared).

    Returns:
        The battles, in record order, and how many records said nothing about the pair.
    """
    battles: list[Battle] = []
    ignored = 0
    for record in records:
        if not compares(record, model_a, model_b):
            ignored += 1
        elif isinstance(record, Battle):
            battles.append(record)
        else:
            battles += golden_to_battles([record], [model_a, model_b])
    return battles, ignored


def check_trainable(battles: Sequence[Battle]) -> list[str]:
    """Check that battles can train a router and return the sorted model names they mention.

    Raises:
        TrainingDataError: No battles, or fewer than two distinct models.
    """
    if not battles:
        raise TrainingDataError("no training battles were given")
    models = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    if len(models) < 2:
        raise TrainingDataError(f"training data names a single model ({models}); a router needs two or more")
    return models


def limit_prompts_per_source(battles: Sequence[Battle], limit: int | None) -> list[Battle]:
    """Keep the battles of each source's first ``limit`` unique prompts (deterministic; all when ``None``)."""
    if limit is None:
        return list(battles)
    seen: dict[str | None, dict[str, None]] = {}
    kept = []
    for b in battles:
        prompts = seen.setdefault(b.source, {})
        if b.prompt in prompts or len(prompts) < limit:
            prompts[b.prompt] = None
            kept.append(b)
    return kept
