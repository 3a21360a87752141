"""`user-lifecycle`: user create, update and deprovision round trips (checklist item 4).

One test user goes through six steps; after each change the app is watched through the probe
(poll with backoff, up to option ``step_timeout_s``) and the step's propagation
time goes on the timeline:

1. create → the user exists, active, with the email and name sent;
2. update the profile (name and the ``department`` attribute) → reflected;
3. change the email → reflected on the same user, not on a second one;
4. deactivate (``user_updated`` with ``active: false`` / SCIM PATCH ``active``) → no access;
5. reactivate → active again;
6. delete (``user_deleted`` / SCIM DELETE) → deactivated or removed.

With ``probe.access`` configured, access is judged by access, not only by the ``active``
flag: a session and an API token are issued for the user after steps 1 and 5, and after
steps 4 and 6 both must stop working within the step budget ("Access ends on deactivation",
"Access ends on delete": FAIL naming what still works; SKIP without ``probe.access``).

Changes are driven as Scalekit would send them (option ``mode: events``: signed
events straight to the webhook) or as the IdP would (``mode: scim``: SCIM requests to the
directory's endpoint; Scalekit then delivers the webhooks).

Statuses:
  PASS  every step showed the expected state in the app within its budget.
  WARN  the user was removed outright on delete although ``data_model.keep_records_on_delete``
        says the app keeps records (audit history is lost).
  FAIL  a step did not show the expected state in time (the step is named, with the last state
        seen), or the app refused a correctly signed event. When the user never appears, one
        user_created under its legacy name (scalekit.dir.user.create) is sent too: an app
        that acts on that one only is named as such in the finding.
  SKIP  read-only run, the mode's config is missing, or no probe is configured (the changes are
        still sent and must be accepted, but nothing can be observed, so nothing passes).
  ERROR the SCIM endpoint or the probe failed, so the app could not be evaluated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_readiness.api import CheckInfo, Need, ReadOnly, Status
from scim_readiness.plugin.options import RoundTripOptions

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from scim_readiness.api import CheckContext
    from scim_readiness.clients.access import AccessClient, Credentials
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.provisioning.drivers import ChangeRejected, ProvisioningDriver
    from scim_readiness.provisioning.roundtrip import StepOutcome

CHECK = CheckInfo(
    id="user-lifecycle",
    title="User create, update and deprovision round trips",
    checklist_item=4,
    options=RoundTripOptions,
    needs=(Need.WEBHOOK,),
    mutates=True,
    sharing="shared",  # judges only its own lifecycle* test users
    read_only=ReadOnly.NONE,  # every step changes the app: nothing to run without changes
    docs_url="https://docs.scalekit.com/reference/webhooks/overview",
    description="Creates, updates, deactivates, reactivates and deletes a test user through "
    "signed events (or the directory's SCIM endpoint) and watches the app through the probe.",
    default_timeout_s=300.0,
)

STEPS: tuple[tuple[str, str], ...] = (
    ("1. create", "user exists, active, with the email and name sent"),
    ("2. update profile", "new name and department reflected"),
    ("3. change email", "new email on the same app user, no second user"),
    ("4. deactivate", "user inactive or removed (no access)"),
    ("5. reactivate", "user active again"),
    ("6. delete", "user deactivated or removed"),
)

_WHY = {
    "1. create": "Users the directory provisions must be able to sign in; an app that does not "
    "create them on the current event names leaves every new hire locked out.",
    "2. update profile": "Profile changes in the IdP must reach the app, or names and "
    "attributes drift from the source of truth.",
    "3. change email": "Emails change (marriage, domain moves); keying users on email instead "
    "of the directory user id duplicates or orphans accounts.",
    "4. deactivate": "Suspending someone in the IdP arrives as user_updated with active: false; "
    "an app that ignores it keeps a departed employee's access.",
    "5. reactivate": "A reinstated user must regain access without a support ticket.",
    "6. delete": "Deleting a user in the IdP must remove access; a 2xx without effect leaves an "
    "account nobody controls.",
}
_FIX = {
    "1. create": "Handle organization.directory.user_created (and user_updated) as an upsert "
    "keyed on data.id; match the current event type names exactly.",
    "2. update profile": "Apply given_name, family_name and the attributes you store on "
    "organization.directory.user_updated.",
    "3. change email": "Look users up by data.id (the directory user id), then update the email.",
    "4. deactivate": "On user_updated with data.active false, deactivate the user and end "
    "their sessions.",
    "5. reactivate": "On user_updated with data.active true, reactivate the user.",
    "6. delete": "On organization.directory.user_deleted, deactivate (or delete) the user keyed "
    "on data.id and end their sessions.",
}


async def run(ctx: CheckContext) -> None:
    from scim_readiness.provisioning.drivers import make_driver
    from scim_readiness.provisioning.roundtrip import (
        round_trip_options,
        skipped_unconfigured_mode,
    )

    options = round_trip_options(ctx)
    if options is None:
        return
    mode, budget_s = options
    if skipped_unconfigured_mode(ctx, mode):
        return
    ctx.findings.metrics["mode"] = mode
    driver = make_driver(ctx, mode)
    try:
        await _lifecycle(ctx, driver, budget_s)
    finally:
        await driver.aclose()


async def cleanup(ctx: CheckContext) -> None:
    from scim_readiness.provisioning.roundtrip import remove_test_objects

    await remove_test_objects(ctx, what="Test users")


def _same_email(user: AppUser | None, email: str) -> bool:
    return user is not None and user.email.lower() == email.lower()


def _name_matches(user: AppUser, given: str, family: str) -> bool:
    # Apps store a full name, or only its parts; either way the sent names must be in it.
    if user.name is None:
        return True
    name = user.name.lower()
    return given.lower() in name and family.lower() in name


async def _lifecycle(ctx: CheckContext, driver: ProvisioningDriver, budget_s: float) -> None:
    from scim_readiness.provisioning.drivers import PROFILE_ATTRIBUTE, ChangeRejected
    from scim_readiness.provisioning.roundtrip import (
        app_user_lookup,
        budget_after_failure,
        latency_summary,
        observe_step,
        record_not_run,
    )

    identity = ctx.identities.user("lifecycle", international=True)
    outcomes: dict[str, StepOutcome] = {}

    def budget() -> float:
        if any(o.status in (Status.FAIL, Status.ERROR) for o in outcomes.values()):
            return budget_after_failure(ctx, budget_s)
        return budget_s

    async def change(index: int, action: Awaitable[None]) -> float | None:
        """Send one change; None (and the rest of the steps SKIP) when it was refused."""
        started = ctx.clock.monotonic()
        try:
            await action
        except ChangeRejected as exc:
            _refused(ctx, index, exc)
            return None
        return started

    # 1. create
    created_at = ctx.clock.monotonic()
    try:
        user = await driver.create_user(identity)
    except ChangeRejected as exc:
        _refused(ctx, 0, exc)
        return

    def created(found: AppUser | None) -> bool:
        return _same_email(found, identity.email) and found is not None and found.active

    first = await observe_step(
        ctx,
        step=STEPS[0][0],
        expected=STEPS[0][1],
        lookup=app_user_lookup(ctx, user),
        settled=created,
        judge=lambda found: _judge_created(found, identity.given_name, identity.family_name),
        started_at=created_at,
        budget_s=budget(),
    )
    outcomes[STEPS[0][0]] = first
    if first.status in (Status.FAIL, Status.ERROR):
        legacy = None
        if first.status is Status.FAIL and first.user is None:
            legacy = await _acts_only_on_legacy_names(ctx, budget())
        _step_failed(ctx, STEPS[0], first, legacy_only=legacy)
        record_not_run(ctx, STEPS[1:], "the user never appeared in the app")
        return
    app_id = first.user.id if first.user else None
    access = _Access(ctx, first.user)
    await access.issue()

    try:
        started: float | None
        # 2. update profile
        new_family = f"{identity.family_name}-renamed"
        department = f"{ctx.run_id}-dept"
        required = PROFILE_ATTRIBUTE in (
            ctx.config.data_model.required_attributes if ctx.config.data_model else ()
        )
        started = await change(
            1,
            driver.update_user(
                user, family_name=new_family, attributes={PROFILE_ATTRIBUTE: department}
            ),
        )
        if started is None:
            return

        def profile_settled(found: AppUser | None) -> bool:
            return found is not None and _name_matches(found, user.given_name, new_family)

        def profile_judge(found: AppUser | None) -> tuple[Status, str]:
            assert found is not None  # noqa: S101 - settled implies present
            text = f"name {found.name!r}"
            stored = found.attributes.get(PROFILE_ATTRIBUTE)
            if stored is None:
                if required:
                    return Status.FAIL, f"{text}; {PROFILE_ATTRIBUTE} missing although required"
                return Status.PASS, f"{text}; {PROFILE_ATTRIBUTE} not stored by the app"
            if str(stored) != department:
                return (
                    Status.FAIL,
                    f"{text}; {PROFILE_ATTRIBUTE} is {stored!r}, sent {department!r}",
                )
            return Status.PASS, f"{text}; {PROFILE_ATTRIBUTE} {stored!r}"

        outcomes[STEPS[1][0]] = await observe_step(
            ctx,
            step=STEPS[1][0],
            expected=f"name contains {new_family!r}, {PROFILE_ATTRIBUTE} {department!r}",
            lookup=app_user_lookup(ctx, user),
            settled=profile_settled,
            judge=profile_judge,
            started_at=started,
            budget_s=budget(),
        )

        # 3. change email
        new_email = ctx.identities.user("lifecycle-renamed").email
        started = await change(2, driver.change_email(user, new_email))
        if started is None:
            return

        def email_judge(found: AppUser | None) -> tuple[Status, str]:
            assert found is not None  # noqa: S101 - settled implies present
            if app_id is not None and found.id != app_id:
                return (
                    Status.FAIL,
                    f"a second app user (id {found.id}) holds the new email; the original user is "
                    f"id {app_id}",
                )
            return Status.PASS, f"{found.email} on app user {found.id}"

        outcomes[STEPS[2][0]] = await observe_step(
            ctx,
            step=STEPS[2][0],
            expected=f"{new_email} on app user {app_id or '(same id)'}",
            lookup=app_user_lookup(ctx, user),
            settled=lambda found: _same_email(found, new_email),
            judge=email_judge,
            started_at=started,
            budget_s=budget(),
        )

        # 4. deactivate
        started = await change(3, driver.set_active(user, False))
        if started is None:
            return

        def no_access(found: AppUser | None) -> bool:
            return found is None or not found.active

        outcomes[STEPS[3][0]] = await observe_step(
            ctx,
            step=STEPS[3][0],
            expected=STEPS[3][1],
            lookup=app_user_lookup(ctx, user),
            settled=no_access,
            judge=lambda found: (Status.PASS, _access(found)),
            started_at=started,
            budget_s=budget(),
        )
        await access.ended("deactivation", outcomes[STEPS[3][0]], budget())

        # 5. reactivate
        started = await change(4, driver.set_active(user, True))
        if started is None:
            return
        outcomes[STEPS[4][0]] = await observe_step(
            ctx,
            step=STEPS[4][0],
            expected=STEPS[4][1],
            lookup=app_user_lookup(ctx, user),
            settled=lambda found: found is not None and found.active,
            judge=lambda found: (Status.PASS, _access(found)),
            started_at=started,
            budget_s=budget(),
        )
        await access.issue()

        # 6. delete
        keep_records = (
            ctx.config.data_model.keep_records_on_delete if ctx.config.data_model else True
        )

        def delete_judge(found: AppUser | None) -> tuple[Status, str]:
            if found is None and keep_records:
                return (
                    Status.WARN,
                    "user removed outright, although the config says the app keeps records",
                )
            return Status.PASS, _access(found)

        started = await change(5, driver.delete_user(user, mark_removed=False))
        if started is None:
            return
        deleted = await observe_step(
            ctx,
            step=STEPS[5][0],
            expected=STEPS[5][1],
            lookup=app_user_lookup(ctx, user),
            settled=no_access,
            judge=delete_judge,
            started_at=started,
            budget_s=budget(),
        )
        outcomes[STEPS[5][0]] = deleted
        await access.ended("delete", deleted, budget())
        if deleted.status is not Status.FAIL:
            # Still active in the app means not gone: cleanup deactivates it another way.
            driver.mark_removed(user)

    finally:
        await access.aclose()
        # Whatever ended the steps (a refusal, the end), report what was observed.
        _conclude(ctx, outcomes)
        ctx.findings.metrics["propagation_ms"] = latency_summary(ctx)


def _access(found: AppUser | None) -> str:
    if found is None:
        return "removed from the app"
    return "active" if found.active else "inactive (record kept)"


def _judge_created(found: AppUser | None, given: str, family: str) -> tuple[Status, str]:
    assert found is not None  # noqa: S101 - settled implies present
    text = f"{_access(found)}, {found.email}, name {found.name!r}"
    if not _name_matches(found, given, family):
        return Status.FAIL, f"{text}; expected the name {given} {family}"
    return Status.PASS, text


def _refused(ctx: CheckContext, index: int, exc: ChangeRejected) -> None:
    """Step ``index`` could not be sent: it fails (or errs), and the later steps do not run."""
    from scim_readiness.provisioning.roundtrip import record_not_run, record_refused

    name, expected = STEPS[index]
    record_refused(ctx, name, expected, exc, why=_WHY[name], fix=_FIX[name])
    record_not_run(ctx, STEPS[index + 1 :], f"step {name} could not be sent")


async def _acts_only_on_legacy_names(ctx: CheckContext, budget_s: float) -> str | None:
    """Whether the app creates a user from ``scalekit.dir.user.create`` (an older guide's
    name) although it ignored the current one: what was seen, or None. The user it creates
    is deleted again under the legacy name, the only one such an app acts on."""
    from scim_readiness.errors import ProbeError
    from scim_readiness.events import EventType, user_deleted_data
    from scim_readiness.webhooks.probing import missing_webhook_setting
    from scim_readiness.webhooks.send import LEGACY_EVENT_NAMES
    from scim_readiness.webhooks.sender import (
        Sender,
        event_target,
        record_test_user,
        user_event_data,
    )
    from scim_readiness.webhooks.traces import app_view

    view, _ = app_view(ctx)
    webhook = ctx.config.webhook
    if view is None or missing_webhook_setting(ctx) is not None or webhook.secret is None:
        return None
    create, delete = (
        LEGACY_EVENT_NAMES[t] for t in (EventType.USER_CREATED, EventType.USER_DELETED)
    )
    identity = ctx.identities.user("lifecycle-legacy")
    target = event_target(ctx)
    org = target.organization_id
    secret = webhook.secret.get_secret_value()
    async with Sender(ctx, webhook.url or "", secret, target, webhook.timeout_s) as sender:
        record_test_user(ctx, identity, expect_applied=True)
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
    ctx: CheckContext,
    step: tuple[str, str],
    outcome: StepOutcome,
    *,
    legacy_only: str | None = None,
) -> None:
    name, expected = step
    if legacy_only is not None:
        ctx.findings.failed(
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
        )
        return
    if outcome.status is Status.ERROR:
        ctx.findings.errored(
            f"Step {name}: the probe could not read the app's state",
            expected=expected,
            observed=outcome.observed,
            why="Without the app's state this step cannot be judged.",
            fix="Check the probe section of the config against the app.",
            evidence={"step": name},
        )
        return
    ctx.findings.failed(
        f"Step {name}: the app did not reach the expected state",
        expected=expected,
        observed=outcome.observed,
        why=_WHY[name],
        fix=_FIX[name],
        evidence={"step": name, "waited_s": round(outcome.elapsed_s, 3)},
    )


def _conclude(ctx: CheckContext, outcomes: dict[str, StepOutcome]) -> None:
    from scim_readiness.provisioning.roundtrip import (
        latencies_text,
        latency_summary,
        record_not_observed,
    )

    for name, expected in STEPS[1:]:
        outcome = outcomes.get(name)
        if outcome is not None and outcome.status in (Status.FAIL, Status.ERROR):
            _step_failed(ctx, (name, expected), outcome)
    deleted = outcomes.get(STEPS[5][0])
    if deleted is not None and deleted.status is Status.WARN:
        ctx.findings.warned(
            "Step 6. delete: the user was removed outright",
            expected="user kept and deactivated (data_model.keep_records_on_delete is true)",
            observed=deleted.observed,
            why="Hard deletes lose the audit trail of what the user did and owned.",
            fix="Deactivate and keep the record on user_deleted, or set "
            "data_model.keep_records_on_delete: false if removal is intended.",
        )
    if len(outcomes) < len(STEPS):
        return  # a change was refused: that finding says why the rest did not run
    if all(outcome.status is Status.SKIP for outcome in outcomes.values()):
        record_not_observed(
            ctx,
            "App state not observed: no probe configured",
            why="Acceptance proves nothing about what the app did with the change.",
        )
        return
    if all(outcome.status is Status.PASS for outcome in outcomes.values()):
        ctx.findings.passed(
            "Create, profile update, email change, deactivation, reactivation and deletion "
            "all reached the app",
            observed=latencies_text(ctx),
            evidence={
                "propagation_ms": latency_summary(ctx),
                "mode": RoundTripOptions.of(ctx).mode,
            },
        )


class _Access:
    """``probe.access`` for the lifecycle user: credentials issued while it has access, then
    watched, after a deprovisioning step, until both stop working. Credentials never appear
    in a finding."""

    def __init__(self, ctx: CheckContext, seen: AppUser | None) -> None:
        from scim_readiness.clients.access import AccessClient

        self.ctx = ctx
        section = ctx.config.probe.access if ctx.config.probe else None
        self.client: AccessClient | None = (
            AccessClient(section, ctx.tls) if section and ctx.probe and seen else None
        )
        self.user_id = (seen.directory_user_id or "") if seen else ""
        self.email = seen.email if seen else ""
        self.credentials: Credentials | None = None
        self.problem = "" if self.client else "not observed: no probe.access is configured"

    async def issue(self) -> None:
        from scim_readiness.clients.access import KINDS
        from scim_readiness.errors import ProbeError

        if self.client is None:
            return
        try:
            self.credentials = await self.client.issue(self.user_id, self.email)
            if not all([await self.client.can_act(self.credentials, k) for k in KINDS]):
                self.credentials, self.problem = None, "credentials just issued were refused"
        except ProbeError as exc:
            self.credentials, self.problem = None, f"could not issue credentials: {exc.message}"

    async def ended(self, after: str, step: StepOutcome, budget_s: float) -> None:
        """Record whether the session and the API token stopped working after ``after``."""
        title = f"Access ends on {after}"
        if self.client is None:
            self.ctx.findings.skipped(
                title,
                observed=self.problem,
                why="An inactive flag proves nothing about sessions and API tokens issued "
                "before the change.",
                fix="Configure probe.access (a test hook that issues a session and an API "
                "token, and an endpoint answering 200 or 401).",
            )
        elif not step.ok:
            self.ctx.findings.skipped(title, observed=f"not judged: the {after} step failed")
        elif self.credentials is None:
            self.ctx.findings.errored(
                title, observed=self.problem, fix="Check probe.access against the app."
            )
        else:
            await self._watch(title, after, budget_s)
        self.credentials = None

    async def _watch(self, title: str, after: str, budget_s: float) -> None:
        from scim_readiness.clients.access import KINDS
        from scim_readiness.errors import ProbeError
        from scim_readiness.plugin.wait import wait_until

        client, credentials = self.client, self.credentials
        assert client is not None and credentials is not None  # noqa: S101 - checked by ended

        async def working() -> list[str]:
            return [k for k in KINDS if await client.can_act(credentials, k)]

        outcome = await wait_until(
            working,
            lambda still: not still,
            budget_s=budget_s,
            clock=self.ctx.clock,
            retry_on=(ProbeError,),
            errors_in_a_row=3,
        )
        expected = "the session and the API token refused (401/403)"
        if outcome.satisfied:
            self.ctx.findings.passed(
                title,
                expected=expected,
                observed=f"both refused {outcome.elapsed_s * 1000:.0f} ms after the {after} "
                "reached the app",
            )
        elif outcome.value is None:
            message = outcome.error.message if isinstance(outcome.error, ProbeError) else ""
            self.ctx.findings.errored(title, expected=expected, observed=message)
        else:
            self.ctx.findings.failed(
                title,
                expected=expected,
                observed=f"after {outcome.elapsed_s:.1f} s still working: "
                + " and ".join(k.replace("_", " ") for k in outcome.value),
                why="A departed employee keeps acting through a session or an API token "
                "issued before the change, although the app shows the user inactive.",
                fix=f"On {after}, revoke the user's sessions and API tokens (and check the "
                "user's state on every authenticated request).",
            )

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
