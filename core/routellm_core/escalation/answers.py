"""Final answers: extraction, normalisation and comparison (pure functions).

An escalation check compares the *final answer* of two cheap calls, not their whole text: two correct solutions
of a maths problem rarely share a sentence, but they share the number at the end. Each answer kind has one rule:

- ``"choice"``: a multiple-choice letter (``"B"``, ``"(b)"``, ``"**B**"``, ``"B. Paris"``, ``"Answer: b"``,
  ``"The answer is (C)."``).
- ``"number"``: the final number. The answer part is read first: the last ``\\boxed{...}``, else what follows the
  last "answer is" / "Answer:" / "####" that holds a number; without one, a reply of several sentences or lines
  gives the last number of its last sentence, and a short answer (or a reply whose last sentence holds none) its
  first, as ZeroEval's grader compares GSM8K and MATH answers (``$``, ``,``, ``**`` and ``\\text{}`` dropped, a
  Unicode minus read as ``-``, ``a/b`` and ``\\frac{a}{b}`` evaluated, compared as floats). A number followed by
  more maths (``3\\sqrt{2}``, ``2x+1``, ``6^24``) is an expression, compared as maths text (spaces dropped). Two
  answers without any number fall back to ``"text"``.
- ``"json"``: structured output; a JSON object (a ``dict`` or a JSON string, code fences allowed, or one object
  written inside prose) compared field by field (``fields=`` restricts the comparison), values normalised as below.
- ``"tool_call"``: tool calls (one call or a list: ``{"name", "arguments"}`` or LangChain's ``{"name", "args",
  "id", "type"}``, arguments a dict or a JSON string, or OpenAI's ``{"function": {...}}``; a dict with other keys,
  such as a structured answer ``{"name": "Ada", "age": 36}``, is not a call), compared on the name and the
  normalised arguments, order of the calls ignored.
- ``"text"``: normalised text (Unicode NFKC, case folded, whitespace collapsed, surrounding quotes and one final
  punctuation mark removed); a Python / JSON list, tuple, set or dict literal is compared as its value (``[1, 2]``
  equals ``[1,2]``). An empty answer or an assistant's refusal ("I can't help with that") is no answer.
- ``"exact"``: the string itself, only surrounding whitespace stripped (CRUXEval's rule: a Python literal, where
  case matters).

``"auto"`` guesses the kind from the first answer (:func:`guess_kind`); a JSON object read that way leaves out
reasoning fields (``reasoning``, ``explanation``, ...) when others remain and reads each remaining string as
``"auto"`` again, so ``{"reasoning": ..., "answer": "72"}`` agrees with ``{"reasoning": ..., "answer": 72}``.

``None`` is "no answer extracted": it never agrees with anything, not even another ``None``.
"""

from __future__ import annotations

import ast
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

# one number token: a LaTeX fraction, a simple fraction a/b, or a decimal (not glued to a word: "x2", "abc3")
_NUM_TOKEN = re.compile(
    r"(?P<sign>-\s*)?\\[dt]?frac\s*\{\s*(?P<fn>-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(?P<fd>-?\d+(?:\.\d+)?)\s*\}"
    r"|(?<![A-Za-z_\d.])(?P<num>-?(?:\d+(?:\.\d+)?|\.\d+))(?:\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.]))?"
)
# what after a number makes the answer an expression, not a number: a root, a power, pi, a product, a variable
_EXPRESSION_TAIL = re.compile(r"^(?:\s*(?:\\sqrt|\\pi|\\cdot|\\times|√|π|\^|\*\s*\S)|[a-zA-Z](?![a-zA-Z']))")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_MARKER = re.compile(
    r"(?i)(?:####|\bfinal\s+answer\b|\banswer\b)(?:\s+(?:is|was|would\s+be|will\s+be))?\s*[:=]?\s*"
)
_SENTENCE_BREAK = re.compile(r"\n|(?<=[.!?])\s+(?=[A-Z(\d$\\])")
_CHOICE_PATTERNS = (
    re.compile(r"^[\s*_`\"']*\(?([A-Za-z])\)?[\s*_`\"'.:)]*$"),
    re.compile(r"^[\s*_]*\(([A-Za-z])\)"),
    re.compile(r"^[\s*_]*([A-Z])[.):](?:\s|\*|$)"),
    # after "answer": an upper-case letter, or a lower-case one set apart ("answer: b", "(b)"), never the
    # article of "the answer is a bit longer"
    re.compile(
        r"(?i:\banswer\b)(?:\s+(?i:is|was))?\s*:?\s*[*_]*(?:\(([A-Za-z])\)|([A-Z])(?![A-Za-z'])|"
        r"([a-z])(?=[*_]*(?:[.):,;!]|\s*$)))"
    ),
    re.compile(r"(?i:\boption\b)\s*[*_]*(?:\(([A-Za-z])\)|([A-Z])(?![A-Za-z'])|([a-z])(?=[*_]*(?:[.):,;!]|\s*$)))"),
)
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
    r"(?i)^\W*(?:sorry\W+(?:but\s+)?i\b|i\s*(?:'m|’m| am)\s*(?:sorry|unable|not able)|"
    r"i\s*(?:can(?:no|'|’)t|cannot|won't|will not)\s+(?:help|assist|provide|answer|comply|do that)|"
    r"as an ai\b|i must decline|n/?a\W*$)"
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
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
    for pattern in _CHOICE_PATTERNS:
        matches = list(pattern.finditer(text))
        if matches:
            letter = next(g for g in matches[-1].groups() if g)
            return letter.upper()
    return None


def _clean_math(text: str) -> str:
    """A maths answer with its wrappers dropped: ``$``, ``**``, ``\\text{}``, ``\\left`` / ``\\right``, LaTeX spaces,
    a Unicode minus read as ``-``, and (ZeroEval's rule) every ``,``."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    text = re.sub(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\(?:left|right|displaystyle)\b|\\[!,;: ]", "", text)
    return text.replace("$", "").replace(",", "").replace("**", "").replace("\\dfrac", "\\frac")


def _boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (braces balanced), or None."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    if not starts:
        return None
    depth, start = 1, starts[-1]
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:]


def _answer_part(text: str) -> str | None:
    """The part of a reply that states its final answer: the last ``\\boxed{}``, else the sentence after the last
    "answer is" / "Answer:" / "####" that holds a number; None when there is none."""
    boxed = _boxed(text)
    if boxed is not None and boxed.strip():
        return boxed
    for m in reversed(list(_ANSWER_MARKER.finditer(text))):
        rest = _SENTENCE_BREAK.split(text[m.end() :], maxsplit=1)[0]
        if _NUM_TOKEN.search(rest):
            return rest
    return None


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
    return len([p for p in _SENTENCE_BREAK.split(text.strip()) if p.strip()]) > 1


def _number_token(text: str) -> re.Match[str] | None:
    """The number token that is the answer: in the answer part, else the last one of a reasoning reply's last
    sentence, else the first (ZeroEval's rule for a short answer)."""
    text = _clean_math(text)
    part = _answer_part(text)
    if part is not None:
        return _NUM_TOKEN.search(part)
    if _is_reasoning(text):  # its last sentence's last number, when that sentence holds one
        parts = [p for p in _SENTENCE_BREAK.split(text.strip()) if p.strip()]
        start = text.rfind(parts[-1])
        tokens = list(_NUM_TOKEN.finditer(text, start))
        if tokens:
            return tokens[-1]
    return _NUM_TOKEN.search(text)


def extract_number(value: Any) -> float | None:
    """The final number of an answer (module docstring: the answer part, else the last number of a reasoning reply,
    else the first), or None when there is none or it is the start of an expression (``3\\sqrt{2}``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    m = _number_token(str(value))
    if m is None or _EXPRESSION_TAIL.match(m.string[m.end() :]):
        return None
    return _token_value(m)


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


_PLAIN_NUMBER = re.compile(r"^\s*\$?\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*$")


def _value_key(value: Any) -> Hashable:
    """A hashable, normalised form of a JSON value (numbers as floats, a string that is a plain number too, strings
    normalised, keys sorted)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if _PLAIN_NUMBER.match(value):
            return float(value.replace("$", "").replace(",", ""))
        return normalise_text(value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _value_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_value_key(v) for v in value)
    return normalise_text(value)


# "1, 2, 3" (not "1,000,000": a comma with no space before three digits groups thousands)
_NUMBER_LIST = re.compile(r"^-?\d+(?:\.\d+)?(?:\s*,(?:\s+|(?!\d{3}(?!\d)))-?\d+(?:\.\d+)?)+$")


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
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_FENCED_BLOCK = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


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
    fenced = _FENCE.match(text)
    obj = _loads(fenced.group(1) if fenced else text)
    if obj is not None or not embedded:
        return obj
    blocks = _FENCED_BLOCK.findall(text)
    if blocks:
        obj = _loads(blocks[-1])
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
    return name.strip().casefold(), _value_key(args)


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


_NUMBER_ANSWER = re.compile(
    r"^[\s(\[]*(?:(?:about|approximately|approx\.?|roughly|~|≈)\s*)?(?:[A-Za-z]\s*=\s*)?[+]?(?P<n>\S.*?)"
    r"\s*(?:%|[A-Za-z][A-Za-z .'/-]{0,40})?[\s)\].!]*$"
)


def _is_number_answer(text: str) -> bool:
    """Whether a short answer is a number, with a unit or a few words after it at most (``18 dollars``, ``$1,234``,
    ``x = 5``, ``\\frac{3}{4}``), not an expression or a string that happens to hold a digit."""
    m = _NUMBER_ANSWER.match(text)
    if m is None:
        return False
    token = _NUM_TOKEN.match(m.group("n"))
    return token is not None and token.end() == len(m.group("n"))


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
    if any(p.match(text) for p in _CHOICE_PATTERNS[:2]):
        return "choice"
    cleaned = _clean_math(text)
    if _answer_part(cleaned) is not None:
        return "number"
    if extract_choice(text) is not None and any(p.search(text) for p in _CHOICE_PATTERNS[3:]):
        return "choice"
    if _literal_key(text) is not None:
        return "text"
    number = _NUM_TOKEN.search(cleaned)
    if number is None:
        return "text"
    if _is_reasoning(cleaned) or _is_number_answer(cleaned) or len(cleaned.split()) >= 3:
        return "number"  # a reply or a sentence that holds numbers, or a number with its unit
    if _EXPRESSION_TAIL.match(cleaned[number.end() :]):
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

    Keys of different kinds are tagged, so a number never equals the same characters read as text.

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
    if kind == "choice":
        key = extract_choice(value)
    elif kind == "number":
        key = extract_number(value)
        if key is None:
            return _text_key(value, expression=True)
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
    text = str(value)
    if not text.strip() or _ASSISTANT_REFUSAL.search(text):
        return None
    literal = _literal_key(text)
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

    With ``kind="auto"`` the kind is guessed from the first answer and the second is read the same way (a JSON
    object as ``"auto"`` reads one: reasoning fields left out).
    """
    if a is None or b is None:
        return False
    if kind == "auto" and extract is None and guess_kind(a) != "json":
        kind = guess_kind(a)
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
