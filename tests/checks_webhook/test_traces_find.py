"""AppView.find asks by id and by email at once and answers as if it had asked one after the
other; find_all looks for many users at once, answers in order. Concurrency is proven with
events (a lookup that can only finish while the other is in flight), never with timings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

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
    return AppView(probe, by_id=True, by_email=True, listing=False)  # type: ignore[arg-type]


def test_both_lookups_are_asked_at_once_for_a_user_the_app_does_not_hold() -> None:
    probe = ScriptedProbe({}, {}, together=True)
    assert asyncio.run(view(probe).find(IDS.user("absent"))) is None


def test_the_record_by_id_wins_and_a_failed_email_lookup_is_then_ignored() -> None:
    alice = user("alice")
    identity = IDS.user("alice")
    probe = ScriptedProbe(
        {identity.directory_user_id: alice}, {identity.email: ProbeError("email lookup broke")}
    )
    assert asyncio.run(view(probe).find(identity)) == alice


def test_without_a_record_by_id_the_email_lookup_answers_or_fails() -> None:
    bob = user("bob")
    identity = IDS.user("bob")
    assert asyncio.run(view(ScriptedProbe({}, {identity.email: bob})).find(identity)) == bob
    failing = ScriptedProbe({}, {identity.email: ProbeError("email lookup broke")})
    with pytest.raises(ProbeError, match="email lookup broke"):
        asyncio.run(view(failing).find(identity))
    broken_id = ScriptedProbe({identity.directory_user_id: ProbeError("id lookup broke")}, {})
    with pytest.raises(ProbeError, match="id lookup broke"):
        asyncio.run(view(broken_id).find(identity))


def test_find_all_answers_in_order() -> None:
    people = [IDS.user(label) for label in ("c1", "c2", "c3")]
    carol = user("c2")
    probe = ScriptedProbe({people[1].directory_user_id: carol}, {})
    assert asyncio.run(view(probe).find_all(people)) == [None, carol, None]
