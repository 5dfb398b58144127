"""The web page at ``/ui``: try the router, watch the server, and see what the labels say.

The page (``ui/index.html``, ``ui/app.js``, ``ui/style.css``, shipped as package data: no CDN, no remote font, a
Content-Security-Policy that allows this origin only) loads without auth; every call it makes goes to this server's
own API and carries the bearer token the user typed (kept in the tab's ``sessionStorage``), so with auth on nothing
is shown without a token. *Try* sends the prompt to ``POST /v1/chat/completions`` itself (the one routing path, its
metrics and feedback recording included) and re-scores it for the slider through ``POST /ui/api/score`` (the same
policy and routing-text rule, no model called, nothing counted); on a server with named models (``--model``) it
also routes with ``router-auto`` by an objective the user picks, and shows the record's ``ladder`` entry. *Watch*
reads ``GET /metrics`` and the recent decisions (``GET /ui/api/recent``, routing texts only under
``--log-prompts``). *Learn* shows the feedback store's counts and the traffic report (``GET /ui/api/learn``).
"""

from __future__ import annotations

import json
import math
import shlex
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from routellm_core.errors import InvalidInputError, RouteLLMError
from routellm_core.routing.objective import DEFAULT_WINDOW
from routellm_core.routing.text import routing_text
from routellm_core.server.auto import AUTO_MODEL, NAME_OF_KIND, objective_name
from routellm_core.server.errors import ErrorResponse
from routellm_core.server.protocol import MODEL_PREFIX, load_json, turns

if TYPE_CHECKING:
    from routellm_core.routing.policy import RoutingPolicy
    from routellm_core.server.app import ServerState

#: The page's files and their content types.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: The page may load and call this origin only (no CDN, no remote font, no inline script).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
#: Bootstrap resamples of the report on the Learn view (the CLI's ``routellm report`` defaults to 1000).
LEARN_BOOTSTRAP = 300
#: Most points of one cost-quality curve sent to the page.
CURVE_POINTS = 101
#: Longest prompt ``/ui/api/score`` scores, in characters.
MAX_PROMPT_CHARS = 100_000


def _files() -> dict[str, bytes]:
    folder = resources.files("routellm_core.server").joinpath("ui")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def _json(value: Any, status: int = 200) -> Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Response(body.encode(), status_code=status, media_type="application/json")


def _finite(value: float) -> float | None:
    """``value``, or ``None`` for NaN / infinity (JSON has neither; the report writes 'never')."""
    return float(value) if math.isfinite(value) else None


def calibration_points(policy: RoutingPolicy) -> list[tuple[float, float]]:
    """The router's strong-share -> threshold table with its ends, as ``threshold_for`` interpolates it."""
    table = sorted((float(k), float(v)) for k, v in policy.router.calibrated_thresholds.items())
    return [(0.0, 1.0), *table, (1.0, 0.0)] if table else []


def share_at(policy: RoutingPolicy, threshold: float) -> float | None:
    """The strong-call share a threshold gives on the router's calibration traffic (``None`` without calibration).

    The inverse of ``threshold_for``: thresholds fall as the share grows, so the table is read backwards.
    """
    points = calibration_points(policy)
    if not points:
        return None
    shares = np.array([p[0] for p in points])[::-1]
    thresholds = np.array([p[1] for p in points])[::-1]
    return float(np.interp(threshold, thresholds, shares))


def _number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ErrorResponse(400, f"{key} must be a number in [0, 1], got {value!r:.40}", code="invalid_request")
    return float(value)


def _policy(state: ServerState, name: object) -> tuple[str, RoutingPolicy]:
    if name is None:
        name = next(iter(state.policies))
    if not isinstance(name, str) or name not in state.policies:
        served = ", ".join(state.policies)
        raise ErrorResponse(404, f"router {name!r:.60} is not served here; served: {served}", code="router_not_found")
    return name, state.policies[name]


def _curve(result: Any) -> list[list[float]]:
    """A row's cost-quality curve, at most :data:`CURVE_POINTS` points (both ends kept)."""
    xs, ys = (np.asarray(a, dtype=float) for a in result.curve)
    if xs.size > CURVE_POINTS:
        keep = np.unique(np.linspace(0, xs.size - 1, CURVE_POINTS).round().astype(int))
        xs, ys = xs[keep], ys[keep]
    return [[round(float(x), 6), round(float(y), 6)] for x, y in zip(xs, ys)]


def auto_info(state: ServerState) -> dict[str, Any] | None:
    """``router-auto`` as the page offers it: the named models and their prices, the server objective, and how
    model names write each objective kind (``None`` without ``--model``)."""
    auto = state.auto
    if auto is None:
        return None
    engine, objective = auto.default, auto.objective
    return {
        "model": AUTO_MODEL,
        "router": engine.policy.router_name,
        "objective": str(objective),
        "objective_name": objective_name(objective),
        "kind": objective.kind,
        "value": objective.value,
        "window": objective.window,
        "default_window": DEFAULT_WINDOW,
        "name_kinds": NAME_OF_KIND,
        "models": [
            {"name": name, "input_usd_per_m": float(price[0]), "output_usd_per_m": float(price[1])}
            for name, price in zip(engine.names, engine.ladder.prices, strict=True)
        ],
    }


def _interval(interval: Any) -> dict[str, float | None]:
    return {"value": _finite(interval.value), "low": _finite(interval.low), "high": _finite(interval.high)}


class LearnView:
    """The Learn view's figures: the store's counts and its traffic report, recomputed when the labels change."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._cached: tuple[tuple[str, str], dict[str, Any]] | None = None
        self._lock = anyio.Lock()

    def retrain(self, router: str) -> list[str]:
        """The commands that retrain on the store and check the result, ready to paste into a shell.

        The store is named by its location, shell-quoted (a URL's ``?`` and ``&``); a PostgreSQL URL without its
        password (the page never shows it; the pasted command takes it from ``PGPASSWORD`` or ``~/.pgpass``).
        """
        from routellm_core.learning.feedback_postgres import SCHEMES, without_password

        given = self.state.settings.feedback or "feedback.db"
        postgres = given.partition("://")[0].lower() in SCHEMES
        where = shlex.quote(without_password(given) if postgres else given)
        name = shlex.quote(router)
        return [
            f"routellm report --feedback {where} --router {name}",
            f"routellm train --feedback {where} --init {name} --out my_router",
            f"routellm report --feedback {where} --router my_router",
        ]

    async def answer(self, name: str, policy: RoutingPolicy) -> dict[str, Any]:
        """The view's JSON for the router ``name``."""
        store = self.state.store
        if store is None:
            return {
                "enabled": False,
                "message": "this server keeps no feedback store: start it with --feedback PATH to record every "
                "decision, then label them (POST /v1/feedback, or --judge with --label-fraction)",
            }
        stats = await anyio.to_thread.run_sync(store.stats)
        # The store's label revision, not the labels' counts: two verdicts swapped between page loads keep every
        # count and change the report. (Decisions stay out: they move with every request; the report reads labels.)
        key = (name, await anyio.to_thread.run_sync(store.revision))
        async with self._lock:
            if self._cached is None or self._cached[0] != key:
                self._cached = (key, await anyio.to_thread.run_sync(self._report, name, policy))
            report = self._cached[1]
        return {
            "enabled": True,
            "router": name,
            "labels": stats.labels,
            "decisions": stats.decisions,
            "by_source": stats.by_source,
            "verdicts": stats.verdicts,
            "retrain": self.retrain(name),
            **report,
        }

    def _report(self, name: str, policy: RoutingPolicy) -> dict[str, Any]:
        from routellm_core.learning.report import traffic_report

        store = self.state.store
        assert store is not None
        try:
            report = traffic_report(policy.router, store, folds=0, n_bootstrap=LEARN_BOOTSTRAP, name=name)
        except RouteLLMError as exc:
            return {"report": None, "problem": str(exc)}
        data = report.as_dict()
        data["rows"] = [
            {
                "name": row.name,
                "apgr": _interval(row.apgr),
                "cpt50": _interval(row.cpt50),
                "cpt80": _interval(row.cpt80),
                "curve": _curve(row.result),
            }
            for row in report.rows
        ]
        return {"report": data, "problem": None}


def ui_router(state: ServerState) -> APIRouter:
    """The page's routes: ``/ui`` and its files (no auth), and ``/ui/api/*`` (the server's bearer token).

    They stay out of the OpenAPI schema: ``/ui/api/*`` is the page's own API, not part of the server's contract.
    """
    files = _files()
    learn = LearnView(state)
    router = APIRouter()

    def static(name: str) -> Response:
        return Response(files[name], media_type=STATIC_FILES[name], headers=SECURITY_HEADERS)

    @router.get("/ui", include_in_schema=False)
    async def page() -> Response:
        return static("index.html")

    @router.get("/ui/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in files or name == "index.html":
            raise ErrorResponse(404, f"no file {name!r:.60} under /ui", code="not_found")
        return static(name)

    @router.get("/ui/api/info", include_in_schema=False)
    async def info(request: Request) -> Response:
        """What the page needs to draw itself: routers, their calibration, upstreams, ``router-auto``'s models and
        objective, what is switched on."""
        state.authorize(request)
        routers = []
        for name, policy in state.policies.items():
            routers.append(
                {
                    "name": name,
                    "router": policy.router_name,
                    "model": f"{MODEL_PREFIX}{name}",
                    "threshold": policy.threshold,
                    "strong_fraction": policy.strong_fraction,
                    "share": share_at(policy, policy.threshold),
                    "calibration": calibration_points(policy),
                }
            )
        return _json(
            {
                "routers": routers,
                "upstreams": {side: up.name for side, up in state.upstreams.items()},
                "auto": auto_info(state),
                "auth": state.auth,
                "log_prompts": state.settings.log_prompts,
                "feedback": state.store is not None,
                "route_on": state.settings.route_on,
                "worker": state.worker,
            }
        )

    @router.post("/ui/api/score", include_in_schema=False)
    async def score(request: Request) -> Response:
        """The win rate of a prompt and the decision at a threshold or strong share; no model is called.

        Body: ``{"prompt": str, "router": name?, "threshold": float?}`` or ``..., "strong_fraction": float?``.
        """
        state.authorize(request)
        body = load_json(await state.read_body(request) or b"null")
        if not isinstance(body, dict):
            raise ErrorResponse(400, 'the body must be a JSON object {"prompt": ...}', code="invalid_request")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT_CHARS:
            raise ErrorResponse(
                400, f"prompt must be text of at most {MAX_PROMPT_CHARS} characters", code="invalid_request"
            )
        name, policy = _policy(state, body.get("router"))
        threshold, share = _number(body, "threshold"), _number(body, "strong_fraction")
        if threshold is not None and share is not None:
            raise ErrorResponse(400, "give threshold or strong_fraction, not both", code="invalid_request")
        suffix = ""
        if share is not None:
            if not policy.router.calibrated_thresholds:
                raise ErrorResponse(
                    400,
                    f"router {policy.router_name!r} has no calibration: give a threshold instead",
                    code="router_not_calibrated",
                )
            threshold = policy.router.threshold_for(share)
            suffix = f"-{share * 100:g}%"
        elif threshold is not None:
            suffix = f"-{threshold!r}"
        try:
            text = routing_text(turns([{"role": "user", "content": prompt}]), state.settings.route_on)
            decision = await policy.adecide(text, threshold)
        except InvalidInputError as exc:
            raise ErrorResponse(400, str(exc), code="invalid_prompt", param="prompt") from None
        return _json(
            {
                **decision.as_dict(),
                "text": text,
                "strong_fraction": share if share is not None else share_at(policy, decision.threshold),
                "model": f"{MODEL_PREFIX}{name}{suffix}",
            }
        )

    @router.get("/ui/api/recent", include_in_schema=False)
    async def recent(request: Request) -> Response:
        """This worker's latest decisions, newest first; routing texts only under ``--log-prompts``."""
        state.authorize(request)
        now = time.time()
        items = [{**item, "age_s": round(now - item["time"], 3)} for item in reversed(state.recent)]
        return _json({"log_prompts": state.settings.log_prompts, "worker": state.worker, "decisions": items})

    @router.get("/ui/api/learn", include_in_schema=False)
    async def learn_view(request: Request) -> Response:
        """The feedback store's counts and its traffic report (``{"enabled": false}`` without a store)."""
        state.authorize(request)
        name, policy = _policy(state, request.query_params.get("router"))
        return _json(await learn.answer(name, policy))

    return router


__all__ = ["STATIC_FILES", "LearnView", "auto_info", "calibration_points", "share_at", "ui_router"]
