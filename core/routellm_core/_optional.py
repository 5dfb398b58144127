"""Optional dependencies: a missing one raises an error that names the extra installing it.

The base install (``pip install routellm-integrations``) runs the static ``fast`` router only; everything heavier is
an extra, imported lazily inside the function that needs it::

    with requires_extra("minilm", "the MiniLM embedder"):
        import onnxruntime
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from routellm_core.errors import MissingDependencyError

#: The distribution whose extras install the optional packages.
DISTRIBUTION = "routellm-integrations"


def install_command(extra: str) -> str:
    """The pip command that installs ``extra``."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


@contextmanager
def requires_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn an ``ImportError`` from the imports in the block into a :class:`MissingDependencyError` naming ``extra``.

    Args:
        extra: The extra that installs the block's packages (``"minilm"``, ``"neural"``, ``"langchain"``...).
        feature: What needs them, for the message (``"the MiniLM embedder"``).

    Raises:
        MissingDependencyError: A package imported in the block is missing or cannot be imported.
    """
    try:
        yield
    except MissingDependencyError:
        raise
    except ImportError as exc:
        package = (exc.name or "").split(".")[0] or None
        raise MissingDependencyError(
            f"{feature} needs the optional package {package or 'dependencies'!r}, which cannot be imported "
            f"({exc}); install it with: {install_command(extra)}",
            name=package,
            extra=extra,
        ) from exc
