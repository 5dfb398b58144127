"""Prompts whose better model is obvious: hard reasoning (the strong model wins) and chit-chat (the weak one is
as good). Tests fit routers on battles or labels over them and assert choices known in advance. Imported by its
bare name, like ``lc_fakes`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import json
from pathlib import Path

from routellm_core import Battle

HARD = [
    "Prove that there are infinitely many primes of the form 4k+3.",
    "Derive the closed form of the integral of x^2 e^{-x} from 0 to infinity and justify each step.",
    "Write a lock-free concurrent queue in C++ with memory-order annotations and explain its correctness.",
    "Solve the system of equations 3x + 2y - z = 1, 2x - 2y + 4z = -2, -x + y/2 - z = 0 step by step.",
    "Explain the proof of the Cauchy-Schwarz inequality for inner product spaces rigorously.",
    "Compute the eigenvalues of the matrix [[2, 1], [1, 3]] and the corresponding eigenvectors.",
    "Implement Dijkstra's algorithm with a binary heap in Rust and analyse its complexity.",
    "Find all real solutions of x^4 - 5x^2 + 4 = 0 and prove there are no others.",
]
EASY = [
    "Hi there!",
    "Say hello to my friend Anna.",
    "What is your name?",
    "Thanks, have a nice day.",
    "Good morning! How are you?",
    "Tell me a one-line joke about cats.",
    "What colour is the sky on a clear day?",
    "Say goodbye in French.",
]


def obvious_battles(strong: str, weak: str, *, per_side: int = 4, ties: int = 0) -> list[Battle]:
    """``strong`` beats ``weak`` on the first ``per_side`` hard prompts and loses on as many easy ones, then
    ``ties`` ties (the first hard prompts asked again)."""
    out = [Battle(prompt=p, model_a=strong, model_b=weak, winner="model_a") for p in HARD[:per_side]]
    out += [Battle(prompt=p, model_a=weak, model_b=strong, winner="model_a") for p in EASY[:per_side]]
    return out + [Battle(prompt=f"{p} (again)", model_a=strong, model_b=weak, winner="tie") for p in HARD[:ties]]


def write_battles(path: Path, battles: list[Battle]) -> Path:
    """``battles`` as a JSONL battles file at ``path`` (the form ``routellm train --battles`` reads)."""
    rows = [{"prompt": b.prompt, "model_a": b.model_a, "model_b": b.model_b, "winner": b.winner} for b in battles]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path
