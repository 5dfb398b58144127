"""The escalation step of a routed call: the cheap answer, its check, and the decision to keep it or escalate.

Under ``escalate=Escalation(...)`` a call the prompt router sends to the weak side runs as a cascade:

1. the weak model answers and, when the check compares answers, the *second* cheap model (another model, or the
   weak one sampled again at :data:`SAMPLE_TEMPERATURE`) answers too, concurrently (one sequential step);
2. the check scores its confidence in the weak answer (:mod:`routellm_core.escalation.checks`): at or above the
   escalation threshold the weak answer is served; below it (or when the weak answer failed or came back empty)
   the strong model is called and serves. Under ``Escalation(share=s)`` the threshold in force follows the recent
   checked calls' confidences (:class:`~routellm_core.routing.tracking.QuantileTracker`, started from the shipped
   calibration) so that about ``s`` of them escalate (a tie at the threshold is split by the decision id);
3. every call is one :class:`~routellm_core.decisions.Attempt` of the record (model, role, signals, confidence,
   tokens, cost), so the record says what was paid and why the answer came from where it did.

A call the prompt router sends to strong (the *pre-route*) skips the cheap attempt, and a continued agent step stays
on the model that served the step before. This module holds the rules; :class:`~routellm_core.routing.engine.
RoutingEngine` drives them (sync and async). Among N models (:mod:`routellm_core.routing.ladder`) a call runs on a
pair whose strong side is the best-predicted model above the chosen one, so these rules take one step up the ladder;
``Escalation(climb=True)`` climbs it rung by rung instead (:mod:`routellm_core.routing.climb`, with this module's
check and pricing).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from routellm_core.decisions import (
    RESAMPLED_SUFFIX,
    VERIFY_SUFFIX,
    Attempt,
    AttemptRole,
    Route,
    ServedDecision,
    Side,
)
from routellm_core.errors import InvalidInputError
from routellm_core.escalation.checks import (
    Check,
    CheckInput,
    LogisticCombiner,
    check_confidence,
    needs_second_answer,
)
from routellm_core.escalation.config import Escalation
from routellm_core.routing.tracking import Cut, QuantileTracker

logger = logging.getLogger(__name__)

#: Temperature of the second sample when ``Escalation.second`` is None (the weak model asked again).
SAMPLE_TEMPERATURE = 0.7
#: The answer attempt's signal that records the escalation threshold its check was held to.
THRESHOLD_SIGNAL = "escalation_threshold"

#: ``(input_tokens, output_tokens)`` an answer reports, either may be None.
Usage = tuple[int | None, int | None]
#: Price of one call in USD from the model name and its token counts, or None when unknown.
CostOf = Callable[[str, int | None, int | None], float | None]


@dataclass(frozen=True)
class Pricing:
    """How an answer is counted and priced: its reported tokens (``usage``) and a price table (``cost_of``)."""

    usage: Callable[[Any], Usage]
    cost_of: CostOf

    def of(self, model: str, value: Any) -> tuple[int | None, int | None, float | None]:
        """``(input_tokens, output_tokens, cost)`` of ``model``'s answer ``value`` (all None without an answer)."""
        if value is None:
            return None, None, None
        tokens_in, tokens_out = self.usage(value)
        return tokens_in, tokens_out, self.cost_of(model, tokens_in, tokens_out)


@dataclass(frozen=True)
class Outcome:
    """What one model call gave: its answer, or the failure."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the call returned an answer."""
        return self.error is None


def outcome_of(passthrough: tuple[type[BaseException], ...], call: Callable[..., Any], *args: Any) -> Outcome:
    """``call(*args)``'s answer or failure (``passthrough`` exceptions, the caller's control flow, propagate)."""
    try:
        return Outcome(call(*args))
    except passthrough:
        raise
    except Exception as exc:
        return Outcome(error=exc)


async def aoutcome_of(
    passthrough: tuple[type[BaseException], ...], call: Callable[..., Awaitable[Any]], *args: Any
) -> Outcome:
    """Async :func:`outcome_of`."""
    try:
        return Outcome(await call(*args))
    except passthrough:
        raise
    except Exception as exc:
        return Outcome(error=exc)


def _finished(future: Future[Outcome]) -> Outcome | None:
    return None if future.cancelled() or future.exception() is not None else future.result()


def together(
    calls: Sequence[Callable[[], Outcome]], interrupted: Callable[[list[Outcome | None]], None], *, name: str
) -> list[Outcome]:
    """The outcomes of ``calls`` run concurrently (the first in this thread, the others in worker threads named
    ``name``). When one raises (the caller's control flow, or a ``BaseException`` such as ``KeyboardInterrupt``),
    ``interrupted`` gets the outcomes of those that finished (None for the others: they are waited for first), so
    what they paid is recorded, and the exception propagates."""
    if len(calls) == 1:
        try:
            return [calls[0]()]
        except BaseException:
            interrupted([None])
            raise
    with ThreadPoolExecutor(len(calls) - 1, thread_name_prefix=name) as pool:
        pending = [pool.submit(contextvars.copy_context().run, call) for call in calls[1:]]
        head: Outcome | None = None
        try:
            head = calls[0]()
            return [head, *(p.result() for p in pending)]
        except BaseException:
            wait(pending)
            interrupted([head, *(_finished(p) for p in pending)])
            raise


def _done(task: asyncio.Future[Outcome]) -> Outcome | None:
    if not task.done() or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


async def atogether(
    calls: Sequence[Callable[[], Awaitable[Outcome]]], interrupted: Callable[[list[Outcome | None]], None]
) -> list[Outcome]:
    """Async :func:`together` (the calls gathered). Cancelled (an ``asyncio`` timeout, a caller that went away) or
    left by a call's exception, the calls still running are cancelled and ``interrupted`` gets those that finished."""
    if len(calls) == 1:
        try:
            return [await calls[0]()]
        except BaseException:
            interrupted([None])
            raise
    tasks = [asyncio.ensure_future(call()) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        interrupted([_done(task) for task in tasks])
        raise


def needs_verification(check: Any) -> bool:
    """Whether a check reads the cheap model's verdict on its own answer (the self-verification question)."""
    if isinstance(check, LogisticCombiner):
        return any(needs_verification(c) for c in check.checks)
    return bool(getattr(check, "needs_verification", False))


def _check_ready(check: Check) -> None:
    if isinstance(check, LogisticCombiner) and getattr(check, "coef_", None) is None:
        raise InvalidInputError(
            "escalate: the 'combined' check must be fitted first: pass a fitted LogisticCombiner "
            "(LogisticCombiner.load(path), or .fit(...)) as Escalation(check=...)"
        )


@dataclass(frozen=True)
class Verdict:
    """The check's reading of one cheap answer: keep it when ``confidence >= threshold`` (the threshold in force for
    this call; None with no answer to check, which always escalates)."""

    keep: bool
    confidence: float | None
    signals: Mapping[str, float]
    threshold: float | None = None


class Cascade:
    """The rules of one escalating call, shared by the sync and async engine paths.

    Args:
        escalation: The user's escalation settings.
        names: Display names of the strong and weak models.
        second_name: Display name of the second cheap answer's model.
        answer_value: What the check compares of an answer (its text, or its tool calls).
        answer_text: The text of an answer (refusal and length features).
        is_empty: Whether an answer is empty (no text and no tool call): such an answer escalates.
        pricing: The token counts and price of an answer.
        join_chunks: A whole answer from a held stream's chunks (what the check and the pricing read).
        logprobs: The token log-probabilities an answer carries (None without).

    Raises:
        InvalidInputError: An unfitted combiner.
    """

    def __init__(
        self,
        escalation: Escalation,
        *,
        names: Mapping[Side, str],
        second_name: str,
        answer_value: Callable[[Any], Any],
        answer_text: Callable[[Any], str],
        is_empty: Callable[[Any], bool],
        pricing: Pricing,
        join_chunks: Callable[[list[Any]], Any],
        logprobs: Callable[[Any], list[float] | None] = lambda _value: None,
    ) -> None:
        self.escalation = escalation
        #: The fixed threshold, or None under a ``share`` (then :attr:`tracker` sets it per call).
        self.fixed_threshold = escalation.effective_threshold
        #: Under ``share``: the recent checked calls' confidences, started from the shipped calibration.
        self.tracker = (
            QuantileTracker(escalation.prior(), window=escalation.window) if escalation.share is not None else None
        )
        self.check = escalation.make_check()
        _check_ready(self.check)
        self.needs_second = needs_second_answer(self.check)
        self.needs_verification = needs_verification(self.check)
        self.names = dict(names)
        self.second_name = second_name
        self.answer_value = answer_value
        self.answer_text = answer_text
        self.is_empty = is_empty
        self.pricing = pricing
        self.join_chunks = join_chunks
        self.logprobs = logprobs

    @property
    def cut(self) -> Cut:
        """The escalation cut in force now: the fixed threshold, or the tracked share (with the part of a tie at
        the cut that escalates)."""
        if self.tracker is None or self.escalation.share is None:
            assert self.fixed_threshold is not None
            return Cut(self.fixed_threshold)
        return self.tracker.split(self.escalation.share)

    @property
    def threshold(self) -> float:
        """The escalation threshold in force now."""
        return self.cut.threshold

    def applies(self, route: Route) -> bool:
        """Whether ``route`` runs as a cascade: scored anew (not a continued step) and sent to the weak side."""
        return not route.continued and route.first_side == "weak" and route.text is not None

    # ---- the check -------------------------------------------------------------------------------------------
    def answered(self, outcome: Outcome) -> bool:
        """Whether a call gave an answer: no failure, and not empty (no text and no tool call)."""
        return outcome.ok and outcome.value is not None and not self.is_empty(outcome.value)

    def whole(self, outcome: Outcome, stream: bool) -> Outcome:
        """A held stream's chunks as one answer for the check (an empty stream is an empty answer)."""
        if not stream or not outcome.ok:
            return outcome
        return Outcome(self.join_chunks(outcome.value) if outcome.value else None)

    def verification(self, verify: Callable[..., Any] | None, owner: str) -> Callable[..., Any] | None:
        """The self-verification call, when the check reads one (None otherwise).

        Raises:
            InvalidInputError: The check needs it and the front end (``owner``) cannot ask it.
        """
        if not self.needs_verification:
            return None
        if verify is None:
            raise InvalidInputError(f"{owner} cannot ask the self-verification question the escalation check needs")
        return verify

    def _value(self, outcome: Outcome) -> Any:
        return self.answer_value(outcome.value) if self.answered(outcome) else None

    def judge(
        self, route: Route, first: Outcome, second: Outcome | None, verification: Outcome | None = None
    ) -> Verdict:
        """Keep the weak answer, or escalate: a failed or empty first answer always escalates."""
        value = self._value(first)
        if value is None:
            return Verdict(keep=False, confidence=None, signals={})
        reply = verification.value if verification is not None and verification.ok else None
        batch = CheckInput(
            first=[value],
            others=[[self._value(second)]] if second is not None else (),
            prompts=[route.text or ""],
            outputs=[self.answer_text(first.value)],
            win_rates=[route.decision.win_rate],
            logprobs=[self.logprobs(first.value)],
            verifications=[None if reply is None else self.answer_text(reply)],
        )
        signals = {key: float(np.asarray(v).reshape(-1)[0]) for key, v in self.check.signals(batch).items()}
        confidence = float(check_confidence(self.check, batch)[0])
        cut = self.cut
        if self.tracker is not None:
            self.tracker.observe(confidence)  # after its own threshold was read: the window holds earlier calls
        escalate = cut.below(confidence, zlib.crc32(route.id.encode()) / 2**32)  # a tie splits by decision id
        return Verdict(keep=not escalate, confidence=confidence, signals=signals, threshold=cut.threshold)

    # ---- the record ------------------------------------------------------------------------------------------
    def attempt(
        self,
        model: str,
        side: Side,
        role: AttemptRole,
        outcome: Outcome,
        *,
        kept: bool,
        verdict: Verdict | None = None,
        priced_as: str | None = None,
    ) -> Attempt:
        """One attempt's entry: its tokens and price (as ``priced_as``, default ``model``) from the answer, the
        check's reading when it was checked (its signals plus :data:`THRESHOLD_SIGNAL`, the threshold in force)."""
        tokens_in, tokens_out, cost = self.pricing.of(priced_as or model, outcome.value if outcome.ok else None)
        error = type(outcome.error).__name__ if outcome.error is not None else None
        if outcome.ok and (outcome.value is None or self.is_empty(outcome.value)):
            error = "EmptyResponseError"
        return Attempt(
            model=model,
            side=side,
            role=role,
            kept=kept,
            signals=_signals(verdict),
            confidence=verdict.confidence if verdict is not None else None,
            error=error,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
        )

    def cheap_attempts(
        self,
        first: Outcome,
        second: Outcome | None,
        verdict: Verdict,
        *,
        kept: bool,
        verification: Outcome | None = None,
    ) -> tuple[Attempt, ...]:
        """The weak answer's entry, then the check answer's and the self-verification call's."""
        out = [self.attempt(self.names["weak"], "weak", "answer", first, kept=kept, verdict=verdict)]
        if second is not None:
            out.append(self._second_attempt(second))
        if verification is not None:
            out.append(self.verification_attempt(self.names["weak"], "weak", verification))
        return tuple(out)

    def verification_attempt(self, model: str, side: Side, verification: Outcome) -> Attempt:
        """The entry of ``model`` 's self-verification call (named ``"<model> (verify)"``, priced as ``model``)."""
        return self.attempt(f"{model}{VERIFY_SUFFIX}", side, "check", verification, kept=False, priced_as=model)

    def unchecked_attempts(self, first: Outcome | None, second: Outcome | None, stream: bool) -> tuple[Attempt, ...]:
        """The entries of the cheap answers that came (``None``: still running) before a call ended unchecked."""
        out = []
        if first is not None:
            out.append(self.attempt(self.names["weak"], "weak", "answer", self.whole(first, stream), kept=False))
        if second is not None:
            out.append(self._second_attempt(second))
        return tuple(out)

    def _second_attempt(self, second: Outcome) -> Attempt:
        """The check answer's entry (the weak model sampled again is priced as the weak model)."""
        priced = self.names["weak"] if self.second_name.endswith(RESAMPLED_SUFFIX) else None
        return self.attempt(self.second_name, "weak", "check", second, kept=False, priced_as=priced)

    def escalated_record(self, planned: ServedDecision, attempts: tuple[Attempt, ...]) -> ServedDecision:
        """The record of a call the strong model serves after the check (before its answer came)."""
        return replace(planned, served="strong", model=self.names["strong"], escalated=True, attempts=attempts)

    def log(self, route: Route, verdict: Verdict, first: Outcome, second: Outcome | None) -> None:
        """Log the step at DEBUG (a failed cheap call at WARNING: it is recorded, never silently dropped)."""
        for name, outcome in ((self.names["weak"], first), (self.second_name, second)):
            if outcome is not None and outcome.error is not None:
                logger.warning(
                    "routellm decision %s: the cheap model %r failed (%s: %s); escalating",
                    route.id,
                    name,
                    type(outcome.error).__name__,
                    outcome.error,
                )
        logger.debug(
            "routellm decision %s: check %s, confidence %s, threshold %s: %s",
            route.id,
            getattr(self.check, "name", type(self.check).__name__),
            "none" if verdict.confidence is None else f"{verdict.confidence:.3f}",
            "none" if verdict.threshold is None else f"{verdict.threshold:.3f}",
            "kept the weak answer" if verdict.keep else "escalated",
        )


def _signals(verdict: Verdict | None) -> dict[str, float]:
    """An attempt's recorded signals: the check's, and the threshold it was held to (when it was checked)."""
    if verdict is None:
        return {}
    out = dict(verdict.signals)
    if verdict.threshold is not None:
        out[THRESHOLD_SIGNAL] = verdict.threshold
    return out


__all__ = [
    "SAMPLE_TEMPERATURE",
    "THRESHOLD_SIGNAL",
    "Cascade",
    "CostOf",
    "Outcome",
    "Pricing",
    "Usage",
    "Verdict",
    "aoutcome_of",
    "atogether",
    "needs_second_answer",
    "needs_verification",
    "outcome_of",
    "together",
]
