"""Browser requests a server without auth refuses: another site's page (CSRF) and DNS rebinding.

A server without bearer tokens binds to loopback, but any web page the user opens can still send it requests: a
cross-site ``POST`` with a ``text/plain`` body needs no CORS preflight, so it would spend the upstreams' keys
(``/v1/chat/completions``) and write the feedback store (``/v1/feedback``); and a page whose host name re-resolves
to ``127.0.0.1`` or to the server's LAN address (DNS rebinding) is same-origin with the server and reads its
answers. With auth on neither works: a page cannot send the ``Authorization`` header cross-site, and the browser
holds no token to send. So without auth the server answers browser requests of its own origin only (``Origin``
naming the ``Host`` asked for), and only under host names that cannot be rebound (``localhost``, ``*.localhost``, an
IP address) or that the operator allowed (``allowed_hosts``: a reverse proxy keeping the ``Host`` header, a LAN or
container name). The host check applies to every request on any connection (a container sees its bridge address,
not the loopback a published port was bound to, and a ``--no-auth`` server on a LAN is reachable by a rebound name
too): a page's same-origin ``fetch`` over plain HTTP carries no mark of a browser (no ``Sec-Fetch-*`` headers outside
secure contexts). Clients that are not browsers and address the server by an IP address or ``localhost`` (the
``openai`` SDK, curl) are unaffected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

#: The port a URL scheme implies.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no part of the address
    except ValueError:
        return None


def _unrebindable(hostname: str) -> bool:
    """Whether a browser reaches ``hostname`` without asking DNS: an IP address, ``localhost`` or ``*.localhost`` (a
    final dot allowed)."""
    name = hostname.rstrip(".")
    return _ip(hostname) is not None or name == "localhost" or name.endswith(".localhost")


def _host_and_port(host: str) -> tuple[str, int | None] | None:
    """The name and port of a ``Host`` header (``None`` for one that is no host)."""
    try:
        parts = urlsplit(f"//{host.strip()}")
        return (parts.hostname or "", parts.port) if parts.hostname else None
    except ValueError:  # a port that is no number
        return None


def _same_origin(origin: str, host: str | None) -> bool:
    """Whether the ``Origin`` a browser sent is the origin of the ``Host`` it asked for."""
    asked = _host_and_port(host) if host else None
    if asked is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    if default is None or not parts.hostname:  # "null" (a sandboxed frame, a file), another scheme
        return False
    # a browser leaves the port out of Host exactly when it is the default of the URL's scheme (same origin: same
    # scheme), so a Host without a port means the Origin's default port
    return parts.hostname == asked[0] and (port or default) == (asked[1] or default)


def _allowed_origin(origin: str, allowed_hosts: Collection[str]) -> bool:
    """Whether an ``Origin`` names one of the host names the operator allowed (the public name of a reverse proxy
    that rewrites ``Host`` to the address it forwards to)."""
    try:
        hostname = urlsplit(origin.strip()).hostname
    except ValueError:
        return False
    return hostname is not None and hostname in allowed_hosts


def browser_refusal(headers: Mapping[str, str], allowed_hosts: Collection[str] = ()) -> tuple[str, str] | None:
    """``(code, message)`` when a server without auth must refuse this request, else ``None``.

    Args:
        headers: The request headers (case-insensitive, as Starlette's).
        allowed_hosts: Host names (lower case) allowed besides the unrebindable ones, and as the ``Origin`` of a
            page whose ``Host`` a reverse proxy rewrote.
    """
    origin, host = headers.get("origin"), headers.get("host")
    cross = origin is not None and not (_same_origin(origin, host) or _allowed_origin(origin, allowed_hosts))
    if cross or (origin is None and headers.get("sec-fetch-site") == "cross-site"):
        sender = f" (Origin: {origin!r:.80})" if origin is not None else ""
        return (
            "cross_origin_request",
            f"this server has no auth, so it answers no browser request from another site's page{sender}: such a "
            "page could spend its models and write its feedback store; give the server bearer tokens "
            "(--api-keys-env) to call it from a page it does not serve, or allow the page's host name "
            "(--allowed-host, behind a reverse proxy that rewrites the Host header)",
        )
    asked = _host_and_port(host) if host else None
    if asked is not None and not _unrebindable(asked[0]) and asked[0].rstrip(".") not in allowed_hosts:
        return (
            "host_not_allowed",
            f"this server has no auth and answers under IP addresses and localhost only, not under the host name "
            f"{asked[0]!r:.80} (a web page could reach it there by DNS rebinding): address it by its IP address or "
            "as localhost, allow the name (--allowed-host NAME: a reverse proxy that keeps the Host header, a LAN or "
            "container name), or give the server bearer tokens (--api-keys-env)",
        )
    return None


__all__ = ["browser_refusal"]
