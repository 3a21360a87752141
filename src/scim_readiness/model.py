"""The result model: immutable values a run produces, free of any rendering.

A check records *findings*; the runner folds them into one :class:`CheckResult` per check;
a :class:`Report` holds the results of one run and computes its own summary and verdict.
Renderers (``scim_readiness.reports``) turn a report into text and never add facts to it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# 2: findings carry ``code`` and ``waiver``; a check may be WAIVED; the summary counts
# waived findings and lists unused waivers. Reports of version 1 are still read.
SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)


class Status(enum.StrEnum):
    """Outcome of a finding or a check.

    ``ATTESTED`` exists only on findings: an item no API can show, vouched for in the config
    (who, when, what). It counts like PASS for the verdict but is never shown as observed.
    A check's own status is always one of the other five, or ``WAIVED``.

    ``WAIVED`` exists only on checks: every FAIL or WARN the check recorded is covered by an
    unexpired waiver (``waivers:`` in the config) and nothing else went wrong. The item was
    evaluated and did not pass; the run does not fail for it, and the headline says so.
    A finding keeps the status it was observed with; :attr:`Finding.effective_status` is
    ``WAIVED`` while its waiver holds.
    """

    PASS = "PASS"  # noqa: S105 - a status, not a password
    ATTESTED = "ATTESTED"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"
    ERROR = "ERROR"
    WAIVED = "WAIVED"


# How a check's status is folded from its findings: the highest rank wins.
# FAIL outranks ERROR because a definite defect is what a reader must see first;
# SKIP is lowest so one skipped sub-step never hides what was observed.
_FOLD_RANK: Mapping[Status, int] = MappingProxyType(
    {
        Status.SKIP: 0,
        Status.ATTESTED: 1,
        Status.PASS: 1,
        # Above PASS: a check with a waived defect never reads as passed.
        Status.WAIVED: 2,
        Status.WARN: 3,
        Status.ERROR: 4,
        Status.FAIL: 5,
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
    READY = "READY"  # all eight checklist items evaluated, none failed
    NOT_READY = "NOT READY"
    INCOMPLETE = "INCOMPLETE"  # something could not be evaluated (ERROR) and nothing failed
    # Nothing failed or errored, but some checklist item was not evaluated (SKIP, not selected).
    PARTIAL = "PARTIAL"


# Scalekit's SCIM production-readiness checklist: READY needs every one of these evaluated.
CHECKLIST_ITEMS: tuple[int, ...] = tuple(range(1, 9))
# A check with one of these statuses observed its item; SKIP and ERROR did not.
_EVALUATED = (Status.PASS, Status.WARN, Status.FAIL, Status.WAIVED)
# What a waiver may cover: observed defects. SKIP and ERROR are not observations, so a waiver
# cannot make them count as evaluated (``--accept-skip`` names what may stay unevaluated).
WAIVABLE = (Status.FAIL, Status.WARN)


class FailOn(enum.StrEnum):
    FAIL = "fail"
    WARN = "warn"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class WaiverNote:
    """A waiver from the config, as a report shows it: on the finding it covers, or in the
    report's list of waivers that matched nothing."""

    code: str
    reason: str
    owner: str
    expires: str  # ISO date (YYYY-MM-DD) from which it no longer holds
    check: str = ""  # the check id it is limited to ("" for any)
    target: str = ""  # the webhook or environment URL it is limited to ("" for any)
    expired: bool = False  # the run was on or after ``expires``: it no longer holds

    def describe(self) -> str:
        state = f"expired on {self.expires}" if self.expired else f"until {self.expires}"
        return f"waived by {self.owner} {state}: {self.reason}"


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
    # The stable code of the assertion this finding answers (``SIG001``): the same code for
    # its PASS and its FAIL, unchanged across releases, so waivers and diffs can name it.
    # The runner's own findings carry RUN codes; empty only from a check without a catalogue.
    code: str = ""
    # The waiver from the config that names this finding's code (set after the run), also
    # when it has expired: then the finding counts as it was observed and says so.
    waiver: WaiverNote | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "evidence", _frozen(self.evidence))

    @property
    def waived(self) -> bool:
        """Covered by a waiver that holds: the run does not fail for this finding."""
        return self.waiver is not None and not self.waiver.expired

    @property
    def effective_status(self) -> Status:
        """The status the check's fold and the verdict use: WAIVED while a waiver holds."""
        return Status.WAIVED if self.waived else self.status

    @property
    def coded_title(self) -> str:
        """``ADM004 Portal link is not HTTPS``: the title after its code, when it has one."""
        return f"{self.code} {self.title}" if self.code else self.title

    @property
    def label(self) -> str:
        """How reports tag the finding: ``FAIL``, or ``WAIVED`` (with what was observed)."""
        return f"WAIVED {self.status.value}" if self.waived else self.status.value

    def details(self) -> list[tuple[str, str]]:
        """The explanation as (label, text) pairs in reading order, only those that are set;
        the docs link only where there is something to act on (not on a PASS)."""
        pairs = (
            ("expected", self.expected),
            ("observed", self.observed),
            ("why", self.why),
            ("fix", self.fix),
            ("docs", self.docs_url if self.status is not Status.PASS else ""),
            ("waiver", self.waiver.describe() if self.waiver is not None else ""),
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
            if fold_status([finding.effective_status]) is self.status:
                return finding.title
        return ""

    @property
    def waived_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.waived)


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
class ItemCoverage:
    """Whether one checklist item was evaluated, by which checks, and if not, why not."""

    item: int
    checks: tuple[str, ...]  # ids of the report's checks for this item
    evaluated: bool
    status: Status | None  # folded over its checks when evaluated
    reason: str = ""  # why it was not evaluated
    accepted_by: str = ""  # what the user named to accept it as not evaluated

    @property
    def label(self) -> str:
        return f"{self.item} {', '.join(self.checks) or '(no check selected)'}"


@dataclass(frozen=True, slots=True)
class Coverage:
    items: tuple[ItemCoverage, ...]

    @property
    def evaluated(self) -> tuple[ItemCoverage, ...]:
        return tuple(i for i in self.items if i.evaluated)

    @property
    def missing(self) -> tuple[ItemCoverage, ...]:
        return tuple(i for i in self.items if not i.evaluated)

    @property
    def unaccepted(self) -> tuple[ItemCoverage, ...]:
        return tuple(i for i in self.missing if not i.accepted_by)

    @property
    def complete(self) -> bool:
        return not self.missing

    def counted(self) -> str:
        return f"{len(self.evaluated)} of {len(self.items)} items evaluated"

    def not_evaluated(self) -> str:
        """The missing items, those the user accepted grouped by how, e.g.
        ``7 data-model; 4 user-lifecycle, 6 bad-data (accepted: --accept-skip mutating)``."""
        plain = [i.label for i in self.missing if not i.accepted_by]
        groups: dict[str, list[str]] = {}
        for item in self.missing:
            if item.accepted_by:
                groups.setdefault(item.accepted_by, []).append(item.label)
        parts = [", ".join(plain)] if plain else []
        parts += [f"{', '.join(labels)} (accepted: {how})" for how, labels in groups.items()]
        return "; ".join(parts)


def item_coverage(
    item: int, checks: Sequence[CheckResult], accepted: Mapping[int, str]
) -> ItemCoverage:
    mine = [c for c in checks if c.checklist_item == item]
    ids = tuple(c.id for c in mine)
    accepted_by = accepted.get(item, "")
    if not mine:
        return ItemCoverage(item, ids, False, None, "no check selected", accepted_by)
    for check in mine:
        if check.status not in _EVALUATED:
            reason = f"{check.id}: {check.status.value}" + (
                f" ({check.headline})" if check.headline else ""
            )
            return ItemCoverage(item, ids, False, None, reason, accepted_by)
    return ItemCoverage(item, ids, True, fold_status(c.status for c in mine))


@dataclass(frozen=True, slots=True)
class Summary:
    total: int
    counts: Mapping[Status, int]
    verdict: Verdict
    coverage: Coverage
    headline: str = ""  # one line a reader (and a CI log) can trust on its own
    waived: int = 0  # findings covered by a waiver that holds


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
    # Checklist items the user named as acceptable to leave unevaluated, and how they named
    # them ("--accept-skip mutating", "--skip bad-data", "not selected with --only").
    accepted: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    # Waivers of the config that covered no finding of this run (reported, not failing).
    unused_waivers: tuple[WaiverNote, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "accepted", MappingProxyType(dict(self.accepted)))

    def unused_waiver_lines(self) -> list[str]:
        """One line per waiver that covered nothing in this run, for every report format."""
        return [
            f"{w.code}"
            + (f" ({w.check})" if w.check else "")
            + (f" for {w.target}" if w.target else "")
            + f": matched no failing finding (owner {w.owner}, until {w.expires}); "
            "remove it if the defect is fixed"
            for w in self.unused_waivers
        ]

    @property
    def coverage(self) -> Coverage:
        return Coverage(
            tuple(item_coverage(i, self.checks, self.accepted) for i in CHECKLIST_ITEMS)
        )

    @property
    def summary(self) -> Summary:
        counts: dict[Status, int] = {s: 0 for s in Status if s is not Status.ATTESTED}
        waived = sum(len(c.waived_findings) for c in self.checks)
        for check in self.checks:
            counts[check.status] += 1
        coverage = self.coverage
        if counts[Status.FAIL]:
            verdict = Verdict.NOT_READY
        elif counts[Status.ERROR] or self.interrupted:
            verdict = Verdict.INCOMPLETE
        elif not coverage.complete:
            verdict = Verdict.PARTIAL
        else:
            verdict = Verdict.READY
        return Summary(
            total=len(self.checks),
            counts=MappingProxyType(counts),
            verdict=verdict,
            coverage=coverage,
            headline=self._headline(verdict, counts, coverage, waived),
            waived=waived,
        )

    def _headline(
        self, verdict: Verdict, counts: Mapping[Status, int], cov: Coverage, waived: int
    ) -> str:
        def ids(status: Status) -> str:
            return ", ".join(c.id for c in self.checks if c.status is status)

        def plural(n: int) -> str:
            return f"{n} check" + ("s" if n != 1 else "")

        gaps = f"; not evaluated: {cov.not_evaluated()}" if cov.missing else ""
        codes = sorted({f.code or "?" for c in self.checks for f in c.waived_findings})
        waivers = f"; {waived} waived ({', '.join(codes)})" if waived else ""
        if verdict is Verdict.READY:
            warned = counts[Status.WARN]
            note = f"; {plural(warned)} warned ({ids(Status.WARN)})" if warned else ""
            if waived:
                # Not "passed": a waived defect was observed, and the reader must see it.
                return (
                    f"READY WITH WAIVERS: all {len(cov.items)} checklist items evaluated, "
                    f"none failed unwaived{waivers}{note}"
                )
            return f"READY: all {len(cov.items)} checklist items evaluated and passed{note}"
        if verdict is Verdict.NOT_READY:
            failed = counts[Status.FAIL]
            return (
                f"NOT READY: {plural(failed)} failed ({ids(Status.FAIL)}); "
                f"{cov.counted()}{gaps}{waivers}"
            )
        if verdict is Verdict.INCOMPLETE:
            errored = counts[Status.ERROR]
            cause = (
                f"{plural(errored)} could not be evaluated ({ids(Status.ERROR)})"
                if errored
                else "the run was interrupted"
            )
            return f"INCOMPLETE: {cause}, none failed; {cov.counted()}{gaps}{waivers}"
        label = "READ-ONLY" if self.read_only else "PARTIAL"
        return f"{label}: {cov.counted()}, none failed{gaps}{waivers}"

    def exit_code(self, fail_on: FailOn = FailOn.FAIL) -> int:
        """Exit code for CI (see errors.ExitCode): a known defect wins over an unknown, and an
        unknown over a gap in coverage. A gap exits 0 only when the user accepted every
        missing item and at least one check observed something."""
        from scim_readiness.errors import ExitCode

        summary = self.summary
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if summary.verdict is Verdict.NOT_READY:
            return ExitCode.NOT_READY
        if summary.verdict is Verdict.INCOMPLETE:
            return ExitCode.INCOMPLETE
        if summary.verdict is Verdict.PARTIAL:
            observed = any(c.status in _EVALUATED for c in self.checks)
            if summary.coverage.unaccepted or not observed:
                return ExitCode.NOT_EVALUATED
        if fail_on is FailOn.WARN and summary.counts[Status.WARN]:
            return ExitCode.NOT_READY
        return ExitCode.READY


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of three samples is the slowest one)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]
