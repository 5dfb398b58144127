"""A deadline for blocks that must run in linear time (the answer matching's adversarial inputs)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail a block that runs past ``seconds``. Not a timing bound: a comparison of two 200 kB replies takes about
    0.1 s here; catastrophic backtracking took from 2 s (8 kB) to over 120 s (200 kB), and only that hits this."""

    def _fail(signum: int, frame: object) -> None:
        raise TimeoutError(f"answer comparison ran past {seconds} s: catastrophic backtracking")

    previous = signal.signal(signal.SIGALRM, _fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
