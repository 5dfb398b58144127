"""The server's Prometheus metrics through ``prometheus_client``: the names and labels scrapers rely on, the
escalation feature's counts (``escalation``, ``cost``, ``strong_cost``), and the multiprocess mode in real
processes: counts add up across workers, a dead worker's in-flight gauge is forgotten, its counts are kept, and
``--workers N`` gets a private folder that is removed afterwards.

Expositions are read with ``prometheus_client``'s text parser (labels in any order, values as floats).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from routellm_core.errors import InvalidInputError
from routellm_core.server.metrics import MULTIPROC_ENV, ServerMetrics, multiprocess_directory

#: The metric families a scraper (and the web page) reads, with their label names.
FAMILIES = {
    "routellm_requests": ("counter", {"status"}),
    "routellm_decisions": ("counter", {"router", "choice"}),
    "routellm_upstream_calls": ("counter", {"side", "outcome"}),
    "routellm_fallbacks": ("counter", {"from_side", "error"}),
    "routellm_errors": ("counter", {"status", "code"}),
    "routellm_escalations": ("counter", {"router", "escalated"}),
    "routellm_cost_usd": ("counter", {"router", "model"}),
    "routellm_cost_usd_always_strong": ("counter", {"router"}),
    "routellm_in_flight_requests": ("gauge", set()),
    "routellm_routing_latency_seconds": ("histogram", set()),
    "routellm_upstream_latency_seconds": ("histogram", {"side"}),
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition: (sample name, labels) -> value."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def test_every_family_is_exposed_with_its_type_and_labels() -> None:
    metrics = ServerMetrics()
    metrics.requests.inc(status="200")
    metrics.decisions.inc(router="fast", choice="weak")
    metrics.upstream_calls.inc(side="weak", outcome="ok")
    metrics.fallbacks.inc(from_side="strong", error="Timeout")
    metrics.errors.inc(status="404", code="model_not_found")
    metrics.escalation("fast", False)
    metrics.cost("fast", "gpt-4o-mini", 0.001)
    metrics.strong_cost("fast", 0.01)
    metrics.in_flight.add(1)
    metrics.routing_latency.observe(0.002)
    metrics.upstream_latency.observe(0.3, side="weak")
    families = {f.name: f for f in text_string_to_metric_families(metrics.render())}
    for name, (kind, labels) in FAMILIES.items():
        assert families[name].type == kind, name
        main = [s for s in families[name].samples if not s.name.endswith("_created")]
        assert main, name
        assert {key for s in main for key in s.labels} - {"le"} == labels, name


def test_wrong_labels_are_refused() -> None:
    metrics = ServerMetrics()
    with pytest.raises(ValueError, match="routellm_requests_total takes labels"):
        metrics.requests.inc(code="200")
    with pytest.raises(ValueError, match="routellm_routing_latency_seconds takes labels"):
        metrics.routing_latency.observe(0.1, side="strong")


def test_escalations_and_costs_add_up() -> None:
    metrics = ServerMetrics()
    for escalated in (True, False, False):
        metrics.escalation("default", escalated)
    metrics.escalation("fast", True)
    metrics.cost("default", "gpt-4o-mini", 0.00015)
    metrics.cost("default", "gpt-4o-mini", 0.00025)
    metrics.cost("default", "gpt-4o", 0.0025)
    metrics.cost("default", "free-model", 0)
    metrics.strong_cost("default", 0.0025)
    metrics.strong_cost("default", 0.005)
    text = metrics.render()
    assert value(text, "routellm_escalations_total", router="default", escalated="true") == 1
    assert value(text, "routellm_escalations_total", router="default", escalated="false") == 2
    assert value(text, "routellm_escalations_total", router="fast", escalated="true") == 1
    assert value(text, "routellm_cost_usd_total", router="default", model="gpt-4o-mini") == pytest.approx(0.0004)
    assert value(text, "routellm_cost_usd_total", router="default", model="gpt-4o") == pytest.approx(0.0025)
    assert ("routellm_cost_usd_total", frozenset({("router", "default"), ("model", "free-model")})) in samples(text)
    assert value(text, "routellm_cost_usd_always_strong_total", router="default") == pytest.approx(0.0075)


@pytest.mark.parametrize("usd", [-0.01, float("nan"), float("inf"), True, "0.1", None])
def test_a_price_that_is_not_a_finite_non_negative_number_is_refused(usd: object) -> None:
    metrics = ServerMetrics()
    with pytest.raises(InvalidInputError, match="usd must be a finite price in USD"):
        metrics.cost("default", "gpt-4o", usd)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="usd must be a finite price in USD"):
        metrics.strong_cost("default", usd)  # type: ignore[arg-type]
    assert value(metrics.render(), "routellm_cost_usd_always_strong_total", router="default") == 0


def test_bad_escalation_arguments_are_refused() -> None:
    metrics = ServerMetrics()
    with pytest.raises(InvalidInputError, match="escalated must be True or False"):
        metrics.escalation("default", "yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="router must be a non-empty string"):
        metrics.escalation("", True)
    with pytest.raises(InvalidInputError, match="model must be a non-empty string"):
        metrics.cost("default", "", 0.1)


# ---- multiprocess mode, in real processes --------------------------------------------------------------------
#: A worker: counts ``n`` requests and one in-flight request, prints its exposition, then dies without any cleanup
#: (``os._exit``, as a killed worker does) unless told to stop cleanly.
WORKER = """
import os, sys
from routellm_core.server.metrics import ServerMetrics, multiprocess_mode
assert multiprocess_mode()
n, clean = int(sys.argv[1]), sys.argv[2] == "clean"
metrics = ServerMetrics()
for _ in range(n):
    metrics.requests.inc(status="200")
metrics.cost("fast", "gpt-4o", 0.5)
metrics.in_flight.add(1)
metrics.routing_latency.observe(0.001)
print(metrics.render(), flush=True)
if clean:
    metrics.in_flight.add(-1)
    metrics.close()
    sys.exit(0)
os._exit(0)
"""


def _worker(directory: Path, n: int, clean: bool = False) -> str:
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(n), "clean" if clean else "killed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _read(directory: Path) -> str:
    from prometheus_client import generate_latest

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))
    return generate_latest(registry).decode()


@pytest.mark.slow
def test_workers_add_up_and_a_dead_workers_gauge_is_forgotten(tmp_path: Path) -> None:
    first = _worker(tmp_path, 3)
    assert value(first, "routellm_requests_total", status="200") == 3
    assert value(_read(tmp_path), "routellm_in_flight_requests") == 1  # it died holding a request: still on disk
    second = _worker(tmp_path, 4)  # sees the first worker's counts, not its request in flight
    assert value(second, "routellm_requests_total", status="200") == 7
    assert value(second, "routellm_cost_usd_total", router="fast", model="gpt-4o") == 1.0
    assert value(second, "routellm_in_flight_requests") == 1  # itself only
    third = _worker(tmp_path, 1, clean=True)
    assert value(third, "routellm_requests_total", status="200") == 8
    assert value(third, "routellm_in_flight_requests") == 1
    assert value(third, "routellm_routing_latency_seconds_count") == 3
    after = _read(tmp_path)  # it stopped cleanly: no request in flight anywhere
    assert value(after, "routellm_in_flight_requests") == 0
    assert value(after, "routellm_requests_total", status="200") == 8


def test_multiprocess_directory_is_private_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with multiprocess_directory() as private:
        assert os.environ[MULTIPROC_ENV] == private and os.path.isdir(private)
        Path(private, "counter_1.db").write_bytes(b"")
    assert MULTIPROC_ENV not in os.environ and not os.path.exists(private)
    given = tmp_path / "metrics"
    monkeypatch.setenv(MULTIPROC_ENV, str(given))
    with multiprocess_directory() as folder:
        assert folder == str(given) and given.is_dir()
        (given / "counter_1.db").write_bytes(b"")
    assert os.environ[MULTIPROC_ENV] == str(given) and (given / "counter_1.db").exists()  # the user's: kept
