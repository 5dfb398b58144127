"""Final answers: extraction, normalisation and comparison (pure functions).

An escalation check compares the *final answer* of two cheap calls, not their whole text: two correct solutions
of a maths problem rarely share a sentence, but they share the number at the end. Each answer kind has one rule:

- ``"choice"``: a multiple-choice letter (``"B"``, ``"(b)"``, ``"**B**"``, ``"B. Paris"``, ``"Answer: b"``,
  ``"The answer is (C)."``): the whole reply, else the first stated answer ("final answer" before "answer is" /
  "Answer:" before "Answer B", then an option stated as the answer: "Option B", "the correct option is B"); an
  option only mentioned ("Option A is tempting") is no answer.
- ``"number"``: the final number. The answer part is read first: the last ``\\boxed{...}``, else what follows the
  last "answer is" / "Answer:" / "####" that holds a number, else (a reply of several sentences or lines) its last
  sentence that holds a number; each from its last ``=`` when a number follows ("60 - 15 = 45" is 45). An answer
  part with several different numbers ("after 2 hours it holds 450 liters") is unsure: it agrees only with the
  same numbers in the same order. A short answer gives its first number, as ZeroEval's grader compares GSM8K and
  MATH answers (``$``, ``,``, ``**`` and ``\\text{}`` dropped, a Unicode minus read as ``-``, ``a/b`` and
  ``\\frac{a}{b}`` evaluated, compared as floats). A number followed by more maths (``3\\sqrt{2}``, ``2x+1``,
  ``6^24``, ``32 - 16\\sqrt{6}``) is an expression, compared as maths text (spaces dropped). A scale word after a
  number multiplies it ("5 million" is 5000000); a unit after it (``%``, ``am`` / ``pm``, time, length, mass,
  volume, money, degrees, ``dozen``; "per hour", "/day", "a week" as a rate; a ``€`` / ``£`` / ``¥`` before it)
  must be the same where both answers state one ("5 km" is not "5 miles"), and a unit on one side only is no
  difference ("5 hours" agrees with "5", "20%" with "20": GSM8K replies often drop the unit). A leading yes / no
  (or true / false) of the answer or of its stated part must be the same where both state one ("Yes, 5 is
  prime." is not "No, 5 is not prime."); this holds for choice letters too. Two
  answers without any number fall back to ``"text"``, as does a string whose digits are not numbers of a sentence
  (``'2io 12 tfiqr-'``, a quoted string); a number that is not finite agrees with nothing.
- ``"json"``: structured output; a JSON object (a ``dict`` or a JSON string, code fences allowed, or one object
  written inside prose) compared field by field (``fields=`` restricts the comparison), values normalised as below.
- ``"tool_call"``: tool calls (one call or a list: ``{"name", "arguments"}`` or LangChain's ``{"name", "args",
  "id", "type"}``, arguments a dict or a JSON string, or OpenAI's ``{"function": {...}}``; a dict with other keys,
  such as a structured answer ``{"name": "Ada", "age": 36}``, is not a call), compared on the name and the
  arguments, both exactly but for surrounding whitespace (a function name is case-sensitive: ``"Delete"`` is not
  ``"delete"``; string values too: ``"ABC"`` is not ``"abc"``), order of the calls ignored.
- ``"text"``: normalised text (Unicode NFKC, case folded, whitespace collapsed, surrounding quotes and one final
  punctuation mark removed); a Python / JSON list, tuple, set or dict literal is compared as its value (``[1, 2]``
  equals ``[1,2]``). An empty answer or an assistant's refusal ("I can't help with that") is no answer.
- ``"exact"``: the string itself, only surrounding whitespace stripped (CRUXEval's rule: a Python literal, where
  case matters).

``"auto"`` guesses each answer's kind on its own (:func:`guess_kind`); answers of different kinds never agree
(``"-4"`` and ``"x < -4"``, ``"18"`` and ``"18 or 20"``), so the comparison is symmetric. A JSON object leaves out
reasoning fields (``reasoning``, ``explanation``, ...) when others remain and reads each remaining string as
``"auto"`` again, so ``{"reasoning": ..., "answer": "72"}`` agrees with ``{"reasoning": ..., "answer": 72}``.

``None`` is "no answer extracted": it never agrees with anything, not even another ``None``.
"""

from __future__ import annotations

import ast
import bisect
import functools
import json
import math
import re
import unicodedata
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal

from routellm_core.errors import InvalidInputError

AnswerKind = Literal["auto", "choice", "number", "json", "tool_call", "text", "exact"]
#: Every answer kind :func:`normalise_answer` accepts.
ANSWER_KINDS: tuple[str, ...] = ("auto", "choice", "number", "json", "tool_call", "text", "exact")
#: A user's extractor: raw answer -> a comparable (hashable) key, or None when it finds no answer.
Extractor = Callable[[Any], Hashable | None]

# one number token: a LaTeX fraction, a simple fraction a/b, or a decimal (not glued to a word: "x2", "abc3", nor
# after a letter and a minus: "p-2" is an expression)
# (the lookahead lets the regex engine skip every position that cannot start a number, about 3x faster on text)
_NUM_TOKEN = re.compile(
    r"(?=[-\\.\d])(?:(?P<sign>-\s*+)?\\[dt]?frac\s*+\{\s*+(?P<fn>-?\d+(?:\.\d+)?)\s*+\}\s*+\{\s*+"
    r"(?P<fd>-?\d+(?:\.\d+)?)\s*+\}"
    r"|(?<![A-Za-z_\d.])(?<![A-Za-z]-)(?P<num>-?(?:\d+(?:\.\d+)?|\.\d+))(?:\s*+/\s*+(?P<den>\d+(?:\.\d+)?)(?![\d.]))?)"
)
# what after a number makes the answer an expression, not a number: a LaTeX command (a root, pi, a product, a
# function, an inequality), a root, a power, a product, an inequality sign, a variable, a sum or difference with a
# number or a root ("32 - 16√6")
_EXPRESSION_TAIL = re.compile(
    r"(?:\s*+(?:\\[A-Za-z]|√|π|\^|[<>≤≥≠]|\*\s*+\S|[-+]\s*+(?:\d|\\[A-Za-z]|√|π))|[a-zA-Z](?![a-zA-Z']))"
)
# what before a number makes it part of an expression: an inequality sign or a LaTeX command ("x \geq 3")
_EXPRESSION_HEAD = re.compile(r"(?:[<>≤≥≠]|\\[A-Za-z]++)\s*+$")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
# Every pattern below runs on whole replies (any length, any content): each quantifier that could give back what a
# neighbour also matches is possessive (``*+``, ``++``, ``?+``), so no pattern backtracks over a long run
# (tests/core/test_answers_regressions.py checks it).
_ANSWER_MARKER = re.compile(
    r"(?i)(?:####|\bfinal\s++answer\b|\banswer\b)(?:\s++(?:is|was|would\s++be|will\s++be)\b)?+\s*+[:=]?+\s*+"
)
_SENTENCE_BREAK = re.compile(r"\n|(?<=[.!?])\s++(?=[A-Z(\d$\\])")
#: An answer part (what follows a marker, a sentence) is read up to this many characters: a stated answer is short.
_PART_CHARS = 1_000
# a choice letter after a marker: an upper-case letter, or a lower-case one set apart ("answer: b", "(b)"), never
# the article of "the answer is a bit longer"
_LETTER = r"[*_]*+(?:\(([A-Za-z])\)|([A-Z])(?![A-Za-z'])|([a-z])(?=[*_]*+(?:[.):,;!]|\s*+$)))"
_CHOICE_PATTERNS = (
    # the whole reply is the letter: "B", "(b)", "**B**", "B.", "B. Paris", "B) ..."
    re.compile(r"^[\s*_`\"']*+\(?([A-Za-z])\)?[\s*_`\"'.:)]*+$"),
    re.compile(r"^[\s*_]*+\(([A-Za-z])\)(?!(?:[^(\n]|\((?![A-Za-z]\)))*+\([A-Za-z]\))"),  # not "(A) and (C)"
    re.compile(r"^[\s*_]*+([A-Z])[.):](?:\s|\*|$)"),
    # stated answers, strongest first; the first match of the first pattern that matches is the answer
    re.compile(r"(?i:\bfinal\s++answer\b)(?:\s++(?i:is|was)\b)?+\s*+:?+\s*+" + _LETTER),
    re.compile(r"(?i:\banswer\b)(?:\s++(?i:is|was)\b\s*+:?+|\s*+:)\s*+" + _LETTER),
    re.compile(r"(?i:\banswer\b)\s*+" + _LETTER),  # "Answer B"
    # an option stated as the answer ("Option B", "the correct option is B", "option B is correct"), not an
    # option merely mentioned ("Option A is tempting")
    re.compile(r"^[\s*_]*+(?i:option)\s*+" + _LETTER + r"[\s*_.)]*+$"),
    re.compile(
        r"(?i:\b(?:correct|right|best|final)\s++(?:option|choice)\s++(?:is\s*+:?+|:)|\b(?:choose|pick|select)\s++"
        r"option)\s*+" + _LETTER
    ),
    re.compile(r"(?i:\boption)\s*+" + _LETTER + r"[*_]*+\s++(?i:is\s++(?:the\s++)?(?:correct|right|answer)\b)"),
)
#: The word a choice pattern needs (searched only when the reply holds it).
_CHOICE_WORDS = {p: w for ps, w in ((_CHOICE_PATTERNS[3:6], "answer"), (_CHOICE_PATTERNS[6:], "option")) for p in ps}
#: Keys of a structured answer that hold its reasoning, left out of an ``"auto"`` comparison when others remain.
REASONING_KEYS: frozenset[str] = frozenset(
    {
        "reasoning",
        "reason",
        "explanation",
        "rationale",
        "thinking",
        "thought",
        "thoughts",
        "analysis",
        "justification",
        "steps",
        "work",
        "chain_of_thought",
        "solution_steps",
    }
)
#: An assistant declining to answer (not "cannot be determined", which can be a question's right answer).
_ASSISTANT_REFUSAL = re.compile(
    r"(?i)^\W*(?:(?:unfortunately|i\s*apologi[sz]e|apologies|my apologies)\W+(?:but\s+)?)?"
    r"(?:sorry\W+(?:but\s+)?i\b|i\s*(?:'m|’m| am)\s*(?:sorry|unable|not able|not sure|not certain)|"
    r"i\s*(?:don't|don’t|do not)\s+know\b|"
    r"i\s*(?:can(?:no|'|’)t|cannot|won't|will not)\s+(?:help|assist|provide|answer|comply|do that)|"
    r"as an ai\b|i must decline|n/?a\W*$)"
)
_REFUSAL = re.compile(
    r"(?i)\b(?:i\s*(?:'m| am)\s*(?:sorry|unable|not able)|i\s*(?:can(?:no|')t|cannot|won't|will not)\s+"
    r"(?:help|assist|provide|answer|comply|do that|determine|solve)|as an ai\b|i must decline|"
    r"cannot be determined|not enough information|insufficient information|n/a\b)"
)


# ---- per-kind extraction -----------------------------------------------------------------------------------
def extract_choice(value: Any) -> str | None:
    """The choice letter of an answer, upper case, or None."""
    if value is None:
        return None
    text = str(value).strip()
    m = _choice_match(text, _CHOICE_PATTERNS)  # the whole reply a letter, else the first stated answer
    return None if m is None else next(g for g in m.groups() if g).upper()


def _choice_match(text: str, patterns: tuple[re.Pattern[str], ...]) -> re.Match[str] | None:
    """The first match of the first of ``patterns`` that matches (those after a word searched only when the reply
    holds the word: a pass over a long reply each saved)."""
    lowered = text.lower()
    for pattern in patterns:
        word = _CHOICE_WORDS.get(pattern)
        if word is None or word in lowered:
            m = pattern.search(text)
            if m:
                return m
    return None


@functools.lru_cache(maxsize=16)
def _clean_math(text: str) -> str:
    """A maths answer with its wrappers dropped: ``$``, ``**``, ``\\text{}``, ``\\left`` / ``\\right``, LaTeX spaces,
    a Unicode minus read as ``-``, and (ZeroEval's rule) every ``,``."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\(?:left|right|displaystyle)\b|\\[!,;: ]", "", text)
    return text.replace("$", "").replace(",", "").replace("**", "").replace("\\dfrac", "\\frac")


def _boxed_span(text: str) -> tuple[int, int] | None:
    """Where the content of the last ``\\boxed{...}`` (braces balanced) lies, or None."""
    last = None
    for last in _BOXED.finditer(text):  # noqa: B007 (the last match is wanted)
        pass
    if last is None:
        return None
    depth, start = 1, last.end()
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return start, i
    return start, len(text)


def _after_equals(text: str, start: int, stop: int) -> int:
    """Where an answer part's answer starts: after its last ``=`` when a number follows it ("60 - 15 = 45")."""
    eq = text.rfind("=", start, stop)
    if eq >= 0 and _NUM_TOKEN.search(text[eq + 1 : stop]):
        return eq + 1
    return start


@functools.lru_cache(maxsize=16)  # a reply is read up to three times per comparison
def _answer_span(text: str) -> tuple[int, int, bool] | None:
    """Where a reply states its final answer, as ``(start, stop, stated)``: the last ``\\boxed{}``, else the sentence
    after the last "answer is" / "Answer:" / "####" that holds a number (``stated`` True), else, for a reply of
    several sentences, its last sentence that holds a number (``stated`` False); each from its last ``=`` when a
    number follows it, and at most ``_PART_CHARS`` long. None for a one-sentence reply without a marker.

    Linear in the reply: marker, sentence and number positions are each found once (markers' sentences and numbers
    looked up by bisection), and every part read is at most ``_PART_CHARS`` long.
    """
    boxed = _boxed_span(text)
    if boxed is not None and text[boxed[0] : boxed[1]].strip():
        start, stop = boxed[0], min(boxed[1], boxed[0] + _PART_CHARS)
        return _after_equals(text, start, stop), stop, True
    has_marker = "####" in text or "answer" in text.lower()
    markers = [m.end() for m in _ANSWER_MARKER.finditer(text)] if has_marker else []
    if markers:
        breaks = [m.start() for m in _SENTENCE_BREAK.finditer(text)]
        numbers = [m.start() for m in _NUM_TOKEN.finditer(text)]
        for end in reversed(markers):
            i = bisect.bisect_left(breaks, end)
            stop = min(breaks[i] if i < len(breaks) else len(text), end + _PART_CHARS)
            j = bisect.bisect_left(numbers, end)
            if j < len(numbers) and numbers[j] < stop:
                return _after_equals(text, end, stop), stop, True
    first, end = len(text) - len(text.lstrip()), len(text.rstrip())
    if _SENTENCE_BREAK.search(text, first, end) is None:
        return None  # one sentence: ZeroEval's first-number rule
    last = None
    for last in _NUM_TOKEN.finditer(text):  # noqa: B007 (the last number is wanted)
        pass
    if last is None:
        return None
    # the last sentence that holds a number (not a closing "I hope this helps!"), its end kept when it is long
    start = max(0, last.start() - _PART_CHARS)
    for brk in _SENTENCE_BREAK.finditer(text, start, last.start() + 1):
        if brk.end() <= last.start():
            start = brk.end()
    after = _SENTENCE_BREAK.search(text, last.end())
    stop = min(after.start() if after else len(text), max(start + _PART_CHARS, last.end()))
    start = max(start, stop - _PART_CHARS)
    return _after_equals(text, start, stop), stop, False


def _answer_part(text: str) -> str | None:
    """The text of :func:`_answer_span`, or None."""
    span = _answer_span(text)
    return None if span is None else text[span[0] : span[1]]


def _literal_part(text: str) -> Hashable | None:
    """The key of a container literal a reply states as its answer part (``The answer is [1, 1, 2].``), or None."""
    part = _answer_part(text)
    if part is None or not any(c in part for c in "[({"):
        return None
    return _literal_key(part.strip().rstrip(".").rstrip())


def _quoted_string(text: str) -> str | None:
    """The value of a quoted Python / JSON string literal (``'mgiTr'``, ``"a  b"``), or None when the text is not
    one."""
    stripped = text.strip()
    if not 2 <= len(stripped) <= 100_000 or stripped[0] != stripped[-1] or stripped[0] not in "'\"":
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, str) else None


def _stated_part(text: str) -> str | None:
    """The answer part a reply states (boxed, or after a marker), or None."""
    span = _answer_span(text)
    return text[span[0] : span[1]] if span is not None and span[2] else None


def _token_value(m: re.Match[str]) -> float | None:
    if m.group("fn") is not None:
        num, den = float(m.group("fn")), float(m.group("fd"))
        if m.group("sign"):
            num = -num
    else:
        num, den = float(m.group("num")), float(m.group("den")) if m.group("den") else 1.0
    return num / den if den != 0 else None


def _is_reasoning(text: str) -> bool:
    """Whether a reply is several sentences or lines (reasoning that ends with its answer)."""
    return _SENTENCE_BREAK.search(text.strip()) is not None


class _Unequal:
    """A key part that equals nothing but itself: a non-finite number, which no other answer agrees with."""

    __slots__ = ()


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class _Qualified:
    """A key part with qualifiers: a number's unit (``km``, ``%``, ``pm``) and rate (``per hour``), an answer's
    leading yes / no. Equal to another when the values are equal and every qualifier both state is the same; a
    qualifier one side leaves out is no difference (GSM8K replies often drop the unit: ``"5 hours"`` agrees with
    ``"5"``, not with ``"5 minutes"``). Symmetric; hashed as its value, so it hashes as what it equals."""

    __slots__ = ("quals", "value")

    def __init__(self, value: Hashable, quals: tuple[tuple[str, str], ...]) -> None:
        self.value, self.quals = value, quals

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Qualified):
            mine = dict(self.quals)  # each name once (:func:`_qualify`)
            return self.value == other.value and all(mine.get(k, v) == v for k, v in other.quals)
        return bool(self.value == other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"_Qualified({self.value!r}, {self.quals!r})"


def _qualify(value: Hashable, quals: tuple[tuple[str, str], ...]) -> Hashable:
    """``value`` with ``quals`` added (merged into a qualified value's own); the value itself without any."""
    if not quals:
        return value
    merged: dict[str, str] = {}
    for name, qual in (*value.quals, *quals) if isinstance(value, _Qualified) else quals:
        # one qualifier stated twice, differently ("€18 dollars"): both kept, so it agrees with neither alone
        merged[name] = qual if merged.get(name, qual) == qual else "|".join(sorted({*merged[name].split("|"), qual}))
    return _Qualified(value.value if isinstance(value, _Qualified) else value, tuple(sorted(merged.items())))


# Units a number may carry, by spelling (any case) -> canonical name. Only these: an unknown word after a number
# ("8 apples") is no unit. Left out as too often a word of prose or maths: "in", "s", "a", "t", "d".
_UNIT_NAMES: dict[str, str] = {
    **dict.fromkeys(("%", "percent", "per cent", "pct"), "%"),
    **dict.fromkeys(("am", "a.m.", "a.m"), "am"),
    **dict.fromkeys(("pm", "p.m.", "p.m"), "pm"),
    **dict.fromkeys(("sec", "secs", "second", "seconds"), "second"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "minute"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hour"),
    **dict.fromkeys(("day", "days"), "day"),
    **dict.fromkeys(("wk", "wks", "week", "weeks"), "week"),
    **dict.fromkeys(("month", "months"), "month"),
    **dict.fromkeys(("yr", "yrs", "year", "years"), "year"),
    **dict.fromkeys(("decade", "decades"), "decade"),
    **dict.fromkeys(("century", "centuries"), "century"),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), "mm"),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), "cm"),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"), "km"),
    **dict.fromkeys(("inch", "inches"), "inch"),
    **dict.fromkeys(("ft", "foot", "feet"), "ft"),
    **dict.fromkeys(("yd", "yds", "yard", "yards"), "yd"),
    **dict.fromkeys(("mi", "mile", "miles"), "mile"),
    **dict.fromkeys(("mg", "milligram", "milligrams"), "mg"),
    **dict.fromkeys(("g", "gram", "grams"), "g"),
    **dict.fromkeys(("kg", "kgs", "kilogram", "kilograms", "kilo", "kilos"), "kg"),
    # "pounds" is a weight or sterling: one unit, so "12 pounds" agrees with "£12" and with "12 lb"
    **dict.fromkeys(("lb", "lbs", "pound", "pounds", "gbp", "£"), "pound"),
    **dict.fromkeys(("oz", "ounce", "ounces"), "oz"),
    **dict.fromkeys(("ton", "tons", "tonne", "tonnes"), "ton"),
    **dict.fromkeys(("ml", "milliliter", "milliliters", "millilitre", "millilitres"), "ml"),
    **dict.fromkeys(("l", "liter", "liters", "litre", "litres"), "l"),
    **dict.fromkeys(("gal", "gallon", "gallons"), "gal"),
    **dict.fromkeys(("qt", "quart", "quarts"), "qt"),
    **dict.fromkeys(("pint", "pints"), "pint"),
    **dict.fromkeys(("cup", "cups"), "cup"),
    **dict.fromkeys(("tbsp", "tablespoon", "tablespoons"), "tbsp"),
    **dict.fromkeys(("tsp", "teaspoon", "teaspoons"), "tsp"),
    **dict.fromkeys(("mph",), "mile/hour"),  # a unit and a rate: "750 mph" is "750 miles per hour"
    **dict.fromkeys(("kph", "km/h", "kmh"), "km/hour"),
    # a bare degree ("5 degrees", "5°") is no unit: it may be Celsius, Fahrenheit or an angle
    **dict.fromkeys(("°c", "celsius", "degrees celsius"), "°C"),
    **dict.fromkeys(("°f", "fahrenheit", "degrees fahrenheit"), "°F"),
    **dict.fromkeys(("dozen", "dozens"), "dozen"),
    **dict.fromkeys(("dollar", "dollars", "usd", "buck", "bucks"), "usd"),
    **dict.fromkeys(("cent", "cents", "¢"), "cent"),
    **dict.fromkeys(("euro", "euros", "eur", "€"), "eur"),
    **dict.fromkeys(("yen", "¥"), "yen"),
    **dict.fromkeys(("rupee", "rupees"), "rupee"),
    **dict.fromkeys(("peso", "pesos"), "peso"),
}
_UNIT_WORDS = "|".join(re.escape(u) for u in sorted(_UNIT_NAMES, key=len, reverse=True))
# after a number (one or two spaces at most, every repetition bounded or possessive: read once per number):
# a scale word, then a unit ("square" / "cubic" one, or one of _UNIT_NAMES), then a rate ("per hour", "/day",
# "a week", "each day")
_SCALE_WORD = re.compile(r"(?i)[ ]{0,2}+(hundred|thousand|million|billion|trillion)(?![A-Za-z0-9-])")
_SCALES = {"hundred": 1e2, "thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_UNIT_AFTER = re.compile(rf"(?i)[ ]{{0,2}}+(?:(square|sq\.?|cubic|cu\.?)[ ]{{1,2}}+)?+({_UNIT_WORDS})(?![A-Za-z0-9(])")
_RATE_AFTER = re.compile(
    rf"(?i)[ ]{{0,2}}+(?:/|(?:per|an?|each|every)(?![A-Za-z]))[ ]{{0,2}}+({_UNIT_WORDS})(?![A-Za-z])"
)
# a currency sign before a number ("€18"; "$" is not read: LaTeX uses it for maths, and it is dropped before)
_CURRENCY_BEFORE = {"€": "eur", "£": "pound", "¥": "yen"}


def _quantity(text: str, token: re.Match[str], number: float) -> float | _Qualified | None:
    """A number with what follows it in ``text``: a scale word multiplies it ("5 million" is 5,000,000), a unit or
    a currency sign qualifies it (:class:`_Qualified`); None when the scaled value is not finite."""
    quals: list[tuple[str, str]] = []
    pos = token.end()
    for _ in range(len(_SCALES)):  # "5 hundred thousand" is 500,000 (each scale word at most once in a row)
        scale = _SCALE_WORD.match(text, pos)
        if scale is None:
            break
        number, pos = number * _SCALES[scale.group(1).lower()], scale.end()
        if not math.isfinite(number):
            return None
    unit = _UNIT_AFTER.match(text, pos)
    if unit is not None:
        square = (unit.group(1) or "").lower()
        name = _UNIT_NAMES[unit.group(2).lower()]
        name, _, per = name.partition("/")
        quals.append(("unit", ("cubic " if square.startswith("cu") else "square " if square else "") + name))
        if per:
            quals.append(("per", per))
        pos = unit.end()
    rate = _RATE_AFTER.match(text, pos)
    if rate is not None:
        quals.append(("per", _UNIT_NAMES[rate.group(1).lower()]))
    before = text[max(0, token.start() - 2) : token.start()].rstrip()
    if before and before[-1] in _CURRENCY_BEFORE:
        quals.append(("unit", _CURRENCY_BEFORE[before[-1]]))
    return _qualify(number, tuple(quals))


# a leading yes / no (or true / false) set apart by punctuation or the end: "Yes, 5 is prime.", "**No.**", "True"
# (not "No problem", "Nobody", "No. 5" read as a number sign is still "no": the safe side, a disagreement)
_POLARITY = re.compile(r"(?i)[\s*_`\"'(\[]*+(yes|no|true|false)[*_`\"')\]]*+(?=[,.;:!?\u2014\u2013]|\s*+$)")


def _polarity(text: str) -> tuple[tuple[str, str], ...]:
    """An answer's leading yes / no as a qualifier: from the start of its stated answer part ("The answer is: no,
    ..."), else from its own start; none when it has no such word."""
    span = _answer_span(text)
    m = _POLARITY.match(text, span[0]) if span is not None and span[2] else None
    if m is None:
        m = _POLARITY.match(text)
    return () if m is None else (("polarity", "yes" if m.group(1).lower() in ("yes", "true") else "no"),)


def _number_key(value: Any) -> float | _Qualified | tuple[float | _Qualified, ...] | None:
    """The number an answer states (a float, scaled by a scale word and qualified by its unit: :func:`_quantity`),
    the numbers of its answer part in order when that holds several different ones (a tuple: two answers agree
    only on all of them), or None: no number, an expression (``3\\sqrt{2}``), a value that is not finite."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return _finite(float(value))
        except OverflowError:  # an int too large for a float
            return None
    if _literal_part(str(value)) is not None:
        return None  # a container literal stated as the answer ("The answer is [1, 1, 2]"): compared as one
    text = _clean_math(str(value))
    span = _answer_span(text)
    if span is None:  # a short answer: its first number (ZeroEval's rule)
        first = _NUM_TOKEN.search(text)
        tokens, lo = ([] if first is None else [first]), 0
    else:
        tokens, lo = list(_NUM_TOKEN.finditer(text, span[0], span[1])), span[0]
    values: list[float | _Qualified] = []  # every number, in order: (1, 1, 2) is not (1, 2)
    for m in tokens:
        if _EXPRESSION_TAIL.match(text, m.end()) or _EXPRESSION_HEAD.search(text[max(lo, m.start() - 16) : m.start()]):
            return None
        number = _finite(_token_value(m))
        quantity = None if number is None else _quantity(text, m, number)
        if quantity is None:
            return None
        values.append(quantity)
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def extract_number(value: Any) -> float | None:
    """The final number of an answer: the one its answer part states (a boxed value, after "the answer is", after
    the last ``=``), else in a reasoning reply the last sentence that holds a number, else (a short answer) the
    first. None when there is none, it starts an expression (``3\\sqrt{2}``), it is not finite, or the answer part
    holds several different numbers ("after 2 hours it holds 450 liters": which one is the answer is unsure). A
    scale word multiplies it: "5 million" is 5000000.0."""
    key = _number_key(value)
    if isinstance(key, _Qualified):
        key = key.value
    return key if isinstance(key, float) else None


def _math_text(value: Any) -> str | None:
    """An expression's comparable text: the answer part, wrappers and all whitespace dropped, case folded."""
    text = _clean_math(str(value))
    part = _answer_part(text)
    text = (part if part is not None else text).replace("√", "\\sqrt").replace("π", "\\pi")
    text = re.sub(r"\s+", "", text).rstrip(".").casefold()
    return text or None


def normalise_text(value: Any) -> str | None:
    """Normalised text: NFKC, case folded, whitespace collapsed, surrounding quotes and one final punctuation mark
    removed; None for None."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    text = " ".join(text.split())
    text = text.strip().strip("\"'`").strip()
    if text[-1:] in {".", "!", ";", ":", ","}:  # one final mark: "iq!!!" is not "iq!!!!"
        text = text[:-1]
    return text.strip()


_PLAIN_NUMBER = re.compile(r"^\s*+\$?+\s*+-?(?!0\d)(?:\d{1,3}(?:,\d{3})++|\d++)(?:\.\d++)?+\s*+$")


def _number_value(value: int | float | str) -> Hashable:
    """A JSON number (or a plain-number string) as a float; an int too large for one as itself (exact); a value
    that is not finite as :class:`_Unequal` (it agrees with nothing)."""
    try:
        number = float(value)
    except OverflowError:
        return value if isinstance(value, int) else _Unequal()
    if not math.isfinite(number):
        if isinstance(value, str) and "." not in value and len(value) <= 4_000:
            return int(value)  # a long integer string: exact
        return _Unequal()
    return number


def _value_key(value: Any) -> Hashable:
    """A hashable, normalised form of a JSON value (numbers as floats, a string that is a plain number too, strings
    normalised, keys sorted)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return _number_value(value)
    if isinstance(value, str):
        if _PLAIN_NUMBER.match(value):
            return _number_value(value.replace("$", "").replace(",", "").strip())
        return normalise_text(value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _value_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_value_key(v) for v in value)
    return normalise_text(value)


# "1, 2, 3" (not "1,000,000": a comma with no space before three digits groups thousands)
_NUMBER_LIST = re.compile(r"^-?\d++(?:\.\d++)?+(?:\s*+,(?:\s++|(?!\d{3}(?!\d)))-?\d++(?:\.\d++)?+)++$")


def _literal_key(text: str) -> Hashable | None:
    """The value of a Python / JSON container literal (``[1, 2]``, ``(1, 'a')``, ``{'k': 1}``), tagged by type, or
    None when the text is not one."""
    stripped = text.strip()
    if _NUMBER_LIST.match(stripped):  # a bare list of numbers: "1, 2, 3"
        stripped = f"[{stripped}]"
    if not 2 <= len(stripped) <= 10_000 or stripped[0] + stripped[-1] not in {"[]", "()", "{}"}:
        return None
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        try:
            value = json.loads(stripped)
        except (json.JSONDecodeError, ValueError, RecursionError):
            return None
    return _typed_key(value) if isinstance(value, (list, tuple, set, frozenset, dict)) else None


def _typed_key(value: Any) -> Hashable:
    """A literal's value as a hashable key that keeps containers' types (a list is not a tuple) and strings' case."""
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((repr(_typed_key(k)), _typed_key(v)) for k, v in value.items()), key=repr)))
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((_typed_key(v) for v in value), key=repr)))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_typed_key(v) for v in value))
    if isinstance(value, bool):  # True == 1 in Python, not in an answer
        return ("bool", value)
    if isinstance(value, float) and not math.isfinite(value):
        return _Unequal()  # 1e400 in a literal: agrees with nothing
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _unfence(text: str) -> str | None:
    """The content of a reply that is one code block (```` ```json ... ``` ````), or None."""
    stripped = text.strip()
    if len(stripped) < 6 or not stripped.startswith("```") or not stripped.endswith("```"):
        return None
    inner = stripped[3:-3]
    return (inner[4:] if inner.startswith("json") else inner).strip()


def _last_fenced_object(text: str) -> str | None:
    """The last fenced code block of a reply that holds a JSON object (``{...}``), or None. Fences pair up in
    order (opening, closing), as Markdown reads them; one pass over the reply."""
    fences, at = [], text.find("```")
    while at >= 0:
        fences.append(at)
        at = text.find("```", at + 3)
    for open_at, close_at in reversed(list(zip(fences[::2], fences[1::2]))):
        block = _unfence(text[open_at : close_at + 3])
        if block and block[0] == "{" and block[-1] == "}":
            return block
    return None


def _loads(text: str) -> Any:
    try:
        return json.loads(text, strict=False)  # strict=False: raw line breaks inside strings, as models write them
    except (json.JSONDecodeError, ValueError, RecursionError):
        return None


def _parse_json(value: Any, *, embedded: bool = False) -> Any:
    """A JSON value (a whole answer, code fences allowed); with ``embedded``, also a JSON object written inside
    prose (the last fenced block, else from the first ``{`` to the last ``}``)."""
    if isinstance(value, (Mapping, list, tuple)):
        return value
    if value is None:
        return None
    text = str(value)
    fenced = _unfence(text)
    obj = _loads(fenced if fenced is not None else text)
    if obj is not None or not embedded:
        return obj
    block = _last_fenced_object(text)
    if block is not None:
        obj = _loads(block)
    elif 0 <= text.find("{") < text.rfind("}"):
        obj = _loads(text[text.find("{") : text.rfind("}") + 1])
    return obj if isinstance(obj, Mapping) else None


def extract_json(value: Any, fields: tuple[str, ...] | None = None) -> Hashable | None:
    """The normalised fields of a JSON object (only ``fields`` when given; a missing one is None), or None when
    the answer is not a JSON object."""
    obj = _parse_json(value, embedded=True)
    if not isinstance(obj, Mapping):
        return None
    if fields is not None:
        obj = {f: obj.get(f) for f in fields}
    return _value_key(obj)


def _auto_json_key(obj: Mapping[str, Any]) -> Hashable | None:
    """A JSON object read with ``"auto"``: reasoning fields left out when others remain, each remaining string read
    as an ``"auto"`` answer; one remaining field is its value's key (``{"answer": "72"}`` agrees with ``72`` and
    with a reply that ends "answer: 72"). None when a remaining field holds no answer (empty, a refusal)."""
    kept = {k: v for k, v in obj.items() if str(k).strip().casefold() not in REASONING_KEYS} or dict(obj)
    out = []
    for k, v in kept.items():
        scalar = isinstance(v, (str, int, float)) and not isinstance(v, bool)
        key = normalise_answer(v, "auto") if scalar else _value_key(v)
        if key is None:
            return None
        out.append((str(k), key))
    if len(out) == 1 and isinstance(out[0][1], tuple) and out[0][1][:1] != ("json",):
        return out[0][1]  # one answer field: its value's key (a number, a choice, text ...)
    return ("json", tuple(sorted(out, key=repr)))


#: The keys a tool call may have (LangChain's ``{"name", "args", "id", "type"}``, OpenAI's function).
_TOOL_CALL_KEYS = frozenset({"name", "arguments", "args", "id", "type"})


def _one_call(call: Any) -> tuple[str, Hashable] | None:
    if not isinstance(call, Mapping):
        return None
    if isinstance(call.get("function"), Mapping):  # OpenAI's {"type": "function", "function": {...}}
        call = call["function"]
    elif not set(call) <= _TOOL_CALL_KEYS or ("arguments" not in call and "args" not in call):
        return None  # a structured answer with a "name" field ({"name": "Ada", "age": 36}) is not a tool call
    name = call.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    args = call.get("arguments", call.get("args", {}))
    if isinstance(args, str):
        parsed = _parse_json(args) if args.strip() else {}
        if parsed is None:
            return None
        args = parsed
    if args is None:
        args = {}
    if not isinstance(args, Mapping):
        return None
    return name.strip(), _exact_value_key(args)  # a function name is case-sensitive in every provider's API


def _exact_value_key(value: Any) -> Hashable:
    """A hashable form of a tool call's arguments: strings exact (surrounding whitespace stripped only: an id
    ``"ABC"`` is not ``"abc"``), numbers as floats, keys sorted."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return _number_value(value)
    if isinstance(value, str):
        return ("str", value.strip())
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _exact_value_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_exact_value_key(v) for v in value)
    return ("str", str(value).strip())


def extract_tool_calls(value: Any) -> Hashable | None:
    """Tool calls as a sorted tuple of ``(name, normalised arguments)``, or None when the answer holds none."""
    obj = _parse_json(value)
    calls = [obj] if isinstance(obj, Mapping) else obj
    if not isinstance(calls, (list, tuple)) or not calls:
        return None
    keys = [_one_call(c) for c in calls]
    if any(k is None for k in keys):
        return None
    return tuple(sorted(keys, key=repr))  # type: ignore[arg-type]


# a short number answer: what may come before the number, and after it (a unit or a few words)
_NUMBER_HEAD = re.compile(
    r"[\s(\[]*+(?:(?:about|approximately|approx\.?|roughly|~|≈)\s*+)?+(?:[A-Za-z]\s*+=\s*+)?+[+]?+"
)
# (a unit glued to the number is short, "5km"; the words after it are four at most, each of two letters or more
# unless it is the only one, "5 m": so "3ihoxmqnd dna trel" and "3 i h o x m" are no numbers)
_NUMBER_TAIL = re.compile(
    r"(?:%|[A-Za-z]{1,3}+(?![A-Za-z]))?+(?:\s++(?:[A-Za-z](?=[\s)\].!]*+$)|[A-Za-z][A-Za-z'/-]++"
    r"(?:[ .]++[A-Za-z][A-Za-z'/-]++){0,3}+))?+[\s)\].!]*+"
)
# a word of a sentence that holds a digit and reads as a number: "$18", "2:00", "1/2", "-5", "18th", "1990s", "75%"
_NUMBER_WORD = re.compile(r"[$#~≈]?[-+]?(?:\d++(?:[.,:/]\d++)*+|\.\d++)(?:%|st|nd|rd|th|s)?")
_WORD_EDGES = ".,;:!?()[]{}\"'*_`-"


def _is_number_answer(text: str) -> bool:
    """Whether a short answer is a number, with a unit or a few words after it at most (``18 dollars``, ``$1,234``,
    ``x = 5``, ``\\frac{3}{4}``), not an expression or a string that happens to hold a digit."""
    if len(text) > 200:
        return False
    head = _NUMBER_HEAD.match(text)
    token = _NUM_TOKEN.match(text, head.end() if head else 0)
    return token is not None and _NUMBER_TAIL.fullmatch(text, token.end()) is not None


def _reads_as_prose(text: str, *, sentence: bool) -> bool:
    """Whether text with numbers in it is prose (a reply, a sentence) rather than a string that holds digits
    (``'2io 12 tfiqr-'``, ``#[)[]> 8``, ``3 i h o x``). A sentence: half its words or more are words of letters, and
    every word with a digit in it reads as a number; a reply of several lines (equations and steps): one word in
    eight or more is a word of letters. Either way its words of letters are two letters long or more on average.
    Judged on its last ``2 * _PART_CHARS`` characters, where its answer is."""
    words = text[-2 * _PART_CHARS :].split()
    letters = letter_chars = 0
    for word in words:
        core = word.strip(_WORD_EDGES).replace("'", "").replace("’", "")
        if core.isalpha():
            letters += 1
            letter_chars += len(core)
        elif sentence and any(c.isdigit() for c in core) and not _NUMBER_WORD.fullmatch(core):
            return False
    if letters == 0 or letter_chars < 2 * letters:
        return False
    return 2 * letters >= len(words) if sentence else 8 * letters >= len(words)


_LEADING_ZERO = re.compile(r"[-+$]?+0\d")


def _unwrap_display_math(text: str) -> str:
    """A short answer without its display-maths wrapper (``$$5$$`` is 5)."""
    return text[2:-2] if len(text) > 4 and text.startswith("$$") and text.endswith("$$") else text


def guess_kind(value: Any) -> str:
    """The kind ``"auto"`` treats an answer as: tool calls, JSON, a choice letter, a number (a reply's stated or
    final number, or a short number answer), else text (container literals by value)."""
    obj = _parse_json(value, embedded=True) if not isinstance(value, (int, float)) else None
    if obj is not None and extract_tool_calls(obj) is not None:
        return "tool_call"
    if isinstance(obj, Mapping):
        return "json"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    text = str(value).strip()
    if _quoted_string(text) is not None:
        return "text"  # a string literal ('a' is not a choice letter, '05' not a number)
    if any(p.match(text) for p in _CHOICE_PATTERNS[:2]):
        return "choice"
    cleaned = _clean_math(text)
    if _stated_part(cleaned) is not None:
        return "text" if _literal_part(text) is not None else "number"  # "The answer is [1, 2]." is a literal
    if extract_choice(text) is not None and _choice_match(text, _CHOICE_PATTERNS[3:]) is not None:
        return "choice"
    if _literal_key(text) is not None or (len(text) >= 2 and text[0] == text[-1] and text[0] in "'\""):
        return "text"  # a container literal, a quoted string ('abc 12 def')
    number = _NUM_TOKEN.search(cleaned)
    if number is None or _LEADING_ZERO.match(text) or "$$" in _unwrap_display_math(text):
        return "text"  # digits with leading zeros ('00019', '05') or repeated '$' are a string, not a number
    if _is_number_answer(cleaned):
        return "number"  # a number with its unit
    reasoning = _is_reasoning(cleaned)
    if (reasoning or len(cleaned.split()) >= 3) and _reads_as_prose(cleaned, sentence=not reasoning):
        return "number"  # a reply or a sentence that holds numbers
    if _EXPRESSION_TAIL.match(cleaned, number.end()):
        return "number"  # an expression (3\sqrt{2}): compared as maths text
    return "text"


def normalise_answer(
    value: Any,
    kind: str = "auto",
    *,
    extract: Extractor | None = None,
    fields: tuple[str, ...] | None = None,
) -> Hashable | None:
    """A comparable key for an answer under ``kind`` (or the user's ``extract``), None when there is none.

    Keys of different kinds are tagged, so a number never equals the same characters read as text. Compare keys
    pairwise with ``==`` only: a number's unit or an answer's yes / no that one side leaves out matches any
    (``"5 km"`` equals ``"5"``, which equals ``"5 miles"``), so keys do not group answers transitively, and a
    qualified key is not JSON-serialisable.

    Raises:
        InvalidInputError: ``kind`` is not one of :data:`ANSWER_KINDS`.
    """
    if kind not in ANSWER_KINDS:
        raise InvalidInputError(f"unknown answer kind {kind!r}; expected one of {list(ANSWER_KINDS)}")
    if value is None:
        return None
    if extract is not None:
        key = extract(value)
        return None if key is None else ("custom", key)
    auto = kind == "auto"
    if auto:
        kind = guess_kind(value)
    key: Hashable | None
    if kind in ("choice", "number"):
        key = extract_choice(value) if kind == "choice" else _number_key(value)
        if key is None and kind == "number":
            if isinstance(value, (int, float)):
                # an int too large for a float is compared exactly; a float that is not finite agrees with nothing
                return ("number", value) if isinstance(value, int) and not isinstance(value, bool) else None
            return _text_key(value, expression=True)
        if key is not None and isinstance(value, str):
            key = _qualify(key, _polarity(value))  # "Yes, 5 is prime." is not "No, 5 is not prime."
    elif kind == "json":
        obj = _parse_json(value, embedded=True)
        if auto and fields is None and isinstance(obj, Mapping):
            return _auto_json_key(obj)
        key = extract_json(value, fields)
    elif kind == "tool_call":
        key = extract_tool_calls(value)
    elif kind == "exact":
        key = str(value).strip()
    else:
        return _text_key(value)
    return None if key is None else (kind, key)


def _text_key(value: Any, *, expression: bool = False) -> Hashable | None:
    """The ``"text"`` key of an answer: a container literal by value, an expression (``expression=True``, an
    answer read as a number without one) as maths text, else normalised text; None when empty or a refusal."""
    if isinstance(value, float) and not math.isfinite(value):
        return None  # inf, nan: no answer
    text = str(value)
    if not text.strip() or _ASSISTANT_REFUSAL.match(text):
        return None
    literal = _literal_key(text)
    if literal is None:
        quoted = _quoted_string(text)  # a string literal is a value: compared exactly ('mgiTr' is not 'mgItr')
        if quoted is not None and quoted and quoted == normalise_text(quoted):
            return ("text", quoted)  # one that normalising leaves as it is agrees with the same text unquoted
        literal = ("str", quoted) if quoted is not None else None
    if literal is None:
        literal = _literal_part(text)  # "The answer is [1, 1, 2]."
    if literal is not None:
        return ("literal", literal)
    if expression and _NUM_TOKEN.search(_clean_math(text)):
        maths = _math_text(text)
        return ("math", maths) if maths else None
    normal = normalise_text(text)
    return ("text", normal) if normal else None


def answers_agree(
    a: Any,
    b: Any,
    kind: str = "auto",
    *,
    extract: Extractor | None = None,
    fields: tuple[str, ...] | None = None,
) -> bool:
    """Whether two answers agree under ``kind``: equal keys, neither None.

    With ``kind="auto"`` each answer's kind is guessed on its own, and answers of different kinds never agree (a
    JSON object, read with its reasoning fields left out, agrees with its one answer field's kind); so the
    comparison is symmetric.
    """
    if a is None or b is None:
        return False
    if kind == "auto" and extract is None:
        # each side's kind guessed on its own: "-4" and "x < -4" are a number and text, which never agree (a
        # JSON object read as "auto" may agree with its one answer field's kind: {"answer": 72} with "72")
        kind_a, kind_b = guess_kind(a), guess_kind(b)
        if kind_a != kind_b and "json" not in (kind_a, kind_b):
            return False
        if {kind_a, kind_b} == {"json", "text"}:
            kind_a = kind_b = "text"  # a Python dict literal and a JSON object: compared as literals, by value
        ka = normalise_answer(a, "auto" if kind_a == "json" else kind_a, fields=fields)
        kb = normalise_answer(b, "auto" if kind_b == "json" else kind_b, fields=fields)
        return ka is not None and kb is not None and ka == kb
    ka = normalise_answer(a, kind, extract=extract, fields=fields)
    kb = normalise_answer(b, kind, extract=extract, fields=fields)
    return ka is not None and kb is not None and ka == kb


def is_refusal(text: Any) -> bool:
    """Whether an answer (or raw output) reads as a refusal or a declared inability to answer."""
    return text is not None and bool(_REFUSAL.search(str(text)))


__all__ = [
    "ANSWER_KINDS",
    "REASONING_KEYS",
    "AnswerKind",
    "Extractor",
    "answers_agree",
    "extract_choice",
    "extract_json",
    "extract_number",
    "extract_tool_calls",
    "guess_kind",
    "is_refusal",
    "normalise_answer",
    "normalise_text",
]
