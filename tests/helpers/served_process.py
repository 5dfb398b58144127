"""A ``routellm serve`` process for the tests that need real worker processes: started, waited for until it answers
``/health``, stopped (SIGINT, then SIGKILL of its process group), and its output kept for the test to read."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

#: How long a server (its workers load the routers) may take to answer ``/health``.
STARTUP_S = 90


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A running server: its base URL, and its output (stdout and stderr) once it stopped."""

    url: str
    output: str = ""


@contextmanager
def serving(command: list[str], env: Mapping[str, str], port: int) -> Iterator[Served]:
    """Run ``command`` (a server on ``port``) until it answers ``/health``; stop it afterwards, its output then in
    :attr:`Served.output`."""
    process = subprocess.Popen(
        command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    served = Served(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                assert process.stdout is not None
                raise AssertionError(f"the server exited: {process.stdout.read().decode()[-2000:]}")
            assert time.monotonic() < deadline, "the server did not start in time"
            try:
                if httpx.get(f"{served.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield served
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        assert process.stdout is not None
        served.output = process.stdout.read().decode()
