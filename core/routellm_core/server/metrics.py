"""The server's Prometheus metrics, kept by ``prometheus_client``: one view across uvicorn workers.

In one process the metrics live in the app's own registry. When ``$PROMETHEUS_MULTIPROC_DIR`` is set before
``prometheus_client`` is first imported (``routellm serve --workers N`` sets up a private folder for its workers when
you give none), ``prometheus_client`` runs in its multiprocess mode: every worker writes its values to files in that
folder and ``/metrics`` adds up all the workers' files, so any worker answers a scrape with the same totals. A worker
forgets the in-flight gauge of workers that are gone (``mark_process_dead``) when it starts and when it stops;
counts they made stay counted.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client import Counter as _PromCounter
from prometheus_client import Gauge as _PromGauge
from prometheus_client import Histogram as _PromHistogram
from prometheus_client import values as _values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from routellm_core.errors import InvalidInputError, RouteLLMError

logger = logging.getLogger(__name__)

#: Distinct ``router-auto`` objectives a process labels its series with (4 x the engines a worker keeps); the
#: others' counters go under :data:`OTHER_OBJECTIVES`, their gauges nowhere.
MAX_OBJECTIVE_LABELS = 128
#: The ``objective`` label of the objectives beyond :data:`MAX_OBJECTIVE_LABELS`.
OTHER_OBJECTIVES = "other"
#: Content type of the exposition (Prometheus text format 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The variable naming ``prometheus_client``'s multiprocess folder.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Latency buckets in seconds (routing is sub-millisecond to tens of ms; upstreams take seconds).
ROUTING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: The ``side`` of the escalation check's own upstream calls (the second cheap answer, the self-verification).
CHECK_SIDE = "check"
#: The ``side`` of the labeller's call of the side that did not answer (judge labelling).
LABEL_SIDE = "label"
#: ``side`` of the pairwise judge's calls (two per labelled request: the answers shown both ways round).
JUDGE_SIDE = "judge"

_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def multiprocess_mode() -> bool:
    """Whether ``prometheus_client`` keeps its values in ``$PROMETHEUS_MULTIPROC_DIR`` (decided at its import)."""
    return _values.ValueClass is not _values.MutexValue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def forget_dead_workers(directory: str | os.PathLike[str]) -> list[int]:
    """Remove the live-gauge files of processes that no longer run (``mark_process_dead``); their counts stay.

    Returns:
        The pids forgotten.
    """
    dead: set[int] = set()
    for path in Path(directory).glob("gauge_live*.db"):
        match = _LIVE_GAUGE_FILE.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in sorted(dead):
        mark_process_dead(pid, str(directory))
    return sorted(dead)


@contextmanager
def multiprocess_directory() -> Iterator[str]:
    """The folder the workers of ``--workers N`` share their metrics in, set in ``$PROMETHEUS_MULTIPROC_DIR``.

    The user's folder when the variable is set (created if missing, never emptied: that is the user's to do between
    runs); else a private temporary folder, removed afterwards, with the variable restored.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        yield given
        return
    directory = tempfile.mkdtemp(prefix="routellm-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def _label_values(metric_name: str, names: Sequence[str], labels: dict[str, str]) -> dict[str, str]:
    if set(labels) != set(names):
        raise ValueError(f"{metric_name} takes labels {tuple(names)}, got {sorted(labels)}")
    return {n: str(labels[n]) for n in names}


class Counter:
    """A monotonically increasing count per label set (a ``prometheus_client`` counter)."""

    def __init__(self, name: str, help: str, labels: Sequence[str], registry: CollectorRegistry) -> None:
        self.name = name
        self.label_names = tuple(labels)
        self._metric = _PromCounter(name, help, self.label_names, registry=registry)

    def _child(self, labels: dict[str, str]) -> _PromCounter:
        if not self.label_names:
            _label_values(self.name, (), labels)
            return self._metric
        return self._metric.labels(**_label_values(self.name, self.label_names, labels))

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the count of ``labels``."""
        self._child(labels).inc(amount)


class Gauge:
    """A value that goes up and down (no labels); summed over the live workers in multiprocess mode."""

    def __init__(self, name: str, help: str, registry: CollectorRegistry) -> None:
        self.name = name
        self._metric = _PromGauge(name, help, registry=registry, multiprocess_mode="livesum")

    def add(self, amount: float) -> None:
        """Add ``amount`` (negative to subtract)."""
        self._metric.inc(amount)


class LabelledGauge:
    """A value per label set that is set, not added to; in multiprocess mode ``mode`` says how the workers' values
    are read (``"livemax"``: the largest among the live workers; ``"liveall"``: each live worker's, labelled by
    ``pid``)."""

    def __init__(self, name: str, help: str, labels: Sequence[str], registry: CollectorRegistry, mode: str) -> None:
        self.name = name
        self.label_names = tuple(labels)
        self._metric = _PromGauge(name, help, self.label_names, registry=registry, multiprocess_mode=mode)

    def set(self, value: float, **labels: str) -> None:
        """Set the value of ``labels``."""
        self._metric.labels(**_label_values(self.name, self.label_names, labels)).set(value)

    def remove(self, **labels: str) -> None:
        """Forget the value of ``labels`` (this process's; nothing when it has none)."""
        with suppress(KeyError):
            self._metric.remove(*_label_values(self.name, self.label_names, labels).values())


class Histogram:
    """Observations counted in cumulative buckets, with their sum and count, per label set."""

    def __init__(
        self,
        name: str,
        help: str,
        buckets: Sequence[float],
        registry: CollectorRegistry,
        labels: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.label_names = tuple(labels)
        self.buckets = tuple(sorted(buckets))
        self._metric = _PromHistogram(name, help, self.label_names, registry=registry, buckets=self.buckets)

    def observe(self, value: float, **labels: str) -> None:
        """Record one observation."""
        if self.label_names:
            self._metric.labels(**_label_values(self.name, self.label_names, labels)).observe(value)
        else:
            _label_values(self.name, (), labels)
            self._metric.observe(value)


def _usd(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{what} must be a finite price in USD, at least 0, got {value!r:.60}")
    return float(value)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{what} must be a finite number, at least 0, got {value!r:.60}")
    return float(value)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r:.60}")
    return value


class ServerMetrics:
    """The server's metrics: this process's alone, or every worker's in multiprocess mode.

    Raises:
        RouteLLMError: ``prometheus_client`` is in multiprocess mode but ``$PROMETHEUS_MULTIPROC_DIR`` names no
            folder.
    """

    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        self.directory: str | None = None
        if self.multiprocess:
            self.directory = os.environ.get(MULTIPROC_ENV)
            if not self.directory or not os.path.isdir(self.directory):
                raise RouteLLMError(
                    f"prometheus_client runs in multiprocess mode, but ${MULTIPROC_ENV}={self.directory!r} is not a "
                    "folder: create it before the server starts"
                )
            forget_dead_workers(self.directory)
        self.registry = CollectorRegistry(auto_describe=True)
        self._labelled: set[str] = set()  # the objectives labelled so far (:meth:`_objective`)
        self._labels_lock = threading.Lock()
        self._overflow_said = False
        reg = self.registry
        self.requests = Counter(
            "routellm_requests_total", "Chat completion requests answered, by HTTP status.", ["status"], reg
        )
        self.decisions = Counter(
            "routellm_decisions_total", "Routing decisions, by router and choice.", ["router", "choice"], reg
        )
        self.upstream_calls = Counter(
            "routellm_upstream_calls_total",
            "Upstream calls, by side (strong, weak; check: the escalation check's calls; label: the labeller's; "
            "judge: the pairwise judge's) and outcome (ok, error, cancelled).",
            ["side", "outcome"],
            reg,
        )
        self.fallbacks = Counter(
            "routellm_fallbacks_total",
            "Calls answered by the other side because the chosen one failed, by chosen side and failure type.",
            ["from_side", "error"],
            reg,
        )
        self.errors = Counter(
            "routellm_errors_total", "Error answers, by HTTP status and code.", ["status", "code"], reg
        )
        self.escalations = Counter(
            "routellm_escalations_total",
            "Requests whose cheap answer was checked, by router and whether the strong model was called after it.",
            ["router", "escalated"],
            reg,
        )
        self.costs = Counter(
            "routellm_cost_usd_total",
            "Price of the upstream calls in USD (from the price table), by router and model.",
            ["router", "model"],
            reg,
        )
        self.strong_costs = Counter(
            "routellm_cost_usd_always_strong_total",
            "What the same requests would have cost on the strong model alone, in USD, by router.",
            ["router"],
            reg,
        )
        self.ladder_requests = Counter(
            "routellm_ladder_requests_total",
            "router-auto requests answered, by objective and the model that answered.",
            ["objective", "model"],
            reg,
        )
        self.ladder_expected = Counter(
            "routellm_ladder_expected_cost_usd_total",
            "router-auto: the chosen model's expected cost of each answered request in USD, by objective.",
            ["objective"],
            reg,
        )
        self.ladder_billed = Counter(
            "routellm_ladder_billed_cost_usd_total",
            "router-auto: the price of each answered request's model calls in USD (from the reported tokens), by "
            "objective.",
            ["objective"],
            reg,
        )
        self.budget_target = LabelledGauge(
            "routellm_ladder_budget_target_usd_per_1k",
            "router-auto budget objectives: the target spend in USD per 1,000 requests.",
            ["objective"],
            reg,
            "livemax",
        )
        self.budget_spend = LabelledGauge(
            "routellm_ladder_budget_spend_usd_per_1k",
            "router-auto budget objectives: what the recent calls really cost, in USD per 1,000 requests (per worker).",
            ["objective"],
            reg,
            "liveall",
        )
        self.budget_weight = LabelledGauge(
            "routellm_ladder_cost_weight",
            "router-auto budget objectives: the cost weight the controller set for the latest request, in quality "
            "points per USD (per worker).",
            ["objective"],
            reg,
            "liveall",
        )
        self.share_cap = LabelledGauge(
            "routellm_ladder_share_cap",
            "router-auto shares objectives: each capped model's largest share of the recent requests.",
            ["objective", "model"],
            reg,
            "livemax",
        )
        self.share_served = LabelledGauge(
            "routellm_ladder_share_served",
            "router-auto shares objectives: each capped model's share of the recent served calls (per worker).",
            ["objective", "model"],
            reg,
            "liveall",
        )
        self.in_flight = Gauge(
            "routellm_in_flight_requests", "Chat completion requests in flight (in all live workers).", reg
        )
        self.routing_latency = Histogram(
            "routellm_routing_latency_seconds",
            "Time to route one request (micro-batched scoring).",
            ROUTING_BUCKETS,
            reg,
        )
        self.upstream_latency = Histogram(
            "routellm_upstream_latency_seconds",
            "Time of one upstream call, to the end of the answer or stream, by side (strong, weak, check, label, "
            "judge).",
            UPSTREAM_BUCKETS,
            reg,
            ["side"],
        )

    # ---- the escalation feature's counts ---------------------------------------------------------------------
    def escalation(self, router: str, escalated: bool) -> None:
        """Count a request whose cheap answer was checked: ``escalated`` when the strong model was then called.

        Raises:
            InvalidInputError: A blank router name, or ``escalated`` not a bool.
        """
        if not isinstance(escalated, bool):
            raise InvalidInputError(f"escalated must be True or False, got {escalated!r:.60}")
        self.escalations.inc(router=_name(router, "router"), escalated="true" if escalated else "false")

    def cost(self, router: str, model: str, usd: float) -> None:
        """Add the price of one model call (``usd``) to ``routellm_cost_usd_total{router,model}``.

        Raises:
            InvalidInputError: A blank name, or a price that is not a finite number >= 0.
        """
        self.costs.inc(_usd(usd, "usd"), router=_name(router, "router"), model=_name(model, "model"))

    def strong_cost(self, router: str, usd: float) -> None:
        """Add what a request would have cost on the strong model to ``routellm_cost_usd_always_strong_total``.

        Raises:
            InvalidInputError: A blank router name, or a price that is not a finite number >= 0.
        """
        self.strong_costs.inc(_usd(usd, "usd"), router=_name(router, "router"))

    # ---- router-auto ----------------------------------------------------------------------------------------------
    def _objective(self, objective: str) -> str | None:
        """The ``objective`` label of an objective's series: its own among the first :data:`MAX_OBJECTIVE_LABELS`
        this process labelled, else None (its counters go under :data:`OTHER_OBJECTIVES`, its gauges nowhere): any
        client may ask for a new objective per request, and a series, once written, stays (a counter always; a gauge
        under ``--workers``, where prometheus_client cannot remove one).

        Raises:
            InvalidInputError: A blank objective.
        """
        objective = _name(objective, "objective")
        with self._labels_lock:
            if objective in self._labelled:
                return objective
            if len(self._labelled) < MAX_OBJECTIVE_LABELS:
                self._labelled.add(objective)
                return objective
            if not self._overflow_said:
                self._overflow_said = True
                logger.warning(
                    "metrics: more than %d router-auto objectives asked for in this process: the others' requests "
                    "and costs are counted under objective=%r, and their budget and share gauges are not kept",
                    MAX_OBJECTIVE_LABELS,
                    OTHER_OBJECTIVES,
                )
        return None

    def ladder_answer(self, objective: str, model: str, expected: float, billed: float | None) -> None:
        """Count an answered ``router-auto`` request: who answered, its expected cost and (when priced) its price
        (beyond :data:`MAX_OBJECTIVE_LABELS` objectives, under :data:`OTHER_OBJECTIVES`).

        Raises:
            InvalidInputError: A blank name, or a cost that is not a finite number >= 0.
        """
        objective = self._objective(objective) or OTHER_OBJECTIVES
        self.ladder_requests.inc(objective=objective, model=_name(model, "model"))
        self.ladder_expected.inc(_usd(expected, "expected"), objective=objective)
        if billed is not None:
            self.ladder_billed.inc(_usd(billed, "billed"), objective=objective)

    def budget(self, objective: str, target: float, spend: float, weight: float) -> None:
        """Set a budget objective's gauges (USD per 1,000 requests; the cost weight in force).

        Raises:
            InvalidInputError: A blank objective, or a value that is not a finite number >= 0.
        """
        labelled = self._objective(objective)
        if labelled is None:
            return
        objective = labelled
        self.budget_target.set(_usd(target, "target"), objective=objective)
        self.budget_spend.set(_usd(spend, "spend"), objective=objective)
        self.budget_weight.set(_number(weight, "weight"), objective=objective)

    def budget_spent(self, objective: str, spend: float) -> None:
        """Set a budget objective's realised spend (USD per 1,000 requests) once a call's cost is known.

        Raises:
            InvalidInputError: A blank objective, or a spend that is not a finite number >= 0.
        """
        labelled = self._objective(objective)
        if labelled is not None:
            self.budget_spend.set(_usd(spend, "spend"), objective=labelled)

    def forget_budget(self, objective: str) -> None:
        """Drop a budget objective's gauges (its engine is no longer kept)."""
        for gauge in (self.budget_target, self.budget_spend, self.budget_weight):
            gauge.remove(objective=objective)

    def shares(self, objective: str, caps: Mapping[str, float], served: Mapping[str, float]) -> None:
        """Set a shares objective's gauges: each capped model's cap and its share of the recent served calls.

        Raises:
            InvalidInputError: A blank objective or model, or a share that is not a finite number >= 0.
        """
        labelled = self._objective(objective)
        if labelled is None:
            return
        objective = labelled
        for model, cap in caps.items():
            self.share_cap.set(_number(cap, "cap"), objective=objective, model=_name(model, "model"))
        for model, share in served.items():
            self.share_served.set(_number(share, "share"), objective=objective, model=_name(model, "model"))

    def forget_shares(self, objective: str, models: Sequence[str]) -> None:
        """Drop a shares objective's gauges of ``models`` (its engine is no longer kept)."""
        for gauge in (self.share_cap, self.share_served):
            for model in models:
                gauge.remove(objective=objective, model=model)

    # ---- exposition ------------------------------------------------------------------------------------------
    def render(self) -> str:
        """The exposition text: every worker's totals in multiprocess mode, else this process's."""
        if not self.multiprocess:
            return generate_latest(self.registry).decode()
        assert self.directory is not None
        registry = CollectorRegistry()
        MultiProcessCollector(registry, self.directory)
        return generate_latest(registry).decode()

    def close(self) -> None:
        """A stopping worker's in-flight gauge leaves the sum (multiprocess mode; nothing to do otherwise)."""
        if self.multiprocess and self.directory is not None:
            mark_process_dead(os.getpid(), self.directory)


__all__ = [
    "CHECK_SIDE",
    "CONTENT_TYPE",
    "JUDGE_SIDE",
    "LABEL_SIDE",
    "MULTIPROC_ENV",
    "ServerMetrics",
    "forget_dead_workers",
    "multiprocess_directory",
    "multiprocess_mode",
]
