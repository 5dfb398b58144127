"""Per-model prices: USD per million input / output tokens, from a maintained table, your own prices first.

The table is the ``genai-prices`` package's bundled snapshot (pydantic/genai-prices, MIT; offline: nothing is
fetched unless *you* start its ``UpdatePrices``, whose snapshot it then uses). A model reference may name its
provider, ``"openai:gpt-4o"`` or ``"anthropic/claude-3-5-sonnet-20241022"``; dated versions match their model
(``gpt-4o-2024-08-06`` is priced as ``gpt-4o``). Prices given by the caller override the table: a mapping from model
name to ``(input_per_mtok, output_per_mtok)``, looked up by the exact name, then without its provider prefix.

Example:
    >>> price_of("gpt-4o-mini")
    (0.15, 0.6)
    >>> call_cost("gpt-4o-mini", input_tokens=1_000, output_tokens=500)
    0.00045
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from routellm_core.errors import InvalidInputError, close_name

#: ``(input, output)`` USD per million tokens.
Price = tuple[float, float]
#: A dated suffix the table may not list (``-2024-08-06``, ``-20241022``, ``-0125``): retried without it.
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{2}-\d{2}-\d{2}|\d{4})$")


def _check_price(model: str, value: Any) -> Price:
    try:
        p_in, p_out = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"price of {model!r} must be (input_per_mtok, output_per_mtok) in USD, got {value!r:.80}"
        ) from None
    if not (math.isfinite(p_in) and math.isfinite(p_out)) or p_in < 0 or p_out < 0:
        raise InvalidInputError(f"price of {model!r} must be two finite, non-negative numbers, got {value!r:.80}")
    return p_in, p_out


def split_provider(model: str) -> tuple[str | None, str]:
    """``("openai", "gpt-4o")`` for ``"openai:gpt-4o"`` or ``"openai/gpt-4o"``; ``(None, model)`` when the prefix
    is not a provider the table knows (``"meta-llama/Llama-3.1-8B"`` keeps its slash)."""
    for sep in (":", "/"):
        head, found, rest = model.partition(sep)
        if found and rest and head.lower() in _provider_ids():
            return head.lower(), rest
    return None, model


@functools.lru_cache(maxsize=1)
def _provider_ids() -> frozenset[str]:
    snapshot = _snapshot()
    return frozenset() if snapshot is None else frozenset(p.id for p in snapshot.providers)


def _snapshot() -> Any:
    """genai-prices' current snapshot (the bundled one unless the user started its updater), or None if the
    package is not installed (it needs Python 3.11)."""
    try:
        from genai_prices import data_snapshot
    except ImportError:
        return None
    return data_snapshot.get_snapshot()


@functools.lru_cache(maxsize=1024)
def _table_model(model: str) -> tuple[Any, Any] | None:
    """``(provider, model info)`` of the table's entry for a model reference, or None."""
    snapshot = _snapshot()
    if snapshot is None:
        return None
    provider, name = split_provider(model)
    candidates = [name]
    undated = _DATE_SUFFIX.sub("", name)
    if undated != name:
        candidates.append(undated)
    for ref in candidates:
        try:
            return snapshot.find_provider_model(ref, None, provider, None)
        except LookupError:
            continue
    return None


def _user_price(model: str, prices: Mapping[str, Any] | None) -> Price | None:
    if not prices:
        return None
    if model in prices:
        return _check_price(model, prices[model])
    _, bare = split_provider(model)
    if bare in prices:
        return _check_price(bare, prices[bare])
    return None


def price_of(model: str, prices: Mapping[str, Any] | None = None) -> Price | None:
    """USD per million ``(input, output)`` tokens of ``model``: ``prices`` first, then the maintained table.

    Tiered prices (e.g. Gemini above 128k prompt tokens) give their base tier here; :func:`call_cost` applies the
    tier a call falls in.

    Args:
        model: A model name, optionally with its provider (``"openai:gpt-4o"``, ``"anthropic/claude-3-haiku"``).
        prices: Your prices, model name -> ``(input_per_mtok, output_per_mtok)``; they override the table.

    Returns:
        The two prices, or None when neither ``prices`` nor the table knows the model.

    Raises:
        InvalidInputError: ``model`` is not a non-empty string, or a price in ``prices`` is malformed.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidInputError(f"a model name must be a non-empty string, got {model!r:.80}")
    mine = _user_price(model, prices)
    if mine is not None:
        return mine
    found = _table_model(model)
    if found is None:
        return None
    from datetime import datetime, timezone

    price = found[1].get_prices(datetime.now(tz=timezone.utc))
    p_in, p_out = (getattr(price, key) for key in ("input_mtok", "output_mtok"))
    if p_in is None or p_out is None:
        return None
    return float(getattr(p_in, "base", p_in)), float(getattr(p_out, "base", p_out))


@functools.lru_cache(maxsize=64)
def _table_names(provider: str | None) -> tuple[str, ...]:
    """The table's model names (of ``provider``'s models only when given), without its prefix patterns."""
    snapshot = _snapshot()
    if snapshot is None:
        return ()
    return tuple(
        sorted(
            {
                m.id
                for p in snapshot.providers
                if provider in (None, p.id)
                for m in p.models
                if ":" not in m.id and not m.id.endswith(("-", "."))
            }
        )
    )


def close_price(model: str, prices: Mapping[str, Any] | None = None) -> str | None:
    """The priced name (yours or the table's) that an unpriced ``model`` most likely mistypes, provider prefix and
    date removed (:func:`~routellm_core.errors.close_name`); None when none is close."""
    provider, bare = split_provider(model)
    mine = sorted({split_provider(name)[1] for name in prices or {}})
    close = close_name(_DATE_SUFFIX.sub("", bare), [*mine, *_table_names(provider)])
    if close is None or close in mine:
        return close
    return close if price_of(f"{provider}:{close}" if provider else close) is not None else None


def unpriced_hint(models: Sequence[str], prices: Mapping[str, Any] | None = None) -> str:
    """``" (did you mean 'gpt-4o-mini'?)"`` for the unpriced ``models`` a priced name is close to (naming each
    model when there are several); ``""`` when none is."""
    close = {model: close_price(model, prices) for model in models}
    found = {model: name for model, name in close.items() if name is not None}
    if not found:
        return ""
    if len(models) == 1:
        return f" (did you mean {found[models[0]]!r}?)"
    return " (did you mean " + ", ".join(f"{name!r} for {model!r}" for model, name in found.items()) + "?)"


def call_cost(
    model: str, input_tokens: float, output_tokens: float, prices: Mapping[str, Any] | None = None
) -> float | None:
    """Price of one call in USD: ``prices`` (linear), else the table (its tiers applied), else None.

    Args:
        model: As for :func:`price_of`.
        input_tokens: Prompt tokens of the call.
        output_tokens: Completion tokens of the call.
        prices: Your prices; they override the table.

    Raises:
        InvalidInputError: A token count that is negative or not finite, or a malformed price.
    """
    counts = []
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{name} must be a number, got {value!r:.80}") from None
        if not math.isfinite(v) or v < 0:
            raise InvalidInputError(f"{name} must be finite and non-negative, got {value!r:.80}")
        counts.append(v)
    mine = _user_price(model, prices)
    if mine is not None:
        return (counts[0] * mine[0] + counts[1] * mine[1]) / 1e6
    if price_of(model) is None:
        return None
    from genai_prices import Usage

    provider, info = _table_model(model)  # type: ignore[misc]
    usage = Usage(input_tokens=round(counts[0]), output_tokens=round(counts[1]))
    return float(info.calc_price(usage, provider).total_price)


__all__ = ["Price", "call_cost", "close_price", "price_of", "split_provider", "unpriced_hint"]
