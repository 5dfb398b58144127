"""The pairwise judge and the background labeller, with scripted judges and a real local causal LM as judge."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from routellm_core.decisions import RoutingDecision
from routellm_core.errors import CheckpointError, InvalidInputError, InvalidThresholdError, JudgeError
from routellm_core.learning.feedback import WINNERS, DecisionRecord, FeedbackStore
from routellm_core.learning.judging import PairwiseJudge, Unparseable, parse_verdict
from routellm_core.learning.labelling import Labeller, LabellerStats

STRONG, WEAK = "big-model", "small-model"
PROMPT = "What is the capital of Australia? SECRET-PROMPT-TEXT"
RIGHT, WRONG = "Canberra is the capital.", "Sydney is the capital."


def _record(served: str, decision_id: str = "d") -> DecisionRecord:
    decision = RoutingDecision(router="mf", win_rate=0.4, threshold=0.5, choice="weak")
    return DecisionRecord.from_decision(
        decision, strong_model=STRONG, weak_model=WEAK, served=served, decision_id=decision_id
    )


def _shown(messages: list[dict[str, str]]) -> tuple[str, str]:
    """The answers shown as assistant A and assistant B in a judging request."""
    user = messages[-1]["content"]
    a = re.search(r"\[The Start of Assistant A's Answer\]\n(.*)\n\[The End of Assistant A's Answer\]", user, re.S)
    b = re.search(r"\[The Start of Assistant B's Answer\]\n(.*)\n\[The End of Assistant B's Answer\]", user, re.S)
    assert a and b
    return a.group(1), b.group(1)


def knows_the_answer(messages: list[dict[str, str]]) -> str:
    """A scripted judge model that prefers the answer naming Canberra, wherever it is shown."""
    a, b = _shown(messages)
    if ("Canberra" in a) == ("Canberra" in b):
        return "Both are equally good. [[C]]"
    return "Assistant A is right. [[A]]" if "Canberra" in a else "Assistant B is right. [[B]]"


def always_first(messages: list[dict[str, str]]) -> str:
    """A scripted judge model with pure position bias."""
    return "The first one. [[A]]"


def knows_verdict(prompt: str, answer_a: str, answer_b: str) -> str:
    """A plain judge callable."""
    if ("Canberra" in answer_a) == ("Canberra" in answer_b):
        return "tie"
    return "model_a" if "Canberra" in answer_a else "model_b"


# ---- the judge -------------------------------------------------------------------------------------------
def test_pairwise_prompt_follows_mt_bench_format() -> None:
    judge = PairwiseJudge(knows_the_answer, name="scripted")
    system, user = judge.messages("Q?", "first", "second")
    assert system["role"] == "system" and '"[[A]]"' in system["content"] and '"[[C]]" for a tie' in system["content"]
    assert user["role"] == "user" and user["content"].startswith("[User Question]\nQ?\n\n")
    assert _shown([system, user]) == ("first", "second")
    clipped = PairwiseJudge(knows_the_answer, max_chars=10).messages("x" * 50, "y" * 50, "z")
    assert "x" * 11 not in clipped[1]["content"] and "[... truncated]" in clipped[1]["content"]
    with pytest.raises(InvalidInputError, match="answer_b"):
        PairwiseJudge(knows_the_answer, template="{question} {answer_a}")
    with pytest.raises(InvalidInputError, match="callable"):
        PairwiseJudge("gpt-4")  # type: ignore[arg-type]


def test_parse_verdict() -> None:
    assert parse_verdict("Reasoning... [[B]]") == "B"
    assert parse_verdict("[[ C ]] and again [[C]]") == "C"
    assert isinstance(parse_verdict("A is better"), Unparseable)
    echoed = parse_verdict('output "[[A]]" if A is better, "[[B]]" if B is better')
    assert isinstance(echoed, Unparseable) and "several" in echoed.reason


def test_swapped_agreement_wins_and_disagreement_ties() -> None:
    calls: list[tuple[str, str]] = []

    def recording(messages: list[dict[str, str]]) -> str:
        calls.append(_shown(messages))
        return knows_the_answer(messages)

    judge = PairwiseJudge(recording, name="scripted")
    assert judge(PROMPT, RIGHT, WRONG) == "model_a"
    assert calls == [(RIGHT, WRONG), (WRONG, RIGHT)]  # asked twice, answers swapped
    assert judge(PROMPT, WRONG, RIGHT) == "model_b"
    assert judge(PROMPT, RIGHT, "Canberra.") == "tie"
    biased = PairwiseJudge(always_first, name="biased")
    assert biased(PROMPT, RIGHT, WRONG) == "tie"  # [[A]] both times = disagreement once swapped back
    assert PairwiseJudge(always_first, swap=False)(PROMPT, RIGHT, WRONG) == "model_a"


def test_garbage_and_failing_judges() -> None:
    garbage = PairwiseJudge(lambda m: "I cannot decide.", name="garbage")(PROMPT, RIGHT, WRONG)
    assert isinstance(garbage, Unparseable) and garbage.replies == ("I cannot decide.",)
    assert "SECRET" not in repr(garbage)
    second_bad = iter(["[[A]]", "no verdict"])
    outcome = PairwiseJudge(lambda m: next(second_bad))(PROMPT, RIGHT, WRONG)
    assert isinstance(outcome, Unparseable) and outcome.reason.startswith("swapped order")

    def broken(messages: list[dict[str, str]]) -> str:
        raise ConnectionError(f"refused: {messages[-1]['content']}")

    with pytest.raises(JudgeError, match="ConnectionError") as err:
        PairwiseJudge(broken, name="down")(PROMPT, RIGHT, WRONG)
    assert isinstance(err.value.__cause__, ConnectionError) and "SECRET" not in str(err.value)
    with pytest.raises(JudgeError, match="expected the reply text"):
        PairwiseJudge(lambda m: None)(PROMPT, RIGHT, WRONG)  # type: ignore[arg-type,return-value]


async def test_ajudge_matches_judge_for_sync_and_async_models() -> None:
    async def async_model(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(0)
        return knows_the_answer(messages)

    sync_judge, async_judge = PairwiseJudge(knows_the_answer), PairwiseJudge(async_model)
    for a, b in ((RIGHT, WRONG), (WRONG, RIGHT), (RIGHT, RIGHT)):
        expected = sync_judge.judge(PROMPT, a, b)
        assert await sync_judge.ajudge(PROMPT, a, b) == expected
        assert await async_judge.ajudge(PROMPT, a, b) == expected
    with pytest.raises(JudgeError, match="ajudge"):  # a sync call inside a running loop cannot run it
        async_judge.judge(PROMPT, RIGHT, WRONG)
    assert await asyncio.to_thread(async_judge.judge, PROMPT, RIGHT, WRONG) == "model_a"  # no loop there: runs


# ---- sampling --------------------------------------------------------------------------------------------
def test_sampling_fraction_is_close_and_deterministic_per_seed(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    keys = [f"decision-{i}" for i in range(2000)]
    chosen = [k for k in keys if Labeller(store, knows_verdict, 0.3, seed=7).should_label(k)]
    assert abs(len(chosen) / len(keys) - 0.3) < 0.04
    again = Labeller(store, knows_verdict, 0.3, seed=7)
    assert [k for k in keys if again.should_label(k)] == chosen
    other_seed = {k for k in keys if Labeller(store, knows_verdict, 0.3, seed=8).should_label(k)}
    assert other_seed != set(chosen) and abs(len(other_seed) / len(keys) - 0.3) < 0.04
    assert not any(Labeller(store, knows_verdict, 0.0).should_label(k) for k in keys)
    assert all(Labeller(store, knows_verdict, 1.0).should_label(k) for k in keys)
    for bad in (-0.1, 1.5, float("nan"), "0.5", True, None):
        with pytest.raises(InvalidThresholdError, match="fraction"):
            Labeller(store, knows_verdict, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="max_pending"):
        Labeller(store, knows_verdict, 0.5, max_pending=0)
    store.close()


# ---- labelling -------------------------------------------------------------------------------------------
def _assert_balanced(stats: LabellerStats) -> None:
    finished = (
        stats.stored
        + stats.unparseable
        + stats.judge_errors
        + stats.other_model_errors
        + stats.store_errors
        + stats.cancelled
    )
    assert stats.submitted == finished + stats.pending


def _rows(store: FeedbackStore) -> list[tuple[Any, ...]]:
    return [(r.decision_id, r.model_a, r.model_b, r.winner, r.source, r.judge, r.served) for r in store.labels()]


EXPECTED_ROWS = [
    ("d-weak", STRONG, WEAK, "model_a", "judge", "scripted", "model_b"),  # weak served the wrong answer
    ("d-strong", STRONG, WEAK, "model_a", "judge", "scripted", "model_a"),  # strong served the right one
]


def test_submit_orders_answers_strong_first_and_stores_the_verdict(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db", store_answers=True)
    seen: list[tuple[str, str]] = []

    def judge(prompt: str, answer_a: str, answer_b: str) -> str:
        seen.append((answer_a, answer_b))
        return knows_verdict(prompt, answer_a, answer_b)

    judge.name = "scripted"  # type: ignore[attr-defined]
    with Labeller(store, judge, fraction=1.0) as labeller:
        assert labeller.submit(_record("weak", "d-weak"), PROMPT, WRONG, lambda: RIGHT)
        assert labeller.submit(_record("strong", "d-strong"), PROMPT, RIGHT, lambda: WRONG)
        assert labeller.flush(timeout=60)
        stats = labeller.stats
    assert sorted(seen) == [(RIGHT, WRONG), (RIGHT, WRONG)]  # model_a (strong) first both times
    assert sorted(_rows(store), key=lambda r: r[0], reverse=True) == EXPECTED_ROWS
    assert {(r.answer_a, r.answer_b) for r in store.labels()} == {(RIGHT, WRONG)}
    assert (stats.submitted, stats.stored, stats.pending) == (2, 2, 0)
    _assert_balanced(stats)
    assert not labeller.submit(_record("weak", "late"), PROMPT, WRONG, lambda: RIGHT)  # closed
    assert labeller.stats.dropped_closed == 1
    store.close()


async def test_asubmit_gives_the_same_rows_as_submit(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")

    async def knows_async(messages: list[dict[str, str]]) -> str:
        await asyncio.sleep(0)
        return knows_the_answer(messages)

    async def right() -> str:
        return RIGHT

    async def wrong() -> str:
        return WRONG

    labeller = Labeller(store, PairwiseJudge(knows_async, name="scripted"), fraction=1.0)
    assert await labeller.asubmit(_record("weak", "d-weak"), PROMPT, WRONG, right)
    assert await labeller.asubmit(_record("strong", "d-strong"), PROMPT, RIGHT, wrong)
    assert await labeller.aflush(timeout=60)
    assert sorted(_rows(store), key=lambda r: r[0], reverse=True) == EXPECTED_ROWS
    assert labeller.stats.stored == 2 and labeller.stats.pending == 0
    assert await labeller.aclose(timeout=10)
    store.close()


def test_failures_are_counted_and_logged_without_the_prompt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = FeedbackStore(tmp_path / "fb.db")

    def raising_judge(prompt: str, answer_a: str, answer_b: str) -> str:
        raise RuntimeError(f"judge down while reading {prompt}")

    def other_fails() -> str:
        raise TimeoutError(f"timed out on {PROMPT}")

    caplog.set_level(logging.DEBUG, logger="routellm_core")
    cases: list[tuple[Callable[..., Any], Callable[[], str], str]] = [
        (raising_judge, lambda: RIGHT, "judge_errors"),
        (lambda p, a, b: "the first one", lambda: RIGHT, "judge_errors"),  # not a verdict
        (PairwiseJudge(lambda m: "Hmm, hard to say.", name="garbage"), lambda: RIGHT, "unparseable"),
        (knows_verdict, other_fails, "other_model_errors"),
        (knows_verdict, lambda: "   ", "other_model_errors"),  # empty answer
    ]
    for judge, call_other, counter in cases:
        with Labeller(store, judge, fraction=1.0) as labeller:
            assert labeller.submit(_record("weak"), PROMPT, WRONG, call_other)
            assert labeller.flush(timeout=60)
            stats = labeller.stats
        assert getattr(stats, counter) == 1 and stats.stored == 0, (counter, stats)
        _assert_balanced(stats)
    assert store.labels() == []  # an unparseable verdict is never stored as a winner
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 4
    logged = caplog.text
    assert "RuntimeError" in logged and "TimeoutError" in logged and "TypeError" in logged
    assert "SECRET-PROMPT-TEXT" not in logged and "Canberra" not in logged and "Sydney" not in logged

    with Labeller(store, knows_verdict, fraction=1.0) as labeller:  # blank served answer: nothing to judge
        assert not labeller.submit(_record("weak"), PROMPT, "", lambda: RIGHT)
        assert labeller.stats.skipped_empty == 1 and labeller.stats.submitted == 0
    store.close()
    with Labeller(store, knows_verdict, fraction=1.0) as labeller:  # the store fails: counted, not raised
        assert labeller.submit(_record("weak"), PROMPT, WRONG, lambda: RIGHT)
        assert labeller.flush(timeout=60)
        assert labeller.stats.store_errors == 1


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    release = threading.Event()

    def slow_other() -> str:
        release.wait(timeout=60)
        return RIGHT

    labeller = Labeller(store, knows_verdict, fraction=1.0, max_pending=2, workers=1)
    accepted: list[bool] = []
    submitter = threading.Thread(
        target=lambda: accepted.extend(
            labeller.submit(_record("weak", f"q{i}"), PROMPT, WRONG, slow_other) for i in range(5)
        )
    )
    submitter.start()
    submitter.join(timeout=30)
    assert not submitter.is_alive(), "submit blocked on a full queue"
    assert accepted == [True, True, False, False, False]
    assert labeller.stats.dropped_full == 3 and labeller.stats.pending == 2
    release.set()
    assert labeller.close(timeout=60)
    stats = labeller.stats
    assert (stats.submitted, stats.stored, stats.dropped_full) == (2, 2, 3)
    _assert_balanced(stats)
    assert [r.decision_id for r in store.labels()] == ["q0", "q1"]
    store.close()


async def test_a_full_async_queue_drops_and_counts(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    release = asyncio.Event()

    async def slow_other() -> str:
        await release.wait()
        return RIGHT

    labeller = Labeller(store, knows_verdict, fraction=1.0, max_pending=3)
    accepted = [await labeller.asubmit(_record("weak", f"q{i}"), PROMPT, WRONG, slow_other) for i in range(6)]
    assert accepted == [True, True, True, False, False, False]
    assert labeller.stats.dropped_full == 3
    release.set()
    assert await labeller.aflush(timeout=60)
    assert labeller.stats.stored == 3 and len(store.labels()) == 3
    store.close()


def test_tasks_cancelled_at_loop_shutdown_are_counted(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.db")
    labeller = Labeller(store, knows_verdict, fraction=1.0)

    async def never() -> str:
        await asyncio.Event().wait()
        return RIGHT

    async def main() -> None:
        assert await labeller.asubmit(_record("weak"), PROMPT, WRONG, never)

    asyncio.run(main())  # returns while the job waits: asyncio.run cancels it
    stats = labeller.stats
    assert (stats.submitted, stats.cancelled, stats.pending) == (1, 1, 0)
    store.close()


# ---- a real local causal LM as the judge -------------------------------------------------------------------
@pytest.fixture(scope="module")
def smollm2_generate() -> Callable[[list[dict[str, str]]], str]:
    """SmolLM2-135M-Instruct (the packaged GGUF, converted once and cached), greedy, as a ``generate`` callable."""
    pytest.importorskip("gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from routellm_core.routers.causal_llm import convert_gguf, default_gguf_path

    try:
        base = convert_gguf(default_gguf_path())
    except CheckpointError as exc:
        pytest.skip(str(exc))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base)).eval()
    lock = threading.Lock()

    def generate(messages: list[dict[str, str]]) -> str:
        batch = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with lock, torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=32, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        return str(tokenizer.decode(out[0, batch["input_ids"].shape[1] :], skip_special_tokens=True))

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread decodes faster than an oversubscribed pool
    yield generate
    torch.set_num_threads(threads)


@pytest.mark.slow
async def test_a_real_local_lm_judges_through_the_labeller(tmp_path: Path, smollm2_generate) -> None:
    """Only what holds for any model: the calls complete, outcomes are valid, the counters add up."""
    judge = PairwiseJudge(smollm2_generate, name="smollm2-135m")
    outcome = await judge.ajudge("What is 2 + 2?", "2 + 2 = 4.", "2 + 2 = 5.")
    assert outcome in ("model_a", "model_b", "tie") or isinstance(outcome, Unparseable)

    store = FeedbackStore(tmp_path / "fb.db")
    labeller = Labeller(store, judge, fraction=1.0, workers=1)

    async def other() -> str:
        return "2 + 2 = 4."

    assert labeller.submit(_record("weak", "sync-call"), "What is 2 + 2?", "2 + 2 = 5.", lambda: "2 + 2 = 4.")
    assert await labeller.asubmit(_record("strong", "async-call"), "What is 2 + 2?", "2 + 2 = 4.", other)
    assert await labeller.aflush(timeout=300)
    stats = labeller.stats
    assert stats.submitted == 2 and stats.pending == 0
    assert stats.judge_errors == stats.other_model_errors == stats.store_errors == 0
    assert stats.stored + stats.unparseable == 2
    rows = store.labels()
    assert len(rows) == stats.stored and all(r.winner in WINNERS and r.judge == "smollm2-135m" for r in rows)
    await labeller.aclose()
    store.close()
