"""Argument helpers shared by the ``routellm`` command and ``routellm serve`` (argparse only, no routing imports)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from routellm_core.errors import InvalidInputError


def argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type=`` from a parser raising ``InvalidInputError``: argparse then names the option in the error.

    Example:
        >>> parser = argparse.ArgumentParser(prog="demo")
        >>> _ = parser.add_argument("--n", type=argument_type(int))
        >>> parser.parse_args(["--n", "3"]).n
        3
    """

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except InvalidInputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")  # argparse's "invalid <name> value" when it is another error
    return convert


def pairs_once(option: str, pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A repeatable ``NAME=VALUE`` option's ``(name, value)`` pairs as a dict, each name given once.

    Args:
        option: The option, named in the error (``"--prices"``).
        pairs: The parsed pairs, in the order given.

    Raises:
        InvalidInputError: A name given twice.
    """
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise InvalidInputError(f"{option} gives {name!r} twice")
        found[name] = value
    return found


__all__ = ["argument_type", "pairs_once"]
