"""The result model: immutable values a run produces, free of any rendering.

A check records *findings*; the runner folds them into one :class:`CheckResult` per check;
a :class:`Report` holds the results of one run and computes its own summary and verdict.
Renderers (``scim_readiness.reports``) turn a report into text and never add facts to it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

SCHEMA_VERSION = 1


class Status(enum.StrEnum):
    """Outcome of a finding or a check.

    ``ATTESTED`` exists only on findings: an item no API can show, vouched for in the config
    (who, when, what). It counts like PASS for the verdict but is never shown as observed.
    A check's own status is always one of the other five.
    """

    PASS = "PASS"  # noqa: S105 - a status, not a password
    ATTESTED = "ATTESTED"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"
    ERROR = "ERROR"


# How a check's status is folded from its findings: the highest rank wins.
# FAIL outranks ERROR because a definite defect is what a reader must see first;
# SKIP is lowest so one skipped sub-step never hides what was observed.
_FOLD_RANK: Mapping[Status, int] = MappingProxyType(
    {
        Status.SKIP: 0,
        Status.ATTESTED: 1,
        Status.PASS: 1,
        Status.WARN: 2,
        Status.ERROR: 3,
        Status.FAIL: 4,
    }
)


class Severity(enum.StrEnum):
    """How much a defect matters; independent of status (a WARN may be high severity)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Verdict(enum.StrEnum):
    READY = "READY"
    NOT_READY = "NOT READY"
    INCOMPLETE = "INCOMPLETE"  # something could not be evaluated (ERROR) and nothing failed


class FailOn(enum.StrEnum):
    FAIL = "fail"
    WARN = "warn"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation: what was tested, what was expected, what was seen, and what to do.

    ``evidence`` holds JSON-safe facts (status codes, latencies, header values) that a
    reader may want verbatim. Never put a secret in any field: the redactor is a safety
    net, not a licence.
    """

    title: str
    status: Status
    expected: str = ""
    observed: str = ""
    why: str = ""
    fix: str = ""
    docs_url: str = ""
    severity: Severity = Severity.MEDIUM
    evidence: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    def details(self) -> list[tuple[str, str]]:
        """The explanation as (label, text) pairs in reading order, only those that are set;
        the docs link only where there is something to act on (not on a PASS)."""
        pairs = (
            ("expected", self.expected),
            ("observed", self.observed),
            ("why", self.why),
            ("fix", self.fix),
            ("docs", self.docs_url if self.status is not Status.PASS else ""),
        )
        return [(label, text) for label, text in pairs if text]


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One step of a round trip (user-lifecycle, group-roles): expected vs observed, and how long
    the app took to get there."""

    step: str
    expected: str
    observed: str
    status: Status
    latency_s: float | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    title: str
    checklist_item: int
    status: Status
    findings: tuple[Finding, ...] = ()
    duration_s: float = 0.0
    mutates: bool = False
    docs_url: str = ""
    timeline: tuple[TimelineStep, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))
    interrupted: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", _frozen(self.metrics))

    @property
    def headline(self) -> str:
        """The one finding that best explains the status (first of the worst)."""
        for finding in self.findings:
            if fold_status([finding.status]) is self.status:
                return finding.title
        return ""


def fold_status(statuses: Any) -> Status:
    """Fold finding statuses into a check status. No findings at all means nothing was
    observed, which is SKIP, never PASS."""
    worst: Status | None = None
    for status in statuses:
        if worst is None or _FOLD_RANK[status] > _FOLD_RANK[worst]:
            worst = status
    if worst is None:
        return Status.SKIP
    return Status.PASS if worst is Status.ATTESTED else worst


@dataclass(frozen=True, slots=True)
class Summary:
    total: int
    counts: Mapping[Status, int]
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Report:
    run_id: str
    tool_version: str
    target: str
    started_at: str  # RFC 3339, UTC
    duration_s: float
    checks: tuple[CheckResult, ...]
    read_only: bool = False
    interrupted: bool = False
    schema_version: int = SCHEMA_VERSION

    @property
    def summary(self) -> Summary:
        counts: dict[Status, int] = {s: 0 for s in Status if s is not Status.ATTESTED}
        for check in self.checks:
            counts[check.status] += 1
        if counts[Status.FAIL]:
            verdict = Verdict.NOT_READY
        elif counts[Status.ERROR] or self.interrupted:
            verdict = Verdict.INCOMPLETE
        else:
            verdict = Verdict.READY
        return Summary(total=len(self.checks), counts=MappingProxyType(counts), verdict=verdict)

    def exit_code(self, fail_on: FailOn = FailOn.FAIL) -> int:
        """Exit code for CI (see errors.ExitCode): a known defect wins over an unknown."""
        from scim_readiness.errors import ExitCode

        summary = self.summary
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if summary.verdict is Verdict.NOT_READY:
            return ExitCode.NOT_READY
        if summary.verdict is Verdict.INCOMPLETE:
            return ExitCode.INCOMPLETE
        if fail_on is FailOn.WARN and summary.counts[Status.WARN]:
            return ExitCode.NOT_READY
        return ExitCode.READY
