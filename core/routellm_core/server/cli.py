"""``routellm serve``: the command line of the routing server (argparse only; FastAPI is imported when it runs)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import logging.config
import os
import sys
from collections.abc import Sequence
from typing import Any

from routellm_core._cli_args import argument_type, pairs_once
from routellm_core._optional import requires_extra
from routellm_core.errors import InvalidInputError, RouteLLMError
from routellm_core.routing.objective import Objective
from routellm_core.server.models import parse_model, parse_prices, parse_prior
from routellm_core.server.settings import DEFAULT_API_KEYS_ENV, ServerSettings

logger = logging.getLogger("routellm_core.server")

DESCRIPTION = (
    "OpenAI-compatible routing server: POST /v1/chat/completions with model 'router-<router>-<threshold>' "
    "(or '-<percent>%') goes to the strong or the weak upstream, as the router decides; 'router-auto' picks one of "
    "the --model upstreams by an objective ('router-auto-budget-1.5'). Auth fails closed: "
    "without bearer tokens the server binds to loopback only, unless --no-auth is given."
)


def _token_variable(name: str) -> str:
    """``--api-keys-env NAME``: the variable must hold at least one token (never silently no auth)."""
    if not name.strip():
        raise argparse.ArgumentTypeError("give the name of an environment variable holding the bearer tokens")
    if not any(t.strip() for t in os.environ.get(name, "").split(",")):
        raise argparse.ArgumentTypeError(
            f"${name} is unset or empty: put the accepted bearer tokens in it (comma-separated), or give --no-auth "
            "to serve without auth"
        )
    return name


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def _objective(text: str) -> str:
    return str(Objective.parse(text))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``serve`` options."""
    up = parser.add_argument_group("upstreams")
    up.add_argument(
        "--strong",
        help="'openai:<model>' (any OpenAI-compatible endpoint) or "
        "'<provider>:<model>' for LangChain's init_chat_model (required unless --model names the models: then the "
        "dearest of them)",
    )
    up.add_argument("--weak", help="same forms as --strong (default with --model: the cheapest of them)")
    up.add_argument("--strong-base-url", help="base URL of the strong OpenAI-compatible endpoint (e.g. .../v1)")
    up.add_argument("--weak-base-url", help="base URL of the weak endpoint")
    up.add_argument("--strong-api-key-env", default="OPENAI_API_KEY", help="env variable with the strong key")
    up.add_argument("--weak-api-key-env", default="OPENAI_API_KEY", help="env variable with the weak key")
    up.add_argument("--upstream-timeout", type=float, default=120.0, help="seconds per answer / between chunks")
    up.add_argument("--upstream-retries", type=int, default=0, help="the openai client's own retries (default 0)")
    up.add_argument("--fallback", action="store_true", help="call the other upstream once when the chosen fails")

    rt = parser.add_argument_group("routing")
    rt.add_argument(
        "--router",
        action="append",
        dest="routers",
        metavar="NAME",
        help="router clients may name (repeatable; default: default)",
    )
    cost = rt.add_mutually_exclusive_group()
    cost.add_argument("--threshold", type=float, help="threshold for a bare 'router-<name>'")
    cost.add_argument("--strong-fraction", type=float, help="instead: strong-call share for a bare 'router-<name>'")
    rt.add_argument("--route-on", default="last_user", choices=["last_user", "conversation"])

    lr = parser.add_argument_group("learning loop")
    lr.add_argument(
        "--feedback",
        metavar="PATH|URL",
        help="feedback store: a SQLite file (created if missing) or a postgresql://user@host:port/db URL that several "
        "servers share: every routed request's decision is recorded there, and POST /v1/feedback attaches verdicts; "
        "it also remembers who answered each /v1/responses response, for continuations reaching another worker",
    )
    lr.add_argument(
        "--response-days",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="days the feedback store remembers who answered a /v1/responses response (default: 30, as OpenAI keeps "
        "a stored response)",
    )
    lr.add_argument(
        "--judge",
        metavar="MODEL",
        help="pairwise judge of the --label-fraction sample: same forms as --strong (needs --feedback)",
    )
    lr.add_argument("--judge-base-url", help="base URL of the judge's OpenAI-compatible endpoint")
    lr.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", help="env variable with the judge's key")
    lr.add_argument(
        "--label-fraction",
        type=_fraction,
        default=0.0,
        metavar="F",
        help="share of requests on which the other upstream is also asked, in the background, and the judge's "
        "verdict stored in --feedback (needs --judge and --feedback)",
    )
    lr.add_argument(
        "--label-concurrency",
        type=int,
        default=8,
        metavar="N",
        help="most labels in flight per worker (default: 8); a sampled request beyond them is not labelled",
    )

    esc = parser.add_argument_group(
        "escalation (model names router-<router>-cascade[-<threshold>|-<percent>%])",
        "a request routed to weak gets a second cheap answer at once; the strong upstream answers when they disagree",
    )
    esc.add_argument(
        "--escalate-second",
        metavar="MODEL",
        help="upstream giving the second cheap answer (same forms as --weak, with its base URL and key); "
        "default: the weak upstream asked again at temperature 0.7",
    )
    esc.add_argument(
        "--escalate-check",
        default="agreement",
        choices=["agreement", "answer_features", "logprobs", "self_verification", "combined"],
        help="the check of the weak answer (default: agreement of the two cheap answers)",
    )
    esc.add_argument(
        "--escalate-threshold",
        type=_fraction,
        default=0.5,
        metavar="T",
        help="escalate when the check's confidence is below T (default 0.5)",
    )
    esc.add_argument(
        "--escalate-share",
        type=_fraction,
        default=None,
        metavar="S",
        help="instead of a threshold: escalate about this share of the checked calls, held on live traffic",
    )

    auto = parser.add_argument_group(
        "named models (model names router-auto[-<kind>-<value>][-cascade...])",
        "router-auto picks one of the --model upstreams per request: the one its objective prefers, from each "
        "model's predicted success and expected cost",
    )
    auto.add_argument(
        "--model",
        action="append",
        dest="models",
        type=argument_type(parse_model),
        metavar="[NAME=]SPEC[,base_url=URL][,api_key_env=VAR]",
        help="a named upstream (repeatable, at least two): SPEC in the forms of --strong; NAME (default: the model "
        "part of SPEC) is how it is priced and profiled; its key comes from $VAR (default $OPENAI_API_KEY; none "
        "needed with base_url)",
    )
    auto.add_argument(
        "--objective",
        type=argument_type(_objective),
        default="margin=0.05",
        metavar="KIND=VALUE[,window=N]",
        help="router-auto's objective: margin=D (the cheapest model predicted within D of the best; default "
        "margin=0.05), budget=USD (per 1,000 requests, held on live traffic over the last 200 requests, or N with "
        "budget=USD,window=N), max_cost=USD (per request), cost_weight=W, shares=NAME:SHARE;... (the best predicted "
        "model, each named one served at most its share of the recent requests: shares=gpt-4o:5%%;llama3:70b:30%%)",
    )
    auto.add_argument(
        "--prices",
        action="append",
        type=argument_type(parse_prices),
        metavar="NAME=IN,OUT",
        help="USD per million input and output tokens of a --model, or of the --strong, --weak or --escalate-second "
        "model by its model name (repeatable; default: the shipped price table)",
    )
    auto.add_argument(
        "--prior",
        action="append",
        dest="priors",
        type=argument_type(parse_prior),
        metavar="NAME=like:MODEL|NAME=score:F",
        help="for a --model the router has no profile for: start from a profiled model's profile, or place a "
        "benchmark score in (0, 1) (repeatable)",
    )
    auto.add_argument(
        "--auto-router",
        default="default",
        metavar="NAME|PATH",
        help="the router predicting each model's success (default: default; or a checkpoint trained from it)",
    )

    srv = parser.add_argument_group("serving")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=6060)
    srv.add_argument("--workers", type=int, default=1, help="uvicorn worker processes sharing the port")
    auth = srv.add_mutually_exclusive_group()
    auth.add_argument(
        "--api-keys-env",
        type=_token_variable,
        metavar="NAME",
        help="env variable with the accepted bearer tokens, comma-separated; it must hold at least one "
        f"(default: ${DEFAULT_API_KEYS_ENV}, when set)",
    )
    auth.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without bearer tokens even on a non-loopback --host (anyone who reaches the port spends "
        "the upstreams' keys)",
    )
    srv.add_argument(
        "--allowed-host",
        dest="allowed_hosts",
        action="append",
        metavar="NAME",
        help="without auth: a host name answered besides IP addresses and localhost (a reverse proxy that keeps "
        "the Host header, a LAN or container name); repeatable",
    )
    srv.add_argument("--max-body-bytes", type=int, default=4 * 1024 * 1024)
    srv.add_argument("--max-messages", type=int, default=1024)
    srv.add_argument("--max-concurrency", type=int, default=512, help="requests in flight per worker (429 above)")
    srv.add_argument("--body-timeout", type=float, default=30.0, help="seconds to send a request body (408 after)")
    srv.add_argument(
        "--log-prompts",
        action="store_true",
        help="log each routing text at INFO, and show it on the web page's Watch view (off by default)",
    )
    srv.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """The settings for parsed ``serve`` options."""
    fields: dict[str, Any] = {
        "strong": args.strong,
        "weak": args.weak,
        "strong_base_url": args.strong_base_url,
        "weak_base_url": args.weak_base_url,
        "strong_api_key_env": args.strong_api_key_env,
        "weak_api_key_env": args.weak_api_key_env,
        "routers": tuple(args.routers or ("default",)),
        "threshold": args.threshold,
        "strong_fraction": args.strong_fraction,
        "route_on": args.route_on,
        "fallback": args.fallback,
        "api_keys_env": None if args.no_auth else (args.api_keys_env or DEFAULT_API_KEYS_ENV),
        "max_body_bytes": args.max_body_bytes,
        "max_messages": args.max_messages,
        "max_concurrency": args.max_concurrency,
        "body_timeout": args.body_timeout,
        "upstream_timeout": args.upstream_timeout,
        "upstream_retries": args.upstream_retries,
        "log_prompts": args.log_prompts,
        "allowed_hosts": tuple(args.allowed_hosts or ()),
        "feedback": args.feedback,
        "response_days": args.response_days,
        "judge": args.judge,
        "judge_base_url": args.judge_base_url,
        "judge_api_key_env": args.judge_api_key_env,
        "label_fraction": args.label_fraction,
        "label_concurrency": args.label_concurrency,
        "escalate_second": args.escalate_second,
        "escalate_check": args.escalate_check,
        "escalate_threshold": args.escalate_threshold,
        "escalate_share": args.escalate_share,
        "models": tuple(args.models or ()),
        "objective": args.objective,
        "prices": pairs_once("--prices", args.prices or []),
        "priors": pairs_once("--prior", args.priors or []),
        "auto_router": args.auto_router,
    }
    if (args.strong is None or args.weak is None) and not (args.strong is None and args.weak is None and args.models):
        raise InvalidInputError(
            "give --strong and --weak (the two upstreams router-<name> chooses between), or --model at least twice "
            "(router-auto's models; the dearest and the cheapest are then the pair)"
        )
    if args.label_fraction > 0 and (args.judge is None or args.feedback is None):
        raise InvalidInputError("--label-fraction needs --judge MODEL and --feedback PATH (where the labels go)")
    if args.judge is not None and (args.feedback is None or args.label_fraction == 0):
        raise InvalidInputError("--judge needs --feedback PATH and --label-fraction F (> 0): the share it labels")
    return ServerSettings.build(**fields)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(args: argparse.Namespace) -> int:
    """Run the server for parsed ``serve`` options (blocks until interrupted).

    Auth fails closed: without a bearer token the server binds to a loopback host only, unless ``--no-auth``.

    Raises:
        InvalidInputError: No token and a non-loopback ``--host`` without ``--no-auth``; bad learning-loop options
            or other settings.
    """
    settings = settings_from_args(args)
    if not settings.bearer_tokens() and not _loopback(args.host) and not args.no_auth:
        raise InvalidInputError(
            f"refusing to serve on {args.host} without auth: put bearer tokens in ${DEFAULT_API_KEYS_ENV} (or the "
            "variable --api-keys-env names), bind to 127.0.0.1, or give --no-auth to serve anyone who reaches the port"
        )
    with requires_extra("server", "routellm serve"):
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401

        from routellm_core.server import runner
    runner.run(settings, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level)
    return 0


UI_DESCRIPTION = (
    "The web page of the routing server, alone and offline: the shipped default router (or --router) in front of "
    "two local stand-in models (demo-strong, demo-weak) on 127.0.0.1, no keys and no auth. Open the URL it prints: "
    "Try a prompt, move the threshold, Watch the calls, Learn from a feedback store (--feedback). `routellm serve` "
    "serves the same page at /ui in front of real models."
)


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ui`` options."""
    parser.add_argument(
        "--router",
        action="append",
        dest="routers",
        metavar="NAME",
        help="router to try (repeatable; a shipped name or a checkpoint folder; default: default)",
    )
    parser.add_argument("--port", type=int, default=6060)
    parser.add_argument(
        "--host", default="127.0.0.1", help="a loopback address: the page has no auth (use `routellm serve` for more)"
    )
    parser.add_argument("--feedback", metavar="PATH", help="feedback store (SQLite) for the Learn view")
    parser.add_argument("--log-prompts", action="store_true", help="show routing texts on the Watch view")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def ui(args: argparse.Namespace) -> int:
    """Serve the web page for parsed ``ui`` options (blocks until interrupted).

    Raises:
        InvalidInputError: A non-loopback ``--host`` (the page is served without auth) or bad settings.
    """
    if not _loopback(args.host):
        raise InvalidInputError(
            f"routellm ui serves without auth, so on a loopback address only, not {args.host}: use 127.0.0.1, or "
            "`routellm serve` with bearer tokens (its page is at /ui too)"
        )
    settings = ServerSettings.build(
        routers=tuple(args.routers or ("default",)),
        api_keys_env=None,
        log_prompts=args.log_prompts,
        feedback=args.feedback,
    )
    with requires_extra("server", "routellm ui"):
        import uvicorn

        from routellm_core.server import runner
        from routellm_core.server.app import create_app
        from routellm_core.server.standins import stand_ins
    config = runner.log_config(args.log_level)
    logging.config.dictConfig(config)
    app = create_app(settings, **stand_ins())
    host = f"[{args.host}]" if ":" in args.host else args.host
    logger.info("routellm ui: open http://%s:%d/ui (local stand-in models demo-strong / demo-weak)", host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, log_config=config)
    return 0


def add_ui_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``ui`` to the ``routellm`` command's subparsers."""
    parser = subparsers.add_parser(
        "ui", help="the web page, offline: try the router, watch it", description=UI_DESCRIPTION, allow_abbrev=False
    )
    add_ui_arguments(parser)
    parser.set_defaults(func=ui)
    return parser


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``routellm`` command's subparsers."""
    parser = subparsers.add_parser(
        "serve", help="OpenAI-compatible routing server", description=DESCRIPTION, allow_abbrev=False
    )
    add_arguments(parser)
    parser.set_defaults(func=serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m routellm_core.server``: the same as ``routellm serve``."""
    parser = argparse.ArgumentParser(prog="routellm serve", description=DESCRIPTION, allow_abbrev=False)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return serve(args)
    except RouteLLMError as exc:
        print(f"routellm serve: error: {exc}", file=sys.stderr)
        return 2
