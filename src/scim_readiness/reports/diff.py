"""What changed between two saved reports: checks that got worse or better, new findings.

A regression is a check whose status got worse (PASS < SKIP < WARN < ERROR < FAIL), a check
that was evaluated and no longer is (PASS, WARN or FAIL → SKIP or ERROR: a FAIL that became a
SKIP is a defect nobody looks at any more, not an improvement), a check that disappeared, or a
new WARN/FAIL/ERROR finding in a check (a waived one is listed, not a regression).

Waiver changes are listed too: a finding waived now and not before, and one that lost its
waiver (expired, or removed from the config) and counts again. Findings are matched by code,
title and status (title and status for one saved before codes existed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scim_readiness.model import Finding, Report, Status

_RANK = {
    Status.PASS: 0,
    Status.ATTESTED: 0,
    Status.SKIP: 1,
    Status.WAIVED: 2,
    Status.WARN: 3,
    Status.ERROR: 4,
    Status.FAIL: 5,
}
_BAD = (Status.WARN, Status.FAIL, Status.ERROR)
_EVALUATED = (Status.PASS, Status.ATTESTED, Status.WARN, Status.FAIL, Status.WAIVED)


@dataclass(frozen=True)
class StatusChange:
    check_id: str
    old: Status | None  # None: the check is new
    new: Status | None  # None: the check is gone

    @property
    def lost_coverage(self) -> bool:
        """Evaluated before, not any more (SKIP, ERROR or gone)."""
        return self.old in _EVALUATED and self.new not in _EVALUATED

    @property
    def worse(self) -> bool:
        if self.new is None or self.lost_coverage:
            return True
        if self.old is None:
            return self.new in _BAD
        return _RANK[self.new] > _RANK[self.old]


@dataclass(frozen=True)
class NewFinding:
    check_id: str
    finding: Finding


@dataclass(frozen=True)
class WaiverChange:
    check_id: str
    finding: Finding  # as in the new report
    waived: bool  # True: waived now and not before; False: waived before and not now

    def describe(self) -> str:
        waiver = self.finding.waiver
        if self.waived:
            return f"waived now ({waiver.describe()})" if waiver else "waived now"
        if waiver is not None and waiver.expired:
            return (
                f"no longer waived: the waiver expired on {waiver.expires} (owner {waiver.owner})"
            )
        return "no longer waived"


@dataclass(frozen=True)
class ReportDiff:
    old_run: str
    new_run: str
    changes: tuple[StatusChange, ...]
    new_findings: tuple[NewFinding, ...]
    waiver_changes: tuple[WaiverChange, ...] = ()

    @property
    def regressed(self) -> bool:
        return any(c.worse for c in self.changes) or any(
            n.finding.effective_status in _BAD for n in self.new_findings
        )


class _Earlier:
    """The findings of a check in the older report, to recognise each in the newer one: by
    code, title and status; by title and status alone for a finding saved without a code (a
    version 1 report), so upgrading does not make every finding look new."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.waived = {(f.code, f.title, f.status): f.waived for f in findings}
        self.uncoded = {(f.title, f.status): f.waived for f in findings if not f.code}

    def get(self, f: Finding) -> bool | None:
        """Whether the same finding was waived before; None when it was not there."""
        found = self.waived.get((f.code, f.title, f.status))
        return found if found is not None else self.uncoded.get((f.title, f.status))


def _waiver_changes(check_id: str, earlier: _Earlier, now: Sequence[Finding]) -> list[WaiverChange]:
    changes = []
    for f in now:
        was_waived = earlier.get(f)
        if was_waived is not None and was_waived != f.waived:
            changes.append(WaiverChange(check_id, f, f.waived))
    return changes


def diff(old: Report, new: Report) -> ReportDiff:
    before = {c.id: c for c in old.checks}
    after = {c.id: c for c in new.checks}
    changes = []
    found = []
    waivers: list[WaiverChange] = []
    for check_id in [*before, *(i for i in after if i not in before)]:
        was, now = before.get(check_id), after.get(check_id)
        old_status = was.status if was else None
        new_status = now.status if now else None
        if old_status != new_status:
            changes.append(StatusChange(check_id, old_status, new_status))
        if now is not None:
            earlier = _Earlier(was.findings if was else ())
            found += [
                NewFinding(check_id, f)
                for f in now.findings
                if f.status in _BAD and earlier.get(f) is None
            ]
            waivers += _waiver_changes(check_id, earlier, now.findings)
    return ReportDiff(old.run_id, new.run_id, tuple(changes), tuple(found), tuple(waivers))


def _shown(n: NewFinding) -> str:
    f = n.finding
    return f"{n.check_id}: [{f.label}] {f.coded_title}"


def render(d: ReportDiff) -> str:
    lines = [f"comparing run {d.old_run or '?'} -> run {d.new_run or '?'}"]
    worse = [c for c in d.changes if c.worse]
    better = [c for c in d.changes if not c.worse]
    for title, group in (("worse", worse), ("better or neutral", better)):
        if group:
            lines.append(f"{title}:")
            for c in group:
                old = c.old.value if c.old else "(absent)"
                new = c.new.value if c.new else "(absent)"
                note = " (no longer evaluated)" if c.lost_coverage and c.new else ""
                lines.append(f"  {c.check_id}: {old} -> {new}{note}")
    if d.new_findings:
        lines.append("new findings:")
        lines += [f"  {_shown(n)}" for n in d.new_findings]
    if d.waiver_changes:
        lines.append("waivers:")
        lines += [
            f"  {w.check_id}: {w.finding.coded_title}: {w.describe()}" for w in d.waiver_changes
        ]
    if not d.changes and not d.new_findings and not d.waiver_changes:
        lines.append("no changes in check statuses and no new findings")
    lines.append("REGRESSED" if d.regressed else "no regressions")
    return "\n".join(lines) + "\n"


def to_dict(d: ReportDiff) -> dict[str, Any]:
    """The diff as data: ``regressed`` first, then each status change and new finding."""

    def status(value: Status | None) -> str | None:
        return value.value if value else None

    return {
        "old_run": d.old_run,
        "new_run": d.new_run,
        "regressed": d.regressed,
        "changes": [
            {"check": c.check_id, "old": status(c.old), "new": status(c.new), "worse": c.worse}
            for c in d.changes
        ],
        "new_findings": [
            {
                "check": n.check_id,
                "code": n.finding.code,
                "status": n.finding.status.value,
                "waived": n.finding.waived,
                "title": n.finding.title,
                "observed": n.finding.observed,
                "fix": n.finding.fix,
            }
            for n in d.new_findings
        ],
        "waiver_changes": [
            {
                "check": w.check_id,
                "code": w.finding.code,
                "title": w.finding.title,
                "waived": w.waived,
                "change": w.describe(),
            }
            for w in d.waiver_changes
        ],
    }


def render_json(d: ReportDiff) -> str:
    return json.dumps(to_dict(d), indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render_markdown(d: ReportDiff) -> str:
    """Sized for a pull-request comment: the outcome first, then a table of changes."""
    mark = "❌ **Regressed**" if d.regressed else "✅ **No regressions**"
    lines = [
        f"### scim-readiness: {mark}",
        "",
        f"Run `{_cell(d.old_run or '?')}` → run `{_cell(d.new_run or '?')}`",
    ]
    if d.changes:
        lines += ["", "| Check | Before | After | |", "|---|---|---|---|"]
        for c in sorted(d.changes, key=lambda c: not c.worse):
            old = c.old.value if c.old else "(absent)"
            new = c.new.value if c.new else "(absent)"
            lines.append(
                f"| `{_cell(c.check_id)}` | {old} | {new} | {'worse' if c.worse else 'better'} |"
            )
    if d.new_findings:
        lines += ["", "New findings:", ""]
        lines += [
            f"- `{_cell(n.check_id)}` **{n.finding.label}** {_cell(n.finding.coded_title)}"
            for n in d.new_findings
        ]
    if d.waiver_changes:
        lines += ["", "Waivers:", ""]
        lines += [
            f"- `{_cell(w.check_id)}` {_cell(w.finding.coded_title)}: {_cell(w.describe())}"
            for w in d.waiver_changes
        ]
    if not d.changes and not d.new_findings and not d.waiver_changes:
        lines += ["", "No changes in check statuses and no new findings."]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[ReportDiff], str]] = {
    "text": render,
    "json": render_json,
    "markdown": render_markdown,
}
