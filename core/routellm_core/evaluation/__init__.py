"""Evaluation: the RouteLLM metrics (APGR, CPT, cost-quality curves) and threshold calibration.

Pure functions of scores and per-prompt quality; no router is imported here, so routers and training build on it.
"""

from routellm_core.evaluation.calibration import calibrate_threshold, calibrate_thresholds, strong_call_fraction
from routellm_core.evaluation.metrics import *  # noqa: F403
from routellm_core.evaluation.metrics import __all__ as _metrics_all
from routellm_core.evaluation.scoring import WinRateScorer

__all__ = ["WinRateScorer", "calibrate_threshold", "calibrate_thresholds", "strong_call_fraction", *_metrics_all]
