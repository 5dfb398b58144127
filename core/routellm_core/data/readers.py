"""Low-level readers: JSONL and CSV rows with line numbers, and the cell parsers every loader shares.

Files are parsed with ``json`` and ``csv`` only, never ``eval`` or pickle. Every problem raises
:class:`~routellm_core.errors.TrainingDataError` naming the file, the line and the problem.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from routellm_core.errors import TrainingDataError


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSONL file."""
    with path.open(encoding="utf-8") as fh:
        lines = enumerate(fh, start=1)
        while True:
            try:
                line_no, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise TrainingDataError(f"{path}: the file is not UTF-8 text ({exc.reason})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TrainingDataError(f"{path}, line {line_no}: invalid JSON ({exc.msg})") from None
            except (ValueError, RecursionError) as exc:  # absurd nesting depth or number size
                raise TrainingDataError(f"{path}, line {line_no}: invalid JSON ({str(exc)[:120]})") from None
            if not isinstance(obj, dict):
                raise TrainingDataError(f"{path}, line {line_no}: expected a JSON object, got {type(obj).__name__}")
            yield line_no, obj


def iter_csv(path: Path, required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (first line number, row dict) for each data row of a CSV file with a header."""
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TrainingDataError(f"{path}: the file is empty (expected a header row)") from None
        except csv.Error as exc:
            raise TrainingDataError(f"{path}, line 1: malformed CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise TrainingDataError(f"{path}: the file is not UTF-8 text ({exc.reason})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise TrainingDataError(f"{path}: missing column(s) {missing}; the header is {header}")
        if len(set(header)) != len(header):
            raise TrainingDataError(f"{path}: duplicate column names in the header {header}")
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise TrainingDataError(f"{path}, line {start}: malformed CSV ({exc})") from None
            except UnicodeDecodeError as exc:
                raise TrainingDataError(f"{path}, near line {start}: not UTF-8 text ({exc.reason})") from None
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise TrainingDataError(
                    f"{path}, line {start}: {len(row)} fields but the header has {len(header)} columns"
                )
            yield start, dict(zip(header, row))


def format_suffix(path: Path) -> str:
    """``"jsonl"`` for ``.jsonl`` / ``.ndjson``, ``"csv"`` for ``.csv``; anything else raises."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise TrainingDataError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl or .csv")


def parse_bool(value: str, where: str) -> float:
    """``True`` / ``False`` (RouteLLM's correctness cells) as 1.0 / 0.0."""
    if value == "True":
        return 1.0
    if value == "False":
        return 0.0
    raise TrainingDataError(f"{where}: expected True or False, got {value!r}")


def parse_score(value: object, where: str, text: bool = True) -> float | None:
    """A score from a CSV cell (``text``) or a JSON value (numbers, booleans, null only); ``None`` if missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        score = float(value)
    elif isinstance(value, str) and text:
        cell = value.strip()
        if not cell:
            return None
        if cell.lower() in ("true", "false"):
            return 1.0 if cell.lower() == "true" else 0.0
        try:
            score = float(cell)
        except ValueError:
            raise TrainingDataError(f"{where}: non-numeric score {value!r}") from None
    else:
        raise TrainingDataError(f"{where}: non-numeric score {value!r}")
    if not math.isfinite(score):
        raise TrainingDataError(f"{where}: score is not finite ({value!r})")
    return score


def prompt_of(value: object, where: str) -> str:
    """``value`` if it is a non-blank string; otherwise a :class:`TrainingDataError` naming ``where``."""
    if not isinstance(value, str) or not value.strip():
        raise TrainingDataError(f"{where}: missing or empty prompt")
    return value
