"""`webhook-endpoint`: Webhook endpoint: HTTPS, domain, reachability (checklist item 2).

Not implemented yet: always SKIP, never PASS.
"""

from __future__ import annotations

from scim_readiness.check import CheckInfo
from scim_readiness.context import CheckContext

CHECK = CheckInfo(
    id="webhook-endpoint",
    title="Webhook endpoint: HTTPS, domain, reachability",
    checklist_item=2,
    needs=("webhook",),
    mutates=False,
    docs_url="https://docs.scalekit.com/authenticate/implement-workflows/implement-webhooks",
)


async def run(ctx: CheckContext) -> None:
    ctx.findings.skipped(
        "Webhook endpoint: HTTPS, domain, reachability: not implemented yet",
        why="This check has not been built yet, so nothing was observed.",
    )
