"""Nothing lost when a climbed or escalated call ends early: cancelled, timed out, left by its caller, or ended by an
exception that is not a model's failure (the caller's control flow, ``KeyboardInterrupt``).

The shipped ``default`` router over the stand-ins of ``ladder_standins`` (tiny 0.1, mid 1, big 10 USD per million
tokens; predicted big > mid > tiny) under ``Objective.budget(0.05)``, which chooses tiny: a climb goes tiny, mid,
big; a one-step escalation (no climb) goes from tiny to big. The scripted answers never agree, so every call goes up
to big, and big is where the call ends early: the attempts paid before it are known in advance, and each way out
must leave the decision recorded once with them (tokens and price), the budget controller billed once with their
price, and the caller's own exception.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ladder_standins import PRICES, PRIORS, answer_cost, priced_engine

from routellm_core.decisions import ServedDecision, Side
from routellm_core.errors import ModelCallError
from routellm_core.escalation.config import Escalation
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import Objective

TEXT = "A train leaves at 3pm at 60 mph; when has it covered 150 miles?"
#: The answers: no two agree. Under a climb tiny and mid answer before big; without, tiny and its resample.
ANSWERS = {"tiny": "17", "mid": "23", "big": "42"}
RESAMPLE = "19"
#: What each kind of call paid before big: (model in the record, the model priced, its answer).
PAID = {
    "climb": [("tiny", "tiny", ANSWERS["tiny"]), ("mid", "mid", ANSWERS["mid"])],
    "step": [("tiny", "tiny", ANSWERS["tiny"]), ("tiny (resampled)", "tiny", RESAMPLE)],
}


class Interrupt(Exception):
    """The caller's control flow raised through a model call (as a LangGraph interrupt is): never a model failure."""


class Ledger:
    """An engine under test with a feedback store, counting what it writes there and bills its budget controller."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.store = FeedbackStore(tmp_path / "fb.sqlite", store_answers=True)
        opts = RoutingOptions(
            objective=Objective.budget(0.05),
            priors=PRIORS,
            prices=PRICES,
            escalate=Escalation(climb=kind == "climb", threshold=0.5),
            feedback=self.store,
        )
        self.engine: LadderEngine = priced_engine(opts, passthrough=(Interrupt,))
        self.route = self.engine.route(TEXT)
        assert self.route.ladder is not None and self.route.ladder.chosen == "tiny", "precondition: tiny is chosen"
        self.writes: Counter[str] = Counter()
        self.billed: list[float] = []
        controller = self.engine.controller
        assert controller is not None
        spent = controller.spent
        controller.spent = lambda usd: (self.billed.append(usd), spent(usd))[1]  # type: ignore[method-assign]
        write = self.store.record_decision  # the async write runs it in a worker thread

        def record_decision(record: Any, *args: Any, **kwargs: Any) -> Any:
            self.writes[record.decision_id] += 1
            return write(record, *args, **kwargs)

        self.store.record_decision = record_decision  # type: ignore[method-assign]

    def second(self, record: ServedDecision) -> str:
        return RESAMPLE

    async def asecond(self, record: ServedDecision) -> str:
        return RESAMPLE

    def check_recorded(self, paid: list[tuple[str, str, str]], model: str = "big", answer: str = "") -> None:
        """The decision is in the store once, with every attempt paid (kept: the one whose text reached the caller,
        ``answer``), and the controller was billed once."""
        cost = sum(answer_cost(priced, text) for _, priced, text in paid)
        stored = self.store.decision(self.route.id)
        assert stored is not None, "the decision of the call that ended early was not recorded"
        assert self.writes[self.route.id] == 1, f"recorded {self.writes[self.route.id]} times"
        attempts = stored.record.attempts
        assert [a.model for a in attempts] == [m for m, _, _ in paid]
        assert [a.output_tokens for a in attempts] == [len(text) for _, _, text in paid]
        assert [a.cost for a in attempts] == pytest.approx([answer_cost(p, text) for _, p, text in paid])
        assert [a.kept for a in attempts] == [bool(answer) and a.model == model for a in attempts]
        assert stored.record.served_model == model and stored.answer == answer
        assert self.billed == pytest.approx([cost]), "the budget controller was not billed once with what was paid"
        assert self.store.stats().labels == 0
        self.store.close()


def answers_of(kind: str) -> Callable[[ServedDecision], str]:
    return lambda record: ANSWERS[record.model]


# ---- sync: an exception from the rung above (the caller's control flow, KeyboardInterrupt) ---------------------


@pytest.mark.parametrize("kind", ["climb", "step"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, Interrupt])
def test_a_sync_call_ended_by_an_exception_from_big_is_recorded_and_billed(
    kind: str, exc: type[BaseException], tmp_path: Path
) -> None:
    ledger = Ledger(kind, tmp_path)

    def attempt(side: Side, record: ServedDecision) -> str:
        if record.model == "big":
            raise exc("stop")
        return ANSWERS[record.model]

    with pytest.raises(exc, match="stop"):
        ledger.engine.call(ledger.route, attempt, second=ledger.second)
    ledger.check_recorded(PAID[kind])


@pytest.mark.parametrize("kind", ["climb", "step"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, Interrupt])
def test_a_sync_stream_ended_by_an_exception_from_big_before_its_first_chunk(
    kind: str, exc: type[BaseException], tmp_path: Path
) -> None:
    ledger = Ledger(kind, tmp_path)

    def open_stream(side: Side, record: ServedDecision) -> Iterator[str]:
        if record.model == "big":
            raise exc("stop")
        yield from ANSWERS[record.model]

    with pytest.raises(exc, match="stop"):
        list(ledger.engine.stream(ledger.route, open_stream, second=ledger.second))
    ledger.check_recorded(PAID[kind])


def test_a_held_rung_whose_stream_raises_after_some_chunks(tmp_path: Path) -> None:
    """big streams a chunk into the climb's hold, then the caller's control flow: nothing reached the caller, the
    rungs that answered are paid, and big (whose usage never came) is not listed as answered."""
    ledger = Ledger("climb", tmp_path)

    def open_stream(side: Side, record: ServedDecision) -> Iterator[str]:
        yield from ANSWERS[record.model]
        if record.model == "big":
            raise Interrupt("stop")

    relayed: list[Any] = []
    with pytest.raises(Interrupt, match="stop"):
        relayed.extend(ledger.engine.stream(ledger.route, open_stream))
    assert relayed == []
    ledger.check_recorded(PAID["climb"])


def test_an_escalated_stream_ended_after_big_relayed_a_chunk_records_the_text_relayed(tmp_path: Path) -> None:
    """Without a climb big streams as it comes: its first chunk reached the caller, then a KeyboardInterrupt. The
    record lists the cheap attempts and big priced from what it streamed, with the text relayed."""
    ledger = Ledger("step", tmp_path)

    def open_stream(side: Side, record: ServedDecision) -> Iterator[str]:
        yield from ANSWERS[record.model][:1]
        if record.model == "big":
            raise KeyboardInterrupt("stop")
        yield from ANSWERS[record.model][1:]

    relayed: list[Any] = []
    with pytest.raises(KeyboardInterrupt):
        relayed.extend(c for c, _ in ledger.engine.stream(ledger.route, open_stream, second=ledger.second))
    assert relayed == ["4"]
    ledger.check_recorded([*PAID["step"], ("big", "big", "4")], answer="4")


# ---- async: cancelled, timed out, or an exception from the rung above ------------------------------------------


async def _slow_big(record: ServedDecision, asked: asyncio.Event) -> str:
    asked.set()
    await asyncio.sleep(30)  # big is slow: the caller gives up first
    return ANSWERS["big"]


@pytest.mark.parametrize("kind", ["climb", "step"])
def test_an_async_call_timed_out_while_big_answers_is_recorded_and_billed(kind: str, tmp_path: Path) -> None:
    ledger = Ledger(kind, tmp_path)

    async def attempt(side: Side, record: ServedDecision) -> str:
        if record.model == "big":
            return await _slow_big(record, asyncio.Event())
        return ANSWERS[record.model]

    async def call() -> None:
        await asyncio.wait_for(ledger.engine.acall(ledger.route, attempt, second=ledger.asecond), 0.5)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(call())
    ledger.check_recorded(PAID[kind])


@pytest.mark.parametrize("kind", ["climb", "step"])
def test_an_async_stream_cancelled_while_big_is_asked_is_recorded_and_billed(kind: str, tmp_path: Path) -> None:
    ledger = Ledger(kind, tmp_path)
    asked = asyncio.Event()

    async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        if record.model == "big":
            yield await _slow_big(record, asked)
            return
        for char in ANSWERS[record.model]:
            yield char

    async def leave() -> None:
        relay = ledger.engine.astream(ledger.route, open_stream, second=ledger.asecond)
        task = asyncio.create_task(relay.__anext__())
        await asyncio.wait_for(asked.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(leave())
    ledger.check_recorded(PAID[kind])


@pytest.mark.parametrize("kind", ["climb", "step"])
@pytest.mark.parametrize("stream", [False, True])
def test_an_async_call_ended_by_the_callers_control_flow_from_big(kind: str, stream: bool, tmp_path: Path) -> None:
    ledger = Ledger(kind, tmp_path)

    async def attempt(side: Side, record: ServedDecision) -> str:
        if record.model == "big":
            raise Interrupt("stop")
        return ANSWERS[record.model]

    async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        yield await attempt(side, record)

    async def call() -> None:
        if stream:
            async for _ in ledger.engine.astream(ledger.route, open_stream, second=ledger.asecond):
                pass
        else:
            await ledger.engine.acall(ledger.route, attempt, second=ledger.asecond)

    with pytest.raises(Interrupt, match="stop"):
        asyncio.run(call())
    ledger.check_recorded(PAID[kind])


@pytest.mark.parametrize("kind", ["climb", "step"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_call_cancelled_while_its_first_step_runs_keeps_the_answer_that_came(
    kind: str, stream: bool, tmp_path: Path
) -> None:
    """tiny answered, the other answer of the first step (mid, or tiny's resample) never comes: cancelled then, the
    call paid tiny, recorded on tiny (nothing escalated yet)."""
    ledger = Ledger(kind, tmp_path)
    asked = asyncio.Event()

    async def slow(record: ServedDecision) -> str:
        return await _slow_big(record, asked)

    async def attempt(side: Side, record: ServedDecision) -> str:
        return ANSWERS["tiny"] if record.model == "tiny" else await slow(record)

    async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        yield await attempt(side, record)

    async def call() -> None:
        if stream:
            relay = ledger.engine.astream(ledger.route, open_stream, second=slow)
            await asyncio.wait_for(relay.__anext__(), 0.5)
        else:
            await asyncio.wait_for(ledger.engine.acall(ledger.route, attempt, second=slow), 0.5)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(call())
    ledger.check_recorded(PAID[kind][:1], model="tiny")


# ---- the caller leaves while the answer is relayed; a failed escalation --------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_climbed_stream_left_while_relayed_bills_the_controller_once(mode: str, tmp_path: Path) -> None:
    ledger = Ledger("climb", tmp_path)
    if mode == "stream":
        relay = ledger.engine.stream(ledger.route, lambda side, rec: iter(ANSWERS[rec.model]))
        next(relay)
        relay.close()
    else:

        async def open_stream(side: Side, rec: ServedDecision) -> AsyncIterator[str]:
            for char in ANSWERS[rec.model]:
                yield char

        async def leave() -> None:
            relay = ledger.engine.astream(ledger.route, open_stream)
            await relay.__anext__()
            await relay.aclose()

        asyncio.run(leave())
    ledger.check_recorded([*PAID["climb"], ("big", "big", ANSWERS["big"])], answer="4")


@pytest.mark.parametrize("kind", ["climb", "step"])
@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_a_failed_escalation_bills_records_and_names_the_cheap_attempts(kind: str, mode: str, tmp_path: Path) -> None:
    """Big fails after the check escalated (no fallback): the call raises; what the cheap attempts cost reaches
    the budget controller; the error lists them with big's failure, and the feedback store keeps the decision once
    with the same attempts, none kept, and no answer."""
    ledger = Ledger(kind, tmp_path)

    def attempt(side: Side, record: ServedDecision) -> str:
        if record.model == "big":
            raise ConnectionError("big is down")
        return ANSWERS[record.model]

    async def aattempt(side: Side, record: ServedDecision) -> str:
        return attempt(side, record)

    def open_stream(side: Side, record: ServedDecision) -> Iterator[str]:
        yield attempt(side, record)

    async def aopen_stream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        yield attempt(side, record)

    async def arelay() -> None:
        async for _ in ledger.engine.astream(ledger.route, aopen_stream, second=ledger.asecond):
            pass

    eng, route = ledger.engine, ledger.route
    with pytest.raises(ModelCallError) as failure:
        if mode == "sync":
            eng.call(route, attempt, second=ledger.second)
        elif mode == "async":
            asyncio.run(eng.acall(route, aattempt, second=ledger.asecond))
        elif mode == "stream":
            list(eng.stream(route, open_stream, second=ledger.second))
        else:
            asyncio.run(arelay())
    expected = [(model, None) for model, _, _ in PAID[kind]] + [("big", "ConnectionError")]
    assert [(a.model, a.error) for a in failure.value.attempts] == expected  # type: ignore[attr-defined]
    paid = sum(answer_cost(priced, text) for _, priced, text in PAID[kind])
    assert ledger.billed == pytest.approx([paid])
    stored = ledger.store.decision(route.id)
    assert stored is not None, "the failed call's decision was not recorded"
    assert ledger.writes[route.id] == 1
    assert [(a.model, a.error) for a in stored.record.attempts] == expected
    assert not any(a.kept for a in stored.record.attempts) and stored.answer == ""
    # the rung that failed, on its pair, as an early end records it (a verdict names the models really asked)
    assert (stored.record.served_model, stored.record.strong_model, stored.record.escalated) == ("big", "big", True)
    assert [a.cost for a in stored.record.attempts[:-1]] == pytest.approx(
        [answer_cost(priced, text) for _, priced, text in PAID[kind]]
    )
    assert ledger.store.stats().labels == 0
    ledger.store.close()


# ---- the check's calls: priced, and billed, as the model they were made to -------------------------------------


def test_a_checks_calls_are_priced_and_keyed_as_the_model_called(tmp_path: Path) -> None:
    """The weak model sampled again and asked to verify its answer is listed as ``tiny (resampled)`` / ``tiny
    (verify)``: priced at tiny's price, and ``billed_model`` (what a per-model cost series is keyed by) is tiny."""
    ledger = Ledger("step", tmp_path)
    _, record = ledger.engine.call(ledger.route, lambda side, rec: ANSWERS[rec.model], second=ledger.second)
    check = record.attempts[1]
    assert (check.model, check.role, check.billed_model) == ("tiny (resampled)", "check", "tiny")
    assert check.cost == pytest.approx(answer_cost("tiny", RESAMPLE))
    assert [a.billed_model for a in record.attempts] == ["tiny", "tiny", "big"]
    ledger.store.close()

    opts = RoutingOptions(
        objective=Objective.margin(1.0),
        priors=PRIORS,
        prices=PRICES,
        escalate=Escalation(climb=True, check="self_verification", threshold=0.5),
    )
    eng = priced_engine(opts)
    _, record = eng.call(eng.route(TEXT), lambda side, rec: ANSWERS[rec.model], verify=lambda rec, answer: "yes")
    assert [(a.model, a.billed_model, a.role) for a in record.attempts] == [
        ("tiny", "tiny", "answer"),
        ("tiny (verify)", "tiny", "check"),
    ]
    assert record.attempts[1].cost == pytest.approx(answer_cost("tiny", "yes"))
    assert record.model == "tiny" and record.cost == pytest.approx(
        answer_cost("tiny", "17") + answer_cost("tiny", "yes")
    )
