"""Running the server: uvicorn in the foreground (one or more workers), or in a background thread (tests, notebooks)."""

from __future__ import annotations

import copy
import logging
import logging.config
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from routellm_core.errors import RouteLLMError
from routellm_core.server.settings import ServerSettings

logger = logging.getLogger("routellm_core.server")


def app_from_env() -> Any:
    """The app of one uvicorn worker, from the settings the CLI left in ``$ROUTELLM_SERVER_SETTINGS``."""
    from routellm_core.server.app import create_app

    return create_app(ServerSettings.from_env())


def run(
    settings: ServerSettings, *, host: str = "127.0.0.1", port: int = 6060, workers: int = 1, **uvicorn: Any
) -> None:
    """Serve in the foreground until interrupted.

    With ``workers > 1`` uvicorn starts that many processes sharing the port; each builds its own app (routers,
    upstream clients) from ``settings``, and their metrics add up in ``$PROMETHEUS_MULTIPROC_DIR`` (a private
    temporary folder unless you set one: :func:`~routellm_core.server.metrics.multiprocess_directory`). What they
    need is handed over through the environment while uvicorn runs (:meth:`ServerSettings.worker_environment`): the
    settings as JSON in ``$ROUTELLM_SERVER_SETTINGS``, the
    accepted bearer tokens in the variable ``api_keys_env`` names; API keys stay in the variables the settings name.
    Nothing secret goes on a command line or into a log. The first log line says whether auth is on.
    """
    import uvicorn as _uvicorn

    from routellm_core.server.app import create_app

    config = uvicorn.setdefault("log_config", log_config(uvicorn.get("log_level", "info")))
    if isinstance(config, dict):
        logging.config.dictConfig(config)  # now, so that the auth line and startup problems are shown
    logger.info("%s", auth_line(settings, host, port))
    if (warning := settings.workers_warning(workers)) is not None:
        logger.warning("routellm serve: %s", warning)
    app = create_app(settings)  # also checks the settings, routers and keys before any worker starts
    if workers <= 1:
        _uvicorn.run(app, host=host, port=port, **uvicorn)
        return
    del app
    from routellm_core.server.metrics import multiprocess_directory

    # The spawned workers inherit both: the settings, and the folder where they add up their metrics.
    with _environ(settings.worker_environment()), multiprocess_directory():
        _uvicorn.run(
            "routellm_core.server.runner:app_from_env", factory=True, host=host, port=port, workers=workers, **uvicorn
        )


def auth_line(settings: ServerSettings, host: str, port: int) -> str:
    """The first log line of a served app: whether requests need a bearer token."""
    tokens = settings.bearer_tokens()
    if tokens:
        return f"routellm serve: auth on ({len(tokens)} bearer token(s)) on {host}:{port}"
    return f"routellm serve: auth OFF: anyone who reaches {host}:{port} is served"


@contextmanager
def _environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set, restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging configuration, with the server's own logger (``routellm_core``) on its console handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["routellm_core"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


class ServerThread:
    """An ASGI app served by uvicorn in a background thread on 127.0.0.1 (port 0: a free one).

    Example:
        >>> with ServerThread(create_app(strong=..., weak=..., routers=("fast",))) as server:
        ...     client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, **uvicorn: Any) -> None:
        import uvicorn as _uvicorn

        uvicorn.setdefault("log_level", "warning")
        config = _uvicorn.Config(app, host=host, port=port, **uvicorn)
        self._server = _uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="routellm-server", daemon=True)
        self.app = app
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL (``http://127.0.0.1:<port>``)."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        """Start serving; returns once the socket accepts connections.

        Raises:
            RouteLLMError: The server did not start within ``timeout`` seconds.
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RouteLLMError(f"the server on {self.host}:{self.port} did not start within {timeout} s")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread (at most ``timeout`` seconds)."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
