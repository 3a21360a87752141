"""The check plugin API.

A check is a module (built-in under ``scim_readiness.checks``, or third-party through the
entry-point group ``scim_readiness.checks``) that defines two names and nothing else happens
on import::

    CHECK = CheckInfo(id="environment", title="…", checklist_item=1, needs=("scalekit",), …)

    async def run(ctx: CheckContext) -> None:
        ctx.findings.passed("Client credentials accepted", observed="token issued in 42 ms")
        …

It may also define ``async def cleanup(ctx: CheckContext) -> None``, which the runner calls
after ``run`` whatever happened (failure, timeout, Ctrl-C).

``run`` records findings on ``ctx.findings`` instead of returning them, so a check that
times out or is interrupted still reports what it had already observed.

A check's declaration (``CHECK``, its options and codes) and its body (``run`` and what it
calls) may live apart, so that ``scim-readiness checks``, ``explain`` and ``config validate``,
which read every check's declaration, never pay for the bodies. A built-in check is a package
whose ``__init__`` declares it and names its entry points with
:func:`scim_readiness.plugin.entry.deferred`; the body, in
``check.py`` beside it, is imported the first time the runner calls ``run``::

    run = deferred(f"{__name__}.check", "run")

Imports go at the top of every module, as anywhere else, so that a reader sees what each part
depends on. A declaration imports ``scim_readiness.api`` and little more;
``tests/core/test_process.py`` fails when listing the checks loads a body, the probe views,
the event builders, the provisioning drivers, the HTTP clients, the SDK, grpc, pydantic or
asyncio. A check that keeps everything in one module may: it then pays at start-up for what
it imports.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from scim_readiness.errors import PluginError, did_you_mean
from scim_readiness.model import Finding, Severity, Status, TimelineStep
from scim_readiness.plugin.options import CheckOptions


class Need(enum.StrEnum):
    """A config section without which a check cannot run (the runner records it SKIP).

    Typed so that a misspelt need fails when the check is defined, instead of making the
    check SKIP forever for want of a section that does not exist.
    """

    SCALEKIT = "scalekit"
    WEBHOOK = "webhook"
    PROBE = "probe"
    SCIM_IDP = "scim_idp"
    ROLES = "roles"
    DATA_MODEL = "data_model"
    ADMIN_PORTAL = "admin_portal"


class ReadOnly(enum.StrEnum):
    """What a check can do when it must not change data (``--read-only``, or production
    without consent). The runner alone decides; a check only reads ``ctx.read_only``.

    ``NONE``: it cannot run without changing data, so the runner records it SKIP.
    ``FULL``: it changes nothing anyway and runs as usual.
    ``REDUCED``: it has a mode that changes nothing, which it runs when ``ctx.read_only``.
    """

    NONE = "none"
    FULL = "full"
    REDUCED = "reduced"


class Sharing(enum.StrEnum):
    """How a check shares its ``mutation_target`` (the app) with the checks running beside it.
    The runner alone schedules by it; a check never locks anything itself (for one part of
    its run it may ask the runner for the target alone, below).

    ``FREE``: takes no turn. It changes nothing, and what others change cannot change what
    it observes (it reads Scalekit, a TLS certificate, only its own answers).
    ``SHARED``: it changes only its own test identities (users, groups and events named from
    labels no other check uses) and judges only those, so it runs beside other ``SHARED``
    checks: their test users come and go without touching what it looks at. When one part of
    it needs the target quiet (a burst that floods the app and times its backlog), it wraps
    that part in ``async with ctx.app_alone():`` instead of declaring itself ``EXCLUSIVE``:
    it then waits, within its own timeout, until no other ``SHARED`` check is inside its
    turn (each has finished, its cleanup included, or is waiting for the target alone
    too), and no ``SHARED`` check starts while it holds it. "Quiet" means no other
    ``SHARED`` or ``EXCLUSIVE`` check's deliveries or test users in flight; ``FREE`` checks
    go on (they change nothing, though some send harmless deliveries), except one that
    declares ``CheckInfo.holds_app``: its ``ctx.app_alone()`` part (a load burst) holds the
    target the same way, waiting for ``EXCLUSIVE`` checks as well. Two checks asking
    at once take it one after the other. It does not nest, and a part that waits for
    another ``SHARED`` check to do something cannot hold it (that check must finish first).
    ``EXCLUSIVE``: it needs the target quiet (it counts or compares every user, or times the
    app under load): no ``SHARED`` or other ``EXCLUSIVE`` check of the same target runs while
    it does. The runner lets these go first, so the ``SHARED`` ones then overlap freely.
    """

    FREE = "free"
    SHARED = "shared"
    EXCLUSIVE = "exclusive"


@dataclass(frozen=True, slots=True)
class FindingCode:
    """One entry of a check's catalogue of finding codes: what the assertion tests, why it
    matters and how to fix a failure, as ``scim-readiness explain CODE`` prints it.

    A code is the check's three-letter prefix and a three-digit number (``SIG001``). It names
    an assertion, not an outcome: the PASS and the FAIL of one assertion share it. Codes are
    never renumbered or reused; a retired assertion keeps its code out of use.
    """

    code: str
    title: str  # what is tested, in a line
    why: str  # why it matters in production
    fix: str  # what to change when it fails
    docs_url: str = ""

    @property
    def prefix(self) -> str:
        return self.code[:3]


#: Three capital letters, three digits: ``SIG001``.
CODE_FORMAT = re.compile(r"[A-Z]{3}[0-9]{3}\Z")


@dataclass(frozen=True, slots=True)
class CheckInfo:
    id: str
    title: str
    checklist_item: int  # 1-8 in Scalekit's SCIM production-readiness checklist; 0 for extras
    # Config sections without which the check is SKIP. Plain strings are accepted (and
    # turned into Need) so third-party checks keep working; an unknown one is an error.
    needs: tuple[Need, ...] = ()
    mutates: bool = False  # creates or changes data in the app or the directory
    # Unset: FULL for a check that changes nothing, NONE for one that does.
    read_only: ReadOnly | None = None
    docs_url: str = ""
    description: str = ""
    # What the check changes or needs quiet (e.g. "app" state); see ``sharing``.
    mutation_target: str = "app"
    # How it shares the target (see Sharing; the value or its name, "shared"). Unset:
    # EXCLUSIVE for a check that changes data (one that does not say it keeps to its own test
    # identities takes turns with every other), FREE for one that does not. Read it as
    # ``sharing_mode``.
    sharing: Sharing | str | None = None
    # A FREE check one part of which floods or times the app (an optional load burst)
    # declares it, so that ``ctx.app_alone()`` holds the app for that part as a SHARED
    # check's does; the rest of it still takes no turn. SHARED checks may hold it anyway.
    holds_app: bool = False
    default_timeout_s: float = 60.0
    # The check's options model (checks.<id>.options is validated against it); None: the
    # check declares none, and whatever is configured reaches it unchecked via ctx.option.
    options: type[CheckOptions] | None = None
    # The catalogue of the codes this check's findings carry (see FindingCode).
    codes: tuple[FindingCode, ...] = ()

    def __post_init__(self) -> None:
        needs = []
        for need in self.needs:
            try:
                needs.append(Need(need))
            except ValueError:
                raise PluginError(
                    f"check {self.id}: needs {need!r}, which is not a config section"
                    f"{did_you_mean(str(need), [n.value for n in Need])}",
                    hint="needs names sections of readiness.yaml: "
                    + ", ".join(n.value for n in Need),
                ) from None
        object.__setattr__(self, "needs", tuple(needs))
        self._settle_sharing()
        if self.read_only is None:
            object.__setattr__(self, "read_only", ReadOnly.NONE if self.mutates else ReadOnly.FULL)
            return
        try:
            object.__setattr__(self, "read_only", ReadOnly(self.read_only))
        except ValueError:
            raise PluginError(
                f"check {self.id}: read_only {self.read_only!r} is not one of "
                + ", ".join(r.value for r in ReadOnly)
            ) from None

    @property
    def sharing_mode(self) -> Sharing:
        """``sharing`` as settled when the check was defined (never unset)."""
        return Sharing(str(self.sharing))

    def _settle_sharing(self) -> None:
        if self.sharing is None:
            default = Sharing.EXCLUSIVE if self.mutates else Sharing.FREE
            object.__setattr__(self, "sharing", default)
            return
        try:
            object.__setattr__(self, "sharing", Sharing(self.sharing))
        except ValueError:
            raise PluginError(
                f"check {self.id}: sharing {self.sharing!r} is not one of "
                + ", ".join(s.value for s in Sharing)
            ) from None
        if self.mutates and self.sharing_mode is Sharing.FREE:
            raise PluginError(
                f"check {self.id}: a check that changes data cannot take no turn (sharing free)",
                hint="declare sharing shared (it keeps to its own test identities) or exclusive",
            )


class FindingRecorder:
    """Collects a check's findings, timeline and metrics as they are observed."""

    def __init__(self, docs_url: str = "") -> None:
        self._docs_url = docs_url
        self.items: list[Finding] = []
        self.timeline: list[TimelineStep] = []
        self.metrics: dict[str, Any] = {}

    def add(self, finding: Finding) -> Finding:
        if not finding.docs_url and self._docs_url:
            finding = _replace_docs(finding, self._docs_url)
        self.items.append(finding)
        return finding

    def record(
        self,
        status: Status,
        title: str,
        *,
        expected: str = "",
        observed: str = "",
        why: str = "",
        fix: str = "",
        docs_url: str = "",
        severity: Severity | None = None,
        evidence: Mapping[str, Any] | None = None,
        code: str = "",
    ) -> Finding:
        if severity is None:
            severity = _DEFAULT_SEVERITY[status]
        return self.add(
            Finding(
                title=title,
                status=status,
                expected=expected,
                observed=observed,
                why=why,
                fix=fix,
                docs_url=docs_url,
                severity=severity,
                evidence=evidence or {},
                code=code,
            )
        )

    def passed(self, title: str, **kw: Any) -> Finding:
        return self.record(Status.PASS, title, **kw)

    def warned(self, title: str, **kw: Any) -> Finding:
        return self.record(Status.WARN, title, **kw)

    def failed(self, title: str, **kw: Any) -> Finding:
        return self.record(Status.FAIL, title, **kw)

    def skipped(self, title: str, **kw: Any) -> Finding:
        return self.record(Status.SKIP, title, **kw)

    def errored(self, title: str, **kw: Any) -> Finding:
        return self.record(Status.ERROR, title, **kw)

    def attested(self, title: str, **kw: Any) -> Finding:
        return self.record(Status.ATTESTED, title, **kw)

    def step(
        self,
        step: str,
        *,
        expected: str,
        observed: str,
        status: Status,
        latency_s: float | None = None,
    ) -> None:
        self.timeline.append(
            TimelineStep(
                step=step, expected=expected, observed=observed, status=status, latency_s=latency_s
            )
        )


_DEFAULT_SEVERITY: Mapping[Status, Severity] = {
    Status.PASS: Severity.INFO,
    Status.ATTESTED: Severity.INFO,
    Status.SKIP: Severity.INFO,
    Status.WARN: Severity.MEDIUM,
    Status.FAIL: Severity.HIGH,
    Status.ERROR: Severity.MEDIUM,
}


def _replace_docs(finding: Finding, docs_url: str) -> Finding:
    from dataclasses import replace

    return replace(finding, docs_url=docs_url)


class Clock(Protocol):
    def now(self) -> float:
        """Unix time in seconds."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    offset_s: float = 0.0
    _unused: tuple[()] = field(default=(), repr=False)

    def now(self) -> float:
        import time

        return time.time() + self.offset_s

    def monotonic(self) -> float:
        import time

        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)
