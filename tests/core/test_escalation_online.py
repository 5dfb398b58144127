"""Escalation inside the routed call (the core engine, driven with plain callables and a router fitted in the tests).

The prompt router pre-routes first (``fitted_router``: proofs go straight to strong, trivia go to weak), then for a
call sent to weak the weak answer and a second cheap answer are compared: agreement keeps the weak answer, a
disagreement (or a failed or empty weak answer) calls the strong model. Each case below knows its outcome from the
answers it scripts; the record lists every attempt.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fitted_router import HARD, TRIVIA
from pydantic import ValidationError
from text_engine import NAMES, text_engine

from routellm_core.decisions import ServedDecision, Side
from routellm_core.errors import InvalidInputError, ModelCallError
from routellm_core.escalation import AnswerFeaturesCheck, Escalation, LogisticCombiner
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.engine import RoutingEngine, RoutingOptions

PRICES = {"big-model": (10.0, 30.0), "small-model": (0.5, 1.5), "other-small": (0.2, 0.6)}


class Script:
    """Scripted answers per side and for the second cheap answer; records the calls made."""

    def __init__(self, weak: Any = "The answer is 42.", second: Any = "42", strong: Any = "It is 41.") -> None:
        self.answers = {"weak": weak, "second": second, "strong": strong}
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _answer(self, who: str) -> Any:
        with self.lock:
            self.calls.append(who)
        value = self.answers[who]
        if isinstance(value, BaseException):
            raise value
        return value

    def attempt(self, side: Side, record: ServedDecision) -> Any:
        return self._answer(side)

    def second(self, record: ServedDecision) -> Any:
        return self._answer("second")

    async def aattempt(self, side: Side, record: ServedDecision) -> Any:
        await asyncio.sleep(0)
        return self._answer(side)

    async def asecond(self, record: ServedDecision) -> Any:
        await asyncio.sleep(0)
        return self._answer("second")

    def open_stream(self, side: Side, record: ServedDecision) -> Iterator[str]:
        text = self._answer(side)
        yield from str(text).split(" ")

    async def aopen_stream(self, side: Side, record: ServedDecision) -> AsyncIterator[str]:
        text = self._answer(side)
        for word in str(text).split(" "):
            yield word


def engine(router: Any, escalation: Escalation | None = None, on_fallback: Any = None, **options: Any) -> RoutingEngine:
    return text_engine(
        RoutingOptions(router=router, strong_fraction=0.5, escalate=escalation or Escalation(), **options),
        on_fallback=on_fallback,
    )


def run(routed: RoutingEngine, prompt: str, script: Script, mode: str) -> tuple[Any, ServedDecision]:
    route = routed.route(prompt)
    if mode == "sync":
        return routed.call(route, script.attempt, second=script.second)
    if mode == "async":
        return asyncio.run(routed.acall(route, script.aattempt, second=script.asecond))
    if mode == "stream":
        items = list(routed.stream(route, script.open_stream, second=script.second))
        return " ".join(c for c, _ in items), items[-1][1]

    async def collect() -> list[tuple[Any, ServedDecision]]:
        return [item async for item in routed.astream(route, script.aopen_stream, second=script.asecond)]

    items = asyncio.run(collect())
    return " ".join(c for c, _ in items), items[-1][1]


MODES = pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])


@MODES
def test_agreeing_cheap_answers_keep_the_weak_answer(known_router: Any, mode: str) -> None:
    script = Script(weak="The answer is 42.", second="I think it's 42")
    value, record = run(engine(known_router), TRIVIA[0], script, mode)
    assert value == "The answer is 42."
    assert sorted(script.calls) == ["second", "weak"]  # strong never called
    assert (record.choice, record.served, record.escalated, record.fallback) == ("weak", "weak", False, False)
    first, check = record.attempts
    assert (first.model, first.role, first.kept, first.confidence) == ("small-model", "answer", True, 1.0)
    assert first.signals["agreement"] == 1.0
    assert (check.model, check.role, check.kept) == ("other-small", "check", False)


@MODES
def test_disagreeing_cheap_answers_escalate_to_strong(known_router: Any, mode: str) -> None:
    script = Script(weak="The answer is 42.", second="43", strong="It is 41.")
    value, record = run(engine(known_router), TRIVIA[1], script, mode)
    assert value == "It is 41."
    assert sorted(script.calls) == ["second", "strong", "weak"]
    assert (record.choice, record.served, record.model) == ("weak", "strong", "big-model")
    assert record.escalated and not record.fallback
    assert [(a.model, a.role, a.kept) for a in record.attempts] == [
        ("small-model", "answer", False),
        ("other-small", "check", False),
        ("big-model", "escalation", True),
    ]
    assert record.attempts[0].signals["agreement"] == 0.0
    assert record.as_dict()["escalated"] is True


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_pre_routed_calls_skip_the_cheap_attempt(known_router: Any, mode: str) -> None:
    script = Script()
    value, record = run(engine(known_router), HARD[0], script, mode)
    assert script.calls == ["strong"] and value == "It is 41."
    assert (record.choice, record.served, record.escalated) == ("strong", "strong", False)
    assert [(a.model, a.role) for a in record.attempts] == [("big-model", "answer")]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failed_or_empty_weak_answer_escalates_and_is_recorded(known_router: Any, mode: str) -> None:
    for weak, error in ((TimeoutError("slow"), "TimeoutError"), ("   ", "EmptyResponseError")):
        script = Script(weak=weak, second="42")
        value, record = run(engine(known_router), TRIVIA[2], script, mode)
        assert value == "It is 41." and record.escalated
        assert record.attempts[0].error == error and record.attempts[0].confidence is None


@MODES
def test_a_failed_strong_model_after_escalation(known_router: Any, mode: str) -> None:
    script = Script(weak="7", second="8", strong=ConnectionError("down"))
    with pytest.raises(ModelCallError, match="escalation check and the strong model 'big-model' failed") as info:
        run(engine(known_router), TRIVIA[3], script, mode)
    assert info.value.chunks_delivered == (0 if "stream" in mode else None)  # a stream says none reached the caller
    # with fallback the weak answer (already paid for) is served, the record says why, the fallback hook hears of it;
    # streamed too: the answer held for the check, not a third weak call (paid again, and never checked)
    heard: list[tuple[str, str]] = []
    hook = lambda rec, exc: heard.append((rec.model, type(exc).__name__))  # noqa: E731
    script.calls.clear()
    value, record = run(engine(known_router, on_fallback=hook, fallback=True), TRIVIA[3], script, mode)
    assert sorted(script.calls) == ["second", "strong", "weak"]
    assert value == "7" and heard == [("small-model", "ConnectionError")]
    assert (record.served, record.escalated, record.fallback) == ("weak", False, True)
    assert (record.fallback_from, record.fallback_error, record.failed_side) == (
        "big-model",
        "ConnectionError",
        "strong",
    )
    assert [(a.role, a.kept, a.error) for a in record.attempts] == [
        ("answer", True, None),
        ("check", False, None),
        ("escalation", False, "ConnectionError"),
    ]


def test_costs_are_priced_per_attempt_from_usage(known_router: Any) -> None:
    script = Script(weak="The answer is 42.", second="43", strong="It is 41.")
    _, record = run(engine(known_router, prices=PRICES), TRIVIA[4], script, "sync")
    expected = [
        (10 * 0.5 + len("The answer is 42.") * 1.5) / 1e6,
        (10 * 0.2 + 2 * 0.6) / 1e6,
        (10 * 10.0 + len("It is 41.") * 30.0) / 1e6,
    ]
    assert [a.cost for a in record.attempts] == pytest.approx(expected)
    assert record.cost == pytest.approx(sum(expected))
    assert record.as_dict()["cost"] == pytest.approx(sum(expected))
    # without a price for one model the total is unknown, not a partial sum
    _, unpriced = run(engine(known_router, prices={"big-model": (10.0, 30.0)}), TRIVIA[4], script, "sync")
    assert unpriced.cost is None and unpriced.attempts[2].cost is not None


def test_tool_calls_are_compared_on_name_and_arguments(known_router: Any) -> None:
    same = [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    other = [{"name": "get_weather", "arguments": '{"city": "Lyon"}'}]
    routed = RoutingEngine(
        RoutingOptions(router=known_router, strong_fraction=0.5, escalate=Escalation()),
        NAMES,
        owner="Test",
        is_empty=lambda value: not value,
        chunk_text=str,
        answer_text=str,
        answer_value=lambda value: value["tool_calls"],
    )
    kept = Script(weak={"tool_calls": same}, second={"tool_calls": list(same)}, strong={"tool_calls": other})
    _, record = run(routed, TRIVIA[5], kept, "sync")
    assert not record.escalated
    moved = Script(weak={"tool_calls": same}, second={"tool_calls": other}, strong={"tool_calls": other})
    value, record = run(routed, TRIVIA[5], moved, "sync")
    assert record.escalated and value == {"tool_calls": other}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_continued_step_stays_on_the_model_that_served(known_router: Any, mode: str) -> None:
    routed = engine(known_router)
    _, record = run(routed, TRIVIA[6], Script(second="13"), mode)
    assert record.escalated
    script = Script()
    route = routed.continued(ServedDecision.from_dict(record.as_dict()))
    assert route is not None
    if mode == "sync":
        _, step = routed.call(route, script.attempt, second=script.second)
    else:
        _, step = asyncio.run(routed.acall(route, script.aattempt, second=script.asecond))
    assert script.calls == ["strong"]
    assert (step.id, step.served, step.escalated, step.fallback, step.continued) == (
        record.id,
        "strong",
        True,
        False,
        True,
    )


def test_streams_hold_the_weak_answer_until_its_check_passed(known_router: Any) -> None:
    """No chunk reaches the caller before the second answer came back, and an escalated stream never shows a weak
    chunk."""
    release = threading.Event()
    script = Script(weak="four words weak answer", second="other", strong="the strong answer")

    def slow_second(record: ServedDecision) -> Any:
        release.wait(5)
        return script.second(record)

    routed = engine(known_router)
    stream = routed.stream(routed.route(TRIVIA[7]), script.open_stream, second=slow_second)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(c for c, _ in stream))
    reader.start()
    time.sleep(0.3)
    assert got == []  # the weak stream ended, but nothing is shown until the check's answer is in
    release.set()
    reader.join(5)
    assert " ".join(got) == "the strong answer"


def test_check_without_a_second_answer_and_bad_settings(known_router: Any) -> None:
    script = Script(weak="Sorry, I cannot help with that.")
    routed = engine(known_router, Escalation(check="answer_features"))
    _, record = run(routed, TRIVIA[8], script, "sync")
    assert "second" not in script.calls  # the answer-features check reads the weak answer alone
    assert record.escalated and record.attempts[0].signals["refusal"] == 1.0 and len(record.attempts) == 2
    kept = Script(weak="Paris.")
    _, record = run(engine(known_router, Escalation(check=AnswerFeaturesCheck())), TRIVIA[8], kept, "sync")
    assert not record.escalated
    with pytest.raises(InvalidInputError, match="cannot ask the second cheap answer"):
        routed = engine(known_router)
        routed.call(routed.route(TRIVIA[0]), script.attempt)
    with pytest.raises(InvalidInputError, match="must be fitted"):
        engine(known_router, Escalation(check=LogisticCombiner()))
    with pytest.raises(ValidationError, match="escalate must be an Escalation"):
        RoutingOptions(escalate="agreement")


@pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
def test_self_verification_reads_the_weak_models_verdict(known_router: Any, mode: str) -> None:
    asked: list[str] = []

    def verify(record: ServedDecision, answer: Any) -> str:
        asked.append(str(answer))
        return "No, that is wrong." if "41" in str(answer) else "Yes."

    async def averify(record: ServedDecision, answer: Any) -> str:
        return verify(record, answer)

    routed = engine(known_router, Escalation(check="self_verification"))
    for weak, escalated in (("It is 42", False), ("It is 41", True)):
        script = Script(weak=weak, strong="It is 40.")
        route = routed.route(TRIVIA[9])
        if mode == "sync":
            _, record = routed.call(route, script.attempt, verify=verify)
        elif mode == "async":
            _, record = asyncio.run(routed.acall(route, script.aattempt, verify=averify))
        elif mode == "stream":
            record = list(routed.stream(route, script.open_stream, verify=verify))[-1][1]
        else:

            async def collect(route: Any = route, script: Script = script) -> list[Any]:
                return [i async for i in routed.astream(route, script.aopen_stream, verify=averify)]

            record = asyncio.run(collect())[-1][1]
        assert record.escalated is escalated and "second" not in script.calls
        assert record.attempts[1].model == "small-model (verify)"
        assert record.attempts[0].signals["verified_no"] == float(escalated)
    assert asked[-1] == "It is 41"  # the whole answer (a held stream joined) is what gets verified
    with pytest.raises(InvalidInputError, match="self-verification"):
        routed.call(routed.route(TRIVIA[9]), Script().attempt)


@pytest.mark.parametrize("mode", ["stream", "astream", "astream cancelled"])
def test_a_stream_its_caller_left_is_recorded(known_router: Any, mode: str, tmp_path: Path) -> None:
    """A caller who stops reading (closes the relay, or is cancelled while it waits for the next chunk) still gets
    its decision recorded, so feedback on its id is taken: with the text relayed, and no label sampled (the
    labeller would judge an answer nobody read to its end)."""
    store = FeedbackStore(tmp_path / "fb.db", store_answers=True)
    writes: list[str] = []
    record_decision = store.record_decision

    def counted(record: Any, *args: Any, **kwargs: Any) -> Any:  # the async write runs this one in a thread
        writes.append(record.decision_id)
        return record_decision(record, *args, **kwargs)

    store.record_decision = counted  # type: ignore[method-assign]
    judge = lambda prompt, a, b: "model_a"  # noqa: E731
    routed = engine(known_router, feedback=store, label_fraction=1.0, judge=judge)  # every finished call labelled
    route = routed.route(HARD[1])  # pre-routed: the strong model's stream is relayed as it comes
    asked: list[Side] = []

    def other(side: Side) -> str:
        asked.append(side)
        return "the other answer"

    async def aother(side: Side) -> str:
        return other(side)

    async def slow(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        yield "first"
        await asyncio.sleep(30)
        yield "never"

    if mode == "stream":
        relay = routed.stream(route, Script(strong="first second third").open_stream, other_answer=other)
        assert next(relay)[0] == "first"
        relay.close()
    else:

        async def leave() -> None:
            relay = routed.astream(route, slow, other_answer=aother)
            got: list[Any] = []

            async def read() -> None:
                async for item in relay:
                    got.append(item)

            if mode == "astream":
                got.append(await relay.__anext__())
                await relay.aclose()
                return
            task = asyncio.create_task(read())
            while not got:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(leave())
    stored = store.decision(route.id)
    assert stored is not None, "the left stream's decision was not recorded"
    assert stored.answer == "first" and stored.record.decision.served == "strong"
    assert routed.labelling is not None and routed.labelling.labeller is not None
    assert routed.labelling.labeller.flush(timeout=60)
    assert asked == [] and store.stats().labels == 0
    assert writes == [route.id]  # written once (the store would ignore a second write of the id silently)
    store.close()


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_the_stored_record_of_a_stream_is_priced_from_the_whole_stream(
    known_router: Any, mode: str, tmp_path: Path
) -> None:
    """Chunks carry the record before the usage is known; the stored record prices every attempt, the streamed
    strong model's too (usage here: 10 input tokens, the answer's length as output tokens)."""
    store = FeedbackStore(tmp_path / "fb.db")
    routed = engine(known_router, prices=PRICES, feedback=store)
    _, streamed = run(routed, TRIVIA[0], Script(weak="It is 42.", second="43", strong="It is 41."), mode)
    assert streamed.escalated and streamed.attempts[-1].cost is None  # not known while streaming
    stored = store.decision(streamed.id)
    assert stored is not None
    attempts = stored.record.attempts
    assert [(a.model, a.role) for a in attempts] == [
        ("small-model", "answer"),
        ("other-small", "check"),
        ("big-model", "escalation"),
    ]
    assert attempts[-1].cost == pytest.approx((10 * 10.0 + len("It is 41.") * 30.0) / 1e6)
    assert stored.record.cost == pytest.approx(sum(a.cost for a in attempts))


def test_a_caller_cancelled_before_the_escalated_strong_answer_starts_leaves_the_cheap_attempts_recorded(
    known_router: Any, tmp_path: Path
) -> None:
    """The check escalated and the strong model has not streamed a chunk yet when the caller gives up (an async
    timeout): the cheap answer and the check were paid, so the decision is recorded with them, no text, no label."""
    store = FeedbackStore(tmp_path / "fb.db", store_answers=True)
    routed = engine(known_router, feedback=store, label_fraction=1.0, judge=lambda prompt, a, b: "model_a")
    route = routed.route(TRIVIA[4])
    assert route.decision.choice == "weak", "precondition: a trivia prompt is routed to the weak model first"
    script = Script(weak="It is 42.", second="It is 41.")  # the check disagrees: escalate
    strong_asked = asyncio.Event()

    async def open_stream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        if side == "weak":
            yield script.answers["weak"]
            return
        strong_asked.set()
        await asyncio.sleep(30)  # the strong model's first chunk is slow to come
        yield "never"

    async def wait_and_leave() -> None:
        relay = routed.astream(route, open_stream, second=script.asecond)
        task = asyncio.create_task(relay.__anext__())
        await asyncio.wait_for(strong_asked.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(wait_and_leave())
    stored = store.decision(route.id)
    assert stored is not None, "the cancelled escalation's decision was not recorded"
    assert stored.answer == "" and stored.record.escalated
    assert [a.model for a in stored.record.attempts] == ["small-model", "other-small"]
    assert routed.labelling is not None and routed.labelling.labeller is not None
    assert routed.labelling.labeller.flush(timeout=60) and store.stats().labels == 0
    store.close()
