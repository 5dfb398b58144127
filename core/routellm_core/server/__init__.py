"""An OpenAI-compatible routing server (``routellm serve``): any OpenAI client routes through ``base_url``.

Needs the ``server`` extra (``pip install 'routellm-integrations[server]'``). Importing this package costs nothing;
the FastAPI app is built by :func:`create_app`::

    from routellm_core.server import create_app

    app = create_app(strong="openai:gpt-4o", weak="openai:gpt-4o-mini", routers=("default",))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routellm_core._optional import requires_extra
from routellm_core.server.settings import ServerSettings

if TYPE_CHECKING:
    from routellm_core.server.app import create_app
    from routellm_core.server.runner import ServerThread, run
    from routellm_core.server.upstreams import ChatModelUpstream, OpenAIUpstream, Upstream

_LAZY = {
    "create_app": "routellm_core.server.app",
    "ServerThread": "routellm_core.server.runner",
    "run": "routellm_core.server.runner",
    "Upstream": "routellm_core.server.upstreams",
    "OpenAIUpstream": "routellm_core.server.upstreams",
    "ChatModelUpstream": "routellm_core.server.upstreams",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    with requires_extra("server", "the routing server"):
        return getattr(importlib.import_module(module), name)


__all__ = ["ChatModelUpstream", "OpenAIUpstream", "ServerSettings", "ServerThread", "Upstream", "create_app", "run"]
