"""prompt | ChatRouteLLM | StrOutputParser: each question goes to the strong or the weak model.

Run (offline, a few seconds after the router's embedding model loads):
    .venv/bin/python examples/langchain_chain.py

The router is the shipped default router; the two children are local stand-ins that label their answers.
In real use pass real models, e.g. ``ChatRouteLLM(strong="openai:gpt-4o", weak="openai:gpt-4o-mini")``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo_models import demo_children, describe

from langchain_routellm import ChatRouteLLM

QUESTIONS = [
    "Hi! How are you today?",
    "What is the capital of Australia?",
    "A train leaves at 3pm going 60 mph; another leaves at 4pm going 80 mph. When does the second catch up?",
    "Translate 'good morning' into Spanish.",
    "Which of the following is a prime number? (A) 21 (B) 27 (C) 29 (D) 33",
    "Summarise the causes of the First World War in three sentences.",
]


def main() -> None:
    # strong_fraction=0.5: the threshold that sends about half of typical traffic to the strong model,
    # from the router's shipped calibration (or pass threshold=... directly).
    llm = ChatRouteLLM(**demo_children(), router="default", strong_fraction=0.5)
    prompt = ChatPromptTemplate.from_messages([("system", "You are a helpful assistant."), ("human", "{question}")])
    chain = prompt | llm | StrOutputParser()

    print(f"router: {llm.policy!r}\n")
    for question in QUESTIONS:
        # The parser drops the message metadata; the decision is also on the chat model's message:
        message = (prompt | llm).invoke({"question": question})
        answer = chain.invoke({"question": question})
        print(f"Q: {question}")
        print(f"   decision: {describe(message.response_metadata['routellm'])}")
        print(f"   answer:   {answer}\n")

    answers = chain.batch([{"question": q} for q in QUESTIONS])
    strong = sum(a.startswith("[strong") for a in answers)
    print(f"batch: {strong}/{len(answers)} questions went to the strong model")


if __name__ == "__main__":
    main()
