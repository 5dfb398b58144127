"""Streaming through ChatRouteLLM: tokens arrive one by one; the first chunk carries the routing decision.

Run (offline):
    .venv/bin/python examples/langchain_streaming.py
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo_models import demo_children, describe

from langchain_routellm import ChatRouteLLM

QUESTIONS = [
    "Which of the following is a prime number? (A) 21 (B) 27 (C) 29 (D) 33",
    "Translate 'good morning' into Spanish.",
]


def stream_sync(llm: ChatRouteLLM, question: str) -> None:
    print(f"Q: {question}")
    chunks = 0
    for chunk in llm.stream(question):
        if chunks == 0:
            print(f"   decision (first chunk): {describe(chunk.response_metadata['routellm'])}")
            print("   tokens: ", end="")
        print(chunk.text, end="|", flush=True)
        chunks += 1
        last = chunk
    print(f"\n   {chunks} chunks, last chunk_position={last.chunk_position!r}\n")


async def stream_async(llm: ChatRouteLLM, question: str) -> None:
    full = None
    async for chunk in llm.astream(question):
        full = chunk if full is None else full + chunk
    assert full is not None
    print(f"astream: {full.text!r}")
    print(f"   decision: {describe(full.response_metadata['routellm'])}; usage: {full.usage_metadata}")


def main() -> None:
    llm = ChatRouteLLM(**demo_children(), router="default", strong_fraction=0.5)
    for question in QUESTIONS:
        stream_sync(llm, question)
    asyncio.run(stream_async(llm, QUESTIONS[0]))


if __name__ == "__main__":
    main()
