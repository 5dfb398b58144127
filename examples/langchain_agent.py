"""An agent with a tool, routed per step: create_agent with ChatRouteLLM, then with RouteLLMMiddleware.

Every model call of the agent is routed anew. A step whose last message is a tool result continues on the model
that issued the tool call (tool_step="continue", the default), so tool results always go back to a model that
has the tools bound and asked for them.

Run (offline):
    .venv/bin/python examples/langchain_agent.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo_models import demo_children, describe

from langchain_routellm import ChatRouteLLM, RouteLLMMiddleware


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"It is 21°C and sunny in {city}."


@tool
def calculator(expression: str) -> str:
    """Evaluate a product of two integers, e.g. '17 * 23'."""
    a, b = (int(x) for x in expression.replace("x", "*").split("*"))
    return str(a * b)


QUESTIONS = [
    "What is the weather in 'Paris'?",
    "Which of the following is a prime number? (A) 21 (B) 27 (C) 29 (D) 33",
    "Use the calculator: what is '17 * 23'?",
]


def show(messages: list[Any]) -> None:
    for message in messages:
        if isinstance(message, HumanMessage):
            print(f"  human: {message.text}")
        elif isinstance(message, AIMessage):
            step = (
                f"tool call {message.tool_calls[0]['name']}({message.tool_calls[0]['args']})"
                if message.tool_calls
                else message.text
            )
            print(f"  ai:    {step}")
            print(f"         routed: {describe(message.response_metadata['routellm'])}")
        elif isinstance(message, ToolMessage):
            print(f"  tool:  {message.text}")
    print()


def main() -> None:
    print("== create_agent with ChatRouteLLM as the model ==")
    llm = ChatRouteLLM(**demo_children(), router="default", strong_fraction=0.5)
    agent = create_agent(llm, tools=[get_weather, calculator])
    for question in QUESTIONS:
        show(agent.invoke({"messages": [HumanMessage(question)]})["messages"])

    print("== create_agent with RouteLLMMiddleware (per-step model swap) ==")
    children = demo_children()
    agent = create_agent(
        children["weak"],  # the agent's default model; the middleware picks the model at every step
        tools=[get_weather, calculator],
        middleware=[RouteLLMMiddleware(**children, router="default", strong_fraction=0.5)],
    )
    show(agent.invoke({"messages": [HumanMessage(QUESTIONS[0])]})["messages"])


if __name__ == "__main__":
    main()
