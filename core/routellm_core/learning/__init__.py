"""Learning the user's traffic: the feedback store, judges, background labelling and the traffic report.

Sits above the routers (the report retrains and scores them) and below the request path (which records into it).
"""

from routellm_core.learning.feedback import DecisionRecord, FeedbackStore
from routellm_core.learning.judging import PairwiseJudge
from routellm_core.learning.labelling import Labeller, TrafficLabelling, traffic_labelling

__all__ = ["DecisionRecord", "FeedbackStore", "Labeller", "PairwiseJudge", "TrafficLabelling", "traffic_labelling"]
