"""The framework-neutral dispatch engine: fallback, the empty-answer rule, stream closing, one decision record.

These tests drive :class:`routellm_core.routing.dispatch.Dispatcher` with plain Python callables (no framework), and
check that the sync and async loops behave identically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from routellm_core.decisions import Route, RoutingDecision, ServedDecision
from routellm_core.errors import ModelCallError, StreamInterruptedError
from routellm_core.routing.dispatch import Dispatcher

NAMES = {"strong": "big-model", "weak": "small-model"}


class Interrupt(Exception):
    """Stands in for LangGraph's control-flow signals."""


def make(fallback: bool = False) -> Dispatcher:
    return Dispatcher(
        NAMES,
        fallback=fallback,
        owner="Test",
        is_empty=lambda value: not value,
        chunk_text=str,
        passthrough=(Interrupt,),
    )


def route(choice: str = "strong") -> Route:
    return Route(RoutingDecision(router="mf", win_rate=0.7, threshold=0.5, choice=choice))  # type: ignore[arg-type]


class Script:
    """Per-side behaviour: an answer, an exception, or stream chunks (an exception among them fails there)."""

    def __init__(self, **sides: Any) -> None:
        self.sides = sides
        self.calls: list[str] = []
        self.closed: list[str] = []

    def call(self, side: str, record: ServedDecision) -> Any:
        self.calls.append(side)
        value = self.sides[side]
        if isinstance(value, BaseException):
            raise value
        return value

    async def acall(self, side: str, record: ServedDecision) -> Any:
        await asyncio.sleep(0)
        return self.call(side, record)

    def stream(self, side: str, record: ServedDecision) -> Iterator[Any]:
        self.calls.append(side)
        try:
            for chunk in self.sides[side]:
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            self.closed.append(side)

    async def astream(self, side: str, record: ServedDecision) -> AsyncIterator[Any]:
        self.calls.append(side)
        try:
            for chunk in self.sides[side]:
                await asyncio.sleep(0)
                if isinstance(chunk, BaseException):
                    raise chunk
                yield chunk
        finally:
            self.closed.append(side)


def run_call(dispatcher: Dispatcher, r: Route, script: Script, mode: str) -> tuple[Any, ServedDecision]:
    if mode == "sync":
        return dispatcher.call(r, script.call)
    return asyncio.run(dispatcher.acall(r, script.acall))


def run_stream(dispatcher: Dispatcher, r: Route, script: Script, mode: str) -> list[tuple[Any, ServedDecision]]:
    if mode == "sync":
        return list(dispatcher.stream(r, script.stream))

    async def collect() -> list[tuple[Any, ServedDecision]]:
        return [item async for item in dispatcher.astream(r, script.astream)]

    return asyncio.run(collect())


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
def test_the_chosen_side_answers_and_the_record_says_so(mode: str) -> None:
    script = Script(strong="S", weak="W")
    r = route("weak")
    value, record = run_call(make(), r, script, mode)
    assert value == "W" and script.calls == ["weak"]
    assert record.as_dict() == {
        "decision_id": r.id,
        "router": "mf",
        "win_rate": 0.7,
        "threshold": 0.5,
        "choice": "weak",
        "served": "weak",
        "model": "small-model",
        "fallback": False,
        "fallback_from": None,
        "fallback_error": None,
        "continued": False,
        "escalated": False,
        "attempts": [],
        "cost": None,
        "ladder": None,
        "cached": False,
    }


@MODES
@pytest.mark.parametrize("failure", [TimeoutError("slow"), ""], ids=["raises", "empty"])
def test_fallback_once_and_recorded(mode: str, failure: Any) -> None:
    script = Script(strong=failure, weak="W")
    value, record = run_call(make(fallback=True), route("strong"), script, mode)
    assert value == "W" and script.calls == ["strong", "weak"]
    assert record.fallback and record.served == "weak" and record.fallback_from == "big-model"
    assert record.failed_side == record.choice == "strong"  # the chosen side failed
    assert record.fallback_error == ("TimeoutError" if failure else "EmptyResponseError")


@MODES
def test_without_fallback_the_failure_names_the_chosen_model(mode: str) -> None:
    script = Script(strong=ConnectionError("down"), weak="W")
    with pytest.raises(ModelCallError, match=r"the chosen strong model 'big-model' failed: ConnectionError") as info:
        run_call(make(), route("strong"), script, mode)
    assert script.calls == ["strong"], "no fallback unless configured"
    assert info.value.side == "strong" and info.value.fallback_model is None
    assert isinstance(info.value.__cause__, ConnectionError)


@MODES
def test_both_sides_failing_names_both(mode: str) -> None:
    script = Script(strong=TimeoutError("slow"), weak=ConnectionError("down"))
    with pytest.raises(ModelCallError, match="then the fallback weak model 'small-model' failed") as info:
        run_call(make(fallback=True), route("strong"), script, mode)
    assert info.value.side == "weak" and info.value.fallback_model == "small-model"


@MODES
def test_control_flow_exceptions_pass_through_untouched(mode: str) -> None:
    script = Script(strong=Interrupt(), weak="W")
    with pytest.raises(Interrupt):
        run_call(make(fallback=True), route("strong"), script, mode)
    assert script.calls == ["strong"]


@MODES
def test_leading_empty_chunks_are_held_back_then_delivered(mode: str) -> None:
    script = Script(strong=["", "", "Hel", "", "lo"], weak=["W"])
    items = run_stream(make(fallback=True), route("strong"), script, mode)
    assert [c for c, _ in items] == ["", "", "Hel", "", "lo"]
    assert {rec.served for _, rec in items} == {"strong"}
    assert script.closed == ["strong"]


@MODES
def test_a_stream_that_is_empty_or_fails_before_content_falls_back(mode: str) -> None:
    for strong in (["", ""], ["", ConnectionError("reset")]):
        script = Script(strong=strong, weak=["W1", "W2"])
        items = run_stream(make(fallback=True), route("strong"), script, mode)
        assert [c for c, _ in items] == ["W1", "W2"], "held-back empty chunks of the failed side are dropped"
        assert items[0][1].fallback and items[0][1].served == "weak"
        assert script.closed == ["strong", "weak"], "every opened stream is closed"


@MODES
def test_a_failure_after_delivery_is_never_retried(mode: str) -> None:
    script = Script(strong=["a", "b", ConnectionError("reset")], weak=["W"])
    with pytest.raises(StreamInterruptedError) as info:
        run_stream(make(fallback=True), route("strong"), script, mode)
    assert info.value.chunks_delivered == 2 and info.value.partial_text == "ab"
    assert script.calls == ["strong"] and script.closed == ["strong"]


def test_a_consumer_that_stops_early_closes_the_side_stream() -> None:
    script = Script(strong=["a", "b", "c"], weak=["W"])
    stream = make().stream(route("strong"), script.stream)
    assert next(stream)[0] == "a"
    stream.close()
    assert script.closed == ["strong"]

    async def early() -> None:
        astream = make().astream(route("strong"), script.astream)
        assert (await anext(astream))[0] == "a"
        await astream.aclose()

    asyncio.run(early())
    assert script.closed == ["strong", "strong"]


def test_continuation_keeps_the_side_that_answered_and_the_decision_id() -> None:
    script = Script(strong=TimeoutError("slow"), weak="W")
    r = route("strong")
    _, record = make(fallback=True).call(r, script.call)
    again = ServedDecision.from_dict(record.as_dict())
    assert again is not None
    continued = again.continuation()
    assert continued.id == r.id and continued.continued and continued.first_side == "weak"
    # The continued step keeps the router's choice and says it is served by the fallback side.
    _, step = make(fallback=True).call(continued, Script(strong="S", weak="W").call)
    assert (step.choice, step.served, step.fallback, step.continued) == ("strong", "weak", True, True)
    assert (step.fallback_from, step.fallback_error) == ("big-model", "TimeoutError")


@pytest.mark.parametrize(
    "bad", [{}, {"choice": "both", "router": "mf", "win_rate": 0.5, "threshold": 0.5}, {"choice": "strong"}]
)
def test_malformed_records_are_not_continued(bad: dict[str, Any]) -> None:
    assert ServedDecision.from_dict(bad) is None
