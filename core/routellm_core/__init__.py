"""routellm_core: win-prediction routers, their training, calibration and evaluation.

Example:
    >>> from routellm_core import load_router
    >>> router = load_router("default")
    >>> router.route(["What is 2 + 2?"], threshold=0.5)
"""

from routellm_core.data.prices import call_cost, price_of
from routellm_core.data.records import Battle, GoldenLabel, golden_to_battles
from routellm_core.decisions import RoutingDecision, check_threshold
from routellm_core.embedding.embedders import Embedder, default_embedder
from routellm_core.errors import (
    CheckpointError,
    EmbeddingError,
    FeedbackStoreError,
    InvalidInputError,
    InvalidThresholdError,
    JudgeError,
    MissingDependencyError,
    ModelCallError,
    NotFittedError,
    RouteLLMError,
    ScoringError,
    StreamInterruptedError,
    TrainingDataError,
    UnknownDecisionError,
    UnknownRouterError,
)
from routellm_core.escalation import Escalation, evaluate_escalation
from routellm_core.escalation.ladder import LadderCurve, evaluate_ladder
from routellm_core.evaluation.calibration import calibrate_threshold, calibrate_thresholds, strong_call_fraction
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE, WinRateModel
from routellm_core.routers.profiles import ModelPrior, UnknownModelError
from routellm_core.routers.registry import (
    available_routers,
    get_router_class,
    load_checkpoint,
    load_router,
    pretrained_routers,
    register_router,
)
from routellm_core.routing.objective import Objective

__all__ = [
    "STRONG_REFERENCE",
    "WEAK_REFERENCE",
    "Battle",
    "CheckpointError",
    "Embedder",
    "EmbeddingError",
    "Escalation",
    "FeedbackStoreError",
    "GoldenLabel",
    "InvalidInputError",
    "InvalidThresholdError",
    "JudgeError",
    "LadderCurve",
    "MissingDependencyError",
    "ModelCallError",
    "ModelPrior",
    "NotFittedError",
    "Objective",
    "RouteLLMError",
    "RoutingDecision",
    "ScoringError",
    "StreamInterruptedError",
    "TrainingDataError",
    "UnknownDecisionError",
    "UnknownModelError",
    "UnknownRouterError",
    "WinRateModel",
    "available_routers",
    "calibrate_threshold",
    "calibrate_thresholds",
    "call_cost",
    "check_threshold",
    "default_embedder",
    "evaluate_escalation",
    "evaluate_ladder",
    "get_router_class",
    "golden_to_battles",
    "load_checkpoint",
    "load_router",
    "pretrained_routers",
    "price_of",
    "register_router",
    "strong_call_fraction",
]
