"""Removing what the ledger says a run created and did not remove.

Two callers:

* the runner, at the end of every run (also a failed or interrupted one), as a safety net
  behind each check's own ``cleanup``: :func:`sweep_run` removes what this run still holds and
  adds an ERROR finding to the check that created anything that could not be removed;
* ``scim-readiness cleanup``, after a ``kill -9`` or a cleanup that failed:
  :func:`clean_ledger` works through every outstanding entry of every run.

Removal goes through the channel that created the object, with the code the checks use
(:mod:`scim_readiness.provisioning.drivers` for round-trip users and groups, events and SCIM;
:mod:`scim_readiness.webhooks.sender` for the single users the webhook checks record), so there is
one way to deprovision a test user. Entries that do not look like test identities (a ledger
edited by hand, or another tool's file) are never acted on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scim_readiness.plugin.contract import SystemClock
from scim_readiness.plugin.identities import TestIdentities, refusal_reason
from scim_readiness.plugin.ledger import Ledger, LedgerEntry

if TYPE_CHECKING:
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.clients.probe import Probe
    from scim_readiness.config import Config
    from scim_readiness.model import CheckResult

# One (run, check) group of entries gets this long; a cleanup never waits on a dead target
# for longer than this, whatever the targets' own timeouts are.
GROUP_TIMEOUT_S = 30.0
# The whole of `scim-readiness cleanup` (or the runner's sweep) gets this long.
TOTAL_TIMEOUT_S = 120.0

_Key = tuple[str, str, str]  # run id, kind, object id


@dataclass(frozen=True, slots=True)
class Leftover:
    """An object that may still exist, and why it could not be removed."""

    entry: LedgerEntry
    reason: str
    refused: bool = False  # never acted on: the line does not prove a test identity

    def describe(self) -> str:
        refused = "refused, " if self.refused else ""
        return f"{describe(self.entry)}: {refused}{self.reason}"


@dataclass(frozen=True, slots=True)
class CleanupReport:
    removed: tuple[LedgerEntry, ...] = ()
    unremovable: tuple[Leftover, ...] = ()
    interrupted: bool = False

    @property
    def clean(self) -> bool:
        return not self.unremovable and not self.interrupted


def describe(entry: LedgerEntry) -> str:
    """``user diruser_… (events, user-lifecycle, run sr…) zz-…@….invalid`` — no secrets."""
    what = entry.details.get("email") or entry.details.get("display_name") or ""
    label = (
        f"{entry.kind} {entry.object_id} ({entry.channel}, {entry.check_id}, run {entry.run_id})"
    )
    return f"{label} {what}".rstrip()


def _key(entry: LedgerEntry) -> _Key:
    return (entry.run_id, entry.kind, entry.object_id)


def latest_states(ledger: Ledger) -> dict[_Key, LedgerEntry]:
    """The last entry of every object: what the ledger believes now."""
    found: dict[_Key, LedgerEntry] = {}
    for entry in ledger.entries():
        found[_key(entry)] = entry
    return found


def looks_like_test_object(entry: LedgerEntry, name_prefix: str, email_domain: str) -> bool:
    """Whether the line's own names prove a test identity (see :func:`refusal_reason`)."""
    return refusal_reason(entry, name_prefix, email_domain) is None


async def live_refusal(
    entry: LedgerEntry, names: TestIdentities, probe: Probe | None
) -> str | None:
    """Ask the app, where a probe is configured, what it holds under the line's directory
    user id: a user there whose email is not a test email of the line's run means the line
    points at somebody real, and nothing is sent. (SCIM-assigned ids are confirmed against
    the directory itself just before their removal, in provisioning.)"""
    from scim_readiness.errors import ProbeError

    if probe is None or entry.kind != "user" or entry.channel != "events":
        return None
    try:
        found = await probe.user_by_id(entry.object_id)
    except ProbeError:
        return None  # the probe cannot say; the line's own names already prove it
    if found is None or not found.email or names.is_test_email_of_run(found.email):
        return None
    return (
        f"the app holds directory user {entry.object_id} under an email that is not a test "
        "identity of this run, so it is a real account and was left alone"
    )


@dataclass(frozen=True, slots=True)
class _Removal:
    """What removing one check's leftovers of one run uses: that run's ledger and test
    identities, the check's id, and what reaches the app and the directory."""

    config: Config
    ledger: Ledger
    identities: TestIdentities
    check_id: str
    tls: TlsSettings
    probe: Probe | None


async def _remove_group(removal: _Removal, entries: Sequence[LedgerEntry]) -> str | None:
    """Remove one check's leftovers of one run; the reason it stopped early, if it did."""
    from scim_readiness.clients.http import make_async_client
    from scim_readiness.plugin.options import EventOptions
    from scim_readiness.provisioning.drivers import (
        Channels,
        DriverRecords,
        cleanup_outstanding,
        teardown,
    )
    from scim_readiness.webhooks.sender import Senders, event_target, remove_test_users

    config, ledger, identities = removal.config, removal.ledger, removal.identities
    try:
        async with asyncio.timeout(GROUP_TIMEOUT_S):
            # The check's own option, as its events carried it (read here, so an option that
            # does not fit is this group's reason, not the end of the whole cleanup).
            raw = config.checks.for_check(removal.check_id).options
            environment_id = EventOptions.configured(raw, check_id=removal.check_id).environment_id
            senders = Senders(config, removal.tls, SystemClock(), identities)
            # Users recorded by the webhook checks say whether the app was meant to apply the
            # delivery; their own removal honours that (no deactivation of a user that a
            # correct app never created).
            if any("expect_applied" in e.details for e in entries):
                target = event_target(config.scalekit, identities.run_id, environment_id)
                await remove_test_users(ledger, removal.check_id, target, senders)
            if any(e.kind in ("user", "group") for e in ledger.outstanding(identities.run_id)):
                channels = Channels(
                    config=config,
                    records=DriverRecords(ledger, removal.check_id, config.scalekit),
                    senders=senders,
                    http=lambda timeout_s: make_async_client(removal.tls, timeout_s=timeout_s),
                    environment_id=environment_id,
                )
                await cleanup_outstanding(
                    teardown(
                        config,
                        ledger,
                        identities,
                        removal.check_id,
                        removal.probe,
                        open_driver=channels.driver,
                    )
                )
    except TimeoutError:
        return f"removal did not finish within {GROUP_TIMEOUT_S:g} s"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a target fault must not stop the other groups
        from scim_readiness.clients.answers import describe_http_error

        return describe_http_error(exc)
    return None


def _last_reason(ledger: Ledger, entry: LedgerEntry, since: float) -> str | None:
    reason: str | None = None
    for item in ledger.entries():
        if _key(item) == _key(entry) and item.state == "unremovable" and item.at >= since:
            reason = str(item.details.get("reason") or "") or None
    return reason


async def remove_entries(
    config: Config,
    ledger_path: Path,
    entries: Iterable[LedgerEntry],
    *,
    tls: TlsSettings,
    probe: Probe | None = None,
    timeout_s: float = TOTAL_TIMEOUT_S,
) -> CleanupReport:
    """Remove ``entries`` (outstanding ledger entries) through the channel that created
    each; record ``removed``/``unremovable`` in the ledger; report both."""
    names = config.test_identities
    started = time.time()
    groups: dict[tuple[str, str], list[LedgerEntry]] = {}
    refused: list[Leftover] = []
    removed: list[LedgerEntry] = []
    for entry in entries:
        reason = refusal_reason(entry, names.name_prefix, names.email_domain)
        if reason is None:
            identities = TestIdentities(
                entry.run_id, email_domain=names.email_domain, name_prefix=names.name_prefix
            )
            reason = await live_refusal(entry, identities, probe)
        if reason is not None:
            refused.append(Leftover(entry, reason, refused=True))
        elif entry.kind == "event":
            # An event cannot be unsent; once delivered there is nothing to remove.
            Ledger(ledger_path, entry.run_id).removed(
                "event", entry.object_id, channel=entry.channel, check_id=entry.check_id
            )
            removed.append(entry)
        else:
            groups.setdefault((entry.run_id, entry.check_id), []).append(entry)
    stopped: dict[tuple[str, str], str] = {}
    interrupted = False
    deadline = time.monotonic() + timeout_s
    for (run_id, check_id), members in groups.items():
        if time.monotonic() >= deadline:
            stopped[(run_id, check_id)] = f"cleanup's time limit of {timeout_s:g} s ran out"
            continue
        removal = _Removal(
            config,
            Ledger(ledger_path, run_id),
            TestIdentities(run_id, email_domain=names.email_domain, name_prefix=names.name_prefix),
            check_id,
            tls,
            probe,
        )
        try:
            reason = await _remove_group(removal, members)
        except asyncio.CancelledError:
            # A second Ctrl-C/SIGTERM: stop here, leave the rest to `scim-readiness cleanup`.
            _uncancel()
            interrupted = True
            stopped[(run_id, check_id)] = "cleanup was interrupted"
            break
        if reason is not None:
            stopped[(run_id, check_id)] = reason
    states = latest_states(Ledger(ledger_path, ""))
    leftovers = list(refused)
    for (run_id, check_id), members in groups.items():
        for entry in members:
            now = states.get(_key(entry))
            if now is not None and now.state in ("removed", "never_created"):
                removed.append(entry)
                continue
            reason = (
                _last_reason(Ledger(ledger_path, ""), entry, started)
                or stopped.get((run_id, check_id))
                or "not reached (its channel is not configured, or the check's cleanup "
                "does not handle it)"
            )
            leftovers.append(Leftover(entry, reason))
    return CleanupReport(tuple(removed), tuple(leftovers), interrupted)


async def clean_ledger(
    config: Config,
    ledger_path: Path,
    *,
    tls: TlsSettings,
    run_id: str | None = None,
    probe: Probe | None = None,
    timeout_s: float = TOTAL_TIMEOUT_S,
) -> CleanupReport:
    """Remove everything outstanding in the ledger (of one run, or of all)."""
    outstanding = Ledger(ledger_path, "").outstanding(run_id)
    if not outstanding:
        return CleanupReport()
    own_probe = probe is None and config.probe is not None
    if own_probe and config.probe is not None:
        from scim_readiness.clients.probe import build_probe

        probe = build_probe(config.probe, tls)
    try:
        return await remove_entries(
            config, ledger_path, outstanding, tls=tls, probe=probe, timeout_s=timeout_s
        )
    finally:
        if own_probe and probe is not None:
            await probe.aclose()


async def sweep_run(
    config: Config,
    ledger: Ledger,
    results: Sequence[CheckResult],
    *,
    tls: TlsSettings,
    probe: Probe | None = None,
) -> list[CheckResult]:
    """The runner's safety net after every run: remove what this run still holds, and put an
    ERROR finding on each check that left something that could not be removed."""
    states = latest_states(ledger)
    # Entries a check's own cleanup already tried and gave up on are reported, not retried
    # (that would double the wait on a dead target); `cleanup` retries them later.
    pending = [
        e
        for e in ledger.outstanding(ledger.run_id)
        if states.get(_key(e)) is None or states[_key(e)].state == "created"
    ]
    given_up = [
        Leftover(e, str(states[_key(e)].details.get("reason") or "its check could not remove it"))
        for e in ledger.outstanding(ledger.run_id)
        if states.get(_key(e)) is not None and states[_key(e)].state == "unremovable"
    ]
    from scim_readiness.provisioning.drivers import close_never_accepted

    pending = await close_never_accepted(ledger, pending, probe)
    still = {
        _key(e) for e in await close_never_accepted(ledger, [g.entry for g in given_up], probe)
    }
    given_up = [g for g in given_up if _key(g.entry) in still]
    if not pending and not given_up:
        return list(results)
    report = CleanupReport()
    if pending:
        try:
            report = await remove_entries(
                config, ledger.path, pending, tls=tls, probe=probe, timeout_s=GROUP_TIMEOUT_S
            )
        except asyncio.CancelledError:
            _uncancel()
            report = CleanupReport(
                unremovable=tuple(Leftover(e, "cleanup was interrupted") for e in pending),
                interrupted=True,
            )
    return annotate(results, [*report.unremovable, *given_up])


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()


def annotate(results: Sequence[CheckResult], leftovers: Sequence[Leftover]) -> list[CheckResult]:
    """Each check that left test data behind gets one ERROR finding listing it."""
    from scim_readiness.engine.codes import LEFT_BEHIND
    from scim_readiness.model import Finding, Status, fold_status

    by_check: dict[str, list[Leftover]] = {}
    for item in leftovers:
        by_check.setdefault(item.entry.check_id, []).append(item)
    out: list[CheckResult] = []
    for result in results:
        items = by_check.pop(result.id, [])
        if not items:
            out.append(result)
            continue
        shown = "; ".join(item.describe() for item in items[:5])
        more = f"; and {len(items) - 5} more" if len(items) > 5 else ""
        finding = Finding(
            title=f"{len(items)} test object(s) could not be removed after the run",
            status=Status.ERROR,
            expected="every test user and group this run created removed again",
            observed=shown + more,
            why="Test identities left in the app or the directory look like real accounts "
            "to anyone who does not know their naming scheme, and may keep access.",
            fix="fix what the reasons name, then run `scim-readiness cleanup` with the same "
            "config: it retries every object still recorded in the ledger",
            docs_url=result.docs_url,
            code=LEFT_BEHIND,
        )
        findings = (*result.findings, finding)
        out.append(
            dataclasses.replace(
                result, findings=findings, status=fold_status(f.effective_status for f in findings)
            )
        )
    return out
