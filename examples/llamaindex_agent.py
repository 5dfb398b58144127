"""A LlamaIndex ``FunctionAgent`` whose LLM is the router: every agent step is routed anew.

Runs offline with labelled mock function-calling LLMs. An agent step whose last message is a tool result is
routed on the latest user message, so all steps of one request get the same model.

    python examples/llamaindex_agent.py
"""

from __future__ import annotations

import asyncio

from llama_index.core import Settings
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.tools import FunctionTool
from llamaindex_demo_llms import DecisionLog, DemoAgentLLM

from llamaindex_routellm import RouteLLM, RouteLLMEmbedding
from routellm_core import load_router
from routellm_core.evaluation.calibration import calibrate_threshold

REQUESTS = [
    "What is 6 times 7?",
    "I am planning a warehouse: 48 shelves, each with 125 bins. Reason carefully about capacity and multiply "
    "them for me.",
    "Multiply 12 by 12.",
]

#: A sample of typical traffic to calibrate the threshold on (in production: a few hundred logged requests).
SAMPLE_TRAFFIC = [
    "What is 3 times 4?",
    "Multiply 250 by 17 and tell me whether the result is prime.",
    "A train has 12 cars with 64 seats each; how many seats in total? Explain your reasoning.",
    "Compute 9 times 9.",
    "Estimate the number of tiles for a 12 by 15 metre floor with 30 cm tiles, step by step.",
    "What's 100 times 3?",
]


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


async def main() -> None:
    router = load_router("default")  # the shipped router, RouteLLM's default
    # calibrated on a sample of your own traffic, about 40% of requests go to strong
    threshold = calibrate_threshold(router, SAMPLE_TRAFFIC, strong_fraction=0.4)
    llm = RouteLLM(strong=DemoAgentLLM("strong"), weak=DemoAgentLLM("weak"), router=router, threshold=threshold)
    Settings.llm, Settings.embed_model = llm, RouteLLMEmbedding()  # never fall back to OpenAI defaults
    log = DecisionLog()
    get_dispatcher().add_event_handler(log)

    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(multiply)],
        llm=llm,
        system_prompt="You are a careful calculator. Use the multiply tool.",
    )
    print(
        f"router: {llm.router_name}, threshold {llm.routing_policy.threshold:.3f}: a request goes to the strong model "
        "when its win rate (the router's estimate that the strong model's answer beats the weak one's) is at least "
        f"that. It was calibrated on the {len(SAMPLE_TRAFFIC)} sample requests above so that about 40% of such "
        "traffic goes to strong.\n"
    )
    for request in REQUESTS:
        first = len(log.decisions)
        handler = agent.run(request)
        async for event in handler.stream_events():
            if isinstance(event, ToolCallResult):
                print(f"   tool {event.tool_name}({event.tool_kwargs}) -> {event.tool_output.content}")
        result = await handler
        print(f"Q: {request}")
        for step, decision in enumerate(log.decisions[first:], start=1):
            print(f"   step {step}: {decision.choice:6s} ({decision.model}), win rate {decision.win_rate:.3f}")
        print(f"   A: {result}\n")


if __name__ == "__main__":
    asyncio.run(main())
