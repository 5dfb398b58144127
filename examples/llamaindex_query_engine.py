"""A LlamaIndex query engine whose LLM is the router: each query goes to a strong or a weak model.

Runs offline: documents are embedded with the shipped all-MiniLM-L6-v2 (``RouteLLMEmbedding``) into an in-memory
``VectorStoreIndex``; the two "models" are labelled mock LLMs, so the answers show which one was called.

    python examples/llamaindex_query_engine.py
"""

from __future__ import annotations

import os

from _demo_expectations import expectation_lines, explain_win_rate
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from llamaindex_demo_llms import DecisionLog, DemoLLM

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding

# The first run exports all-MiniLM-L6-v2 to ONNX once (10-30 s); transformers would draw a "Loading weights" bar
# while reading the model for that export. Silence it (set before transformers is imported, on first use).
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

DOCUMENTS = [
    "The Eiffel Tower in Paris was completed in 1889 for the World's Fair. It is 330 metres tall and was the "
    "tallest man-made structure in the world until 1930.",
    "Photosynthesis converts light energy into chemical energy. Plants take in carbon dioxide and water and, "
    "using sunlight captured by chlorophyll, produce glucose and release oxygen.",
    "The Riemann hypothesis states that every non-trivial zero of the Riemann zeta function has real part 1/2. "
    "It is one of the Millennium Prize Problems and remains unproven.",
    "Python's Global Interpreter Lock (GIL) lets only one thread execute Python bytecode at a time; CPU-bound "
    "code therefore uses processes, while I/O-bound code can still benefit from threads.",
    "A haiku is a short Japanese poem of three lines with five, seven and five syllables.",
]

#: (query, kind): the kind is the demo author's label, used only to say whether the router agreed.
QUERIES = [
    ("How tall is the Eiffel Tower?", "trivia"),
    ("What gas do plants release?", "trivia"),
    ("Explain why proving the Riemann hypothesis would matter for the distribution of primes.", "reasoning"),
    (
        "Our Python web service parses large JSON uploads, resizes images and calls two slow external APIs per "
        "request; under load its p99 latency triples. Given the GIL, design a concurrency strategy (threads, "
        "processes, asyncio or a mix), justify each choice against the workload, and say how you would measure "
        "that it worked.",
        "reasoning",
    ),
    ("How many lines does a haiku have?", "trivia"),
]


def main() -> None:
    embed_model = RouteLLMEmbedding()  # the shipped MiniLM, offline (for the documents; the router has its own)
    # No threshold and no strong_fraction: the router's documented default, the threshold that sends half of its
    # shipped calibration traffic to the strong model -- the same threshold as the LangChain demo.
    llm = RouteLLM(
        strong=DemoLLM("strong"),
        weak=DemoLLM("weak"),
        router="default",
        route_on="rag_query",  # route on the question, not on the retrieved context around it
    )
    Settings.llm, Settings.embed_model = llm, embed_model  # never fall back to OpenAI defaults

    log = DecisionLog()
    get_dispatcher().add_event_handler(log)

    print("embedding the documents with all-MiniLM-L6-v2 (the first run exports it to ONNX once: 10-30 s)")
    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=embed_model)
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)

    print(f"router: {llm.router_name}, threshold {llm.routing_policy.threshold:.3f} (its calibrated 50% point)")
    explain_win_rate()
    rows = []
    for query, kind in QUERIES:
        response = engine.query(query)
        decision = log.decisions[-1]
        rows.append((query, kind, decision.win_rate, decision.choice, decision.threshold))
        print(f"Q ({kind}): {query[:100]!r}{'...' if len(query) > 100 else ''}")
        print(f"   -> {decision.choice:6s} ({decision.model}), win rate {decision.win_rate:.3f}")
        print(f"   A: {str(response)[:140]}\n")
    print("\n".join(expectation_lines(rows)))

    strong = sum(d.choice == "strong" for d in log.decisions)
    print(f"{strong}/{len(log.decisions)} queries went to the strong model")


if __name__ == "__main__":
    main()
