"""The server's settings: upstreams, routers, limits and auth, validated once and passed to every worker as JSON."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from routellm_core.data.prices import price_of
from routellm_core.errors import InvalidInputError
from routellm_core.learning.feedback import store_backend
from routellm_core.routers.profiles import ModelPrior
from routellm_core.routing.objective import Objective
from routellm_core.routing.text import canonical_route_on
from routellm_core.server.models import ModelSpec, check_models, parse_model, upstream_name

#: Environment variable through which the CLI hands its settings (JSON, no secrets) to uvicorn's worker processes.
SETTINGS_ENV = "ROUTELLM_SERVER_SETTINGS"
#: Environment variable holding the accepted bearer tokens (comma-separated) unless ``api_keys_env`` names another.
DEFAULT_API_KEYS_ENV = "ROUTELLM_SERVER_API_KEYS"

PositiveInt = Annotated[int, Field(ge=1)]


class ServerSettings(BaseModel):
    """Everything a server process needs; secrets are read from the environment, never stored here.

    Attributes:
        strong: Strong upstream: ``"openai:<model>"`` (or a bare model name) for any OpenAI-compatible endpoint
            through the ``openai`` async client, or ``"<provider>:<model>"`` for LangChain's ``init_chat_model``.
        weak: Weak upstream, same forms. Without either, the cheapest and the dearest of ``models`` (by input +
            output price) are the pair.
        strong_base_url: Base URL of the strong OpenAI-compatible endpoint (``None``: api.openai.com).
        weak_base_url: Base URL of the weak endpoint.
        strong_api_key_env: Environment variable holding the strong upstream's API key.
        weak_api_key_env: Environment variable holding the weak upstream's API key.
        routers: Routers clients may name in the model field (``router-<name>-...``), loaded at startup.
        threshold: Threshold for a bare ``router-<name>`` (default: each router's calibrated 50% point).
        strong_fraction: Instead of ``threshold``, the strong-call share for a bare ``router-<name>``.
        route_on: ``"last_user"`` or ``"conversation"`` (see ``routellm_core.routing.text``).
        fallback: Call the other upstream once when the chosen one fails before any output reached the client.
        api_keys: Accepted bearer tokens, besides those in ``api_keys_env``; none at all = no auth.
        api_keys_env: Environment variable holding accepted bearer tokens, comma-separated.
        body_timeout: Seconds a client may take to send the request body (408 after).
        max_body_bytes: Largest request body (413 above).
        max_messages: Most messages in one request (400 above).
        max_concurrency: Most chat requests in flight per worker, counted once their body is read (429 above, at
            once: never a queue).
        upstream_timeout: Seconds an upstream may take to answer (streamed: between two chunks); 504 after.
        upstream_retries: Retries of the ``openai`` client on connection errors, 429 and 5xx (0: the client
            calling the server decides on retries).
        max_batch_size: Largest routing micro-batch.
        log_prompts: Log each routing text at INFO (off: prompts are never logged).
        allowed_hosts: Without auth, host names also answered besides IP addresses, ``localhost`` and
            ``*.localhost`` (a reverse proxy that keeps the ``Host`` header, a LAN or container name); others are
            refused as DNS rebinding.
        feedback: A feedback store: a SQLite file path (created when missing) or a ``postgresql://`` URL (shared by
            several servers): every routed request's decision is recorded there under the decision id the response
            carries, and ``POST /v1/feedback`` attaches verdicts. It also remembers who answered each
            ``/v1/responses`` response, so a continuation reaching another worker or replica stays on that upstream.
        response_days: Days the feedback store remembers who answered a ``/v1/responses`` response (older rows are
            pruned; OpenAI keeps a stored response 30 days).
        judge: Pairwise judge for ``label_fraction``: an upstream spec, same forms as ``strong`` (needs
            ``feedback`` and ``label_fraction > 0``).
        judge_base_url: Base URL of the judge's OpenAI-compatible endpoint.
        judge_api_key_env: Environment variable holding the judge's API key.
        label_fraction: Share of requests (seeded by decision id) on which the other upstream is also asked, in
            the background, and the judge's verdict on the pair stored in ``feedback`` (needs ``judge``).
        label_concurrency: Most labels in flight per worker; a sampled request beyond them is not labelled (counted
            in the labeller's ``dropped_full``).
        escalate_second: For ``router-<router>-cascade...`` models: the upstream giving the second cheap answer
            (same forms as ``weak``, with the weak side's base URL and key); None: the weak upstream again at
            temperature 0.7.
        escalate_check: The escalation check: ``"agreement"``, ``"answer_features"``, ``"logprobs"``,
            ``"self_verification"`` or ``"combined"`` (the shipped learned combiner).
        escalate_threshold: Escalate when the check's confidence is below it.
        escalate_share: Instead of ``escalate_threshold``: the share of checked calls to escalate, held on live
            traffic (``Escalation(share=...)``).
        models: The named upstream models ``router-auto`` routes among (at least two; ``--model``).
        objective: ``router-auto``'s objective, ``"<kind>=<value>"`` (``margin=0.05``, ``budget=1.5`` USD per 1k
            requests, ``max_cost=0.001`` USD per request, ``cost_weight=100``); names may ask for another.
        prices: USD per million input and output tokens by model name, over the shipped table (``--prices``): of
            a named model, or of the strong, weak or second upstream by its model name (``"openai:my-llm"`` is
            ``my-llm``).
        priors: ``"like:<profiled model>"`` or ``"score:<fraction>"`` by model name, for models the router has no
            profile for (``--prior``).
        auto_router: The router predicting each model's success for ``router-auto`` (one that profiles models:
            the shipped ``default``, or a checkpoint trained from it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)  # inputs may hold tokens

    strong: str | None = None
    weak: str | None = None
    strong_base_url: str | None = None
    weak_base_url: str | None = None
    strong_api_key_env: str = "OPENAI_API_KEY"
    weak_api_key_env: str = "OPENAI_API_KEY"
    routers: tuple[str, ...] = ("default",)
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    strong_fraction: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    route_on: str = "last_user"
    fallback: bool = False
    api_keys: tuple[SecretStr, ...] = ()
    api_keys_env: str | None = DEFAULT_API_KEYS_ENV
    max_body_bytes: PositiveInt = 4 * 1024 * 1024
    max_messages: PositiveInt = 1024
    max_concurrency: PositiveInt = 512
    body_timeout: Annotated[float, Field(gt=0.0)] = 30.0
    upstream_timeout: Annotated[float, Field(gt=0.0)] = 120.0
    upstream_retries: Annotated[int, Field(ge=0, le=10)] = 0
    max_batch_size: PositiveInt = 64
    log_prompts: bool = False
    allowed_hosts: tuple[str, ...] = ()
    feedback: str | None = None
    response_days: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 30.0
    judge: str | None = None
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    label_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    label_concurrency: Annotated[int, Field(ge=1)] = 8
    escalate_second: str | None = None
    escalate_check: Literal["agreement", "answer_features", "logprobs", "self_verification", "combined"] = "agreement"
    escalate_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    escalate_share: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    models: tuple[ModelSpec, ...] = ()
    objective: str = "margin=0.05"
    prices: dict[str, tuple[Annotated[float, Field(ge=0.0, allow_inf_nan=False)], ...]] = {}
    priors: dict[str, str] = {}
    auto_router: str = "default"

    @field_validator("routers")
    @classmethod
    def _routers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not name.strip() for name in value):
            raise ValueError("serve at least one router, and no blank router name")
        return tuple(dict.fromkeys(value))

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not name.strip() or ":" in name or "/" in name for name in value):
            raise ValueError("allowed_hosts are host names without a port or scheme (router.example.com)")
        return tuple(name.strip().lower().rstrip(".") for name in value)

    @field_validator("api_keys")
    @classmethod
    def _api_keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any("," in key.get_secret_value() for key in value):
            raise ValueError("a bearer token cannot contain ',' (tokens are handed over comma-separated)")
        return value

    @field_validator("route_on")
    @classmethod
    def _route_on(cls, value: str) -> str:
        mode = canonical_route_on(value)
        if mode == "rag_query":
            raise ValueError("route_on='rag_query' reads LlamaIndex prompts; use 'last_user' or 'conversation'")
        return mode

    @field_validator("feedback", "judge")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("feedback")
    @classmethod
    def _store_location(cls, value: str | None) -> str | None:
        if value is not None:
            store_backend(value)  # a URL of an unsupported scheme fails here, before anything starts
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _models(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):  # the --model form is accepted too: "tiny=openai:tiny,base_url=..."
            try:
                return tuple(parse_model(m) if isinstance(m, str) else m for m in value)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        try:
            return str(Objective.parse(value))
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        bad = sorted(name for name, price in value.items() if len(price) != 2)
        if bad:
            raise ValueError(f"the prices of {bad} must be two numbers: USD per million input and output tokens")
        return value

    @field_validator("priors")
    @classmethod
    def _priors(cls, value: dict[str, str]) -> dict[str, str]:
        for name, prior in value.items():
            try:
                ModelPrior.parse(prior, name)
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _pair_from_models(cls, data: object) -> object:
        """Without ``strong`` and ``weak``, the named models give them: the dearest and the cheapest (by input +
        output price), so ``router-<name>`` routes between the ends of the ladder."""
        if not isinstance(data, dict) or data.get("strong") is not None or data.get("weak") is not None:
            return data
        try:
            models = [m if isinstance(m, ModelSpec) else parse_model(m) for m in data.get("models") or ()]
        except (InvalidInputError, TypeError, AttributeError):
            return data  # the field's own validation says what is wrong
        prices = data.get("prices") or {}
        found = {m.name: price_of(m.name, prices) for m in models}
        if len(models) < 2 or any(p is None for p in found.values()):
            return data  # the ladder's checks name the problem (create_app, when it needs the pair)
        cost = {name: float(p[0]) + float(p[1]) for name, p in found.items() if p is not None}
        weak = min(models, key=lambda m: cost[m.name])
        strong = max(reversed(models), key=lambda m: cost[m.name])
        pair: dict[str, object] = {}
        for side, model in (("strong", strong), ("weak", weak)):
            pair[side] = model.spec
            pair[f"{side}_base_url"] = model.base_url
            pair[f"{side}_api_key_env"] = model.api_key_env
        return {**data, **pair}

    @model_validator(mode="after")
    def _ladder(self) -> ServerSettings:
        # --prices may price the strong, weak and second upstreams by name too (unknown here while one of the pair
        # is to come as an Upstream: create_app checks the names it calls then)
        pair = (self.strong, self.weak)
        specs = (*pair, self.escalate_second)
        upstreams = [upstream_name(s) for s in specs if s is not None] if None not in pair else None
        check_models(self.models, self.prices, self.priors, self.routers, upstreams)
        return self

    @model_validator(mode="after")
    def _learning_loop(self) -> ServerSettings:
        # A judge may also be given to create_app as an Upstream, which then checks that label_fraction has one.
        if self.label_fraction > 0 and self.feedback is None:
            raise ValueError("label_fraction (--label-fraction) needs feedback (--feedback PATH): where labels go")
        if self.judge is not None and (self.feedback is None or self.label_fraction == 0):
            raise ValueError(
                "judge (--judge) labels the share label_fraction (--label-fraction F, > 0) of requests into "
                "feedback (--feedback PATH): give both"
            )
        return self

    @classmethod
    def build(cls, **fields: object) -> ServerSettings:
        """Validated settings.

        Raises:
            InvalidInputError: A field is missing its value, of the wrong type or out of range.
        """
        try:
            return cls(**fields)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(f"invalid server settings: {problems}") from None

    def workers_warning(self, workers: int) -> str | None:
        """What ``workers`` processes without a feedback store cannot do (None when nothing): continue a Responses
        API conversation that another worker answered."""
        if workers <= 1 or self.feedback is not None:
            return None
        return (
            f"{workers} workers and no feedback store: each worker remembers only the /v1/responses responses it "
            "relayed, so a continuation (previous_response_id, or a conversation sent whole) that lands on another "
            "worker is routed anew, possibly to the upstream that never stored it; give --feedback (a SQLite file or "
            "a postgresql:// URL the workers share), or pin each conversation to one worker (session affinity)"
        )

    def bearer_tokens(self) -> list[bytes]:
        """The accepted bearer tokens (``api_keys`` and those in ``$api_keys_env``) as bytes; empty: no auth."""
        tokens = [key.get_secret_value() for key in self.api_keys]
        if self.api_keys_env:
            tokens += os.environ.get(self.api_keys_env, "").split(",")
        return [t.strip().encode() for t in tokens if t.strip()]

    def to_env(self) -> str:
        """JSON for :data:`SETTINGS_ENV` (tokens given in ``api_keys`` are dropped: workers read the env var)."""
        return self.model_dump_json(exclude={"api_keys"})

    def worker_environment(self) -> dict[str, str]:
        """The environment variables that give worker processes these settings, auth included.

        The settings go as JSON in :data:`SETTINGS_ENV`, without tokens; every accepted token (``api_keys`` and
        those in ``$api_keys_env``) goes comma-separated in ``api_keys_env`` (:data:`DEFAULT_API_KEYS_ENV` when
        that is ``None``), so each worker enforces exactly the tokens this process accepts, and none when it
        accepts none.
        """
        tokens = self.bearer_tokens()
        name = (self.api_keys_env or DEFAULT_API_KEYS_ENV) if tokens else None
        worker = self.model_copy(update={"api_keys": (), "api_keys_env": name})
        env = {SETTINGS_ENV: worker.to_env()}
        if name is not None:
            env[name] = ",".join(token.decode() for token in tokens)
        return env

    @classmethod
    def from_env(cls) -> ServerSettings:
        """The settings the CLI left in :data:`SETTINGS_ENV`.

        Raises:
            InvalidInputError: The variable is missing or does not hold valid settings.
        """
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise InvalidInputError(f"${SETTINGS_ENV} is not set: start workers with `routellm serve`")
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidInputError(f"${SETTINGS_ENV} holds invalid server settings: {exc}") from None
