"""``Objective``: how a call among N priced models picks its model from their predicted success and expected cost."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from routellm_core.errors import InvalidInputError

ObjectiveKind = Literal["margin", "max_cost", "cost_weight", "budget", "shares"]
OBJECTIVE_KINDS: tuple[str, ...] = ("margin", "max_cost", "cost_weight", "budget", "shares")
#: The kinds held on live traffic over a window of recent requests (the only ones that take ``window``).
WINDOWED_KINDS: tuple[str, ...] = ("budget", "shares")
#: Characters a capped model's name may not hold: they separate the text form's parts.
_CAP_SEPARATORS = (",", ";")

#: The margin of :meth:`Objective.default`: the cheapest model predicted within 5 points of the best.
DEFAULT_MARGIN = 0.05
#: Recent requests the budget controller holds the spend over.
DEFAULT_WINDOW = 200
#: The longest window a budget takes: the controller routes its whole window again for each request (about 30 ms
#: per request at 10,000 on one core).
MAX_WINDOW = 10_000


@dataclass(frozen=True)
class Objective:
    """What a call among N priced models optimises (build one with the class methods).

    Attributes:
        kind: ``"margin"``: the cheapest model predicted within ``value`` of the best predicted one;
            ``"max_cost"``: the best predicted model whose expected cost of the request is at most ``value`` USD;
            ``"cost_weight"``: the model maximising ``P(answers well) - value * expected cost in USD``;
            ``"budget"``: the best predicted quality for a mean spend of ``value`` USD per 1,000 requests, held on
            live traffic by a controller that sets the cost weight from the last ``window`` requests;
            ``"shares"``: the best predicted model (ties to the cheaper), each model of ``caps`` served at most its
            share of the last ``window`` requests (held by a controller that sets a penalty per capped model).
        value: The objective's parameter (``"shares"``: none, 0).
        window: For ``"budget"`` and ``"shares"``: how many recent requests the controller holds the spend or the
            shares over, at most :data:`MAX_WINDOW` (another kind takes none: it keeps the default).
        caps: For ``"shares"``: ``(model, largest share of requests in (0, 1])`` pairs, sorted by name.

    The text form (:meth:`parse`, ``str()``; the server's and the CLI's) is ``"<kind>=<value>"``, for a budget
    held over another window than :data:`DEFAULT_WINDOW` ``"budget=<value>,window=<requests>"``, and for share caps
    ``"shares=<model>:<share>;<model>:<share>[,window=<requests>]"`` (a share as a fraction or a percent:
    ``"shares=gpt-4o:5%;llama3:70b:0.3"``; a name is read up to its last ``:``).
    """

    kind: ObjectiveKind
    value: float
    window: int = DEFAULT_WINDOW
    caps: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.kind not in OBJECTIVE_KINDS:
            raise InvalidInputError(f"unknown objective {self.kind!r}; expected one of {list(OBJECTIVE_KINDS)}")
        value = self.value
        # any real number (a numpy scalar too), not a bool
        try:  # an int too large for a float (10**400) is no finite number either
            finite = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(float(value))
        except OverflowError:
            finite = False
        if not finite:
            raise InvalidInputError(f"the {self.kind} objective needs a finite number, got {value!r:.60}")
        if self.kind == "budget" and value <= 0:
            raise InvalidInputError(f"a budget must be above 0 USD per 1,000 requests, got {value!r}")
        if value < 0:
            raise InvalidInputError(f"the {self.kind} objective needs a number >= 0, got {value!r}")
        if self.kind == "margin" and value > 1:
            raise InvalidInputError(f"a margin is a difference of probabilities in [0, 1], got {value!r}")
        window = self.window
        if isinstance(window, bool) or not isinstance(window, numbers.Integral) or not 1 <= window <= MAX_WINDOW:
            raise InvalidInputError(
                f"window must be a positive number of requests (at most {MAX_WINDOW:,}), got {window!r:.60}"
            )
        object.__setattr__(self, "window", int(window))
        if self.kind not in WINDOWED_KINDS and self.window != DEFAULT_WINDOW:
            raise InvalidInputError(
                f"a window applies only to the budget objective and the shares one (the requests their spend or "
                f"shares are held over), not to {self.kind}"
            )
        object.__setattr__(self, "value", float(value) + 0.0)  # + 0.0: -0.0 is 0 (its text form too)
        if self.kind == "shares":
            if self.value != 0:
                raise InvalidInputError(f"the shares objective takes its caps, not a value; got value {value!r}")
            object.__setattr__(self, "caps", _checked_caps(self.caps))
            small = [name for name, cap in self.caps if cap * self.window < 1 - 1e-9]
            if small:
                name, cap = small[0], self.cap_of[small[0]]
                raise InvalidInputError(
                    f"a share of {cap:.4g} for {name!r:.60} is less than one of the last {self.window} requests: the "
                    f"model could never be served; give window >= {math.ceil(1 / cap - 1e-9)}"
                )
        elif self.caps:
            raise InvalidInputError(f"caps apply only to the shares objective, not to {self.kind}")

    @classmethod
    def margin(cls, delta: float = DEFAULT_MARGIN) -> Objective:
        """The cheapest model predicted within ``delta`` (in [0, 1]) of the best predicted one."""
        return cls("margin", delta)

    @classmethod
    def max_cost(cls, usd: float) -> Objective:
        """The best predicted model whose expected cost of the request is at most ``usd`` (the cheapest when none
        is)."""
        return cls("max_cost", usd)

    @classmethod
    def cost_weight(cls, weight: float) -> Objective:
        """The model maximising ``P(answers well) - weight * expected cost in USD``."""
        return cls("cost_weight", weight)

    @classmethod
    def budget(cls, usd_per_1k: float, *, window: int = DEFAULT_WINDOW) -> Objective:
        """The best predicted quality at a mean spend of ``usd_per_1k`` USD per 1,000 requests, held over the last
        ``window`` requests."""
        return cls("budget", usd_per_1k, window)

    @classmethod
    def shares(
        cls, caps: Mapping[str, float] | Iterable[tuple[str, float]], *, window: int = DEFAULT_WINDOW
    ) -> Objective:
        """The best predicted model per request (ties to the cheaper), each model of ``caps`` (name -> largest share
        of requests, in (0, 1]) served to at most its share of the last ``window`` requests.

        Raises:
            InvalidInputError: No caps, a cap outside (0, 1], a name given twice or holding ``,`` / ``;``, or a bad
                window. (A name not among the listed models, and caps that cannot hold because every model is
                capped and they sum below 1, are refused where the models are known: ``LadderEngine``.)
        """
        pairs = list(caps.items()) if isinstance(caps, Mapping) else list(caps)
        return cls("shares", 0.0, window, tuple(pairs))  # type: ignore[arg-type]

    @property
    def cap_of(self) -> dict[str, float]:
        """The share caps by model (``"shares"``; empty for another kind)."""
        return dict(self.caps)

    @classmethod
    def parse(cls, text: str) -> Objective:
        """An objective from its text form: ``"<kind>=<value>"`` (``"budget=1.5"``, ``"margin=0.02"``), for a budget
        optionally ``",window=<requests>"`` after it (``"budget=1.5,window=500"``), share caps as
        ``"shares=<model>:<share>;..."`` (``"shares=gpt-4o:5%;llama-70b:0.3,window=500"``); the server's and the CLI's
        form.

        Raises:
            InvalidInputError: Not of that form, an unknown kind, a bad value, cap or window, or a window on another
                kind than ``budget`` and ``shares``.
        """
        head, *options = str(text).split(",")
        kind, sep, value = head.partition("=")
        caps: list[tuple[str, float]] = []
        if kind.strip() == "shares" and sep:
            caps, number = _parse_caps(value, text), 0.0
        else:
            try:
                number = float(value)
            except ValueError:
                number = math.nan
        if not sep or not math.isfinite(number):
            raise InvalidInputError(
                f"an objective is '<kind>=<number>' with kind one of {list(OBJECTIVE_KINDS)} (a budget may add "
                f"',window=<requests>'; shares are 'shares=<model>:<share>;...'), got {text!r:.80}"
            )
        window: int | None = None
        for option in options:
            key, sep, given = option.partition("=")
            if key.strip() != "window" or not sep:
                raise InvalidInputError(
                    f"after '<kind>=<number>' an objective takes only ',window=<requests>' (a budget's or shares'), "
                    f"got {option!r:.60} in {text!r:.80}"
                )
            if window is not None:
                raise InvalidInputError(f"the window is given twice in {text!r:.80}")
            try:
                window = int(given.strip())
            except ValueError:
                raise InvalidInputError(
                    f"window must be a whole number of requests, got {given!r:.40} in {text!r:.80}"
                ) from None
        kind = kind.strip()
        if window is not None and kind not in WINDOWED_KINDS and kind in OBJECTIVE_KINDS:
            raise InvalidInputError(
                f"a window applies only to the budget objective and the shares one (the requests their spend or "
                f"shares are held over), not to {kind!r:.40}: got {text!r:.80}"
            )
        return cls(kind, number, DEFAULT_WINDOW if window is None else window, tuple(caps))  # type: ignore[arg-type]

    def __str__(self) -> str:
        """The text form :meth:`parse` reads (the window only when it is not the default)."""
        if self.kind == "shares":
            text = "shares=" + ";".join(f"{name}:{_share_text(cap)}" for name, cap in self.caps)
        else:
            text = f"{self.kind}={self.value:g}"
        return text if self.window == DEFAULT_WINDOW else f"{text},window={self.window}"


def _share_text(cap: float) -> str:
    """A share as the text form writes it: a percent where that reads back exactly (``5%``), else the fraction in
    full (``0.3333333333333333``), so the text form parses back to the same objective."""
    percent = f"{cap * 100:g}"
    return f"{percent}%" if float(percent) / 100 == cap else repr(cap)


def _parse_caps(value: str, text: str) -> list[tuple[str, float]]:
    """``"<model>:<share>;..."`` as ``(model, share)`` pairs (a share a fraction or a percent; the name is read up to
    its last ``:``, so an Ollama ``llama3:70b`` keeps its tag).

    Raises:
        InvalidInputError: An entry without ``:``, or a share that is no number.
    """
    pairs = []
    for entry in value.split(";"):
        name, sep, given = entry.strip().rpartition(":")
        if not sep or not name.strip():
            raise InvalidInputError(
                f"shares are '<model>:<share>' entries joined by ';' (shares=gpt-4o:5%;llama-70b:0.3), got "
                f"{entry.strip()!r:.60} in {text!r:.80}"
            )
        given = given.strip()
        percent = given.endswith("%")
        try:
            cap = float(given[:-1] if percent else given)
        except ValueError:
            raise InvalidInputError(
                f"the share of {name.strip()!r:.60} must be a fraction (0.3) or a percent (30%), got {given!r:.40} in "
                f"{text!r:.80}"
            ) from None
        pairs.append((name.strip(), cap / 100 if percent else cap))
    return pairs


def _checked_caps(caps: object) -> tuple[tuple[str, float], ...]:
    """The caps of a shares objective, checked and sorted by name.

    Raises:
        InvalidInputError: No caps, a malformed pair, a blank name or one holding ``,`` / ``;``, a name given twice,
            or a cap that is not a number in (0, 1].
    """
    try:
        pairs = [(name, cap) for name, cap in caps]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"share caps are a mapping {{model: share}} such as {{'gpt-4o': 0.05}}, got {caps!r:.80}"
        ) from None
    if not pairs:
        raise InvalidInputError("the shares objective needs at least one cap, such as {'gpt-4o': 0.05}")
    seen: set[str] = set()
    checked = []
    for name, cap in pairs:
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"a capped model is named by a non-empty string, got {name!r:.60}")
        if any(sep in name for sep in _CAP_SEPARATORS):
            raise InvalidInputError(
                f"a capped model's name may not hold ',' or ';' (they separate the text form's parts), got {name!r:.60}"
            )
        if name in seen:
            raise InvalidInputError(f"the share of {name!r:.60} is given twice; give each model one cap")
        seen.add(name)
        try:
            number = float(cap) if not isinstance(cap, bool) and isinstance(cap, numbers.Real) else math.nan
        except OverflowError:
            number = math.nan
        if not 0 < number <= 1:  # NaN fails too
            raise InvalidInputError(
                f"the share cap of {name!r:.60} must be in (0, 1] (a fraction of requests; 5% is 0.05), got {cap!r:.40}"
            )
        checked.append((name, number))
    return tuple(sorted(checked))


__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "OBJECTIVE_KINDS",
    "WINDOWED_KINDS",
    "Objective",
    "ObjectiveKind",
]
