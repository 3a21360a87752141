"""`user-lifecycle`: User create, update and deprovision round trips (checklist item 4).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="user-lifecycle",
    title="User create, update and deprovision round trips",
    checklist_item=4,
    needs=("webhook", "probe"),
    mutates=True,
    docs_url="https://docs.scalekit.com/reference/webhooks/overview",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "User create, update and deprovision round trips: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
