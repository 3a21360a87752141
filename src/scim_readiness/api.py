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
    Unreachable,
)
from scim_readiness.model import Finding, Severity, Status, TimelineStep
from scim_readiness.plugin.contract import (
    CheckInfo,
    Clock,
    FindingCode,
    FindingRecorder,
    Need,
    ReadOnly,
    Sharing,
    SystemClock,
)
from scim_readiness.plugin.entry import deferred
from scim_readiness.plugin.options import CheckOptions, option

if TYPE_CHECKING:
    from scim_readiness.plugin.context import CheckContext

#: Evidence key of a SKIP finding that says one of the check's essential assertions was not
#: observed. The runner then reports the check SKIP, never PASS or WARN: a check passes only
#: when everything its docstring lists as essential was seen (see :func:`skipped_essential`).
ESSENTIAL_ASSERTION = "essential_assertion"


def skipped_essential(
    findings: FindingRecorder, assertion: str, title: str, **fields: Any
) -> Finding:
    """Record that ``assertion`` (one the check cannot PASS without, as its docstring names
    it) was not observed: a SKIP finding that makes the check SKIP unless something FAILed
    or ERRORed. ``fields`` are those of :meth:`FindingRecorder.skipped`."""
    evidence = {**(fields.pop("evidence", None) or {}), ESSENTIAL_ASSERTION: assertion}
    return findings.skipped(title, evidence=evidence, **fields)


def mark_essential(findings: FindingRecorder, assertion: str) -> None:
    """Mark the finding just recorded, when it is a SKIP (as a shared helper records one),
    as ``assertion`` not observed; see :func:`skipped_essential`."""
    import dataclasses

    if findings.items and findings.items[-1].status is Status.SKIP:
        last = findings.items[-1]
        evidence = {**last.evidence, ESSENTIAL_ASSERTION: assertion}
        findings.items[-1] = dataclasses.replace(last, evidence=evidence)


def __getattr__(name: str) -> Any:
    # The context brings the HTTP stack with it, and ``scim-readiness checks`` imports every
    # check's declaration, which imports this module: CheckContext is loaded on first use.
    if name == "CheckContext":
        from scim_readiness.plugin.context import CheckContext

        return CheckContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ESSENTIAL_ASSERTION",
    "CheckContext",
    "CheckInfo",
    "CheckOptions",
    "Clock",
    "ConfigError",
    "DeliveryRefused",
    "Finding",
    "FindingCode",
    "FindingRecorder",
    "Need",
    "ProbeError",
    "ReadOnly",
    "Sharing",
    "ReadinessError",
    "ScalekitAuthError",
    "ScalekitError",
    "Severity",
    "Status",
    "SystemClock",
    "TargetError",
    "TimelineStep",
    "Unreachable",
    "mark_essential",
    "deferred",
    "option",
    "skipped_essential",
]
