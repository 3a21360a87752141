"""The one import for check authors.

A check is a module that defines ``CHECK`` (a :class:`CheckInfo`) and ``async def run(ctx)``;
everything it needs from the product to do that is named here, so a check written against
this module keeps working when the package's insides move::

    from scim_readiness.api import CheckContext, CheckInfo

    CHECK = CheckInfo(id="ninth", title="…", checklist_item=0)

    async def run(ctx: CheckContext) -> None:
        ctx.findings.passed("…", observed="…")

Names outside ``__all__`` and modules outside this one are the product's own and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scim_readiness.errors import (
    ConfigError,
    DeliveryRefused,
    ProbeError,
    ReadinessError,
    ScalekitAuthError,
    ScalekitError,
    TargetError,
)
from scim_readiness.model import Finding, Severity, Status, TimelineStep
from scim_readiness.plugin.contract import (
    CheckInfo,
    Clock,
    FindingRecorder,
    Need,
    ReadOnly,
    SystemClock,
)
from scim_readiness.plugin.options import CheckOptions, option

if TYPE_CHECKING:
    from scim_readiness.plugin.context import CheckContext


def __getattr__(name: str) -> Any:
    # The context brings the HTTP stack with it; ``scim-readiness checks`` imports every check
    # module, and a check names CheckContext in annotations only, so it is loaded on first use.
    if name == "CheckContext":
        from scim_readiness.plugin.context import CheckContext

        return CheckContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckContext",
    "CheckInfo",
    "CheckOptions",
    "Clock",
    "ConfigError",
    "DeliveryRefused",
    "Finding",
    "FindingRecorder",
    "Need",
    "ProbeError",
    "ReadOnly",
    "ReadinessError",
    "ScalekitAuthError",
    "ScalekitError",
    "Severity",
    "Status",
    "SystemClock",
    "TargetError",
    "TimelineStep",
    "option",
]
