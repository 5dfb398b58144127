"""Escalation: a cheap model answers first, a check scores confidence in that answer, and below the threshold the
call goes to the strong model (the prompt router still pre-routes the prompts it is sure about).

Layer: between evaluation and routers (imports data, embedding, evaluation, decisions and errors only).
This package holds the checks, the configuration object and the offline evaluation; the online (in-call) escalation
runs in the routed-call engine (:mod:`routellm_core.routing.cascade`).
"""

from routellm_core.escalation.answers import (
    ANSWER_KINDS,
    answers_agree,
    extract_choice,
    extract_json,
    extract_number,
    extract_tool_calls,
    is_refusal,
    normalise_answer,
    normalise_text,
)
from routellm_core.escalation.checks import (
    CHECKS,
    AgreementCheck,
    AnswerFeaturesCheck,
    Check,
    CheckInput,
    LogisticCombiner,
    LogprobCheck,
    SelfVerificationCheck,
)
from routellm_core.escalation.config import Escalation
from routellm_core.escalation.evaluate import EscalationCurve, evaluate_escalation

__all__ = [
    "ANSWER_KINDS",
    "CHECKS",
    "AgreementCheck",
    "AnswerFeaturesCheck",
    "Check",
    "CheckInput",
    "Escalation",
    "EscalationCurve",
    "LogisticCombiner",
    "LogprobCheck",
    "SelfVerificationCheck",
    "answers_agree",
    "evaluate_escalation",
    "extract_choice",
    "extract_json",
    "extract_number",
    "extract_tool_calls",
    "is_refusal",
    "normalise_answer",
    "normalise_text",
]
