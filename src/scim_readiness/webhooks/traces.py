"""What test deliveries left behind in the app, seen through the probe.

The webhook checks send deliveries that *would* create a distinctive test user if the app
applied them. Whether one did is only meaningful once a delivery the app certainly applied
(a *control*) is visible: an app that queues work shows nothing for a while, and silence
would then prove nothing. :meth:`AppView.wait_visible` establishes that;
:meth:`AppView.find` and :meth:`AppView.count` then look for what should (not) be there.

A probe may answer only some lookups (by directory user id, by email, the full list): an
:class:`AppView` uses the ones the config defines, so a partial probe is not an error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scim_readiness.errors import ProbeError
from scim_readiness.plugin.wait import wait_until

if TYPE_CHECKING:
    import asyncio

    from scim_readiness.clients.probe import AppUser, Probe
    from scim_readiness.config import ProbeSection
    from scim_readiness.plugin.contract import Clock, FindingRecorder
    from scim_readiness.plugin.identities import TestIdentity


@dataclass(frozen=True, slots=True)
class RecordCount:
    """How many app records match each directory user id and each email."""

    by_directory_id: dict[str, int]
    by_email: dict[str, int]
    scanned: int
    complete: bool  # False when the scan stopped at the limit


@dataclass(frozen=True, slots=True)
class AppView:
    """The probe, limited to the lookups the config defines."""

    probe: Probe
    by_id: bool
    by_email: bool
    listing: bool

    async def user_by_id(self, directory_user_id: str) -> AppUser | None:
        return await self.probe.user_by_id(directory_user_id) if self.by_id else None

    async def user_by_email(self, email: str) -> AppUser | None:
        return await self.probe.user_by_email(email) if self.by_email else None

    async def find(self, identity: TestIdentity) -> AppUser | None:
        """The app's record for ``identity``: by directory user id, then by email.

        One after the other, not both at once: asked together they would save a round trip
        only for a user the app does not hold, and cost a request more for every one it does
        (measured: delivery-semantics, which polls 100 present users a round, slowed by a
        third). To look for many users, :meth:`find_all` does it in two round trips."""
        found = await self.user_by_id(identity.directory_user_id)
        if found is None:
            found = await self.user_by_email(identity.email)
        return found

    async def find_all(self, identities: Sequence[TestIdentity]) -> list[AppUser | None]:
        """:meth:`find` for each of ``identities``, in the same order, in two rounds: every
        lookup by id at once, then by email at once for those not found by id. Looking for
        the traces of N deliveries then costs two round trips, not up to 2 N, and never more
        requests than looking one at a time."""
        async with side_by_side() as group:
            by_id = [group.create_task(self.user_by_id(i.directory_user_id)) for i in identities]
        found: list[AppUser | None] = [task.result() for task in by_id]
        missing = [index for index, user in enumerate(found) if user is None]
        if self.by_email and missing:
            async with side_by_side() as group:
                by_email = {
                    index: group.create_task(self.user_by_email(identities[index].email))
                    for index in missing
                }
            for index, task in by_email.items():
                found[index] = task.result()
        return found

    async def wait_visible(
        self,
        identity: TestIdentity,
        *,
        budget_s: float,
        clock: Clock,
        until: Callable[[AppUser], bool] = lambda user: True,
    ) -> AppUser | None:
        """Poll until the app shows ``identity`` (and ``until`` holds for it), or the budget
        ends (then None); probe errors propagate once the budget is spent."""
        outcome = await wait_until(
            lambda: self.find(identity),
            lambda user: user is not None and until(user),
            budget_s=budget_s,
            clock=clock,
            retry_on=(ProbeError,),
        )
        if outcome.error is not None and not outcome.satisfied:
            raise outcome.error
        return outcome.value if outcome.satisfied else None

    async def count(
        self,
        *,
        directory_user_ids: Collection[str],
        emails: Collection[str],
        limit: int,
    ) -> RecordCount | None:
        """Scan the user list once (at most ``limit`` users) and count matches; None when
        the probe cannot list users."""
        if not self.listing:
            return None
        by_id = dict.fromkeys(directory_user_ids, 0)
        wanted_emails = {email.lower(): email for email in emails}
        by_email = dict.fromkeys(emails, 0)
        scanned = 0
        complete = True
        async for user in self.probe.list_users():
            if scanned >= limit:
                complete = False
                break
            scanned += 1
            if user.directory_user_id in by_id:
                by_id[user.directory_user_id] += 1
            original = wanted_emails.get(user.email.lower())
            if original is not None:
                by_email[original] += 1
        return RecordCount(by_id, by_email, scanned, complete)


@contextlib.asynccontextmanager
async def side_by_side() -> AsyncIterator[asyncio.TaskGroup]:
    """A task group for look-ups that run at once: the first to fail (a ProbeError, say) is
    raised as itself, as it would be had they run one after another, and only once the
    others are cancelled and awaited, so none goes on unobserved after the check moved on.
    (``asyncio.gather`` would raise it while the others still run, their errors unseen.)"""
    import asyncio

    try:
        async with asyncio.TaskGroup() as group:
            yield group
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        raise first from first.__cause__  # its own cause, not the group


def _lookups(section: ProbeSection | None) -> tuple[bool, bool, bool]:
    if section is None:
        return True, True, True  # a probe handed over directly (tests): assume all
    from scim_readiness.clients.probe import probe_answers

    # A list-only probe answers lookups by scanning the list: that counts as a lookup.
    answers = probe_answers(section)
    return answers.by_id is not None, answers.by_email is not None, answers.listing


#: The fix for a finding that needed the app's state but had no view of it.


def record_probe_failure(findings: FindingRecorder, exc: ProbeError, *, code: str) -> None:
    """ERROR (with the calling check's ``code``): the probe failed while the app's state was
    being read."""
    findings.errored(
        "Could not read the app's state through the probe",
        observed=exc.message,
        fix="Check the probe section of the config.",
        code=code,
    )


def app_view(probe: Probe | None, section: ProbeSection | None) -> tuple[AppView | None, str]:
    """The view of the app through ``probe``, limited to the lookups ``section`` (the
    config's probe section) defines; or None and why not."""
    if probe is None:
        return None, "no probe is configured"
    by_id, by_email, listing = _lookups(section)
    if not (by_id or by_email):
        return None, "the probe defines neither user_by_id nor user_by_email"
    return AppView(probe, by_id, by_email, listing), ""


def describe(user: AppUser) -> str:
    """A short description of an app record for a finding (no secrets in a user record)."""
    state = "active" if user.active else "inactive"
    return (
        f"app user {user.id} ({user.email}, directory id {user.directory_user_id or '-'}, "
        f"name {user.name or '-'}, {state})"
    )


def brief(user: AppUser) -> str:
    """One short line for lists of many records."""
    return f"{user.id} ({user.email}, {'active' if user.active else 'inactive'})"
