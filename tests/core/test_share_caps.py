"""Share caps held online (``Objective.shares``): the objective's forms and refusals, the ``ShareController`` on rows
whose split is known in advance, held shares on a drifting stream through the real engine (the shipped ``default``
router, the core stand-ins tiny < mid < big), the correction for what escalation serves, thread safety, the record,
and the LangChain and LlamaIndex front ends."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import numpy as np
import pytest
from ladder_standins import MODELS, PRICES, PRIORS

from routellm_core.decisions import LadderChoice, ServedDecision
from routellm_core.errors import InvalidInputError
from routellm_core.escalation.config import Escalation
from routellm_core.routing.engine import RoutingOptions
from routellm_core.routing.ladder import LadderEngine
from routellm_core.routing.objective import Objective
from routellm_core.routing.shares import ShareController


def engine(objective: Objective | str, **options: object) -> LadderEngine:
    opts = RoutingOptions(objective=objective, priors=PRIORS, prices=PRICES, **options)
    return LadderEngine(opts, MODELS, owner="test", is_empty=lambda v: not v, chunk_text=str, answer_text=str)


# ---- the objective ---------------------------------------------------------------------------------------------
def test_the_text_form_reads_fractions_percents_and_names_holding_colons() -> None:
    objective = Objective.parse("shares=llama3:70b:30%; gpt-4o:0.05,window=500")
    assert objective.kind == "shares" and objective.window == 500
    assert objective.cap_of == {"gpt-4o": 0.05, "llama3:70b": 0.3}  # the name is read up to its last ':'
    assert str(objective) == "shares=gpt-4o:5%;llama3:70b:30%,window=500"
    assert Objective.parse(str(objective)) == objective
    assert Objective.shares({"llama3:70b": 0.3, "gpt-4o": 0.05}, window=500) == objective  # any order: one objective
    assert Objective.parse("shares=big:1") == Objective.shares({"big": 1.0})
    assert RoutingOptions(objective="shares=big:20%").objective == Objective.shares({"big": 0.2})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shares=big:0%", r"share cap of 'big' must be in \(0, 1\]"),
        ("shares=big:1.5", r"share cap of 'big' must be in \(0, 1\]"),
        ("shares=big:-0.1", r"share cap of 'big' must be in \(0, 1\]"),
        ("shares=big:20%;big:30%", "the share of 'big' is given twice"),
        ("shares=", "shares are '<model>:<share>' entries"),
        ("shares=big", "shares are '<model>:<share>' entries"),
        ("shares=big:lots", "the share of 'big' must be a fraction"),
        ("shares=big:20%,window=0", "window must be a positive number"),
        ("shares=big:20%,depth=3", "takes only ',window=<requests>'"),
        ("shares=big:0.5%,window=100", r"less than one of the last 100 requests.*window >= 200"),
        ("margin=0.1,window=50", "a window applies only to the budget objective and the shares one"),
    ],
)
def test_bad_share_caps_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Objective.parse(text)


def test_bad_share_caps_in_python_are_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match="needs at least one cap"):
        Objective.shares({})
    with pytest.raises(InvalidInputError, match="may not hold ',' or ';'"):
        Objective.shares({"a;b": 0.1})
    with pytest.raises(InvalidInputError, match="must be in"):
        Objective.shares({"big": True})
    with pytest.raises(InvalidInputError, match="given twice"):
        Objective.shares([("big", 0.1), ("big", 0.2)])
    with pytest.raises(InvalidInputError, match="caps apply only to the shares objective"):
        Objective("margin", 0.1, caps=(("big", 0.1),))


def test_the_engine_refuses_caps_it_cannot_hold() -> None:
    with pytest.raises(InvalidInputError, match=r"caps \['bigg'\], which models= does not list.*did you mean 'big'"):
        engine("shares=bigg:20%")
    with pytest.raises(InvalidInputError, match=r"caps every listed model and the caps sum to 0\.9 < 1"):
        engine("shares=big:20%;mid:30%;tiny:40%")
    engine("shares=big:20%;mid:30%;tiny:50%")  # every model capped, summing to 1: it can hold


# ---- the controller on rows whose split is known in advance ------------------------------------------------------
def test_the_controller_serves_the_capped_model_its_largest_leads() -> None:
    """Model 1 leads model 0 by 0.01, 0.02 ... 0.10 in a fixed shuffled cycle of 10; a window of 10 always holds
    each lead once, so with a cap of 30% model 1 must get exactly the rows leading by 0.08, 0.09 and 0.10, at a
    penalty of 0.07 (the 4th largest lead: the smallest that leaves it 3 rows)."""
    leads = [0.05, 0.10, 0.01, 0.07, 0.03, 0.09, 0.02, 0.08, 0.06, 0.04]
    ctrl = ShareController({1: 0.3}, 2, window=10)
    cost = np.array([1.0, 2.0])
    for cycle in range(5):
        for lead in leads:
            chosen, penalties, *_ = ctrl.choose(np.array([0.5, 0.5 + lead]), cost)
            if cycle:  # the window is full
                assert chosen == (1 if lead >= 0.08 else 0), lead
                assert penalties[1] == pytest.approx(0.07, abs=1e-6) and penalties[0] == 0
    assert ctrl.shares.tolist() == [pytest.approx(0.3)]


def test_identical_rows_are_split_at_random_in_the_capped_share() -> None:
    """The same prompt again and again: no penalty splits identical rows, so the two neighbouring penalties are mixed
    and the capped model gets its share, not all or none of them."""
    ctrl = ShareController({1: 0.3}, 2, window=100, seed=3)
    picks = []
    for _ in range(1000):
        picks.append(ctrl.choose(np.array([0.5, 0.7]), np.array([1.0, 2.0]))[0])
        ctrl.served(picks[-1])
    # at most the cap, a little under it: the limit holds back the random mix's streaks above the cap
    assert 0.25 <= np.mean(picks[200:]) <= 0.3
    windows = [np.mean(picks[b - 100 : b]) for b in range(200, 1001)]
    assert max(windows) <= 0.3 + 1e-9 and min(windows) >= 0.2, (min(windows), max(windows))


def test_two_caps_are_held_together_and_ties_go_to_the_cheaper_model() -> None:
    rng = np.random.default_rng(0)
    ctrl = ShareController({1: 0.2, 2: 0.3}, 3, window=200)
    picks = []
    for _ in range(1200):
        base = rng.uniform(0.3, 0.6)
        pred = np.array([base, base + rng.uniform(0, 0.2), base + rng.uniform(0, 0.3)])
        picks.append(ctrl.choose(pred, np.array([1.0, 2.0, 3.0]))[0])
    share = np.bincount(picks[200:], minlength=3) / 1000
    assert share[1] == pytest.approx(0.2, abs=0.03) and share[2] == pytest.approx(0.3, abs=0.03)
    tied = ShareController({2: 1.0}, 3, window=10)
    assert tied.choose(np.array([0.5, 0.9, 0.9]), np.array([1.0, 3.0, 2.0]))[0] == 2  # 2 is the cheaper of the two


def test_concurrent_calls_keep_the_window_and_the_cap() -> None:
    ctrl = ShareController({1: 0.25}, 2, window=100, seed=1)
    chosen: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            for _ in range(150):
                a = rng.uniform(0.2, 0.7)
                j, _, ticket, _ = ctrl.choose(np.array([a, a + rng.uniform(0, 0.3)]), np.array([1.0, 2.0]))
                ctrl.served(j, ticket)
                with lock:
                    chosen.append(j)
        except BaseException as exc:  # any failure in a thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(chosen) == 1200
    assert len(ctrl._rows) == 100 and len(ctrl._used) == 100
    # the limit is checked and the choice noted under one lock: no window of the controller's choices overshoots
    assert sum(1 in used for used in ctrl._used) <= 25
    assert np.mean(chosen) == pytest.approx(0.25, abs=0.04)


# ---- the engine: drifting traffic, escalation, the record ---------------------------------------------------------
_ORDER = np.random.default_rng(7).permutation(
    300
)  # the prompts' leads trend with i: arriving shuffled, as traffic does
EASY = [f"What is {i} plus {i + 1}?" for i in _ORDER]
HARD = [
    f"Prove that for every prime p > {i + 3}, p squared minus 1 is divisible by 24, and generalise the argument to "
    f"the residues of p^{2 + i % 5} modulo {24 * (i % 7 + 1)}; implement a verifier in Rust with generics."
    for i in _ORDER
]


def _leads(eng: LadderEngine, texts: list[str]) -> np.ndarray:
    pred = eng.router.predict_success(texts, list(eng.names), priors=eng.priors)
    big, mid = eng.names.index("big"), eng.names.index("mid")
    return np.asarray(pred)[:, big] - np.asarray(pred)[:, mid]


def test_the_capped_share_holds_when_the_capped_models_lead_grows() -> None:
    """big leads mid by more on the second half's prompts; the best predicted model is big on every prompt, so
    uncapped it would take them all. Capped at 20%, it gets 20% of each half and of each 100-request block."""
    eng = engine(Objective.shares({"big": 0.2}, window=100))
    assert _leads(eng, HARD).mean() > _leads(eng, EASY).mean() + 0.01  # precondition: the advantage grows
    best = engine(Objective.margin(0.0))
    assert {best.choice(t).chosen for t in EASY[:20] + HARD[:20]} == {"big"}  # precondition: uncapped, all big
    served = []
    for text in EASY + HARD:
        route = eng.route(text)
        assert route.ladder.objective == "shares" and route.ladder.caps == (("big", 0.2),)
        _, record = eng.call(route, lambda side, rec: f"answer of {rec.model}")
        served.append(record.model == "big")
    served_arr = np.array(served)
    assert served_arr[100:300].mean() == pytest.approx(0.2, abs=0.03)
    assert served_arr[300:].mean() == pytest.approx(0.2, abs=0.03)
    blocks = [served_arr[b : b + 100].mean() for b in range(100, 600, 100)]
    assert all(b <= 0.2 + 1e-9 for b in blocks), blocks  # never above the cap over a window
    assert all(b >= 0.12 for b in blocks), blocks  # nor starved after the switch


def test_what_a_fallback_serves_is_paid_back() -> None:
    """mid fails every tenth call it is chosen for, and falls back to big (its pair's strong side) while big is under
    its cap: what big serves so counts against its cap, and no 100-request window serves big above it (a fallback
    served big at every request once the controller aimed at its floor: a review's case)."""
    eng = engine(Objective.shares({"big": 0.2}, window=100), fallback=True)
    count = Counter[str]()
    served = []
    for i in range(700):
        route = eng.route(EASY[i % 300] if i % 2 else HARD[i % 300])

        def attempt(side: str, rec: ServedDecision) -> str:
            count[rec.model] += 1
            if rec.model == "mid" and count["mid"] % 10 == 0:
                raise TimeoutError("mid timed out")
            return f"answer of {rec.model}"

        _, record = eng.call(route, attempt)
        served.append(record.model == "big")
    assert np.mean(served[300:]) == pytest.approx(0.2, abs=0.03)
    assert max(sum(served[i : i + 100]) for i in range(len(served) - 99)) <= 20


def test_the_record_names_the_caps_and_the_recent_shares() -> None:
    eng = engine("shares=big:20%;mid:30%,window=50")
    for text in HARD[:60]:
        route = eng.route(text)
        eng.call(route, lambda side, rec: "ok")
    entry = route.ladder.as_dict()
    assert entry["objective"] == "shares" and entry["caps"] == {"big": 0.2, "mid": 0.3}
    assert 0.14 <= entry["shares"]["big"] <= 0.2 and 0.24 <= entry["shares"]["mid"] <= 0.3
    assert entry["budget"] is None and entry["spend"] is None
    assert entry["value"] >= 0  # the chosen model's penalty (0 when uncapped)
    assert LadderChoice.from_dict(entry) == route.ladder  # the feedback store's round trip


# ---- front ends -------------------------------------------------------------------------------------------------
def test_langchain_chat_route_llm_holds_the_cap() -> None:
    from lc_fakes import ToolEchoChatModel

    from langchain_routellm import ChatRouteLLM, RouteLLMRunnable

    fakes = {name: ToolEchoChatModel(label=name, model=name) for name in ("tiny", "mid", "big")}
    llm = ChatRouteLLM(models=fakes, objective="shares=big:25%,window=20", priors=PRIORS, prices=PRICES)
    answers = [llm.invoke(text) for text in HARD[:60]]
    big = [a.response_metadata["routellm"]["model"] == "big" for a in answers]
    assert 6 <= sum(big[20:]) <= 10  # at most 25% of 40, a little under where the limit binds
    assert max(sum(big[b - 20 : b]) for b in range(20, 61)) <= 5  # never more than 5 of any 20 in a row
    record = answers[-1].response_metadata["routellm"]["ladder"]
    assert record["objective"] == "shares" and record["caps"] == {"big": 0.25}
    assert answers[-1].text.startswith(f"[{answers[-1].response_metadata['routellm']['model']}]")
    runnable = RouteLLMRunnable(models=fakes, objective="shares=big:25%,window=20", priors=PRIORS, prices=PRICES)
    # 25% of a window of one request is no request: the first goes to the best uncapped model
    assert runnable.invoke("Prove Fermat's little theorem.").text.startswith("[mid]")


def test_llamaindex_route_llm_holds_the_cap() -> None:
    from li_fakes import LabelledLLM

    from llamaindex_routellm import RouteLLM

    llms: dict[str, Any] = {name: LabelledLLM(name) for name in ("tiny", "mid", "big")}
    llm = RouteLLM(models=llms, objective=Objective.shares({"big": 0.25}, window=20), priors=PRIORS, prices=PRICES)
    texts = [llm.complete(text).text for text in HARD[:60]]
    big = [t.startswith("[big]") for t in texts]
    assert 6 <= sum(big[20:]) <= 10 and max(sum(big[b - 20 : b]) for b in range(20, 61)) <= 5
    assert llms["big"].calls == sum(t.startswith("[big]") for t in texts)


# ---- escalation and fallback: what a capped model serves counts against its cap (a review's cases) -------------------
def _rolling_max(served: list[bool], window: int) -> int:
    return max(sum(served[i : i + window]) for i in range(len(served) - window + 1))


@pytest.mark.parametrize("climb", [False, True])
def test_escalations_never_serve_a_capped_model_beyond_its_cap(climb: bool) -> None:
    """Every cheap answer fails its check (two different answers), so every call escalates: along the pair to its
    strong side, or rung by rung. big (capped at 20%) was served 100% of the requests, the pair's strong side being big
    whatever its share; now a model at its cap is closed to the call's escalation."""
    eng = engine(Objective.shares({"big": 0.2}, window=100), escalate=Escalation(threshold=0.5, climb=climb))
    counter = itertools.count()
    served = []
    for i in range(400):
        route = eng.route(f"Prove that {i} squared minus {i} is even, step by step.")
        _, record = eng.call(
            route,
            lambda side, rec: f"answer {next(counter)} of {rec.model}",
            second=lambda rec: f"other {next(counter)}",
        )
        served.append(record.model == "big")
    assert _rolling_max(served, 100) <= 20
    assert sum(served[100:]) >= 0.15 * 300  # the cap is used, not avoided
    assert route.ladder is not None and route.ladder.as_dict()["closed"] is not None


def test_a_fallback_never_serves_a_capped_model_beyond_its_cap() -> None:
    """mid is down: fallback=True sent each of its calls to the pair's strong side, big, capped at 5%: big served
    every request. Now big, at its cap, is closed to the call, which falls back to an open model (tiny)."""
    eng = engine(Objective.shares({"big": 0.05}, window=200), fallback=True)

    def attempt(side: str, rec: ServedDecision) -> str:
        if rec.model == "mid":
            raise TimeoutError("mid is down")
        return f"answer of {rec.model}"

    served = []
    for i in range(600):
        route = eng.route(f"Prove that {i} squared minus {i} is even, step by step.")
        _, record = eng.call(route, attempt)
        served.append(record.model)
    assert _rolling_max([m == "big" for m in served], 200) <= 10
    assert served.count("tiny") > 300  # the calls mid could not answer went to the open model


def test_caps_whose_whole_requests_cannot_fill_the_window_are_refused() -> None:
    """Every model capped, the caps summing to 1, but 55% and 45% of a 10-request window are 5 and 4 whole requests:
    one request in ten could go to no model within its cap (windows reached 60% and 50%)."""
    with pytest.raises(InvalidInputError, match="whole requests"):
        ShareController({0: 0.55, 1: 0.45}, 2, window=10)
    ShareController({0: 0.5, 1: 0.5}, 2, window=10)  # 5 + 5: holds


def test_two_caps_settle_in_a_few_rounds() -> None:
    """With two caps each penalty sat a hair above a lead that moved with the other's: the penalties crept by about
    1e-9 a round and every request ran all MAX_ROUNDS rounds (90 ms a request at a 10,000-request window)."""
    ctrl = ShareController({1: 0.2, 2: 0.3}, 3, window=300, seed=0)
    rng = np.random.default_rng(0)
    rows = [rng.uniform(0.2, 0.9, 3) for _ in range(300)]
    for row in rows:
        ctrl.choose(row, np.array([1.0, 2.0, 3.0]))
    calls = 0
    threshold = ShareController._threshold

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return threshold(*args, **kwargs)

    ctrl._threshold = counted  # type: ignore[method-assign]
    ctrl.choose(rows[0], np.array([1.0, 2.0, 3.0]))
    assert calls <= 2 * 10 + 2  # two caps: at most ten rounds, and the final pass


@pytest.mark.parametrize("caps", [{"big": 1 / 3}, {"big": 0.05, "mid": 0.3}, {"llama3:70b": 0.123456789}])
def test_the_text_form_reads_back_the_same_caps(caps: dict[str, float]) -> None:
    """str() wrote shares as percents to 6 digits: a cap of 1/3 read back as 0.333333, another objective (and on the
    server, a second engine under one metrics label)."""
    objective = Objective.shares(caps)
    assert Objective.parse(str(objective)) == objective


def test_the_limit_alone_moves_no_aim() -> None:
    """The capped model leads by more and more (drift), so the limit, not the penalty, keeps turning it away: the aim
    stays at the cap. Corrected by the shares it aimed at, the aim climbed to 1.5x the cap, the penalty let too much
    through and the limit served the model in bursts, shut for most of each window (bench.ladder_drift's finding)."""
    ctrl = ShareController({1: 0.2}, 2, window=100, seed=0)
    rng = np.random.default_rng(0)
    picks = []
    for i in range(800):
        j, _, ticket, _ = ctrl.choose(np.array([0.5, 0.5 + rng.uniform(0, 0.1) + i / 4000]), np.array([1.0, 2.0]))
        ctrl.served(j, ticket)
        picks.append(j)
    assert ctrl.aims[0] == pytest.approx(0.2)
    halves = [sum(picks[b : b + 50]) for b in range(300, 800, 50)]  # never all of a window's share in one half of it
    assert max(halves) <= 15, halves
