"""Win-prediction routers. Import concrete classes from their modules or get them by name from the registry."""

from routellm_core.decisions import RoutingDecision
from routellm_core.routers.base import STRONG_REFERENCE, WEAK_REFERENCE, WinRateModel

__all__ = ["STRONG_REFERENCE", "WEAK_REFERENCE", "RoutingDecision", "WinRateModel"]
