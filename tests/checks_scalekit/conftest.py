"""Fixtures for the checks that read Scalekit: the demo stack, fresh per test.

``start_stack`` makes the process trust the emulator's CA (one per process: grpc reads its
roots file once), so every stack in the session shares it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from scim_readiness.devstack.demo_stack import Stack, start_stack

StackFactory = Callable[..., AbstractContextManager[Stack]]


@pytest.fixture
def stack_factory(tmp_path: Path) -> StackFactory:
    def factory(flaws: tuple[str, ...] = (), **kw: Any) -> AbstractContextManager[Stack]:
        return start_stack(flaws, workdir=tmp_path, delivery_delay_scale=0.001, **kw)

    return factory


@pytest.fixture
def stack(stack_factory: StackFactory) -> Iterator[Stack]:
    with stack_factory() as running:
        yield running
