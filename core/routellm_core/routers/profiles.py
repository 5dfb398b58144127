"""Per-model profiles by name: resolving provider names and dated versions, and priors for unknown models.

A router that profiles models (the ``difficulty`` router) stores them under the names its training data used
(``gpt-4o-2024-08-06``, ``claude-3-5-sonnet-20240620``, ``Meta-Llama-3.1-70B-Instruct``). Users name models the way
their provider does: ``openai:gpt-4o``, ``anthropic/claude-3-5-sonnet-20241022``, ``gpt-4o-mini``.
:func:`resolve_model` maps such a name onto a profiled one:

1. the exact name, then the same name in another case;
2. :data:`ALIASES` (a few names whose key alone does not find the model; a dated name only by its own date:
   ``mistral-large-2407`` is Mistral Large 2, ``mistral-large-2402`` and ``-2512`` are other generations);
3. the name's *key* (:func:`model_key`: lower case, provider prefix, ``@host`` and ``:tag`` suffixes, a date or
   ``-latest`` suffix removed, ``_`` read as ``.`` and a version's ``.`` as ``-``: ``claude-sonnet-4.5`` is
   ``claude-sonnet-4-5``) against the profiled names' keys. Several profiled versions
   with the same key (``gpt-4o-2024-05-13``, ``gpt-4o-2024-08-06``): the latest dated on or before the name's own
   date, else the earliest after it; an undated name takes the latest; then the one spelled like the key. A
   profile served by a named host (``...@hyperbolic``) comes after the plain one.

A ``:tag`` that gives a size (Ollama's ``deepseek-coder-v2:16b``) must be the profiled model's (its name's, or
:data:`SIZES`): another size is another model. Nothing else is guessed: ``o1`` is not ``o1-preview``, and ``gpt-4o``
is not ``gpt-4o-mini``. An unknown model needs a :class:`ModelPrior`: "like model X" (X's profile), or a public
benchmark score, placed against the scores of profiled models on the same benchmark (``reference``) when given.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from routellm_core.data.prices import same_spelling, variant_words
from routellm_core.errors import InvalidInputError, close_name


class UnknownModelError(InvalidInputError):
    """A model name that no profile answers to, and no prior was stated for."""


#: Names whose key does not reach the profiled model on its own: name key -> profiled name.
ALIASES: dict[str, str] = {
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-4-1106": "gpt-4-1106-preview",
    "mistral-large": "Mistral-Large-2",
    "mistral-large-2407": "Mistral-Large-2",
    "mistral-large-2411": "Mistral-Large-2",
    "mistral-large-instruct-2407": "Mistral-Large-2",
    "mistral-large-instruct-2411": "Mistral-Large-2",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mixtral-8x7b-instruct": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "open-mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "claude-3.5-sonnet": "claude-3-5-sonnet-20240620",
    "llama-3.1-70b-instruct": "Meta-Llama-3.1-70B-Instruct",
    "llama-3.1-405b-instruct": "Llama-3.1-405B-Inst-fp8",
    "llama-3-70b-instruct": "Meta-Llama-3-70B-Instruct",
    "llama-3-8b-instruct": "Meta-Llama-3-8B-Instruct",
}
_PROVIDERS = (
    "openai",
    "anthropic",
    "google",
    "google_genai",
    "google-genai",
    "vertexai",
    "gemini",
    "mistral",
    "mistralai",
    "meta",
    "meta-llama",
    "together",
    "groq",
    "fireworks",
    "openrouter",
    "deepseek",
    "deepseek-ai",
    "nvidia",
    "cohere",
    "bedrock",
    "azure",
    "azure_openai",
    "ollama",
    "qwen",
    "alibaba",
    "01-ai",
    "microsoft",
)
_DATE = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{2}-\d{2}-\d{2}|\d{4})$")
#: A version's dot (``4.5``, ``3.1``): providers write it as a dash too (Anthropic's ``claude-sonnet-4-5``).
_VERSION_DOT = re.compile(r"(?<=\d)\.(?=\d)")


def _date_value(text: str) -> int | None:
    """A sortable ``yyyymmdd`` for a full date suffix; ``mmdd`` / ``yymm`` suffixes are not comparable: None."""
    digits = text.replace("-", "")
    if len(digits) == 8:
        return int(digits)
    if len(digits) == 6:
        return 20_000_000 + int(digits)
    return None


def _without_provider(name: str) -> str:
    """``name`` in lower case without its provider prefixes (``"together:meta-llama/..."`` names two)."""
    text = name.strip().lower()
    stripped = True
    while stripped:
        stripped = False
        for sep in (":", "/"):
            head, found, rest = text.partition(sep)
            if found and rest and head in _PROVIDERS:
                text, stripped = rest, True
                break
    return text


def same_model(a: str, b: str) -> bool:
    """Whether two names spell one model: :func:`~routellm_core.data.prices.same_spelling` once provider prefixes are
    set aside (case, ``_`` for ``.``, a version's dot, a ``-latest`` / ``:latest`` / ``:free`` suffix and a date on one
    side only do not tell models apart; two dates, ``:tag`` sizes or ``@host`` s do; :func:`model_key` ignores those,
    to find a profile)."""
    return same_spelling(_without_provider(a), _without_provider(b))


@functools.lru_cache(maxsize=4096)  # resolving a name splits every profiled name: they repeat
def _split(name: str, *, dots: bool = True) -> tuple[str, str | None, bool]:
    """``(key, date suffix or None, served by a named host)`` of a model name (``dots=False``: its version dots
    kept, the key as the name spells it)."""
    text = _without_provider(name)
    hosted = "@" in text
    text = text.split("@", 1)[0]
    if ":" in text:  # openrouter / ollama tags: ":free", ":latest", ":8b"
        text = text.split(":", 1)[0]
    text = text.replace("_", ".")
    date = None
    match = _DATE.search(text)
    if match:
        date = match.group(1)
        text = text[: match.start()]
    text = text.removesuffix("-latest")
    return _VERSION_DOT.sub("-", text) if dots else text, date, hosted


def model_key(name: str) -> str:
    """The name as :func:`resolve_model` compares it (see the module docstring)."""
    return _split(name)[0]


def resolve_model(name: str, known: Sequence[str]) -> str | None:
    """The profiled name among ``known`` that ``name`` refers to, or None (module docstring: the rules)."""
    if name in known:
        return name
    lower = {k.lower(): k for k in known}
    if name.strip().lower() in lower:
        return lower[name.strip().lower()]
    found = _resolve(name, known)
    size = _tag_size(name)
    if found is None or size is None or size in _sizes(found):
        return found
    return None  # ``deepseek-coder-v2:16b`` (the Lite) is not the 236B ``DeepSeek-Coder-V2``


def _resolve(name: str, known: Sequence[str]) -> str | None:
    """:func:`resolve_model` from its step 2 on, a ``:tag`` size left to it (among profiles of one key, those of
    another size are passed over: ``llama3.1:70b`` beside ``llama3.1:8b``)."""
    key, date, _ = _split(name)
    spelled_key = _split(name, dots=False)[0]
    alias = _alias_keys().get(f"{key}-{date}" if date else key)  # an alias names one version: not another date's
    if alias in known:
        return alias
    size = _tag_size(name)
    candidates = [
        (k, *_split(k)[1:])
        for k in known
        if model_key(k) == key and (size is None or size in _sizes(k) or not _sizes(k))
    ]
    if not candidates:
        return None
    plain = [c for c in candidates if not c[2]] or candidates
    wanted = _date_value(date) if date else None

    def when(c: tuple[str, str | None, bool]) -> int:
        return (_date_value(c[1]) or 0) if c[1] else 0

    def rank(c: tuple[str, str | None, bool]) -> tuple[int, bool, str]:  # spelled like the key first, then by name
        return when(c), c[0].lower() == spelled_key, c[0]

    if wanted is not None:
        before = [c for c in plain if when(c) <= wanted]
        if before:
            return max(before, key=rank)[0]
        return min(plain, key=lambda c: (when(c), c[0].lower() != spelled_key, c[0]))[0]
    return max(plain, key=rank)[0]


def labelled_profile(name: str, known: Sequence[str]) -> str | None:
    """The profiled name among ``known`` that labels of ``name`` teach: the one :func:`resolve_model` finds where
    ``name`` spells that very model (:func:`same_model`: a provider prefix, case, whitespace, a version's dot, a date
    on one side only; or an :data:`ALIASES` entry), else None: no profile, or another version of one
    (``gpt-4o-2024-11-20`` beside ``gpt-4o-2024-08-06``), which is a model of its own."""
    found = resolve_model(name, known)
    if found is None or found == name or same_model(name, found):
        return found
    key, date, _ = _split(name)
    return found if _alias_keys().get(f"{key}-{date}" if date else key) == found else None


def profile_names(names: Iterable[str], known: Sequence[str]) -> dict[str, str]:
    """The profile each labelled model name teaches: a profiled model it spells (:func:`labelled_profile`), else one
    new profile per model whatever the spellings of its labels (``anthropic/claude-sonnet-4.5`` and
    ``claude-sonnet-4-5`` are one), named by a spelling without a provider prefix or date where there is one
    (stripped; the first in lower-case order). Linear in the names: each is compared with ``known`` and with the
    new profiles of its key only."""
    out: dict[str, str] = {}
    new: dict[str, dict[str | None, list[str]]] = {}  # key -> date -> the new profiles
    dated: dict[str, str] = {}  # an undated new profile -> the one date that joined it

    def order(n: str) -> tuple[bool, bool, tuple[int, ...], str, str]:
        # a spelling without a provider prefix or date names a profile; among dated ones the latest comes first, so
        # an undated name's profile is joined by the latest date (as resolve_model reads an undated name)
        date = _split(n)[1]
        latest_first = tuple(-ord(c) for c in date) if date else ()
        return _without_provider(n) != n.strip().lower(), date is not None, latest_first, n.strip().lower(), n

    for name in sorted(set(names), key=order):
        target = labelled_profile(name, known)
        if target is None:
            key, date, _ = _split(name)
            dates = new.setdefault(key, {})
            # one model: the same date, or a date on one side only (same_model), an undated profile joining one date
            if date is None:  # an undated profile it spells, else the dated one it reads as
                target = labelled_profile(name, dates.get(None, [])) or labelled_profile(
                    name, [n for d in dates for n in dates[d]]
                )
            else:
                alike = dates.get(date, []) + [n for n in dates.get(None, []) if dated.get(n, date) == date]
                target = labelled_profile(name, alike)
            if target is None:
                target = name.strip()
                dates.setdefault(date, []).append(target)
            elif date is not None and target in dates.get(None, []):
                dated[target] = date
        out[name] = target
    return out


#: A parameter count (``8b``, ``1.5b``, ``8x7b``) in a model name or tag.
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?b|\d+x\d+b)(?![a-z0-9])")
#: The parameter counts of profiled models whose names do not say it.
SIZES: dict[str, str] = {
    "DeepSeek-Coder-V2": "236b",
    "deepseek-v2-chat-0628": "236b",
    "deepseek-v2-coder-0724": "236b",
    "deepseek-v2.5-0908": "236b",
    "Mistral-Large-2": "123b",
    "c4ai-command-r-v01": "35b",
    "jamba-1.5-large": "398b",
}


def _tag_size(name: str) -> str | None:
    """The size a ``:tag`` names (Ollama's ``deepseek-coder-v2:16b``, ``qwen2.5:7b-instruct-q4_K_M``), or None."""
    _, colon, tag = _without_provider(name).split("@", 1)[0].partition(":")
    match = _SIZE.search(tag) if colon else None
    return match.group(1) if match else None


def _sizes(profiled: str) -> set[str]:
    """The sizes a profiled name spells, or its :data:`SIZES` entry."""
    found = set(_SIZE.findall(profiled.lower().replace("_", ".")))
    return found | ({SIZES[profiled]} if profiled in SIZES else set())


@functools.lru_cache(maxsize=1)
def _alias_keys() -> dict[str, str]:
    """:data:`ALIASES` (written as keys already) with a version's dot read as a dash (``claude-3.5-sonnet`` is found
    as ``claude-3-5-sonnet`` too). Not :func:`model_key`: it would read ``-1106`` in ``gpt-4-1106`` as a date and
    send every ``gpt-4`` to GPT-4 Turbo."""
    return {_VERSION_DOT.sub("-", alias.lower()): target for alias, target in ALIASES.items()}


def close_model(name: str, known: Sequence[str]) -> str | None:
    """The profiled model (or :data:`ALIASES` name) that ``name``, which resolves to none, most likely mistypes: keys
    compared (provider prefix and date removed; :func:`~routellm_core.errors.close_name`), the profiled spelling
    given where it is the key's, never one of another size or tier (``deepseek-coder-v2:16b`` is not the 236B
    ``DeepSeek-Coder-V2``, ``Phi-3-medium`` not ``Phi-3-mini``); None when none is close."""
    spelled = {k.lower(): k for k in known}
    keys = {_split(k, dots=False)[0]: k for k in known}
    keys.update({alias: target for alias, target in ALIASES.items() if target in known})
    size = _tag_size(name)
    wanted = variant_words(_split(name, dots=False)[0]) | ({size} if size else set())  # a typo in a tier is no tier
    alike = [k for k, profiled in keys.items() if not wanted or variant_words(k) | _sizes(profiled) == wanted]
    return close_name(_split(name, dots=False)[0], sorted(spelled.get(key, key) for key in alike))


@dataclass(frozen=True)
class ModelPrior:
    """What to assume about a model the router has no profile for, until labels teach it.

    Give exactly one of ``like`` and ``score``.

    Attributes:
        like: A profiled model (any name :func:`resolve_model` resolves) whose profile the new model starts from.
        score: A public benchmark score of the new model, as a fraction in (0, 1) (e.g. MMLU accuracy 0.82).
        reference: The same benchmark's scores of some profiled models (name -> fraction): the new model is
            placed among them (their logit accuracies on the router's training traffic against their logit scores,
            a least-squares line; one reference shifts by the logit difference) and takes the profiles of the two
            around it, mixed in proportion (the nearest one's beyond them). Without it, ``score`` is read as the
            accuracy on the router's own training traffic, with the shape of the profiles nearest that accuracy.
    """

    like: str | None = None
    score: float | None = None
    reference: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.like is None) == (self.score is None):
            raise InvalidInputError("a ModelPrior takes exactly one of like='<profiled model>' and score=<fraction>")
        if self.like is not None and (not isinstance(self.like, str) or not self.like.strip()):
            raise InvalidInputError(f"ModelPrior.like must name a profiled model, got {self.like!r:.80}")
        for what, value in [("score", self.score), *((f"reference[{k!r}]", v) for k, v in self.reference.items())]:
            if value is None:
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 < float(value) < 1.0:
                raise InvalidInputError(
                    f"ModelPrior.{what} must be a fraction strictly between 0 and 1 (e.g. 0.82 for 82%), "
                    f"got {value!r:.80}"
                )
        if self.reference and self.score is None:
            raise InvalidInputError("ModelPrior.reference places a score: give score= with it")

    @classmethod
    def of(cls, prior: ModelPrior | str, name: str = "") -> ModelPrior:
        """``prior`` as a :class:`ModelPrior` (parsed when written: :meth:`parse`).

        Raises:
            InvalidInputError: Neither a ModelPrior nor a written prior.
        """
        if isinstance(prior, ModelPrior):
            return prior
        if isinstance(prior, str):
            return cls.parse(prior, name)
        raise InvalidInputError(f"the prior of {name!r} must be a ModelPrior, got {type(prior).__name__}")

    @classmethod
    def parse(cls, text: str, name: str = "") -> ModelPrior:
        """The prior written ``"like:<profiled model>"`` or ``"score:<fraction>"`` (the server's ``--prior`` form).

        Args:
            text: The written prior.
            name: The model it is for, named in errors.

        Raises:
            InvalidInputError: Another form, or a score outside (0, 1).
        """
        where = f"the prior of {name!r}" if name else "a prior"
        kind, sep, value = str(text).partition(":")
        kind = kind.strip()
        if sep and kind == "like" and value.strip():
            return cls(like=value.strip())
        if sep and kind == "score":
            try:
                score = float(value)
            except ValueError:
                score = math.nan
            try:
                return cls(score=score)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{where}: {exc}") from None
        raise InvalidInputError(
            f"{where} must be 'like:<profiled model>' or 'score:<fraction in (0, 1)>', got {text!r:.80}"
        )

    def describe(self) -> str:
        """A short human-readable form (kept in the router's metadata)."""
        if self.like is not None:
            return f"like {self.like}"
        ref = f" against {dict(self.reference)}" if self.reference else ""
        return f"score {self.score}{ref}"


__all__ = [
    "ALIASES",
    "SIZES",
    "ModelPrior",
    "UnknownModelError",
    "close_model",
    "labelled_profile",
    "model_key",
    "profile_names",
    "resolve_model",
    "same_model",
]
