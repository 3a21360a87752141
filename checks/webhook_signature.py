"""`webhook-signature`: Webhook signature validation (checklist item 3).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="webhook-signature",
    title="Webhook signature validation",
    checklist_item=3,
    needs=("webhook",),
    mutates=True,
    docs_url="https://docs.scalekit.com/authenticate/implement-workflows/implement-webhooks",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Webhook signature validation: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
