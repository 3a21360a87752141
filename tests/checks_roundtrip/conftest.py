"""Fixtures for the round-trip checks (see stack.py for the stack itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks_roundtrip.stack import Stack, StackFactory, start_stack
from scim_readiness.devstack.emulator import process_ca, trust_env


@pytest.fixture(scope="session", autouse=True)
def _trust_process_ca() -> None:
    # grpc reads its roots file once per process: set it before any handshake.
    trust_env(process_ca().ca_path)


@pytest.fixture
def stack_factory(tmp_path: Path) -> StackFactory:
    return lambda **kw: start_stack(tmp_path, **kw)


@pytest.fixture
def stack(stack_factory: StackFactory) -> Iterator[Stack]:
    with stack_factory() as running:
        yield running
