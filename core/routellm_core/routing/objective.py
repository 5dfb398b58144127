"""``Objective``: how a call among N priced models picks its model from their predicted success and expected cost."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal

from routellm_core.errors import InvalidInputError

ObjectiveKind = Literal["margin", "max_cost", "cost_weight", "budget"]
OBJECTIVE_KINDS: tuple[str, ...] = ("margin", "max_cost", "cost_weight", "budget")

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
            live traffic by a controller that sets the cost weight from the last ``window`` requests.
        value: The objective's parameter.
        window: For ``"budget"``: how many recent requests the controller holds the spend over, at most
            :data:`MAX_WINDOW` (another kind takes none: it keeps the default).

    The text form (:meth:`parse`, ``str()``; the server's and the CLI's) is ``"<kind>=<value>"``, and for a budget
    held over another window than :data:`DEFAULT_WINDOW` ``"budget=<value>,window=<requests>"``.
    """

    kind: ObjectiveKind
    value: float
    window: int = DEFAULT_WINDOW

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
        if self.kind != "budget" and self.window != DEFAULT_WINDOW:
            raise InvalidInputError(
                f"a window applies only to the budget objective (the requests its spend is held over), not to "
                f"{self.kind}"
            )
        object.__setattr__(self, "value", float(value) + 0.0)  # + 0.0: -0.0 is 0 (its text form too)

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
    def parse(cls, text: str) -> Objective:
        """An objective from its text form: ``"<kind>=<value>"`` (``"budget=1.5"``, ``"margin=0.02"``), for a budget
        optionally ``",window=<requests>"`` after it (``"budget=1.5,window=500"``); the server's and the CLI's form.

        Raises:
            InvalidInputError: Not of that form, an unknown kind, a bad value or window, or a window on another
                kind than ``budget``.
        """
        head, *options = str(text).split(",")
        kind, sep, value = head.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not math.isfinite(number):
            raise InvalidInputError(
                f"an objective is '<kind>=<number>' with kind one of {list(OBJECTIVE_KINDS)} (a budget may add "
                f"',window=<requests>'), got {text!r:.80}"
            )
        window: int | None = None
        for option in options:
            key, sep, given = option.partition("=")
            if key.strip() != "window" or not sep:
                raise InvalidInputError(
                    f"after '<kind>=<number>' an objective takes only ',window=<requests>' (a budget's), got "
                    f"{option!r:.60} in {text!r:.80}"
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
        if window is not None and kind != "budget" and kind in OBJECTIVE_KINDS:
            raise InvalidInputError(
                f"a window applies only to the budget objective (the requests its spend is held over), not to "
                f"{kind!r:.40}: got {text!r:.80}"
            )
        return cls(kind, number, DEFAULT_WINDOW if window is None else window)  # type: ignore[arg-type]

    def __str__(self) -> str:
        """The text form :meth:`parse` reads (the window only when it is not the default)."""
        text = f"{self.kind}={self.value:g}"
        return text if self.window == DEFAULT_WINDOW else f"{text},window={self.window}"


__all__ = ["DEFAULT_MARGIN", "DEFAULT_WINDOW", "MAX_WINDOW", "OBJECTIVE_KINDS", "Objective", "ObjectiveKind"]
