"""Escalation rung by rung up a price ladder (``Escalation(climb=True)`` with ``models=[...]``).

The rungs of a call are the model the objective chose, then each costlier listed model (cheapest expected first, the
order of the record's ``ladder.models``) predicted to answer better than every rung below it on the climb: a dearer
model the router predicts no better is not worth asking (:func:`climb_order`). With a check that compares two
answers (``agreement``, the combiner):

1. the chosen rung and the next one answer together (one sequential step);
2. the check scores its confidence in the lower answer against the upper one: at or above the escalation threshold
   the upper (dearer) answer is served, both being paid; below it the rung above the upper one answers and is
   checked against it, and so on;
3. the climb's last rung is served as it is. Its answer is never checked (either way it would serve), so with one
   rung above the chosen model the call goes straight to that rung.

With a check that reads one answer (``answer_features``, ``logprobs``, ``self_verification``) each rung answers
alone and is served when its own answer passes; the last is served as it is. With a check that compares answers
this is the policy :func:`routellm_core.escalation.ladder.evaluate_ladder` scores offline with ``answers=``, so an
offline curve says what the online climb does. A failed or empty answer never passes; when the last rung fails,
the call raises :class:`~routellm_core.errors.ModelCallError`, or under ``fallback`` serves the highest rung that
answered.

The record's pair is the chosen model and the one served (its ``win_rate`` that pair's, set by the N-model engine).
The rules are one generator (:meth:`Climb.steps`) that yields the calls it needs next (:class:`Ask`) and receives
their outcomes, so the sync and async engines (:func:`climb_sync`, :func:`climb_async`) only run the calls.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from routellm_core.decisions import Attempt, LadderChoice, Route, ServedDecision, Side
from routellm_core.errors import ModelCallError
from routellm_core.routing.cascade import Cascade, Outcome, Verdict, aoutcome_of, outcome_of
from routellm_core.routing.dispatch import EmptyResponseError, FallbackHook

logger = logging.getLogger(__name__)


def climb_order(predictions: Sequence[float], start: int) -> list[int]:
    """The rungs (indices into a cheapest-first ladder) a climb from ``start`` goes through: ``start``, then each
    costlier rung predicted better than every rung before it on the climb."""
    out, best = [start], predictions[start]
    for j in range(start + 1, len(predictions)):
        if predictions[j] > best:
            out.append(j)
            best = predictions[j]
    return out


@dataclass(frozen=True)
class Ask:
    """One model call a climb needs: ``record.model``'s answer (``record`` is the record the front end calls it
    with), or, with ``verify``, its verdict on its own ``answer`` (the self-verification question)."""

    record: ServedDecision
    verify: bool = False
    answer: Any = None


@dataclass(frozen=True)
class Climbed:
    """A finished climb: the served answer (for a stream, its chunks) and the call's record."""

    value: Any
    record: ServedDecision


#: The generator of one climb: yields the calls to run together, receives their outcomes, returns the result.
Steps = Generator[list[Ask], list[Outcome], Climbed]


class Climb:
    """The rules of a call climbing the ladder, shared by the sync and async paths.

    Args:
        cascade: The escalation's check, threshold (or tracked share) and attempt pricing.
        owner: Name of the front end, for error messages.
        fallback: Serve the highest rung that answered when the climb's last rung fails.
        on_fallback: Called with the record and the error when the climb's last rung failed and a lower answer
            serves (LlamaIndex's fallback event, the server's fallback metric).
    """

    def __init__(
        self,
        cascade: Cascade,
        *,
        owner: str,
        fallback: bool,
        on_fallback: FallbackHook | None = None,
    ) -> None:
        self.cascade = cascade
        self.owner = owner
        self.fallback = fallback
        self.on_fallback = on_fallback

    @staticmethod
    def rungs_of(ladder: LadderChoice | None) -> tuple[str, ...]:
        """The models a call may climb through (:func:`climb_order`), the chosen one first."""
        if ladder is None:
            return ()
        return tuple(ladder.models[j] for j in climb_order(ladder.predictions, ladder.models.index(ladder.chosen)))

    def rungs(self, route: Route) -> tuple[str, ...]:
        """The models a call under ``route`` may climb through, the chosen one first."""
        return self.rungs_of(route.ladder)

    def straight_up(self, ladder: LadderChoice) -> bool:
        """Whether a call goes straight to the one rung above the chosen model: with a check that compares two
        answers, comparing them would decide nothing (the upper one serves either way). Such a route sends the call
        to its pair's strong side (that rung; a fallback goes to the chosen model), streamed as it comes."""
        return self.cascade.needs_second and len(self.rungs_of(ladder)) == 2

    def applies(self, route: Route) -> bool:
        """Whether ``route`` climbs: scored anew (not a continued step), sent to the chosen model with a costlier
        one above it."""
        return (
            not route.continued and route.text is not None and route.first_side == "weak" and len(self.rungs(route)) > 1
        )

    def steps(self, route: Route, planned: ServedDecision, *, stream: bool) -> Steps:
        """The climb of one call (see the module docstring); ``planned`` is the record before any answer."""
        cascade = self.cascade
        rungs = self.rungs(route)
        top = len(rungs) - 1
        records = [
            replace(planned, served="weak" if i == 0 else "strong", model=name, escalated=i > 0)
            for i, name in enumerate(rungs)
        ]
        paired = cascade.needs_second
        raw: dict[int, Outcome] = {}
        whole: dict[int, Outcome] = {}
        entries: list[Attempt] = []
        listed: set[int] = set()  # the rungs with an entry in ``entries``

        def got(indices: list[int], outcomes: list[Outcome]) -> None:
            for i, outcome in zip(indices, outcomes, strict=True):
                raw[i], whole[i] = outcome, cascade.whole(outcome, stream)

        # paired, the climb's last comparison decides nothing (either way the last rung serves): it is never made
        # (and with one rung above the chosen model the call goes straight to it: :meth:`straight_up`)
        first = [0, 1] if paired else [0]
        got(first, (yield [Ask(records[i]) for i in first]))
        i, served = 0, None
        while served is None and i < top and not (paired and i + 1 == top):
            verification = None
            if cascade.needs_verification and cascade.answered(whole[i]):
                (verification,) = yield [Ask(records[i], verify=True, answer=whole[i].value)]
            verdict = cascade.judge(route, whole[i], whole.get(i + 1) if paired else None, verification)
            self._log(route, rungs, i, verdict, raw[i])
            entries.append(
                cascade.attempt(rungs[i], records[i].served, _role(i), whole[i], kept=False, verdict=verdict)
            )
            listed.add(i)
            if verification is not None:
                entries.append(
                    cascade.attempt(
                        f"{rungs[i]} (verify)", records[i].served, "check", verification, kept=False, priced_as=rungs[i]
                    )
                )
            keep = (i + 1) if paired else i
            if verdict.keep and cascade.answered(whole[keep]):
                served = keep
                break
            i += 1
            upper = i + 1 if paired else i
            if upper <= top and upper not in raw:
                got([upper], (yield [Ask(records[upper])]))
        if served is None:  # the climb's last rung: served as it is, when it answered
            served = top
        for j in sorted(raw):  # the rungs called but not checked (the last ones), in order
            if j not in listed:
                entries.append(cascade.attempt(rungs[j], records[j].served, _role(j), whole[j], kept=False))
        if not cascade.answered(whole[served]):
            return self._failed_top(route, rungs, records, raw, whole, entries)
        return Climbed(raw[served].value, self._record(route, records[served], entries, rungs[served]))

    def _record(
        self,
        route: Route,
        record: ServedDecision,
        entries: list[Attempt],
        served: str,
        **changes: Any,
    ) -> ServedDecision:
        """The call's record: the served rung's, every call listed (the served one kept), the pair (chosen, served)."""
        attempts = tuple(replace(a, kept=a.model == served and a.role != "check" and a.error is None) for a in entries)
        ladder = route.ladder
        assert ladder is not None
        if served != ladder.chosen:
            ladder = replace(ladder, strong=served)
        return replace(record, attempts=attempts, ladder=ladder, **changes)

    def _failed_top(
        self,
        route: Route,
        rungs: tuple[str, ...],
        records: list[ServedDecision],
        raw: dict[int, Outcome],
        whole: dict[int, Outcome],
        entries: list[Attempt],
    ) -> Climbed:
        """The climb's last rung failed: under ``fallback`` the highest rung that answered, else the error."""
        top = len(rungs) - 1
        error = raw[top].error
        kind = type(error).__name__ if error is not None else "EmptyResponseError"
        answered = [i for i in range(top) if i in whole and self.cascade.answered(whole[i])]
        if self.fallback and answered:
            j = answered[-1]
            logger.warning(
                "%s: %r, the top of the climb, failed (%s); serving %r's answer",
                self.owner,
                rungs[top],
                kind,
                rungs[j],
            )
            record = self._record(route, records[j], entries, rungs[j], fallback_from=rungs[top], fallback_error=kind)
            if self.on_fallback is not None:
                failure = error or EmptyResponseError(f"{rungs[top]} returned an empty message")
                self.on_fallback(record, failure)
            return Climbed(raw[j].value, record)
        d = route.decision
        what = "returned an empty message" if error is None else f"failed: {error!r}"
        raise ModelCallError(
            f"{self.owner}: no answer below passed the escalation check and {rungs[top]!r}, the top of the climb, "
            f"{what} (router {d.router!r}, climbed from {rungs[0]!r})",
            model=rungs[top],
            decision=d,
            side="strong",
            attempts=tuple(entries),
        ) from error

    def _log(self, route: Route, rungs: tuple[str, ...], i: int, verdict: Verdict, outcome: Outcome) -> None:
        if outcome.error is not None:
            logger.warning(
                "routellm decision %s: %r failed on the climb (%s: %s); going up",
                route.id,
                rungs[i],
                type(outcome.error).__name__,
                outcome.error,
            )
        logger.debug(
            "routellm decision %s: rung %r, confidence %s, threshold %s: %s",
            route.id,
            rungs[i],
            "none" if verdict.confidence is None else f"{verdict.confidence:.3f}",
            "none" if verdict.threshold is None else f"{verdict.threshold:.3f}",
            "served" if verdict.keep else "going up",
        )


def _role(i: int) -> Any:
    return "answer" if i == 0 else "escalation"


def climb_sync(
    steps: Steps,
    attempt: Callable[[Side, ServedDecision], Any],
    verify: Callable[[ServedDecision, Any], Any] | None,
    passthrough: tuple[type[BaseException], ...],
) -> Climbed:
    """Run a climb's calls in this thread (two asked together run concurrently, the second in a worker thread)."""

    def one(ask: Ask) -> Outcome:
        if ask.verify:
            assert verify is not None
            return outcome_of(passthrough, verify, ask.record, ask.answer)
        return outcome_of(passthrough, attempt, ask.record.served, ask.record)

    try:
        asks = next(steps)
        while True:
            if len(asks) == 1:
                outcomes = [one(asks[0])]
            else:
                with ThreadPoolExecutor(len(asks) - 1, thread_name_prefix="routellm-climb") as pool:
                    pending = [pool.submit(contextvars.copy_context().run, one, ask) for ask in asks[1:]]
                    outcomes = [one(asks[0]), *(p.result() for p in pending)]
            asks = steps.send(outcomes)
    except StopIteration as done:
        return done.value


async def climb_async(
    steps: Steps,
    attempt: Callable[[Side, ServedDecision], Awaitable[Any]],
    verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None,
    passthrough: tuple[type[BaseException], ...],
) -> Climbed:
    """Async :func:`climb_sync` (calls asked together are gathered)."""

    async def one(ask: Ask) -> Outcome:
        if ask.verify:
            assert verify is not None
            return await aoutcome_of(passthrough, verify, ask.record, ask.answer)
        return await aoutcome_of(passthrough, attempt, ask.record.served, ask.record)

    try:
        asks = next(steps)
        while True:
            outcomes = list(await asyncio.gather(*(one(ask) for ask in asks)))
            asks = steps.send(outcomes)
    except StopIteration as done:
        return done.value


__all__ = ["Ask", "Climb", "Climbed", "Steps", "climb_async", "climb_order", "climb_sync"]
