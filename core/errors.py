"""Error types raised by the router core and the integrations.

Every error the project raises on purpose derives from :class:`RouteLLMError`, so callers can catch one type.
The subclasses also derive from the matching built-in (``ValueError``, ``RuntimeError``...) so code that
already catches those keeps working.
"""

from __future__ import annotations


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


class ModelCallError(RouteLLMError, RuntimeError):
    """The chosen child model failed; the message names that model and the routing decision."""

    def __init__(self, message: str, *, model: str, decision: object | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.decision = decision
