"""The named upstream models ``router-auto`` routes among: their command-line forms, checks and upstreams.

``--model [NAME=]SPEC[,base_url=URL][,api_key_env=VAR]`` names one model: ``SPEC`` takes the forms of ``--strong``
(``openai:<model>`` for any OpenAI-compatible endpoint, ``<provider>:<model>`` for LangChain's ``init_chat_model``),
``NAME`` is how the ladder prices and profiles it (default: the model part of ``SPEC``), and the key comes from the
environment as for ``--strong`` (``$OPENAI_API_KEY`` unless ``api_key_env`` names another variable; none is needed
for an endpoint given by ``base_url``). ``--prices NAME=IN,OUT`` gives USD per million input and output tokens (over
the shipped table) and ``--prior NAME=like:MODEL`` or ``--prior NAME=score:0.8`` what to assume about a model the
router has no profile for.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from routellm_core.errors import InvalidInputError
from routellm_core.routers.profiles import ModelPrior

#: The options a ``--model`` value may carry after its spec.
MODEL_OPTIONS = ("base_url", "api_key_env")
#: Characters a model's name may not hold (they separate the command-line forms).
_SEPARATORS = frozenset(",= ")


class ModelSpec(BaseModel):
    """One named upstream model of ``router-auto``.

    Attributes:
        name: The name the ladder prices and profiles it by (the record's ``model``).
        spec: The upstream: ``"openai:<model>"`` (or a bare model name) or ``"<provider>:<model>"``.
        base_url: Base URL of its OpenAI-compatible endpoint (``None``: api.openai.com or the provider's).
        api_key_env: Environment variable holding its API key.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    spec: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or _SEPARATORS & set(value):
            raise ValueError(f"a model's name must be non-blank without ',', '=' or spaces, got {value!r:.80}")
        return value

    @field_validator("spec")
    @classmethod
    def _spec(cls, value: str) -> str:
        provider, sep, model = value.partition(":")
        if not value.strip() or (sep and not (provider.strip() and model.strip())):
            raise ValueError(f"the upstream {value!r:.80} is not '<provider>:<model>' or a model name")
        return value


def parse_model(text: str) -> ModelSpec:
    """A :class:`ModelSpec` from ``--model [NAME=]SPEC[,base_url=URL][,api_key_env=VAR]``.

    Raises:
        InvalidInputError: An empty spec, an unknown or repeated option, or a bad name.
    """
    head, *options = [part.strip() for part in str(text).split(",")]
    name, sep, spec = head.partition("=")
    if not sep:
        name, spec = "", head
    if not spec:
        raise InvalidInputError(
            f"--model {text!r:.120}: give [NAME=]SPEC[,base_url=URL][,api_key_env=VAR], e.g. "
            "'tiny=openai:llama3.1:8b,base_url=http://127.0.0.1:11434/v1'"
        )
    fields: dict[str, Any] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip()
        if not sep or key not in MODEL_OPTIONS or not value.strip():
            raise InvalidInputError(
                f"--model {text!r:.120}: {option!r:.80} is not one of {', '.join(k + '=...' for k in MODEL_OPTIONS)}"
            )
        if key in fields:
            raise InvalidInputError(f"--model {text!r:.120}: {key} is given twice")
        fields[key] = value.strip()
    if not name:
        name = upstream_name(spec)
    try:
        return ModelSpec(name=name.strip(), spec=spec, **fields)
    except ValueError as exc:
        raise InvalidInputError(f"--model {text!r:.120}: {_first_error(exc)}") from None


def upstream_name(spec: str) -> str:
    """The name an upstream spec is known by (priced, recorded, counted): its model part (``"openai:gpt-4o"`` ->
    ``"gpt-4o"``, ``"openai:llama3.1:8b"`` -> ``"llama3.1:8b"``, a bare ``"gpt-4o"`` -> ``"gpt-4o"``)."""
    provider, colon, model = spec.partition(":")
    return model if colon else provider


def check_price_names(prices: Mapping[str, Any], known: Sequence[str]) -> None:
    """Check that ``--prices`` names only models the server calls: a ``--model``, or the strong, weak or second
    upstream (by the name each is known by).

    Raises:
        InvalidInputError: A price for another name, naming it and the names the server knows.
    """
    unknown = sorted(set(prices) - set(known))
    if unknown:
        raise InvalidInputError(
            f"prices (--prices) name {unknown}, which is neither a --model nor the --strong, --weak or "
            f"--escalate-second model (this server calls {sorted(dict.fromkeys(known))}): price a model by the name "
            "it is called by (the model part of its spec), or give --model NAME=SPEC to route among more models"
        )


def parse_prices(text: str) -> tuple[str, tuple[float, float]]:
    """``(name, (usd_in, usd_out))`` from ``--prices NAME=IN,OUT`` (USD per million input and output tokens).

    Raises:
        InvalidInputError: Not of that form, or a price that is not a finite number >= 0.
    """
    name, sep, rest = str(text).partition("=")
    parts = rest.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if not sep or not name.strip() or len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values):
        raise InvalidInputError(
            f"--prices {text!r:.120}: give NAME=IN,OUT in USD per million input and output tokens (numbers >= 0), "
            "e.g. 'tiny=0.1,0.4'"
        )
    return name.strip(), (values[0], values[1])


def parse_prior(text: str) -> tuple[str, str]:
    """``(name, prior)`` from ``--prior NAME=like:MODEL`` or ``--prior NAME=score:F`` (the prior checked).

    Raises:
        InvalidInputError: Not of that form, or a prior :meth:`ModelPrior.parse` refuses.
    """
    name, sep, prior = str(text).partition("=")
    if not sep or not name.strip():
        raise InvalidInputError(
            f"--prior {text!r:.120}: give NAME=like:MODEL (a profiled model it starts from) or NAME=score:F (a "
            "benchmark score in (0, 1))"
        )
    ModelPrior.parse(prior.strip(), name.strip())
    return name.strip(), prior.strip()


def check_models(
    models: Sequence[ModelSpec],
    prices: Mapping[str, Any],
    priors: Mapping[str, str],
    routers: Sequence[str],
    upstreams: Sequence[str] | None = (),
) -> None:
    """Check the named models against the prices, priors and routers that refer to them.

    Args:
        models: The named models (``--model``).
        prices: ``--prices`` by name: for a named model or one of ``upstreams``.
        priors: ``--prior`` by name: for a named model.
        routers: The routers served.
        upstreams: The names of the strong, weak and second upstreams (:func:`upstream_name`); None when one is
            yet to come as an ``Upstream`` (``create_app`` checks the prices' names then).

    Raises:
        ValueError: Fewer than two models (with any), a repeated name, a prior for an unlisted name, a price for a
            name that is neither a model nor an upstream, or a router named ``auto`` beside them (``router-auto``
            is theirs).
    """
    names = [m.name for m in models]
    if upstreams is not None:
        check_price_names(prices, [*names, *upstreams])
    if not models:
        if priors:
            raise ValueError("priors (--prior) are for the models of router-auto: give --model")
        return
    if len(names) < 2:
        raise ValueError(f"router-auto routes among at least two models (--model), got {names}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"models (--model) name {repeated} more than once; give each a distinct NAME=")
    unknown = sorted(set(priors) - set(names))
    if unknown:
        raise ValueError(f"priors (--prior) name {unknown}, which no --model names (models: {names})")
    if "auto" in routers:
        raise ValueError("a router named 'auto' would shadow router-auto (the --model ladder): rename it")


def build_models(
    models: Sequence[ModelSpec], *, timeout: float, max_retries: int
) -> dict[str, Any]:  # dict[str, Upstream]; typed loosely so this module imports without the server extra
    """The upstream of each named model (its ``name`` is the model's name).

    Raises:
        InvalidInputError: No API key for a model on api.openai.com (naming the variable to set), or a spec its
            provider cannot build.
    """
    from routellm_core.server.upstreams import build_upstream

    built: dict[str, Any] = {}
    for model in models:
        provider, colon, _ = model.spec.partition(":")
        openai_compatible = not colon or provider == "openai"
        if openai_compatible and model.base_url is None and not os.environ.get(model.api_key_env):
            raise InvalidInputError(
                f"the model {model.name!r} ({model.spec}) calls api.openai.com and needs an API key: set "
                f"${model.api_key_env} (or add ',api_key_env=VAR' to its --model), or add ',base_url=URL' for a "
                "local endpoint"
            )
        upstream = build_upstream(
            model.spec,
            side=f"model {model.name!r}",
            base_url=model.base_url,
            api_key_env=model.api_key_env,
            timeout=timeout,
            max_retries=max_retries,
        )
        upstream.name = model.name
        built[model.name] = upstream
    return built


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        found = errors()
        if found:
            return str(found[0]["msg"]).removeprefix("Value error, ")
    return str(exc)


__all__ = [
    "ModelSpec",
    "build_models",
    "check_models",
    "check_price_names",
    "parse_model",
    "parse_prices",
    "parse_prior",
    "upstream_name",
]
