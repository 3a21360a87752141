"""Waivers: findings a team accepts for now, listed in the config's ``waivers:`` section.

A waiver names a finding code, optionally a check and a target (the webhook or environment
URL it applies to), and says why, who answers for it and until when. After a run, each FAIL or
WARN finding whose code a waiver names carries that waiver:

* while it holds, the finding counts as WAIVED: the run does not fail for it, its check is
  WAIVED when nothing else went wrong, and the headline says how many findings were waived;
* from its expiry date on, the finding counts as observed (the run fails for a FAIL) and every
  report says the waiver expired on that date, and whose it was;
* a waiver that covered no FAIL or WARN finding is reported as unused (never a failure).

SKIP and ERROR are not observations, so no waiver covers them: what was not evaluated is
accepted with ``--accept-skip``, never waived into coverage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence

from scim_readiness.config import Config, Waiver
from scim_readiness.model import WAIVABLE, CheckResult, Finding, Report, WaiverNote


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def targets_of(config: Config) -> list[str]:
    """The URLs a waiver's ``target`` may name: the webhook's and the environment's."""
    return [url for url in (config.webhook.url, config.scalekit.environment_url) if url]


def note_of(waiver: Waiver, on: dt.date) -> WaiverNote:
    return WaiverNote(
        code=waiver.code,
        reason=waiver.reason,
        owner=waiver.owner,
        expires=waiver.expires.isoformat(),
        check=waiver.check or "",
        target=waiver.target or "",
        expired=on >= waiver.expires,
    )


def _applies(waiver: Waiver, check_id: str, finding: Finding, targets: Collection[str]) -> bool:
    if finding.status not in WAIVABLE or finding.code != waiver.code:
        return False
    if waiver.check is not None and waiver.check != check_id:
        return False
    return waiver.target is None or any(_same_url(waiver.target, t) for t in targets)


def apply_waivers(
    report: Report, waivers: Sequence[Waiver], *, on: dt.date, targets: Collection[str]
) -> Report:
    """``report`` with each waiver on the findings it covers (a holding one before an
    expired one), the statuses refolded, and the waivers that covered nothing listed."""
    from scim_readiness.engine.runner import fold_essentials

    notes = [note_of(w, on) for w in waivers]
    used: set[int] = set()
    checks: list[CheckResult] = []
    for check in report.checks:
        findings: list[Finding] = []
        for finding in check.findings:
            matching = [i for i, w in enumerate(waivers) if _applies(w, check.id, finding, targets)]
            used.update(matching)
            chosen = sorted(matching, key=lambda i: notes[i].expired)
            waiver = notes[chosen[0]] if chosen else None
            findings.append(dataclasses.replace(finding, waiver=waiver))
        if any(f.waiver is not None for f in findings):
            status, ordered = fold_essentials(findings)
            check = dataclasses.replace(check, status=status, findings=tuple(ordered))
        checks.append(check)
    unused = tuple(note for i, note in enumerate(notes) if i not in used)
    return dataclasses.replace(report, checks=tuple(checks), unused_waivers=unused)


def waive(report: Report, config: Config) -> Report:
    """The run's report with the config's waivers applied (unchanged without any)."""
    if not config.waivers:
        return report
    return apply_waivers(report, config.waivers, on=today(), targets=targets_of(config))


def expired_notes(config: Config, on: dt.date) -> list[str]:
    """A line per waiver of the config that no longer holds, for ``config validate``."""
    return [
        f"waivers[{i}] ({w.code}): expired on {w.expires.isoformat()} (owner {w.owner}); "
        "the finding it covers fails the run again: fix it, or renew the waiver"
        for i, w in enumerate(config.waivers)
        if on >= w.expires
    ]
