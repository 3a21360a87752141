"""`scim-readiness cleanup` and the runner's end-of-run sweep, against the demo stack.

Test users are created the way the checks create them (the provisioning drivers, which keep
the ledger), then left behind on purpose, as a killed run leaves them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING

from scim_readiness.check import CheckInfo, CheckSpec
from scim_readiness.cleanup import _context
from scim_readiness.context import CheckContext, TlsSettings
from scim_readiness.identities import new_run_id
from scim_readiness.ledger import Ledger
from scim_readiness.model import Status
from scim_readiness.provisioning import EventsDriver, RoleAssignments

from .conftest import closed_url, leftovers, run_cli, write_config

if TYPE_CHECKING:
    from scim_readiness.config import Config
    from scim_readiness.demo_stack import Stack


def _leave_user_behind(config: Config, ledger: Path, stack: Stack, label: str) -> str:
    """Create one active test user in the app through signed events, as user-lifecycle
    would, and return its email; nothing removes it."""
    run_id = new_run_id()
    ctx = _context(
        config, ledger, run_id, "user-lifecycle", TlsSettings(ca_bundle=stack.ca_path), None
    )

    async def create() -> str:
        driver = EventsDriver(ctx, RoleAssignments())
        try:
            user = await driver.create_user(ctx.identities.user(label))
        finally:
            await driver.aclose()
        return user.email

    email = asyncio.run(create())
    assert stack.app.store.users_by_email(email)[0].active
    return email


def test_cleanup_removes_what_a_killed_run_left_and_reports_it(
    stack: Stack, tmp_path: Path
) -> None:
    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "killed")
    listed = run_cli("cleanup", "-c", str(path), "--list")
    assert listed.returncode == 1 and email in listed.stdout
    # The next run says so before it starts.
    warned = run_cli("run", "-c", str(path), "--only", "environment", "--ca-bundle", stack.ca_path)
    assert "earlier runs left 1 test object(s)" in warned.stderr, warned.stderr
    assert stack.app.store.users_by_email(email)[0].active  # --list removes nothing
    done = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "removed" in done.stdout and email in done.stdout
    assert not leftovers(stack)
    assert Ledger(ledger, "").outstanding() == []
    again = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert again.returncode == 0 and "nothing outstanding" in again.stdout


def test_cleanup_says_what_it_could_not_remove_and_retries_later(
    stack: Stack, tmp_path: Path
) -> None:
    good = write_config(stack, tmp_path / "readiness.yaml")
    ledger = tmp_path / "ledger.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "stuck")
    broken = write_config(
        stack, tmp_path / "broken.yaml", webhook={"url": closed_url("/webhooks/scalekit")}
    )
    done = run_cli("cleanup", "-c", str(broken), "--ca-bundle", stack.ca_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "NOT removed" in done.stdout and email in done.stdout
    assert "connect" in done.stdout.lower() or "refused" in done.stdout.lower(), done.stdout
    assert "Traceback" not in done.stderr
    states = [json.loads(line)["state"] for line in ledger.read_text().splitlines()]
    assert "unremovable" in states
    assert stack.app.store.users_by_email(email)[0].active
    done = run_cli("cleanup", "-c", str(good), "--ca-bundle", stack.ca_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not leftovers(stack)


def test_cleanup_never_touches_what_is_not_named_as_a_test_identity(
    stack: Stack, tmp_path: Path
) -> None:
    path = write_config(stack, tmp_path / "readiness.yaml")
    ledger = Ledger(tmp_path / "ledger.jsonl", new_run_id())
    real = stack.app.store.list_users(limit=1)[0]
    # A hand-edited (or foreign) ledger line naming a real person.
    ledger.created("user", real.directory_user_id, channel="events", check_id="x", email=real.email)
    done = run_cli("cleanup", "-c", str(path), "--ca-bundle", stack.ca_path)
    assert done.returncode == 1
    assert "not named like a test identity" in done.stdout
    assert stack.app.store.users_by_email(real.email)[0].active


def test_the_runner_sweeps_what_a_check_left_and_flags_what_it_cannot(
    stack: Stack, tmp_path: Path
) -> None:
    """A check without a cleanup of its own leaves a user: the end-of-run sweep removes it;
    when the channel is down, the check gets an ERROR finding listing what is left."""
    from scim_readiness.runner import RunOptions, run_suite

    created: list[str] = []

    async def leaves_a_user(ctx: CheckContext) -> None:
        driver = EventsDriver(ctx, RoleAssignments())
        try:
            created.append((await driver.create_user(ctx.identities.user("swept"))).email)
        finally:
            await driver.aclose()
        # The events channel is gone from here on (for the second run).
        ctx.findings.passed("created a user and did not remove it")

    spec = CheckSpec(
        CheckInfo(id="leaky", title="leaky", checklist_item=0, mutates=True), leaves_a_user
    )
    options = RunOptions(ca_bundle=stack.ca_path)
    config = stack.config(ledger_path=str(tmp_path / "ledger.jsonl"))
    report = asyncio.run(run_suite(config, options, specs=[spec]))
    assert report.checks[0].status is Status.PASS
    assert not leftovers(stack), created
    assert Ledger(tmp_path / "ledger.jsonl", "").outstanding() == []

    # Now with the webhook unreachable for the sweep: the user cannot be created either, so
    # leave one first, then point the config at a closed port.
    ledger = tmp_path / "ledger2.jsonl"
    email = _leave_user_behind(stack.config(ledger_path=str(ledger)), ledger, stack, "flag")
    entries = Ledger(ledger, "").outstanding()
    broken = stack.config(ledger_path=str(ledger), webhook={"url": closed_url("/webhooks/x")})

    async def sweep() -> list[Status]:
        from scim_readiness.cleanup import sweep_run
        from scim_readiness.model import CheckResult, Finding

        result = CheckResult(
            id="user-lifecycle",
            title="t",
            checklist_item=4,
            status=Status.PASS,
            findings=(Finding("ran", Status.PASS),),
        )
        swept = await sweep_run(
            broken, Ledger(ledger, entries[0].run_id), [result], tls=TlsSettings(stack.ca_path)
        )
        assert "could not be removed" in swept[0].findings[-1].title
        assert email in swept[0].findings[-1].observed
        return [swept[0].status]

    assert asyncio.run(sweep()) == [Status.ERROR]
    done = run_cli(
        "cleanup", "-c", str(write_config(stack, tmp_path / "r.yaml")), "--ledger", str(ledger),
        "--ca-bundle", stack.ca_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not leftovers(stack)


def test_a_run_id_that_names_the_organisation_does_not_make_a_user_a_test_identity() -> None:
    from scim_readiness.cleanup import looks_like_test_object
    from scim_readiness.ledger import LedgerEntry

    def entry(run_id: str, object_id: str, **details: str) -> LedgerEntry:
        return LedgerEntry(run_id, "user", object_id, "events", "x", "created", 0.0, details)

    org = "org_60219377000000001"
    forged = entry(org, "diruser_real", email="alice@acme.example", organization_id=org)
    assert not looks_like_test_object(forged, "zz-scim-readiness", "example.invalid")
    genuine = entry("srabcdef0123", "diruser_srabcdef0123lifecycle", organization_id=org)
    assert looks_like_test_object(genuine, "zz-scim-readiness", "example.invalid")
    by_name = entry("sr1", "scim-id-1", email="zz-scim-readiness+sr1-x@example.invalid")
    assert looks_like_test_object(by_name, "zz-scim-readiness", "example.invalid")
