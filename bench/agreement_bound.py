"""How far an agreement check could go at all: the cost-quality frontier of the policies that serve either the
reference model's own answer or an answer two cheaper models agree on, picked with full knowledge.

The escalation benches score real checks. This module answers the question a missed target raises: is it the
check, or the signal? Each prompt has these options:

- the *anchor* (the strong model; on a ladder, the best single model) answers alone;
- two of the other models answer and agree on their final answer (the grader's rule): the agreed answer is served
  at the pair's cost (its quality: the better of the two grades).

The frontier is the best any policy in this family reaches, picking per prompt knowing which agreed answers are
right and which pairs would disagree (never paid for). Serving an answer no other model confirmed (a cheap model
routed to unchecked, or kept although its pair disagreed) is outside the family: to beat this frontier a check
must tell right from wrong among such answers, which agreement alone cannot. It is not a policy: no check knows
which agreed answers are right.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from routellm_core.escalation.evaluate import EscalationCurve


def options_frontier(options: Sequence[Sequence[tuple[float, float]]]) -> EscalationCurve:
    """The exact cost-quality frontier of picking one ``(cost, quality)`` option per prompt (means over prompts).

    Each prompt's options reduce to their upper concave hull from its cheapest option; the hulls' steps, best
    quality per cost first across all prompts, trace the frontier (a random mix of neighbours reaches between).

    Raises:
        ValueError: A prompt has no option.
    """
    n = len(options)
    start_c = start_q = 0.0
    steps: list[tuple[float, float]] = []
    for opts in options:
        if not opts:
            raise ValueError("every prompt needs at least one option")
        pts = sorted(set(opts), key=lambda o: (o[0], -o[1]))
        hull = [pts[0]]
        for c, q in pts[1:]:
            if q <= hull[-1][1]:
                continue
            while len(hull) >= 2:
                (c0, q0), (c1, q1) = hull[-2], hull[-1]
                if (q1 - q0) * (c - c0) <= (q - q0) * (c1 - c0):  # hull[-1] on or below the chord to (c, q)
                    hull.pop()
                else:
                    break
            hull.append((c, q))
        start_c += hull[0][0]
        start_q += hull[0][1]
        steps += [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(hull)]
    steps.sort(key=lambda s: -s[1] / s[0] if s[0] > 0 else -np.inf)
    dc = np.array([s[0] for s in steps], dtype=np.float64)
    dq = np.array([s[1] for s in steps], dtype=np.float64)
    points = np.column_stack([start_c + np.r_[0.0, np.cumsum(dc)], start_q + np.r_[0.0, np.cumsum(dq)]]) / max(n, 1)
    k = len(points)
    return EscalationCurve(points, np.ones(k), np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan), n, k)


def agreement_bound(
    quality: Mapping[str, Sequence[float]],
    costs: Mapping[str, Sequence[float]],
    answers: Mapping[str, Sequence[Any]],
    *,
    anchor: str,
    others: Sequence[str],
    agree: Callable[[Any, Any], bool],
) -> EscalationCurve:
    """The frontier of the policies serving ``anchor``'s answer or one two of ``others`` agree on (module
    docstring), picked knowing which options are right."""
    n = len(quality[anchor])
    q = {m: np.asarray(quality[m], dtype=np.float64) for m in (anchor, *others)}
    c = {m: np.asarray(costs[m], dtype=np.float64) for m in (anchor, *others)}
    options: list[list[tuple[float, float]]] = [[(float(c[anchor][i]), float(q[anchor][i]))] for i in range(n)]
    for a, b in itertools.combinations(others, 2):
        for i in range(n):
            if agree(answers[a][i], answers[b][i]):
                options[i].append((float(c[a][i] + c[b][i]), float(max(q[a][i], q[b][i]))))
    return options_frontier(options)
