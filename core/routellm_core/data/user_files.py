"""Users' own training and evaluation files: the documented battle and golden-label schema.

Both kinds are JSONL or CSV, chosen by the file's suffix:

- **Battles**: keys/columns ``prompt, model_a, model_b, winner`` (optional ``source``). ``winner`` is
  ``model_a``, ``model_b``, ``tie``, the winning model's name, or Chatbot Arena's ``tie (bothbad)`` (a tie).
- **Golden labels**: JSONL ``{"prompt": "...", "scores": {"model": 0.8, ...}}`` (``null`` = no score), or CSV with
  a ``prompt`` column and one numeric column per model (empty cell = no score; ``True``/``False`` read as 1/0;
  optional ``source`` and ``id`` columns are not models).

Every malformed row raises :class:`~routellm_core.errors.TrainingDataError` naming the file, the line and the
problem. Files are parsed with ``json`` and ``csv`` only, never ``eval`` or pickle. A golden-label file also
becomes an evaluation set through :func:`~routellm_core.data.load_benchmark_file`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from routellm_core.data.readers import format_suffix, iter_csv, iter_jsonl, parse_score, prompt_of
from routellm_core.data.records import Battle, GoldenLabel, Winner
from routellm_core.data.workspace import existing_file
from routellm_core.errors import TrainingDataError

_TIE_RE = re.compile(r"tie\s*(?:\(\s*bothbad\s*\)|[_ -]?bothbad)?", re.IGNORECASE)
_BATTLE_KEYS = ("prompt", "model_a", "model_b", "winner")
_LABEL_META_COLUMNS = frozenset({"prompt", "source", "id"})


def _text_field(obj: dict[str, Any], key: str, where: str) -> str:
    """A required non-blank string field, stripped; a missing one and one of another type are told apart."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise TrainingDataError(f"{where}: {key} must be a string, got {type(value).__name__} {value!r:.60}")
    if value is None or not value.strip():
        raise TrainingDataError(f"{where}: missing {key}")
    return value.strip()


def _parse_winner(raw: str, model_a: str, model_b: str, where: str) -> Winner:
    value = raw
    if value in ("model_a", "model_b", "tie"):
        return value  # type: ignore[return-value]
    if value == model_a:
        return "model_a"
    if value == model_b:
        return "model_b"
    if _TIE_RE.fullmatch(value):
        return "tie"
    raise TrainingDataError(
        f"{where}: unknown winner {raw!r} (expected model_a, model_b, tie, tie (bothbad), "
        f"or one of the two model names {model_a!r} / {model_b!r})"
    )


def _battle_from(obj: dict[str, Any], where: str, source: str | None) -> Battle:
    prompt = prompt_of(obj.get("prompt"), where)
    model_a, model_b = _text_field(obj, "model_a", where), _text_field(obj, "model_b", where)
    if model_a == model_b:
        raise TrainingDataError(f"{where}: model_a and model_b are both {model_a!r}; a battle needs two models")
    winner = _parse_winner(_text_field(obj, "winner", where), model_a, model_b, where)
    row_source = obj.get("source")
    src = row_source if isinstance(row_source, str) and row_source.strip() else source
    try:
        return Battle(prompt=prompt, model_a=model_a, model_b=model_b, winner=winner, source=src)
    except ValidationError as exc:
        raise TrainingDataError(f"{where}: invalid battle ({exc.errors()[0]['msg']})") from None


def load_battles(path: str | os.PathLike[str], source: str | None = None) -> list[Battle]:
    """Read battles from a JSONL or CSV file (schema in the module docstring).

    Args:
        path: ``.jsonl`` or ``.csv`` file.
        source: Source name for rows that carry none.

    Raises:
        TrainingDataError: A malformed row (the message names the file and line), or no battles at all.
    """
    p = existing_file(path)
    kind = format_suffix(p)
    battles: list[Battle] = []
    rows: Iterator[tuple[int, dict[str, Any]]] = (
        iter_jsonl(p) if kind == "jsonl" else iter_csv(p, required=_BATTLE_KEYS)
    )
    for line, obj in rows:
        battles.append(_battle_from(obj, f"{p}, line {line}", source))
    if not battles:
        raise TrainingDataError(f"{p}: no battles in the file")
    return battles


def read_golden(path: Path, source: str | None) -> list[tuple[int, GoldenLabel]]:
    """(line number, label) for each row of a golden-label file (schema in the module docstring)."""
    kind = format_suffix(path)
    out: list[tuple[int, GoldenLabel]] = []
    if kind == "jsonl":
        for line, obj in iter_jsonl(path):
            where = f"{path}, line {line}"
            prompt = prompt_of(obj.get("prompt"), where)
            raw = obj.get("scores")
            if not isinstance(raw, dict):
                raise TrainingDataError(f"{where}: 'scores' must be an object {{model: score}}")
            scores = {}
            for model, value in raw.items():
                score = parse_score(value, f"{where}, model {model!r}", text=False)
                if score is not None:
                    scores[str(model)] = score
            if not scores:
                raise TrainingDataError(f"{where}: no model scores")
            row_source = obj.get("source")
            src = row_source if isinstance(row_source, str) and row_source.strip() else source
            out.append((line, GoldenLabel(prompt=prompt, scores=scores, source=src)))
    else:
        for line, row in iter_csv(path, required=("prompt",)):
            where = f"{path}, line {line}"
            prompt = prompt_of(row["prompt"], where)
            scores = {}
            for model, cell in row.items():
                if model in _LABEL_META_COLUMNS:
                    continue
                score = parse_score(cell, f"{where}, column {model!r}")
                if score is not None:
                    scores[model] = score
            if not scores:
                raise TrainingDataError(f"{where}: no model scores")
            src = row.get("source", "").strip() or source
            out.append((line, GoldenLabel(prompt=prompt, scores=scores, source=src)))
    if not out:
        raise TrainingDataError(f"{path}: no golden labels in the file")
    return out


def load_golden_labels(path: str | os.PathLike[str], source: str | None = None) -> list[GoldenLabel]:
    """Read golden labels from a JSONL or CSV file (schema in the module docstring).

    Args:
        path: ``.jsonl`` or ``.csv`` file.
        source: Source name for rows that carry none.

    Raises:
        TrainingDataError: A malformed row (the message names the file and line), or no labels at all.
    """
    return [label for _, label in read_golden(existing_file(path), source)]
