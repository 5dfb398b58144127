"""A feedback store: labelled prompts from your own traffic, in one SQLite file, ready to train a router on.

Two tables. ``decisions`` holds routed calls recorded with :meth:`FeedbackStore.record_decision` (so a thumbs
up/down can be attached later by decision id); ``labels`` holds one row per labelled prompt: the routing text,
``model_a``/``model_b``, the winner (``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``), the label source
(``judge``, ``user``, ``golden``), the judge's name, the routing decision at the time and, only with
``store_answers=True``, the answers. A decision has at most one label per source: a later verdict replaces an
earlier one. Rows built from a :class:`DecisionRecord` always put the strong model in ``model_a`` and the weak
model in ``model_b``.

Concurrency: the file is in WAL mode; every write is one short ``BEGIN IMMEDIATE`` transaction, and SQLite's busy
timeout (``timeout``) makes writers in other processes wait their turn. Within a process one connection is shared
under a lock, so threads may share a store; a process that forks reopens the file on first use. The methods block
for the length of a small write (about a millisecond, longer only while another process holds the write lock), so
async code calls the ``a``-prefixed twins, which run them in a worker thread.

Safety: before anything is written, an existing file is checked: a file that is not SQLite, or a SQLite file of
another application or of a newer schema, raises :class:`~routellm_core.errors.FeedbackStoreError` and is left
byte-identical (it is inspected through a read-only connection). ``redact`` runs on prompts and answers before they
reach the file.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from routellm_core.data.records import Battle, Winner
from routellm_core.decisions import RoutingDecision, Side
from routellm_core.embedding.embedders import valid_unicode
from routellm_core.errors import FeedbackStoreError, InvalidInputError, UnknownDecisionError

if TYPE_CHECKING:
    from routellm_core.decisions import ServedDecision


#: ``PRAGMA application_id`` of a feedback store ("RLFB").
APPLICATION_ID = 0x524C4642
#: ``PRAGMA user_version`` of the schema this code writes.
SCHEMA_VERSION = 1
#: Winners a label may hold (the battle vocabulary of :func:`~routellm_core.data.load_battles`).
WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
#: Where a label came from.
LABEL_SOURCES: tuple[str, ...] = ("judge", "user", "golden")
#: Verdicts :meth:`FeedbackStore.add_verdict` accepts besides a winner or a model name.
VERDICTS: tuple[str, ...] = ("good", "bad", "strong", "weak")

StoredWinner = Literal["model_a", "model_b", "tie", "tie (bothbad)"]
LabelSource = Literal["judge", "user", "golden"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA = (
    """CREATE TABLE decisions (
        decision_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        prompt TEXT NOT NULL,
        strong_model TEXT NOT NULL,
        weak_model TEXT NOT NULL,
        served TEXT NOT NULL CHECK (served IN ('strong', 'weak')),
        router TEXT,
        win_rate REAL,
        threshold REAL,
        choice TEXT CHECK (choice IN ('strong', 'weak')),
        answer TEXT,
        verdict TEXT,
        verdict_at REAL
    )""",
    """CREATE TABLE labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at REAL NOT NULL,
        prompt TEXT NOT NULL,
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        winner TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
        source TEXT NOT NULL CHECK (source IN ('judge', 'user', 'golden')),
        judge TEXT,
        decision_id TEXT,
        router TEXT,
        win_rate REAL,
        threshold REAL,
        choice TEXT CHECK (choice IN ('strong', 'weak')),
        served TEXT CHECK (served IN ('model_a', 'model_b')),
        answer_a TEXT,
        answer_b TEXT
    )""",
    "CREATE UNIQUE INDEX labels_decision_source ON labels (decision_id, source) WHERE decision_id IS NOT NULL",
)
_LABEL_COLUMNS = (
    "id, created_at, prompt, model_a, model_b, winner, source, judge, decision_id, router, win_rate, threshold, "
    "choice, served, answer_a, answer_b"
)


# ---- records ---------------------------------------------------------------------------------------------
def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r:.60}")
    return value


def _optional_number(value: object, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise InvalidInputError(f"{what} must be a finite number or None, got {value!r:.60}")
    return float(value)


def _side(value: object, what: str) -> Side:
    if value not in ("strong", "weak"):
        raise InvalidInputError(f"{what} must be 'strong' or 'weak', got {value!r:.60}")
    return cast(Side, value)


@dataclass(frozen=True)
class DecisionRecord:
    """One routed call as the store and the labeller see it: the two models, who answered, and the decision.

    Build one per call with :meth:`from_decision` and pass it to :meth:`FeedbackStore.record_decision` and
    :meth:`~routellm_core.learning.labelling.Labeller.submit`.

    Attributes:
        decision_id: Unique id of the call; the app keeps it (e.g. from the response metadata) to attach a
            thumbs up/down later.
        strong_model: Name of the strong model (stored as ``model_a``).
        weak_model: Name of the weak model (stored as ``model_b``).
        served: Which of the two answered, ``"strong"`` or ``"weak"`` (differs from ``choice`` after a fallback).
        router: Router name, if known.
        win_rate: Predicted P(strong wins), if known.
        threshold: Threshold in force, if known.
        choice: The router's choice, if known.
    """

    decision_id: str
    strong_model: str
    weak_model: str
    served: Side
    router: str | None = None
    win_rate: float | None = None
    threshold: float | None = None
    choice: Side | None = None

    def __post_init__(self) -> None:
        _text(self.decision_id, "decision_id")
        _text(self.strong_model, "strong_model")
        _text(self.weak_model, "weak_model")
        if self.strong_model == self.weak_model:
            raise InvalidInputError(f"strong_model and weak_model are both {self.strong_model!r}; name two models")
        _side(self.served, "served")
        if self.choice is not None:
            _side(self.choice, "choice")
        if self.router is not None and not isinstance(self.router, str):
            raise InvalidInputError(f"router must be a string or None, got {type(self.router).__name__}")
        object.__setattr__(self, "win_rate", _optional_number(self.win_rate, "win_rate"))
        object.__setattr__(self, "threshold", _optional_number(self.threshold, "threshold"))

    @classmethod
    def from_decision(
        cls,
        decision: RoutingDecision | ServedDecision | Mapping[str, Any],
        *,
        strong_model: str,
        weak_model: str,
        served: Side | None = None,
        decision_id: str | None = None,
    ) -> DecisionRecord:
        """A record from a :class:`RoutingDecision` or its metadata dict.

        Args:
            decision: A :class:`RoutingDecision`, the dispatch engine's ``ServedDecision``, or a metadata mapping
                with ``router``, ``win_rate``, ``threshold``, ``choice`` and optionally ``decision_id`` and
                ``served`` (or ``answered_by``); extra keys are ignored.
            strong_model: Name of the strong model.
            weak_model: Name of the weak model.
            served: Who answered; defaults to the decision's ``served`` (or ``answered_by``), else its ``choice``.
            decision_id: The call's id; defaults to the decision's ``decision_id``, else a new random UUID.

        Raises:
            InvalidInputError: A field has the wrong type or value, or who answered cannot be told.
        """
        if isinstance(decision, Mapping):
            fields: Mapping[str, Any] = decision
        elif callable(getattr(decision, "as_dict", None)):
            fields = decision.as_dict()
        else:
            raise InvalidInputError(
                f"decision must be a RoutingDecision, a ServedDecision or a mapping, got {type(decision).__name__}"
            )
        choice = fields.get("choice")
        side = served or fields.get("served") or fields.get("answered_by") or choice
        return cls(
            decision_id=decision_id or fields.get("decision_id") or uuid.uuid4().hex,
            strong_model=strong_model,
            weak_model=weak_model,
            served=_side(side, "served (who answered)"),
            router=fields.get("router"),
            win_rate=fields.get("win_rate"),
            threshold=fields.get("threshold"),
            choice=choice,
        )

    @property
    def served_model(self) -> str:
        """Name of the model that answered."""
        return self.strong_model if self.served == "strong" else self.weak_model

    @property
    def other_model(self) -> str:
        """Name of the model that did not answer."""
        return self.weak_model if self.served == "strong" else self.strong_model

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


@dataclass(frozen=True)
class LabelRow:
    """One stored label (see the module docstring for the columns)."""

    id: int
    created_at: float
    prompt: str
    model_a: str
    model_b: str
    winner: StoredWinner
    source: LabelSource
    judge: str | None
    decision_id: str | None
    router: str | None
    win_rate: float | None
    threshold: float | None
    choice: Side | None
    served: Literal["model_a", "model_b"] | None
    answer_a: str | None
    answer_b: str | None

    def to_battle(self) -> Battle:
        """The row as a :class:`Battle` (``tie (bothbad)`` becomes ``tie``; source ``feedback:<label source>``)."""
        winner: Winner = "tie" if self.winner.startswith("tie") else cast(Winner, self.winner)
        return Battle(
            prompt=self.prompt,
            model_a=self.model_a,
            model_b=self.model_b,
            winner=winner,
            source=f"feedback:{self.source}",
        )

    def to_json(self) -> dict[str, Any]:
        """The row in the training-file schema (``prompt, model_a, model_b, winner, source``) plus its metadata."""
        out: dict[str, Any] = {
            "prompt": self.prompt,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "winner": self.winner,
            "source": f"feedback:{self.source}",
            "label_source": self.source,
            "judge": self.judge,
            "decision_id": self.decision_id,
            "router": self.router,
            "win_rate": self.win_rate,
            "threshold": self.threshold,
            "choice": self.choice,
            "served": self.served,
            "created_at": datetime.fromtimestamp(self.created_at, timezone.utc).isoformat(),
        }
        if self.answer_a is not None or self.answer_b is not None:
            out["answer_a"] = self.answer_a
            out["answer_b"] = self.answer_b
        return out


@dataclass(frozen=True)
class FeedbackStats:
    """Counts over a store.

    Attributes:
        labels: Labelled prompts (rows of ``labels``).
        decisions: Recorded decisions.
        by_source: Labels per label source.
        by_winner: Labels per winner.
        by_choice: Labels per routing choice at the time (``"none"`` for labels without a decision).
        verdicts: Decisions per last verdict given to :meth:`FeedbackStore.add_verdict` (``"none"``: no verdict).
    """

    labels: int
    decisions: int
    by_source: dict[str, int]
    by_winner: dict[str, int]
    by_choice: dict[str, int]
    verdicts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return asdict(self)


# ---- opening a file safely -------------------------------------------------------------------------------
def _read_meta(conn: sqlite3.Connection) -> tuple[int, int, list[str]]:
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return int(app_id), int(version), tables


def _check_meta(path: Path, app_id: int, version: int, tables: list[str]) -> Literal["new", "ours"]:
    """Whether the database is ours (of a schema this code reads) or empty; raise for anything else."""
    if app_id == APPLICATION_ID:
        if version == SCHEMA_VERSION:
            return "ours"
        newer = " (written by a newer version of routellm-integrations)" if version > SCHEMA_VERSION else ""
        raise FeedbackStoreError(
            f"{path} is a feedback store of schema version {version}{newer}; this code reads version "
            f"{SCHEMA_VERSION}. The file was not modified."
        )
    if app_id == 0 and not tables:
        return "new"
    raise FeedbackStoreError(
        f"{path} is a SQLite database of another application (application_id {app_id:#x}, tables "
        f"{tables[:8]}), not a routellm feedback store; refusing to use it. The file was not modified."
    )


def _inspect(path: Path) -> Literal["new", "ours"]:
    """Classify ``path`` without writing to it: a new store, or one of ours; raise for anything else."""
    if not path.exists():
        return "new"
    if not path.is_file():
        raise FeedbackStoreError(f"{path} is not a regular file; give the path of a feedback store file")
    try:
        with path.open("rb") as fh:
            header = fh.read(100)
    except OSError as exc:
        raise FeedbackStoreError(f"cannot read the feedback store {path}: {exc}") from exc
    wal = Path(f"{path}-wal")
    if not header and not wal.exists():
        return "new"  # an empty file is an empty SQLite database
    if header and not header.startswith(_SQLITE_MAGIC):
        raise FeedbackStoreError(
            f"{path} is not a SQLite database (it does not start with the SQLite header); refusing to use it as a "
            "feedback store. The file was not modified."
        )
    _check_writable(path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            meta = _read_meta(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if "readonly" in str(exc):
            raise FeedbackStoreError(
                f"cannot open the feedback store {path}: {exc} (is the file or its folder read-only?)"
            ) from exc
        raise FeedbackStoreError(
            f"{path} is not a usable SQLite database ({exc}); refusing to use it as a feedback store. "
            "The file was not modified."
        ) from exc
    return _check_meta(path, *meta)


def _check_writable(path: Path) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeedbackStoreError(f"cannot create the folder {folder} for the feedback store: {exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise FeedbackStoreError(
            f"the folder {folder} is read-only; a feedback store needs to write its file and SQLite's -wal/-shm "
            "files there"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise FeedbackStoreError(f"the feedback store {path} is read-only (or unreadable); it must be writable")


# ---- the store -------------------------------------------------------------------------------------------
class FeedbackStore:
    """Labelled prompts from your traffic in one SQLite file, safe for threads, asyncio and several processes.

    Args:
        path: The SQLite file; created (with its folder) when missing.
        store_answers: Also keep the models' answers (off by default: only routing texts are kept).
        redact: Applied to every prompt and answer before it is written (e.g. to mask emails); must return text.
        timeout: Seconds a write waits for another process's write lock before failing.

    Raises:
        FeedbackStoreError: The file is not SQLite, is another application's database or of a newer schema (left
            untouched in all three cases), or the file or its folder is read-only.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        store_answers: bool = False,
        redact: Callable[[str], str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if redact is not None and not callable(redact):
            raise InvalidInputError(f"redact must be a callable str -> str, got {type(redact).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.path = Path(path).expanduser()
        self.store_answers = bool(store_answers)
        self.redact = redact
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False
        self._conn = self._open()

    # ---- connection --------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        state = _inspect(self.path)
        if state == "new":
            _check_writable(self.path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise FeedbackStoreError(
                f"cannot open the feedback store {self.path}: {exc} (is the file or its folder read-only?)"
            ) from exc
        try:
            if state == "new":
                self._initialise(conn)
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise FeedbackStoreError(
                    f"cannot set up the feedback store {self.path}: {exc} (is the file or its folder read-only?)"
                ) from exc
            raise
        return conn

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Create the schema in an empty database, unless another process did it first."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _check_meta(self.path, *_read_meta(conn)) == "new":
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                for statement in _SCHEMA:
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL mode, waiting while other processes hold locks (the switch needs a moment alone)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() == "wal":
                    return
                problem = f"journal mode stayed {mode!r}"
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                problem = str(exc)
            if time.monotonic() > deadline:
                raise FeedbackStoreError(f"cannot switch the feedback store {self.path} to WAL mode: {problem}")
            time.sleep(0.02)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise FeedbackStoreError(f"the feedback store {self.path} is closed")
        if self._pid != os.getpid():  # forked: SQLite connections must not cross fork()
            self._pid = os.getpid()
            self._conn = self._open()
        assert self._conn is not None
        return self._conn

    @contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One short write transaction; SQLite errors become :class:`FeedbackStoreError`."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise FeedbackStoreError(f"feedback store {self.path}: {what} failed: {exc}") from exc

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connection()
            try:
                return conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.Error as exc:
                raise FeedbackStoreError(f"feedback store {self.path}: reading failed: {exc}") from exc

    # ---- values ------------------------------------------------------------------------------------------
    def _clean(self, text: str, what: str) -> str:
        """``text`` made valid Unicode and redacted."""
        out = valid_unicode(text)
        if self.redact is not None:
            out = self.redact(out)
            if not isinstance(out, str):
                raise InvalidInputError(f"redact returned {type(out).__name__} for the {what}; it must return str")
            out = valid_unicode(out)
        return out

    def _prompt(self, prompt: object) -> str:
        text = self._clean(_text(prompt, "prompt"), "prompt")
        if not text.strip():
            raise InvalidInputError("the prompt is empty after redaction; nothing could be learned from it")
        return text

    def _answer(self, answer: object, what: str) -> str | None:
        if answer is None or not self.store_answers:
            return None
        if not isinstance(answer, str):
            raise InvalidInputError(f"{what} must be a string or None, got {type(answer).__name__}")
        return self._clean(answer, what)

    @staticmethod
    def _source(source: object) -> LabelSource:
        if source not in LABEL_SOURCES:
            raise InvalidInputError(f"label source must be one of {LABEL_SOURCES}, got {source!r:.60}")
        return cast(LabelSource, source)

    @staticmethod
    def _winner(winner: object, model_a: str, model_b: str) -> StoredWinner:
        if winner in WINNERS:
            return cast(StoredWinner, winner)
        if winner == model_a:
            return "model_a"
        if winner == model_b:
            return "model_b"
        raise InvalidInputError(
            f"unknown winner {winner!r:.60}; expected one of {WINNERS} or a model name ({model_a!r} / {model_b!r})"
        )

    # ---- writing -----------------------------------------------------------------------------------------
    def add(
        self,
        prompt: str,
        model_a: str,
        model_b: str,
        winner: str,
        *,
        source: LabelSource = "judge",
        judge: str | None = None,
        record: DecisionRecord | None = None,
        answer_a: str | None = None,
        answer_b: str | None = None,
    ) -> int:
        """Store one labelled prompt and return its row id.

        With a ``record`` whose decision already has a label from ``source``, that label is replaced (same id).

        Args:
            prompt: The routing text.
            model_a: First model.
            model_b: Second model.
            winner: ``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``, or one of the two model names.
            source: ``"judge"``, ``"user"`` or ``"golden"``.
            judge: Name of the judge (for ``source="judge"``).
            record: The routed call the label is about (decision id and routing decision).
            answer_a: ``model_a``'s answer (kept only with ``store_answers=True``).
            answer_b: ``model_b``'s answer (kept only with ``store_answers=True``).

        Raises:
            InvalidInputError: A blank prompt, equal or blank model names, an unknown winner or source.
            FeedbackStoreError: The write failed (e.g. the database stayed locked past ``timeout``).
        """
        model_a, model_b = _text(model_a, "model_a"), _text(model_b, "model_b")
        if model_a == model_b:
            raise InvalidInputError(f"model_a and model_b are both {model_a!r}; a label compares two models")
        stored = self._winner(winner, model_a, model_b)
        label_source = self._source(source)
        if judge is not None and not isinstance(judge, str):
            raise InvalidInputError(f"judge must be a name (str) or None, got {type(judge).__name__}")
        if record is not None and not isinstance(record, DecisionRecord):
            raise InvalidInputError(f"record must be a DecisionRecord, got {type(record).__name__}")
        served = None
        if record is not None:
            served = (
                "model_a" if record.served_model == model_a else "model_b" if record.served_model == model_b else None
            )
        values: dict[str, Any] = {
            "created_at": time.time(),
            "prompt": self._prompt(prompt),
            "model_a": model_a,
            "model_b": model_b,
            "winner": stored,
            "source": label_source,
            "judge": judge,
            "decision_id": record.decision_id if record else None,
            "router": record.router if record else None,
            "win_rate": record.win_rate if record else None,
            "threshold": record.threshold if record else None,
            "choice": record.choice if record else None,
            "served": served,
            "answer_a": self._answer(answer_a, "answer_a"),
            "answer_b": self._answer(answer_b, "answer_b"),
        }
        with self._transaction("adding a label") as conn:
            return self._upsert_label(conn, values)

    @staticmethod
    def _upsert_label(conn: sqlite3.Connection, values: dict[str, Any]) -> int:
        if values["decision_id"] is not None:
            row = conn.execute(
                "SELECT id FROM labels WHERE decision_id = ? AND source = ?", (values["decision_id"], values["source"])
            ).fetchone()
            if row is not None:
                sets = ", ".join(f"{k} = ?" for k in values)
                conn.execute(f"UPDATE labels SET {sets} WHERE id = ?", (*values.values(), row[0]))
                return int(row[0])
        names = ", ".join(values)
        marks = ", ".join("?" * len(values))
        cur = conn.execute(f"INSERT INTO labels ({names}) VALUES ({marks})", tuple(values.values()))
        return int(cur.lastrowid or 0)

    def record_decision(self, record: DecisionRecord, prompt: str, *, answer: str | None = None) -> str:
        """Record a routed call so a verdict can be attached later; returns its decision id.

        Recording the same decision id again keeps the first record.

        Args:
            record: The routed call.
            prompt: Its routing text.
            answer: The served answer (kept only with ``store_answers=True``).

        Raises:
            InvalidInputError: A blank prompt or a record of the wrong type.
            FeedbackStoreError: The write failed.
        """
        if not isinstance(record, DecisionRecord):
            raise InvalidInputError(f"record must be a DecisionRecord, got {type(record).__name__}")
        values = (
            record.decision_id,
            time.time(),
            self._prompt(prompt),
            record.strong_model,
            record.weak_model,
            record.served,
            record.router,
            record.win_rate,
            record.threshold,
            record.choice,
            self._answer(answer, "answer"),
        )
        with self._transaction("recording a decision") as conn:
            conn.execute(
                "INSERT INTO decisions (decision_id, created_at, prompt, strong_model, weak_model, served, router, "
                "win_rate, threshold, choice, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (decision_id) DO NOTHING",
                values,
            )
        return record.decision_id

    def add_verdict(self, decision_id: str, verdict: str, *, source: LabelSource = "user") -> int | None:
        """Attach a verdict to a recorded decision: a label row (``model_a`` = strong, ``model_b`` = weak).

        ``verdict`` is one of:

        - a winner (``model_a``, ``model_b``, ``tie``, ``tie (bothbad)``), a model name, or ``"strong"`` /
          ``"weak"``: that side won;
        - ``"bad"`` (thumbs down on the served answer): served weak -> the strong model wins (the call should
          have gone to strong); served strong -> ``tie (bothbad)`` (the weak model is assumed no better);
        - ``"good"`` (thumbs up): served weak -> ``tie`` (the weak model was good enough); served strong ->
          no label, since it says nothing about the weak model (the verdict is still kept on the decision,
          and a label the decision had from ``source`` is removed).

        A later verdict from the same ``source`` replaces the earlier one. Returns the label's row id, or
        ``None`` when the verdict makes no label.

        Raises:
            InvalidInputError: An unknown verdict or source.
            FeedbackStoreError: No decision with this id was recorded (call :meth:`record_decision` first), or
                the write failed.
        """
        _text(decision_id, "decision_id")
        label_source = self._source(source)
        if not isinstance(verdict, str) or not verdict.strip():
            raise InvalidInputError(f"verdict must be a non-empty string, got {verdict!r:.60}")
        with self._transaction("adding a verdict") as conn:
            row = conn.execute(
                "SELECT prompt, strong_model, weak_model, served, router, win_rate, threshold, choice, answer "
                "FROM decisions WHERE decision_id = ?",
                (decision_id,),
            ).fetchone()
            if row is None:
                raise UnknownDecisionError(
                    f"no decision with id {decision_id!r:.80} was recorded in {self.path}; "
                    "call record_decision before add_verdict"
                )
            prompt, strong, weak, served, router, win_rate, threshold, choice, answer = row
            winner = _verdict_winner(verdict, strong, weak, served)
            kind = "strong" if verdict == strong else "weak" if verdict == weak else verdict  # names -> sides
            conn.execute(
                "UPDATE decisions SET verdict = ?, verdict_at = ? WHERE decision_id = ?",
                (kind, time.time(), decision_id),
            )
            if winner is None:
                conn.execute("DELETE FROM labels WHERE decision_id = ? AND source = ?", (decision_id, label_source))
                return None
            served_side = "model_a" if served == "strong" else "model_b"
            values: dict[str, Any] = {
                "created_at": time.time(),
                "prompt": prompt,
                "model_a": strong,
                "model_b": weak,
                "winner": winner,
                "source": label_source,
                "judge": None,
                "decision_id": decision_id,
                "router": router,
                "win_rate": win_rate,
                "threshold": threshold,
                "choice": choice,
                "served": served_side,
                "answer_a": answer if served == "strong" else None,
                "answer_b": answer if served == "weak" else None,
            }
            return self._upsert_label(conn, values)

    # ---- reading -----------------------------------------------------------------------------------------
    def labels(self, sources: Iterable[LabelSource] | None = None) -> list[LabelRow]:
        """Stored labels in insertion order, optionally only from some label sources."""
        wanted = None if sources is None else [self._source(s) for s in sources]
        sql = f"SELECT {_LABEL_COLUMNS} FROM labels"
        if wanted is not None:
            sql += f" WHERE source IN ({', '.join('?' * len(wanted))})" if wanted else " WHERE 0"
        rows = self._query(sql + " ORDER BY id", wanted or ())
        return [LabelRow(*r) for r in rows]

    def battles(self, sources: Iterable[LabelSource] | None = None) -> list[Battle]:
        """Stored labels as training battles (``tie (bothbad)`` -> ``tie``; source ``feedback:<label source>``).

        A decision labelled by both the judge and the user gives one battle per source; pass ``sources`` to
        keep only some.
        """
        return [row.to_battle() for row in self.labels(sources)]

    def export_jsonl(self, path: str | os.PathLike[str], sources: Iterable[LabelSource] | None = None) -> int:
        """Write the labels as a battles file that ``load_battles`` reads; returns the number of rows.

        Each line holds ``prompt, model_a, model_b, winner, source`` plus the label's metadata (label source,
        judge, decision id, routing decision, time, and the answers when stored). The file is written aside and
        renamed into place.

        Raises:
            InvalidInputError: ``path`` does not end in ``.jsonl`` or ``.ndjson``.
        """
        target = Path(path).expanduser()
        if target.suffix.lower() not in (".jsonl", ".ndjson"):
            raise InvalidInputError(f"export_jsonl writes JSON Lines; give a .jsonl path, got {target.name!r}")
        rows = self.labels(sources)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row.to_json(), ensure_ascii=False) + "\n")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return len(rows)

    def prompts(self) -> list[str]:
        """Distinct prompts seen (recorded decisions and labels), oldest first: e.g. to calibrate thresholds."""
        rows = self._query(
            "SELECT prompt FROM (SELECT prompt, created_at FROM decisions UNION ALL "
            "SELECT prompt, created_at FROM labels) GROUP BY prompt ORDER BY MIN(created_at), prompt"
        )
        return [r[0] for r in rows]

    def stats(self) -> FeedbackStats:
        """Counts of labels by source, winner and routing choice, and of decisions by verdict."""

        def counts(sql: str) -> dict[str, int]:
            return {str(key): int(n) for key, n in self._query(sql)}

        return FeedbackStats(
            labels=int(self._query("SELECT COUNT(*) FROM labels")[0][0]),
            decisions=int(self._query("SELECT COUNT(*) FROM decisions")[0][0]),
            by_source=counts("SELECT source, COUNT(*) FROM labels GROUP BY source ORDER BY source"),
            by_winner=counts("SELECT winner, COUNT(*) FROM labels GROUP BY winner ORDER BY winner"),
            by_choice=counts(
                "SELECT COALESCE(choice, 'none'), COUNT(*) FROM labels GROUP BY COALESCE(choice, 'none') ORDER BY 1"
            ),
            verdicts=counts(
                "SELECT COALESCE(verdict, 'none'), COUNT(*) FROM decisions GROUP BY COALESCE(verdict, 'none') "
                "ORDER BY 1"
            ),
        )

    # ---- async twins -------------------------------------------------------------------------------------
    async def aadd(self, *args: Any, **kwargs: Any) -> int:
        """:meth:`add` in a worker thread, so the event loop never waits on the file lock."""
        return await asyncio.to_thread(self.add, *args, **kwargs)

    async def arecord_decision(self, record: DecisionRecord, prompt: str, *, answer: str | None = None) -> str:
        """:meth:`record_decision` in a worker thread."""
        return await asyncio.to_thread(self.record_decision, record, prompt, answer=answer)

    async def aadd_verdict(self, decision_id: str, verdict: str, *, source: LabelSource = "user") -> int | None:
        """:meth:`add_verdict` in a worker thread."""
        return await asyncio.to_thread(self.add_verdict, decision_id, verdict, source=source)

    # ---- lifetime ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the file (idempotent); later calls raise :class:`FeedbackStoreError`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeedbackStore({str(self.path)!r}, store_answers={self.store_answers})"


def _verdict_winner(verdict: str, strong: str, weak: str, served: str) -> StoredWinner | None:
    """The label a verdict on a decision makes (``model_a`` = strong); ``None`` for no label."""
    if verdict in WINNERS:
        return cast(StoredWinner, verdict)
    if verdict in (strong, "strong"):
        return "model_a"
    if verdict in (weak, "weak"):
        return "model_b"
    if verdict == "bad":
        return "model_a" if served == "weak" else "tie (bothbad)"
    if verdict == "good":
        return "tie" if served == "weak" else None
    raise InvalidInputError(
        f"unknown verdict {verdict!r:.60}; expected 'good', 'bad', 'strong', 'weak', one of {WINNERS}, or a model "
        f"name ({strong!r} / {weak!r})"
    )


__all__ = [
    "APPLICATION_ID",
    "LABEL_SOURCES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "WINNERS",
    "DecisionRecord",
    "FeedbackStats",
    "FeedbackStore",
    "LabelRow",
]
