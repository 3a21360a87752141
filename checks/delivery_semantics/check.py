"""The body of `delivery-semantics`: see the package's docstring for what it checks."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from scim_readiness.api import (
    ESSENTIAL_ASSERTION,
    FindingCode,
    ProbeError,
    Status,
    TimelineStep,
)
from scim_readiness.clients.http import ssl_context
from scim_readiness.clients.http1 import Connection, HttpError, Target
from scim_readiness.events import (
    EventType,
    build_event,
    directory_data,
    encode_body,
    group_data,
    group_deleted_data,
    user_deleted_data,
)
from scim_readiness.guards import refuse_plain_http_signing
from scim_readiness.parts import CheckParts
from scim_readiness.plugin.wait import wait_until
from scim_readiness.webhooks.probing import missing_webhook_setting, webhook_sender
from scim_readiness.webhooks.sender import remove_test_users
from scim_readiness.webhooks.test_users import user_event_data
from scim_readiness.webhooks.traces import app_view, describe

from . import (
    _RETRIED,
    BACKLOG_WATCH,
    BURST_APPLIED,
    CONCURRENT_ANSWERS,
    CONCURRENT_DUPLICATES,
    COUNT_LIMIT,
    DELETE_BEFORE_CREATE,
    DIRECTORY_DISABLED,
    DROP_AFTER_S,
    DROPPED_REDELIVERY,
    GROUP_RENAME,
    LIFECYCLE,
    NOT_TESTED,
    PLACEHOLDER_ORG,
    REHIRE,
    SECOND_ORGANIZATION,
    STALE_UPDATE,
    UPDATE_AFTER_DELETE,
    Options,
)

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.webhooks.sender import Outcome, Sender
    from scim_readiness.webhooks.traces import AppView


class ScenarioOver(Exception):
    """Ends a scenario with ``status`` (the step that decided it is already recorded)."""

    def __init__(self, status: Status, observed: str) -> None:
        super().__init__(observed)
        self.status = status
        self.observed = observed


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scenario: its finding's code (whose title, why and fix it reports), what a correct
    app ends in, and the script that plays it."""

    key: str
    entry: FindingCode
    expected: str
    play: Callable[[Script], Awaitable[str]]
    whole_org: bool = False

    @property
    def title(self) -> str:
        """The finding's title: the catalogue's, up to what a correct app ends in."""
        return self.entry.title.partition(":")[0]


def _active(user: AppUser | None) -> bool:
    return user is not None and user.active


def _gone(user: AppUser | None) -> bool:
    return user is None or not user.active


def _named(part: str) -> Callable[[AppUser | None], bool]:
    return lambda user: (
        user is not None and user.name is not None and part.lower() in user.name.lower()
    )


def _holds(role: str) -> Callable[[AppUser | None], bool]:
    return lambda user: user is not None and role in user.roles


def _seen(user: AppUser | None) -> str:
    return "no such user in the app" if user is None else describe(user)


@dataclass
class Script:
    """The one stepper every scenario is written in: send a delivery, expect a state (within
    the step budget), hold a state (for the settle window). Each call is a timeline step;
    the first that goes wrong ends the scenario with :class:`ScenarioOver`."""

    ctx: CheckContext
    sender: Sender
    view: AppView
    options: Options
    scenario: Scenario
    steps: list[TimelineStep] = field(default_factory=list)
    #: A part of the scenario judged on the answers alone (its own PASS finding).
    answered: str = ""
    base: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def note(self, label: str, expected: str, observed: str, status: Status = Status.PASS) -> None:
        self.steps.append(TimelineStep(f"{self.scenario.key}: {label}", expected, observed, status))

    def user(
        self, label: str, *, email: str | None = None, organization_id: str | None = None
    ) -> TestIdentity:
        """A test identity of this run, in the ledger before any delivery can create it."""
        identity = self.ctx.identities.user(f"ds-{label}")
        if email is not None:
            identity = replace(identity, email=email)
        self.ctx.ledger.created(
            "user",
            identity.directory_user_id,
            channel="events",
            check_id=self.ctx.info.id,
            email=identity.email,
            dp_id=identity.dp_id,
            given_name=identity.given_name,
            family_name=identity.family_name,
            organization_id=organization_id or self.sender.target.organization_id,
            expect_applied=True,
        )
        return identity

    def event(
        self, event_type: str, data: dict[str, Any], *, at: float = 0.0, org: str | None = None
    ) -> dict[str, Any]:
        """An envelope whose ``occurred_at`` is ``at`` seconds after the scenario began."""

        return build_event(
            event_type,
            data,
            organization_id=org or self.sender.target.organization_id,
            environment_id=self.sender.target.environment_id,
            event_id=self.sender.next_event_id(),
            occurred_at=self.base + dt.timedelta(seconds=at),
        )

    def user_event(
        self,
        event_type: str,
        identity: TestIdentity,
        *,
        at: float = 0.0,
        org: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:

        organization_id = org or self.sender.target.organization_id
        data = user_event_data(identity, organization_id, **fields)
        return self.event(event_type, data, at=at, org=organization_id)

    def deleted_event(self, identity: TestIdentity, *, at: float = 0.0) -> dict[str, Any]:

        data = user_deleted_data(
            id=identity.directory_user_id,
            organization_id=self.sender.target.organization_id,
            email=identity.email,
            dp_id=identity.dp_id,
        )
        return self.event(EventType.USER_DELETED, data, at=at)

    async def send(self, label: str, event: dict[str, Any], *, refusal_ok: bool = False) -> Outcome:
        """Deliver ``event``; a 5xx or no answer ends the scenario (FAIL), and so does a 4xx
        unless ``refusal_ok`` (an event without effect may be turned away)."""
        outcome = await self.sender.send_event(label, event)
        return self.judge(label, outcome, refusal_ok=refusal_ok)

    def judge(self, label: str, outcome: Outcome, *, refusal_ok: bool = False) -> Outcome:
        """Put a delivery's answer on the timeline; end the scenario unless it is 2xx (or a
        4xx when ``refusal_ok``). No answer at all is ERROR: reachability is
        webhook-endpoint's finding."""
        if outcome.accepted or (refusal_ok and outcome.rejected):
            self.note(label, "2xx", outcome.summary())
            return outcome
        if outcome.status is None:
            self.note(label, "2xx", outcome.summary(), Status.ERROR)
            raise ScenarioOver(Status.ERROR, f"{label}: {outcome.summary()}")
        self.note(label, "2xx", outcome.summary(), Status.FAIL)
        if outcome.server_error:
            raise ScenarioOver(Status.FAIL, f"{label}: {outcome.summary()}; {_RETRIED}")
        raise ScenarioOver(Status.FAIL, f"the app refused {label}: {outcome.summary()}")

    async def expect(
        self,
        label: str,
        identity: TestIdentity,
        want: Callable[[AppUser | None], bool],
        expected: str,
        *,
        owner: str | None = None,
    ) -> AppUser | None:
        """Wait (up to the step budget) until the app shows ``want`` for ``identity``.

        ``owner`` names the check whose subject this step is (a plain create, delete or role
        grant): when it fails here the scenario is SKIP, not judged, and that check reports
        the defect once."""
        outcome = await wait_until(
            lambda: self.view.find(identity),
            want,
            budget_s=self.options.step_timeout_s,
            clock=self.ctx.clock,
            retry_on=(ProbeError,),
            errors_in_a_row=3,
        )
        if outcome.error is not None and not outcome.satisfied:
            raise outcome.error
        observed = f"after {outcome.elapsed_s:.2f} s: {_seen(outcome.value)}"
        if not outcome.satisfied and owner is not None:
            self.note(label, expected, observed, Status.SKIP)
            raise ScenarioOver(
                Status.SKIP,
                f"not judged: {label} did not happen ({observed}); {owner} reports that",
            )
        if not outcome.satisfied:
            self.note(label, expected, observed, Status.FAIL)
            raise ScenarioOver(Status.FAIL, f"{label}: expected {expected}; {observed}")
        self.steps.append(
            TimelineStep(
                f"{self.scenario.key}: {label}",
                expected,
                observed,
                Status.PASS,
                outcome.elapsed_s,
            )
        )
        return outcome.value

    async def hold(
        self,
        label: str,
        identity: TestIdentity,
        keep: Callable[[AppUser | None], bool],
        expected: str,
    ) -> AppUser | None:
        """Watch ``identity`` for the settle window: ``keep`` must stay true throughout."""
        outcome = await wait_until(
            lambda: self.view.find(identity),
            lambda user: not keep(user),
            budget_s=self.options.settle_s,
            clock=self.ctx.clock,
            first_delay_s=0.05,
            max_delay_s=0.25,
        )
        observed = f"after {outcome.elapsed_s:.2f} s: {_seen(outcome.value)}"
        if outcome.satisfied:
            self.note(label, expected, observed, Status.FAIL)
            raise ScenarioOver(Status.FAIL, f"{label}: expected {expected}; {observed}")
        self.note(label, f"{expected} for {self.options.settle_s:g} s", observed)
        return outcome.value

    async def count_once(self, identities: Sequence[TestIdentity]) -> str:
        """Every identity has exactly one record in the app (by directory user id)."""
        counts = await self.view.count(
            directory_user_ids=[i.directory_user_id for i in identities],
            emails=(),
            limit=COUNT_LIMIT,
        )
        expected = "one record per directory user"
        if counts is None:
            self.note("count records", expected, "the probe cannot list users", Status.SKIP)
            raise ScenarioOver(
                Status.SKIP,
                "not judged: the probe has no list_users, so records cannot be counted",
            )
        found = {
            i.directory_user_id: counts.by_directory_id.get(i.directory_user_id, 0)
            for i in identities
        }
        observed = ", ".join(f"{key}: {n}" for key, n in found.items())
        if any(n != 1 for n in found.values()):
            self.note("count records", expected, observed, Status.FAIL)
            raise ScenarioOver(Status.FAIL, f"records per directory user: {observed}")
        self.note("count records", expected, observed)
        return observed


# ---------------------------------------------------------------------------- scenarios


async def _stale_update(s: Script) -> str:

    user = s.user("stale")
    newer, older = f"{user.family_name}-newer", f"{user.family_name}-older"
    await s.send("user_created", s.user_event(EventType.USER_CREATED, user, at=-60))
    await s.expect("created", user, _active, "user active", owner=LIFECYCLE)
    await s.send(
        "user_updated (newer name)",
        s.user_event(EventType.USER_UPDATED, user, at=0, family_name=newer),
    )
    await s.expect("newer update applied", user, _named(newer), f"name contains {newer!r}")
    await s.send(
        "user_updated (older name, occurred 30 s earlier) delivered last",
        s.user_event(EventType.USER_UPDATED, user, at=-30, family_name=older),
    )
    found = await s.hold("newer state kept", user, _named(newer), f"name contains {newer!r}")
    return f"after the older update: {_seen(found)}"


async def _update_after_delete(s: Script) -> str:

    user = s.user("late-update")
    await s.send("user_created", s.user_event(EventType.USER_CREATED, user, at=-60))
    await s.expect("created", user, _active, "user active", owner=LIFECYCLE)
    await s.send("user_deleted", s.deleted_event(user, at=0))
    await s.expect("deleted", user, _gone, "user inactive or removed", owner=LIFECYCLE)
    await s.send(
        "late user_updated active:true (occurred before the delete)",
        s.user_event(EventType.USER_UPDATED, user, at=-30, active=True),
        refusal_ok=True,
    )
    found = await s.hold("still deleted", user, _gone, "user inactive or removed")
    return f"after the late update: {_seen(found)}"


async def _delete_before_create(s: Script) -> str:

    control = s.user("delete-control")
    await s.send("control user_created", s.user_event(EventType.USER_CREATED, control, at=-60))
    await s.expect("control created", control, _active, "user active", owner=LIFECYCLE)
    await s.send("control user_deleted", s.deleted_event(control, at=-50))
    await s.expect("control deleted", control, _gone, "user inactive", owner=LIFECYCLE)
    user = s.user("delete-first")
    await s.send("user_deleted (delivered first)", s.deleted_event(user, at=0), refusal_ok=True)
    await s.send(
        "user_created (occurred earlier, delivered second)",
        s.user_event(EventType.USER_CREATED, user, at=-30),
        refusal_ok=True,
    )
    found = await s.hold("not active", user, _gone, "no active user")
    return f"after both deliveries: {_seen(found)}"


async def _sequential_control(s: Script, label: str) -> None:
    """The same user_created twice in a row, then under a new event id: unless that gives one
    record, concurrency cannot be judged (bad-data reports the sequential defect)."""

    control = s.user(label)
    event = s.user_event(EventType.USER_CREATED, control)
    for what, sent in (
        ("", event),
        (" again", event),
        (" with a new event id", s.user_event(EventType.USER_CREATED, control)),
    ):
        await s.send(f"control user_created{what}", sent)
    await s.expect("control visible", control, _active, "user active", owner=LIFECYCLE)
    try:
        await s.count_once([control])
    except ScenarioOver as over:
        if over.status is Status.FAIL:
            raise ScenarioOver(
                Status.SKIP,
                f"not judged: one after the other, duplicates already give "
                f"several records ({over.observed}); bad-data reports that",
            ) from None
        raise


async def _concurrent_duplicates(s: Script) -> str:

    same = s.user("concurrent-same-id")
    event = s.user_event(EventType.USER_CREATED, same)
    copies = [event] * s.options.concurrency
    answers = await _released_together(s, f"{len(copies)} identical user_created", copies)
    other = s.user("concurrent-two-ids")
    pair = [s.user_event(EventType.USER_CREATED, other) for _ in range(2)]
    answers += await _released_together(s, "two user_created with different event ids", pair)
    bad = [answer for answer in answers if not (isinstance(answer, int) and answer < 500)]
    if bad:
        raise ScenarioOver(Status.FAIL, f"answers {_tally(answers)}; {_RETRIED}")
    # The answers stand on their own (observed whatever the records show next).
    s.answered = f"{len(answers)} concurrent deliveries answered {_tally(answers)}"
    await _sequential_control(s, "concurrent-control")
    await s.expect("first user visible", same, _active, "user active")
    await s.expect("second user visible", other, _active, "user active")
    await s.hold("first user unchanged", same, _active, "user active")
    counted = await s.count_once([same, other])
    return f"answers {_tally(answers)}; records: {counted}"


async def _dropped_and_redelivered(s: Script) -> str:

    await _sequential_control(s, "dropped-control")
    user = s.user("dropped")
    event = s.user_event(EventType.USER_CREATED, user)
    body, msg_id = encode_body(event), str(event["id"])
    await _drop_after_sending(s, _request_bytes(s, msg_id, body))
    s.note(
        "user_created, connection dropped before the answer",
        "the request sent, its answer never read",
        f"connection cut {DROP_AFTER_S * 1000:.0f} ms after the request was written",
    )
    await asyncio.sleep(s.options.settle_s)  # Scalekit's retry comes later, not at once
    label = "the same delivery again (same webhook-id)"
    outcome = await s.sender.post(label, body, s.sender.headers(msg_id, body), event_id=msg_id)
    if not outcome.accepted:
        s.note(label, "2xx", outcome.summary(), Status.FAIL)
        raise ScenarioOver(Status.FAIL, f"the redelivery got {outcome.summary()}")
    s.note(label, "2xx", outcome.summary())
    await s.expect("one effect: the user exists", user, _active, "user active")
    counted = await s.count_once([user])
    return f"redelivery {outcome.summary()}; records: {counted}"


async def _rehire(s: Script) -> str:

    old = s.user("rehire-old")
    # Three moments, as in a real directory: hired, left, re-hired. Equal timestamps would
    # let a receiver that ignores events not newer than the last one drop the delete.
    first = s.user_event(EventType.USER_CREATED, old, at=-60)
    await s.send("user_created (first employment)", first)
    await s.expect("created", old, _active, "user active", owner=LIFECYCLE)
    await s.send("user_deleted", s.deleted_event(old, at=-30))
    await s.expect("deleted", old, _gone, "user inactive or removed", owner=LIFECYCLE)
    new = s.user("rehire-new", email=old.email)
    label = "user_created for a new directory user with the same email"
    outcome = await s.send(label, s.user_event(EventType.USER_CREATED, new), refusal_ok=True)
    if outcome.rejected:
        if s.options.rehire_refused_by_design:
            raise ScenarioOver(
                Status.WARN,
                f"refused with {outcome.summary()}; options.rehire_refused_by_design says "
                "this is deliberate",
            )
        raise ScenarioOver(
            Status.FAIL, f"refused with {outcome.summary()}; {_RETRIED}, and it never succeeds"
        )
    found = await s.expect("re-hired user active", new, _active, "the new user active")
    return f"re-hired: {_seen(found)}"


def _a_role(ctx: CheckContext) -> str:
    roles = ctx.config.roles
    mapped = sorted(set(roles.map.values())) if roles is not None else []
    return mapped[0] if mapped else "member"


async def _group_rename(s: Script) -> str:

    ctx, role = s.ctx, _a_role(s.ctx)
    group_id, name = ctx.identities.group_id("ds-rename"), ctx.identities.group_name("ds-rename")
    directory_id = ctx.config.scalekit.directory_id or f"dir_{ctx.run_id}"
    org = s.sender.target.organization_id
    ctx.ledger.created(
        "group",
        group_id,
        channel="events",
        check_id=ctx.info.id,
        display_name=name,
        organization_id=org,
        directory_id=directory_id,
    )

    def group(display_name: str) -> dict[str, Any]:
        return group_data(
            id=group_id, directory_id=directory_id, display_name=display_name, organization_id=org
        )

    created_group = await s.sender.send_event(
        "group_created", s.event(EventType.GROUP_CREATED, group(name))
    )
    if created_group.never_sent or created_group.rejected:
        ctx.ledger.never_created("group", group_id, channel="events", check_id=ctx.info.id)
    s.judge("group_created", created_group)
    user = s.user("rename")
    created = s.user_event(EventType.USER_CREATED, user, groups=[(group_id, name)], roles=[role])
    await s.send(f"user_created in the group, role {role}", created)
    await s.expect("role granted", user, _holds(role), f"role {role}", owner="group-roles")
    renamed = f"{name}-renamed"
    await s.send(
        "group_updated (new display name)", s.event(EventType.GROUP_UPDATED, group(renamed))
    )
    found = await s.hold("role kept", user, _holds(role), f"role {role}")
    return f"after the rename: {_seen(found)}"


async def _second_organization(s: Script) -> str:

    test_org = _test_organization_id(s.ctx)
    first = s.user("tenant-first")
    await s.send("user_created", s.user_event(EventType.USER_CREATED, first))
    await s.expect("created", first, _active, "user active", owner=LIFECYCLE)
    second = s.user("tenant-second", email=first.email, organization_id=test_org)
    await s.send(
        "user_created with the same email in the test organisation",
        s.user_event(EventType.USER_CREATED, second, org=test_org),
    )
    found = await s.expect("second user active", second, _active, "user active")
    await s.expect("first user unchanged", first, _active, "user active")
    return f"in the test organisation: {_seen(found)}"


async def _directory_disabled(s: Script) -> str:

    test_org = _test_organization_id(s.ctx)
    section = s.ctx.config.test_organization
    directory_id = (section.directory_id if section else None) or f"dir_{s.ctx.run_id}"
    user = s.user("directory-disabled", organization_id=test_org)
    await s.send(
        "user_created in the test organisation",
        s.user_event(EventType.USER_CREATED, user, org=test_org),
    )
    await s.expect("created", user, _active, "user active", owner=LIFECYCLE)
    try:
        disabled = directory_data(id=directory_id, organization_id=test_org, enabled=False)
        await s.send(
            "organization.directory_disabled",
            s.event(EventType.DIRECTORY_DISABLED, disabled, org=test_org),
        )
        found = await s.expect("directory's user deactivated", user, _gone, "user inactive")
    finally:
        enabled = directory_data(id=directory_id, organization_id=test_org, enabled=True)
        await s.sender.send_event(
            "organization.directory_enabled (restore)",
            s.event(EventType.DIRECTORY_ENABLED, enabled, org=test_org),
        )
    return f"after directory_disabled: {_seen(found)}"


def _test_organization_id(ctx: CheckContext) -> str:
    section = ctx.config.test_organization
    assert section is not None  # noqa: S101 - whole-organisation scenarios run only with one
    return section.organization_id


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("stale-update", STALE_UPDATE, "the newer state wins", _stale_update),
    Scenario(
        "update-after-delete",
        UPDATE_AFTER_DELETE,
        "the deleted user stays inactive",
        _update_after_delete,
    ),
    Scenario("delete-before-create", DELETE_BEFORE_CREATE, "no active user", _delete_before_create),
    Scenario(
        "concurrent-duplicates",
        CONCURRENT_DUPLICATES,
        "no 5xx, one user per directory user",
        _concurrent_duplicates,
    ),
    Scenario(
        "dropped-redelivery", DROPPED_REDELIVERY, "exactly one effect", _dropped_and_redelivered
    ),
    Scenario("rehire", REHIRE, "the new directory user becomes active", _rehire),
    Scenario("group-rename", GROUP_RENAME, "mapped roles unchanged", _group_rename),
    Scenario(
        "second-organization",
        SECOND_ORGANIZATION,
        "both users active, each in its own tenant",
        _second_organization,
        whole_org=True,
    ),
    Scenario(
        "directory-disabled",
        DIRECTORY_DISABLED,
        "the directory's users lose access",
        _directory_disabled,
        whole_org=True,
    ),
)


# ---------------------------------------------------------------------------- raw deliveries


def _request_bytes(s: Script, msg_id: str, body: bytes) -> bytes:
    """One signed POST of ``body`` to the webhook as HTTP/1.1 bytes (fresh signature)."""

    target = Target.of(s.sender.url)
    headers = {"content-type": "application/json", **s.sender.headers(msg_id, body)}
    head = f"POST {target.path} HTTP/1.1\r\nhost: {target.host_header}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += f"content-length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


async def _connect(s: Script) -> Any:
    """A raw connection to the webhook (the signed-delivery safety rules apply)."""

    refuse_plain_http_signing(s.ctx.config, s.sender.url)
    target = Target.of(s.sender.url)
    context = ssl_context(s.ctx.tls) if target.scheme == "https" else None
    try:
        return await Connection.connect(target, context)
    except OSError as exc:
        raise ScenarioOver(Status.ERROR, f"could not connect to the webhook: {exc}") from None


async def _released_together(
    s: Script, label: str, events: Sequence[dict[str, Any]]
) -> list[int | str]:
    """Open one connection per delivery, then send them all at once (the barrier): each
    answer's status, or why there was none."""

    requests = [_request_bytes(s, str(e["id"]), encode_body(e)) for e in events]
    connections = await asyncio.gather(*(_connect(s) for _ in requests))

    async def deliver(connection: Any, data: bytes) -> int | str:
        try:
            async with asyncio.timeout(s.ctx.config.webhook.timeout_s):
                status, _ = await connection.request(data)
            return int(status)
        except (HttpError, OSError, TimeoutError) as exc:
            return f"no answer ({exc or type(exc).__name__})"
        finally:
            connection.close()

    answers = list(await asyncio.gather(*map(deliver, connections, requests)))
    ok = all(isinstance(a, int) and a < 500 for a in answers)
    s.note(
        label,
        "no 5xx, every delivery answered",
        _tally(answers),
        Status.PASS if ok else Status.FAIL,
    )
    return answers


async def _drop_after_sending(s: Script, data: bytes) -> None:

    connection = await _connect(s)
    try:
        connection.writer.write(data)
        await connection.writer.drain()
        await asyncio.sleep(DROP_AFTER_S)
    finally:
        connection.close()


def _tally(answers: Sequence[int | str]) -> str:
    counts = Counter(str(answer) for answer in answers)
    return ", ".join(f"{answer} ×{n}" for answer, n in sorted(counts.items()))


# ---------------------------------------------------------------------------- the burst


BURST = Scenario(
    "burst", BURST_APPLIED, "every update applied within burst_budget_s", lambda s: _burst(s)
)


async def _burst(s: Script) -> str:
    """One ``user_updated`` per test user, all released at once: a resync's shape, and no
    ordering question (each user gets one change), so only the backlog is measured."""

    users = [s.user(f"burst-{n}") for n in range(s.options.burst_size)]
    created = await asyncio.gather(
        *(
            s.sender.send_event("user_created", s.user_event(EventType.USER_CREATED, u, at=-60))
            for u in users
        )
    )
    _judge_all(s, f"{len(users)} user_created", created, "all accepted")
    await _all_visible(s, users)
    plan = [(user, [f"{user.family_name}-burst"]) for user in users]
    started = s.ctx.clock.monotonic()
    answers = await asyncio.gather(
        *(
            s.sender.send_event(
                "user_updated", s.user_event(EventType.USER_UPDATED, u, family_name=names[0])
            )
            for u, names in plan
        )
    )
    acked = s.ctx.clock.monotonic() - started
    _judge_all(
        s,
        f"{len(plan)} user_updated released together",
        answers,
        f"acknowledged after {acked:.2f} s",
    )
    return await _await_burst(s, plan, started, acked)


def _judge_all(s: Script, label: str, outcomes: Sequence[Outcome], summary: str) -> None:
    """Every delivery of a batch got 2xx, or the batch ends the scenario (ERROR when the
    first bad one got no answer at all, else FAIL)."""
    bad = [outcome for outcome in outcomes if not outcome.accepted]
    if not bad:
        s.note(label, "all 2xx", summary)
        return
    status = Status.ERROR if bad[0].status is None else Status.FAIL
    observed = f"{len(bad)} of {len(outcomes)} not accepted, e.g. {bad[0].summary()}"
    s.note(label, "all 2xx", observed, status)
    raise ScenarioOver(status, observed)


async def _all_visible(s: Script, users: Sequence[TestIdentity]) -> None:
    """Every burst user exists before the burst (else the burst is not judged)."""

    async def states() -> list[AppUser | None]:
        return list(await asyncio.gather(*(s.view.find(user) for user in users)))

    outcome = await wait_until(
        states,
        lambda found: all(_active(user) for user in found),
        budget_s=s.options.step_timeout_s,
        clock=s.ctx.clock,
        retry_on=(ProbeError,),
        errors_in_a_row=3,
    )
    seen = sum(_active(user) for user in outcome.value or [])
    observed = f"{seen} of {len(users)} active after {outcome.elapsed_s:.2f} s"
    if not outcome.satisfied:
        s.note("burst users created", "every user active", observed, Status.SKIP)
        raise ScenarioOver(Status.SKIP, f"not judged: {observed} (see user-lifecycle)")
    s.note("burst users created", "every user active", observed)


async def _await_burst(
    s: Script, plan: Sequence[tuple[TestIdentity, list[str]]], started: float, acked: float
) -> str:

    async def states() -> list[AppUser | None]:
        return list(await asyncio.gather(*(s.view.find(user) for user, _ in plan)))

    def all_applied(found: list[AppUser | None]) -> bool:
        return all(_named(names[-1])(user) for user, (_, names) in zip(found, plan, strict=True))

    # Past the budget the wait goes on a while (the verdict is FAIL by then): the report says
    # how long the backlog really was, and the next check does not inherit it.
    outcome = await wait_until(
        states,
        all_applied,
        budget_s=s.options.burst_budget_s * BACKLOG_WATCH,
        clock=s.ctx.clock,
        started_at=started,
        retry_on=(ProbeError,),
        errors_in_a_row=3,
    )
    if outcome.error is not None and not outcome.satisfied:
        raise outcome.error
    applied = sum(
        _named(names[-1])(user) for user, (_, names) in zip(outcome.value or [], plan, strict=True)
    )
    elapsed = outcome.elapsed_s if outcome.satisfied else None
    return _judge_burst(
        s,
        acked,
        elapsed,
        f"only {applied} of {len(plan)} users show their last "
        f"update after {outcome.elapsed_s:.2f} s",
    )


def _judge_burst(s: Script, acked: float, applied_s: float | None, short: str) -> str:
    """PASS when every update showed within the budget; the figures go to the metrics."""
    budget = s.options.burst_budget_s
    s.ctx.findings.metrics["burst"] = {
        "updates": s.options.burst_size,
        "acknowledged_s": round(acked, 3),
        "applied_s": None if applied_s is None else round(applied_s, 3),
        "budget_s": budget,
    }
    observed = (
        f"{s.options.burst_size} updates acknowledged after {acked:.2f} s; "
        + (short if applied_s is None else f"all applied after {applied_s:.2f} s")
        + f" (budget {budget:g} s)"
    )
    expected = f"every update applied within {budget:g} s"
    if applied_s is None or applied_s > budget:
        s.note("all updates applied", expected, observed, Status.FAIL)
        raise ScenarioOver(Status.FAIL, observed)
    s.steps.append(
        TimelineStep("burst: all updates applied", expected, observed, Status.PASS, applied_s)
    )
    return observed


# ---------------------------------------------------------------------------- the check


@dataclass(frozen=True, slots=True)
class Played:
    scenario: Scenario
    status: Status
    observed: str
    steps: list[TimelineStep]
    answered: str = ""


async def _play(
    ctx: CheckContext, sender: Sender, view: AppView, options: Options, scenario: Scenario
) -> Played:
    script = Script(ctx, sender, view, options, scenario)
    try:
        observed = await scenario.play(script)
        status = Status.PASS
    except ScenarioOver as over:
        status, observed = over.status, over.observed
    except ProbeError as exc:
        status, observed = Status.ERROR, f"the probe failed: {exc.message}"
    return Played(scenario, status, observed, script.steps, script.answered)


def _record(ctx: CheckContext, played: Played) -> None:
    scenario = played.scenario
    ctx.findings.timeline.extend(played.steps)
    timeline = [f"{step.status} {step.step}: {step.observed}" for step in played.steps]
    passing = played.status in (Status.PASS, Status.SKIP)
    evidence: dict[str, Any] = {"scenario": scenario.key, "timeline": timeline}
    if played.status is Status.SKIP:
        # A scenario not judged (a step it builds on did not happen) is a claim this check
        # cannot make: the check is SKIP, not PASS, unless another scenario failed. Whoever
        # owns the step that did not happen reports it; if that owner passed (the step works
        # alone but not inside this scenario), the run must not read READY on the strength
        # of what was never observed.
        evidence[ESSENTIAL_ASSERTION] = scenario.key
    ctx.findings.record(
        played.status,
        scenario.title,
        expected=scenario.expected,
        observed=played.observed,
        why="" if passing else scenario.entry.why,
        fix="" if passing else scenario.entry.fix,
        evidence=evidence,
        code=scenario.entry.code,
    )
    if played.answered:
        ctx.findings.passed(
            f"{scenario.title}: no 5xx",
            expected="every answer below 500",
            observed=played.answered,
            evidence={"answers_of": scenario.key},
            code=CONCURRENT_ANSWERS.code,
        )


def _skip_whole_org(ctx: CheckContext, scenario: Scenario) -> None:
    ctx.findings.skipped(
        f"{scenario.title}: not run",
        expected=scenario.expected,
        observed="no test_organization is configured",
        why="This scenario acts on a whole organisation (every user of its directory); it "
        "must never touch the real directory's users.",
        fix="Name an organisation that exists for testing only in test_organization "
        "(organization_id, directory_id) and link it to a test tenant in the app.",
        evidence={"scenario": scenario.key},
        code=scenario.entry.code,
    )


def _not_runnable(ctx: CheckContext) -> str | None:
    """Why the check cannot run (recorded as SKIP), or None."""
    if ctx.read_only:
        return "read-only mode: this check creates, changes and deletes test users"
    missing = missing_webhook_setting(ctx.config.webhook)
    if missing is not None:
        return f"no {missing} configured: every delivery must be correctly signed"
    view, why = app_view(ctx.probe, ctx.config.probe)
    if view is None:
        return f"{why}: what the app did with each delivery cannot be observed"
    return None


async def run(ctx: CheckContext) -> None:

    reason = _not_runnable(ctx)
    if reason is not None:
        ctx.findings.skipped(
            "Delivery semantics not tested",
            observed=reason,
            fix="Run without --read-only with webhook and probe sections configured.",
            code=NOT_TESTED.code,
        )
        return
    options = Options.of(ctx)
    view, _ = app_view(ctx.probe, ctx.config.probe)
    assert view is not None  # noqa: S101 - _not_runnable checked it
    with_org = ctx.config.test_organization is not None
    timeout = max(ctx.config.webhook.timeout_s, 1.0)
    parts = CheckParts(ctx)
    sender_cm = webhook_sender(
        parts.senders,
        parts.event_target(),
        ctx.findings,
        timeout_s=timeout,
        code=PLACEHOLDER_ORG.code,
    )
    async with sender_cm as sender:

        async def play(scenario: Scenario) -> Played:
            return await _play(ctx, sender, view, options, scenario)

        async def whole_org_in_turn() -> list[Played]:
            # One after the other: directory_disabled deactivates every user of the test
            # organisation, the second organisation's user included.
            whole_org = [item for item in SCENARIOS if item.whole_org] if with_org else []
            return [await play(item) for item in whole_org]

        # Scenarios on separate test users run side by side, and beside them those acting
        # on the test organisation: they change only that organisation, which no scenario
        # on the configured one (nor any other check) uses. The burst has the app alone, so
        # its backlog is its own and no other check's steps queue behind it.
        independent = [item for item in SCENARIOS if not item.whole_org]
        apart, in_turn = await asyncio.gather(
            asyncio.gather(*map(play, independent)), whole_org_in_turn()
        )
        played = [*apart, *in_turn]
        async with ctx.app_alone():
            played.append(await play(BURST))
    by_key = {item.scenario.key: item for item in played}
    for scenario in (*SCENARIOS, BURST):
        if scenario.key in by_key:
            _record(ctx, by_key[scenario.key])
        else:
            _skip_whole_org(ctx, scenario)


async def cleanup(ctx: CheckContext) -> None:

    # What could not be removed stays in the ledger (unremovable) for `scim-readiness
    # cleanup`; the end-of-run sweep reports what is left, once for every check.
    parts = CheckParts(ctx)
    await remove_test_users(ctx.ledger, ctx.info.id, parts.event_target(), parts.senders)
    await _remove_test_groups(ctx)


async def _remove_test_groups(ctx: CheckContext) -> list[str]:

    entries = [
        entry
        for entry in ctx.ledger.outstanding(ctx.run_id)
        if entry.check_id == ctx.info.id
        and entry.kind == "group"
        and entry.channel == "events"
        and ctx.identities.proves(entry)
    ]
    if not entries or missing_webhook_setting(ctx.config.webhook) is not None:
        return [entry.object_id for entry in entries]
    failed = []
    parts = CheckParts(ctx)
    sender_cm = webhook_sender(
        parts.senders,
        parts.event_target(),
        ctx.findings,
        timeout_s=ctx.config.webhook.timeout_s,
        code=PLACEHOLDER_ORG.code,
    )
    async with sender_cm as sender:
        for entry in entries:
            data = group_deleted_data(
                id=entry.object_id,
                directory_id=str(entry.details.get("directory_id") or f"dir_{ctx.run_id}"),
                display_name=str(entry.details.get("display_name")),
                organization_id=sender.target.organization_id,
            )
            outcome = await sender.send_event(
                "cleanup group_deleted", sender.event(EventType.GROUP_DELETED, data)
            )
            if outcome.accepted:
                ctx.ledger.removed("group", entry.object_id, channel="events", check_id=ctx.info.id)
            else:
                reason = f"group_deleted answered {outcome.summary()}"
                ctx.ledger.unremovable(
                    "group",
                    entry.object_id,
                    channel="events",
                    check_id=ctx.info.id,
                    reason=reason,
                )
                failed.append(f"{entry.object_id}: {reason}")
    return failed
