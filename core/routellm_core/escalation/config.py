"""``Escalation``: how a routed call escalates from a cheap answer to the strong model (configuration only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from routellm_core.decisions import check_threshold
from routellm_core.errors import InvalidInputError
from routellm_core.escalation.answers import Extractor
from routellm_core.escalation.checks import CHECKS, AgreementCheck, Check

#: Confidence below which the call escalates when neither ``threshold`` nor ``share`` is given: for agreement,
#: "the check answer disagrees".
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Escalation:
    """Answer with the cheap model first; escalate to the strong model when a check is not confident.

    The prompt router still applies first: above its own threshold a call goes straight to the strong model.

    Attributes:
        second: The model giving the second cheap answer for the agreement check; None = sample the weak (first
            cheap) model again.
        check: A built-in check name (``"agreement"``, ``"answer_features"``, ``"logprobs"``,
            ``"self_verification"``, ``"combined"``) or a
            :class:`~routellm_core.escalation.checks.Check` object.
        threshold: Escalate when the check's confidence is below it (in [0, 1]).
        share: Instead of a threshold, the share of non-pre-routed calls to escalate (in [0, 1]; a threshold is
            calibrated to it). Not both; neither = :data:`DEFAULT_THRESHOLD`.
        extract: A final-answer extractor for the agreement check (answer -> comparable key, None = no answer).

    Raises:
        InvalidThresholdError: ``threshold`` or ``share`` is not a number in [0, 1].
        InvalidInputError: Both ``threshold`` and ``share`` are given, the check name is unknown, or ``extract`` is
            not callable.
    """

    second: Any = None
    check: str | Check = "agreement"
    threshold: float | None = None
    share: float | None = None
    extract: Extractor | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and self.share is not None:
            raise InvalidInputError("give either threshold or share to Escalation, not both")
        if self.threshold is not None:
            object.__setattr__(self, "threshold", check_threshold(self.threshold, "Escalation threshold"))
        if self.share is not None:
            object.__setattr__(self, "share", check_threshold(self.share, "Escalation share"))
        if isinstance(self.check, str):
            if self.check not in CHECKS:
                raise InvalidInputError(f"unknown escalation check {self.check!r}; expected one of {list(CHECKS)}")
        elif not isinstance(self.check, Check):
            raise InvalidInputError(
                f"check must be a check name ({list(CHECKS)}) or an object with signals() and confidence(), "
                f"got {type(self.check).__name__}"
            )
        if self.extract is not None and not callable(self.extract):
            raise InvalidInputError("extract must be a callable (answer -> comparable key or None)")
        if isinstance(self.second, str) and not self.second.strip():
            raise InvalidInputError("second must be a model name, a model, or None (sample the weak model again)")

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
        return CHECKS[self.check]()


__all__ = ["DEFAULT_THRESHOLD", "Escalation"]
