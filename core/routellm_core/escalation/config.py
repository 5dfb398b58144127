"""``Escalation``: how a routed call escalates from a cheap answer to the strong model (its settings, and the shipped
calibration a ``share`` starts from)."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from routellm_core.decisions import check_threshold
from routellm_core.errors import CheckpointError, InvalidInputError
from routellm_core.escalation.answers import Extractor
from routellm_core.escalation.checks import CHECKS, AgreementCheck, AnswerFeaturesCheck, Check, LogisticCombiner

#: Confidence below which the call escalates when neither ``threshold`` nor ``share`` is given: for agreement,
#: "the check answer disagrees".
DEFAULT_THRESHOLD = 0.5
#: Under ``share``: how many recent checked calls the threshold follows.
DEFAULT_SHARE_WINDOW = 200
#: The shipped calibration of ``share`` (built by ``scripts/calibrate_escalation_share.py``).
SHARE_CALIBRATION = Path(__file__).resolve().parent / "share_calibration.json"
#: The prior of a check without shipped calibration: the uniform distribution's quantiles (threshold ``s`` first).
UNIFORM_PRIOR: tuple[float, ...] = tuple((i + 0.5) / 100 for i in range(100))


@dataclass(frozen=True)
class Escalation:
    """Answer with the cheap model first; escalate to the strong model when a check is not confident.

    The prompt router still applies first: above its own threshold a call goes straight to the strong model.

    Attributes:
        second: The model giving the second cheap answer for the agreement check; None = sample the weak (first
            cheap) model again.
        check: A built-in check name (``"agreement"``, ``"answer_features"``, ``"logprobs"``,
            ``"self_verification"``, ``"combined"``: the shipped fitted combiner), a
            :class:`~routellm_core.escalation.checks.Check` object, or the folder of a saved
            :class:`~routellm_core.escalation.checks.LogisticCombiner` (e.g. one ``routellm train --combiner-out``
            wrote).
        threshold: Escalate when the check's confidence is below it (in [0, 1]).
        share: Instead of a threshold, the share of the checked (not pre-routed) calls to escalate, in [0, 1]: the
            threshold in force starts from the shipped calibration (:meth:`prior`) and then follows the last
            ``window`` checked calls' confidences (:mod:`routellm_core.routing.tracking`; a tie at the threshold, such
            as the agreement check's 0/1, is split by a draw fixed per decision). Not both; neither =
            :data:`DEFAULT_THRESHOLD`.
        extract: A final-answer extractor for the agreement check (answer -> comparable key, None = no answer).
        window: Under ``share``: how many recent checked calls the threshold follows (at least 10).
        climb: Among N models (``models=[...]``) only: climb the price ladder rung by rung instead of one step
            (:mod:`routellm_core.routing.climb`): the chosen model and the next costlier one predicted better answer
            together, and the check compares them (the next rung gives the second answer, so ``second`` must be
            None); when it is confident the dearer answer is served, otherwise the next rung answers and is checked
            against the previous one, up to the best-predicted model, served as it is. A check that reads one
            answer checks each rung's own answer. Off (the default): the chosen model's answer is checked against
            ``second`` and an escalation goes straight to the best-predicted costlier model.

    Raises:
        InvalidThresholdError: ``threshold`` or ``share`` is not a number in [0, 1].
        InvalidInputError: Both ``threshold`` and ``share`` are given, the check name is unknown, ``extract`` is
            not callable, ``window`` is not an int >= 10, or ``climb`` with a ``second`` model.
    """

    second: Any = None
    check: str | Check = "agreement"
    threshold: float | None = None
    share: float | None = None
    extract: Extractor | None = None
    window: int = DEFAULT_SHARE_WINDOW
    climb: bool = False

    def __post_init__(self) -> None:
        if self.threshold is not None and self.share is not None:
            raise InvalidInputError("give either threshold or share to Escalation, not both")
        if self.threshold is not None:
            object.__setattr__(self, "threshold", check_threshold(self.threshold, "Escalation threshold"))
        if self.share is not None:
            object.__setattr__(self, "share", check_threshold(self.share, "Escalation share"))
        if isinstance(self.check, os.PathLike):
            object.__setattr__(self, "check", os.fspath(self.check))
        if isinstance(self.check, str):
            if self.check not in CHECKS and not (Path(self.check).expanduser() / "config.json").is_file():
                raise InvalidInputError(
                    f"unknown escalation check {self.check!r}; expected one of {list(CHECKS)} or the folder of a "
                    "saved LogisticCombiner"
                )
        elif not isinstance(self.check, Check):
            raise InvalidInputError(
                f"check must be a check name ({list(CHECKS)}) or an object with signals() and confidence(), "
                f"got {type(self.check).__name__}"
            )
        if self.extract is not None and not callable(self.extract):
            raise InvalidInputError("extract must be a callable (answer -> comparable key or None)")
        if isinstance(self.second, str) and not self.second.strip():
            raise InvalidInputError("second must be a model name, a model, or None (sample the weak model again)")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 10:
            raise InvalidInputError(f"window must be an int >= 10 (recent checked calls), got {self.window!r}")
        if not isinstance(self.climb, bool):
            raise InvalidInputError(f"climb must be True or False, got {self.climb!r:.60}")
        if self.climb and self.second is not None:
            raise InvalidInputError(
                "Escalation(climb=True) takes its second answer from the next model up the ladder; leave second=None"
            )

    @property
    def effective_threshold(self) -> float | None:
        """The threshold in force: ``threshold``, else :data:`DEFAULT_THRESHOLD` unless a ``share`` is to be
        calibrated (then None)."""
        if self.threshold is not None:
            return self.threshold
        return None if self.share is not None else DEFAULT_THRESHOLD

    def make_check(self) -> Check:
        """The check object (a fresh built-in one for a name; ``extract`` goes to the agreement check)."""
        if not isinstance(self.check, str):
            return self.check
        if self.check == "agreement":
            return AgreementCheck(extract=self.extract)
        if self.check not in CHECKS:  # a saved combiner's folder
            return LogisticCombiner.load(Path(self.check).expanduser())
        return CHECKS[self.check]()

    def prior(self) -> tuple[float, ...]:
        """The check's confidence distribution before any call (100 quantiles): the shipped calibration for the
        built-in ``agreement`` (not on embeddings) and ``answer_features`` checks, else :data:`UNIFORM_PRIOR`."""
        check = self.check
        if isinstance(check, str):
            name = check
        elif isinstance(check, AgreementCheck) and check.kind != "embedding":
            name = "agreement"
        elif isinstance(check, AnswerFeaturesCheck):
            name = "answer_features"
        else:
            return UNIFORM_PRIOR
        return shipped_share_priors().get(name, UNIFORM_PRIOR)


@functools.cache
def shipped_share_priors() -> dict[str, tuple[float, ...]]:
    """Check name -> the shipped quantiles of its confidence (:data:`SHARE_CALIBRATION`).

    Raises:
        CheckpointError: The file is missing or malformed.
    """
    try:
        document = json.loads(SHARE_CALIBRATION.read_text(encoding="utf-8"))
        checks = document["checks"]
        out = {str(name): tuple(float(q) for q in entry["quantiles"]) for name, entry in checks.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"cannot read the escalation share calibration {SHARE_CALIBRATION}: {exc}") from None
    if any(not q or any(not 0.0 <= x <= 1.0 for x in q) for q in out.values()):
        raise CheckpointError(f"{SHARE_CALIBRATION}: quantiles must be non-empty and in [0, 1]")
    return out


__all__ = ["DEFAULT_SHARE_WINDOW", "DEFAULT_THRESHOLD", "UNIFORM_PRIOR", "Escalation", "shipped_share_priors"]
