"""A router fitted in the tests on obvious battles, so integration tests assert choices known in advance.

Proofs, derivations and complexity analyses are won by the strong reference model, trivia and greetings by the
weak one. The router (``mf`` on the shipped static embedder, a few seconds to fit) routes held-out prompts of
both kinds (``HARD``, ``TRIVIA``) and is calibrated on them plus two ambiguous asks (``TRAFFIC``), so
``strong_fraction=0.5`` (and the default threshold) sends every hard prompt to strong and every trivia prompt to
weak. Imported by its bare name, like ``lc_fakes`` (``tests/`` is on ``sys.path``, not a package);
the session fixture ``known_router`` in ``conftest.py`` shares one fit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

STRONG_REF = "ref-strong"
WEAK_REF = "ref-weak"

_THEOREMS = [
    "there are infinitely many primes",
    "the square root of 2 is irrational",
    "every group of prime order is cyclic",
    "the harmonic series diverges",
    "a continuous function on a closed interval is bounded",
    "e is irrational",
    "the angles of a triangle sum to 180 degrees",
    "there is no largest even number",
    "every tree with n vertices has n - 1 edges",
    "the product of two odd numbers is odd",
    "the determinant of a product is the product of the determinants",
    "the square root of 3 is irrational",
    "a graph is bipartite if and only if it has no odd cycle",
    "every convergent sequence is bounded",
]
_DERIVATIONS = [
    "the quadratic formula by completing the square",
    "the derivative of sin(x) from first principles",
    "the closed form of the Fibonacci numbers",
    "the variance of a binomial distribution",
    "the Euler-Lagrange equation",
    "Stirling's approximation",
    "the area of a circle by integration",
    "the ordinary least squares estimator",
    "the Black-Scholes equation",
    "the kinetic energy formula from the work-energy theorem",
    "the period of a simple pendulum for small angles",
    "the maximum likelihood estimate of a Gaussian's mean",
]
_ALGORITHMS = [
    "merge sort",
    "Dijkstra's algorithm with a binary heap",
    "union-find with path compression",
    "quicksort in the worst case",
    "binary search on a sorted array",
    "the Floyd-Warshall algorithm",
    "building a heap bottom-up",
    "naive recursive Fibonacci",
    "insertion sort on a reversed list",
    "Kruskal's minimum spanning tree algorithm",
]
TRAIN_HARD = (
    [f"Prove that {t}." for t in _THEOREMS]
    + [f"Derive {d} step by step." for d in _DERIVATIONS]
    + [f"Analyse the complexity of {a} and prove that your bound is tight." for a in _ALGORITHMS]
)
_COUNTRIES = ["France", "Japan", "Italy", "Canada", "Egypt", "Brazil", "Norway", "Kenya", "Spain", "Chile", "India"]
_NAMES = ["Anna", "Tom", "Maria", "Ken", "Lucy", "Omar", "Sara", "Ben", "Ivy", "Raj"]
_THINGS = ["a banana", "grass", "the sky", "a lemon", "snow", "a tomato", "coal", "an orange"]
_ANIMALS = ["a cat", "a bird", "an ant", "a dog", "a horse", "a duck", "a cow"]
TRAIN_TRIVIA = (
    [f"What is the capital of {c}?" for c in _COUNTRIES]
    + [f"Hi {n}, how are you today?" for n in _NAMES]
    + [f"What colour is {t}?" for t in _THINGS]
    + [f"How many legs does {a} have?" for a in _ANIMALS]
)

#: Held-out prompts (never in the battles) the strong model must get.
HARD = [
    "Prove that the square of an even number is even.",
    "Derive the formula for the sum of a geometric series.",
    "Analyse the time complexity of heapsort and prove that the bound is tight.",
    "Prove that every bounded monotone sequence converges.",
    "Derive the ideal gas law from the kinetic theory of gases.",
    "Prove by induction that 1 + 2 + ... + n = n(n + 1) / 2.",
    "Analyse the complexity of breadth-first search on a graph with V vertices and E edges.",
    "Prove that the intersection of two subgroups is a subgroup.",
    "Derive the Taylor series of exp(x) around zero.",
    "Analyse the complexity of Strassen's matrix multiplication.",
]
#: Held-out prompts the weak model must get.
TRIVIA = [
    "What is the capital of Peru?",
    "Hello there!",
    "Hi Paul, how are you today?",
    "What colour is a strawberry?",
    "How many legs does a spider have?",
    "What is the capital of Germany?",
    "Good morning!",
    "What colour is a carrot?",
    "How many wheels does a bicycle have?",
    "Hey, how is it going?",
]
#: Two ambiguous asks (a greeting with a proof request): never asserted, they only sit in the traffic.
AMBIGUOUS = [
    "Good morning! Prove that today is a nice day.",
    "Hi, how are you? Also, analyse the complexity of saying hello.",
]
#: The traffic the router is calibrated on: the held-out prompts and the two ambiguous ones. Half of it is more
#: than the hard prompts, so the calibrated 50% threshold falls between the two kinds, not on a hard prompt's score.
TRAFFIC = HARD + AMBIGUOUS + TRIVIA

_LOCK = threading.Lock()
_FITTED: list[Any] = []


def known_battles() -> list[Any]:
    """Battles with an obvious winner: strong wins every hard prompt, weak every trivia prompt."""
    from routellm_core import Battle

    return [Battle(prompt=p, model_a=STRONG_REF, model_b=WEAK_REF, winner="model_a") for p in TRAIN_HARD] + [
        Battle(prompt=p, model_a=WEAK_REF, model_b=STRONG_REF, winner="model_a") for p in TRAIN_TRIVIA
    ]


def known_router() -> Any:
    """The fitted, calibrated router, fitted once per process (fixed seed, no validation split, one thread)."""
    with _LOCK:
        if not _FITTED:
            _FITTED.append(fit_like_known())
        return _FITTED[0]


def fit_like_known(battles: Any = None) -> Any:
    """An ``mf`` router fitted as :func:`known_router` is, on ``battles`` (default: :func:`known_battles`)."""
    import torch

    from routellm_core.embedding.embedders import embedder_from_name
    from routellm_core.embedding.static import STATIC_NAME
    from routellm_core.routers.training import train_router

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny fit: one thread is faster on a busy machine, and the same on any machine
    try:
        return train_router(
            "mf",
            known_battles() if battles is None else battles,
            embedder=embedder_from_name(STATIC_NAME),
            calibration_prompts=TRAFFIC,
            strong_model=STRONG_REF,
            weak_model=WEAK_REF,
            dim=16,
            epochs=60,
            lr=0.03,
            noise=0.0,
            batch_size=256,
            validation_fraction=0.0,
            seed=0,
        )
    finally:
        torch.set_num_threads(threads)


def expected_side(prompt: str) -> str:
    """The side a held-out prompt must go to, known from its kind (never from the router)."""
    if prompt in HARD:
        return "strong"
    if prompt in TRIVIA:
        return "weak"
    raise KeyError(prompt)


def strong_share(choices: Sequence[str]) -> float:
    """Share of ``"strong"`` among routing choices."""
    return sum(c == "strong" for c in choices) / len(choices)
