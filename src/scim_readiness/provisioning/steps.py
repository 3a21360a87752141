"""The rows of a round-trip table and how a row ended: the data of a round trip.

Kept apart from :mod:`scim_readiness.provisioning.roundtrip` (the stepper, which imports the
drivers): the drivers name :data:`PROFILE_ATTRIBUTE` too, and importing it from the stepper
would make a cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from scim_readiness.model import Status
from scim_readiness.plugin.contract import FindingCode

if TYPE_CHECKING:
    from scim_readiness.clients.probe import AppUser

S = TypeVar("S")

#: The enterprise attribute the round trips change and read back ("profile update").
PROFILE_ATTRIBUTE = "department"


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """How one step ended. ``user`` is the last state seen (None: absent or never read);
    ``expected`` the state the step waited for, as the timeline shows it."""

    status: Status
    observed: str
    user: AppUser | None = None
    latency_s: float | None = None
    elapsed_s: float = 0.0
    expected: str = ""
    code: str = ""  # the finding code of the step's row

    @property
    def ok(self) -> bool:
        return self.status in (Status.PASS, Status.WARN)

    @property
    def failed(self) -> bool:
        return self.status in (Status.FAIL, Status.ERROR)


@dataclass(frozen=True, slots=True)
class Step(Generic[S]):
    """One row of a round-trip table, over the check's run state ``S``.

    ``change`` is the change made (timed from its start), ``prepare`` an untimed set-up
    before it; ``settled`` says whether what the probe shows is the state to wait for, and
    ``judge`` what that state earns (default: PASS, the state described); ``shows`` is
    ``expected`` with this run's values, when the timeline should carry them; ``after`` runs
    once the step is judged (and the run goes on), with the budget a next wait gets.
    ``unobservable``, asked once the change is made, says why the change cannot show in the
    app (the state it expects is the one before it, so a first look would pass on a change
    the app never processed), or None when it can.
    ``code`` carries the row's finding code and the why and fix its findings give.
    """

    name: str
    expected: str
    code: FindingCode
    change: Callable[[S], Awaitable[object]]
    settled: Callable[[S, AppUser | None], bool]
    judge: Callable[[S, AppUser | None], tuple[Status, str]] | None = None
    shows: Callable[[S], str] | None = None
    prepare: Callable[[S], Awaitable[object]] | None = None
    after: Callable[[S, StepOutcome, float], Awaitable[None]] | None = None
    unobservable: Callable[[S], str | None] | None = None

    @property
    def why(self) -> str:
        return self.code.why

    @property
    def fix(self) -> str:
        return self.code.fix
