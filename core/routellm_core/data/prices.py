"""Per-model prices: USD per million input / output tokens, from a maintained table, your own prices first.

The table is the ``genai-prices`` package's bundled snapshot (pydantic/genai-prices, MIT; offline: nothing is
fetched unless *you* start its ``UpdatePrices``, whose snapshot it then uses). A model reference may name its
provider, ``"openai:gpt-4o"`` or ``"anthropic/claude-3-5-sonnet-20241022"``, also as LangChain's ``init_chat_model``
and LiteLLM write it (``"google_genai:gemini-2.5-flash"``, ``"mistralai:..."``, ``"xai:..."``, ``"gemini/..."``);
dated versions match their model (``gpt-4o-2024-08-06`` is priced as ``gpt-4o``). A bare AWS Bedrock model id
(``"anthropic.claude-3-5-sonnet-20240620-v1:0"``, ``"us.meta.llama3-1-70b-instruct-v1:0"``, what a ``ChatBedrock``
calls its model) is priced at AWS's price when the table lists it. A hosted open model's bare name
(``"llama-3.3-70b-versatile"``, what a ``ChatGroq`` calls its model) is not priced: the same weights cost what their
host charges, so name the host (``"groq:llama-3.3-70b-versatile"``; the error's "did you mean" does when one host
lists it). Prices given by the caller override the table: a mapping from model name to ``(input_per_mtok,
output_per_mtok)``, looked up by the exact name, then without its provider prefix, then as a key that spells the same
model (:func:`same_spelling`: case, a version's dot or dash, a date on one side only; ``{"claude-sonnet-4.5": ...}``
prices ``claude-sonnet-4-5``, ``{"gpt-4o": ...}`` prices ``gpt-4o-2024-08-06``), where a key with a provider prefix
prices only that provider's model (``{"openai:gpt-5": ...}`` prices the model a ``"openai:gpt-5"`` string built, named
``gpt-5``, never ``azure:gpt-5``).

Example:
    >>> price_of("gpt-4o-mini")
    (0.15, 0.6)
    >>> call_cost("gpt-4o-mini", input_tokens=1_000, output_tokens=500)
    0.00045
"""

from __future__ import annotations

import datetime
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
#: A version's dot (``4.5``, ``3.1``): providers write it as a dash too (Anthropic's ``claude-sonnet-4-5``).
_VERSION_DOT = re.compile(r"(?<=\d)\.(?=\d)")
#: An AWS Bedrock cross-region inference prefix (``us.anthropic.claude-...``, ``global.anthropic.claude-...``).
_BEDROCK_REGION = re.compile(r"^(?:us|us-gov|eu|apac|au|ca|jp|in|global)\.")


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
    """``("openai", "gpt-4o")`` for ``"openai:gpt-4o"`` or ``"openai/gpt-4o"``, the table's id for a prefix it
    knows by another spelling (``"google_genai:..."`` -> ``"google"``); ``(None, model)`` when the prefix is not a
    provider the table knows (``"meta-llama/Llama-3.1-8B"`` keeps its slash)."""
    for sep in (":", "/"):
        head, found, rest = model.partition(sep)
        if found and rest and (provider := _provider_id(head, sep)) is not None:
            return provider, rest
    return None, model


#: Provider prefixes LangChain's ``init_chat_model`` and LiteLLM write for a provider the table names otherwise, by
#: separator: with ``/`` some of these are Hugging Face organisations (``mistralai/Mixtral-8x7B-Instruct-v0.1`` is a
#: repo, which costs what its host charges), so only the prefixes no organisation uses are read with ``/``.
_PROVIDER_ALIASES: dict[str, dict[str, str]] = {
    ":": {
        "google_genai": "google",
        "google_vertexai": "google",
        "google_anthropic_vertex": "google",
        "vertexai": "google",
        "vertex_ai": "google",
        "gemini": "google",
        "mistralai": "mistral",
        "xai": "x-ai",
        "bedrock": "aws",
        "bedrock_converse": "aws",
        "azure_openai": "azure",
        "together_ai": "together",
        "fireworks_ai": "fireworks",
    },
    "/": {"gemini": "google", "vertex_ai": "google", "xai": "x-ai", "bedrock": "aws", "azure": "azure"},
}


@functools.lru_cache(maxsize=256)
def _provider_id(prefix: str, sep: str) -> str | None:
    """The table's provider id for a name prefix written before ``sep``: its id, or one of
    :data:`_PROVIDER_ALIASES`."""
    snapshot = _snapshot()
    head = prefix.strip().lower()
    if snapshot is None or not head:
        return None
    ids = {p.id for p in snapshot.providers}
    if head in ids:
        return head
    alias = _PROVIDER_ALIASES[sep].get(head)
    return alias if alias in ids else None


def _snapshot() -> Any:
    """genai-prices' current snapshot (the bundled one unless the user started its updater), or None if the
    package is not installed (it needs Python 3.11)."""
    try:
        from genai_prices import data_snapshot
    except ImportError:
        return None
    return data_snapshot.get_snapshot()


@functools.lru_cache(maxsize=1)
def _bedrock_vendors() -> frozenset[str]:
    """The vendors of the table's AWS Bedrock ids (``anthropic`` of ``anthropic.claude-...``, ``meta``, ``amazon``)."""
    snapshot = _snapshot()
    aws = next((p for p in snapshot.providers if p.id == "aws"), None) if snapshot is not None else None
    ids = (_BEDROCK_REGION.sub("", m.id.removeprefix("regional.")) for m in aws.models) if aws is not None else ()
    return frozenset(head for head, dot, _ in (i.partition(".") for i in ids) if dot)


def _is_bedrock_id(name: str) -> bool:
    """Whether a name without a provider is an AWS Bedrock model id: ``<vendor>.<model>``, with an optional region
    (``us.anthropic.claude-3-5-sonnet-20240620-v1:0``, ``meta.llama3-1-70b-instruct-v1:0``, ``amazon.nova-pro-v1:0``):
    no other provider names its models so."""
    head, dot, rest = _BEDROCK_REGION.sub("", name.strip().lower()).partition(".")
    return bool(dot and rest) and head in _bedrock_vendors()


@functools.lru_cache(maxsize=1024)
def _table_model(model: str) -> tuple[Any, Any] | None:
    """``(provider, model info)`` of the table's entry for a model reference (a bare Bedrock id: AWS's), or None."""
    snapshot = _snapshot()
    if snapshot is None:
        return None
    provider, name = split_provider(model)
    if provider is None and _is_bedrock_id(name):
        provider = "aws"
    candidates = [name]
    undated = _DATE_SUFFIX.sub("", name)
    if undated != name:
        candidates.append(undated)
    for ref in candidates:
        try:
            found = snapshot.find_provider_model(ref, None, provider, None)
        except LookupError:
            continue
        return found if _entry_prices(name, ref, provider is None, *found) else None
    return None


#: A size (``8b``, ``1.5b``, ``8x7b``) or tier word in a model name: a model that has one its entry lacks is another
#: model (``gemini-1.5-flash-8b`` is not ``gemini-1.5-flash``, ``deepseek-r1-distill-llama-70b`` not DeepSeek-R1).
_VARIANT = re.compile(
    r"(?<![a-z0-9.])(\d+(?:[.p]\d+)?b|\d+x\d+b)(?![a-z0-9])"
    r"|(?<![a-z])(mini|nano|micro|tiny|lite|flash|small|medium|large|pro|plus|max|ultra|haiku|sonnet|opus|instant"
    r"|turbo|distill|coder)(?![a-z])"
)


def variant_words(text: str) -> set[str]:
    """The size and tier words of a model name (see :data:`_VARIANT`)."""
    return {"".join(m) for m in _VARIANT.findall(text.lower().replace("_", "-"))}


def _clause_texts(clause: Any, *, equals_only: bool = False) -> list[str]:
    """The names a table entry's match clause spells (only its exact ``equals`` ones with ``equals_only``)."""
    if clause is None:
        return []
    parts = getattr(clause, "or_", None) or getattr(clause, "and_", None)
    if parts is not None:
        return [text for part in parts for text in _clause_texts(part, equals_only=equals_only)]
    if equals_only:
        return [clause.equals.lower()] if hasattr(clause, "equals") else []
    return [
        str(value).lower()
        for key in ("equals", "starts_with", "ends_with", "contains")
        if (value := getattr(clause, key, None)) is not None
    ]


def _entry_prices(name: str, ref: str, bare: bool, provider: Any, info: Any) -> bool:
    """Whether the table entry found for ``ref`` (``name``, or ``name`` without its date) prices ``name``.

    Not when ``name`` has a size or tier word the entry does not spell (a prefix or substring clause caught another
    model: ``gemini-1.5-flash-8b``), when ``name``'s date was dropped for an entry that lists its dated snapshots, none
    of that date nor all earlier (``mistral-large-2402`` is not ``mistral-large``, listed as ``-2407`` and ``-2411``;
    ``gpt-4.1-2025-06-01`` is ``gpt-4.1``, listed as ``-2025-04-14``), or when a bare name is an open model's host's
    exact id that this entry does not list (``mixtral-8x7b-32768`` is Groq's, not Mistral's ``mixtral-8x7b``).
    """
    lower, exact = name.lower(), {info.id.lower(), *_clause_texts(info.match, equals_only=True)}
    if lower in exact:
        return True
    listed = {match.group(0) for text in exact if (match := _DATE_SUFFIX.search(text))}
    date = _DATE_SUFFIX.search(lower)
    if ref != name and listed and date is not None and date.group(0) not in listed:
        # a later full date is a newer snapshot at the entry's price; an earlier one, or a bare ``-0613`` / ``-2402``
        # (no year, or a year without a day), may be another generation
        when, known = _full_date(date.group(0)), {_full_date(text) for text in listed} - {None}
        if when is None or not known or when < min(known):  # type: ignore[type-var]
            return False
    spelled = {info.id.lower(), *_clause_texts(info.match)}
    if not variant_words(name) <= set().union(*(variant_words(text) for text in spelled)):
        return False
    return not (bare and _listed_by_open_host(lower, provider.id))


def _full_date(suffix: str) -> int | None:
    """``yyyymmdd`` of a date suffix that gives year, month and day (``-2024-08-06``, ``-20241022``), else None."""
    digits = suffix.strip("-").replace("-", "")
    return int(digits) if len(digits) == 8 else None


@functools.lru_cache(maxsize=1024)
def _listed_by_open_host(name: str, found_by: str) -> bool:
    """Whether a host of :data:`_OPEN_MODEL_HOSTS` other than ``found_by`` lists ``name`` exactly (its id)."""
    snapshot = _snapshot()
    return snapshot is not None and any(
        name in {m.id.lower() for m in p.models}
        for p in snapshot.providers
        if p.id in _OPEN_MODEL_HOSTS and p.id != found_by
    )


#: Hosts whose LangChain chat models (``ChatTogether``, ``ChatGroq``...) name their model without the host.
_OPEN_MODEL_HOSTS = ("together", "groq", "fireworks", "cerebras")


@functools.lru_cache(maxsize=256)
def _sole_host(model: str) -> str | None:
    """The one host of :data:`_OPEN_MODEL_HOSTS` whose table lists ``model``, a name without a provider
    (``"llama-3.3-70b-versatile"``: ``"groq"``); None when none or several do. Only named in a hint: the same
    weights may be served elsewhere, or by you."""
    snapshot = _snapshot()
    if snapshot is None:
        return None
    hosts = {
        p.id
        for p in snapshot.providers
        if p.id in _OPEN_MODEL_HOSTS and p.find_model(model.lower(), all_providers=snapshot.providers)
    }
    return hosts.pop() if len(hosts) == 1 else None


def _table_provider(model: str) -> str | None:
    """The provider the table finds a bare model name under (``gpt-5``: ``openai``), or None."""
    found = _table_model(model)
    return None if found is None else found[0].id


def same_spelling(a: str, b: str) -> bool:
    """Whether two model names without a provider prefix spell one model: equal once case, ``_`` for ``.``, a
    version's dot (``claude-sonnet-4.5`` is ``claude-sonnet-4-5``) and a ``-latest`` / ``:latest`` / ``:free`` suffix
    are set aside, with a date on one side only (``gpt-4o`` and ``gpt-4o-2024-08-06``). Two different dates, sizes
    (``8b`` / ``70b``) or ``:tag`` s are different models. The rule of
    :func:`routellm_core.routers.profiles.same_model` (which also strips its provider prefixes) for names whose provider
    :func:`split_provider` has taken off already."""

    def form(name: str) -> tuple[str, str | None]:
        text = re.sub(r"(?::latest|:free|-latest)$", "", name.strip().lower()).replace("_", ".")
        text = _VERSION_DOT.sub("-", text)
        match = _DATE_SUFFIX.search(text)
        return (text[: match.start()], match.group(0)) if match else (text, None)

    (base_a, date_a), (base_b, date_b) = form(a), form(b)
    return base_a == base_b and (date_a is None or date_b is None or date_a == date_b)


def _user_price(model: str, prices: Mapping[str, Any] | None) -> Price | None:
    """Your price of ``model``: by its exact name, then without its provider prefix, then by the keys that spell the
    same model (:func:`same_spelling`), the one spelled like it first, then one of the same date, then one with a date
    on one side only. A key with a provider prefix prices only that provider's model (``"openai:gpt-5"`` prices a
    model named ``"gpt-5"`` or ``"openai/gpt-5"``, never ``"azure:gpt-5"``); a bare key any provider's.

    Raises:
        InvalidInputError: A malformed price, or two keys naming the model equally closely at different prices (two
            dated keys at different prices for a model without a date leave it to the table instead).
    """
    if not prices:
        return None
    if model in prices:
        return _check_price(model, prices[model])
    provider, bare = split_provider(model)
    if bare in prices:
        return _check_price(bare, prices[bare])
    # how closely each key spells the model: 0 with a provider prefix only, 1 same date, 2 a date on one side only
    closeness: dict[str, tuple[int, str | None, str]] = {}
    for key in prices:
        by, name = split_provider(key)
        if name == bare:
            closeness[key] = (0, by, name)
        elif same_spelling(name, bare):
            same_date = bool(_DATE_SUFFIX.search(name)) == bool(_DATE_SUFFIX.search(bare))
            closeness[key] = (1 if same_date else 2, by, name)

    def owns(by: str | None, name: str) -> bool:
        # a key with a provider prefix prices the model of that provider only: a bare name is the table's
        # provider's, under its own spelling or the key's (``gpt-4-1`` is listed as ``gpt-4.1``); looked up only
        # when some key spells this model with a prefix
        return by is None or by == (provider or _table_provider(bare) or _table_provider(name))

    found = {key: rank for key, (rank, by, name) in closeness.items() if owns(by, name)}
    if not found:
        return None
    best = min(found.values())
    spelled = {key: _check_price(key, prices[key]) for key, rank in found.items() if rank == best}
    if len(set(spelled.values())) > 1:
        if best == 2:  # dated snapshots at their own prices name no price for the undated model: the table's
            return None
        raise InvalidInputError(
            f"prices name {model!r} as {sorted(spelled)} at different prices: key the price by the model's name"
        )
    return next(iter(spelled.values()))


def _when(at: object) -> datetime.datetime:
    """``at`` checked (a timezone-aware datetime), or now.

    Raises:
        InvalidInputError: Anything else (a naive datetime would be read in an unknown zone).
    """
    if at is None:
        return datetime.datetime.now(tz=datetime.timezone.utc)
    if not isinstance(at, datetime.datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise InvalidInputError(f"at= must be a timezone-aware datetime (e.g. with tz=timezone.utc), got {at!r:.80}")
    return at


def price_of(
    model: str, prices: Mapping[str, Any] | None = None, *, at: datetime.datetime | None = None
) -> Price | None:
    """USD per million ``(input, output)`` tokens of ``model``: ``prices`` first, then the maintained table.

    Tiered prices (e.g. Gemini above 128k prompt tokens) give their base tier here; :func:`call_cost` applies the
    tier a call falls in. The table's prices may depend on the time of the request (DeepSeek's off-peak hours, a
    provider's price change on a date): they are the prices at ``at``.

    Args:
        model: A model name, optionally with its provider (``"openai:gpt-4o"``, ``"anthropic/claude-3-haiku"``).
        prices: Your prices, model name -> ``(input_per_mtok, output_per_mtok)``; they override the table.
        at: When the request is made (timezone-aware); now when ``None``.

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
    price = found[1].get_prices(_when(at))
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
    """The priced name (yours or the table's) that an unpriced ``model`` most likely mistypes, provider prefix removed
    (then its date; :func:`~routellm_core.errors.close_name`), never one of another size or tier (``8b``, ``mini``), or
    the host-prefixed name of a bare model that one host's table lists; None when none is close."""
    provider, bare = split_provider(model)
    mine = sorted({split_provider(name)[1] for name in prices or {}})
    if provider is None and (host := _sole_host(bare)) is not None:  # a hosted model named without its host
        return f"{host}:{bare}"
    variants = variant_words(bare)  # a name with a size or tier is not hinted another's; a typo in one is no tier
    names = [name for name in [*mine, *_table_names(provider)] if not variants or variant_words(name) == variants]
    undated = _DATE_SUFFIX.sub("", bare)
    close = close_name(bare, names)
    if close is None and price_of(f"{provider}:{undated}" if provider else undated) is None:  # else: not its date
        close = close_name(undated, names)
    if close is None or close in mine:
        return close
    return close if price_of(f"{provider}:{close}" if provider else close) is not None else None


def unpriced_hint(models: Sequence[str], prices: Mapping[str, Any] | None = None) -> str:
    """``" (did you mean 'gpt-4o-mini'?)"`` for the unpriced ``models`` a priced name is close to (naming each
    model when there are several); ``""`` when none is. Without the table (genai-prices needs Python 3.11), says
    that instead."""
    if _snapshot() is None:
        return " (the price table, the genai-prices package, is not installed: it needs Python 3.11 or later)"
    close = {model: close_price(model, prices) for model in models}
    found = {model: name for model, name in close.items() if name is not None}
    if not found:
        return ""
    if len(models) == 1:
        return f" (did you mean {found[models[0]]!r}?)"
    return " (did you mean " + ", ".join(f"{name!r} for {model!r}" for model, name in found.items()) + "?)"


def call_cost(
    model: str,
    input_tokens: float,
    output_tokens: float,
    prices: Mapping[str, Any] | None = None,
    *,
    at: datetime.datetime | None = None,
) -> float | None:
    """Price of one call in USD: ``prices`` (linear), else the table (its tiers applied), else None.

    Args:
        model: As for :func:`price_of`.
        input_tokens: Prompt tokens of the call.
        output_tokens: Completion tokens of the call.
        prices: Your prices; they override the table.
        at: When the call was made (timezone-aware; the table's prices at that time); now when ``None``.

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
    if price_of(model, at=at) is None:
        return None
    from genai_prices import Usage

    provider, info = _table_model(model)  # type: ignore[misc]
    usage = Usage(input_tokens=round(counts[0]), output_tokens=round(counts[1]))
    return float(info.calc_price(usage, provider, genai_request_timestamp=_when(at)).total_price)


__all__ = [
    "Price",
    "call_cost",
    "close_price",
    "price_of",
    "same_spelling",
    "split_provider",
    "unpriced_hint",
    "variant_words",
]
