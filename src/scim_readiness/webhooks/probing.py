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

if TYPE_CHECKING:
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.config import WebhookSection
    from scim_readiness.model import Status
    from scim_readiness.plugin.contract import Clock, FindingRecorder
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.webhooks.sender import EventTarget, Outcome, Sender, Senders
    from scim_readiness.webhooks.test_users import TestUserRecords
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


def missing_webhook_setting(webhook: WebhookSection) -> str | None:
    """``webhook.url`` or ``webhook.secret`` when the config lacks it (an empty secret counts
    as missing), else None."""
    if not webhook.url:
        return "webhook.url"
    if webhook.secret is None or not webhook.secret.get_secret_value():
        return "webhook.secret"
    return None


def webhook_sender(
    senders: Senders,
    target: EventTarget,
    findings: FindingRecorder,
    *,
    timeout_s: float,
    code: str,
) -> Sender:
    """A sender (not yet entered: ``async with``) to the configured webhook, signing with its
    secret, for ``target``; WARN first on ``findings``, as the calling check's ``code``, when
    no organisation is configured.
    Deliveries reuse kept-alive connections. An app may close one after a refusal (a 413 sent
    before the body is read does); the sender then sends the next delivery on a new
    connection, which it may because nothing of it had been written, so no delivery fails for
    the client's reasons instead of the app's (see ``Sender``)."""
    from scim_readiness.webhooks.sender import warn_if_fake_organization

    # Made before the warning: a sender refused for this URL leaves the check a plain SKIP.
    sender = senders.to_webhook(target, timeout_s)
    warn_if_fake_organization(findings, target, code=code)
    return sender


def record_possibly_applied(records: TestUserRecords, deliveries: Iterable[Delivered]) -> None:
    """A delivery the app accepted may have created its test user, even one it should have
    refused: cleanup must then deactivate the user as well as delete it (a later ledger entry
    supersedes the first)."""
    for delivery in deliveries:
        outcome = delivery.outcome
        if delivery.identity is not None and outcome is not None and outcome.accepted:
            records.record(delivery.identity, expect_applied=True)


async def send_sentinel(
    records: TestUserRecords,
    sender: Sender,
    view: AppView,
    sentinel: TestIdentity,
    *,
    clock: Clock,
    budget_s: float,
) -> tuple[Outcome, AppUser | None]:
    """Create a genuine test user (``sentinel``) and wait, up to ``budget_s``, until the app
    shows it: what its delivery got, and the user (None: refused, or not seen in time). Once
    it is seen, an app that works in order has handled everything sent before it. ProbeError
    propagates."""
    from scim_readiness.events import EventType
    from scim_readiness.webhooks.test_users import user_event_data

    records.record(sentinel, expect_applied=True)
    sent = await sender.send_event(
        "sentinel",
        sender.event(
            EventType.USER_CREATED, user_event_data(sentinel, sender.target.organization_id)
        ),
    )
    if not sent.accepted:
        return sent, None
    return sent, await view.wait_visible(sentinel, budget_s=budget_s, clock=clock)
