"""Bugs found reading real, messy cheap answers with the escalation checks (each test failed before its fix).

The answers are what cheap models write: reasoning that ends with its answer, LaTeX, markdown, code outputs,
structured output, refusals; and ZeroEval's own cheap outputs (``zeroeval/<task>_outputs_cheap.jsonl.gz``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fitted_router import TRIVIA
from text_engine import text_engine

from routellm_core.errors import InvalidInputError
from routellm_core.escalation import AnswerFeaturesCheck, Escalation
from routellm_core.escalation.answers import answers_agree, extract_choice, extract_number, guess_kind
from routellm_core.escalation.checks import AgreementCheck, CheckInput, SelfVerificationCheck
from routellm_core.routing.engine import RoutingOptions


# ---- numbers in replies ------------------------------------------------------------------------------------
def test_a_reasoning_reply_is_read_at_its_stated_answer_not_its_first_number() -> None:
    # both restate the question's 48 first; before, the first number made these two different answers agree
    right = "In April she sold 48 clips and in May 24. The answer is 72."
    wrong = "In April she sold 48 clips and in May 30. The answer is 78."
    assert not answers_agree(right, wrong)
    assert answers_agree(right, "#### 72")
    assert answers_agree(right, "48 + 24 = 72, so the total is **\\boxed{72}**.")
    assert answers_agree("Step 1: 3 * 4 = 12\nStep 2: 12 + 5 = 17", "Final answer: 17")  # no marker: the last number
    assert extract_number("The total is 42 apples, not 7") == 42.0  # one sentence keeps ZeroEval's first number


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("\\frac{3}{4}", "0.75", True),
        ("\\boxed{\\dfrac{1}{2}}", "1/2", True),
        ("-\\frac{1}{2}", "-0.5", True),
        ("\u22125", "-5", True),  # a Unicode minus
        ("$\\text{5 apples}$", "5", True),
        (".5", "0.5", True),
        ("\\frac{3}{4}", "\\frac{3}{5}", False),  # before: both "3"
        ("3\\sqrt{2}", "3", False),  # before: both "3"
        ("2x+1", "2x+3", False),
    ],
)
def test_latex_fractions_and_expressions(a: str, b: str, same: bool) -> None:
    assert answers_agree(a, b) is same
    assert answers_agree(a, b, "number") is same


# ---- what "auto" takes for a number ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("yCxpg2C2Pny", "yCxpg2C2Pn"),  # CRUX answers: a digit inside a string is not a number answer
        ("148:b'148", "148: b'148"),
        ("[2, 2, 3, 2, 3, 3]", "[2, 2, 3, 2, 3]"),  # before: both "2"
        ("1, 2, 3", "1, 2, 4"),
        ("(1, 2)", "[1, 2]"),  # a tuple is not a list
        ("[True]", "[1]"),
        ("iq!!!", "iq!!!!"),  # one final mark dropped, not all
    ],
)
def test_code_outputs_that_differ_do_not_agree(a: str, b: str) -> None:
    assert not answers_agree(a, b)


def test_code_outputs_that_mean_the_same_agree() -> None:
    assert answers_agree("[1, 2]", "[1,2]")
    assert answers_agree("{'a': 1, 'b': [2]}", '{"b": [2], "a": 1}')
    assert answers_agree("'abc'", '"abc"')
    assert answers_agree("1,000,000", "1000000")  # thousands, not a list


# ---- choices -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply", ["**B**", "Answer: b", "The answer is (B).", "B)", "(b)"])
def test_choice_letters_in_markup(reply: str) -> None:
    assert guess_kind(reply) == "choice"
    assert answers_agree(reply, "B") and answers_agree("B", reply)
    assert not answers_agree(reply, "C")


def test_the_article_a_after_answer_is_not_a_choice() -> None:
    assert extract_choice("The answer is a bit longer than that") is None
    assert extract_choice("The answer is A because of the wind") == "A"


# ---- no answer ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply", ["", "   ", "I cannot help with that.", "I'm sorry, but I can't assist.", "Sorry, I can't do that.", "N/A"]
)
def test_no_answer_never_agrees_even_with_itself(reply: str) -> None:
    assert not answers_agree(reply, reply)
    batch = CheckInput(first=[reply], others=[[reply]])
    assert AgreementCheck().confidence(batch).tolist() == [0.0]


# ---- structured output -------------------------------------------------------------------------------------
def test_a_structured_answer_with_a_name_field_is_not_a_tool_call() -> None:
    # before: guessed as a tool call named "ada" with no arguments, so a different age agreed
    assert guess_kind({"name": "Ada", "age": 36}) == "json"
    assert not answers_agree({"name": "Ada", "age": 36}, {"name": "Ada", "age": 37})
    assert answers_agree({"name": "Ada", "age": 36}, {"age": 36.0, "name": "ada"})
    # LangChain's tool calls still are
    call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    assert guess_kind([call]) == "tool_call"
    assert not answers_agree([call], [{**call, "args": {"city": "Lyon"}}])


def test_structured_reasoning_is_left_out_and_the_answer_read_as_a_number() -> None:
    a = {"reasoning": "48 + 24 = 72", "answer": "72"}
    assert answers_agree(a, {"reasoning": "April 48, May half: 24; 72 in all", "answer": 72})
    assert not answers_agree(a, {"reasoning": "48 + 24 = 72", "answer": "78"})
    prose = 'Let me think.\n```json\n{"reasoning": "half of 48 is 24",\n "answer": "$72"}\n```'
    assert answers_agree(a, prose)
    assert not answers_agree({"reasoning": "x", "answer": ""}, {"reasoning": "x", "answer": ""})


def test_zeroeval_cheap_outputs_read_as_the_grader_reads_their_answers(shared_data_dir: Path) -> None:
    """The whole raw replies (reasoning + JSON answer, as a routed call sees them), compared with ``auto``, agree
    where the graded answers agree: two right answers agree, a right and a wrong one do not."""
    from routellm_core.data.zeroeval_answers import load_answer_table

    table = load_answer_table("gsm")
    a, b = "gpt-4o-mini-2024-07-18", "gemini-1.5-flash"
    both_right = one_wrong = agreed_right = agreed_one_wrong = 0
    for i in range(len(table.prompts)):
        ca, cb = table.correct[a][i], table.correct[b][i]
        agree = answers_agree(table.outputs[a][i], table.outputs[b][i])
        if ca == cb == 1:
            both_right += 1
            agreed_right += agree
        elif ca != cb:
            one_wrong += 1
            agreed_one_wrong += agree
    # before: 5 of the 1,174 right pairs agreed (the reasoning was compared too), and 2 of the 100 mixed ones
    assert both_right > 1000 and agreed_right / both_right > 0.98
    assert one_wrong > 50 and agreed_one_wrong == 0


# ---- self-verification and settings ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "confidence"),
    [
        ("Yes, but the last step is wrong.", 0.5),
        ("Yes and no.", 0.5),
        ("yeah", 1.0),
        ("NOPE.", 0.0),
        ("No doubt, it is right.", 0.5),
        ("**No**", 0.0),
        ("Yes.", 1.0),
    ],
)
def test_self_verification_replies(reply: str, confidence: float) -> None:
    batch = CheckInput(first=["42"], verifications=[reply])
    assert SelfVerificationCheck().confidence(batch).tolist() == [confidence]


@pytest.mark.parametrize(("kw", "match"), [({"scale": 0}, "scale"), ({"center": float("nan")}, "center")])
def test_answer_features_settings_are_checked(kw: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        AnswerFeaturesCheck(**kw)


# ---- online: the engine keeps or escalates on the final answer ---------------------------------------------
def _run(router: Any, weak: str, second: str) -> Any:
    routed = text_engine(
        RoutingOptions(router=router, strong_fraction=0.5, escalate=Escalation()),
    )
    answers = {"weak": weak, "strong": "It is 72."}
    value, record = routed.call(routed.route(TRIVIA[0]), lambda side, rec: answers[side], second=lambda rec: second)
    return value, record


def test_engine_escalates_two_replies_that_share_only_a_restated_number(known_router: Any) -> None:
    value, record = _run(known_router, "She sold 48 and then 30. The answer is 78.", "48 + 24 = 72. The answer is 72.")
    assert record.escalated and value == "It is 72."
    value, record = _run(known_router, "She sold 48, then 24.\nSo **72** in all.", "48 + 24 = 72. The answer is 72.")
    assert not record.escalated and np.isclose(record.attempts[0].signals["agreement"], 1.0)
