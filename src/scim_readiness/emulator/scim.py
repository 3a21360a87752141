"""SCIM 2.0 endpoint per directory (filled in below)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from scim_readiness.emulator.state import EmulatorState


def scim_routes(state: EmulatorState) -> list[BaseRoute]:
    return []
