"""Probing the app's webhook with the checker's own deliveries, as ``webhook-signature`` and
``bad-data`` do.

Both need the same things around their deliveries, kept here once: the webhook URL and secret
from the config, a :class:`~scim_readiness.webhooks.sender.Sender` addressed to the configured
organisation (with a warning when there is none), the ledger kept in step with what the app
may have applied, and a *sentinel*: a last genuine user whose appearance in the app shows
that the deliveries sent before it have been handled, so looking for their traces means
something.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from scim_readiness.plugin.options import PropagationOptions

if TYPE_CHECKING:
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.model import Status
    from scim_readiness.plugin.context import CheckContext
    from scim_readiness.plugin.contract import FindingRecorder
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.webhooks.sender import Outcome, Sender
    from scim_readiness.webhooks.traces import AppView


class Delivered(Protocol):
    """A delivery that may carry a test user, and what it got back (None: not sent yet)."""

    identity: TestIdentity | None
    outcome: Outcome | None


class Judgement(NamedTuple):
    """What the app's answer to one delivery means, before it becomes a finding."""

    status: Status
    title: str
    expected: str = ""
    why: str = ""
    fix: str = ""

    def record(self, findings: FindingRecorder, outcome: Outcome, *, code: str) -> None:
        """Record the judgement, as the calling check's ``code``, with the answer as what
        was observed."""
        findings.record(
            self.status,
            self.title,
            expected=self.expected,
            observed=outcome.summary(),
            why=self.why,
            fix=self.fix,
            evidence=outcome.evidence(),
            code=code,
        )


def missing_webhook_setting(ctx: CheckContext) -> str | None:
    """``webhook.url`` or ``webhook.secret`` when the config lacks it (an empty secret counts
    as missing), else None."""
    webhook = ctx.config.webhook
    if not webhook.url:
        return "webhook.url"
    if webhook.secret is None or not webhook.secret.get_secret_value():
        return "webhook.secret"
    return None


def webhook_sender(ctx: CheckContext, *, timeout_s: float, code: str) -> Sender:
    """A sender (not yet entered: ``async with``) to the configured webhook, signing with its
    secret, for the configured organisation; WARN first, as the calling check's ``code``,
    when no organisation is configured.
    Deliveries reuse kept-alive connections. An app may close one after a refusal (a 413 sent
    before the body is read does); the sender then sends the next delivery on a new
    connection, which it may because nothing of it had been written, so no delivery fails for
    the client's reasons instead of the app's (see ``Sender``)."""
    from scim_readiness.webhooks.sender import Sender, event_target, warn_if_fake_organization

    webhook = ctx.config.webhook
    if not webhook.url or webhook.secret is None:
        raise ValueError("webhook_sender needs webhook.url and webhook.secret")
    target = event_target(ctx)
    # Made before the warning: a sender refused for this URL leaves the check a plain SKIP.
    sender = Sender(
        ctx,
        webhook.url,
        webhook.secret.get_secret_value(),
        target,
        timeout_s,
    )
    warn_if_fake_organization(ctx, target, code=code)
    return sender


def propagation_budget(ctx: CheckContext) -> float:
    """How long to wait for a genuine delivery to show in the app (option
    ``propagation_timeout_s``)."""
    return PropagationOptions.of(ctx).propagation_timeout_s


def record_possibly_applied(ctx: CheckContext, deliveries: Iterable[Delivered]) -> None:
    """A delivery the app accepted may have created its test user, even one it should have
    refused: cleanup must then deactivate the user as well as delete it (a later ledger entry
    supersedes the first)."""
    from scim_readiness.webhooks.test_users import record_test_user

    for delivery in deliveries:
        outcome = delivery.outcome
        if delivery.identity is not None and outcome is not None and outcome.accepted:
            record_test_user(ctx, delivery.identity, expect_applied=True)


def record_absent(ctx: CheckContext, identity: TestIdentity) -> None:
    """The app was seen not to hold ``identity``: nothing is left for cleanup to remove."""
    ctx.ledger.removed("user", identity.directory_user_id, channel="events", check_id=ctx.info.id)


async def send_sentinel(
    ctx: CheckContext, sender: Sender, view: AppView, label: str, *, budget_s: float
) -> tuple[Outcome, AppUser | None]:
    """Create a genuine test user (``label``) and wait, up to ``budget_s``, until the app shows
    it: what its delivery got, and the user (None: refused, or not seen in time). Once it is
    seen, an app that works in order has handled everything sent before it. ProbeError
    propagates."""
    from scim_readiness.events import EventType
    from scim_readiness.webhooks.test_users import record_test_user, user_event_data

    sentinel = ctx.identities.user(label)
    record_test_user(ctx, sentinel, expect_applied=True)
    sent = await sender.send_event(
        "sentinel",
        sender.event(
            EventType.USER_CREATED, user_event_data(sentinel, sender.target.organization_id)
        ),
    )
    if not sent.accepted:
        return sent, None
    return sent, await view.wait_visible(sentinel, budget_s=budget_s, clock=ctx.clock)
