"""A tiny Prometheus text exposition (format 0.0.4): counters, one gauge and histograms, per worker process."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

#: Content type of the exposition.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Latency buckets in seconds (routing is sub-millisecond to tens of ms; upstreams take seconds).
ROUTING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    """A monotonically increasing count per label set."""

    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the count of ``labels``."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        """The current count of ``labels`` (0 when never incremented)."""
        return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Gauge(_Metric):
    """A value that goes up and down (no labels)."""

    kind = "gauge"

    def __init__(self, name: str, help: str) -> None:
        super().__init__(name, help)
        self.value = 0.0

    def add(self, amount: float) -> None:
        """Add ``amount`` (negative to subtract)."""
        with self._lock:
            self.value += amount

    def render(self) -> list[str]:
        return [*self.header(), f"{self.name} {_number(self.value)}"]


class Histogram(_Metric):
    """Observations counted in cumulative buckets, with their sum and count, per label set."""

    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float], labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelValues, list[float]] = {}  # per-bucket counts, then +Inf count, then sum

    def observe(self, value: float, **labels: str) -> None:
        """Record one observation."""
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += 1
            series[-1] += value

    def count(self, **labels: str) -> int:
        """Observations recorded for ``labels``."""
        series = self._series.get(self._key(labels))
        return int(series[-2]) if series else 0

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for key, series in items:
            for bound, count in zip((*self.buckets, math.inf), series[:-1]):
                le = f'le="{_number(bound)}"'
                lines.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(count)}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(series[-1])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(series[-2])}")
        return lines


class ServerMetrics:
    """The server's metrics (one set per worker process)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "routellm_requests_total", "Chat completion requests answered, by HTTP status.", ["status"]
        )
        self.decisions = Counter(
            "routellm_decisions_total", "Routing decisions, by router and choice.", ["router", "choice"]
        )
        self.upstream_calls = Counter(
            "routellm_upstream_calls_total",
            "Upstream calls, by side and outcome (ok, error, cancelled).",
            ["side", "outcome"],
        )
        self.fallbacks = Counter(
            "routellm_fallbacks_total",
            "Calls answered by the other side because the chosen one failed, by chosen side and failure type.",
            ["from_side", "error"],
        )
        self.errors = Counter("routellm_errors_total", "Error answers, by HTTP status and code.", ["status", "code"])
        self.in_flight = Gauge("routellm_in_flight_requests", "Chat completion requests in flight in this worker.")
        self.routing_latency = Histogram(
            "routellm_routing_latency_seconds", "Time to route one request (micro-batched scoring).", ROUTING_BUCKETS
        )
        self.upstream_latency = Histogram(
            "routellm_upstream_latency_seconds",
            "Time of one upstream call, to the end of the answer or stream, by side.",
            UPSTREAM_BUCKETS,
            ["side"],
        )

    def render(self) -> str:
        """The exposition text."""
        metrics: list[_Metric] = [
            self.requests,
            self.decisions,
            self.upstream_calls,
            self.fallbacks,
            self.errors,
            self.in_flight,
            self.routing_latency,
            self.upstream_latency,
        ]
        lines: list[str] = []
        for metric in metrics:
            lines += metric.render()  # type: ignore[attr-defined]
        return "\n".join(lines) + "\n"
