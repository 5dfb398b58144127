"""A feedback store: labelled prompts from your own traffic, ready to train a router on, in one SQLite file or a
shared PostgreSQL database.

``FeedbackStore("feedback.db")`` keeps the store in an embedded SQLite file (the default);
``FeedbackStore("postgresql://user@host:5432/db")`` in a PostgreSQL database that several servers write at once.
Both hold one schema (:mod:`~routellm_core.learning.feedback_sql`), with the same guards and the same API; only the
opening of the database differs (:mod:`~routellm_core.learning.feedback_sqlite`,
:mod:`~routellm_core.learning.feedback_postgres`). Any other URL scheme is an error, never a file path.

Two tables. ``decisions`` holds routed calls recorded with :meth:`FeedbackStore.record_decision` (the served
decision record: the decision, who answered, every attempt with its tokens and cost, whether it escalated, so a
thumbs up/down can be attached later by decision id); ``labels`` holds one row per labelled prompt: the routing text,
``model_a``/``model_b``, the winner (``model_a``, ``model_b``, ``tie`` or ``tie (bothbad)``), the label source
(``judge``, ``user``, ``golden``), the judge's name, the routing decision at the time and, only with
``store_answers=True``, the answers. A decision has at most one label per source (a unique index; writes are
``INSERT ... ON CONFLICT``): a later verdict replaces an earlier one. Rows built from a :class:`DecisionRecord`
always put the strong model in ``model_a`` and the weak model in ``model_b``. A third table, ``responses``, is the
routing server's shared memory of who answered each Responses API response it relayed
(:meth:`FeedbackStore.record_response`), so that any worker continues a ``previous_response_id`` on the upstream that
stored it; rows older than the server's retention are pruned (:meth:`FeedbackStore.prune_responses`).

Every write is one short transaction, committed before the method returns: a write the store acknowledged survives
the writer being killed. Threads may share a store; a process that forks reopens its database on first use. The
methods block for the length of a small write (about a millisecond), so async code calls the ``a``-prefixed twins,
which run them in a worker thread. ``redact`` runs on prompts and answers before they reach the database.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast

from routellm_core.data.records import Battle, Winner
from routellm_core.decisions import Attempt, LadderChoice, RoutingDecision, ServedDecision, Side
from routellm_core.embedding.embedders import valid_unicode
from routellm_core.errors import FeedbackStoreError, InvalidInputError, UnknownDecisionError
from routellm_core.learning.feedback_sql import (
    APPLICATION_ID,
    DECISION_COLUMNS,
    LABEL_COLUMNS,
    RESPONSE_COLUMNS,
    SCHEMA_VERSION,
    Backend,
    Transaction,
)

#: Winners a label may hold (the battle vocabulary of :func:`~routellm_core.data.load_battles`).
WINNERS: tuple[str, ...] = ("model_a", "model_b", "tie", "tie (bothbad)")
#: Where a label came from.
LABEL_SOURCES: tuple[str, ...] = ("judge", "user", "golden")
#: Verdicts :meth:`FeedbackStore.add_verdict` accepts besides a winner or a model name.
VERDICTS: tuple[str, ...] = ("good", "bad", "strong", "weak")
#: URL schemes of a PostgreSQL store (anything else that looks like a URL is refused).
POSTGRES_SCHEMES: tuple[str, ...] = ("postgresql", "postgres")

StoredWinner = Literal["model_a", "model_b", "tie", "tie (bothbad)"]
LabelSource = Literal["judge", "user", "golden"]
BackendName = Literal["sqlite", "postgresql"]

# A URL scheme (two characters or more, so that a Windows drive letter is not one) and its colon.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
_FORMS = (
    "give a SQLite file path (e.g. feedback.db) or a PostgreSQL URL (postgresql://user[:password]@host[:port]/database)"
)


def store_backend(location: str | os.PathLike[str]) -> BackendName:
    """Which backend a store location names: ``"postgresql"`` for a ``postgresql://`` URL, else ``"sqlite"``.

    Raises:
        InvalidInputError: ``location`` is blank, a URL of another scheme (``mysql://``, ``sqlite+foo://``...) or a
            malformed PostgreSQL URL, any of which would otherwise be taken for a relative file path.
    """
    text = os.fspath(location)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"a feedback store location must be a non-empty path or URL, got {location!r:.60}")
    match = _SCHEME.match(text)
    if match is None:
        return "sqlite"
    scheme, rest = match.group(1), text[match.end() :]
    if scheme.lower() in POSTGRES_SCHEMES:
        if rest.startswith("//") and isinstance(location, str):
            return "postgresql"
        raise InvalidInputError(
            f"malformed PostgreSQL URL {scheme}:{rest[:2]}...: {_FORMS}, the URL as a string (a Path drops a '/')"
        )
    if rest.startswith("/"):
        raise InvalidInputError(
            f"unsupported feedback store URL scheme {scheme!r:.40}: {_FORMS}; for a file whose name starts with "
            f"'{scheme}:', write ./{scheme}:..."
        )
    return "sqlite"  # a file name with a colon in it


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


def _names(strong_model: object, weak_model: object) -> tuple[str, str]:
    strong, weak = _text(strong_model, "strong_model"), _text(weak_model, "weak_model")
    if strong == weak:
        raise InvalidInputError(f"strong_model and weak_model are both {strong!r}; name two models")
    return strong, weak


def _ladder(value: object) -> LadderChoice | None:
    """A record's ladder entry from a :class:`LadderChoice` or its ``as_dict`` form.

    Raises:
        InvalidInputError: Anything else, or a malformed entry.
    """
    if value is None or isinstance(value, LadderChoice):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"ladder must be a LadderChoice or its dict, got {type(value).__name__}")
    try:
        return LadderChoice.from_dict(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"ladder is not a ladder entry ({type(exc).__name__}: {exc})") from None


def _attempts(value: object) -> tuple[Attempt, ...]:
    if value is None:
        return ()
    try:
        return tuple(a if isinstance(a, Attempt) else Attempt.from_dict(a) for a in cast(Iterable[Any], value))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInputError(
            f"attempts must be Attempt records or their dicts ({type(exc).__name__}: {exc})"
        ) from None


class DecisionRecord:
    """One routed call as the store and the labeller see it: a view of its served decision plus the two model names.

    A call routed by the engine is recorded as that call's :class:`~routellm_core.decisions.ServedDecision` itself
    (``record.decision is served``, never a rebuilt copy): build it with :meth:`from_decision`, and pass it to
    :meth:`FeedbackStore.record_decision` and :meth:`~routellm_core.learning.labelling.Labeller.submit`. A record
    built by hand (``DecisionRecord(decision_id, strong_model, weak_model, served, ...)``) may leave the router, win
    rate, threshold and choice unknown; with all four given it holds a served decision too. Read-only.

    Attributes:
        strong_model: Name of the strong model (stored as ``model_a``).
        weak_model: Name of the weak model (stored as ``model_b``).
        decision: The served decision record (router, win rate, threshold, choice, who answered, attempts,
            escalation, cost), or ``None`` for a hand-built record whose routing decision is unknown.
    """

    __slots__ = ("_facts", "decision", "strong_model", "weak_model")
    strong_model: str
    weak_model: str
    decision: ServedDecision | None

    def __init__(
        self,
        decision_id: str,
        strong_model: str,
        weak_model: str,
        served: Side,
        router: str | None = None,
        win_rate: float | None = None,
        threshold: float | None = None,
        choice: Side | None = None,
        *,
        attempts: Iterable[Attempt | Mapping[str, Any]] = (),
        escalated: bool = False,
        fallback_error: str | None = None,
        ladder: LadderChoice | Mapping[str, Any] | None = None,
    ) -> None:
        strong, weak = _names(strong_model, weak_model)
        if router is not None and not isinstance(router, str):
            raise InvalidInputError(f"router must be a string or None, got {type(router).__name__}")
        if fallback_error is not None and not isinstance(fallback_error, str):
            raise InvalidInputError(f"fallback_error must be a string or None, got {type(fallback_error).__name__}")
        facts: dict[str, Any] = {
            "decision_id": _text(decision_id, "decision_id"),
            "served": _side(served, "served"),
            "router": router,
            "win_rate": _optional_number(win_rate, "win_rate"),
            "threshold": _optional_number(threshold, "threshold"),
            "choice": None if choice is None else _side(choice, "choice"),
            "attempts": _attempts(attempts),
            "escalated": bool(escalated),
            "fallback_error": fallback_error,
            "ladder": _ladder(ladder),
        }
        decision = _served_decision(facts, strong, weak)
        if decision is None and (facts["attempts"] or facts["escalated"] or fallback_error or ladder is not None):
            raise InvalidInputError(
                "attempts, escalated, fallback_error and ladder describe a routed call: give its router, win_rate, "
                "threshold and choice too"
            )
        self._set(strong, weak, decision, None if decision is not None else facts)

    def _set(self, strong: str, weak: str, decision: ServedDecision | None, facts: dict[str, Any] | None) -> None:
        object.__setattr__(self, "strong_model", strong)
        object.__setattr__(self, "weak_model", weak)
        object.__setattr__(self, "decision", decision)
        object.__setattr__(self, "_facts", facts)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"DecisionRecord is read-only (cannot set {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and copy: rebuild through _set, not __setattr__
        return (_restore_record, (self.strong_model, self.weak_model, self.decision, self._facts))

    @classmethod
    def view(cls, decision: ServedDecision, *, strong_model: str, weak_model: str) -> DecisionRecord:
        """The record of a served decision: the decision itself (not a copy) and the two model names.

        Raises:
            InvalidInputError: ``decision`` is not a ServedDecision, or the names are blank or equal.
        """
        if not isinstance(decision, ServedDecision):
            raise InvalidInputError(f"decision must be a ServedDecision, got {type(decision).__name__}")
        strong, weak = _names(strong_model, weak_model)
        record = cls.__new__(cls)
        record._set(strong, weak, decision, None)
        return record

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
        """A record from a served decision (a view of it, see :meth:`view`), a :class:`RoutingDecision`, or the
        decision's metadata dict.

        Args:
            decision: The engine's ``ServedDecision``; a :class:`RoutingDecision`; or a metadata mapping (the
                ``ServedDecision.as_dict()`` schema: ``router``, ``win_rate``, ``threshold``, ``choice`` and
                optionally ``decision_id``, ``served`` (or ``answered_by``), ``attempts``, ``escalated``,
                ``fallback_error``); extra keys are ignored.
            strong_model: Name of the strong model.
            weak_model: Name of the weak model.
            served: Who answered; defaults to the decision's ``served`` (or ``answered_by``), else its ``choice``.
            decision_id: The call's id; defaults to the decision's id, else a new random UUID.

        Raises:
            InvalidInputError: A field has the wrong type or value, or who answered cannot be told.
        """
        if isinstance(decision, ServedDecision):
            changes: dict[str, Any] = {}
            if decision_id is not None and decision_id != decision.id:
                changes["id"] = _text(decision_id, "decision_id")
            if served is not None and served != decision.served:
                changes["served"] = _side(served, "served")
                changes["model"] = strong_model if served == "strong" else weak_model
            served_decision = replace(decision, **changes) if changes else decision
            return cls.view(served_decision, strong_model=strong_model, weak_model=weak_model)
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
            attempts=fields.get("attempts") or (),
            escalated=bool(fields.get("escalated", False)),
            fallback_error=fields.get("fallback_error"),
            ladder=fields.get("ladder"),
        )

    # ---- the decision's fields ---------------------------------------------------------------------------
    def _get(self, name: str, attribute: str | None = None) -> Any:
        if self.decision is not None:
            return getattr(self.decision, attribute or name)
        return self._facts[name] if self._facts is not None and name in self._facts else None

    @property
    def decision_id(self) -> str:
        """Unique id of the call; the app keeps it (e.g. from the response metadata) to attach a verdict later."""
        return cast(str, self._get("decision_id", "id"))

    @property
    def served(self) -> Side:
        """Which side answered, ``"strong"`` or ``"weak"`` (differs from ``choice`` after a fallback or escalation)."""
        return cast(Side, self._get("served"))

    @property
    def router(self) -> str | None:
        """Router name, if known."""
        return cast("str | None", self._get("router"))

    @property
    def win_rate(self) -> float | None:
        """Predicted P(strong wins), if known."""
        return cast("float | None", self._get("win_rate"))

    @property
    def threshold(self) -> float | None:
        """Threshold in force, if known."""
        return cast("float | None", self._get("threshold"))

    @property
    def choice(self) -> Side | None:
        """The router's choice, if known."""
        return cast("Side | None", self._get("choice"))

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every model call of the answer, in order (empty when unknown or only the served model was called)."""
        return self.decision.attempts if self.decision is not None else ()

    @property
    def escalated(self) -> bool:
        """Whether the cheap answer failed the escalation check and the strong model served."""
        return self.decision.escalated if self.decision is not None else False

    @property
    def fallback_error(self) -> str | None:
        """Type of the failure that moved the call to the other side, else ``None``."""
        return self.decision.fallback_error if self.decision is not None else None

    @property
    def cost(self) -> float | None:
        """Total price of the attempts in USD, or ``None`` when unknown."""
        return self.decision.cost if self.decision is not None else None

    @property
    def ladder(self) -> LadderChoice | None:
        """How a call among N models chose its model (predictions, expected costs, objective), else ``None``."""
        return self.decision.ladder if self.decision is not None else None

    @property
    def served_model(self) -> str:
        """Name of the model that answered."""
        return self.strong_model if self.served == "strong" else self.weak_model

    @property
    def other_model(self) -> str:
        """Name of the model that did not answer."""
        return self.weak_model if self.served == "strong" else self.strong_model

    def as_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-safe)."""
        return {
            "decision_id": self.decision_id,
            "strong_model": self.strong_model,
            "weak_model": self.weak_model,
            "served": self.served,
            "router": self.router,
            "win_rate": self.win_rate,
            "threshold": self.threshold,
            "choice": self.choice,
            "attempts": [a.as_dict() for a in self.attempts],
            "escalated": self.escalated,
            "fallback_error": self.fallback_error,
            "cost": self.cost,
            "ladder": None if self.ladder is None else self.ladder.as_dict(),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecisionRecord):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((self.decision_id, self.strong_model, self.weak_model, self.served))

    def __repr__(self) -> str:
        return (
            f"DecisionRecord(decision_id={self.decision_id!r}, strong_model={self.strong_model!r}, "
            f"weak_model={self.weak_model!r}, served={self.served!r}, router={self.router!r}, "
            f"win_rate={self.win_rate!r}, threshold={self.threshold!r}, choice={self.choice!r}, "
            f"attempts={len(self.attempts)}, escalated={self.escalated})"
        )


def _restore_record(
    strong: str, weak: str, decision: ServedDecision | None, facts: dict[str, Any] | None
) -> DecisionRecord:
    record = DecisionRecord.__new__(DecisionRecord)
    record._set(strong, weak, decision, facts)
    return record


def _served_decision(fields: Mapping[str, Any], strong: str, weak: str) -> ServedDecision | None:
    """The served decision of a record's fields (``as_dict`` form), or ``None`` when its routing decision is unknown."""
    router, win_rate, threshold, choice = (fields.get(k) for k in ("router", "win_rate", "threshold", "choice"))
    if router is None or win_rate is None or threshold is None or choice is None:
        return None
    served = fields["served"]
    escalated = bool(fields.get("escalated", False))
    fell_back = served != choice and not escalated
    return ServedDecision(
        id=fields["decision_id"],
        router=router,
        win_rate=win_rate,
        threshold=threshold,
        choice=choice,
        served=served,
        model=strong if served == "strong" else weak,
        fallback_from=(strong if choice == "strong" else weak) if fell_back else None,
        fallback_error=fields.get("fallback_error") if fell_back else None,
        attempts=_attempts(fields.get("attempts")),
        escalated=escalated,
        ladder=_ladder(fields.get("ladder")),
    )


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


@dataclass(frozen=True)
class DecisionRow:
    """One recorded decision, read back (see :meth:`FeedbackStore.decisions`).

    Attributes:
        record: The routed call: the served decision (with its attempts, escalation and cost) and the two models.
        prompt: Its routing text (redacted when the store redacts).
        created_at: When it was recorded (Unix seconds).
        answer: The served answer (only with ``store_answers=True``).
        verdict: The last verdict given to :meth:`FeedbackStore.add_verdict` (``good``, ``bad``, ``strong``,
            ``weak`` or a winner), or ``None``.
        verdict_at: When that verdict came (Unix seconds), or ``None``.
    """

    record: DecisionRecord
    prompt: str
    created_at: float
    answer: str | None
    verdict: str | None
    verdict_at: float | None

    @property
    def decision_id(self) -> str:
        """The call's decision id."""
        return self.record.decision_id

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON-safe dict: the record's fields plus prompt, time, answer and verdict."""
        return {
            **self.record.as_dict(),
            "prompt": self.prompt,
            "created_at": datetime.fromtimestamp(self.created_at, timezone.utc).isoformat(),
            "answer": self.answer,
            "verdict": self.verdict,
        }


def _decision_row(row: Sequence[Any]) -> DecisionRow:
    (decision_id, created_at, prompt, strong, weak, served, router, win_rate, threshold, choice, answer, verdict,
     verdict_at, attempts, escalated, _cost, fallback_error, ladder) = row  # fmt: skip
    record = DecisionRecord(
        decision_id, strong, weak, served, router, win_rate, threshold, choice,
        attempts=json.loads(attempts or "[]"), escalated=bool(escalated), fallback_error=fallback_error,
        ladder=json.loads(ladder) if ladder else None,
    )  # fmt: skip
    return DecisionRow(record, prompt, float(created_at), answer, verdict, verdict_at)


@dataclass(frozen=True)
class ResponseRow:
    """Who answered a Responses API response the routing server relayed (or wrote one of its output items).

    Attributes:
        id: The response id, or the id of one of its output items (a message, reasoning, a tool call).
        response_id: The response (``id`` itself for the response's own row).
        decision_id: The decision the response was served under.
        model: The model name the client asked for (``router-default-0.5``): its engine serves the continuation.
        options: The request's ``routellm`` field (``router-auto``'s objective), or ``None``.
        record: The response's decision record (without its attempts): continuing it keeps this decision.
        created_at: When it was recorded (Unix seconds).
    """

    id: str
    response_id: str
    decision_id: str
    model: str
    options: Any
    record: ServedDecision
    created_at: float


def _response_row(row: Sequence[Any], location: str) -> ResponseRow:
    """A ``responses`` row read back.

    Raises:
        FeedbackStoreError: Its record or options are not the JSON the store writes.
    """
    key, response_id, created_at, decision_id, model, options, record = row
    try:
        served = ServedDecision.from_dict(json.loads(record))
        given = json.loads(options) if options else None
    except (TypeError, ValueError):
        served = None
    if served is None:
        raise FeedbackStoreError(
            f"feedback store {location}: the record stored for response id {key!r:.80} is malformed"
        )
    return ResponseRow(key, response_id, decision_id, model, given, served, float(created_at))


# ---- the store -------------------------------------------------------------------------------------------
def _open_backend(location: str | os.PathLike[str], timeout: float, pool_size: int) -> tuple[Backend, Path | None]:
    if store_backend(location) == "postgresql":
        from routellm_core.learning.feedback_postgres import PostgresBackend

        return PostgresBackend(os.fspath(location), timeout=timeout, pool_size=pool_size), None
    from routellm_core.learning.feedback_sqlite import SQLiteBackend

    path = Path(location).expanduser()
    return SQLiteBackend(path, timeout=timeout), path


class FeedbackStore:
    """Labelled prompts from your traffic in a SQLite file or a PostgreSQL database, safe for threads, asyncio and
    several processes.

    Args:
        location: A SQLite file path (created with its folder when missing), or a PostgreSQL URL
            ``postgresql://user[:password]@host[:port]/database`` (its tables created when missing; needs the
            ``postgres`` extra). A URL of another scheme is refused.
        store_answers: Also keep the models' answers (off by default: only routing texts are kept).
        redact: Applied to every prompt and answer before it is written (e.g. to mask emails); must return text.
        timeout: Seconds a write waits for another writer's lock (PostgreSQL: also to connect) before failing.
        pool_size: PostgreSQL only: most connections this process opens.

    Attributes:
        path: The SQLite file, or ``None`` for a PostgreSQL store.
        location: Where the store is, for messages: the file path, or the URL without its password.
        backend: ``"sqlite"`` or ``"postgresql"``.

    Raises:
        InvalidInputError: A URL of an unsupported scheme, or a bad option.
        MissingDependencyError: A PostgreSQL URL without the ``postgres`` extra installed.
        FeedbackStoreError: The file is not SQLite, the database (file or PostgreSQL tables) is another
            application's or of a newer schema (left untouched in all these cases), the file or its folder is
            read-only, or the PostgreSQL server cannot be reached.
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        store_answers: bool = False,
        redact: Callable[[str], str] | None = None,
        timeout: float = 10.0,
        pool_size: int = 4,
    ) -> None:
        if redact is not None and not callable(redact):
            raise InvalidInputError(f"redact must be a callable str -> str, got {type(redact).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise InvalidInputError(f"pool_size must be a positive integer, got {pool_size!r}")
        self.store_answers = bool(store_answers)
        self.redact = redact
        self.timeout = float(timeout)
        self._backend, self.path = _open_backend(location, self.timeout, pool_size)
        self.location = self._backend.location
        self.backend: BackendName = cast(BackendName, self._backend.dialect.name)

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        return self._backend.query(sql, tuple(params))

    # ---- values ------------------------------------------------------------------------------------------
    def _clean(self, text: str, what: str) -> str:
        """``text`` made valid Unicode without NUL characters (which PostgreSQL text cannot hold), and redacted."""
        out = valid_unicode(text).replace("\x00", "\ufffd")
        if self.redact is not None:
            out = self.redact(out)
            if not isinstance(out, str):
                raise InvalidInputError(f"redact returned {type(out).__name__} for the {what}; it must return str")
            out = valid_unicode(out).replace("\x00", "\ufffd")
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
        with self._backend.transaction("adding a label") as tx:
            return self._upsert_label(tx, values)

    def _upsert_label(self, tx: Transaction, values: dict[str, Any]) -> int:
        """Insert a label, or replace the decision's label from the same source (one atomic statement)."""
        names = ", ".join(values)
        updates = ", ".join(f"{k} = excluded.{k}" for k in values)
        rows = tx.execute(
            f"INSERT INTO labels ({names}) VALUES ({', '.join('?' * len(values))}) "
            f"ON CONFLICT (decision_id, source) WHERE decision_id IS NOT NULL DO UPDATE SET {updates} RETURNING id",
            tuple(values.values()),
        )
        return int(rows[0][0])

    def record_decision(self, record: DecisionRecord, prompt: str, *, answer: str | None = None) -> str:
        """Record a routed call so a verdict can be attached later; returns its decision id.

        The served decision is kept whole: router, win rate, threshold, choice, who answered, every attempt (model,
        side, role, kept, signals, confidence, error, tokens, cost), whether it escalated, and its total cost.
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
            json.dumps([a.as_dict() for a in record.attempts]),
            int(record.escalated),
            record.cost,
            record.fallback_error,
            None if record.ladder is None else json.dumps(record.ladder.as_dict()),
        )
        with self._backend.transaction("recording a decision") as tx:
            tx.execute(
                "INSERT INTO decisions (decision_id, created_at, prompt, strong_model, weak_model, served, router, "
                "win_rate, threshold, choice, answer, attempts, escalated, cost, fallback_error, ladder) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (decision_id) DO NOTHING",
                values,
            )
        return record.decision_id

    def add_attempts(self, decision_id: str, attempts: Sequence[Attempt]) -> None:
        """Add a later step of a recorded request to its decision: an agent's tool step continues the decision
        (same id, ``continued``) and calls a model again, so its attempts join the decision's and its cost the
        decision's total (``None`` once any attempt's price is unknown).

        Raises:
            InvalidInputError: A blank id or an attempt of the wrong type.
            UnknownDecisionError: No decision with this id was recorded.
            FeedbackStoreError: The write failed.
        """
        _text(decision_id, "decision_id")
        if any(not isinstance(a, Attempt) for a in attempts):
            raise InvalidInputError("attempts must be Attempt objects (a served decision's attempts)")
        if not attempts:
            return
        with self._backend.transaction("adding a step's attempts") as tx:
            rows = tx.execute(
                "SELECT attempts FROM decisions WHERE decision_id = ?" + self._backend.dialect.lock_rows,
                (decision_id,),
            )
            if not rows:
                raise UnknownDecisionError(f"no decision with id {decision_id!r:.80} was recorded in {self.location}")
            merged = [*json.loads(rows[0][0] or "[]"), *(a.as_dict() for a in attempts)]
            costs = [a.get("cost") for a in merged]
            cost = None if any(c is None for c in costs) else float(sum(costs))
            tx.execute(
                "UPDATE decisions SET attempts = ?, cost = ? WHERE decision_id = ?",
                (json.dumps(merged), cost, decision_id),
            )

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

        ``"bad"`` and ``"good"`` judge the served answer: on a call that served none (its model failed before any
        output, or it was cancelled: no attempt ``kept``) they make no label either (kept on the decision only).

        A later verdict from the same ``source`` replaces the earlier one (verdicts on one decision are applied one
        at a time, even from several processes). Returns the label's row id, or ``None`` when the verdict makes no
        label.

        Raises:
            InvalidInputError: An unknown verdict or source.
            UnknownDecisionError: No decision with this id was recorded (call :meth:`record_decision` first).
            FeedbackStoreError: The write failed.
        """
        _text(decision_id, "decision_id")
        label_source = self._source(source)
        if not isinstance(verdict, str) or not verdict.strip():
            raise InvalidInputError(f"verdict must be a non-empty string, got {verdict!r:.60}")
        with self._backend.transaction("adding a verdict") as tx:
            rows = tx.execute(
                "SELECT prompt, strong_model, weak_model, served, router, win_rate, threshold, choice, answer, "
                "attempts FROM decisions WHERE decision_id = ?" + self._backend.dialect.lock_rows,
                (decision_id,),
            )
            if not rows:
                raise UnknownDecisionError(
                    f"no decision with id {decision_id!r:.80} was recorded in {self.location}; "
                    "call record_decision before add_verdict"
                )
            prompt, strong, weak, served, router, win_rate, threshold, choice, answer, attempts = rows[0]
            winner = _verdict_winner(verdict, strong, weak, served)
            if verdict in ("bad", "good") and not _served_an_answer(attempts):
                winner = None
            kind = "strong" if verdict == strong else "weak" if verdict == weak else verdict  # names -> sides
            tx.execute(
                "UPDATE decisions SET verdict = ?, verdict_at = ? WHERE decision_id = ?",
                (kind, time.time(), decision_id),
            )
            if winner is None:
                tx.execute("DELETE FROM labels WHERE decision_id = ? AND source = ?", (decision_id, label_source))
                return None
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
                "served": "model_a" if served == "strong" else "model_b",
                "answer_a": answer if served == "strong" else None,
                "answer_b": answer if served == "weak" else None,
            }
            return self._upsert_label(tx, values)

    def record_response(
        self,
        response_id: str,
        record: ServedDecision,
        model: str,
        *,
        options: Any = None,
        items: Iterable[str] = (),
    ) -> None:
        """Remember who answered a relayed Responses API response: its id and its output ``items``' ids, each keyed
        to the decision record, the model name asked for and the request's ``routellm`` field (JSON). An id
        recorded again is replaced.

        Raises:
            InvalidInputError: A blank id or model name, a record that is not a ServedDecision, options that are not
                JSON.
            FeedbackStoreError: The write failed.
        """
        _text(response_id, "response_id")
        _text(model, "model")
        if not isinstance(record, ServedDecision):
            raise InvalidInputError(f"record must be a ServedDecision, got {type(record).__name__}")
        try:
            given = None if options is None else json.dumps(options, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"options must be JSON-serializable ({exc})") from None
        stored = json.dumps({**record.as_dict(), "attempts": []})  # a continuation needs the decision, not its calls
        ids = dict.fromkeys([response_id, *(i for i in items if isinstance(i, str) and i)])
        now = time.time()
        with self._backend.transaction("remembering a response") as tx:
            for key in ids:
                tx.execute(
                    f"INSERT INTO responses ({RESPONSE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO "
                    "UPDATE SET response_id = excluded.response_id, created_at = excluded.created_at, "
                    "decision_id = excluded.decision_id, model = excluded.model, options = excluded.options, "
                    "record = excluded.record",
                    (key, response_id, now, record.id, model, given, stored),
                )

    def responses(self, ids: Iterable[str]) -> dict[str, ResponseRow]:
        """The recorded rows of those of ``ids`` (response or output item ids) the store knows, by id.

        Raises:
            FeedbackStoreError: The read failed, or a row's record is malformed.
        """
        wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str) and i))
        if not wanted:
            return {}
        rows = self._query(
            f"SELECT {RESPONSE_COLUMNS} FROM responses WHERE id IN ({', '.join('?' * len(wanted))})", wanted
        )
        return {row[0]: _response_row(row, self.location) for row in rows}

    def prune_responses(self, before: float) -> int:
        """Forget the responses recorded before ``before`` (Unix seconds); returns how many rows were removed.

        Raises:
            FeedbackStoreError: The write failed.
        """
        cutoff = _optional_number(before, "before")
        with self._backend.transaction("pruning old responses") as tx:
            rows = tx.execute("DELETE FROM responses WHERE created_at < ? RETURNING id", (cutoff,))
        return len(rows)

    # ---- reading -----------------------------------------------------------------------------------------
    def labels(self, sources: Iterable[LabelSource] | None = None) -> list[LabelRow]:
        """Stored labels in insertion order, optionally only from some label sources."""
        wanted = None if sources is None else [self._source(s) for s in sources]
        sql = f"SELECT {LABEL_COLUMNS} FROM labels"
        if wanted is not None:
            sql += f" WHERE source IN ({', '.join('?' * len(wanted))})" if wanted else " WHERE 1 = 0"
        rows = self._query(sql + " ORDER BY id", wanted or ())
        return [LabelRow(*r) for r in rows]

    def decisions(self, decision_ids: Iterable[str] | None = None) -> list[DecisionRow]:
        """Recorded decisions, oldest first (optionally only some ids): each with its served decision record
        (attempts, escalation, cost), prompt, answer and last verdict."""
        sql = f"SELECT {DECISION_COLUMNS} FROM decisions"
        ids = None if decision_ids is None else [_text(i, "decision_id") for i in decision_ids]
        if ids is not None:
            sql += f" WHERE decision_id IN ({', '.join('?' * len(ids))})" if ids else " WHERE 1 = 0"
        return [_decision_row(r) for r in self._query(sql + " ORDER BY created_at, decision_id", ids or ())]

    def decision(self, decision_id: str) -> DecisionRow | None:
        """One recorded decision by id, or ``None`` when none was recorded under it."""
        rows = self.decisions([decision_id])
        return rows[0] if rows else None

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
            "SELECT prompt, created_at FROM labels) AS seen GROUP BY prompt ORDER BY MIN(created_at), prompt"
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

    def revision(self) -> str:
        """A token that changes whenever a label is added, replaced or removed, read in one aggregate over the labels
        (as cheap as counting them), for caches of figures computed from the labels.

        A replaced label (a later verdict on a decision) keeps its row and count but gets a new ``created_at``, so
        the labels' count, highest id and the sum and maximum of their times change with any label change.
        """
        count, top, total, latest = self._query(
            "SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(created_at), 0), COALESCE(MAX(created_at), 0) "
            "FROM labels"
        )[0]
        return f"{int(count)}:{int(top)}:{float(total)!r}:{float(latest)!r}"

    # ---- async twins -------------------------------------------------------------------------------------
    async def aadd(self, *args: Any, **kwargs: Any) -> int:
        """:meth:`add` in a worker thread, so the event loop never waits on a lock."""
        return await asyncio.to_thread(self.add, *args, **kwargs)

    async def arecord_decision(self, record: DecisionRecord, prompt: str, *, answer: str | None = None) -> str:
        """:meth:`record_decision` in a worker thread."""
        return await asyncio.to_thread(self.record_decision, record, prompt, answer=answer)

    async def aadd_attempts(self, decision_id: str, attempts: Sequence[Attempt]) -> None:
        """:meth:`add_attempts` in a worker thread."""
        await asyncio.to_thread(self.add_attempts, decision_id, attempts)

    async def aadd_verdict(self, decision_id: str, verdict: str, *, source: LabelSource = "user") -> int | None:
        """:meth:`add_verdict` in a worker thread."""
        return await asyncio.to_thread(self.add_verdict, decision_id, verdict, source=source)

    async def arecord_response(
        self, response_id: str, record: ServedDecision, model: str, *, options: Any = None, items: Iterable[str] = ()
    ) -> None:
        """:meth:`record_response` in a worker thread."""
        await asyncio.to_thread(self.record_response, response_id, record, model, options=options, items=items)

    async def aresponses(self, ids: Iterable[str]) -> dict[str, ResponseRow]:
        """:meth:`responses` in a worker thread."""
        return await asyncio.to_thread(self.responses, list(ids))

    async def aprune_responses(self, before: float) -> int:
        """:meth:`prune_responses` in a worker thread."""
        return await asyncio.to_thread(self.prune_responses, before)

    # ---- lifetime ----------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the database (idempotent); later calls raise :class:`FeedbackStoreError`."""
        self._backend.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeedbackStore({self.location!r}, store_answers={self.store_answers})"


def _served_an_answer(attempts: str | None) -> bool:
    """Whether a stored decision served an answer (some attempt kept; a row without attempts, written before they
    were recorded, did)."""
    listed = json.loads(attempts or "[]")
    return not listed or any(a.get("kept") for a in listed)


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
    "POSTGRES_SCHEMES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "WINNERS",
    "DecisionRecord",
    "DecisionRow",
    "FeedbackStats",
    "FeedbackStore",
    "LabelRow",
    "ResponseRow",
    "store_backend",
]
