"""`bad-data`: Duplicate and invalid data fail safely (checklist item 6).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="bad-data",
    title="Duplicate and invalid data fail safely",
    checklist_item=6,
    needs=("webhook",),
    mutates=True,
    docs_url="https://docs.scalekit.com/reference/webhooks/overview",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Duplicate and invalid data fail safely: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
