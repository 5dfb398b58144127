"""Training battles from the shared sources, with honest leave-one-benchmark-out.

Sources (:data:`~routellm_core.data.TRAINING_SOURCES`): the RouteLLM benchmarks ``mmlu``, ``gsm8k``, ``mt_bench``
(GPT-4 vs Mixtral golden labels), ``dcrouter`` (train split, 9 models), ``mmlu_pro`` (30 models), ``crux`` and
``math_l5`` (ZeroEval, 48 and 40 models), all golden labels turned into battles, and ``arena`` (Chatbot Arena's
human votes, used as they are).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Sequence

from routellm_core.data.benchmarks import golden_labels_gsm8k, golden_labels_mmlu, golden_labels_mt_bench
from routellm_core.data.catalog import check_benchmark_name, check_source_names
from routellm_core.data.contamination import drop_contaminated
from routellm_core.data.corpora import (
    arena_battles,
    golden_labels_crux,
    golden_labels_dcrouter,
    golden_labels_math_l5,
    golden_labels_mmlu_pro,
)
from routellm_core.data.overlap import drop_eval_overlap
from routellm_core.data.records import Battle, GoldenLabel, Winner, golden_to_battles
from routellm_core.data.workspace import root
from routellm_core.errors import TrainingDataError

#: Golden-label sources -> their loader (``arena`` is battles already).
_LABEL_SOURCES = {
    "mmlu": golden_labels_mmlu,
    "gsm8k": golden_labels_gsm8k,
    "mt_bench": golden_labels_mt_bench,
    "dcrouter": golden_labels_dcrouter,
    "mmlu_pro": golden_labels_mmlu_pro,
    "crux": golden_labels_crux,
    "math_l5": golden_labels_math_l5,
}


@functools.lru_cache(maxsize=64)
def _pair_table(n_models: int) -> tuple[tuple[int, int], ...]:
    return tuple(itertools.combinations(range(n_models), 2))


def _sampled_battles(labels: Sequence[GoldenLabel], max_pairs: int | None, rng: random.Random) -> list[Battle]:
    battles: list[Battle] = []
    for label in labels:
        n_models = len(label.scores)
        n_pairs = n_models * (n_models - 1) // 2
        if max_pairs is None or n_pairs <= max_pairs:
            battles.extend(golden_to_battles([label]))
            continue
        names = sorted(label.scores)
        table = _pair_table(n_models)
        for j in sorted(rng.sample(range(n_pairs), max_pairs)):
            a, b = names[table[j][0]], names[table[j][1]]
            sa, sb = label.scores[a], label.scores[b]
            winner: Winner = "model_a" if sa > sb else "model_b" if sb > sa else "tie"
            battles.append(Battle(prompt=label.prompt, model_a=a, model_b=b, winner=winner, source=label.source))
    return battles


def _source_records(name: str, exclude: tuple[str, ...]) -> list[Battle] | list[GoldenLabel]:
    """One source's records (Arena's battles, every other source's golden labels), held-out benchmarks removed."""
    if name == "arena":
        return drop_eval_overlap(drop_contaminated(arena_battles(), exclude), exclude)
    labels = _LABEL_SOURCES[name]()
    return drop_eval_overlap(drop_contaminated(labels, exclude), exclude) if exclude else labels


@functools.lru_cache(maxsize=4)
def _training_battles(
    root: str, sources: tuple[str, ...], exclude: tuple[str, ...], max_pairs: int | None, seed: int
) -> tuple[Battle, ...]:
    rng = random.Random(seed)
    battles: list[Battle] = []
    for name in sources:
        if name in exclude:
            continue
        records = _source_records(name, exclude)
        if name == "arena":
            battles.extend(records)  # type: ignore[arg-type]
            continue
        battles.extend(_sampled_battles(records, max_pairs, rng))  # type: ignore[arg-type]
    return tuple(battles)


@functools.lru_cache(maxsize=4)
def _training_labels(root: str, sources: tuple[str, ...], exclude: tuple[str, ...]) -> tuple[Battle | GoldenLabel, ...]:
    return tuple(r for name in sources if name not in exclude for r in _source_records(name, exclude))


def training_labels(sources: Sequence[str], exclude: Sequence[str] = ()) -> list[Battle | GoldenLabel]:
    """The records of named shared sources as they are: golden labels (every scored model kept), Arena's battles.

    The same sources and the same leave-one-benchmark-out rule as :func:`training_battles`, for routers that learn
    from per-model scores directly (``difficulty``) rather than from sampled pairs.

    Raises:
        TrainingDataError: Unknown source or benchmark name.
    """
    srcs = check_source_names(sources)
    excl = tuple(sorted({check_benchmark_name(e) for e in exclude}))
    return list(_training_labels(root(), srcs, excl))


def training_battles(
    sources: Sequence[str],
    exclude: Sequence[str] = (),
    *,
    max_pairs_per_prompt: int | None = 8,
    seed: int = 0,
) -> list[Battle]:
    """Battles from named shared sources, for training with honest leave-one-benchmark-out.

    Golden labels become battles through :func:`~routellm_core.data.records.golden_to_battles` (higher score wins,
    equal scores tie). A prompt with ``m`` scored models has ``m(m-1)/2`` pairs: 1 for MMLU/GSM8K/MT Bench,
    36 for DC-Router (9 models), up to 435 for MMLU-Pro (30 models), 1,128 for CRUX (48) and 780 for MATH-L5 (40).
    To keep training sets manageable, a prompt with more than ``max_pairs_per_prompt`` pairs gets that many pairs
    drawn uniformly without replacement (seeded): with the default 8, DC-Router gives ~45k battles, MMLU-Pro ~96k,
    CRUX 6,400 and MATH-L5 5,768, each model still meeting every other across prompts. ``None`` keeps every pair.
    Arena's 769 human-vote battles are used as they are (one pair each).

    Args:
        sources: Any of :data:`~routellm_core.data.TRAINING_SOURCES`: ``"mmlu"``, ``"gsm8k"``, ``"mt_bench"``,
            ``"dcrouter"`` (train split), ``"mmlu_pro"``, ``"arena"``, ``"crux"``, ``"math_l5"``.
        exclude: Benchmarks held out for evaluation (any of :data:`~routellm_core.data.BENCHMARKS`: ``"mmlu"``,
            ``"gsm8k"``, ``"mt_bench"``, ``"crux"``, ``"math_l5"``). Their own source is skipped, and from every
            other source we drop prompts in their contamination lists (:func:`~routellm_core.data.drop_contaminated`)
            and copies of their eval prompts (:func:`~routellm_core.data.drop_eval_overlap`).
        max_pairs_per_prompt: Pairs sampled per prompt when a prompt has more; ``None`` for all pairs.
        seed: Seed of the pair sampling.

    Raises:
        TrainingDataError: Unknown source or benchmark name, or a bad ``max_pairs_per_prompt``.
    """
    srcs = check_source_names(sources)
    excl = tuple(sorted({check_benchmark_name(e) for e in exclude}))
    if max_pairs_per_prompt is not None and (isinstance(max_pairs_per_prompt, bool) or max_pairs_per_prompt < 1):
        raise TrainingDataError(f"max_pairs_per_prompt must be a positive int or None, got {max_pairs_per_prompt!r}")
    return list(_training_battles(root(), srcs, excl, max_pairs_per_prompt, seed))
