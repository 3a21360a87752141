"""From a check's context to the parts the provisioning and webhook helpers take.

Those helpers take what they use (a sender, the ledger, the test identities, the probe, a
clock, config sections), so that the removal sweep can make the same parts from the ledger and
the config alone, with no check running. A check holds all of them in its context;
:class:`CheckParts` is the one place that unpacks a :class:`CheckContext` for those helpers.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from scim_readiness.plugin.options import EventOptions, RoundTripOptions
from scim_readiness.provisioning.drivers import Channels, DriverRecords, teardown
from scim_readiness.webhooks.sender import Senders, event_target
from scim_readiness.webhooks.test_users import TestUserRecords

if TYPE_CHECKING:
    from scim_readiness.plugin.context import CheckContext
    from scim_readiness.provisioning.drivers import (
        Mode,
        ProvisioningDriver,
        RoleAssignments,
        Teardown,
    )
    from scim_readiness.webhooks.sender import EventTarget


class CheckParts:
    """The parts of one check's context, each made when first asked for. Reading an option
    (the event target, the drivers) may raise ConfigError then, as it did in the check."""

    def __init__(self, ctx: CheckContext) -> None:
        self._ctx = ctx

    @cached_property
    def senders(self) -> Senders:
        """What every sender of the check is made with."""
        ctx = self._ctx
        return Senders(ctx.config, ctx.tls, ctx.clock, ctx.identities)

    def event_target(self) -> EventTarget:
        """Where the check's events are addressed (option ``environment_id``)."""
        ctx = self._ctx
        return event_target(ctx.config.scalekit, ctx.run_id, EventOptions.of(ctx).environment_id)

    @cached_property
    def test_users(self) -> TestUserRecords:
        """The ledger lines of the test users the check's deliveries may create."""
        ctx = self._ctx
        return TestUserRecords(ctx.ledger, ctx.info.id, ctx.config.scalekit.organization_id)

    @cached_property
    def channels(self) -> Channels:
        """The ways the check's drivers reach the directory."""
        ctx = self._ctx
        return Channels(
            config=ctx.config,
            records=DriverRecords(ctx.ledger, ctx.info.id, ctx.config.scalekit),
            senders=self.senders,
            http=lambda timeout_s: ctx.http(timeout_s=timeout_s),
            environment_id=EventOptions.of(ctx).environment_id,
        )

    def driver(self, mode: Mode, roles: RoleAssignments | None = None) -> ProvisioningDriver:
        """A driver for ``mode``, speaking the option ``idp_profile``'s dialect of SCIM."""
        profile = RoundTripOptions.of(self._ctx).idp_profile if mode == "scim" else "generic"
        return self.channels.driver(mode, roles, profile=profile)

    def teardown(self, roles: RoleAssignments | None = None) -> Teardown:
        """What removing the check's test objects of this run uses; its drivers are made
        only when something needs removing through them."""
        ctx = self._ctx
        return teardown(
            ctx.config,
            ctx.ledger,
            ctx.identities,
            ctx.info.id,
            ctx.probe,
            open_driver=lambda channel: self.channels.driver(channel, roles),
        )
