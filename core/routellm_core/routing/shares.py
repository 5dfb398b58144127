"""``ShareController``: holds each capped model's share of the recent requests (``Objective.shares``) on live traffic.

A call under ``Objective.shares`` goes to ``argmax_m p_m - lambda_m`` (ties to the cheaper model), where ``p_m`` is
the router's P(model m answers well) and ``lambda_m >= 0`` a penalty on each capped model (0 on the others). For each
request the controller adds the request's predictions to a window of the last ``window`` ones and
sets the penalties to the smallest at which the window, routed again, serves each capped model to at most its cap:
coordinate updates, ``lambda_m`` = the ``(1 - cap_m)`` quantile of ``p_m - max_{j != m}(p_j - lambda_j)`` over the
window (clipped at 0), repeated until no penalty moves (at most :data:`MAX_ROUNDS` rounds). Starting from 0 and each
update raising what the others' updates see, the rounds climb to the smallest penalties that hold every cap. Where
several window rows sit exactly on a cap's threshold (the same prompt asked again), the two neighbouring penalties
are mixed at random in the proportion that serves the cap exactly, as :class:`~routellm_core.routing.ladder.
BudgetController` mixes two weights, so repeated prompts do not all flip at once.

The window's requests are routed again at each request, so when the traffic drifts towards prompts on which a
capped model leads by more, the new requests all outrank the window's old ones until the window has turned over: by
that rule alone the capped model would take up to ``cap x window`` requests in a row. So the controller also never
chooses a capped model that was chosen or served for ``floor(cap x window)`` of the last ``window`` requests (unless
every model is so limited), and names such a model *closed* for the request: its pair, climb and fallback do not go
to it either (an escalation or fallback serving a capped model counts against its cap as a choice does).

What was really served corrects the shares aimed at, as the budget controller corrects its spend: an escalation or a
fallback may serve a capped model the controller did not choose (or another in its place), so each cap is aimed at
``cap x chosen share / served share`` of that model (the controller's choices and the models that answered, over the
last ``max(window, SERVED_MEMORY)`` of each, once a quarter of them reported), within ``[0.25, MAX_AIM] x cap`` and
at most 1. Where the limit binds it holds back choices and serves alike, so it moves no aim.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Mapping

import numpy as np

from routellm_core.errors import InvalidInputError
from routellm_core.escalation.ladder import choose as pick

#: Coordinate-update rounds per request at most (the penalties usually settle in two or three).
MAX_ROUNDS = 50
#: The rounds stop once no penalty moves by more than this (each threshold sits ``_EPS`` above a lead, so with two
#: caps the penalties creep by about ``_EPS`` a round: a tolerance of ``_EPS`` itself never stops them).
_SETTLED = 1e-7
#: The highest aim, as a multiple of the cap (higher, the limit rather than the predictions would pick who is served).
MAX_AIM = 1.5
#: The served calls the aim's correction counts, at least (fewer are too noisy: a cap of 5% is 10 calls in 200).
SERVED_MEMORY = 200
#: How far above a threshold a penalty is set, so that a row on the threshold is not served the capped model.
_EPS = 1e-9
#: Margins this close count as one (a prompt asked again).
_TIE = 1e-12


class ShareController:
    """Holds each capped model's share of the last ``window`` requests by a penalty per capped model.

    Args:
        caps: The largest share of requests, in (0, 1], by model index (the models' order in the rows).
        n_models: How many models each row predicts.
        window: How many recent requests the shares are held over.
        seed: Seed of the random mix between two neighbouring penalties.

    Raises:
        InvalidInputError: No caps, a cap outside (0, 1] or an index outside the models, or caps that cannot hold:
            every model capped and the caps summing below 1, or their whole requests of the window (``floor(cap x
            window)`` each) summing below the window.
    """

    def __init__(self, caps: Mapping[int, float], n_models: int, window: int, seed: int = 0) -> None:
        if not caps:
            raise InvalidInputError("a share controller needs at least one cap")
        bad = {j: c for j, c in caps.items() if not 0 <= j < n_models or not 0 < c <= 1}
        if bad:
            raise InvalidInputError(f"share caps must be in (0, 1] and name one of {n_models} models, got {bad}")
        if len(caps) == n_models:  # every model capped: the caps must leave room for every request
            if (total := sum(caps.values())) < 1 - 1e-9:
                raise InvalidInputError(
                    f"the shares objective caps every listed model and the caps sum to {total:.4g} < 1, so some "
                    "requests could go to no model: raise a cap or leave a model uncapped"
                )
            if (whole := sum(math.floor(c * window + 1e-9) for c in caps.values())) < window:
                raise InvalidInputError(
                    f"the shares objective caps every listed model and the caps' whole requests of a {window}-request "
                    f"window sum to {whole} < {window}, so some requests could go to no model: raise a cap, lengthen "
                    "the window or leave a model uncapped"
                )
        self.capped = np.array(sorted(caps), dtype=int)
        self.caps = np.array([float(caps[j]) for j in self.capped])
        self.n_models = n_models
        self.window = window
        self._rows: deque[np.ndarray] = deque(maxlen=window)
        memory = max(window, SERVED_MEMORY)
        # per recent request, the models it used: the controller's choice, then any other model that served it (the
        # limit counts them; the choices alone are the shares before any call reported)
        self._used: deque[list[int]] = deque(maxlen=window)
        self._tickets = 0  # requests chosen so far: a request's ticket is its number
        self._picked: deque[int] = deque(maxlen=memory)  # the controller's choices
        self._served: deque[int] = deque(maxlen=memory)  # the models that answered
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()

    def choose(self, pred: np.ndarray, cost: np.ndarray) -> tuple[int, np.ndarray, int, tuple[int, ...]]:
        """Add one request (``pred``: P(answers well) per model; ``cost``: expected USD per model, for ties) and
        choose its model: ``argmax p - penalty``, ties to the cheaper, a capped model that was chosen or served for
        its cap of the last ``window`` requests left out.

        Returns:
            The model's index, the penalties in force (0 on the uncapped models), the request's ticket (for
            :meth:`served`) and the capped models closed to it (at their cap: no escalation or fallback to them).
        """
        lam = self.penalties(pred)
        with self._lock:
            recent = list(self._used)[-(self.window - 1) :] if self.window > 1 else []  # with this one: the window
            counts = np.array([sum(m in used for used in recent) for m in self.capped])
            full = counts >= np.floor(self.caps * self.window + 1e-9)
            score = np.asarray(pred, dtype=np.float64) - lam
            if full.all() and len(self.capped) == self.n_models:  # someone must be served
                full[:] = False
            score[self.capped[full]] = -np.inf
            chosen = int(pick(score[None], np.asarray(cost, dtype=np.float64)[None], "cost_weight", np.zeros(1))[0, 0])
            self._used.append([chosen])
            self._picked.append(chosen)
            ticket = self._tickets
            self._tickets += 1
        return chosen, lam, ticket, tuple(int(m) for m in self.capped[full])

    def penalties(self, pred: np.ndarray) -> np.ndarray:
        """Add one request (``pred``: P(answers well) per model) and return the penalty per model for it (0 for the
        uncapped ones): the smallest at which the window's requests, routed by ``argmax p - penalty``, serve each
        capped model to at most its aimed share (a row whose lead ties the penalty exactly goes to the cheaper model,
        which can only lower the count, so costs are not needed here)."""
        with self._lock:
            self._rows.append(np.asarray(pred, dtype=np.float64))
            p = np.vstack(self._rows)
            u = self._rng.random(len(self.capped))
            aims = self._aims()
        n = len(p)
        allowed = np.floor(aims * n + 1e-9).astype(int)  # rows each capped model may take
        lam = np.zeros(self.n_models)
        for _ in range(MAX_ROUNDS):
            before = lam.copy()
            for m, k in zip(self.capped, allowed, strict=True):
                lam[m] = self._threshold(p, lam, m, k)[0]
            if np.max(np.abs(lam - before)) <= _SETTLED:
                break
        if len(self.capped) == self.n_models:  # every model capped: a common shift changes no choice
            lam -= lam.min()
        final = lam.copy()
        for i, (m, k) in enumerate(zip(self.capped, allowed, strict=True)):
            high, low, q, current = self._threshold(p, lam, m, k, aims[i] * n)
            # this request sits on the threshold: it is served m in the share q of such rows
            final[m] = low if current and u[i] < q else high
        return final

    @staticmethod
    def _threshold(
        p: np.ndarray, lam: np.ndarray, m: int, k: int, share: float | None = None
    ) -> tuple[float, float, float, bool]:
        """Model ``m``'s smallest penalty at which at most ``k`` window rows pick it (the others' penalties
        ``lam``); with it the penalty one step below (rows on the threshold pick it), the probability ``q`` of the
        lower one that serves ``share`` rows on average, and whether the newest row is on the threshold."""
        n = len(p)
        others = p - lam
        others[:, m] = -np.inf
        d = p[:, m] - others.max(axis=1)  # m's lead over the best other model, per row
        if k >= n:
            return 0.0, 0.0, 0.0, False
        t = float(np.partition(d, n - 1 - k)[n - 1 - k])  # the (k+1)-th largest lead
        high = max(0.0, t + _EPS)
        if share is None:
            return high, high, 0.0, False
        above, at_least = int(np.sum(d > t + _TIE)), int(np.sum(d >= t - _TIE))
        q = min(1.0, max(0.0, (share - above) / (at_least - above))) if at_least > above else 0.0
        return high, max(0.0, t - _EPS), q, bool(abs(d[-1] - t) <= _TIE)

    def served(self, model: int, ticket: int | None = None) -> None:
        """Report a served call: the model that answered (the chosen one, or an escalation's or a fallback's), and the
        ticket :meth:`choose` gave its request (so a model other than the chosen one counts against its cap)."""
        with self._lock:
            self._served.append(int(model))
            at = None if ticket is None else ticket - (self._tickets - len(self._used))
            if at is not None and 0 <= at < len(self._used) and model not in self._used[at]:
                self._used[at].append(int(model))

    def _aims(self) -> np.ndarray:
        """The shares aimed at (call holding the lock): each cap x chosen / served share of its model over the recent
        choices and served calls, once a quarter of the memory reported, within [0.25, MAX_AIM] x cap and at most 1.
        Only what escalations and fallbacks serve beyond the choices moves it: the limit holds back choices and
        serves alike (an aim corrected by the shares aimed at climbed to MAX_AIM x cap whenever the limit bound, and
        the model was then served in bursts the limit cut off)."""
        memory = self._served.maxlen or 1
        if len(self._served) < max(1, memory // 4) or not self._picked:
            return self.caps.copy()
        served_models, picked_models = np.array(self._served), np.array(self._picked)
        served = np.array([np.mean(served_models == m) for m in self.capped])
        chosen = np.array([np.mean(picked_models == m) for m in self.capped])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(served > 0, chosen / served, 1.0)
        return np.minimum(np.clip(self.caps * ratio, 0.25 * self.caps, MAX_AIM * self.caps), 1.0)

    @property
    def aims(self) -> np.ndarray:
        """The share each capped model (:attr:`capped`'s order) is aimed at now (the caps, corrected by what was
        served)."""
        with self._lock:
            return self._aims()

    @property
    def shares(self) -> np.ndarray:
        """Each capped model's share of the last ``window`` served calls (:attr:`capped`'s order); before any call
        reported, of the controller's recent choices (zeros before any request)."""
        with self._lock:
            recent = list(self._served)[-self.window :] or [used[0] for used in self._used]
        if not recent:
            return np.zeros(len(self.capped))
        picks = np.array(recent)
        return np.array([float(np.mean(picks == m)) for m in self.capped])

    def __repr__(self) -> str:
        caps = ", ".join(f"{m}: {c:g}" for m, c in zip(self.capped, self.caps, strict=True))
        return f"ShareController(caps={{{caps}}}, window={self.window})"


__all__ = ["MAX_AIM", "MAX_ROUNDS", "SERVED_MEMORY", "ShareController"]
