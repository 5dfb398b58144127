"""Low-level readers: JSONL and CSV rows with line numbers, and the cell parsers every loader shares.

Files are UTF-8 (a leading byte-order mark, as Excel's "CSV UTF-8" writes, is skipped), with any line ends. Files
are parsed with ``json`` and ``csv`` only, never ``eval`` or pickle. Every problem raises
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

#: Text encoding of users' files: UTF-8, skipping a leading byte-order mark.
ENCODING = "utf-8-sig"
_GZIP_MAGIC = b"\x1f\x8b"


def not_utf8(path: Path, exc: UnicodeDecodeError, where: str | None = None) -> TrainingDataError:
    """The error for a file that is not UTF-8 text: gzip data is named as such, other bytes get the fix."""
    with path.open("rb") as fh:
        if fh.read(2) == _GZIP_MAGIC:
            return TrainingDataError(f"{path}: the file is gzip-compressed; decompress it first (gunzip)")
    return TrainingDataError(
        f"{where or path}: the file is not UTF-8 text ({exc.reason}: {exc.object[exc.start : exc.end]!r}); "
        "save it as UTF-8 (e.g. Excel's 'CSV UTF-8', or iconv -f cp1252 -t utf-8)"
    )


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSONL file."""
    with path.open(encoding=ENCODING) as fh:
        lines = enumerate(fh, start=1)
        while True:
            try:
                line_no, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise not_utf8(path, exc) from None
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
    """Yield (first line number, row dict) for each data row of a CSV file with a header.

    Columns with a blank name (the trailing commas some spreadsheets write) are left out of the rows; a value in
    one is an error, as is a row whose field count differs from the header's.
    """
    with path.open(encoding=ENCODING, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise TrainingDataError(f"{path}: the file is empty (expected a header row)") from None
        except csv.Error as exc:
            raise TrainingDataError(f"{path}, line 1: malformed CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise not_utf8(path, exc) from None
        missing = [c for c in required if c not in header]
        if missing:
            hint = ""
            if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
                hint = " (the file must be comma-separated)"
            raise TrainingDataError(f"{path}: missing column(s) {missing}; the header is {header}{hint}")
        named = [h for h in header if h]
        if len(set(named)) != len(named):
            raise TrainingDataError(f"{path}: duplicate column names in the header {header}")
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                too_long = "field limit" in str(exc)
                hint = "; a CSV field holds at most that many characters: use JSONL" if too_long else ""
                raise TrainingDataError(f"{path}, line {start}: malformed CSV ({exc}){hint}") from None
            except UnicodeDecodeError as exc:
                raise not_utf8(path, exc, f"{path}, near line {start}") from None
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise TrainingDataError(
                    f"{path}, line {start}: {len(row)} fields but the header has {len(header)} columns"
                )
            for i, (name, cell) in enumerate(zip(header, row)):
                if not name and cell.strip():
                    raise TrainingDataError(
                        f"{path}, line {start}: value {cell[:40]!r} in column {i + 1}, which has no name in the header"
                    )
            yield start, {name: cell for name, cell in zip(header, row) if name}


def format_suffix(path: Path) -> str:
    """``"jsonl"`` for ``.jsonl`` / ``.ndjson``, ``"csv"`` for ``.csv``; anything else raises."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".gz", ".bz2", ".xz", ".zip", ".zst"):
        raise TrainingDataError(f"{path}: compressed files are not read; decompress it to a .jsonl or .csv file first")
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
    elif isinstance(value, str):
        raise TrainingDataError(f"{where}: non-numeric score {value!r} (JSON number, true/false or null; not a string)")
    else:
        raise TrainingDataError(f"{where}: non-numeric score {value!r}")
    if not math.isfinite(score):
        raise TrainingDataError(f"{where}: score is not finite ({value!r})")
    return score


def prompt_of(value: object, where: str) -> str:
    """``value`` if it is a non-blank string; otherwise a :class:`TrainingDataError` naming ``where``."""
    if value is not None and not isinstance(value, str):
        raise TrainingDataError(f"{where}: prompt must be a string, got {type(value).__name__} {str(value)[:60]}")
    if not isinstance(value, str) or not value.strip():
        raise TrainingDataError(f"{where}: missing or empty prompt")
    return value
