"""A routed child's structured output that keeps the raw message for the decision record.

Without ``include_raw`` a chat model's structured output returns the parsed value only, and the message carrying
the token usage (and log-probabilities) is lost: the record would have no tokens and no cost, and the ``logprobs``
escalation check nothing to read. :class:`ParsedOnly` asks the model with ``include_raw=True`` on invoke, raises the
parsing error as the plain form would, and hands the router a :class:`ParsedAnswer` (the router returns its parsed
value to the caller). A stream keeps the plain form, whose parser yields partial objects as they arrive, and watches
the chat model's run: the whole streamed message (with its usage, where the model reports it in streams) ends the
stream as a :class:`ParsedAnswer` that the router reads for the record and never passes on to the caller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import merge_configs

from langchain_routellm._outputs import ParsedAnswer


def parsed_answer(value: Any) -> ParsedAnswer:
    """The ``include_raw=True`` result ``value`` as a :class:`ParsedAnswer` (a model that ignored ``include_raw``
    and returned the parsed value: that value, with no raw message).

    Raises:
        Exception: The parsing error the result holds (what the plain structured output raises).
    """
    if not isinstance(value, Mapping) or "raw" not in value:  # a model that ignores include_raw: no usage to read
        return ParsedAnswer({"raw": None, "parsed": value, "parsing_error": None})
    error = value.get("parsing_error")
    if isinstance(error, BaseException):
        raise error
    return ParsedAnswer(value)


class _RawWatch(BaseCallbackHandler):
    """Keeps the whole message of the chat-model run a structured stream makes (``on_llm_end`` gets the chunks added
    up, usage included)."""

    run_inline = True  # on the event loop, in order, under an async callback manager

    def __init__(self) -> None:
        super().__init__()
        self.message: BaseMessage | None = None

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        if isinstance(generation, ChatGeneration):
            self.message = generation.message

    def watched(self, config: RunnableConfig | None) -> RunnableConfig:
        """``config`` with this watch among its callbacks."""
        return merge_configs(config, {"callbacks": [self]})

    def closing(self, last: Any) -> list[ParsedAnswer]:
        """The stream's closing item: the watched message with ``last`` (the last parsed chunk), if a chunk came."""
        if self.message is None or last is None:
            return []
        return [ParsedAnswer({"raw": self.message, "parsed": last, "parsing_error": None})]


class ParsedOnly(Runnable[Any, Any]):
    """A chat model's structured output for a caller who wants the parsed value only: ``invoke`` returns a
    :class:`ParsedAnswer` (the parsed value and the raw message), ``stream`` the plain form's chunks.

    Args:
        model: The chat model.
        schema: The output schema (as ``with_structured_output`` takes it).
        kwargs: Other ``with_structured_output`` arguments (``method=``, ``strict=``...).
    """

    def __init__(self, model: BaseChatModel, schema: Any, kwargs: Mapping[str, Any]) -> None:
        self.whole = model.with_structured_output(schema, include_raw=True, **kwargs)
        self.plain = model.with_structured_output(schema, include_raw=False, **kwargs)
        self.name = self.plain.get_name()

    @property
    def InputType(self) -> Any:
        """The model's input type."""
        return self.plain.InputType

    @property
    def OutputType(self) -> Any:
        """The parsed value's type (what the router returns to the caller)."""
        return self.plain.OutputType

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> ParsedAnswer:
        """The structured answer with its raw message (the model's own runs trace it).

        Raises:
            Exception: The parsing error, as the plain structured output raises it.
        """
        return parsed_answer(self.whole.invoke(input, config, **kwargs))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> ParsedAnswer:
        """Async :meth:`invoke`."""
        return parsed_answer(await self.whole.ainvoke(input, config, **kwargs))

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None) -> Iterator[Any]:
        """The plain structured output's chunks (partial parsed values), then a :class:`ParsedAnswer` holding the
        whole streamed message and the last parsed value (for the record: the router keeps it from the caller)."""
        watch, last = _RawWatch(), None
        for chunk in self.plain.stream(input, watch.watched(config), **kwargs):
            last = chunk
            yield chunk
        yield from watch.closing(last)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        """Async :meth:`stream`."""
        watch, last = _RawWatch(), None
        async with aclosing(self.plain.astream(input, watch.watched(config), **kwargs)) as chunks:
            async for chunk in chunks:
                last = chunk
                yield chunk
        for closing in watch.closing(last):
            yield closing
