"""Error types raised by the router core and the integrations.

Every error the project raises on purpose derives from :class:`RouteLLMError`, so callers can catch one type.
The subclasses also derive from the matching built-in (``ValueError``, ``RuntimeError``...) so code that
already catches those keeps working.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

#: How alike (difflib's ratio) a mistyped name and a known one must be for an error to ask "did you mean".
CLOSE_NAME_CUTOFF = 0.8
_NUMBERS = re.compile(r"\d+")


class RouteLLMError(Exception):
    """Base class of every error raised on purpose by this project."""


class InvalidInputError(RouteLLMError, ValueError):
    """The routing input is unusable: no texts, an empty text, non-text content, no user message."""


class InvalidThresholdError(InvalidInputError):
    """A threshold or strong-call fraction is not a finite number in [0, 1]."""


class UnknownRouterError(RouteLLMError, ValueError):
    """No router of that name is registered and no checkpoint exists at that path."""


class CheckpointError(RouteLLMError, ValueError):
    """A checkpoint is missing, corrupt, crafted, or does not fit the code or embedder loading it."""


class TrainingDataError(RouteLLMError, ValueError):
    """Training or evaluation data is malformed or cannot train a router (unknown winner, one model...)."""


class NotFittedError(RouteLLMError, RuntimeError):
    """A router was asked to predict before it was fitted or loaded."""


class EmbeddingError(RouteLLMError, RuntimeError):
    """An embedder failed or returned unusable vectors (wrong shape, NaN)."""


class MissingDependencyError(RouteLLMError, ImportError):
    """An optional package is not installed; the message names the extra that installs it.

    Attributes:
        name: The package that could not be imported (as on ``ImportError``).
        extra: The ``routellm-integrations`` extra that installs it.
    """

    def __init__(self, message: str, *, name: str | None, extra: str) -> None:
        super().__init__(message, name=name)
        self.extra = extra


class ScoringError(RouteLLMError, RuntimeError):
    """A router failed while scoring, or produced unusable scores (NaN, wrong count).

    Usually a crafted or corrupt checkpoint that passed the load-time checks, or a bug in a custom router;
    the original exception is chained as ``__cause__``.
    """


class ModelCallError(RouteLLMError, RuntimeError):
    """The chosen child model failed (raised, timed out, or answered with an empty message).

    Attributes:
        model: Name of the model the router chose.
        decision: The routing decision (a ``RoutingDecision``), when one was made.
        side: ``"strong"`` or ``"weak"``: the side whose failure is raised (the fallback one after a failed
            fallback).
        fallback_model: Name of the other model when fallback was configured and tried, else ``None``.
        chunks_delivered: Streaming only: chunks already handed to the caller before the failure, else ``None``.
        attempts: The calls made (``Attempt`` entries): those paid before the failure, with their prices, and the
            failed ones, with their ``error``; the feedback store keeps the call with them.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        decision: object | None = None,
        side: str | None = None,
        fallback_model: str | None = None,
        chunks_delivered: int | None = None,
        attempts: tuple[object, ...] = (),
    ) -> None:
        super().__init__(message)
        self.model = model
        self.decision = decision
        self.side = side
        self.fallback_model = fallback_model
        self.chunks_delivered = chunks_delivered
        self.attempts = attempts


class StreamInterruptedError(ModelCallError):
    """A streamed answer failed after chunks were delivered; no fallback is possible then.

    Attributes:
        partial_text: Concatenated text of the chunks delivered before the failure.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        chunks_delivered: int,
        partial_text: str = "",
        **kwargs: object,
    ) -> None:
        super().__init__(message, model=model, chunks_delivered=chunks_delivered, **kwargs)  # type: ignore[arg-type]
        self.partial_text = partial_text


class FeedbackStoreError(RouteLLMError, RuntimeError):
    """A feedback store cannot be opened or written, or a verdict names a decision it never recorded.

    Raised for a file that is not SQLite, a SQLite file of another application or of a newer schema (such files
    are left untouched), a read-only file or folder, a database that stays locked past the busy timeout, and
    ``add_verdict`` for an unknown decision id (:class:`UnknownDecisionError`). The SQLite error, if any, is chained
    as ``__cause__``.
    """


class UnknownDecisionError(FeedbackStoreError):
    """A verdict names a decision id the feedback store never recorded (the server answers it with 404)."""


class JudgeError(RouteLLMError, RuntimeError):
    """A judge could not give a verdict: its model call failed or returned no text, or it was misused.

    An unparseable verdict is not an error: the judge returns an ``Unparseable`` outcome instead. The model's
    exception, if any, is chained as ``__cause__``.
    """


def reraise_routellm_error(exc: Exception) -> None:
    """Re-raise the project's own error (``InvalidThresholdError``, ``UnknownRouterError``...) when it is the only
    cause of a pydantic ``ValidationError``, so callers catch it by type; returns normally otherwise.

    Pydantic wraps every ``ValueError`` raised while validating a model, and the project's errors are ``ValueError`` s.
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return
    found = errors()
    if len(found) == 1:
        original = (found[0].get("ctx") or {}).get("error")
        if isinstance(original, RouteLLMError):
            raise original from None


def close_name(name: str, known: Iterable[str], cutoff: float = CLOSE_NAME_CUTOFF) -> str | None:
    """The known name a mistyped ``name`` most likely meant, for an error's "did you mean": the closest by difflib's
    ratio (case ignored), at least ``cutoff`` alike and with the same numbers (``gpt-5`` is another model than
    ``gpt-4``, not a typo of it); None when none is.
    """
    given = name.strip()
    wanted = given.lower()
    numbers = _NUMBERS.findall(wanted)
    by_lower: dict[str, str] = {}
    for candidate in known:
        lower = candidate.lower()
        if candidate != given and _NUMBERS.findall(lower) == numbers:  # "Threshold" meant "threshold"
            by_lower.setdefault(lower, candidate)
    found = difflib.get_close_matches(wanted, list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def unknown_options_error(
    owner: str, unknown: Iterable[object], valid: Iterable[str], hint: str = ""
) -> InvalidInputError:
    """The error for keyword arguments ``owner`` does not take: each one named, with the nearest of ``valid``
    ("did you mean"), then ``hint``."""
    choices = list(valid)
    named = []
    for key in unknown:
        close = close_name(str(key), choices, cutoff=0.6)
        named.append(f"{key!r} (did you mean {close!r}?)" if close else repr(key))
    noun = "option" if len(named) == 1 else "options"
    return InvalidInputError(f"{owner}: unknown {noun} {', '.join(named)}" + (f"; {hint}" if hint else ""))
