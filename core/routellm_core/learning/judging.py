"""Pairwise judges: which of two answers to a prompt is better.

A judge is any callable ``(prompt, answer_a, answer_b) -> outcome`` whose outcome is ``"model_a"``, ``"model_b"``,
``"tie"`` or an :class:`Unparseable` (the judge answered, but with no usable verdict: counted, never stored as a
winner). :class:`PairwiseJudge` builds one from any LLM call, after MT-Bench's pairwise judge (Zheng et al., 2023,
"Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"): a system prompt asking for an impartial comparison that
ends in ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie), the question and both answers between fixed markers, and two calls
with the answers swapped so that position bias cancels: when the two verdicts disagree, the outcome is a tie.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import re
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, TypeVar

from routellm_core.data.records import Winner
from routellm_core.embedding.embedders import valid_unicode
from routellm_core.errors import InvalidInputError, JudgeError

#: A chat message as most LLM clients take it: ``{"role": "system" | "user", "content": "..."}``.
Message: TypeAlias = dict[str, str]
#: An LLM call for :class:`PairwiseJudge`: messages in, reply text out (sync, or async returning an awaitable).
Generate: TypeAlias = Callable[[list[Message]], str] | Callable[[list[Message]], Awaitable[str]]

#: System prompt of :class:`PairwiseJudge` (the structure and verdict format of MT-Bench's pairwise prompt).
PAIRWISE_SYSTEM_PROMPT = (
    "You are an impartial judge. Compare the responses of two AI assistants to the user question shown below and "
    "decide which assistant follows the user's instructions and answers the question better. Weigh helpfulness, "
    "relevance, accuracy, depth, creativity and level of detail. Start by comparing the two responses and explain "
    "your reasoning briefly. Do not let the order in which the responses appear, their length, or the assistants' "
    "names sway your decision; be as objective as possible. After the explanation, give your final verdict in "
    'exactly this format: "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a '
    "tie."
)
#: User message of :class:`PairwiseJudge`; ``{question}``, ``{answer_a}`` and ``{answer_b}`` are filled in.
PAIRWISE_TEMPLATE = (
    "[User Question]\n{question}\n\n"
    "[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]"
)

_VERDICT_RE = re.compile(r"\[\[\s*([ABC])\s*\]\]")
#: A verdict in the order shown -> the winner, when answer_a was shown as assistant A.
_AS_SHOWN: dict[str, Winner] = {"A": "model_a", "B": "model_b", "C": "tie"}
#: The same with the answers swapped (answer_b shown as assistant A).
_SWAPPED: dict[str, Winner] = {"A": "model_b", "B": "model_a", "C": "tie"}


@dataclass(frozen=True)
class Unparseable:
    """The judge replied without one clear verdict; the label is not stored.

    Attributes:
        reason: What was wrong (never quotes the reply).
        replies: The judge's replies, for inspection (may contain the prompt; not in ``repr``, never logged).
    """

    reason: str
    replies: tuple[str, ...] = field(default=(), repr=False)


#: What a judge returns.
JudgeOutcome: TypeAlias = Winner | Unparseable
#: A judge: ``(prompt, answer_a, answer_b) -> "model_a" | "model_b" | "tie" | Unparseable``.
Judge: TypeAlias = Callable[[str, str, str], JudgeOutcome]


def parse_verdict(reply: str) -> Literal["A", "B", "C"] | Unparseable:
    """The verdict in a judge's reply: ``"A"``, ``"B"`` or ``"C"`` (tie), from the ``[[X]]`` markers.

    The reply must hold exactly one distinct marker (repeating it is fine); none, or two different ones (e.g. the
    format instruction echoed back), make it :class:`Unparseable`.
    """
    found = sorted(set(_VERDICT_RE.findall(reply)))
    if len(found) == 1:
        return found[0]  # type: ignore[return-value]
    if not found:
        return Unparseable("the reply holds no [[A]], [[B]] or [[C]] verdict", (reply,))
    return Unparseable(f"the reply holds several different verdicts ({', '.join(found)})", (reply,))


def judge_name(judge: object) -> str:
    """A judge's name for the feedback store: its ``name`` attribute, else its function or class name."""
    name = getattr(judge, "name", None)
    if isinstance(name, str) and name.strip():
        return name
    return str(getattr(judge, "__name__", type(judge).__name__))


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (an ``async def`` function, or an object with one as ``__call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)


_T = TypeVar("_T")


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():  # the awaiting task was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


async def in_daemon_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """``await`` a blocking ``fn(*args)`` run in a new daemon thread (in a copy of the caller's context).

    Unlike ``asyncio.to_thread``, a call that never returns (a hung judge or model) does not hold the interpreter at
    exit: the event loop's default executor and its threads are joined then, daemon threads are not. Cancelling the
    awaiting task abandons the call.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()
    context = contextvars.copy_context()

    def run() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context.run(fn, *args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits for the result
            loop.call_soon_threadsafe(_settle, future, value, error)

    threading.Thread(target=run, name="routellm-blocking-call", daemon=True).start()
    return await future


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n[... truncated]"


#: A bracketed marker in a template's text (``[User Question]``, ``[The End of Assistant A's Answer]``...).
_MARKER_RE = re.compile(r"\[[^\[\]{}\n]+\]")
#: A verdict marker inside a question or an answer, as :func:`parse_verdict` would count it (upper case only:
#: ``[[a]]`` is a nested list in code, and no verdict).
_PLANTED_VERDICT_RE = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def _markers_pattern(template: str) -> re.Pattern[str] | None:
    """The template's own markers, matched in any case and spacing, with or without their articles and with any
    apostrophe (``[end of assistant A’s answer]`` passes for ``[The End of Assistant A's Answer]``); ``None`` when
    the template has none."""
    found = sorted(set(_MARKER_RE.findall(template)), key=len, reverse=True)
    if not found:
        return None

    def word(text: str) -> str:
        # any apostrophe-like mark, or none, or a zero-width character, where the template has an apostrophe
        spelled = r"(?:[^\w\s\[\]［］]|ʼ){0,2}".join(re.escape(part) for part in text.split("'"))
        return rf"(?:{spelled}\s*+)?" if text.lower() in ("the", "a", "an") else rf"{spelled}\s*+"

    spelled = ["".join(word(w) for w in marker[1:-1].split()) for marker in found]
    return re.compile("|".join(rf"[\[［]\s*+{body}[\]］]" for body in spelled), re.IGNORECASE)


def _defanged(text: str, markers: re.Pattern[str] | None) -> str:
    """``text`` that cannot pass for the judge prompt's structure: the template's markers in it shown in parentheses
    (so a question or answer cannot close its section or open another), a verdict marker ``[[A]]`` as ``[A]`` (so a
    judge quoting it adds no second verdict), and lone surrogates as U+FFFD (which model APIs reject)."""
    text = valid_unicode(text).replace("\u200b", "").replace("\u200c", "").replace("\u200d", "").replace("\u2060", "")
    if markers is not None:
        text = markers.sub(lambda m: "(" + m.group(0)[1:-1].strip() + ")", text)
    return _PLANTED_VERDICT_RE.sub(r"[\1]", text)


class PairwiseJudge:
    """An LLM as a pairwise judge, MT-Bench style, asked twice with the answers swapped.

    Args:
        generate: The LLM call: a list of ``{"role", "content"}`` messages (a system and a user message) in, the
            reply text out. An ``async def`` (or any callable returning an awaitable) works too: :meth:`ajudge`
            awaits it, and :meth:`judge` runs it to completion when no event loop is running in the thread.
        name: The judge's name, stored with each label.
        system_prompt: The system message.
        template: The user message, with ``{question}``, ``{answer_a}`` and ``{answer_b}`` fields.
        swap: Ask a second time with the answers swapped (disagreement = tie); ``False`` asks once.
        max_chars: Longer prompts and answers are cut to this many characters (keeping their start).

    Raises:
        InvalidInputError: ``generate`` is not callable, the name is blank, ``template`` lacks a field, or
            ``max_chars`` is not a positive int.
    """

    def __init__(
        self,
        generate: Generate,
        name: str = "judge",
        *,
        system_prompt: str = PAIRWISE_SYSTEM_PROMPT,
        template: str = PAIRWISE_TEMPLATE,
        swap: bool = True,
        max_chars: int = 8000,
    ) -> None:
        if not callable(generate):
            raise InvalidInputError(f"generate must be callable (messages -> str), got {type(generate).__name__}")
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(f"name must be a non-empty string, got {name!r:.60}")
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
            raise InvalidInputError(f"max_chars must be a positive int, got {max_chars!r}")
        for key in ("question", "answer_a", "answer_b"):
            if "{" + key + "}" not in template:
                raise InvalidInputError(f"template must contain the field {{{key}}}")
        try:
            template.format(question="", answer_a="", answer_b="")
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInputError(f"template has fields other than question, answer_a, answer_b: {exc}") from None
        self.generate = generate
        self.name = name
        self.system_prompt = system_prompt
        self.template = template
        self.swap = swap
        self.max_chars = max_chars
        self._markers = _markers_pattern(template)

    def messages(self, prompt: str, answer_a: str, answer_b: str) -> list[Message]:
        """The system and user messages asking which of ``answer_a`` (assistant A) and ``answer_b`` is better.

        The question and answers are untrusted text: the template's markers and ``[[A]]``-style verdicts inside them
        are defanged (see :func:`_defanged`), so they cannot rewrite the prompt's sections or plant a verdict.
        """

        def shown(text: str) -> str:
            return _defanged(_clip(text, self.max_chars), self._markers)

        user = self.template.format(question=shown(prompt), answer_a=shown(answer_a), answer_b=shown(answer_b))
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def _steps(self, prompt: str, answer_a: str, answer_b: str) -> Generator[list[Message], str, JudgeOutcome]:
        """The judging protocol, free of I/O: yields each request, receives each reply, returns the outcome."""
        for i, text in enumerate((prompt, answer_a, answer_b)):
            if not isinstance(text, str):
                raise InvalidInputError(
                    f"{('prompt', 'answer_a', 'answer_b')[i]} must be str, got {type(text).__name__}"
                )
        first_reply = yield self.messages(prompt, answer_a, answer_b)
        first = parse_verdict(first_reply)
        if isinstance(first, Unparseable):
            return first
        if not self.swap:
            return _AS_SHOWN[first]
        second_reply = yield self.messages(prompt, answer_b, answer_a)
        second = parse_verdict(second_reply)
        if isinstance(second, Unparseable):
            return Unparseable(f"swapped order: {second.reason}", (first_reply, second_reply))
        shown, swapped = _AS_SHOWN[first], _SWAPPED[second]
        return shown if shown == swapped else "tie"

    # ---- drivers -------------------------------------------------------------------------------------------
    def _reply(self, value: object) -> str:
        if not isinstance(value, str):
            raise JudgeError(f"judge {self.name!r}: generate returned {type(value).__name__}, expected the reply text")
        return value

    def _failed(self, exc: Exception) -> JudgeError:
        return JudgeError(f"judge {self.name!r}: the model call failed ({type(exc).__name__})")

    def _call(self, messages: list[Message]) -> str:
        try:
            value = self.generate(messages)
            if inspect.isawaitable(value):
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    value = asyncio.run(_await(value))
                else:
                    if inspect.iscoroutine(value):
                        value.close()
                    raise JudgeError(
                        f"judge {self.name!r}: generate is async and an event loop is running in this thread; "
                        "use `await judge.ajudge(...)`"
                    )
        except JudgeError:
            raise
        except Exception as exc:
            raise self._failed(exc) from exc
        return self._reply(value)

    async def _acall(self, messages: list[Message]) -> str:
        try:
            if is_async_callable(self.generate):
                value: Any = await self.generate(messages)  # type: ignore[misc]
            else:  # a blocking call (a local model, a sync client) runs off the event loop, never holding exit
                value = await in_daemon_thread(self.generate, messages)
                if inspect.isawaitable(value):
                    value = await value
        except Exception as exc:
            raise self._failed(exc) from exc
        return self._reply(value)

    def judge(self, prompt: str, answer_a: str, answer_b: str) -> JudgeOutcome:
        """``"model_a"``, ``"model_b"``, ``"tie"`` (including when the swapped verdicts disagree) or Unparseable.

        Raises:
            JudgeError: The model call failed or returned something other than text.
        """
        steps = self._steps(prompt, answer_a, answer_b)
        try:
            request = next(steps)
            while True:
                request = steps.send(self._call(request))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    __call__ = judge

    async def ajudge(self, prompt: str, answer_a: str, answer_b: str) -> JudgeOutcome:
        """Async :meth:`judge`: awaits an async ``generate``, runs a sync one in a daemon thread."""
        steps = self._steps(prompt, answer_a, answer_b)
        try:
            request = next(steps)
            while True:
                request = steps.send(await self._acall(request))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"PairwiseJudge(name={self.name!r}, swap={self.swap})"


async def _await(value: Awaitable[Any]) -> Any:
    return await value


__all__ = [
    "PAIRWISE_SYSTEM_PROMPT",
    "PAIRWISE_TEMPLATE",
    "Generate",
    "Judge",
    "JudgeOutcome",
    "Message",
    "PairwiseJudge",
    "Unparseable",
    "in_daemon_thread",
    "is_async_callable",
    "judge_name",
    "parse_verdict",
]
