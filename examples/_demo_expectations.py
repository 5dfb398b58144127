"""What the demos expect of the router, said next to what it did: trivia to weak, hard reasoning to strong.

Shared by the LangChain and LlamaIndex demos (no framework imports). Each demo question carries the kind its author
assigned (``"trivia"`` or ``"reasoning"``); the router never sees that label. Where the router's choice differs,
the demo says so instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Sequence

#: One line on what the numbers in the demo output mean.
WIN_RATE_AND_THRESHOLD = (
    "win rate = the router's estimate that the strong model's answer beats the weak model's (a tie counts half); "
    "threshold = the win rate from which a prompt goes to the strong model."
)
EXPECTED = {"trivia": "weak", "reasoning": "strong"}
_explained = False


def explain_win_rate() -> None:
    """Print what "win rate" and "threshold" mean, once per process (``demo.py`` runs several examples)."""
    global _explained
    if not _explained:
        print(WIN_RATE_AND_THRESHOLD + "\n")
        _explained = True


def expectation_lines(rows: Sequence[tuple[str, str, float, str, float]]) -> list[str]:
    """Lines comparing each choice with the question's kind.

    Args:
        rows: ``(question, kind, win_rate, choice, threshold)`` per question; ``kind`` is ``"trivia"`` or
            ``"reasoning"``.
    """
    missed = [r for r in rows if EXPECTED[r[1]] != r[3]]
    agreed = len(rows) - len(missed)
    lines = [f"expected trivia -> weak and reasoning -> strong: the router agreed on {agreed}/{len(rows)}"]
    trivia = [r[2] for r in rows if r[1] == "trivia"]
    reasoning = [r[2] for r in rows if r[1] == "reasoning"]
    for question, kind, win_rate, choice, threshold in missed:
        side = "below" if choice == "weak" else "at or above"
        others = trivia if kind == "reasoning" else reasoning
        ranked = bool(others) and (win_rate > max(others) if kind == "reasoning" else win_rate < min(others))
        where = "above every trivia" if kind == "reasoning" else "below every reasoning"
        rank = (
            f"; it still ranks it {where} question here: only the threshold is off for this traffic"
            if ranked
            else "; it ranks it among the other kind's questions"
        )
        lines.append(
            f"  the router could not tell: {question[:70]!r} ({kind}) has win rate {win_rate:.3f}, {side} the "
            f"threshold {threshold:.3f}, so it went to {choice}{rank}."
        )
    if missed:
        lines.append(
            "  The default router's score is driven mostly by prompt length (its model card: out of domain it is "
            "about as good as the length heuristic), so a short hard question scores close to chit-chat. Calibrate "
            "the threshold on your own traffic (routellm calibrate), or train on your own labels, if that matters."
        )
    return lines
