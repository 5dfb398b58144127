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
The rules are one generator (:attr:`ClimbRun.steps`) that yields the calls it needs next (:class:`Ask`) and receives
their outcomes, so the sync and async engines (:func:`climb_sync`, :func:`climb_async`) only run the calls. A climb
that ends early (cancelled, a rung raising the caller's control flow or a ``BaseException``) keeps what it paid: its
:class:`ClimbRun` gives the record of every call that answered (:meth:`ClimbRun.paid`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from routellm_core.decisions import Attempt, LadderChoice, Route, ServedDecision, Side
from routellm_core.errors import ModelCallError
from routellm_core.routing.cascade import (
    Cascade,
    Outcome,
    Verdict,
    aoutcome_of,
    atogether,
    outcome_of,
    together,
)
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
        """The models a call may climb through (:func:`climb_order`), the chosen one first; never a model closed to
        the call (a capped model at its cap: ``LadderChoice.closed``)."""
        if ladder is None:
            return ()
        closed = set(ladder.closed or ())
        open_pred = [-math.inf if m in closed else p for m, p in zip(ladder.models, ladder.predictions, strict=True)]
        start = ladder.models.index(ladder.chosen)
        open_pred[start] = ladder.predictions[start]
        return tuple(ladder.models[j] for j in climb_order(open_pred, start))

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

    def run(self, route: Route, planned: ServedDecision, *, stream: bool) -> ClimbRun:
        """One call's climb (see the module docstring): its steps and, however it ends, what it paid so far
        (:class:`ClimbRun`); ``planned`` is the record before any answer."""
        return ClimbRun(self, route, planned, stream=stream)

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


class ClimbRun:
    """One call's climb: the generator of its calls (:attr:`steps`) and what it has paid so far (:meth:`paid`).

    A climb ended early (the caller cancelled it or timed it out, a rung raised the caller's control flow or a
    ``BaseException``) still paid every call that answered before: :func:`climb_sync` and :func:`climb_async` hand
    the calls that finished to :meth:`interrupted`, and :meth:`paid` is then the call's record with all of them.
    """

    def __init__(self, climb: Climb, route: Route, planned: ServedDecision, *, stream: bool) -> None:
        self.climb = climb
        self.route = route
        self.stream = stream
        self.rungs = climb.rungs(route)
        self.records = [
            replace(planned, served="weak" if i == 0 else "strong", model=name, escalated=i > 0)
            for i, name in enumerate(self.rungs)
        ]
        self.raw: dict[int, Outcome] = {}
        self.whole: dict[int, Outcome] = {}
        self.entries: list[Attempt] = []
        self.listed: set[int] = set()  # the rungs with an entry in ``entries``
        self.asked: list[int] = []  # the rungs whose answers the climb waits for (none while it verifies)
        self.reached = 0  # the rung the climb went up to: the call's model while no answer serves
        self.steps: Steps = self._steps()

    def _got(self, indices: list[int], outcomes: list[Outcome]) -> None:
        for i, outcome in zip(indices, outcomes, strict=True):
            self.raw[i], self.whole[i] = outcome, self.climb.cascade.whole(outcome, self.stream)

    def _ask(self, indices: list[int]) -> list[Ask]:
        self.asked = indices
        return [Ask(self.records[i]) for i in indices]

    def _steps(self) -> Steps:
        cascade, route, rungs, records = self.climb.cascade, self.route, self.rungs, self.records
        raw, whole, entries, listed = self.raw, self.whole, self.entries, self.listed
        top = len(rungs) - 1
        paired = cascade.needs_second
        # paired, the climb's last comparison decides nothing (either way the last rung serves): it is never made
        # (and with one rung above the chosen model the call goes straight to it: :meth:`Climb.straight_up`)
        first = [0, 1] if paired else [0]
        self._got(first, (yield self._ask(first)))
        i, served = 0, None
        while served is None and i < top and not (paired and i + 1 == top):
            verification = None
            if cascade.needs_verification and cascade.answered(whole[i]):
                self.asked = []
                (verification,) = yield [Ask(records[i], verify=True, answer=whole[i].value)]
            verdict = cascade.judge(route, whole[i], whole.get(i + 1) if paired else None, verification)
            self.climb._log(route, rungs, i, verdict, raw[i])
            entries.append(
                cascade.attempt(rungs[i], records[i].served, _role(i), whole[i], kept=False, verdict=verdict)
            )
            listed.add(i)
            if verification is not None:
                entries.append(cascade.verification_attempt(rungs[i], records[i].served, verification))
            keep = (i + 1) if paired else i
            if verdict.keep and cascade.answered(whole[keep]):
                served = keep
                break
            i += 1
            upper = i + 1 if paired else i
            if upper <= top and upper not in raw:
                self.reached = upper
                self._got([upper], (yield self._ask([upper])))
        if served is None:  # the climb's last rung: served as it is, when it answered
            served = top
        entries.extend(self._unlisted())
        if not cascade.answered(whole[served]):
            return self.climb._failed_top(route, rungs, records, raw, whole, entries)
        return Climbed(raw[served].value, self.climb._record(route, records[served], entries, rungs[served]))

    def _unlisted(self) -> list[Attempt]:
        """The entries of the rungs called but not checked (the last ones), in order."""
        cascade = self.climb.cascade
        out = []
        for j in sorted(self.raw):
            if j not in self.listed:
                self.listed.add(j)
                out.append(cascade.attempt(self.rungs[j], self.records[j].served, _role(j), self.whole[j], kept=False))
        return out

    def interrupted(self, outcomes: list[Outcome | None]) -> None:
        """The calls of the step in flight when the climb ended early: those that finished (not None) were paid."""
        done = [(i, o) for i, o in zip(self.asked, outcomes, strict=False) if o is not None]
        self._got([i for i, _ in done], [o for _, o in done])
        self.asked = []

    def paid(self) -> ServedDecision | None:
        """The record of a climb that ended early: the rung it went up to, every call that answered listed (none
        kept) with its tokens and price; None when no call finished (nothing known to be paid)."""
        entries = [*self.entries, *self._unlisted()]
        self.entries[:] = entries
        if not entries:
            return None
        record = self.records[self.reached]
        ladder = self.route.ladder
        if ladder is not None and record.model != ladder.chosen:
            ladder = replace(ladder, strong=record.model)
        return replace(record, attempts=tuple(entries), ladder=ladder)


def climb_sync(
    run: ClimbRun,
    attempt: Callable[[Side, ServedDecision], Any],
    verify: Callable[[ServedDecision, Any], Any] | None,
    passthrough: tuple[type[BaseException], ...],
) -> Climbed:
    """Run a climb's calls in this thread (two asked together run concurrently, the second in a worker thread).
    Ended early (an exception that is not a model's failure), the calls that finished go to
    :meth:`ClimbRun.interrupted` before the exception propagates."""

    def one(ask: Ask) -> Callable[[], Outcome]:
        if ask.verify:
            assert verify is not None
            return functools.partial(outcome_of, passthrough, verify, ask.record, ask.answer)
        return functools.partial(outcome_of, passthrough, attempt, ask.record.served, ask.record)

    steps = run.steps
    try:
        asks = next(steps)
        while True:
            asks = steps.send(together([one(ask) for ask in asks], run.interrupted, name="routellm-climb"))
    except StopIteration as done:
        return done.value


async def climb_async(
    run: ClimbRun,
    attempt: Callable[[Side, ServedDecision], Awaitable[Any]],
    verify: Callable[[ServedDecision, Any], Awaitable[Any]] | None,
    passthrough: tuple[type[BaseException], ...],
) -> Climbed:
    """Async :func:`climb_sync` (calls asked together are gathered; a cancelled climb keeps those that finished)."""

    def one(ask: Ask) -> Callable[[], Awaitable[Outcome]]:
        if ask.verify:
            assert verify is not None
            return functools.partial(aoutcome_of, passthrough, verify, ask.record, ask.answer)
        return functools.partial(aoutcome_of, passthrough, attempt, ask.record.served, ask.record)

    steps = run.steps
    try:
        asks = next(steps)
        while True:
            asks = steps.send(await atogether([one(ask) for ask in asks], run.interrupted))
    except StopIteration as done:
        return done.value


__all__ = ["Ask", "Climb", "ClimbRun", "Climbed", "Steps", "climb_async", "climb_order", "climb_sync"]
