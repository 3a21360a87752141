"""Fixtures for the safety suites: the demo stack on loopback, the CLI as a subprocess, and
a view of every test identity the app and the emulator still hold."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from scim_readiness.devstack.emulator import process_ca, trust_env

if TYPE_CHECKING:
    from scim_readiness.devstack.demo_stack import Stack

NAME_PREFIX = "zz-scim-readiness"
# The emulator's SCIM endpoint validates emails and refuses the reserved .invalid domain,
# so runs that drive SCIM use a reserved example domain instead.
SCIM_EMAIL_DOMAIN = "scim-readiness.example.com"
MUTATING = ("user-lifecycle", "group-roles", "bad-data", "webhook-signature")
#: How long the emulator may take to finish its webhook deliveries (first attempts and the
#: scaled retries of the demo stack) before the app's state is judged.
DELIVERY_SETTLE_S = 30.0


@pytest.fixture(scope="session", autouse=True)
def _trust_process_ca() -> None:
    # grpc reads its roots file once per process: set it before any handshake.
    trust_env(process_ca().ca_path)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    from scim_readiness.devstack.demo_stack import start_stack

    with start_stack() as running:
        yield running


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"NO_COLOR": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1"})
    env.pop("SCIM_READINESS_DEBUG", None)
    env.update(extra)
    return env


def write_config(stack: Stack, path: Path, *, scim: bool = False, **sections: Any) -> Path:
    """The stack's config (secrets as ${VAR}); ``scim`` drives the round trips through SCIM."""
    stack.write_config(path)
    raw = yaml.safe_load(path.read_text())
    raw["ledger_path"] = str(path.parent / "ledger.jsonl")
    if scim:
        raw["checks"]["user-lifecycle"] = {"options": {"mode": "scim"}}
        raw["checks"]["group-roles"] = {"options": {"mode": "scim"}}
        raw["test_identities"] = {"email_domain": SCIM_EMAIL_DOMAIN}
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(name), dict):
            raw[name] = {**raw[name], **value}
        else:
            raw[name] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def closed_url(path: str = "/") -> str:
    """An https URL on a loopback port nothing listens on: connection refused."""
    from .faulty_servers import closed_port

    return f"https://127.0.0.1:{closed_port()}{path}"


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "scim_readiness", *args]


def run_cli(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_args(*args), capture_output=True, text=True, timeout=timeout, env=env or cli_env()
    )


@dataclass(frozen=True)
class Leftovers:
    app_active_users: tuple[str, ...]
    app_groups: tuple[str, ...]
    directory_users: tuple[str, ...]
    directory_groups: tuple[str, ...]

    def __bool__(self) -> bool:
        return any(
            (self.app_active_users, self.app_groups, self.directory_users, self.directory_groups)
        )


def settle_deliveries(stack: Stack, timeout_s: float = DELIVERY_SETTLE_S) -> bool:
    """Wait (bounded) until the emulator has finished every webhook delivery so far: a SCIM
    change reaches the app asynchronously, as it does from Scalekit, so the app's state is
    only final once the directory's deliveries are."""
    return stack.emulator.deliveries.wait_idle(timeout=timeout_s)


def purge_test_identities(stack: Stack) -> None:
    """Remove every test identity from the directory (through the emulator, which tells the
    app) and then from the app's store directly, so the next test starts clean whatever the
    last one left behind. Only for test teardown: it proves nothing about the checker."""
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    with emu.state.lock:
        groups = [g for g in directory.groups.values() if NAME_PREFIX in g.display_name]
        users = [u for u in directory.users.values() if NAME_PREFIX in u.email]
    for group in groups:
        emu.state.delete_group(directory, group)
    for user in users:
        emu.state.delete_user(directory, user)
    settle_deliveries(stack)
    pattern = f"%{NAME_PREFIX}%"
    with stack.app.store.transaction() as tx:
        tx.conn.execute(
            "UPDATE users SET active = 0, deleted = 1 WHERE email LIKE ? AND active = 1",
            (pattern,),
        )
        tx.conn.execute(
            "UPDATE groups SET deleted = 1 WHERE display_name LIKE ? AND deleted = 0", (pattern,)
        )


def leftovers(stack: Stack) -> Leftovers:
    """Every test identity the app holds active, and every one the emulator holds at all."""
    store = stack.app.store
    active = tuple(
        u.email for u in store.list_users(limit=1_000_000) if u.active and NAME_PREFIX in u.email
    )
    groups = tuple(
        g["display_name"]
        for g in store.groups()
        if not g["deleted"] and NAME_PREFIX in str(g["display_name"])
    )
    emu = stack.emulator
    directory = emu.state.directory(emu.directory_id)
    with emu.state.lock:
        dir_users = tuple(u.email for u in directory.users.values() if NAME_PREFIX in u.email)
        dir_groups = tuple(
            g.display_name for g in directory.groups.values() if NAME_PREFIX in g.display_name
        )
    return Leftovers(active, groups, dir_users, dir_groups)


def ledger_lines(path: Path) -> Sequence[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return ()
