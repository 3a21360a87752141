"""AppView.find asks by id, then by email; find_all looks for many users at once (every id,
then every missing email) and answers in order. Concurrency is proven with
events (a lookup that can only finish while the other is in flight), never with timings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from scim_readiness.clients.probe import AppUser
from scim_readiness.errors import ProbeError
from scim_readiness.plugin.identities import TestIdentities
from scim_readiness.webhooks.traces import AppView

IDS = TestIdentities(run_id="sr0123456789")


def user(identity_label: str) -> AppUser:
    identity = IDS.user(identity_label)
    return AppUser(
        id=f"app-{identity_label}",
        directory_user_id=identity.directory_user_id,
        email=identity.email,
        name=None,
        active=True,
    )


class ScriptedProbe:
    """Answers lookups from ``by_id`` / ``by_email`` (an exception is raised); with
    ``together`` each lookup waits until the other kind has been asked too."""

    def __init__(
        self,
        by_id: dict[str, object],
        by_email: dict[str, object],
        *,
        together: bool = False,
    ) -> None:
        self.by_id, self.by_email, self.together = by_id, by_email, together
        self.asked_id, self.asked_email = asyncio.Event(), asyncio.Event()

    async def _answer(self, table: dict[str, object], key: str) -> AppUser | None:
        found = table.get(key)
        if isinstance(found, Exception):
            raise found
        return found if isinstance(found, AppUser) else None

    async def user_by_id(self, directory_user_id: str) -> AppUser | None:
        self.asked_id.set()
        if self.together:
            await asyncio.wait_for(self.asked_email.wait(), 5)
        return await self._answer(self.by_id, directory_user_id)

    async def user_by_email(self, email: str) -> AppUser | None:
        self.asked_email.set()
        if self.together:
            await asyncio.wait_for(self.asked_id.wait(), 5)
        return await self._answer(self.by_email, email)

    async def list_users(self) -> AsyncIterator[AppUser]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def aclose(self) -> None:
        return None


def view(probe: ScriptedProbe) -> AppView:
    return AppView(probe, by_id=True, by_email=True, listing=False)


def test_find_all_asks_every_lookup_by_id_at_once_then_by_email_for_the_missing() -> None:
    """Each lookup by id finishes only once all of them are in flight; the email lookups
    come after, only for those not found by id, all at once too."""
    people = [IDS.user(label) for label in ("c1", "c2", "c3")]
    carol, dave = user("c2"), user("c3")
    started = {"id": 0, "email": 0}
    all_by_id, all_by_email = asyncio.Event(), asyncio.Event()

    class Probe(ScriptedProbe):
        async def user_by_id(self, directory_user_id: str) -> AppUser | None:
            started["id"] += 1
            if started["id"] == len(people):
                all_by_id.set()
            await asyncio.wait_for(all_by_id.wait(), 5)
            assert started["email"] == 0
            return await self._answer(self.by_id, directory_user_id)

        async def user_by_email(self, email: str) -> AppUser | None:
            started["email"] += 1
            if started["email"] == 2:
                all_by_email.set()
            await asyncio.wait_for(all_by_email.wait(), 5)
            return await self._answer(self.by_email, email)

    probe = Probe({people[1].directory_user_id: carol}, {people[2].email: dave})
    assert asyncio.run(view(probe).find_all(people)) == [None, carol, dave]
    assert started == {"id": 3, "email": 2}


def test_find_all_without_email_lookups_asks_by_id_only() -> None:
    people = [IDS.user(label) for label in ("e1", "e2")]
    probe = ScriptedProbe({}, {people[0].email: ProbeError("must not be asked")})
    lone = AppView(probe, by_id=True, by_email=False, listing=False)
    assert asyncio.run(lone.find_all(people)) == [None, None]


def test_a_failed_lookup_is_raised_as_itself_once_the_others_are_cancelled() -> None:
    """One lookup fails while another hangs: find_all raises that ProbeError (not an
    exception group), and only after the hanging lookup was cancelled and ended, so no
    request goes on unobserved after the check recorded the error."""
    people = [IDS.user(label) for label in ("f1", "f2")]
    hanging_started, hanging_ended = asyncio.Event(), asyncio.Event()

    class Probe(ScriptedProbe):
        async def user_by_id(self, directory_user_id: str) -> AppUser | None:
            if directory_user_id == people[0].directory_user_id:
                hanging_started.set()
                try:
                    await asyncio.sleep(60)
                finally:
                    hanging_ended.set()
            await asyncio.wait_for(hanging_started.wait(), 5)
            raise ProbeError("user_by_id answered HTTP 500")

    async def scenario() -> None:
        try:
            await view(Probe({}, {})).find_all(people)
        except ProbeError as exc:
            assert exc.message == "user_by_id answered HTTP 500"
            assert hanging_ended.is_set()
        else:
            raise AssertionError("the failed lookup was not raised")

    asyncio.run(asyncio.wait_for(scenario(), 10))
