"""A LlamaIndex query engine whose LLM is the router: each query goes to a strong or a weak model.

Runs offline: documents are embedded with the shipped all-MiniLM-L6-v2 (``RouteLLMEmbedding``) into an in-memory
``VectorStoreIndex``; the two "models" are labelled mock LLMs, so the answers show which one was called.

    python examples/llamaindex_query_engine.py
"""

from __future__ import annotations

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.instrumentation import get_dispatcher
from llamaindex_demo_llms import DecisionLog, DemoLLM

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding
from routellm_core import load_router
from routellm_core.calibration import calibrate_threshold

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

QUERIES = [
    "How tall is the Eiffel Tower?",
    "What gas do plants release?",
    "Explain why proving the Riemann hypothesis would matter for the distribution of primes, step by step.",
    "Design a concurrency strategy for a CPU-bound Python service given the GIL, and justify the trade-offs.",
    "How many lines does a haiku have?",
]

#: A sample of typical traffic to calibrate the threshold on (in production: a few hundred logged queries).
SAMPLE_TRAFFIC = [
    "When was the Eiffel Tower built?",
    "What is chlorophyll for?",
    "Summarise the Riemann hypothesis in one sentence.",
    "Compare threads and processes for CPU-heavy Python code, with benchmarks to run.",
    "Write a haiku about autumn.",
    "Derive the prime number theorem's error term assuming the Riemann hypothesis.",
    "What does GIL stand for?",
    "Explain, step by step, how light reactions and the Calvin cycle are coupled.",
    "List three famous towers in Europe.",
    "Prove that a haiku-generating grammar is context-free or show why it is not.",
]


def main() -> None:
    embed_model = RouteLLMEmbedding()  # the shipped MiniLM, offline
    router = load_router("default")  # the shipped router, RouteLLM's default
    # The shipped calibration (strong_fraction=...) was fitted on benchmark prompts; for your own mix of
    # strong and weak calls, calibrate the threshold on a sample of your own traffic.
    threshold = calibrate_threshold(router, SAMPLE_TRAFFIC, strong_fraction=0.4)
    llm = RouteLLM(
        strong=DemoLLM("strong"),
        weak=DemoLLM("weak"),
        router=router,
        threshold=threshold,
        route_on="rag_query",  # route on the question, not on the retrieved context around it
    )
    Settings.llm, Settings.embed_model = llm, embed_model  # never fall back to OpenAI defaults

    log = DecisionLog()
    get_dispatcher().add_event_handler(log)

    index = VectorStoreIndex.from_documents([Document(text=t) for t in DOCUMENTS], embed_model=embed_model)
    engine = index.as_query_engine(llm=llm, similarity_top_k=1)

    print(f"router: {llm.router_name}, threshold {llm.routing_policy.threshold:.3f}\n")
    for query in QUERIES:
        response = engine.query(query)
        decision = log.decisions[-1]
        print(f"Q: {query}")
        print(f"   -> {decision.choice:6s} ({decision.model}), win rate {decision.win_rate:.3f}")
        print(f"   A: {response}\n")

    strong = sum(d.choice == "strong" for d in log.decisions)
    print(f"{strong}/{len(log.decisions)} queries went to the strong model")


if __name__ == "__main__":
    main()
