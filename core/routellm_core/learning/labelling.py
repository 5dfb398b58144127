"""Label a sample of live traffic in the background: ask the other model, judge both answers, store the verdict.

For a sampled call (:meth:`Labeller.should_label`, a seeded hash of the decision id), the app hands the labeller
the routed call's :class:`~routellm_core.learning.feedback.DecisionRecord`, the prompt, the answer it already served
and a function that asks the model that was *not* called. In the background the labeller calls it, puts the two answers
in ``model_a`` = strong / ``model_b`` = weak order, asks the judge, and stores the verdict in the
:class:`~routellm_core.learning.feedback.FeedbackStore` with ``source="judge"``.

The caller never waits and never sees a labelling failure: it already has its answer. Work is bounded: at most
``max_pending`` jobs are accepted but unfinished; beyond that a label is dropped and counted. Every failure (the
other model, the judge, the store) is counted and logged at WARNING with its exception type only, never the prompt
or an error message that might quote it. An :class:`~routellm_core.learning.judging.Unparseable` verdict is counted, not
stored. Sync callers' jobs run in a small pool of daemon threads; async callers' jobs run as tasks on their event
loop (with blocking judge and store calls moved to daemon threads).

Shutdown is bounded: a hung judge or model call never holds the interpreter. At exit, labellers still open wait at
most :data:`EXIT_WAIT_S` seconds (all together) for the labels being judged, then drop the rest (counted as
``cancelled``, logged at WARNING); their threads are daemon threads, which the interpreter does not join.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import hashlib
import inspect
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any

from routellm_core.decisions import ServedDecision, Side, check_threshold
from routellm_core.errors import InvalidInputError
from routellm_core.learning.feedback import WINNERS, DecisionRecord, FeedbackStore
from routellm_core.learning.judging import (
    Judge,
    JudgeOutcome,
    Unparseable,
    in_daemon_thread,
    is_async_callable,
    judge_name,
)

logger = logging.getLogger(__name__)

#: Most seconds the interpreter waits at exit for labels still being judged (all open labellers together).
EXIT_WAIT_S = 5.0


class _DaemonPool:
    """Up to ``workers`` daemon threads running submitted calls, started as jobs arrive.

    A ``ThreadPoolExecutor``'s threads are joined at interpreter exit, so one judge call that never returns would
    hold the process forever; these are not.
    """

    def __init__(self, workers: int, name: str) -> None:
        self._workers = workers
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._queue = queue.SimpleQueue()
        self._threads = 0
        self._lock = threading.Lock()
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a pool thread.

        Raises:
            RuntimeError: The pool was shut down.
        """
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit to a pool that was shut down")
            future: Future[Any] = Future()
            self._queue.put((future, fn, args))
            if self._threads < self._workers:
                self._threads += 1
                thread = threading.Thread(target=self._work, name=f"{self._name}-{self._threads}", daemon=True)
                thread.start()
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

    def shutdown(self, cancel_futures: bool = True) -> None:
        """Accept no more jobs; cancel the queued ones (``cancel_futures``); let the threads end after their job."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in range(self._threads):
                self._queue.put(None)


#: Labellers not closed yet, closed with a bounded wait at interpreter exit.
_OPEN: weakref.WeakSet[Labeller] = weakref.WeakSet()


def _close_at_exit() -> None:
    """Close the labellers still open, waiting at most :data:`EXIT_WAIT_S` seconds for all of them together."""
    deadline = time.monotonic() + EXIT_WAIT_S
    for labeller in list(_OPEN):
        if not labeller.close(max(0.0, deadline - time.monotonic())):
            logger.warning(
                "routellm labeller: labels still being judged after %.0f s at exit were dropped (%s)",
                EXIT_WAIT_S,
                labeller.judge_name,
            )


atexit.register(_close_at_exit)


@dataclass(frozen=True)
class LabellerStats:
    """Counters of a :class:`Labeller` (a snapshot).

    Accepted jobs end in exactly one outcome, so ``submitted == stored + unparseable + judge_errors +
    other_model_errors + store_errors + cancelled + pending``.

    Attributes:
        submitted: Jobs accepted.
        stored: Verdicts written to the store.
        dropped_full: Labels dropped because ``max_pending`` jobs were unfinished.
        dropped_closed: Labels dropped because the labeller was closed.
        skipped_empty: Labels not attempted because the served answer had no text (e.g. a tool call only).
        judge_errors: The judge raised, or returned something that is not a verdict.
        unparseable: The judge's reply held no usable verdict (not stored).
        other_model_errors: The other model raised or answered with no text.
        store_errors: Writing the label failed.
        cancelled: Jobs cancelled before they finished (event loop shut down, or close() timed out).
        pending: Jobs accepted and not finished yet.
    """

    submitted: int = 0
    stored: int = 0
    dropped_full: int = 0
    dropped_closed: int = 0
    skipped_empty: int = 0
    judge_errors: int = 0
    unparseable: int = 0
    other_model_errors: int = 0
    store_errors: int = 0
    cancelled: int = 0
    pending: int = 0

    def as_dict(self) -> dict[str, int]:
        """Plain-dict form."""
        return asdict(self)


@dataclass(frozen=True)
class _Job:
    record: DecisionRecord
    prompt: str
    served_answer: str
    threaded: bool

    def answers(self, other_answer: str) -> tuple[str, str]:
        """(strong model's answer, weak model's answer): ``model_a`` / ``model_b`` order."""
        if self.record.served == "strong":
            return self.served_answer, other_answer
        return other_answer, self.served_answer


def _other_answer(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"the other model's call returned {type(value).__name__}, expected the answer text")
    if not value.strip():
        raise ValueError("the other model answered with an empty message")
    return value


#: Most threads labelling sync callers' calls per labeller (a larger ``label_concurrency`` queues the rest: threads,
#: once started, stay).
MAX_LABEL_THREADS = 32


class _JudgeLoop:
    """One event loop on a daemon thread, for the whole process, started on first use, that runs async judges for
    sync callers' labels (pool threads run no loop). One loop for every label: an async client the judge keeps (an
    ``AsyncOpenAI``'s connections) is bound to the loop it first ran on, which a new loop per label would close. It
    is never stopped, so a label still running when its labeller closes finishes (as the pool's jobs do)."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def resolved(cls, value: object) -> object:
        """``value``, or the verdict an awaitable ``value`` comes to (run on the loop)."""
        if not inspect.isawaitable(value):
            return value
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="routellm-judge-loop", daemon=True).start()
                cls._loop = loop
            loop = cls._loop
        return asyncio.run_coroutine_threadsafe(_awaited(value), loop).result()


async def _awaited(value: Awaitable[object]) -> object:
    return await value


def _verdict(value: object) -> JudgeOutcome:
    if isinstance(value, Unparseable) or value in WINNERS:
        return value  # type: ignore[return-value]
    raise TypeError(f"the judge returned an invalid verdict of type {type(value).__name__}")


class Labeller:
    """Labels a seeded sample of routed calls in the background with a judge, into a feedback store.

    Args:
        store: Where verdicts go (``source="judge"``, the judge's name as ``judge``).
        judge: Any :data:`~routellm_core.learning.judging.Judge`, e.g. a
            :class:`~routellm_core.learning.judging.PairwiseJudge` (its ``ajudge`` is used by async callers).
        fraction: Share of calls to label, in [0, 1].
        seed: Seed of the sampling.
        max_pending: Most jobs accepted but unfinished (running or waiting); further labels are dropped.
        workers: Threads for sync callers' jobs.

    Raises:
        InvalidThresholdError: ``fraction`` is not a finite number in [0, 1].
        InvalidInputError: Another argument has the wrong type or range.
    """

    def __init__(
        self,
        store: FeedbackStore,
        judge: Judge,
        fraction: float,
        seed: int = 0,
        max_pending: int = 8,
        workers: int = 2,
    ) -> None:
        if not isinstance(store, FeedbackStore):
            raise InvalidInputError(f"store must be a FeedbackStore, got {type(store).__name__}")
        if not callable(judge):
            raise InvalidInputError(f"judge must be callable (prompt, answer_a, answer_b), got {type(judge).__name__}")
        for value, what in ((seed, "seed"), (max_pending, "max_pending"), (workers, "workers")):
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"{what} must be an int, got {value!r:.60}")
        if max_pending < 1 or workers < 1:
            raise InvalidInputError(f"max_pending and workers must be at least 1, got {max_pending} and {workers}")
        self.store = store
        self.judge = judge
        self.judge_name = judge_name(judge)
        self.fraction = check_threshold(fraction, "fraction")
        self.seed = seed
        self.max_pending = max_pending
        self.workers = workers
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._counts = dict.fromkeys(LabellerStats.__dataclass_fields__, 0)
        self._threaded = 0  # unfinished thread-pool jobs
        self._executor: _DaemonPool | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # strong references: the loop keeps only weak ones
        self._closed = False

    # ---- sampling ------------------------------------------------------------------------------------------
    def should_label(self, key: str) -> bool:
        """Whether to label the call with this key (its decision id): a seeded hash, the same in every process."""
        if not isinstance(key, str):
            raise InvalidInputError(f"the sampling key must be a string (a decision id), got {type(key).__name__}")
        digest = hashlib.blake2b(f"{self.seed}\0{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
        return int.from_bytes(digest, "big") < self.fraction * 2.0**64

    # ---- admission -----------------------------------------------------------------------------------------
    def _admit(self, record: DecisionRecord, served_answer: object, threaded: bool) -> bool:
        if not isinstance(record, DecisionRecord):
            raise InvalidInputError(f"record must be a DecisionRecord, got {type(record).__name__}")
        with self._lock:
            if self._closed:
                reason = "dropped_closed"
            elif not isinstance(served_answer, str) or not served_answer.strip():
                reason = "skipped_empty"
            elif self._counts["pending"] >= self.max_pending:
                reason = "dropped_full"
            else:
                self._counts["submitted"] += 1
                self._counts["pending"] += 1
                self._threaded += int(threaded)
                return True
            self._counts[reason] += 1
        if reason == "dropped_full":  # by design under load: INFO, and counted
            logger.info(
                "routellm labeller: %d jobs pending, label dropped (decision %s)", self.max_pending, record.decision_id
            )
        return False

    def _done(self, outcome: str, threaded: bool) -> None:
        with self._idle:
            self._counts[outcome] += 1
            self._counts["pending"] -= 1
            self._threaded -= int(threaded)
            self._idle.notify_all()

    def submit(self, record: DecisionRecord, prompt: str, served_answer: str, call_other: Callable[[], str]) -> bool:
        """Label a call in a worker thread; returns at once: ``True`` if accepted, ``False`` if dropped/skipped.

        Args:
            record: The routed call (who answered, the two model names, the decision).
            prompt: The routing text (the judge sees it; the store writes it redacted).
            served_answer: The answer already returned to the caller.
            call_other: Asks the model that did not answer; returns its answer text.

        Raises:
            InvalidInputError: ``record`` is not a DecisionRecord (a programming error, not a labelling failure).
        """
        if not self._admit(record, served_answer, threaded=True):
            return False
        job = _Job(record, prompt, served_answer, threaded=True)
        try:
            with self._lock:
                if self._executor is None:
                    self._executor = _DaemonPool(self.workers, "routellm-labeller")
                    _OPEN.add(self)
                future = self._executor.submit(self._run, job, call_other)
        except RuntimeError:  # the pool was shut down by a concurrent close()
            self._done("cancelled", threaded=True)
            return False
        future.add_done_callback(self._on_thread_done)
        return True

    def _on_thread_done(self, future: Future[None]) -> None:
        if future.cancelled():  # close() timed out before the job started
            self._done("cancelled", threaded=True)

    async def asubmit(
        self,
        record: DecisionRecord,
        prompt: str,
        served_answer: str,
        acall_other: Callable[[], Awaitable[str]],
    ) -> bool:
        """Label a call in a background task on the running event loop; like :meth:`submit`, never waits."""
        if not self._admit(record, served_answer, threaded=False):
            return False
        job = _Job(record, prompt, served_answer, threaded=False)
        # In a fresh context: the label's model and judge calls must not run as children of the caller's traced
        # run (its callbacks, spans and usage counters), as they do not on the thread pool either.
        loop = asyncio.get_running_loop()
        task = contextvars.Context().run(loop.create_task, self._arun(job, acall_other), name="routellm-labeller")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    # ---- jobs ----------------------------------------------------------------------------------------------
    def _failed(self, outcome: str, job: _Job, exc: BaseException, what: str) -> str:
        logger.warning(
            "routellm labeller: %s failed (%s); label dropped (decision %s)",
            what,
            type(exc).__name__,
            job.record.decision_id,
        )
        return outcome

    def _store(self, job: _Job, outcome: JudgeOutcome, answers: tuple[str, str]) -> str:
        if isinstance(outcome, Unparseable):
            logger.debug(
                "routellm labeller: unparseable verdict (%s), decision %s", outcome.reason, job.record.decision_id
            )
            return "unparseable"
        rec = job.record
        try:
            self.store.add(
                job.prompt,
                rec.strong_model,
                rec.weak_model,
                outcome,
                source="judge",
                judge=self.judge_name,
                record=rec,
                answer_a=answers[0],
                answer_b=answers[1],
            )
        except Exception as exc:
            return self._failed("store_errors", job, exc, "writing the label")
        return "stored"

    def _label(self, job: _Job, call_other: Callable[[], str]) -> str:
        try:
            other = _other_answer(call_other())
        except Exception as exc:
            return self._failed("other_model_errors", job, exc, f"the other model ({job.record.other_model})")
        answers = job.answers(other)
        try:
            outcome = _verdict(_JudgeLoop.resolved(self._sync_judge(job.prompt, *answers)))
        except Exception as exc:
            return self._failed("judge_errors", job, exc, f"the judge ({self.judge_name})")
        return self._store(job, outcome, answers)

    async def _alabel(self, job: _Job, acall_other: Callable[[], Awaitable[str]]) -> str:
        try:
            other = _other_answer(await acall_other())
        except Exception as exc:
            return self._failed("other_model_errors", job, exc, f"the other model ({job.record.other_model})")
        answers = job.answers(other)
        try:
            outcome = _verdict(await self._ajudge(job.prompt, *answers))
        except Exception as exc:
            return self._failed("judge_errors", job, exc, f"the judge ({self.judge_name})")
        return await in_daemon_thread(self._store, job, outcome, answers)

    def _sync_judge(self, prompt: str, answer_a: str, answer_b: str) -> object:
        """The judge's verdict for a sync caller's label, or an awaitable of it (run on the shared judge loop): a
        judge whose model call is async (``PairwiseJudge(generate=<async>)``) gives its ``ajudge``, whose calls
        then share that loop, rather than running each on a loop of its own."""
        ajudge = getattr(self.judge, "ajudge", None)
        if callable(ajudge) and is_async_callable(getattr(self.judge, "generate", None)):
            return ajudge(prompt, answer_a, answer_b)
        return self.judge(prompt, answer_a, answer_b)

    async def _ajudge(self, prompt: str, answer_a: str, answer_b: str) -> object:
        ajudge = getattr(self.judge, "ajudge", None)
        if callable(ajudge):
            return await ajudge(prompt, answer_a, answer_b)
        if is_async_callable(self.judge):
            return await self.judge(prompt, answer_a, answer_b)  # type: ignore[misc]
        verdict = await in_daemon_thread(self.judge, prompt, answer_a, answer_b)
        return await verdict if inspect.isawaitable(verdict) else verdict  # a plain callable returning a coroutine

    def _run(self, job: _Job, call_other: Callable[[], str]) -> None:
        outcome = "cancelled"
        try:
            outcome = self._label(job, call_other)
        finally:
            self._done(outcome, threaded=True)

    async def _arun(self, job: _Job, acall_other: Callable[[], Awaitable[str]]) -> None:
        outcome = "cancelled"
        try:
            outcome = await self._alabel(job, acall_other)
        finally:
            if outcome == "cancelled":
                logger.warning("routellm labeller: job cancelled, label dropped (decision %s)", job.record.decision_id)
            self._done(outcome, threaded=False)

    # ---- waiting and shutdown ------------------------------------------------------------------------------
    @property
    def stats(self) -> LabellerStats:
        """A snapshot of the counters."""
        with self._lock:
            return LabellerStats(**self._counts)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the thread-pool jobs finish; ``False`` if ``timeout`` seconds passed first.

        Async jobs are awaited with :meth:`aflush`.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._threaded == 0, timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        """Wait until this event loop's labelling tasks and the thread-pool jobs finish; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        tasks = [t for t in self._tasks if t.get_loop() is loop]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await asyncio.to_thread(self.flush, left)

    def close(self, timeout: float | None = None) -> bool:
        """Stop accepting labels, wait up to ``timeout`` for thread-pool jobs, cancel those not started.

        Returns whether every thread-pool job finished. The store stays open (it is the caller's).
        """
        with self._lock:
            self._closed = True
            executor = self._executor
        finished = self.flush(timeout)
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        _OPEN.discard(self)
        return finished

    async def aclose(self, timeout: float | None = None) -> bool:
        """:meth:`close` for async callers: waits for this loop's tasks too."""
        with self._lock:
            self._closed = True
        finished = await self.aflush(timeout)
        closed = await asyncio.to_thread(self.close, 0)
        return finished and closed

    def __enter__(self) -> Labeller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Labeller(judge={self.judge_name!r}, fraction={self.fraction}, max_pending={self.max_pending})"


class TrafficLabelling:
    """What an integration needs to learn its own traffic: the feedback store, and a judge-labelled sample.

    With a store, every routed call's decision is recorded (its routing text, the two model names, who answered and
    the decision, under the decision id the response carries), so the app can attach its own verdict later with
    ``store.add_verdict(decision_id, "good" | "bad" | ...)``. With a judge and ``label_fraction > 0``, a seeded sample
    of calls is also labelled in the background: the *other* model is called, and the judge's verdict stored.

    The caller's answer, latency and errors never change: the decision record is a short SQLite write, labels are
    judged off the call's path, and a failing write is logged at WARNING and counted (``record_errors``), never
    raised into the call.

    Args:
        feedback: A :class:`~routellm_core.learning.feedback.FeedbackStore` or a path to one (created if missing).
        judge: A :data:`~routellm_core.learning.judging.Judge` (already adapted from a framework model by the adapter).
        label_fraction: Share of calls to label with the judge, in [0, 1].
        seed: Seed of the sampling.
        max_pending: Most labelling jobs in flight; further labels are dropped and counted.
        workers: Threads for sync callers' labelling jobs.

    Raises:
        InvalidInputError: ``label_fraction > 0`` without a judge.
        InvalidThresholdError: ``label_fraction`` outside [0, 1].
        FeedbackStoreError: The store cannot be opened (not SQLite, another application's file, read-only...).
    """

    def __init__(
        self,
        feedback: FeedbackStore | str | os.PathLike[str],
        *,
        judge: Judge | None = None,
        label_fraction: float = 0.0,
        seed: int = 0,
        max_pending: int = 8,
        workers: int = 2,
    ) -> None:
        fraction = check_threshold(label_fraction, "label_fraction")
        if fraction > 0 and judge is None:
            raise InvalidInputError(f"label_fraction={fraction} needs a judge= to compare the two answers")
        self.store = feedback if isinstance(feedback, FeedbackStore) else FeedbackStore(feedback)
        self.labeller = (
            Labeller(self.store, judge, fraction, seed=seed, max_pending=max_pending, workers=workers)
            if judge is not None
            else None
        )
        self.record_errors = 0

    def _record(self, served: ServedDecision, names: Mapping[Side, str]) -> DecisionRecord:
        return DecisionRecord.from_decision(served, strong_model=names["strong"], weak_model=names["weak"])

    def _sampled(self, served: ServedDecision) -> bool:
        # A continued step (an agent's tool step) is part of a request already sampled or not under its id.
        return self.labeller is not None and not served.continued and self.labeller.should_label(served.id)

    def _failed(self, served: ServedDecision, exc: Exception) -> None:
        self.record_errors += 1
        logger.warning("routellm feedback: recording decision %s failed (%s)", served.id, type(exc).__name__)

    def after_call(
        self,
        served: ServedDecision,
        names: Mapping[Side, str],
        prompt: str,
        answer: str,
        call_other: Callable[[], str],
        *,
        sample: bool = True,
    ) -> None:
        """Record a served call and, when sampled (never with ``sample=False``: a stream its caller left), label it
        in a worker thread (sync callers). Never raises."""
        try:
            record = self._record(served, names)
            if served.continued:  # a later step of a recorded request: its calls join the decision's
                self.store.add_attempts(served.id, served.attempts)
            else:
                self.store.record_decision(record, prompt, answer=answer)
        except Exception as exc:
            self._failed(served, exc)
            return
        if sample and self._sampled(served):
            assert self.labeller is not None
            self.labeller.submit(record, prompt, answer, call_other)

    async def aafter_call(
        self,
        served: ServedDecision,
        names: Mapping[Side, str],
        prompt: str,
        answer: str,
        acall_other: Callable[[], Awaitable[str]],
        *,
        sample: bool = True,
    ) -> None:
        """Async :meth:`after_call`: the write runs in a worker thread, the label in a background task."""
        try:
            record = self._record(served, names)
            if served.continued:
                await self.store.aadd_attempts(served.id, served.attempts)
            else:
                await self.store.arecord_decision(record, prompt, answer=answer)
        except Exception as exc:
            self._failed(served, exc)
            return
        if sample and self._sampled(served):
            assert self.labeller is not None
            await self.labeller.asubmit(record, prompt, answer, acall_other)

    @staticmethod
    def check_names(names: Mapping[Side, str]) -> None:
        """Refuse two sides with one name: their labels could not tell the models apart.

        Raises:
            InvalidInputError: ``names["strong"] == names["weak"]``.
        """
        if names["strong"] == names["weak"]:
            raise InvalidInputError(
                f"feedback needs two model names, but both sides are named {names['strong']!r}; "
                "set strong_name= and weak_name="
            )

    def __repr__(self) -> str:
        return f"TrafficLabelling(store={self.store!r}, labeller={self.labeller!r})"


def traffic_labelling(
    feedback: FeedbackStore | str | os.PathLike[str] | None,
    judge: Judge | None,
    label_fraction: float,
    seed: int = 0,
    *,
    names: Mapping[Side, str],
    concurrency: int = 8,
) -> TrafficLabelling | None:
    """An integration's labelling from its ``feedback`` / ``judge`` / ``label_fraction`` / ``label_concurrency``
    options (``None``: off): at most ``concurrency`` labels in flight, on as many threads for sync callers.

    Raises:
        InvalidInputError: A judge or a label fraction without a feedback store, or two sides with one name.
    """
    if feedback is None:
        if judge is not None or label_fraction:
            raise InvalidInputError(
                "judge= and label_fraction= need feedback= (a FeedbackStore or a path) to store labels"
            )
        return None
    TrafficLabelling.check_names(names)
    return TrafficLabelling(
        feedback,
        judge=judge,
        label_fraction=label_fraction,
        seed=seed,
        max_pending=concurrency,
        workers=min(concurrency, MAX_LABEL_THREADS),
    )


__all__ = ["Labeller", "LabellerStats", "TrafficLabelling", "traffic_labelling"]
