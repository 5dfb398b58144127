"""A routed call whose model fails is kept in the feedback store: nothing the caller was told about is lost.

The engine routes trivia to the weak side (``fitted_router``: a router fitted in the tests on obvious battles) and
the weak model fails: it raises, answers empty, or cuts its answer after two chunks. The call raises
:class:`ModelCallError` as before, and the store holds its decision once with the failed calls (none kept, each with
its error type), no label; a thumbs up or down on it makes no label (there was no answer to judge). An answer cut
after chunks reached the caller keeps the text the caller got, under the decision id those chunks carried, and its
call kept with its error, so a verdict on it attaches and labels.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fitted_router import TRIVIA

from routellm_core.decisions import Route, ServedDecision, Side
from routellm_core.errors import ModelCallError, StreamInterruptedError
from routellm_core.learning.feedback import FeedbackStore
from routellm_core.routing.dispatch import PartialOutputError
from routellm_core.routing.engine import RoutingEngine, RoutingOptions

NAMES: dict[Side, str] = {"strong": "big-model", "weak": "small-model"}
MODES = ["call", "acall", "stream", "astream"]


class Down(ConnectionError):
    """The weak model's provider is down."""


def engine(router: Any, store: FeedbackStore, **options: Any) -> RoutingEngine:
    return RoutingEngine(
        RoutingOptions(router=router, strong_fraction=0.5, feedback=store, label_fraction=1.0, **options),
        NAMES,
        owner="Test",
        is_empty=lambda value: not value,
        chunk_text=str,
        answer_text=str,
        judge=lambda prompt, a, b: "model_a",
    )


def routed_trivia(router: Any, store: FeedbackStore, **options: Any) -> tuple[RoutingEngine, Route]:
    """An engine and the route of a trivia prompt, which goes to the weak model."""
    routed = engine(router, store, **options)
    route = routed.route(TRIVIA[0])
    assert route.choice == "weak", "precondition: trivia goes to the weak model"
    return routed, route


def drive(routed: RoutingEngine, route: Route, mode: str, answer: Callable[[Side], Iterable[str]]) -> None:
    """One call of ``mode`` whose side answers ``answer(side)``'s chunks (its exception propagates)."""

    def attempt(side: Side, record: ServedDecision) -> str:
        return "".join(answer(side))

    async def aattempt(side: Side, record: ServedDecision) -> str:
        return attempt(side, record)

    def open_stream(side: Side, record: ServedDecision) -> Iterator[str]:
        yield from answer(side)

    async def aopen_stream(side: Side, record: ServedDecision) -> AsyncIterator[str]:
        for chunk in answer(side):
            yield chunk

    def other(side: Side) -> str:
        return "".join(answer(side))

    async def aother(side: Side) -> str:
        return other(side)

    async def arelay() -> None:
        async for _ in routed.astream(route, aopen_stream, other_answer=aother):
            pass

    if mode == "call":
        routed.call(route, attempt, other_answer=other)
    elif mode == "acall":
        asyncio.run(routed.acall(route, aattempt, other_answer=aother))
    elif mode == "stream":
        for _ in routed.stream(route, open_stream, other_answer=other):
            pass
    else:
        asyncio.run(arelay())


def down(side: Side) -> Iterable[str]:
    raise Down("weak model is down")


def empty(side: Side) -> Iterable[str]:
    return [""]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("fail", "error"), [(down, "Down"), (empty, "EmptyResponseError")])
def test_a_failed_call_is_recorded_with_its_failure(
    known_router: Any, mode: str, fail: Callable[[Side], Iterable[str]], error: str, tmp_path: Path
) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite", store_answers=True)
    routed, route = routed_trivia(known_router, store)
    with pytest.raises(ModelCallError, match="small-model") as failure:
        drive(routed, route, mode, fail)
    assert [(a.model, a.error) for a in failure.value.attempts] == [("small-model", error)]  # type: ignore[attr-defined]
    rows = store.decisions()
    assert [row.decision_id for row in rows] == [route.id], "the failed call's decision was not recorded once"
    attempts = rows[0].record.attempts
    assert [(a.model, a.side, a.role, a.kept, a.error) for a in attempts] == [
        ("small-model", "weak", "answer", False, error)
    ]
    assert rows[0].answer == "" and rows[0].prompt == TRIVIA[0]
    # the same call answered is labelled (the judge prefers the strong answer): the failed one was not
    drive(routed, routed.route(TRIVIA[0]), "call", lambda side: ["Paris"])
    assert routed.labelling is not None and routed.labelling.labeller is not None
    assert routed.labelling.labeller.flush(timeout=30)
    assert store.stats().labels == 1, "a failed call was labelled, or the answered one was not"
    # a verdict on the failed call is kept on its row but judges no answer: no label
    assert store.add_verdict(route.id, "good") is None and store.add_verdict(route.id, "bad") is None
    assert store.decision(route.id).verdict == "bad"  # type: ignore[union-attr]
    assert store.stats().labels == 1
    store.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_failed_fallback_records_both_failures(known_router: Any, mode: str, tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite")

    def both_fail(side: Side) -> Iterable[str]:
        if side == "weak":
            raise Down("weak model is down")
        raise TimeoutError("strong model timed out")

    with pytest.raises(ModelCallError, match="fallback strong model 'big-model'"):
        drive(*routed_trivia(known_router, store, fallback=True), mode, both_fail)
    (row,) = store.decisions()
    assert [(a.model, a.role, a.kept, a.error) for a in row.record.attempts] == [
        ("small-model", "answer", False, "Down"),
        ("big-model", "fallback", False, "TimeoutError"),
    ]
    store.close()


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_cut_after_chunks_keeps_what_the_caller_got(known_router: Any, mode: str, tmp_path: Path) -> None:
    """Two chunks reached the caller, then the model failed: no fallback, the call raises; the store keeps the text
    relayed under the id the chunks carried, the streaming call with its failure, and takes a verdict on it."""
    store = FeedbackStore(tmp_path / "fb.sqlite", store_answers=True)

    def cut(side: Side) -> Iterator[str]:
        yield "The capital "
        yield "of France "
        raise Down("connection reset")

    routed, route = routed_trivia(known_router, store, fallback=True)
    with pytest.raises(StreamInterruptedError, match="2 streamed chunk"):
        drive(routed, route, mode, cut)
    row = store.decision(route.id)
    assert row is not None, "the decision the relayed chunks carried was not recorded"
    assert row.answer == "The capital of France "
    assert [(a.model, a.kept, a.error) for a in row.record.attempts] == [("small-model", True, "Down")]
    assert store.add_verdict(route.id, "bad") is not None, "the caller judged the part it got: a label"
    store.close()


@pytest.mark.parametrize("mode", ["call", "acall"])
def test_a_call_cut_after_tokens_reached_the_callers_callbacks_keeps_them(
    known_router: Any, mode: str, tmp_path: Path
) -> None:
    """A call that was not streamed, whose model streamed tokens through the caller's callbacks before failing
    (the adapters raise :class:`PartialOutputError`): final, and the store keeps the tokens the caller saw."""
    store = FeedbackStore(tmp_path / "fb.sqlite", store_answers=True)
    routed, route = routed_trivia(known_router, store, fallback=True)

    def attempt(side: Side, record: ServedDecision) -> str:
        raise PartialOutputError(Down("connection reset"), 2, "The capital of ")

    async def aattempt(side: Side, record: ServedDecision) -> str:
        return attempt(side, record)

    with pytest.raises(StreamInterruptedError) as failure:
        routed.call(route, attempt) if mode == "call" else asyncio.run(routed.acall(route, aattempt))
    assert failure.value.partial_text == "The capital of "
    row = store.decision(route.id)
    assert row is not None and row.answer == "The capital of "
    assert [(a.model, a.kept, a.error) for a in row.record.attempts] == [("small-model", True, "Down")]
    store.close()


def test_a_failed_agent_step_joins_its_decision(known_router: Any, tmp_path: Path) -> None:
    """A continued step (an agent's tool step) that fails adds its failed call to the decision the first step
    recorded."""
    store = FeedbackStore(tmp_path / "fb.sqlite")
    routed, route = routed_trivia(known_router, store)
    _, first = routed.call(route, lambda side, record: "Paris")
    with pytest.raises(ModelCallError):
        routed.call(first.continuation(), lambda side, record: down(side))
    (row,) = store.decisions()
    assert [(a.model, a.kept, a.error) for a in row.record.attempts] == [
        ("small-model", True, None),
        ("small-model", False, "Down"),
    ]
    store.close()


def test_a_failed_agent_step_on_the_fallback_side_is_listed_as_a_fallback(known_router: Any, tmp_path: Path) -> None:
    """After a fallback the request continues on the strong side; a continued step there lists only its own call
    (it listed the first step's failure again, a call it never made), and one that fails has the role its answer
    would have had (``fallback``), as a step that answers does."""
    store = FeedbackStore(tmp_path / "fb.sqlite")
    routed, route = routed_trivia(known_router, store, fallback=True)

    def weak_down(side: Side, record: ServedDecision) -> str:
        if side == "weak":
            raise Down("weak model is down")
        return "Paris"

    _, first = routed.call(route, weak_down)
    assert first.served == "strong"
    _, step = routed.call(first.continuation(), weak_down)  # a tool step: only the strong model is called
    assert [(a.model, a.role, a.error) for a in step.attempts] == [("big-model", "fallback", None)]
    _, fresh = routed.call(route, weak_down)  # not continued: the failure is this step's, listed
    assert [(a.model, a.error) for a in fresh.attempts] == [("small-model", "Down"), ("big-model", None)]
    _, later = routed.call(replace(route, continued=True), weak_down)  # continued, its own fallback: listed too
    assert [(a.model, a.error) for a in later.attempts] == [("small-model", "Down"), ("big-model", None)]
    with pytest.raises(ModelCallError) as failure:
        routed.call(first.continuation(), lambda side, record: (_ for _ in ()).throw(TimeoutError("slow")))
    assert [(a.model, a.role, a.error) for a in failure.value.attempts] == [  # type: ignore[attr-defined]
        ("big-model", "fallback", "TimeoutError"),
        ("small-model", "answer", "TimeoutError"),  # fallback=True: back to the router's choice, failing too
    ]
