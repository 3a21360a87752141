"""What a probe that finds users by scanning its list cost, in one line for the text reports.

The figures are each check's ``probe_scan`` metrics (see ``clients.probe.ScanCost``); a run
whose probe looks every user up directly has none, and the line is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scim_readiness.model import Report


def _count(cost: Mapping[str, Any], key: str) -> int:
    value = cost.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def scan_cost_line(report: Report) -> str | None:
    """``Probe scans: N lookups … M users read in P pages (per check …)``, or None."""
    costs = [
        (check.id, cost)
        for check in report.checks
        if isinstance(cost := check.metrics.get("probe_scan"), Mapping) and _count(cost, "lookups")
    ]
    if not costs:
        return None
    lookups, users, pages = (
        sum(_count(cost, key) for _, cost in costs) for key in ("lookups", "users_read", "pages")
    )
    per_check = "; ".join(
        f"{check_id} {_count(cost, 'lookups'):,} lookups, {_count(cost, 'users_read'):,} users"
        for check_id, cost in costs
    )
    return (
        f"Probe scans: {lookups:,} lookups were answered by reading the user list, "
        f"{users:,} users read in {pages:,} pages ({per_check}); a user_by_email or "
        "user_by_id template answers each lookup with one request"
    )
