"""`admin-portal`: Admin portal configuration (checklist item 8).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="admin-portal",
    title="Admin portal configuration",
    checklist_item=8,
    needs=("scalekit",),
    mutates=False,
    docs_url="https://docs.scalekit.com/guides/integrations/scim-integrations/",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Admin portal configuration: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
