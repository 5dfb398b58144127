"""Leave-one-benchmark-out, honestly: drop training prompts that duplicate a held-out benchmark's prompts.

Training sources overlap the benchmarks: MMLU-Pro re-options 6,810 MMLU questions, DC-Router wraps GSM8K test
questions in instructions. :func:`drop_eval_overlap` finds such copies by word sequences (see its docstring);
published contamination lists are handled by :func:`~routellm_core.data.drop_contaminated`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from routellm_core.data.benchmarks import benchmark_prompts
from routellm_core.data.catalog import check_benchmark_name
from routellm_core.data.records import Battle, GoldenLabel
from routellm_core.data.workspace import root

R = TypeVar("R", Battle, GoldenLabel)

_WORD_RE = re.compile(r"\w+")
_OPTION_RE = re.compile(r"\n\s*A[.)]\s")
#: Eval texts with at least this many words also match when contained in a training prompt.
_CONTAIN_MIN_WORDS = 10
_HASH_BASE = 1_000_003
_MASK64 = (1 << 64) - 1


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def _stem(text: str) -> str:
    """The question part of a multiple-choice prompt (before the ``A.`` option line)."""
    m = _OPTION_RE.search(text)
    return text[: m.start()] if m else text


def _anchor(words: Sequence[str]) -> int:
    """Hash of the first ``_CONTAIN_MIN_WORDS`` words, equal to :func:`_window_hashes` at that window."""
    h = 0
    for w in words[:_CONTAIN_MIN_WORDS]:
        h = (h * _HASH_BASE + (hash(w) & _MASK64)) & _MASK64
    return h


def _window_hashes(word_lists: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every window of ``_CONTAIN_MIN_WORDS`` words inside each list, and each window's list index."""
    k = _CONTAIN_MIN_WORDS
    lengths = np.fromiter((len(w) for w in word_lists), dtype=np.int64, count=len(word_lists))
    total = int(lengths.sum())
    if total < k:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    t = np.fromiter((hash(w) for ws in word_lists for w in ws), dtype=np.int64, count=total).view(np.uint64)
    doc = np.repeat(np.arange(len(word_lists)), lengths)
    n = total - k + 1
    h = np.zeros(n, dtype=np.uint64)
    base = np.uint64(_HASH_BASE)
    for j in range(k):
        h = h * base + t[j : j + n]
    inside = doc[:n] == doc[k - 1 :]
    return h[inside], doc[:n][inside]


class _EvalIndex:
    """Normalised eval texts: exact word-sequence matches, plus containment for texts of 10+ words."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.exact: set[str] = set()
        self.anchors: dict[int, list[str]] = {}
        for text in texts:
            for part in {text, _stem(text)}:
                words = _words(part)
                if not words:
                    continue
                key = " ".join(words)
                self.exact.add(key)
                if len(words) >= _CONTAIN_MIN_WORDS:
                    self.anchors.setdefault(_anchor(words), []).append(key)
        self.anchor_array = np.fromiter(self.anchors, dtype=np.uint64, count=len(self.anchors))

    def matches(self, prompts: Sequence[str]) -> np.ndarray:
        """Boolean mask: the prompt equals, or contains, an eval text (word sequences, case-folded)."""
        word_lists = [_words(p) for p in prompts]
        hit = np.zeros(len(prompts), dtype=bool)
        for i, (prompt, words) in enumerate(zip(prompts, word_lists)):
            stem = _stem(prompt)
            hit[i] = " ".join(words) in self.exact or (stem is not prompt and " ".join(_words(stem)) in self.exact)
        hashes, docs = _window_hashes(word_lists)
        found = np.flatnonzero(np.isin(hashes, self.anchor_array))
        joined: dict[int, str] = {}
        for pos in found:
            d = int(docs[pos])
            if hit[d]:
                continue
            if d not in joined:
                joined[d] = " " + " ".join(word_lists[d]) + " "
            hit[d] = any(f" {key} " in joined[d] for key in self.anchors[int(hashes[pos])])
        return hit


@functools.lru_cache(maxsize=8)
def _eval_index(root: str, names: tuple[str, ...]) -> _EvalIndex:
    texts: list[str] = []
    for name in names:
        texts.extend(benchmark_prompts(root, name))
    return _EvalIndex(texts)


def containing(prompts: Sequence[str], texts: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``prompts``: the prompt equals, or contains, one of ``texts``, matched as
    :func:`drop_eval_overlap` matches (word sequences; containment for texts of 10+ words)."""
    if not len(prompts) or not len(texts):
        return np.zeros(len(prompts), dtype=bool)
    return _EvalIndex(texts).matches(prompts)


def drop_eval_overlap(records: Sequence[R], names: Sequence[str]) -> list[R]:
    """Drop battles or golden labels whose prompt duplicates an eval prompt of the named benchmarks.

    Matching is on lower-cased word sequences (punctuation and whitespace ignored): a record is dropped when
    its prompt, or the question part of a multiple-choice prompt (before its ``A.`` line), equals an eval
    prompt or its question part, or when it contains an eval text of 10+ words (e.g. a GSM8K question wrapped
    in an instruction, an MMLU question re-optioned in MMLU-Pro, a MATH problem inside a DC-Router prompt).
    Every prompt of each benchmark counts, contaminated ones included; contaminated-list entries are handled by
    :func:`~routellm_core.data.drop_contaminated`.

    Args:
        records: Battles or golden labels.
        names: Benchmarks to match against (:data:`~routellm_core.data.BENCHMARKS`).

    Raises:
        TrainingDataError: Unknown benchmark name.
    """
    keys = tuple(sorted({check_benchmark_name(n) for n in names}))
    if not keys or not records:
        return list(records)
    mask = _eval_index(root(), keys).matches([r.prompt for r in records])
    return [r for r, bad in zip(records, mask) if not bad]
