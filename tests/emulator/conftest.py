"""Emulator fixtures: one process CA trusted by requests and grpc, fresh emulators per test."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from scim_readiness.clients.http import TlsSettings
from scim_readiness.config import ScalekitSection
from scim_readiness.devstack.emulator import Emulator, Seed, process_ca, start_emulator, trust_env

T = TypeVar("T")


@pytest.fixture(scope="session", autouse=True)
def _trust_process_ca() -> None:
    # grpc reads its roots file once per process: set it before any handshake.
    trust_env(process_ca().ca_path)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with start_emulator(delivery_delay_scale=0.001) as emu:
        yield emu


def section_for(
    emu: Emulator, *, secret: str | None = None, timeout_s: float = 5.0
) -> ScalekitSection:
    return ScalekitSection(
        environment_url=emu.env_url,
        client_id=emu.client_id,
        client_secret=SecretStr(secret if secret is not None else emu.client_secret),
        organization_id=emu.organization_id,
        directory_id=emu.directory_id,
        timeout_s=timeout_s,
    )


def tls_for(emu: Emulator) -> TlsSettings:
    return TlsSettings(ca_bundle=str(emu.ca_path))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def seed_with(**changes: Any) -> Seed:
    from scim_readiness.devstack.emulator import default_seed

    return default_seed().model_copy(update=changes)
