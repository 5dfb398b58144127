"""prompt | ChatRouteLLM | StrOutputParser: each question goes to the strong or the weak model.

Run (offline, a few seconds after the router's embedding model loads):
    .venv/bin/python examples/langchain_chain.py

The router is the shipped default router at its documented threshold; the two children are local stand-ins that
label their answers. Each question carries the kind the demo expects (trivia -> weak, reasoning -> strong), and the
output says where the router could not tell.
In real use pass real models, e.g. ``ChatRouteLLM(strong="openai:gpt-4o", weak="openai:gpt-4o-mini")``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo_expectations import expectation_lines, explain_win_rate
from _demo_models import demo_children, describe

from langchain_routellm import ChatRouteLLM

#: (question, kind): the kind is the demo author's label, used only to say whether the router agreed.
QUESTIONS = [
    ("Hi! How are you today?", "trivia"),
    ("What is the capital of Australia?", "trivia"),
    (
        "A train leaves Chicago at 3 pm heading west at 60 mph. A second train leaves the same station at 4 pm on a "
        "parallel track at 80 mph. At what time does the second train draw level with the first, and how far from "
        "Chicago are they then? If the first train also stops for 15 minutes at 5 pm, how does the answer change? "
        "Show your working step by step.",
        "reasoning",
    ),
    ("Translate 'good morning' into Spanish.", "trivia"),
    ("Prove that there are infinitely many prime numbers.", "reasoning"),
    (
        "The function below should return the median of a list, but it fails on some inputs. Find the bug, explain "
        "why it happens, and give a corrected version with tests.\n\ndef median(xs):\n    xs.sort()\n    n = len(xs)\n"
        "    if n % 2:\n        return xs[n // 2]\n    return xs[n // 2] + xs[n // 2 - 1] / 2\n",
        "reasoning",
    ),
]


def main() -> None:
    # No threshold and no strong_fraction: the router's documented default, the threshold that sends half of its
    # shipped calibration traffic to the strong model (router.threshold_for(0.5)).
    llm = ChatRouteLLM(**demo_children(), router="default")
    prompt = ChatPromptTemplate.from_messages([("system", "You are a helpful assistant."), ("human", "{question}")])
    chain = prompt | llm | StrOutputParser()

    print(f"router: {llm.policy!r} (its calibrated 50% point)")
    explain_win_rate()
    rows = []
    for question, kind in QUESTIONS:
        # The parser drops the message metadata; the decision is also on the chat model's message:
        message = (prompt | llm).invoke({"question": question})
        answer = chain.invoke({"question": question})
        meta = message.response_metadata["routellm"]
        rows.append((question, kind, meta["win_rate"], meta["choice"], meta["threshold"]))
        print(f"Q ({kind}): {question[:100]!r}{'...' if len(question) > 100 else ''}")
        print(f"   decision: {describe(meta)}")
        print(f"   answer:   {answer[:120]}\n")
    print("\n".join(expectation_lines(rows)))

    answers = chain.batch([{"question": q} for q, _ in QUESTIONS])
    strong = sum(a.startswith("[strong") for a in answers)
    print(f"batch: {strong}/{len(answers)} questions went to the strong model")


if __name__ == "__main__":
    main()
