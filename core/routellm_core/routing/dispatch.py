"""One framework-neutral dispatch engine: call the chosen side, fall back once, stream, record the decision.

Both integrations (and the server) route a call to a :class:`Route`, then hand the engine a function that calls one
side. The engine owns everything that must mean the same in every framework:

- **fallback**: when configured, a side that fails (raises, or answers empty) before any output reached the caller is
  replaced once by the other side; without it, the failure raises :class:`~routellm_core.errors.ModelCallError`
  naming the chosen model;
- **the empty-answer rule**: an answer is empty when it has no text and no tool call. While streaming, leading empty
  chunks are held back until the first chunk with content, so an empty or failing stream can still fall back; once a
  chunk was delivered, a failure raises :class:`~routellm_core.errors.StreamInterruptedError` (no retry: the caller
  holds part of the answer);
- **stream closing**: the side's stream is closed (``close`` / ``aclose``) however the relay ends;
- **the decision record**: :class:`ServedDecision`, whose :meth:`~ServedDecision.as_dict` is the one metadata schema
  (LangChain ``response_metadata["routellm"]``, LlamaIndex ``additional_kwargs["routellm"]``, the server's body).

Sync and async share the logic: :class:`_Attempts` decides what a success or a failure means and :class:`_Relay`
holds back leading empty chunks; the four public loops only drive them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from routellm_core.decisions import Attempt, Route, ServedDecision, Side, other_side
from routellm_core.errors import ModelCallError, StreamInterruptedError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class EmptyResponseError(RuntimeError):
    """A side answered with an empty message (no text and no tool call); chained under ``ModelCallError``."""


class PartialOutputError(Exception):
    """Raised by an adapter's call when its side failed after part of its answer already reached the caller by
    another channel (tokens a non-streamed call streamed through the caller's callbacks): final, like a stream
    failing mid-way, since falling back would hand the caller a mixed answer.

    Attributes:
        cause: The side's failure.
        chunks: Pieces already delivered.
        text: Their text.
    """

    def __init__(self, cause: BaseException, chunks: int, text: str) -> None:
        super().__init__(f"{type(cause).__name__} after {chunks} token(s) reached the caller")
        self.cause = cause
        self.chunks = chunks
        self.text = text


def log_route(route: Route) -> Route:
    """Log a decision at DEBUG (never the routing text: it is the user's prompt)."""
    d = route.decision
    logger.debug(
        "routellm decision %s: router %s, win rate %.4f, threshold %.4f, choice %s, continued %s",
        route.id,
        d.router,
        d.win_rate,
        d.threshold,
        d.choice,
        route.continued,
    )
    return route


FallbackHook = Callable[[ServedDecision, BaseException], None]


class Dispatcher:
    """Calls the chosen side with fallback, the empty-answer rule, stream closing and error wrapping.

    Args:
        names: Display name of each side (metadata and errors; never holds credentials).
        fallback: Call the other side once when the chosen one fails before any output reached the caller.
        owner: Name of the integration, for error messages.
        is_empty: Whether an answer (or a streamed chunk) is empty: no text and no tool call.
        chunk_text: The text a streamed chunk delivers (for ``StreamInterruptedError.partial_text``).
        passthrough: Exception types that are control flow, not failures (LangGraph interrupts): never wrapped,
            never a reason to fall back.
        on_fallback: Called with the fallback side's record and the first failure, before the fallback call
            (the LlamaIndex adapter emits its event there).
    """

    def __init__(
        self,
        names: Mapping[Side, str],
        *,
        fallback: bool,
        owner: str,
        is_empty: Callable[[Any], bool],
        chunk_text: Callable[[Any], str],
        passthrough: tuple[type[BaseException], ...] = (),
        on_fallback: FallbackHook | None = None,
    ) -> None:
        self.names = dict(names)
        self.fallback = fallback
        self.owner = owner
        self.is_empty = is_empty
        self.chunk_text = chunk_text
        self.passthrough = passthrough
        self.on_fallback = on_fallback

    def served(self, route: Route, side: Side, error: BaseException | None = None) -> ServedDecision:
        """The record of an answer from ``side`` under ``route`` (``error``: the chosen side's failure)."""
        d = route.decision
        first = route.first_side
        record = ServedDecision(
            id=route.id,
            router=d.router,
            win_rate=d.win_rate,
            threshold=d.threshold,
            choice=d.choice,
            served=side,
            model=self.names[side],
            continued=route.continued,
            ladder=route.ladder,
        )
        if route.escalated and side == first:  # the strong model after an escalation (or a step continuing it)
            return replace(record, escalated=True)
        if side == d.choice and not route.escalated:
            return record
        return replace(
            record,
            # after an escalation the failed model is the strong one; else the router's choice
            fallback_from=self.names[first if route.escalated else d.choice],
            fallback_error=type(error).__name__ if error is not None else route.fallback_error or "unknown",
        )

    # ---- the four loops: each only drives _Attempts / _Relay ----------------------------------------------
    def call(
        self, route: Route, attempt: Callable[[Side, ServedDecision], T], *, fallback: bool | None = None
    ) -> tuple[T, ServedDecision]:
        """Run ``attempt(side, record)`` for the chosen side, falling back once if configured (``fallback``
        overrides the dispatcher's for this call).

        Returns:
            The side's answer and the record of who served it.

        Raises:
            ModelCallError: The chosen side failed or answered empty (and the fallback too, when configured).
        """
        attempts = _Attempts(self, route, fallback)
        for side, record in attempts:
            try:
                return attempts.check(attempt(side, record), side), record
            except Exception as exc:
                attempts.failed(exc, side)
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(
        self, route: Route, attempt: Callable[[Side, ServedDecision], Awaitable[T]], *, fallback: bool | None = None
    ) -> tuple[T, ServedDecision]:
        """Async :meth:`call`."""
        attempts = _Attempts(self, route, fallback)
        for side, record in attempts:
            try:
                return attempts.check(await attempt(side, record), side), record
            except Exception as exc:
                attempts.failed(exc, side)
        raise AssertionError("unreachable")  # pragma: no cover

    def stream(
        self,
        route: Route,
        open_stream: Callable[[Side, ServedDecision], Iterator[Any]],
        *,
        fallback: bool | None = None,
    ) -> Iterator[tuple[Any, ServedDecision]]:
        """Relay the chosen side's chunks as ``(chunk, record)``, holding back leading empty chunks; ``fallback``
        overrides the dispatcher's for this stream (an escalation falls back to the answer it holds, not anew).

        Raises:
            ModelCallError: Failure or empty stream before any chunk was delivered (after the fallback, if any).
            StreamInterruptedError: Failure after chunks were delivered.
        """
        attempts = _Attempts(self, route, fallback)
        for side, record in attempts:
            relay = _Relay(self, record)
            stream = None
            try:
                stream = open_stream(side, record)
                for chunk in stream:
                    for item in relay.feed(chunk):
                        yield item
                        relay.delivered += 1
                relay.end()
                return
            except Exception as exc:
                attempts.failed(exc, side, relay)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()

    async def astream(
        self,
        route: Route,
        open_stream: Callable[[Side, ServedDecision], AsyncIterator[Any]],
        *,
        fallback: bool | None = None,
    ) -> AsyncIterator[tuple[Any, ServedDecision]]:
        """Async :meth:`stream` (the side's stream is closed with ``aclose``)."""
        attempts = _Attempts(self, route, fallback)
        for side, record in attempts:
            relay = _Relay(self, record)
            stream = None
            try:
                stream = open_stream(side, record)
                async for chunk in stream:
                    for item in relay.feed(chunk):
                        yield item
                        relay.delivered += 1
                relay.end()
                return
            except Exception as exc:
                attempts.failed(exc, side, relay)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()

    # ---- errors ----------------------------------------------------------------------------------------
    def how_called(self, route: Route, side: Side) -> str:
        """How an error names the first model called: ``"chosen"``, or among N models ``"called"`` when the
        objective chose another (a climb sent straight to the rung above)."""
        ladder = route.ladder
        return "chosen" if ladder is None or self.names[side] == ladder.chosen else "called"

    def error(
        self,
        route: Route,
        side: Side,
        exc: BaseException,
        *,
        first_error: BaseException | None = None,
        relay: _Relay | None = None,
        delivered: int = 0,
        partial_text: str = "",
    ) -> ModelCallError:
        """A ``ModelCallError`` naming the failed model (and the chosen one, after a failed fallback); a
        ``StreamInterruptedError`` when ``delivered`` pieces of the answer already reached the caller. Its
        ``attempts`` list the failed calls (none kept, each with its ``error``): what the feedback store records."""
        chosen = route.first_side
        if isinstance(exc, EmptyResponseError):
            what = "returned an empty message (no text and no tool call)"
        else:
            what = f"failed: {type(exc).__name__}: {exc}"
        if side == chosen:
            message = f"{self.owner}: the {self.how_called(route, side)} {side} model {self.names[side]!r} {what}"
        else:
            message = (
                f"{self.owner}: the {self.how_called(route, chosen)} {chosen} model {self.names[chosen]!r} failed "
                f"({type(first_error).__name__}), then the fallback {side} model {self.names[side]!r} {what}"
            )
        d = route.decision
        message += f" (router {d.router!r}, win rate {d.win_rate:.4f}, threshold {d.threshold:.4f})"
        fallback_model = self.names[side] if side != chosen else None
        failed = self._failed_attempt(route, side, exc)
        attempts = (failed,) if first_error is None else (self._failed_attempt(route, chosen, first_error), failed)
        if delivered:
            return StreamInterruptedError(
                f"{message}; {delivered} streamed chunk(s) had already been delivered to the caller",
                model=self.names[chosen],
                decision=route.decision,
                side=side,
                fallback_model=fallback_model,
                chunks_delivered=delivered,
                partial_text=partial_text,
                attempts=attempts,
            )
        return ModelCallError(
            message,
            model=self.names[chosen],
            decision=route.decision,
            side=side,
            fallback_model=fallback_model,
            chunks_delivered=0 if relay is not None else None,
            attempts=attempts,
        )

    def _failed_attempt(self, route: Route, side: Side, exc: BaseException) -> Attempt:
        """The record's entry of ``side``'s failed call under ``route`` (its role as its answer's would be)."""
        role = self.served(route, side).served_role
        return Attempt(model=self.names[side], side=side, role=role, error=type(exc).__name__)


class _Attempts:
    """The sides to try for one call, in order, and what a success or a failure of each means."""

    def __init__(self, dispatcher: Dispatcher, route: Route, fallback: bool | None = None) -> None:
        self.dispatcher = dispatcher
        self.route = route
        first = route.first_side
        fall_back = dispatcher.fallback if fallback is None else fallback
        self.sides: list[Side] = [first, other_side(first)] if fall_back else [first]
        self.error: BaseException | None = None
        self._index = 0

    def __iter__(self) -> Iterator[tuple[Side, ServedDecision]]:
        for index, side in enumerate(self.sides):
            self._index = index
            yield side, self.dispatcher.served(self.route, side, self.error)

    def check(self, value: T, side: Side) -> T:
        """The answer, or :class:`EmptyResponseError` when it is empty."""
        if self.dispatcher.is_empty(value):
            raise EmptyResponseError(f"{self.dispatcher.names[side]} returned an empty message")
        return value

    def failed(self, exc: Exception, side: Side, relay: _Relay | None = None) -> None:
        """Raise the wrapped failure when it is final; else log it and let the loop try the other side."""
        d = self.dispatcher
        if isinstance(exc, d.passthrough):
            raise exc
        delivered, partial = (relay.delivered, relay.text()) if relay is not None else (0, "")
        if isinstance(exc, PartialOutputError):
            delivered, partial, exc = exc.chunks, exc.text, exc.cause  # type: ignore[assignment]
        if delivered or self._index == len(self.sides) - 1:
            raise d.error(
                self.route, side, exc, first_error=self.error, relay=relay, delivered=delivered, partial_text=partial
            ) from exc
        other = other_side(side)
        logger.warning(
            "%s: the %s %s model %r failed (%s); falling back to the %s model %r",
            d.owner,
            d.how_called(self.route, side),
            side,
            d.names[side],
            type(exc).__name__,
            other,
            d.names[other],
        )
        self.error = exc
        if d.on_fallback is not None:
            d.on_fallback(d.served(self.route, other, exc), exc)


class _Relay:
    """One side's stream: leading empty chunks are held back until the first chunk with content."""

    def __init__(self, dispatcher: Dispatcher, record: ServedDecision) -> None:
        self.dispatcher = dispatcher
        self.record = record
        self.delivered = 0
        self._flowing = False
        self._held: list[Any] = []
        self._texts: list[str] = []

    def feed(self, chunk: Any) -> list[tuple[Any, ServedDecision]]:
        """The chunks to deliver now (none while only empty chunks arrived)."""
        self._held.append(chunk)
        if not self._flowing:
            if self.dispatcher.is_empty(chunk):
                return []
            self._flowing = True
        ready, self._held = self._held, []
        self._texts.extend(self.dispatcher.chunk_text(c) for c in ready)
        return [(c, self.record) for c in ready]

    def end(self) -> None:
        """The stream ended: an error if nothing with content ever came."""
        if not self._flowing:
            raise EmptyResponseError(f"{self.record.model} streamed no content")

    def text(self) -> str:
        """Text of the chunks delivered so far."""
        return "".join(self._texts[: self.delivered])
