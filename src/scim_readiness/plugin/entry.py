"""A check's entry points: ``run`` and ``cleanup``, and how a declaration names a body that
is imported only when the check runs (see the contract's docstring)."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from scim_readiness.errors import PluginError

if TYPE_CHECKING:
    from scim_readiness.plugin.context import CheckContext

#: A check's ``run`` or ``cleanup``.
RunFn = Callable[["CheckContext"], Coroutine[Any, Any, None]]


def deferred(module: str, name: str) -> RunFn:
    """A check's ``run`` or ``cleanup``: ``name`` in ``module``, imported when first called.

    The module must exist when the check is declared (PluginError otherwise, so a misspelt
    body fails at discovery, not in the middle of a run); importing it is left to the call,
    so that reading the declaration never pays for the body."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise PluginError(
            f"check body {module} does not exist",
            hint="deferred() names the module that defines the check's run and cleanup",
        )

    async def call(ctx: CheckContext) -> None:
        entry = getattr(importlib.import_module(module), name, None)
        if not callable(entry):
            raise PluginError(f"check body {module} defines no {name}()")
        await entry(ctx)

    call.__qualname__ = call.__name__ = name
    call.__module__ = module
    return call
