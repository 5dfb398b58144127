"""Regressions of the answer matching found in review (each test failed before its fix).

1. Catastrophic regex time on long or adversarial replies: one comparison took seconds to minutes (quadratic
   or cubic backtracking, a copy of the reply's rest per marker).
2. Choice letters read from the last "answer X" / "option X" mention, so two different stated answers agreed.
3. Number answers read at the wrong number (the last number of a last sentence that holds several, a closing
   sentence without one, the left side of an equation, a string of digits and letters), so different answers
   agreed.
4. Huge and non-finite numbers: an overflow error, or two different values agreeing as ``inf``.

A false agreement keeps a wrong cheap answer (the worst outcome of a cascade), so where an answer is unsure the
comparison disagrees and the call escalates.
"""

from __future__ import annotations

import random
import re

import pytest
from deadline import deadline

from routellm_core.escalation import answers as A
from routellm_core.escalation.answers import answers_agree, extract_choice, extract_number, normalise_answer

# ---- 1. time: linear in the reply ------------------------------------------------------------------------------
N = 200_000
ADVERSARIAL = {
    "answer is": "answer is " * (N // 10),  # before: 3.2 s at 20 kB, > 120 s at 200 kB
    "hashes": "#### " * (N // 5),  # before: 1.9 s at 8 kB
    "number spaces": "1" + " " * N + "#",  # before: 12.9 s at 2 kB (_NUMBER_ANSWER)
    "answer spaces": "answer" + " " * N + "#",  # before: 2.7 s at 8 kB (choice patterns)
    "option spaces": "option" + " " * N + "#",
    "fenced blocks": "```{" * (N // 4),  # before: quadratic (_FENCED_BLOCK)
    "fence open": "```" + " " * N,  # before: quadratic (_FENCE)
    "fence close": "```{" + "}" * N,
    "answer is x": "the answer is x " * (N // 16),
    "answer digits": "answer is 1 " * (N // 12),
    "answer lines": "answer\n" * (N // 7),
    "dot spaces": "." + " " * N + "x",
    "minus spaces": "- " * (N // 2),
    "number list": "1, " * (N // 3) + "x",
    "sentences": "He has 5. " * (N // 10),
    "boxed": "\\boxed{" * (N // 7),
    "fractions": "\\frac{1}{" * (N // 9),
    "backslashes": "\\" * N,
    "digits": "1" * N,
    "spaces then a dollar": " " * N + "$x",
    "refusal": "i" + " " * N + "x",
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_replies_are_compared_in_linear_time(name: str) -> None:
    text = ADVERSARIAL[name]
    with deadline(10):
        answers_agree(text, text + "1")
        answers_agree(f'{{"answer": {text!r}}}'.replace("'", '"'), text)  # the same inside a JSON answer field


def test_random_junk_is_compared_in_linear_time() -> None:
    rng = random.Random(7)
    pieces = ["1", "2", " ", "[", "]", "{", "}", "\\", "(", ")", ".", "=", "-", "/", "answer is ", "#### ", "```",
              "\\boxed{", "\\frac{", "option ", "\n", "$", ",", "*", "B"]  # fmt: skip
    with deadline(20):
        for _ in range(6):
            a = "".join(rng.choices(pieces, k=40_000))
            b = "".join(rng.choices(pieces, k=40_000))
            answers_agree(a, b)
            for kind in ("number", "choice", "json", "text"):
                normalise_answer(a, kind)


def _greedy_runs(pattern: re.Pattern[str]) -> list[str]:
    """The whitespace and character-class repetitions of a pattern that can backtrack (not possessive)."""
    source = re.sub(r"\[(?:\\.|[^\]\\])*\]", "C", pattern.pattern)  # each character class as C
    return re.findall(r"(?:\\s|C)(?:[*+?]|\{\d*,\d*\})(?![+?])", source)


@pytest.mark.parametrize(
    "name", ["_ANSWER_MARKER", "_SENTENCE_BREAK", "_NUMBER_HEAD", "_NUMBER_TAIL", "_PLAIN_NUMBER", "_NUMBER_LIST"]
)
def test_patterns_run_on_whole_replies_do_not_backtrack(name: str) -> None:
    # structural: a run of spaces (or markup) matched by two neighbouring repetitions is what made the time
    # quadratic or cubic; possessive repetitions never give characters back
    assert _greedy_runs(getattr(A, name)) == []


def test_choice_patterns_do_not_backtrack_and_fences_need_no_regex() -> None:
    assert all(_greedy_runs(p) == [] for p in A._CHOICE_PATTERNS)
    assert not hasattr(A, "_FENCE") and not hasattr(A, "_FENCED_BLOCK")


def test_fenced_json_is_still_read() -> None:
    assert answers_agree('```json\n{"answer": 5}\n```', "5")
    two = 'First ```{"answer": 4}``` then, corrected:\n```json\n{"answer": 5}\n```'
    assert answers_agree(two, {"answer": 5}) and not answers_agree(two, {"answer": 4})


# ---- 2. choices: the stated answer wins ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("The answer is B. A common wrong answer is C.", "The answer is D. A common wrong answer is C."),
        ("I think it's B. Option A is tempting.", "I think it's C. Option A is tempting."),
        ("Answer: A. Option B is wrong.", "Answer: B. Option B is wrong."),
        ("Consider answer A first. The final answer is C.", "Consider answer A first. The final answer is D."),
    ],
)
def test_different_stated_choices_do_not_agree(a: str, b: str) -> None:
    assert not answers_agree(a, b)
    assert not answers_agree(a, b, "choice")


def test_the_stated_choice_is_read() -> None:
    assert extract_choice("The answer is B. A common wrong answer is C.") == "B"
    assert extract_choice("Answer: A. Option B is wrong.") == "A"
    assert extract_choice("Consider answer A first. The final answer is C.") == "C"
    assert extract_choice("I think it's B. Option A is tempting.") is None  # only a mention: no stated answer
    for stated in [
        "Option B",
        "**Option (b)**",
        "The correct option is B.",
        "Option B is correct.",
        "I choose option B",
    ]:
        assert extract_choice(stated) == "B", stated
        assert answers_agree(stated, "B") and not answers_agree(stated, "C")


# ---- 3. numbers: the stated number, never a restated one ---------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Step 1: 20 - 5 = 15.\nSo she needs 15 boxes in 3 weeks.",
         "Step 1: 20 - 8 = 12.\nSo she needs 12 boxes in 3 weeks."),
        ("Tom has 5 apples and buys 3 more.\nSo he has 8 apples.\nI hope this helps!",
         "Tom has 5 apples and buys 3 more.\nSo he has 9 apples.\nI hope this helps!"),
        ("She sells 16 eggs a day. She earns $18.\nLet me know if you have any other questions.",
         "She sells 16 eggs a day. She earns $26.\nLet me know if you have any other questions."),
        ("The answer is 60 - 15 = 45.", "The answer is 60 - 20 = 40."),
        ("Final answer: after 2 hours the tank holds 450 liters.",
         "Final answer: after 2 hours the tank holds 500 liters."),
        ("The answer for 3 days is 45 dollars.", "The answer for 3 days is 60 dollars."),
        ("The answer is: 2 apples cost $7.", "The answer is: 2 apples cost $9."),
        ("Answer: 1/2/2020", "Answer: 1/2/2021"),
        ('{"reasoning": "shift", "answer": "\'2io 12 tfiqr-\'"}', '{"reasoning": "shift", "answer": "2io 12 tfiqr.-"}'),
        ('{"answer": "2io 12 tfiqr.-"}', '{"answer": "2io 12 tfiqr-"}'),
        ("3ihoxmqnd dna trel", "3 i h o x m q d n a n d t r e l"),
        ("32 - 16√6", "32"),
    ],
)  # fmt: skip
def test_different_numbers_do_not_agree(a: str, b: str) -> None:
    assert not answers_agree(a, b)
    assert not answers_agree(b, a)


def test_the_stated_number_is_read() -> None:
    closing = "Tom has 5 apples and buys 3 more.\nSo he has 8 apples.\nI hope this helps!"
    assert extract_number(closing) == 8.0  # the last sentence that holds a number, not the first number
    assert answers_agree(closing, "#### 8")
    assert extract_number("The answer is 60 - 15 = 45.") == 45.0  # after the last "="
    assert answers_agree("The answer is 60 - 15 = 45.", "45")
    assert answers_agree("The answer is 60 - 15 = 45.", "Janet pays 60 - 15 = 45 dollars.\nSo the answer is 45.")
    # several different numbers in the answer part: no one stated number; they agree only on all of them
    tank = "Final answer: after 2 hours the tank holds 450 liters."
    assert extract_number(tank) is None
    assert answers_agree(tank, "Final answer: after 2 hours, the tank holds 450 liters")
    assert not answers_agree(tank, "450")
    # a short answer keeps ZeroEval's first-number rule; a sentence with a number is still read as one
    assert extract_number("The total is 42 apples, not 7") == 42.0
    assert answers_agree("He earns 18 dollars per day.", "He earns $18 each day.")


# ---- 4. huge and non-finite numbers ----------------------------------------------------------------------------
def test_huge_numbers_neither_raise_nor_agree_as_infinity() -> None:
    big, other = 10**400, 2 * 10**400
    assert not answers_agree(big, other) and answers_agree(big, 10**400)  # compared exactly, no OverflowError
    assert not answers_agree({"answer": big}, {"answer": other})
    assert not answers_agree("1" + "0" * 400, "2" + "0" * 400)
    assert not answers_agree("The answer is 1" + "0" * 400, "The answer is 2" + "0" * 400)
    assert extract_number(big) is None and extract_number("9" * 5000) is None


@pytest.mark.parametrize(
    "value", [float("inf"), float("nan"), {"answer": float("inf")}, '{"answer": 1e400}', "(1e400, 1)", "[1e400]"]
)
def test_non_finite_values_never_agree(value: object) -> None:
    kinds = ("auto", "number", "text") if isinstance(value, float) else ("auto", "json")
    for kind in kinds:
        assert not answers_agree(value, value, kind), kind


# ---- 5. "auto" reads each side on its own: the comparison is symmetric -------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [("-4", "x < -4"), ("5", "not 5"), ("18", "18 or 20"), ("5", "5, 6"), ("2", "2:30 PM"), ("A", "(A) and (C)")],
)
def test_answers_of_different_kinds_never_agree_either_way(a: str, b: str) -> None:
    # before: the kind was guessed from the first answer only, so "-4" read "x < -4" as the number -4
    assert not answers_agree(a, b) and not answers_agree(b, a)


def test_auto_is_symmetric_over_the_reviewers_cases() -> None:
    cases = [(a, b) for a, b in _REVIEW_CASES] + [(a, b) for a, b in _AGREEING]
    for a, b in cases:
        assert answers_agree(a, b) is answers_agree(b, a), (a, b)


_REVIEW_CASES = [
    ("-4", "x < -4"), ("'mgiTr'", "'mgItr'"), ("[1, 1, 2, 2, 2]", "[1, 1, 2, 2, 2, 2]"), ("2", "p-2"),
    ("'a'", "A"), ("00019", "019"), ("05", "5"), ("$$5", "$5"), ("{'a': 1}", '{"a": 2}'), ("18 dollars", "18 or 20"),
    ('{"answer": "72"}', "The answer is 73."), ("B", "The answer is (A) and (C)."), ("3", "x \\geq 3"),
]  # fmt: skip
_AGREEING = [
    ("{'a': 1, 'b': [2]}", '{"b": [2], "a": 1}'), ({"answer": 72}, "72"), ('{"reasoning": "x", "answer": "72"}',
    "The answer is 72."), ("B", "The answer is B."), ("18 dollars", "$18"), ("$$5$$", "5"), ("'abc'", '"abc"'),
    ("The answer is [1, 2].", "[1,2]"), ("The answer is (3, 4).", "\\boxed{(3, 4)}"),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), _AGREEING)
def test_same_answers_of_matching_kinds_still_agree(a: object, b: object) -> None:
    assert answers_agree(a, b) and answers_agree(b, a)


def test_auto_is_symmetric_over_the_adversarial_cases() -> None:
    # every pair of the answers above and below, both ways
    values = [v for pair in _REVIEW_CASES + _AGREEING + _TEXT_CASES + _EXPRESSIONS for v in pair]
    for a in values:
        for b in values:
            assert answers_agree(a, b) is answers_agree(b, a), (a, b)


# ---- 6. tool-call arguments are values: compared exactly ----------------------------------------------------------
def test_tool_call_arguments_keep_their_case_and_punctuation() -> None:
    upper = {"name": "delete", "arguments": {"id": "ABC"}}
    assert not answers_agree(upper, {"name": "delete", "arguments": {"id": "abc"}})
    assert not answers_agree(upper, {"name": "delete", "arguments": {"id": "ABC."}}, "tool_call")
    assert answers_agree(upper, {"name": "delete", "arguments": '{"id": " ABC "}'}, "tool_call")


# ---- 7. string literals, containers, expressions, digit strings, refusals ----------------------------------------
_TEXT_CASES = [
    ("'mgiTr'", "'mgItr'"), ("'a b'", "'a  b'"), ("'abc.'", "'abc'"), ("'a'", "'A'"), ("'B'", "B"),
    ("[1, 1, 2, 2, 2]", "[1, 1, 2, 2, 2, 2]"), ("The answer is [1, 1, 2, 2, 2].", "The answer is [1, 1, 2, 2, 2, 2]."),
    ("The answer is 1, 1, 2.", "The answer is 1, 2."), ("00019", "019"), ("05", "5"), ("$$5", "$5"),
    ('{"answer": "05"}', '{"answer": 5}'),
]  # fmt: skip
_EXPRESSIONS = [
    ("2", "p-2"), ("1", "x-1"), ("-4", "-4 \\le x \\le 1"), ("3", "x \\geq 3"),
    ("\\boxed{4\\sin^2 x}", "\\boxed{4\\cos^2 x}"), ("The answer is x \\geq 3.", "The answer is 3."),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), _TEXT_CASES + _EXPRESSIONS)
def test_literals_expressions_and_digit_strings_that_differ_do_not_agree(a: str, b: str) -> None:
    assert not answers_agree(a, b) and not answers_agree(b, a)


def test_a_quoted_letter_is_a_string_not_a_choice() -> None:
    assert A.guess_kind("'a'") == "text" and A.guess_kind("A") == "choice"
    assert answers_agree("'a'", '"a"') and not answers_agree("'a'", "(A)")


@pytest.mark.parametrize(
    "reply",
    ["Unfortunately, I cannot assist with this request.", "I apologize, but I can't provide that.", "I don't know.",
     "I'm not sure.", "My apologies, but I'm unable to help."],
)  # fmt: skip
def test_refusals_anywhere_in_their_first_clause_never_agree(reply: str) -> None:
    assert not answers_agree(reply, reply) and normalise_answer(reply) is None


def test_a_quoted_string_agrees_with_the_same_text_unquoted_only_when_normalising_keeps_it() -> None:
    # CRUX JSON answers write "'mty'" or "mty" for the same value; a value with case or spacing is kept exact
    assert answers_agree('{"answer": "\'mty\'"}', '{"answer": "mty"}')
    assert not answers_agree("'Name unknown'", "name unknown") and not answers_agree("'mgiTr'", "mgitr")
