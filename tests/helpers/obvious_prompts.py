"""Prompts whose better model is obvious: hard reasoning (the strong model wins) and chit-chat (the weak one is
as good). Tests fit routers on battles or labels over them and assert choices known in advance. Imported by its
bare name, like ``lc_fakes`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

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
