"""`environment`: Production environment configuration (checklist item 1).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="environment",
    title="Production environment configuration",
    checklist_item=1,
    needs=("scalekit",),
    mutates=False,
    docs_url="https://docs.scalekit.com/",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Production environment configuration: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
