"""Micro-batching: concurrent routing calls share one embedding/scoring batch instead of running one by one.

Batches form naturally, without a timer: the first caller computes at once, and whatever arrives while it
computes becomes the next batch. A lone call therefore pays no waiting time.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from routellm_core.errors import ScoringError

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _LoopState:
    pending: list[tuple[Any, asyncio.Future[Any]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


def _collector(sink: list[tuple[Any, bool, Any]], ok: bool) -> Callable[[Any, Any], None]:
    """A callback that records (future, ok, value) for settling on the event loop's thread."""
    return lambda fut, value: sink.append((fut, ok, value))


class MicroBatcher(Generic[T, R]):
    """Runs ``fn`` on batches of items submitted concurrently from threads or asyncio tasks.

    If a batch fails, its items are retried one by one, so one bad item fails only its own caller.

    Args:
        fn: Maps a list of items to a list of results of the same length; must be thread-safe.
        max_batch_size: Largest batch handed to ``fn``.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch_size: int = 64) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.fn = fn
        self.max_batch_size = max_batch_size
        self._lock = threading.Lock()
        self._pending: list[tuple[T, Future[R]]] = []
        self._running = False
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    # ---- threads ---------------------------------------------------------------------------------------
    def submit(self, item: T) -> R:
        """Compute one item's result, batched with items other threads submit meanwhile."""
        fut: Future[R] = Future()
        with self._lock:
            self._pending.append((item, fut))
            lead = not self._running
            self._running = True
        if lead:
            self._drain_threads()
        return fut.result()

    def _drain_threads(self) -> None:
        batch: list[tuple[T, Future[R]]] = []
        try:
            while True:
                with self._lock:
                    if not self._pending:
                        self._running = False
                        return
                    batch = self._pending[: self.max_batch_size]
                    del self._pending[: self.max_batch_size]
                self._run_batch(batch, lambda f, r: f.set_result(r), lambda f, e: f.set_exception(e))
        except BaseException as exc:
            # The leading thread was interrupted (KeyboardInterrupt, SystemExit...) inside ``fn``: fail the
            # items it held and the queued ones instead of leaving their threads waiting forever, and give
            # up the lead so that later calls work again.
            with self._lock:
                stranded = batch + self._pending
                self._pending = []
                self._running = False
            error = ScoringError(f"routing was interrupted by {type(exc).__name__} in another thread")
            for _, fut in stranded:
                if not fut.done():
                    fut.set_exception(error)
            raise

    # ---- asyncio ---------------------------------------------------------------------------------------
    async def asubmit(self, item: T) -> R:
        """Compute one item's result off the event loop, batched with the loop's other pending items."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState()
        fut: asyncio.Future[R] = loop.create_future()
        state.pending.append((item, fut))
        if state.task is None or state.task.done():
            state.task = loop.create_task(self._drain_loop(state))
        return await fut

    async def _drain_loop(self, state: _LoopState) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0)  # let tasks scheduled in the same tick join the first batch
        while state.pending:
            batch = state.pending[: self.max_batch_size]
            del state.pending[: self.max_batch_size]
            settled: list[tuple[asyncio.Future[Any], bool, Any]] = []
            ok, fail = _collector(settled, True), _collector(settled, False)
            await loop.run_in_executor(None, self._run_batch, batch, ok, fail)
            for fut, ok, value in settled:
                if fut.done():  # the caller was cancelled
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    # ---- shared ----------------------------------------------------------------------------------------
    def _run_batch(
        self,
        batch: list[tuple[T, Any]],
        ok: Callable[[Any, R], None],
        fail: Callable[[Any, BaseException], None],
    ) -> None:
        items = [item for item, _ in batch]
        try:
            results = list(self.fn(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        except Exception:
            if len(batch) == 1:
                self._settle_one(batch[0], ok, fail)
                return
            for entry in batch:
                self._settle_one(entry, ok, fail)
            return
        for (_, fut), result in zip(batch, results):
            ok(fut, result)

    def _settle_one(
        self,
        entry: tuple[T, Any],
        ok: Callable[[Any, R], None],
        fail: Callable[[Any, BaseException], None],
    ) -> None:
        item, fut = entry
        try:
            ok(fut, self.fn([item])[0])
        except Exception as exc:
            fail(fut, exc)
