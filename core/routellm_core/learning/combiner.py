"""Refit the escalation combiner from a feedback store: the signals each routed call recorded, labelled by verdicts.

A routed call under ``Escalation(check="combined")`` records, on its weak ``answer`` attempt, every signal the
combiner read (:meth:`~routellm_core.learning.feedback.FeedbackStore.record_decision`). A verdict on that call says
whether the weak answer was good, but only when the weak answer is what was served (the attempt was ``kept``): then a
label from the store reads as

- ``model_b`` (the weak model won: verdict ``"weak"``) or ``tie`` (verdict ``"good"``): the cheap answer was good, 1;
- ``model_a`` (the strong model won: verdict ``"strong"`` or ``"bad"``) or ``tie (bothbad)``: it was not, 0.

A decision that escalated is left out: its verdict is about the strong model's answer, and the weak answer nobody saw
(a ``"bad"`` verdict there only *assumes* the weak model no better). Labels are read from the sources in
:data:`COMBINER_SOURCES`, most trusted first (golden, then the user's, then the judge's, which compared that very
served answer); a decision labelled by several counts once.

The refit is warm-started: the prior combiner's (by default the shipped one's) signals and standardisation are kept
and the ridge penalty pulls every weight toward the prior's (:meth:`LogisticCombiner.fit_signals` with ``prior``), so
a few hundred labels adjust it to your traffic without forgetting what the shared data taught. Only kept answers get
labels (answers the prior was already fairly sure of), which is one more reason to stay near the prior.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from routellm_core.errors import InvalidInputError, TrainingDataError
from routellm_core.escalation.checks import LogisticCombiner, shipped_combiner
from routellm_core.learning.feedback import LABEL_SOURCES, FeedbackStore

#: Fewest labelled decisions a refit accepts.
MIN_COMBINER_LABELS = 20
#: Label sources read, most trusted first (a decision labelled by several counts once, by the first).
COMBINER_SOURCES: tuple[str, ...] = ("golden", "user", "judge")
#: Ridge strength of the pull toward the prior's weights (on standardised signals; the intercept too).
REFIT_L2 = 10.0
#: Winner (``model_a`` = strong, ``model_b`` = weak) -> was the served weak answer good?
_GOOD: dict[str, float] = {"model_b": 1.0, "tie": 1.0, "model_a": 0.0, "tie (bothbad)": 0.0}


@dataclass(frozen=True)
class CombinerData:
    """The store's labelled combiner rows.

    Attributes:
        signals: Signal name -> one value per labelled decision.
        labels: 1 where the served weak answer was good, else 0.
        decision_ids: The labelled decisions, in store order.
        skipped: Decisions left out, by reason.
    """

    signals: dict[str, np.ndarray]
    labels: np.ndarray
    decision_ids: list[str]
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.decision_ids)


def combiner_training_data(
    store: FeedbackStore, names: Sequence[str], *, sources: Iterable[str] = COMBINER_SOURCES
) -> CombinerData:
    """The decisions of ``store`` whose served weak answer carries the signals ``names`` and has a label.

    Raises:
        InvalidInputError: An unknown label source, or no signal names.
    """
    order = list(sources)
    unknown = [s for s in order if s not in LABEL_SOURCES]
    if unknown or not order:
        raise InvalidInputError(f"label sources must be some of {list(LABEL_SOURCES)}, got {order}")
    if not names:
        raise InvalidInputError("no signal names to read from the store")
    rank = {s: i for i, s in enumerate(order)}
    best: dict[str, tuple[int, str]] = {}
    for row in store.labels(order):  # type: ignore[arg-type]
        if row.decision_id is None:
            continue
        seen = best.get(row.decision_id)
        if seen is None or rank[row.source] < seen[0]:
            best[row.decision_id] = (rank[row.source], row.winner)
    skipped: Counter[str] = Counter()
    values: dict[str, list[float]] = {n: [] for n in names}
    labels: list[float] = []
    ids: list[str] = []
    for decision in store.decisions():
        record = decision.record
        answer = next((a for a in record.attempts if a.role == "answer" and a.side == "weak"), None)
        if answer is None or not answer.signals:
            skipped["no checked weak answer"] += 1
        elif not all(n in answer.signals for n in names):
            skipped["other signals (another check)"] += 1
        elif not answer.kept or record.served != "weak":
            skipped["escalated (weak answer not served)"] += 1
        elif decision.decision_id not in best:
            skipped["no label"] += 1
        else:
            for n in names:
                values[n].append(float(answer.signals[n]))
            labels.append(_GOOD[best[decision.decision_id][1]])
            ids.append(decision.decision_id)
    return CombinerData(
        {n: np.asarray(v, dtype=np.float64) for n, v in values.items()},
        np.asarray(labels, dtype=np.float64),
        ids,
        dict(skipped),
    )


def refit_combiner(
    store: FeedbackStore,
    *,
    prior: LogisticCombiner | None = None,
    l2: float = REFIT_L2,
    min_labels: int = MIN_COMBINER_LABELS,
    sources: Iterable[str] = COMBINER_SOURCES,
) -> tuple[LogisticCombiner, CombinerData]:
    """Refit the escalation combiner on the store's labelled decisions, warm-started from ``prior``.

    Args:
        store: The feedback store.
        prior: A fitted combiner to start from and stay near (default: the shipped one).
        l2: Ridge strength toward the prior's weights.
        min_labels: Fewest labelled decisions accepted.
        sources: Label sources read, most trusted first.

    Returns:
        The refitted combiner (same checks and signals as the prior) and the rows it was fitted on.

    Raises:
        TrainingDataError: Fewer than ``min_labels`` labelled decisions (the message says what was left out).
    """
    if isinstance(min_labels, bool) or not isinstance(min_labels, int) or min_labels < 1:
        raise InvalidInputError(f"min_labels must be a positive integer, got {min_labels!r}")
    base = prior if prior is not None else shipped_combiner()
    base._check_fitted()
    data = combiner_training_data(store, base.feature_names_, sources=sources)
    if len(data) < min_labels:
        left = ", ".join(f"{n} {why}" for why, n in sorted(data.skipped.items())) or "none recorded"
        raise TrainingDataError(
            f"refitting the escalation combiner needs at least {min_labels} labelled decisions whose served weak "
            f"answer carries the combiner's signals (recorded under Escalation(check='combined')); the store has "
            f"{len(data)} (left out: {left})"
        )
    combiner = LogisticCombiner(
        checks=base.checks,
        use_win_rate=base.use_win_rate,
        l2=l2,
        max_iter=base.max_iter,
        signal_names=tuple(base.feature_names_),
    )
    combiner.fit_signals(data.signals, data.labels, prior=base)
    combiner.metadata_ = {
        "refit_from": "feedback store",
        "n_labelled_decisions": len(data),
        "good_share": float(data.labels.mean()),
        "sources": list(sources),
        "prior": getattr(base, "metadata_", {}).get("recipe", "a fitted combiner"),
        "skipped": data.skipped,
    }
    return combiner, data


__all__ = [
    "COMBINER_SOURCES",
    "MIN_COMBINER_LABELS",
    "REFIT_L2",
    "CombinerData",
    "combiner_training_data",
    "refit_combiner",
]
