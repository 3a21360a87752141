"""The lean directory stream against the emulator, through the real SDK."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from scim_readiness.checks.data_model.directory_stream import (
    has_attribute,
    iter_user_pages,
    lean_user,
)

from checks_scalekit.conftest import StackFactory
from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.scalekit import ScalekitGateway, connect
from scim_readiness.devstack.demo_stack import Stack
from scim_readiness.devstack.emulator import default_seed
from scim_readiness.errors import ScalekitError


async def _gateway(stack: Stack) -> ScalekitGateway:
    return await connect(stack.config().scalekit, TlsSettings(ca_bundle=stack.ca_path))


def test_lean_users_agree_with_the_gateways_views(stack: Stack) -> None:
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    next(iter(directory.users.values())).active = False
    emu.generate_users(n=70)  # three pages and a bit

    async def both() -> tuple[list[Any], list[Any]]:
        gateway = await _gateway(stack)
        try:
            lean = [
                lean_user(m)
                async for page in iter_user_pages(gateway, emu.organization_id, emu.directory_id)
                for m in page
            ]
            views = [
                v
                async for page in gateway.iter_directory_users(
                    emu.organization_id, emu.directory_id
                )
                for v in page
            ]
        finally:
            await gateway.aclose()
        return lean, views

    lean, views = asyncio.run(both())
    assert len(lean) == len(views) == 75
    for mine, theirs in zip(lean, views, strict=True):
        assert mine.id == theirs.id and mine.email == theirs.email
        assert mine.active is theirs.active
        assert mine.roles == theirs.roles
        assert mine.groups == tuple((g.id, g.display_name) for g in theirs.groups)
    assert [u.active for u in lean].count(False) == 1
    assert {r for u in lean for r in (u.roles or ())} == {"editor", "admin"}


def test_attributes_are_found_at_the_top_level_and_in_the_detail(
    stack_factory: StackFactory,
) -> None:
    seed = default_seed()
    directory = seed.directories[0]
    first = directory.users[0].model_copy(
        update={"attributes": {"department": "R&D", "custom_attributes": {"cost_center": "42"}}}
    )
    seed.directories[0] = directory.model_copy(update={"users": [first, *directory.users[1:]]})
    with stack_factory(seed=seed) as stack:
        emu = stack.emulator

        async def first_page() -> list[Any]:
            gateway = await _gateway(stack)
            try:
                async for page in iter_user_pages(gateway, emu.organization_id, emu.directory_id):
                    return page
            finally:
                await gateway.aclose()
            return []

        page = asyncio.run(first_page())
    by_email = {m.email: m for m in page}
    ada = by_email[first.user_name]
    other = next(m for m in page if m is not ada)
    assert has_attribute(ada, "given_name") and has_attribute(ada, "department")
    assert has_attribute(ada, "cost_center")
    assert not has_attribute(other, "department") and not has_attribute(ada, "manager")


def test_a_directory_that_stops_answering_ends_in_a_scalekit_error(stack: Stack) -> None:
    emu = stack.emulator
    emu.delays["ListDirectoryUsers"] = 30.0

    async def read() -> None:
        gateway = await _gateway(stack)
        try:
            pages = iter_user_pages(
                gateway, emu.organization_id, emu.directory_id, page_timeout_s=0.5
            )
            async for _ in pages:
                pass
        finally:
            await gateway.aclose()

    try:
        with pytest.raises(ScalekitError, match="no answer"):
            asyncio.run(read())
    finally:
        emu.delays.clear()


def test_page_size_is_capped_like_the_api(stack: Stack) -> None:
    async def read() -> None:
        gateway = await _gateway(stack)
        try:
            async for _ in iter_user_pages(gateway, "org", "dir", page_size=31):
                pass
        finally:
            await gateway.aclose()

    with pytest.raises(ValueError, match="30"):
        asyncio.run(read())
