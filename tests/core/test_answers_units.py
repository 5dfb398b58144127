"""False agreements of the answer matching on what follows a number, a leading yes / no and tool names (each test
failed before its fix).

1. Scale words and units after the answer number were dropped: "5 million" agreed with "5 billion", "5 pm" with
   "5 am", "5 km" with "5 miles", "3 hours" with "3 minutes". A scale word multiplies the number; a unit on both
   sides must be the same; a unit on one side only still agrees (GSM8K replies often drop it: in the ZeroEval cheap
   replies such one-sided pairs are nearly all right/right).
2. A leading yes / no was dropped: "Yes, 5 is prime." agreed with "No, 5 is not prime.".
3. Tool names were case-folded: "Delete" agreed with "delete", though a function name is case-sensitive in every
   provider's API.

A false agreement keeps a wrong cheap answer (the worst outcome of a cascade): when unsure, disagree.
"""

from __future__ import annotations

import re

import pytest
from deadline import deadline

from routellm_core.escalation import answers as A
from routellm_core.escalation.answers import answers_agree, extract_number, extract_tool_calls, normalise_answer


def _both_ways(a: object, b: object, kind: str = "auto") -> bool:
    """Whether ``a`` and ``b`` agree, checked symmetric."""
    forward, backward = answers_agree(a, b, kind), answers_agree(b, a, kind)
    assert forward is backward, (a, b)
    return forward


# ---- 1. scale words and units ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("5 million", "5 billion"),
        ("5 thousand", "5 million"),
        ("The answer is 5 million.", "The answer is 5 billion."),
        ('{"reasoning": "x", "answer": "5 million"}', '{"reasoning": "y", "answer": "5 billion"}'),
        ("$5k", "$5M"),  # a letter glued to a number is maths text (5k, 5m): agrees only with the same writing
        ("5 pm", "5 am"),
        ("5 p.m.", "5 a.m."),
        ("The meeting starts at 5 pm.", "The meeting starts at 5 am."),
        ("5 km", "5 miles"),
        ("5 m", "5 km"),
        ("3 hours", "3 minutes"),
        ("It takes 3 hours in all.", "It takes 3 minutes in all."),
        ('{"reasoning": "x", "answer": "3 hours"}', '{"reasoning": "y", "answer": "3 minutes"}'),
        ("20%", "20 dollars"),
        ("She paid 18 euros.", "She paid 18 dollars."),
        ("She earns 18 dollars per hour.", "She earns $18 per day."),
        ("5 hours a day", "5 hours a week"),
        ("60 km/h", "60 mph"),
        ("72 cubic inches", "72 inches"),
        ("2 dozen", "2 cups"),
        ("Final answer: after 2 hours the tank holds 450 liters.",
         "Final answer: after 2 minutes the tank holds 450 liters."),
    ],
)  # fmt: skip
def test_different_scales_and_units_do_not_agree(a: str, b: str) -> None:
    assert not _both_ways(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("5 million", "5,000,000"),
        ("The answer is $1.5 million.", "The answer is $1,500,000."),
        ("5 thousand", "5000"),
        ("5 hours", "5 hrs"),
        ("5 hours", "5"),  # a unit on one side only: GSM8K replies often drop it
        ("20%", "20"),  # a percent and a bare number (a question asking for a percent)
        ("20%", "20 percent"),
        ("18 dollars", "$18"),
        ("He earns 18 dollars per day.", "He earns $18 each day."),
        ("750 miles per hour", "750 mph"),
        ("60 km/h", "60 kph"),
        ("5 PM", "5 pm"),
        ('{"reasoning": "x", "answer": "95 minutes"}', '{"reasoning": "y", "answer": 95}'),
    ],
)
def test_the_same_quantity_written_differently_agrees(a: str, b: str) -> None:
    assert _both_ways(a, b)


def test_a_scale_word_multiplies_the_stated_number() -> None:
    assert extract_number("5 million") == 5_000_000.0
    assert extract_number("The answer is 2.5 billion.") == 2_500_000_000.0
    assert extract_number("5 hours") == 5.0  # a unit does not change the value
    huge = "1" + "0" * 300 + " trillion"
    assert extract_number(huge) is None  # a scaled value that is not finite: none, and no infinity to agree on
    assert not answers_agree(huge, "2" + "0" * 300 + " trillion")


def test_units_leave_zeroevals_first_number_rule_alone() -> None:
    # a one-sentence answer still gives its first number; its unit qualifies that number
    assert extract_number("The total is 42 apples, not 7") == 42.0
    assert answers_agree("The total is 42 minutes, not 7 hours", "42")
    assert not answers_agree("The total is 42 minutes, not 7 hours", "42 hours")


def test_a_currency_sign_stated_twice_differently_agrees_with_neither_alone() -> None:
    # "$" is not read (LaTeX writes maths between dollars), "€" / "£" / "¥" are
    euros, dollars = "Step 1: 9 + 9 = 18.\nSo she paid €18.", "Step 1: 9 + 9 = 18.\nSo she paid 18 dollars."
    assert not _both_ways(euros, dollars) and _both_ways(euros, "Step 1: 9 + 9 = 18.\nSo she paid 18 euros.")
    both = "Step 1: 9 + 9 = 18.\nSo she paid €18 dollars."
    assert not _both_ways(both, euros) and not _both_ways(both, dollars) and _both_ways(both, "18")


@pytest.mark.parametrize(
    ("a", "b", "agree"),
    [
        # a scale word inside a hyphenated word multiplies nothing (it made "3 hundred-dollar bills" 300)
        ("The answer is 3 hundred-dollar bills.", "The answer is 300.", False),
        ("The answer is 3 hundred-dollar bills.", "The answer is 3.", True),
        ("4 thousand-year-old trees", "4000", False),
        # scale words in a row multiply through (only the first was read: 500)
        ("The answer is 5 hundred thousand.", "500000", True),
        ("The answer is 5 hundred thousand.", "500", False),
        # one word, two units: "pounds" is a weight or sterling
        ("The answer is 12 pounds.", "The answer is £12.", True),
        ("The answer is 12 pounds.", "The answer is 12 lb.", True),
        # a bare degree may be Celsius, Fahrenheit or an angle
        ("The answer is 5 degrees.", "The answer is 5°C.", True),
        ("The answer is 5 degrees.", "The answer is 5 °F.", True),
        ("The answer is 5°.", "The answer is 5°C.", True),
        ("The answer is 5°C.", "The answer is 5°F.", False),
        # "ft²" reads "ft2" once normalised: no unit, not feet
        ("The answer is 120 ft²", "The answer is 120 sq ft", True),
        ("The answer is 120 ft²", "The answer is 120 square feet", True),
        # a function after a number is no unit
        ("The answer is 5 g(x).", "The answer is 5 kg.", True),
        # "No-one" is no "no"
        ("No-one knows; the answer is 5.", "Yes, the answer is 5.", True),
    ],
)  # fmt: skip
def test_ordinary_words_after_a_number_are_read_as_written(a: str, b: str, agree: bool) -> None:
    """A review's cases: a scale word in a hyphenated word, scale words in a row, words of two units, a bare degree,
    a squared unit, a function name and a hyphenated "No-one" (the first two kept wrong answers)."""
    assert _both_ways(a, b) is agree


# ---- 2. a leading yes / no ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Yes, 5 is prime.", "No, 5 is not prime."),
        ("**Yes.** 5 is prime.", "**No.** 5 is prime."),
        ("True, there are 5.", "False, there are 5."),
        ("The answer is: no, he needs 5 more.", "The answer is: yes, he needs 5 more."),
        ("Yes, the answer is B.", "No, the answer is B."),
        ('{"reasoning": "x", "answer": "Yes, 12 of them"}', '{"reasoning": "y", "answer": "No, 12 of them"}'),
    ],
)
def test_opposite_leading_yes_and_no_do_not_agree(a: str, b: str) -> None:
    assert not _both_ways(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Yes, 5 is prime.", "YES. 5 is prime"),
        ("True, there are 5.", "Yes, there are 5."),
        ("Yes, 5 is prime.", "5"),  # a yes / no on one side only: the rest decides
        ("No problem! The answer is 5.", "Yes. The answer is 5."),  # "No problem" is no "no"
    ],
)
def test_the_same_or_one_sided_yes_and_no_agree(a: str, b: str) -> None:
    assert _both_ways(a, b)


# ---- 3. tool names are case-sensitive ------------------------------------------------------------------------
def test_tool_names_are_compared_exactly() -> None:
    upper, lower = {"name": "Delete", "arguments": {}}, {"name": "delete", "arguments": {}}
    assert not _both_ways(upper, lower) and not _both_ways(upper, lower, "tool_call")
    assert not _both_ways([{"type": "function", "function": {"name": "Get_Weather", "arguments": "{}"}}],
                          [{"name": "get_weather", "args": {}, "id": "1", "type": "tool_call"}])  # fmt: skip
    assert _both_ways(upper, {"name": " Delete ", "arguments": "{}"})  # surrounding whitespace aside
    assert extract_tool_calls(upper) == (("Delete", ()),)


# ---- symmetry and time ---------------------------------------------------------------------------------------
_VALUES = ["5", "5 million", "5,000,000", "5 hours", "5 minutes", "5 pm", "20%", "20", "Yes, 5 is prime.",
           "No, 5 is not prime.", "Step 1: 9 + 9 = 18.\nSo she paid €18 dollars.", "18 dollars", "$18", "18 euros",
           "750 mph", "750 miles per hour", "750 miles", '{"answer": "5 hours"}', {"answer": 5}]  # fmt: skip


def test_auto_stays_symmetric_over_qualified_answers() -> None:
    for a in _VALUES:
        for b in _VALUES:
            assert answers_agree(a, b) is answers_agree(b, a), (a, b)


def test_a_qualified_key_hashes_as_the_plain_value_it_equals() -> None:
    qualified, plain = normalise_answer("5 hours"), normalise_answer("5")
    assert qualified == plain and hash(qualified) == hash(plain)


N = 200_000
ADVERSARIAL = {
    "scale words": "1 million " * (N // 10),
    "units": "1 km " * (N // 5),
    "unit then spaces": "1 square" + " " * N + "x",
    "rates": "1 hours per " * (N // 12),
    "slashes": "1/" * (N // 2),
    "yes spaces": "Yes" + " " * N + "x",
    "leading markup": "*" * N + "yes",
    "yes then markup": "yes" + "*" * N + "x",
    "answer is yes": "The answer is: yes, 5. " * (N // 23),
    "currency": "€1 " * (N // 3),
    "scale words in a row": "The answer is 5" + " hundred thousand million" * (N // 25),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_adversarial_replies_are_compared_in_linear_time(name: str) -> None:
    text = ADVERSARIAL[name]
    with deadline(10):
        answers_agree(text, text + "1")
        answers_agree(f'{{"answer": {text!r}}}'.replace("'", '"'), text)


def _greedy_runs(pattern: re.Pattern[str]) -> list[str]:
    """The whitespace and character-class repetitions of a pattern that can backtrack (not possessive)."""
    source = re.sub(r"\[(?:\\.|[^\]\\])*\]", "C", pattern.pattern)
    return re.findall(r"(?:\\s|C)(?:[*+?]|\{\d*,\d*\})(?![+?])", source)


@pytest.mark.parametrize("name", ["_SCALE_WORD", "_UNIT_AFTER", "_RATE_AFTER", "_POLARITY"])
def test_the_new_patterns_do_not_backtrack(name: str) -> None:
    assert _greedy_runs(getattr(A, name)) == []
