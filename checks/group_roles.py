"""`group-roles`: Group-based role assignment (checklist item 5).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="group-roles",
    title="Group-based role assignment",
    checklist_item=5,
    needs=("scalekit", "roles"),
    mutates=True,
    docs_url="https://docs.scalekit.com/guides/integrations/scim-integrations/",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Group-based role assignment: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
