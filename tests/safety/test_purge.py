"""The interruption suite's purge between kill points: it must really remove what a failed
point left (or every later point fails on the same leftover), and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_readiness.devstack.sampleapp.store import NewUser

from .conftest import NAME_PREFIX, leftovers, purge_test_identities, settle_deliveries

if TYPE_CHECKING:
    from scim_readiness.devstack.demo_stack import Stack


def _app_user(directory_user_id: str, email: str) -> NewUser:
    return NewUser(
        directory_user_id=directory_user_id,
        organization_id="org_purge",
        email=email,
        name="Purge Test",
        active=True,
        roles=(),
        tenant="tenant-purge",
        attributes={},
    )


def test_purge_removes_every_test_identity_and_nothing_else(stack: Stack) -> None:
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    email = f"{NAME_PREFIX}-purge@scim-readiness.example.com"
    user = emu.state.create_user(directory, user_name=email, email=email, given_name="Ånne")
    emu.state.create_group(directory, display_name=f"{NAME_PREFIX}-purge-Roles")
    # An app-only leftover (a delivery the directory never knew of) and a real account.
    stack.app.store.bulk_insert_users(
        [
            _app_user("diruser_purge_left", f"{NAME_PREFIX}-left@example.invalid"),
            _app_user("diruser_purge_real", "real.person@acme-corp.example"),
        ]
    )
    assert settle_deliveries(stack)
    left = leftovers(stack)
    assert email in left.directory_users and left.app_active_users and left.directory_groups
    assert user.id in directory.users

    purge_test_identities(stack)

    assert not leftovers(stack), leftovers(stack)
    real = stack.app.store.users_by_email("real.person@acme-corp.example")
    assert [u.active for u in real] == [True]
