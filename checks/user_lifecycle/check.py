"""The body of `user-lifecycle`: see the package's docstring for what it checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scim_readiness.api import (
    Clock,
    FindingCode,
    FindingRecorder,
    ProbeError,
    Status,
)
from scim_readiness.clients.access import KINDS, AccessClient
from scim_readiness.events import EventType, user_deleted_data
from scim_readiness.parts import CheckParts
from scim_readiness.plugin.options import RoundTripOptions
from scim_readiness.plugin.wait import wait_until
from scim_readiness.provisioning.roundtrip import (
    Stepper,
    app_user_reader,
    latencies_text,
    latency_summary,
    record_not_observed,
    remove_test_objects,
    round_trip_options,
    skipped_unconfigured_mode,
)
from scim_readiness.provisioning.steps import PROFILE_ATTRIBUTE, Step, StepOutcome
from scim_readiness.webhooks.probing import missing_webhook_setting
from scim_readiness.webhooks.send import LEGACY_EVENT_NAMES
from scim_readiness.webhooks.test_users import user_event_data
from scim_readiness.webhooks.traces import app_view

from . import (
    ACCESS_DEACTIVATION,
    ACCESS_DELETE,
    CLEANUP,
    CREATE,
    DEACTIVATE,
    DELETE,
    EMAIL,
    LIFECYCLE,
    MODE,
    OPTIONS,
    PROFILE,
    REACTIVATE,
)

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.access import AccessClient, Credentials, Kind
    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.config import AccessProbe
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.provisioning.drivers import DirectoryUser, Mode, ProvisioningDriver
    from scim_readiness.provisioning.roundtrip import Stepper


async def run(ctx: CheckContext) -> None:

    options = round_trip_options(ctx, ctx.findings, code=OPTIONS)
    if options is None:
        return
    mode, budget_s = options
    if skipped_unconfigured_mode(ctx.config, ctx.findings, mode, code=MODE):
        return
    ctx.findings.metrics["mode"] = mode
    driver = CheckParts(ctx).driver(mode)
    try:
        await _lifecycle(ctx, driver, budget_s)
    finally:
        await driver.aclose()


async def cleanup(ctx: CheckContext) -> None:

    await remove_test_objects(
        CheckParts(ctx).teardown(), ctx.findings, what="Test users", code=CLEANUP
    )


# -- the table ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """What the steps share: the driver, the test user as the directory holds it, and what
    this run sends and expects."""

    driver: ProvisioningDriver
    identity: TestIdentity
    new_family: str
    department: str
    new_email: str
    attribute_required: bool
    keep_records: bool
    access: _Access
    user: DirectoryUser | None = None
    app_id: str | None = None  # the app's id of the user, as step 1 saw it
    #: Why the profile update could not show in the app (the probe shows neither the name
    #: nor the attribute), once step 2 has looked; None when it could.
    profile_unseen: str | None = None

    @property
    def test_user(self) -> DirectoryUser:
        assert self.user is not None  # noqa: S101 - set by step 1, before any other step
        return self.user


def _same_email(user: AppUser | None, email: str) -> bool:
    return user is not None and user.email.lower() == email.lower()


def _name_matches(user: AppUser, given: str, family: str) -> bool:
    # Apps store a full name, or only its parts; either way the sent names must be in it.
    if user.name is None:
        return True
    name = user.name.lower()
    return given.lower() in name and family.lower() in name


def _access(found: AppUser | None) -> str:
    if found is None:
        return "removed from the app"
    return "active" if found.active else "inactive (record kept)"


def _no_access(run: _Run, found: AppUser | None) -> bool:
    return found is None or not found.active


def _access_state(run: _Run, found: AppUser | None) -> tuple[Status, str]:
    return Status.PASS, _access(found)


async def _create(run: _Run) -> None:
    run.user = await run.driver.create_user(run.identity)


def _created(run: _Run, found: AppUser | None) -> bool:
    return _same_email(found, run.identity.email) and found is not None and found.active


def _judge_created(run: _Run, found: AppUser | None) -> tuple[Status, str]:
    assert found is not None  # noqa: S101 - settled implies present
    given, family = run.identity.given_name, run.identity.family_name
    text = f"{_access(found)}, {found.email}, name {found.name!r}"
    if not _name_matches(found, given, family):
        return Status.FAIL, f"{text}; expected the name {given} {family}"
    return Status.PASS, text


async def _seen_created(run: _Run, outcome: StepOutcome, budget_s: float) -> None:
    run.app_id = outcome.user.id if outcome.user else None
    run.access.seen(outcome.user)
    await run.access.issue()


async def _update_profile(run: _Run) -> None:
    await run.driver.update_user(
        run.test_user, family_name=run.new_family, attributes={PROFILE_ATTRIBUTE: run.department}
    )


def _profile_settled(run: _Run, found: AppUser | None) -> bool:
    if found is None:
        return False
    # Both halves of the update are waited for: an app may apply the name and the attribute
    # at different moments, and judging at the first name that matches would fail a correct
    # app whose attribute lands a moment later. One the probe does not show is not waited for.
    stored = found.attributes.get(PROFILE_ATTRIBUTE)
    attribute_settled = stored is None or str(stored) == run.department
    if found.name is None:
        return attribute_settled
    return attribute_settled and _name_matches(found, run.test_user.given_name, run.new_family)


def _judge_profile(run: _Run, found: AppUser | None) -> tuple[Status, str]:
    assert found is not None  # noqa: S101 - settled implies present
    text = f"name {found.name!r}"
    stored = found.attributes.get(PROFILE_ATTRIBUTE)
    if stored is None and found.name is None:
        run.profile_unseen = f"the probe shows neither the user's name nor its {PROFILE_ATTRIBUTE}"
    if stored is None:
        if run.attribute_required:
            return Status.FAIL, f"{text}; {PROFILE_ATTRIBUTE} missing although required"
        return Status.PASS, f"{text}; {PROFILE_ATTRIBUTE} not stored by the app"
    if str(stored) != run.department:
        return Status.FAIL, f"{text}; {PROFILE_ATTRIBUTE} is {stored!r}, sent {run.department!r}"
    return Status.PASS, f"{text}; {PROFILE_ATTRIBUTE} {stored!r}"


async def _change_email(run: _Run) -> None:
    await run.driver.change_email(run.test_user, run.new_email)


def _judge_email(run: _Run, found: AppUser | None) -> tuple[Status, str]:
    assert found is not None  # noqa: S101 - settled implies present
    if run.app_id is not None and found.id != run.app_id:
        return (
            Status.FAIL,
            f"a second app user (id {found.id}) holds the new email; the original user is "
            f"id {run.app_id}",
        )
    return Status.PASS, f"{found.email} on app user {found.id}"


async def _deactivate(run: _Run) -> None:
    await run.driver.set_active(run.test_user, False)


async def _access_after_deactivation(run: _Run, outcome: StepOutcome, budget_s: float) -> None:
    await run.access.ended("deactivation", outcome, budget_s, code=ACCESS_DEACTIVATION)


async def _reactivate(run: _Run) -> None:
    await run.driver.set_active(run.test_user, True)


async def _reissue(run: _Run, outcome: StepOutcome, budget_s: float) -> None:
    await run.access.issue()


async def _delete(run: _Run) -> None:
    await run.driver.delete_user(run.test_user, mark_removed=False)


def _judge_deleted(run: _Run, found: AppUser | None) -> tuple[Status, str]:
    if found is None and run.keep_records:
        return Status.WARN, "user removed outright, although the config says the app keeps records"
    return Status.PASS, _access(found)


async def _access_after_delete(run: _Run, outcome: StepOutcome, budget_s: float) -> None:
    await run.access.ended("delete", outcome, budget_s, code=ACCESS_DELETE)
    if outcome.status in (Status.PASS, Status.WARN):
        # Only a delete the probe saw take effect closes the ledger line. Still active (FAIL),
        # a probe that failed (ERROR) or a step not judged (SKIP): the user may still be in
        # the app, so the line stays open and the end-of-run removal (or `cleanup`) deals
        # with it; a closed line for a user still there would be a lost record.
        run.driver.mark_removed(run.test_user)


STEPS: tuple[Step[_Run], ...] = (
    Step(
        "1. create",
        "user exists, active, with the email and name sent",
        CREATE,
        change=_create,
        settled=_created,
        judge=_judge_created,
        after=_seen_created,
    ),
    Step(
        "2. update profile",
        "new name and department reflected",
        PROFILE,
        change=_update_profile,
        settled=_profile_settled,
        judge=_judge_profile,
        shows=lambda run: (
            f"name contains {run.new_family!r}, {PROFILE_ATTRIBUTE} {run.department!r}"
        ),
        unobservable=lambda run: run.profile_unseen,
    ),
    Step(
        "3. change email",
        "new email on the same app user, no second user",
        EMAIL,
        change=_change_email,
        settled=lambda run, found: _same_email(found, run.new_email),
        judge=_judge_email,
        shows=lambda run: f"{run.new_email} on app user {run.app_id or '(same id)'}",
    ),
    Step(
        "4. deactivate",
        "user inactive or removed (no access)",
        DEACTIVATE,
        change=_deactivate,
        settled=_no_access,
        judge=_access_state,
        after=_access_after_deactivation,
    ),
    Step(
        "5. reactivate",
        "user active again",
        REACTIVATE,
        change=_reactivate,
        settled=lambda run, found: found is not None and found.active,
        judge=_access_state,
        after=_reissue,
    ),
    Step(
        "6. delete",
        "user deactivated or removed",
        DELETE,
        change=_delete,
        settled=_no_access,
        judge=_judge_deleted,
        after=_access_after_delete,
    ),
)


# -- the run ------------------------------------------------------------------------------------


async def _lifecycle(ctx: CheckContext, driver: ProvisioningDriver, budget_s: float) -> None:

    data_model, probe = ctx.config.data_model, ctx.config.probe
    identity = ctx.identities.user("lifecycle", international=True)
    state = _Run(
        driver=driver,
        identity=identity,
        new_family=f"{identity.family_name}-renamed",
        department=f"{ctx.run_id}-dept",
        new_email=ctx.identities.user("lifecycle-renamed").email,
        attribute_required=PROFILE_ATTRIBUTE
        in (data_model.required_attributes if data_model else ()),
        keep_records=data_model.keep_records_on_delete if data_model else True,
        access=_Access(ctx.findings, ctx.clock, probe.access if probe else None, ctx.tls),
    )
    reader = app_user_reader(ctx.probe, ctx.config.probe)
    stepper: Stepper[_Run] = Stepper(
        ctx.findings,
        ctx.clock,
        read=lambda run: reader.read(run.test_user),
        probing=ctx.probe is not None,
        budget_s=budget_s,
        shorten_after_failure=True,
    )

    async def on_failure(index: int, step: Step[_Run], outcome: StepOutcome) -> str | None:
        if index > 0:
            return None  # later steps do not build on it; its finding comes with the others
        legacy = None
        if outcome.status is Status.FAIL and outcome.user is None:
            legacy = await _acts_only_on_legacy_names(ctx, stepper.budget())
        _step_failed(ctx.findings, step, outcome, legacy_only=legacy)
        return _why_later_steps_stop(step, outcome)

    try:
        await stepper.run(STEPS, state, on_failure)
    finally:
        await state.access.aclose()
        if _past_create(stepper):
            # Whatever ended the steps (a refusal, the end), report what was observed.
            _conclude(ctx.findings, stepper.outcomes, RoundTripOptions.of(ctx).mode)
            ctx.findings.metrics["propagation_ms"] = latency_summary(ctx.findings)


def _why_later_steps_stop(step: Step[_Run], outcome: StepOutcome) -> str:
    """Why nothing after a failed create is run, as what was (or was not) observed."""
    if outcome.status is Status.ERROR:
        return f"the probe failed at step {step.name}, so the test user was never seen"
    if outcome.user is None:
        return "the user never appeared in the app"
    return f"step {step.name} did not show the user as expected, and the later steps build on it"


def _past_create(stepper: Stepper[_Run]) -> bool:
    """Whether the user was created and seen (or, without a probe, sent): only then do the
    other steps have something to report."""
    first = stepper.outcomes.get(STEPS[0].name)
    return first is not None and not first.failed


async def _acts_only_on_legacy_names(ctx: CheckContext, budget_s: float) -> str | None:
    """Whether the app creates a user from ``scalekit.dir.user.create`` (an older guide's
    name) although it ignored the current one: what was seen, or None. The user it creates
    is deleted again under the legacy name, the only one such an app acts on."""

    view, _ = app_view(ctx.probe, ctx.config.probe)
    webhook = ctx.config.webhook
    if view is None or missing_webhook_setting(webhook) is not None or webhook.secret is None:
        return None
    create, delete = (
        LEGACY_EVENT_NAMES[t] for t in (EventType.USER_CREATED, EventType.USER_DELETED)
    )
    identity = ctx.identities.user("lifecycle-legacy")
    parts = CheckParts(ctx)
    target = parts.event_target()
    org = target.organization_id
    secret = webhook.secret.get_secret_value()
    unopened = parts.senders.sender(webhook.url or "", secret, target, webhook.timeout_s)
    async with unopened as sender:
        parts.test_users.record(identity, expect_applied=True)
        sent = await sender.send_event(create, sender.event(create, user_event_data(identity, org)))
        if not sent.accepted:
            return None
        try:
            seen = await view.wait_visible(identity, budget_s=budget_s, clock=ctx.clock)
        except ProbeError:
            seen = None
        if seen is None:
            return None
        data = user_deleted_data(
            id=identity.directory_user_id, organization_id=org, email=identity.email
        )
        await sender.send_event(delete, sender.event(delete, data))
    return (
        f"the same user_created sent as {create} did create {seen.email} (app user "
        f"{seen.id}): the app acts only on the legacy event names"
    )


def _step_failed(
    findings: FindingRecorder,
    step: Step[_Run],
    outcome: StepOutcome,
    *,
    legacy_only: str | None = None,
) -> None:
    name, expected, code = step.name, step.expected, step.code.code
    if legacy_only is not None:
        findings.failed(
            f"Step {name}: the app acts only on legacy event names",
            expected=expected,
            observed=f"{outcome.observed}; {legacy_only}",
            why="Scalekit sends organization.directory.user_created and the other current "
            "names; an app written from an older guide acknowledges them and does nothing, "
            "so every provisioning change is lost while Scalekit sees 2xx.",
            fix="Dispatch on the current names (organization.directory.user_created, "
            "user_updated, user_deleted, group_*); keep the scalekit.dir.* cases only as "
            "aliases while they may still arrive.",
            evidence={"step": name, "waited_s": round(outcome.elapsed_s, 3)},
            code=code,
        )
        return
    if outcome.status is Status.ERROR:
        findings.errored(
            f"Step {name}: the probe could not read the app's state",
            expected=expected,
            observed=outcome.observed,
            why="Without the app's state this step cannot be judged.",
            fix="Check the probe section of the config against the app.",
            evidence={"step": name},
            code=code,
        )
        return
    findings.failed(
        f"Step {name}: the app did not reach the expected state",
        expected=expected,
        observed=outcome.observed,
        why=step.why,
        fix=step.fix,
        evidence={"step": name, "waited_s": round(outcome.elapsed_s, 3)},
        code=code,
    )


def _step_findings(findings: FindingRecorder, outcomes: dict[str, StepOutcome]) -> None:
    """A finding for each step that failed, could not be observed, or was not judged."""

    for step in STEPS[1:]:
        outcome = outcomes.get(step.name)
        if outcome is not None and outcome.failed:
            _step_failed(findings, step, outcome)
        elif outcome is not None and outcome.observed.startswith("not observable"):
            findings.skipped(
                f"Step {step.name}: not observable",
                expected=outcome.expected,
                observed=outcome.observed,
                why="The probe shows the same before and after this change, so no look can "
                "tell whether the app applied it.",
                fix="Map the user's name (probe.*.fields.name) or its attributes "
                "(probe.*.fields.attributes) in the probe.",
                code=step.code.code,
            )
        elif outcome is not None and outcome.observed.startswith("not judged"):
            # A waiver of the step it followed must not make this one look passed.
            findings.skipped(
                f"Step {step.name}: not judged",
                expected=outcome.expected,
                observed=outcome.observed,
                why="A step is judged only from a known state that is not already the one it "
                "waits for.",
                fix="Fix the step before it (see its finding).",
                code=step.code.code,
            )


def _conclude(findings: FindingRecorder, outcomes: dict[str, StepOutcome], mode: Mode) -> None:

    _step_findings(findings, outcomes)
    deleted = outcomes.get(STEPS[5].name)
    if deleted is not None and deleted.status is Status.WARN:
        findings.warned(
            "Step 6. delete: the user was removed outright",
            expected="user kept and deactivated (data_model.keep_records_on_delete is true)",
            observed=deleted.observed,
            why="Hard deletes lose the audit trail of what the user did and owned.",
            fix="Deactivate and keep the record on user_deleted, or set "
            "data_model.keep_records_on_delete: false if removal is intended.",
            code=DELETE.code,
        )
    if len(outcomes) < len(STEPS):
        return  # a change was refused: that finding says why the rest did not run
    if all(outcome.status is Status.SKIP for outcome in outcomes.values()):
        record_not_observed(
            findings,
            "App state not observed: no probe configured",
            why="Acceptance proves nothing about what the app did with the change.",
            code=LIFECYCLE,
        )
        return
    unseen = [name for name, o in outcomes.items() if o.observed.startswith("not observable")]
    if all(o.status is Status.PASS or name in unseen for name, o in outcomes.items()):
        findings.passed(
            "Create, profile update, email change, deactivation, reactivation and deletion "
            "all reached the app"
            if not unseen
            else "Every lifecycle change the probe can show reached the app",
            observed=latencies_text(findings)
            + (f"; not observable: {', '.join(unseen)}" if unseen else ""),
            evidence={
                "propagation_ms": latency_summary(findings),
                "mode": mode,
            },
            code=LIFECYCLE.code,
        )


class _Access:
    """``probe.access`` for the lifecycle user: credentials issued while it has access, then
    watched, after a deprovisioning step, until both stop working. Credentials never appear
    in a finding."""

    def __init__(
        self, findings: FindingRecorder, clock: Clock, section: AccessProbe | None, tls: TlsSettings
    ) -> None:
        self.findings = findings
        self.clock = clock
        self._section = section
        self._tls = tls
        self.client: AccessClient | None = None
        self.kinds: tuple[Kind, ...] = ()
        self.user_id = ""
        self.email = ""
        self.credentials: Credentials | None = None
        self.problem = "not observed: no probe.access is configured"

    def seen(self, user: AppUser | None) -> None:
        """The create step saw ``user`` in the app: from now on credentials can be issued
        for it (when ``probe.access`` is configured)."""
        if self._section is None or user is None:
            return

        self.client = AccessClient(self._section, self._tls)
        self.kinds = KINDS
        self.user_id = user.directory_user_id or ""
        self.email = user.email
        self.problem = ""

    async def issue(self) -> None:
        if self.client is None:
            return
        try:
            self.credentials = await self.client.issue(self.user_id, self.email)
            if not all([await self.client.can_act(self.credentials, k) for k in self.kinds]):
                self.credentials, self.problem = None, "credentials just issued were refused"
        except ProbeError as exc:
            self.credentials, self.problem = None, f"could not issue credentials: {exc.message}"

    async def ended(
        self, after: str, step: StepOutcome, budget_s: float, *, code: FindingCode
    ) -> None:
        """Record whether the session and the API token stopped working after ``after``."""
        title = f"Access ends on {after}"
        if self.client is None:
            self.findings.skipped(
                title,
                observed=self.problem,
                why="An inactive flag proves nothing about sessions and API tokens issued "
                "before the change.",
                fix="Configure probe.access (a test hook that issues a session and an API "
                "token, and an endpoint answering 200 or 401).",
                code=code.code,
            )
        elif not step.ok:
            outcome = "failed" if step.failed else "was not judged"
            self.findings.skipped(
                title, observed=f"not judged: the {after} step {outcome}", code=code.code
            )
        elif self.credentials is None:
            self.findings.errored(
                title,
                observed=self.problem,
                fix="Check probe.access against the app.",
                code=code.code,
            )
        else:
            await self._watch(title, after, budget_s, code)
        self.credentials = None

    async def _watch(self, title: str, after: str, budget_s: float, code: FindingCode) -> None:
        client, credentials = self.client, self.credentials
        assert client is not None and credentials is not None  # noqa: S101 - checked by ended

        async def working() -> list[str]:
            return [k for k in self.kinds if await client.can_act(credentials, k)]

        outcome = await wait_until(
            working,
            lambda still: not still,
            budget_s=budget_s,
            clock=self.clock,
            retry_on=(ProbeError,),
            errors_in_a_row=3,
        )
        expected = "the session and the API token refused (401/403)"
        if outcome.satisfied:
            self.findings.passed(
                title,
                expected=expected,
                observed=f"both refused {outcome.elapsed_s * 1000:.0f} ms after the {after} "
                "reached the app",
                code=code.code,
            )
        elif outcome.error is not None or outcome.value is None:
            # The last look failed: whatever an earlier one saw is not the state at the end.
            message = outcome.error.message if isinstance(outcome.error, ProbeError) else ""
            if outcome.value:
                message += "; an earlier look found still working: " + " and ".join(
                    k.replace("_", " ") for k in outcome.value
                )
            self.findings.errored(title, expected=expected, observed=message, code=code.code)
        else:
            self.findings.failed(
                title,
                expected=expected,
                observed=f"after {outcome.elapsed_s:.1f} s still working: "
                + " and ".join(k.replace("_", " ") for k in outcome.value),
                why="A departed employee keeps acting through a session or an API token "
                "issued before the change, although the app shows the user inactive.",
                fix=f"On {after}, revoke the user's sessions and API tokens (and check the "
                "user's state on every authenticated request).",
                code=code.code,
            )

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
