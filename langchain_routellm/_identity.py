"""What tells two routed chat models apart in LangChain's cache key beyond names: the router's state, the escalation.

LangChain keys a cached answer by the model's ``_identifying_params``. A router given by name or checkpoint path is
named by it (loading it again gives the same router); a router given as an instance (or inside a ``RoutingPolicy``)
is named by its registry type only (``"difficulty"``), which two routers trained differently share, so it is keyed
by a fingerprint of its state (its config and learned arrays, as its ``save()`` would write them).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from routellm_core.errors import NotFittedError

if TYPE_CHECKING:
    from routellm_core.escalation import Escalation
    from routellm_core.routers.base import WinRateModel
    from routellm_core.routing.policy import RoutingPolicy

_LOCK = threading.Lock()
#: Fingerprints by policy: a front end's policy is built with it (or given, shared), and a copy that changes the router
#: builds a new one, so each is fingerprinted once.
_FINGERPRINTS: weakref.WeakKeyDictionary[RoutingPolicy, str] = weakref.WeakKeyDictionary()


def policy_fingerprint(policy: RoutingPolicy) -> str:
    """:func:`router_fingerprint` of the policy's router, computed once per policy object (a router refitted in place
    keeps the key it had when its model first used the cache: build the model anew after refitting)."""
    with _LOCK:
        known = _FINGERPRINTS.get(policy)
    if known is None:
        known = router_fingerprint(policy.router)
        with _LOCK:
            _FINGERPRINTS[policy] = known
    return known


def router_fingerprint(router: WinRateModel) -> str:
    """The router's :meth:`~routellm_core.routers.base.WinRateModel.fingerprint` (its config and learned arrays as
    ``save()`` would write them); an unfitted router (nothing to fingerprint) by its type and constructor
    parameters, so the call still fails with the router's own error."""
    try:
        return router.fingerprint()
    except NotFittedError:
        unfitted = {"router": router.name, "params": router.get_params()}
        return hashlib.sha256(json.dumps(unfitted, sort_keys=True, default=repr).encode()).hexdigest()


def escalation_key(escalate: Escalation, second_name: str | None) -> dict[str, Any]:
    """The escalation's settings as JSON-able values (``second_name``: the built second model's name; a check object
    by its ``config()``, an extractor by its qualified name)."""
    key: dict[str, Any] = {}
    for field in fields(escalate):
        value = getattr(escalate, field.name)
        if field.name == "second":
            value = second_name
        elif field.name == "check" and not isinstance(value, str):
            config = getattr(value, "config", None)
            value = config() if callable(config) else getattr(value, "name", type(value).__qualname__)
        elif callable(value):
            value = getattr(value, "__qualname__", type(value).__qualname__)
        key[field.name] = value
    return key
