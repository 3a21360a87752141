"""`data-model`: Alignment with the app's user and organisation model (checklist item 7).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="data-model",
    title="Alignment with the app's user and organisation model",
    checklist_item=7,
    needs=("scalekit", "probe"),
    mutates=False,
    docs_url="https://docs.scalekit.com/guides/integrations/scim-integrations/",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Alignment with the app's user and organisation model: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
