"""Local stand-in models for ``routellm ui``: the page works offline, without keys, and shows who answered.

A stand-in is an :class:`~routellm_core.server.upstreams.Upstream` that answers every request at once with a labelled
canned text (``"[demo-strong] A careful, step-by-step answer to: ..."``) and OpenAI's JSON (``usage`` counted in
words), streamed word by word when asked. The router in front of them is real; the answers are not.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

from routellm_core.server.upstreams import Upstream

_WORD = re.compile(r"\S+\s*")


def _question(body: Mapping[str, Any]) -> str:
    for message in reversed(list(body.get("messages") or ())):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content.strip()
            texts = (p.get("text", "") for p in content or () if isinstance(p, Mapping) and p.get("type") == "text")
            return " ".join(t.strip() for t in texts if t.strip())
    return ""


class StandInUpstream(Upstream):
    """A deterministic local model: a labelled answer naming the question, no network.

    Args:
        name: Model name shown in the decision record (``demo-strong``...).
        phrase: How the answer starts (``"A careful, step-by-step answer to"``).
    """

    def __init__(self, name: str, phrase: str) -> None:
        self.name = name
        self.phrase = phrase

    def text(self, body: Mapping[str, Any]) -> str:
        """The answer's text for a request body."""
        question = _question(body)
        shown = question if len(question) <= 200 else question[:200] + "..."
        return f"[{self.name}] {self.phrase}: {shown!r} (a local stand-in: start `routellm serve` for real models)"

    def _usage(self, body: Mapping[str, Any], text: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or () if isinstance(m, dict))
        answer = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}

    async def complete(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A chat completion answering the last user message."""
        text = self.text(body)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.name,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"},
            ],
            "usage": self._usage(body, text),
        }

    async def stream(self, body: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The same answer, one chunk per word."""
        text = self.text(body)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": self.name,
                "choices": [choice],
            }

        words = _WORD.findall(text)
        for i, word in enumerate(words):
            yield chunk({"role": "assistant", "content": word} if i == 0 else {"content": word})
        yield chunk({}, "stop")

    def __repr__(self) -> str:
        return f"StandInUpstream({self.name!r})"


def stand_ins() -> dict[str, StandInUpstream]:
    """The strong and the weak stand-in (``strong=`` and ``weak=`` of ``create_app``)."""
    return {
        "strong": StandInUpstream("demo-strong", "A careful, step-by-step answer to"),
        "weak": StandInUpstream("demo-weak", "A quick answer to"),
    }


__all__ = ["StandInUpstream", "stand_ins"]
