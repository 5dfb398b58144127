"""Instrumentation events emitted by :class:`~llamaindex_routellm.RouteLLM`.

Both are dispatched inside the router's own span (``RouteLLM.chat``, ``RouteLLM.acomplete``...), so their
``span_id`` is the router call's span, and the child model's span opens beneath it right after. Listen with any
LlamaIndex event handler::

    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    class Decisions(BaseEventHandler):
        def handle(self, event, **kwargs):
            if isinstance(event, RoutingDecisionEvent):
                print(event.choice, event.model, event.win_rate)

    get_dispatcher().add_event_handler(Decisions())

Neither event carries prompt text.
"""

from __future__ import annotations

from typing import Any, Literal

from llama_index.core.instrumentation.events import BaseEvent


class RoutingDecisionEvent(BaseEvent):
    """The router chose a model for a call (or continued an earlier step's choice).

    ``served`` and ``model`` say who the call goes to, as the record's fields of those names say who answered: an
    agent's step that continues a request a fallback (or an escalation) moved to the other model goes to that
    model, not to the router's ``choice``. A fallback during this call is a :class:`RoutingFallbackEvent`.

    Attributes:
        router: Router name.
        win_rate: Predicted P(strong beats weak) for the routing text.
        threshold: Threshold in force; strong is chosen when ``win_rate >= threshold``.
        choice: The router's choice, ``"strong"`` or ``"weak"``.
        served: The side the call goes to: ``choice``, or the side an earlier step of a continued request moved to.
        model: Name of the child model the call goes to (the model of ``served``; among N models: the model the
            objective picked, or the one a continued request moved to), named as in records.
        continued: The decision was continued from an earlier step of the same request (an agent's tool step), not
            scored anew.
        decision_id: The decision id, as in the response's ``additional_kwargs["routellm"]["decision_id"]``.
        ladder: Among N models (``models=[...]``): what was compared, as in the record's ``ladder`` entry (the
            models in cost order, their predictions and expected costs, the chosen model, the pair the call runs
            on); ``None`` for two models. For N models ``choice`` is the chosen model's side in that pair and
            ``win_rate`` the pair's P(strong beats weak) from the predictions.
    """

    router: str
    win_rate: float
    threshold: float
    choice: Literal["strong", "weak"]
    served: Literal["strong", "weak"]
    model: str
    continued: bool = False
    decision_id: str
    ladder: dict[str, Any] | None = None

    @classmethod
    def class_name(cls) -> str:
        return "RoutingDecisionEvent"


class RoutingFallbackEvent(BaseEvent):
    """The chosen model failed and ``fallback=True`` sent the call to the other model.

    Attributes:
        failed_choice: Role of the model that failed (the router's choice; the strong side when an escalation
            failed).
        failed_model: Name of the model that failed.
        fallback_choice: Role of the model that answers instead.
        fallback_model: Name of the model that answers instead.
        error: Type and message of the failure.
        decision_id: The decision id.
    """

    failed_choice: Literal["strong", "weak"]
    failed_model: str
    fallback_choice: Literal["strong", "weak"]
    fallback_model: str
    error: str
    decision_id: str

    @classmethod
    def class_name(cls) -> str:
        return "RoutingFallbackEvent"
