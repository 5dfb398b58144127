"""Final answers: extraction, normalisation and comparison (pure functions).

An escalation check compares the *final answer* of two cheap calls, not their whole text: two correct solutions
of a maths problem rarely share a sentence, but they share the number at the end. Each answer kind has one rule:

- ``"choice"``: a multiple-choice letter (``"B"``, ``"(b)"``, ``"B. Paris"``, ``"The answer is C"``).
- ``"number"``: the first number, as ZeroEval's grader compares GSM8K and MATH answers: ``$`` and ``,`` removed,
  then the first ``-?\\d+(\\.\\d+)?`` (a leading simple fraction ``a/b`` is evaluated), compared as floats.
  Two answers without any number fall back to ``"text"``.
- ``"json"``: structured output; a JSON object (a ``dict`` or a JSON string, code fences allowed) compared field
  by field (``fields=`` restricts the comparison), values normalised as below.
- ``"tool_call"``: tool calls (one call or a list: ``{"name", "arguments"}`` with arguments a dict or a JSON
  string, or OpenAI's ``{"function": {...}}``), compared on the name and the normalised arguments, order of the
  calls ignored.
- ``"text"``: normalised text (Unicode NFKC, case folded, whitespace collapsed, surrounding quotes and final
  punctuation removed).
- ``"exact"``: the string itself, only surrounding whitespace stripped (CRUXEval's rule: a Python literal, where
  case matters).

``None`` is "no answer extracted": it never agrees with anything, not even another ``None``.
"""

from __future__ import annotations

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

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_FRACTION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*/\s*(-?\d+(?:\.\d+)?)")
_CHOICE_PATTERNS = (
    re.compile(r"^\s*\(?([A-Za-z])\)?\s*$"),
    re.compile(r"^\s*\(([A-Za-z])\)"),
    re.compile(r"^\s*([A-Z])[.):](?:\s|$)"),
    re.compile(r"(?i)\banswer\s*(?:is|:)?\s*:?\s*\(?([A-Z])\)?(?![A-Za-z])"),
    re.compile(r"(?i)\boption\s*\(?([A-Z])\)?(?![A-Za-z])"),
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
        m = pattern.search(text)
        if m:
            return m.group(1).upper()
    return None


def extract_number(value: Any) -> float | None:
    """The first number of an answer (ZeroEval's rule: ``$`` and ``,`` removed, then ``-?\\d+(\\.\\d+)?``; a
    leading fraction ``a/b`` is evaluated), or None when there is none."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = str(value).replace("$", "").replace(",", "").strip()
    frac = _FRACTION.match(text)
    if frac:
        num, den = float(frac.group(1)), float(frac.group(2))
        if den != 0:
            return num / den
    m = _NUMBER.search(text)
    return float(m.group(0)) if m else None


def normalise_text(value: Any) -> str | None:
    """Normalised text: NFKC, case folded, whitespace collapsed, surrounding quotes and final punctuation
    removed; None for None."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", str(value)).casefold()
    text = " ".join(text.split())
    text = text.strip().strip("\"'`").strip()
    return text.rstrip(".!;:,").strip()


def _value_key(value: Any) -> Hashable:
    """A hashable, normalised form of a JSON value (numbers as floats, strings normalised, keys sorted)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _value_key(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_value_key(v) for v in value)
    return normalise_text(value)


def _parse_json(value: Any) -> Any:
    if isinstance(value, (Mapping, list, tuple)):
        return value
    if value is None:
        return None
    text = str(value)
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None


def extract_json(value: Any, fields: tuple[str, ...] | None = None) -> Hashable | None:
    """The normalised fields of a JSON object (only ``fields`` when given; a missing one is None), or None when
    the answer is not a JSON object."""
    obj = _parse_json(value)
    if not isinstance(obj, Mapping):
        return None
    if fields is not None:
        obj = {f: obj.get(f) for f in fields}
    return _value_key(obj)


def _one_call(call: Any) -> tuple[str, Hashable] | None:
    if not isinstance(call, Mapping):
        return None
    if isinstance(call.get("function"), Mapping):  # OpenAI's {"type": "function", "function": {...}}
        call = call["function"]
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


def guess_kind(value: Any) -> str:
    """The kind ``"auto"`` treats an answer as: tool calls, JSON, a choice letter, a number, else text."""
    obj = _parse_json(value) if not isinstance(value, (int, float)) else None
    if obj is not None and extract_tool_calls(obj) is not None:
        return "tool_call"
    if isinstance(obj, Mapping):
        return "json"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    text = str(value).strip()
    if _CHOICE_PATTERNS[0].match(text) or _CHOICE_PATTERNS[1].match(text):
        return "choice"
    if _NUMBER.search(text.replace(",", "")):
        return "number"
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
    if kind == "auto":
        kind = guess_kind(value)
    key: Hashable | None
    if kind == "choice":
        key = extract_choice(value)
    elif kind == "number":
        key = extract_number(value)
        if key is None:
            text = normalise_text(value)
            return ("text", text) if text else None
    elif kind == "json":
        key = extract_json(value, fields)
    elif kind == "tool_call":
        key = extract_tool_calls(value)
    elif kind == "exact":
        key = str(value).strip()
    else:
        key = normalise_text(value)
    return None if key is None else (kind, key)


def answers_agree(
    a: Any,
    b: Any,
    kind: str = "auto",
    *,
    extract: Extractor | None = None,
    fields: tuple[str, ...] | None = None,
) -> bool:
    """Whether two answers agree under ``kind``: equal keys, neither None.

    With ``kind="auto"`` the kind is guessed from the first answer and the second is read the same way.
    """
    if a is None or b is None:
        return False
    if kind == "auto" and extract is None:
        kind = guess_kind(a)
    ka = normalise_answer(a, kind, extract=extract, fields=fields)
    kb = normalise_answer(b, kind, extract=extract, fields=fields)
    return ka is not None and kb is not None and ka == kb


def is_refusal(text: Any) -> bool:
    """Whether an answer (or raw output) reads as a refusal or a declared inability to answer."""
    return text is not None and bool(_REFUSAL.search(str(text)))


__all__ = [
    "ANSWER_KINDS",
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
