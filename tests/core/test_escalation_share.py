"""``Escalation(share=s)`` in a routed call: about ``s`` of the checked (not pre-routed) calls escalate.

A real engine (the router fitted in the tests: ``HARD`` prompts are pre-routed to strong, ``TRIVIA`` go to the
cascade) on scripted traffic whose check confidences are known in advance: the weak model "answers" a number and
:class:`ScriptedCheck` reads it back as the confidence. So each test knows which calls a threshold escalates, and
measures the share the engine really escalated from the records.
"""

from __future__ import annotations

import asyncio
import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fitted_router import HARD, TRIVIA

import routellm_core.escalation
from routellm_core.decisions import ServedDecision, Side
from routellm_core.errors import InvalidInputError, InvalidThresholdError
from routellm_core.escalation import CheckInput, Escalation
from routellm_core.routing.engine import RoutingEngine, RoutingOptions
from routellm_core.routing.tracking import QuantileTracker

NAMES: dict[Side, str] = {"strong": "big-model", "weak": "small-model"}
CALIBRATION = Path(routellm_core.escalation.__file__).resolve().parent / "share_calibration.json"
STRONG_ANSWER = "the strong answer"


@dataclass
class ScriptedCheck:
    """A check whose confidence is the weak answer itself (the traffic scripts it as a number in [0, 1])."""

    name: str = "scripted"
    needs_second_answer: bool = False

    def signals(self, batch: CheckInput) -> dict[str, np.ndarray]:
        return {"scripted": self.confidence(batch)}

    def confidence(self, batch: CheckInput) -> np.ndarray:
        return np.array([float(a) for a in batch.first])


def engine(known_router: Any, escalation: Escalation) -> RoutingEngine:
    return RoutingEngine(
        RoutingOptions(router=known_router, strong_fraction=0.5, escalate=escalation),
        NAMES,
        owner="Test",
        is_empty=lambda value: not str(value).strip(),
        chunk_text=str,
        answer_text=str,
    )


def weak_says(confidence: float) -> Any:
    def attempt(side: Side, record: ServedDecision) -> str:
        return repr(float(confidence)) if side == "weak" else STRONG_ANSWER

    return attempt


def serve(routed: RoutingEngine, confidences: Any, prompts: list[str] | None = None) -> list[ServedDecision]:
    """One call per confidence, on TRIVIA prompts (the cascade) unless ``prompts`` says otherwise."""
    records = []
    for i, confidence in enumerate(confidences):
        prompt = prompts[i] if prompts is not None else TRIVIA[i % len(TRIVIA)]
        _, record = routed.call(routed.route(prompt), weak_says(confidence))
        records.append(record)
    return records


def escalated_share(records: list[ServedDecision]) -> float:
    checked = [r for r in records if r.choice == "weak"]
    return sum(r.escalated for r in checked) / len(checked)


def threshold_of(record: ServedDecision) -> float:
    return record.attempts[0].signals["escalation_threshold"]


def test_the_share_is_held_once_the_window_filled(known_router: Any) -> None:
    """Uniform confidences, one call in four pre-routed: after 200 checked calls, 20% +- 5 points of the next 600
    checked calls escalate, and the pre-routed calls neither escalate nor count."""
    routed = engine(known_router, Escalation(check=ScriptedCheck(), share=0.2, window=200))
    rng = np.random.default_rng(7)
    prompts = [HARD[i % len(HARD)] if i % 4 == 3 else TRIVIA[i % len(TRIVIA)] for i in range(1064)]
    records = serve(routed, rng.random(len(prompts)), prompts)
    checked = [r for r in records if r.choice == "weak"]
    pre_routed = [r for r in records if r.choice == "strong"]
    assert len(checked) == 798 and pre_routed and not any(r.escalated for r in pre_routed)
    assert all(len(r.attempts) == 1 and not r.attempts[0].signals for r in pre_routed)  # never checked
    assert routed.cascade is not None and routed.cascade.tracker is not None
    assert routed.cascade.tracker.seen == len(checked)
    assert escalated_share(checked[200:]) == pytest.approx(0.2, abs=0.05)
    # each record reports the threshold it was held to: below it escalated, at or above it kept
    for record in checked:
        confidence = record.attempts[0].confidence
        assert record.escalated == (confidence < threshold_of(record))
        assert (record.served, record.model) == (
            ("strong", "big-model") if record.escalated else ("weak", "small-model")
        )


def test_the_threshold_follows_a_drift(known_router: Any) -> None:
    """Confidences in [0, 0.5), then in [0.5, 1): the threshold moves into the new range within one window, so the
    share comes back to 30% (a threshold kept from the first half would escalate none of the second)."""
    routed = engine(known_router, Escalation(check=ScriptedCheck(), share=0.3, window=200))
    rng = np.random.default_rng(11)
    first = serve(routed, rng.uniform(0.0, 0.5, 500))
    second = serve(routed, rng.uniform(0.5, 1.0, 600))
    assert escalated_share(first[200:]) == pytest.approx(0.3, abs=0.06)
    assert threshold_of(first[-1]) < 0.5
    assert escalated_share(second[:50]) < 0.1  # right after the shift the old window still holds the threshold low
    assert escalated_share(second[250:]) == pytest.approx(0.3, abs=0.06)
    assert 0.5 < threshold_of(second[-1]) < 1.0


def test_the_shipped_prior_sets_the_first_threshold(known_router: Any) -> None:
    quantiles = json.loads(CALIBRATION.read_text())["checks"]
    features = quantiles["answer_features"]["quantiles"]  # at levels 0.005, 0.015, ..., 0.995
    for share in (0.3, 0.8):
        routed = engine(known_router, Escalation(check="answer_features", share=share))
        _, record = routed.call(routed.route(TRIVIA[0]), weak_says(0.5))
        k = round(share * 100)
        assert features[k - 1] <= threshold_of(record) <= features[k]
    # agreement's confidences are 0 or 1: at the shipped disagreement rate the first threshold parts the two
    agreement = quantiles["agreement"]["quantiles"]
    assert set(agreement) == {0.0, 1.0}
    zeros = agreement.count(0.0) / len(agreement)
    routed = engine(known_router, Escalation(share=zeros))
    for second, escalated in (("42", False), ("43", True)):
        route = routed.route(TRIVIA[1])
        _, record = routed.call(route, weak_says(42), second=lambda _record, value=second: value)
        assert record.escalated is escalated and 0.0 < threshold_of(record) < 1.0
    # a check without shipped data starts from the uniform prior: threshold about s
    routed = engine(known_router, Escalation(check=ScriptedCheck(), share=0.3))
    (record,) = serve(routed, [0.9])
    assert threshold_of(record) == pytest.approx(0.3, abs=0.01)


def test_heavy_ties_are_split_so_any_share_is_held(known_router: Any) -> None:
    """Confidences 0 (30% of calls) or 1: a threshold alone escalates all of the zeros or none, so the tie at the cut
    is split by the decision id: every target share is held in expectation, and a decision's draw is its own."""
    traffic = [0.0 if i % 10 < 3 else 1.0 for i in range(500)]
    for share in (0.1, 0.15, 0.3, 0.45, 0.7):
        routed = engine(known_router, Escalation(check=ScriptedCheck(), share=share, window=100))
        records = serve(routed, traffic)
        # 400 calls after the window filled: 3 binomial standard deviations at most
        assert escalated_share(records[100:]) == pytest.approx(share, abs=3 * (share * (1 - share) / 400) ** 0.5)
        if share < 0.3:  # only zeros escalate, a part of them
            assert all(not r.escalated for r, c in zip(records, traffic, strict=True) if c == 1.0)
        else:  # every zero escalates, and a part of the ones
            assert all(r.escalated for r, c in zip(records[100:], traffic[100:], strict=True) if c == 0.0)
    # 0 and 1 are exact at any tie: never, always
    for share, reached in ((0.0, 0.0), (1.0, 1.0)):
        routed = engine(known_router, Escalation(check=ScriptedCheck(), share=share, window=100))
        assert escalated_share(serve(routed, traffic[:50])) == reached


def test_a_tie_draw_is_fixed_per_decision() -> None:
    cut = QuantileTracker([0.0] * 5 + [1.0] * 5, window=10).split(0.25)
    assert (cut.tie, cut.tie_share) == (0.0, 0.5) and cut.threshold < 0.0 + 1e-9
    assert cut.below(0.0, 0.49) and not cut.below(0.0, 0.51) and not cut.below(1.0, 0.0)


def test_async_and_threaded_calls_share_one_tracker(known_router: Any) -> None:
    rng = np.random.default_rng(3)
    confidences = rng.random(400)
    routed = engine(known_router, Escalation(check=ScriptedCheck(), share=0.25, window=100))

    async def one(confidence: float) -> ServedDecision:
        async def attempt(side: Side, record: ServedDecision) -> str:
            await asyncio.sleep(0)
            return weak_says(confidence)(side, record)

        route = await routed.aroute(TRIVIA[int(confidence * 10)])
        return (await routed.acall(route, attempt))[1]

    async def traffic() -> list[ServedDecision]:
        first = [await one(c) for c in confidences[:100]]  # fill the window
        return first + list(await asyncio.gather(*(one(c) for c in confidences[100:])))

    records = asyncio.run(traffic())
    assert routed.cascade is not None and routed.cascade.tracker is not None
    assert routed.cascade.tracker.seen == 400
    assert escalated_share(records[100:]) == pytest.approx(0.25, abs=0.06)

    threaded = engine(known_router, Escalation(check=ScriptedCheck(), share=0.25, window=100))
    serve(threaded, confidences[:100])
    with ThreadPoolExecutor(8) as pool:
        records = list(pool.map(lambda c: serve(threaded, [c])[0], confidences[100:]))
    assert threaded.cascade is not None and threaded.cascade.tracker is not None
    assert threaded.cascade.tracker.seen == 400
    assert escalated_share(records) == pytest.approx(0.25, abs=0.06)


def test_bad_share_settings_are_refused(known_router: Any) -> None:
    for bad in (-0.1, 1.5, math.nan, math.inf, "0.2", True):
        with pytest.raises(InvalidThresholdError, match="Escalation share"):
            Escalation(share=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="either threshold or share"):
        Escalation(share=0.2, threshold=0.5)
    for window in (5, 2.5, True):
        with pytest.raises(InvalidInputError, match="window must be an int >= 10"):
            Escalation(share=0.2, window=window)  # type: ignore[arg-type]
    routed = engine(known_router, Escalation(share=0.2))  # accepted in a routed call now
    assert routed.cascade is not None and routed.cascade.fixed_threshold is None


def test_the_tracker_blends_its_prior_out_as_the_window_fills() -> None:
    tracker = QuantileTracker([0.9] * 10, window=20)
    # only the prior, all at 0.9: the reachable shares are 0 and 1; 0.4 is nearer 0, 0.5 an exact middle (escalates)
    assert tracker.cut(0.4) == pytest.approx(0.45) and tracker.split(0.4).tie_share == pytest.approx(0.4)
    for _ in range(10):
        tracker.observe(0.1)
    assert tracker.prior_weight == 0.5 and tracker.share_below(0.5) == 0.5
    assert tracker.cut(0.5) == pytest.approx(0.5)  # halfway between the observed 0.1s and the prior's 0.9s
    for _ in range(10):
        tracker.observe(0.3)
    assert tracker.prior_weight == 0.0 and tracker.cut(0.5) == pytest.approx(0.2)  # the prior is gone
    assert tracker.cut(0.0) == 0.0 and tracker.cut(1.0) > 1.0
    with pytest.raises(InvalidInputError, match="at least one value"):
        QuantileTracker([])
    with pytest.raises(InvalidInputError, match="tracked value must be a number in"):
        tracker.observe(1.5)
    with pytest.raises(InvalidThresholdError):
        tracker.cut(2.0)


def test_the_shipped_calibration_is_what_its_script_builds(shared_data_dir: Path) -> None:
    """``scripts/calibrate_escalation_share.py`` rebuilt from the shared ZeroEval answers gives the shipped JSON."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "calibrate_escalation_share.py"
    spec = importlib.util.spec_from_file_location("calibrate_escalation_share", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = json.loads(json.dumps(module.build()))
    assert rebuilt == json.loads(CALIBRATION.read_text())
    assert set(rebuilt["checks"]) == {"agreement", "answer_features"} and rebuilt["cells"] == 15
