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
        provider, colon, model = spec.partition(":")
        name = model if colon else provider
    try:
        return ModelSpec(name=name.strip(), spec=spec, **fields)
    except ValueError as exc:
        raise InvalidInputError(f"--model {text!r:.120}: {_first_error(exc)}") from None


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
        InvalidInputError: Not of that form, or a prior :func:`prior_of` refuses.
    """
    name, sep, prior = str(text).partition("=")
    if not sep or not name.strip():
        raise InvalidInputError(
            f"--prior {text!r:.120}: give NAME=like:MODEL (a profiled model it starts from) or NAME=score:F (a "
            "benchmark score in (0, 1))"
        )
    prior_of(prior.strip(), name.strip())
    return name.strip(), prior.strip()


def prior_of(text: str, name: str = "") -> ModelPrior:
    """The :class:`~routellm_core.routers.profiles.ModelPrior` of ``"like:MODEL"`` or ``"score:F"``.

    Raises:
        InvalidInputError: Another form, or a score outside (0, 1).
    """
    kind, sep, value = text.partition(":")
    where = f"the prior of {name!r}" if name else "a prior"
    if sep and kind == "like" and value.strip():
        return ModelPrior(like=value.strip())
    if sep and kind == "score":
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        try:
            return ModelPrior(score=score)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None
    raise InvalidInputError(
        f"{where} must be 'like:<profiled model>' or 'score:<fraction in (0, 1)>', got {text!r:.80}"
    )


def check_models(
    models: Sequence[ModelSpec], prices: Mapping[str, Any], priors: Mapping[str, str], routers: Sequence[str]
) -> None:
    """Check the named models against the prices, priors and routers that refer to them.

    Raises:
        ValueError: Fewer than two models (with any), a repeated name, a price or prior for an unlisted name, or
            a router named ``auto`` beside them (``router-auto`` is theirs).
    """
    names = [m.name for m in models]
    if not models:
        if prices or priors:
            raise ValueError("prices (--prices) and priors (--prior) are for the models of router-auto: give --model")
        return
    if len(names) < 2:
        raise ValueError(f"router-auto routes among at least two models (--model), got {names}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"models (--model) name {repeated} more than once; give each a distinct NAME=")
    for what, given in (("prices (--prices)", prices), ("priors (--prior)", priors)):
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"{what} name {unknown}, which no --model names (models: {names})")
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
    "parse_model",
    "parse_prices",
    "parse_prior",
    "prior_of",
]
