"""The ``cleanup`` command: remove what earlier runs left, say what was done, and exit.

The removal itself is :mod:`scim_readiness.engine.sweep`; this module prints and decides the
exit code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from scim_readiness.config import Config
from scim_readiness.engine.sweep import clean_ledger, describe
from scim_readiness.plugin.ledger import Ledger


def earlier_leftovers_note(config: Config) -> str | None:
    """A one-line warning when earlier runs left test data in the ledger (None otherwise);
    reads one local file, no network."""
    from scim_readiness.plugin.ledger import default_ledger_path

    path = default_ledger_path(config)
    try:
        count = len(Ledger(path, "").outstanding())
    except OSError:
        return None
    if not count:
        return None
    return (
        f"warning: earlier runs left {count} test object(s) recorded in {path}; "
        "`scim-readiness cleanup` removes them"
    )


def list_outstanding(ledger_path: Path, out: TextIO) -> int:
    """Print what the ledger says may still exist; exit 0 when nothing, 1 otherwise."""
    from scim_readiness.errors import ExitCode

    entries = Ledger(ledger_path, "").outstanding()
    if not entries:
        print(f"nothing outstanding in {ledger_path}", file=out)
        return int(ExitCode.READY)
    print(f"{len(entries)} test object(s) recorded in {ledger_path} may still exist:", file=out)
    for entry in entries:
        print(f"  {describe(entry)}", file=out)
    return int(ExitCode.NOT_READY)


def run_cleanup_command(
    config: Config,
    ledger_path: Path,
    *,
    ca_bundle: Sequence[str] = (),
    run_id: str | None = None,
    out: TextIO,
    err: TextIO,
) -> int:
    """``scim-readiness cleanup``: remove, report, and exit 0 only when nothing is left."""
    from scim_readiness.cli.run import redactor_for
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.errors import ExitCode

    redact = redactor_for(config)
    outstanding = Ledger(ledger_path, "").outstanding(run_id)
    if not outstanding:
        print(f"nothing outstanding in {ledger_path}", file=out)
        return int(ExitCode.READY)
    print(f"removing {len(outstanding)} test object(s) recorded in {ledger_path}…", file=err)
    report = asyncio.run(
        clean_ledger(config, ledger_path, tls=TlsSettings(ca_bundle=ca_bundle), run_id=run_id)
    )
    for entry in report.removed:
        print(redact.text(f"removed        {describe(entry)}"), file=out)
    for item in report.unremovable:
        label = "REFUSED       " if item.refused else "NOT removed   "
        print(redact.text(f"{label} {describe(item.entry)}: {item.reason}"), file=out)
    if report.interrupted:
        print("interrupted: run `scim-readiness cleanup` again to finish", file=err)
        return int(ExitCode.INTERRUPTED)
    refused = sum(1 for item in report.unremovable if item.refused)
    if refused:
        print(
            f"{refused} ledger line(s) REFUSED: they do not prove a test identity of this "
            "tool (a ledger edited by hand, or written by someone else), so nothing was sent "
            "for them; inspect the ledger and remove those lines",
            file=err,
        )
    if report.unremovable:
        print(
            f"{len(report.removed)} removed, {len(report.unremovable)} could not be removed; "
            "fix the reasons shown and run `scim-readiness cleanup` again",
            file=err,
        )
        return int(ExitCode.NOT_READY)  # as documented: 1 while test data is outstanding
    print(f"{len(report.removed)} removed; nothing left in the ledger", file=err)
    return int(ExitCode.READY)
