"""The body of `bad-data`: see the package's docstring for what it checks."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from scim_readiness.api import (
    FindingRecorder,
    ProbeError,
    Status,
    skipped_essential,
)
from scim_readiness.clients.answers import (
    MAX_ANSWER_BYTES,
    describe_http_error,
    excerpt,
    request_capped,
)
from scim_readiness.events import directory_data, encode_body
from scim_readiness.parts import CheckParts
from scim_readiness.webhooks import CONFIGURE_PROBE
from scim_readiness.webhooks.probing import (
    Judgement,
    missing_webhook_setting,
    record_possibly_applied,
    send_sentinel,
    webhook_sender,
)
from scim_readiness.webhooks.sender import REDIRECT_WHY, redirect_blocker, remove_test_users
from scim_readiness.webhooks.test_users import user_event_data
from scim_readiness.webhooks.traces import (
    app_view,
    brief,
    describe,
    record_probe_failure,
    side_by_side,
)

from . import _ACTIONABLE, _UPSERT, Options

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.webhooks.sender import Outcome, Sender
    from scim_readiness.webhooks.traces import AppView, RecordCount

_ONE_MIB = 1024 * 1024
_NESTING = 20_000
_RECORDS = "the app's records after the deliveries"
# Rules for inputs Scalekit never sends: only a holder of the signing secret can craft them.
_CRAFTED_ONLY: frozenset[str] = frozenset({"size", "depth"})

Rule = Literal["reject", "ignore", "size", "depth"]

#: The assertion each rule of the invalid deliveries stands for.
_RULE_CODES: Mapping[Rule, str] = {
    "reject": "BAD008",
    "size": "BAD009",
    "depth": "BAD009",
    "ignore": "BAD010",
}


@dataclass(slots=True)
class Invalid:
    """One invalid or hostile delivery and the rule its answer is judged by."""

    key: str
    name: str
    rule: Rule
    identity: TestIdentity | None = None
    body: bytes = b""
    outcome: Outcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Run:
    """State of one run of the check: the sender, identities and what came back."""

    def __init__(self, ctx: CheckContext, sender: Sender, organization_id: str) -> None:
        self.ctx = ctx
        self.sender = sender
        self.org = organization_id
        self.test_users = CheckParts(ctx).test_users
        self.identities: list[TestIdentity] = []

    def event_id(self) -> str:
        return self.sender.next_event_id()

    def identity(self, label: str, *, expect_applied: bool = True) -> TestIdentity:
        identity = self.ctx.identities.user(f"bad-{label}")
        self.test_users.record(identity, expect_applied=expect_applied)
        self.identities.append(identity)
        return identity

    def claimant(self, label: str, email: str) -> TestIdentity:
        """Another directory user (another IdP account) claiming ``email``; in the ledger as
        not applied until the app accepts it."""
        claimant = dataclasses.replace(self.ctx.identities.user(f"bad-{label}"), email=email)
        self.test_users.record(claimant, expect_applied=False)
        self.identities.append(claimant)
        return claimant

    def user_event(
        self,
        identity: TestIdentity,
        *,
        event_type: str = "organization.directory.user_created",
        event_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        return self.sender.event(
            event_type,
            user_event_data(identity, self.org, **fields),
            event_id=event_id or self.event_id(),
        )

    async def post(self, label: str, body: bytes, msg_id: str) -> Outcome:
        return await self.sender.post(
            label, body, self.sender.headers(msg_id, body), event_id=msg_id
        )


@dataclass(slots=True)
class _Scenarios:
    """What every scenario sent and got back, judged once all are done."""

    twice: Pair
    reissued: Pair
    conflict: Conflict
    variant: Conflict
    invalid: list[Invalid]


async def run(ctx: CheckContext) -> None:

    missing = missing_webhook_setting(ctx.config.webhook)
    if missing is not None:
        ctx.findings.skipped(
            f"Duplicate and invalid data not tested: no {missing} configured",
            why="Every delivery must be correctly signed so the app judges the data, not "
            "the signature.",
            fix=f"Set {missing} in the config.",
            code="BAD001",
        )
        return
    parts = CheckParts(ctx)
    unopened = webhook_sender(
        parts.senders,
        parts.event_target(),
        ctx.findings,
        timeout_s=max(ctx.config.webhook.timeout_s, 1.0),
        code="BAD002",
    )
    async with unopened as sender:
        state = _Run(ctx, sender, sender.target.organization_id)
        # The four scenarios are independent: a slow app costs their longest, not their sum.
        sent = _Scenarios(
            *await asyncio.gather(
                _same_event_twice(state),
                _same_user_two_events(state),
                _email_conflict(state),
                _case_variant_conflict(state),
                _invalid_payloads(state),
            )
        )
        if _redirected(ctx.findings, sent):
            return
        _judge_answers(ctx.findings, sent)
        await _still_healthy(state)
        view, no_view = app_view(ctx.probe, ctx.config.probe)
        if view is None:
            skipped_essential(
                ctx.findings,
                _RECORDS,
                f"Records in the app not checked: {no_view}",
                why="Status codes alone cannot show duplicates, merged accounts or partial "
                "records; only the app's state can.",
                fix=CONFIGURE_PROBE,
                code="BAD012",
            )
            return
        await _judge_records(state, view, sent)
        await _judge_case_variant_records(ctx.findings, view, sent.variant)


def _redirected(findings: FindingRecorder, sent: _Scenarios) -> bool:
    """ERROR when a genuine delivery was redirected; True when one was."""
    genuine = (sent.twice.first, sent.reissued.first, sent.conflict.first_outcome)
    redirected = next((o for o in genuine if o.redirected), None)
    if redirected is None:
        return False

    # One cause, reported once: webhook-endpoint FAILs on the redirect itself; a
    # judgement of each payload's 3xx would only repeat it with the wrong fixes.
    findings.errored(
        redirect_blocker(redirected),
        expected="2xx for a correctly signed, well-formed user_created",
        why=f"{REDIRECT_WHY} How the app handles bad data cannot be judged.",
        fix="Fix the redirect first (see webhook-endpoint).",
        evidence=redirected.evidence(),
        code="BAD003",
    )
    return True


def _judge_answers(findings: FindingRecorder, sent: _Scenarios) -> None:
    """Every status the app answered with, in a fixed order so the report reads the same on
    every run."""
    _judge_pair(findings, sent.twice)
    _judge_pair(findings, sent.reissued)
    conflict, variant = sent.conflict, sent.variant
    _judge_second_claim(
        findings,
        conflict.second_outcome,
        _SAME_EMAIL,
        observed=f"first user: {conflict.first_outcome.summary()}; "
        f"second: {conflict.second_outcome.summary()}",
        evidence={
            "first": conflict.first_outcome.evidence(),
            "second": conflict.second_outcome.evidence(),
        },
    )
    _judge_second_claim(
        findings,
        variant.second_outcome,
        _CASE_VARIANT,
        observed=f"{variant.first.email}: {variant.first_outcome.summary()}; "
        f"{variant.second.email}: {variant.second_outcome.summary()}",
    )
    for case in sent.invalid:
        _judge_invalid(findings, case)


# ---------------------------------------------------------------------------- duplicates


@dataclass(frozen=True, slots=True)
class _Repeat:
    """One way the same user arrives twice, and how its two deliveries are judged."""

    what: str
    second_may_be_4xx: bool  # the repeat may be refused as already processed
    fix: str
    answer_code: str
    count_code: str


_SAME_EVENT = _Repeat(
    "The same event delivered twice",
    second_may_be_4xx=True,
    fix="Record processed webhook-ids and answer a repeat with 2xx without applying "
    "it again; make user_created an upsert keyed on the directory user id.",
    answer_code="BAD004",
    count_code="BAD013",
)
_REISSUED = _Repeat(
    "Two user_created events for the same directory user",
    second_may_be_4xx=False,
    fix="Treat user_created as an upsert keyed on the directory user id (data.id): "
    "Scalekit re-sends it, e.g. after a resync.",
    answer_code="BAD005",
    count_code="BAD014",
)


@dataclass(slots=True)
class Pair:
    repeat: _Repeat
    identity: TestIdentity
    first: Outcome
    second: Outcome


async def _same_event_twice(state: _Run) -> Pair:
    identity = state.identity("same-event")
    event = state.user_event(identity)
    first = await state.sender.send_event("user_created", event)
    second = await state.sender.send_event("the same user_created again (same id)", event)
    return Pair(_SAME_EVENT, identity, first, second)


async def _same_user_two_events(state: _Run) -> Pair:
    identity = state.identity("same-user")
    first = await state.sender.send_event("user_created", state.user_event(identity))
    second = await state.sender.send_event(
        "user_created again with a new event id", state.user_event(identity)
    )
    return Pair(_REISSUED, identity, first, second)


def _judge_pair(findings: FindingRecorder, pair: Pair) -> None:
    first, second, repeat = pair.first, pair.second, pair.repeat
    what = repeat.what
    observed = f"first: {first.summary()}; second: {second.summary()}"
    evidence = {"first": first.evidence(), "second": second.evidence()}
    if not first.accepted:
        findings.failed(
            f"{what}: the first delivery was refused",
            expected="2xx for a well-formed, correctly signed user_created",
            observed=observed,
            why="A genuine new user was not provisioned.",
            fix="Accept well-formed user_created events for the configured organisation.",
            evidence=evidence,
            code="BAD003",
        )
        return
    if second.accepted or (repeat.second_may_be_4xx and second.rejected):
        findings.passed(
            f"{what}: answered without error",
            expected="2xx" + (" (or 4xx) for the repeat" if repeat.second_may_be_4xx else " twice"),
            observed=observed,
            evidence=evidence,
            code=repeat.answer_code,
        )
        return
    findings.failed(
        f"{what}: the repeat was answered with "
        + (f"HTTP {second.status}" if second.status else "no answer"),
        expected="2xx" + (" or 4xx" if repeat.second_may_be_4xx else ""),
        observed=observed,
        why="Scalekit delivers at least once and re-sends user_created; "
        + (
            "a 5xx makes it retry the duplicate for hours."
            if second.server_error
            else "refusing a repeat leaves the directory and the app disagreeing."
        ),
        fix=repeat.fix,
        evidence=evidence,
        code=repeat.answer_code,
    )


# ---------------------------------------------------------------------------- conflicts


@dataclass(slots=True)
class Conflict:
    first: TestIdentity
    second: TestIdentity
    first_outcome: Outcome
    second_outcome: Outcome


def _case_variant(email: str) -> str:
    """The same mailbox written with every letter of its local part in the other case."""
    local, _, domain = email.rpartition("@")
    return f"{local.swapcase()}@{domain}"


async def _email_conflict(state: _Run) -> Conflict:
    first = state.identity("email-owner")
    second = state.claimant("email-claimant", first.email)
    return await _claim(
        state,
        first,
        second,
        "user_created for another directory user with the same email",
        title="claimant",
    )


async def _case_variant_conflict(state: _Run) -> Conflict:
    """A second directory user whose email differs from an existing one only in case: one
    mailbox (mail systems treat local parts case-insensitively in practice), so the app must
    refuse it or link it, never open a second account."""
    first = state.identity("case-owner")
    second = state.claimant("case-claimant", _case_variant(first.email))
    return await _claim(
        state,
        first,
        second,
        "user_created for another directory user with the email in other letter case",
        title="case variant",
    )


async def _claim(
    state: _Run, first: TestIdentity, second: TestIdentity, label: str, *, title: str
) -> Conflict:
    """Create ``first``, then ``second`` claiming its address (with ``title``, to tell a
    merge apart); a claimant the app accepted may have been applied."""
    first_outcome = await state.sender.send_event("user_created", state.user_event(first))
    second_outcome = await state.sender.send_event(label, state.user_event(second, title=title))
    if second_outcome.accepted:
        state.test_users.record(second, expect_applied=True)
    return Conflict(first, second, first_outcome, second_outcome)


@dataclass(frozen=True, slots=True)
class _ClaimWording:
    """How the answer to a second directory user claiming an existing address reads."""

    refused: str
    refused_expected: str
    crashed: str  # the title, before the status
    crashed_expected: str
    why: str
    fix: str
    code: str


_SAME_EMAIL = _ClaimWording(
    refused="Second directory user with an existing email refused",
    refused_expected="4xx naming the conflict, first user unchanged",
    crashed="Email conflict answered with ",
    crashed_expected="4xx naming the conflict",
    why="The conflict is a data problem a directory admin must fix; a 5xx hides it "
    "and makes Scalekit retry for hours.",
    fix="Detect the existing email before writing and answer 409 with a body that "
    "names both directory user ids.",
    code="BAD006",
)
_CASE_VARIANT = _ClaimWording(
    refused="Case variant of an existing email refused as the same address",
    refused_expected="4xx, or one account for both spellings",
    crashed="Case variant of an existing email answered with ",
    crashed_expected="4xx naming the conflict, or one account for both spellings",
    why="A 5xx makes Scalekit retry the delivery for hours; the conflict is a data "
    "problem a directory admin must see.",
    fix="Compare emails case-insensitively before writing and answer 409.",
    code="BAD007",
)


def _judge_second_claim(
    findings: FindingRecorder,
    second: Outcome,
    wording: _ClaimWording,
    *,
    observed: str,
    evidence: Mapping[str, Any] | None = None,
) -> None:
    """PASS when the claimant was refused, FAIL when the app crashed or did not answer; a
    2xx is judged with the probe (merged, overwritten, or kept apart?)."""
    if second.rejected:
        findings.passed(
            wording.refused,
            expected=wording.refused_expected,
            observed=observed,
            evidence=evidence,
            code=wording.code,
        )
    elif second.server_error or second.status is None:
        findings.failed(
            wording.crashed + (f"HTTP {second.status}" if second.status else "no answer"),
            expected=wording.crashed_expected,
            observed=observed,
            why=wording.why,
            fix=wording.fix,
            evidence=evidence,
            code=wording.code,
        )


async def _judge_case_variant_records(
    findings: FindingRecorder, view: AppView, variant: Conflict
) -> None:
    first, second = variant.first, variant.second
    if not (variant.first_outcome.accepted and variant.second_outcome.accepted):
        return  # refused (judged above), or the first user never arrived (judged elsewhere)
    try:
        async with side_by_side() as group:
            owner_found = group.create_task(view.find(first))
            claimant_found = group.create_task(view.user_by_id(second.directory_user_id))
            counting = group.create_task(
                view.count(directory_user_ids=[], emails=[first.email, second.email], limit=50_000)
            )
    except ProbeError:
        return  # the records judgement above already reported the probe's failure
    owner, claimant, counts = owner_found.result(), claimant_found.result(), counting.result()
    # Both spellings count as one address in the scan: their sum is every record of it.
    n = None if counts is None else sum(counts.by_email.values())
    separate = claimant is not None and (owner is None or claimant.id != owner.id)
    observed = (
        f"{n if n is not None else 'uncounted'} record(s) for the address; record for "
        f"{second.directory_user_id}: {describe(claimant) if claimant else 'none'}"
    )
    if separate or (n is not None and n > 1):
        findings.failed(
            "A case variant of an existing email became a second account",
            expected=f"one account for {first.email} and {second.email}",
            observed=observed,
            why="One mailbox, two accounts: password resets and invitations reach both, and "
            "deprovisioning one leaves the other active. Email uniqueness is case-sensitive.",
            fix="Enforce uniqueness on the lower-cased (casefolded) email, and refuse a "
            "second directory user for an existing address with 409.",
            code="BAD017",
        )
    elif n == 1 or claimant is not None:
        findings.passed(
            "Case variant of an existing email treated as the same address",
            expected="one account for both spellings",
            observed=observed,
            code="BAD017",
        )
    else:
        findings.skipped(
            "Case variant of an existing email: records not counted",
            observed=observed,
            fix="Configure probe list_users so every record of the address can be counted.",
            code="BAD017",
        )


# ---------------------------------------------------------------------------- invalid


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


Body = Callable[[_Run, "TestIdentity"], bytes]


def _half_json(state: _Run, who: TestIdentity) -> bytes:
    complete = encode_body(state.user_event(who))
    return complete[: len(complete) // 2]


def _without_data(state: _Run, who: TestIdentity) -> bytes:
    event = state.user_event(who)
    event.pop("data")
    return encode_body(event)


def _without_email(state: _Run, who: TestIdentity) -> bytes:
    event = state.user_event(who)
    event["data"].pop("email")
    return encode_body(event)


def _wrong_types(state: _Run, who: TestIdentity) -> bytes:
    return encode_body(state.user_event(who, active="yes"))


def _not_utf8(state: _Run, who: TestIdentity) -> bytes:
    body = encode_body(state.user_event(who))
    # The family name's first byte becomes 0xFF: no UTF-8 text contains it.
    marker = who.family_name.encode()
    return body.replace(marker, b"\xff" + marker[1:], 1)


def _huge(state: _Run, who: TestIdentity) -> bytes:
    return encode_body(state.user_event(who, raw_attributes={"padding": "x" * _ONE_MIB}))


def _deep(state: _Run, who: TestIdentity) -> bytes:
    shell = encode_body(state.user_event(who, custom_attributes={"nested": "@@NEST@@"}))
    return shell.replace(b'"@@NEST@@"', _nested(_NESTING).encode())


def _unknown_type(state: _Run, who: TestIdentity) -> bytes:
    return encode_body(state.user_event(who, event_type="organization.directory.user_teleported"))


@dataclass(frozen=True, slots=True)
class _InvalidKind:
    key: str
    name: str
    rule: Rule
    body: Body
    carries_user: bool = True  # False: nothing about a user is sent, so none is recorded


#: The invalid and hostile deliveries, in the order they are built.
_INVALID = (
    _InvalidKind("invalid-json", "invalid JSON", "reject", _half_json),
    _InvalidKind("no-data", "an event without data", "reject", _without_data, carries_user=False),
    _InvalidKind("no-email", "a user without email", "reject", _without_email),
    _InvalidKind("wrong-types", 'wrong types (active: "yes")', "reject", _wrong_types),
    _InvalidKind("not-utf8", "non-UTF-8 bytes", "reject", _not_utf8),
    _InvalidKind("huge", "a 1 MiB body", "size", _huge),
    _InvalidKind("deep", f"JSON nested {_NESTING:,} levels deep", "depth", _deep),
    _InvalidKind("unknown-type", "an unknown event type", "ignore", _unknown_type),
)


def _invalid_cases(state: _Run) -> list[Invalid]:
    cases: list[Invalid] = []
    for kind in _INVALID:
        if kind.carries_user:
            who = state.identity(kind.key, expect_applied=False)
        else:
            who = state.ctx.identities.user(f"bad-{kind.key}")  # not in the ledger
        body = kind.body(state, who)
        cases.append(
            Invalid(kind.key, kind.name, kind.rule, who if kind.carries_user else None, body)
        )
    return cases


async def _invalid_payloads(state: _Run) -> list[Invalid]:

    cases = _invalid_cases(state)
    gate = asyncio.Semaphore(Options.of(state.ctx).concurrency)

    async def send(case: Invalid) -> None:
        async with gate:
            case.outcome = await state.post(case.name, case.body, state.event_id())

    await asyncio.gather(*(send(case) for case in cases))
    record_possibly_applied(state.test_users, cases)
    return cases


def _judge_invalid(findings: FindingRecorder, case: Invalid) -> None:
    outcome = case.outcome
    assert outcome is not None  # noqa: S101 - sent above
    verdict = _verdict_on_invalid(case, outcome)
    if verdict is not None:
        verdict.record(findings, outcome, code=_RULE_CODES[case.rule])


def _verdict_on_invalid(case: Invalid, outcome: Outcome) -> Judgement | None:
    """What the app's answer to one invalid delivery means under the case's rule; None for a
    2xx to data it should not apply, which is judged by its effect (the records) instead."""
    if outcome.server_error or outcome.status is None:
        return _verdict_on_failure(case, outcome)
    if case.rule == "ignore":
        if outcome.accepted:
            return Judgement(
                Status.PASS, "Unknown event type acknowledged with 2xx", expected="2xx (ignored)"
            )
        return Judgement(
            Status.WARN,
            f"Unknown event type refused with HTTP {outcome.status}",
            expected="2xx (ignored)",
            why="Scalekit adds event types; refusing them makes every new event retry "
            "until it is dropped, and can get the endpoint disabled.",
            fix="Answer unknown event types with 2xx and ignore them.",
        )
    what = case.name[0].upper() + case.name[1:]
    if outcome.rejected:
        return Judgement(Status.PASS, f"{what} refused with HTTP {outcome.status}", expected="4xx")
    if case.rule == "depth" and outcome.accepted:
        return Judgement(
            Status.PASS,
            f"{what} handled without error",
            expected="4xx, or 2xx with nothing broken stored",
        )
    if case.rule == "size" and outcome.accepted:
        return Judgement(
            Status.WARN,
            "A 1 MiB body was accepted",
            expected="413 (a body limit well above real events, which are a few KiB)",
            why="Without a body limit, anyone can make the endpoint buffer and parse "
            "arbitrarily large requests (signature checks run after reading the body).",
            fix="Cap webhook request bodies (e.g. 256 KiB) in the app or the proxy.",
        )
    if outcome.accepted:
        return None  # acknowledged at once, perhaps processed later: the records tell
    return Judgement(
        Status.FAIL,
        f"{what} answered with HTTP {outcome.status}",
        expected="4xx, or a 2xx that stores nothing",
        why="Webhook senders treat anything but 2xx and 4xx as a failed delivery and "
        "retry it; a redirect is never followed.",
        fix=_ACTIONABLE,
    )


def _verdict_on_failure(case: Invalid, outcome: Outcome) -> Judgement:
    """A 5xx, or no answer at all: hardening for what only a secret's holder can craft."""
    if outcome.server_error and case.rule in _CRAFTED_ONLY:
        return Judgement(
            Status.WARN,
            f"{case.name[0].upper() + case.name[1:]} answered with HTTP {outcome.status} "
            "(hardening)",
            expected="4xx",
            why="Scalekit never sends such a body: only a holder of the signing secret can, "
            "so this is hardening, not readiness. Still, the handler crashed where it should "
            "have refused.",
            fix="Enforce a body size and nesting limit that answers 413/400.",
        )
    if outcome.server_error:
        return Judgement(
            Status.FAIL,
            f"{case.name[0].upper() + case.name[1:]} answered with HTTP {outcome.status}",
            expected="4xx" + (" or a 2xx that ignores it" if case.rule == "ignore" else ""),
            why="The handler crashed on input it should refuse; Scalekit retries a 5xx with "
            "backoff for hours and the admin never sees an actionable error.",
            fix=_ACTIONABLE
            if case.rule != "ignore"
            else "Answer unknown event types with 2xx and ignore them: Scalekit adds new types.",
        )
    return Judgement(
        Status.WARN if case.rule in _CRAFTED_ONLY else Status.ERROR,
        f"No answer to {case.name}",
        expected="4xx",
        why="A dropped connection is retried by Scalekit like a 5xx.",
        fix="Enforce a body size and nesting limit that answers 413/400 instead of "
        "dropping the connection.",
    )


# ---------------------------------------------------------------------------- health


async def _still_healthy(state: _Run) -> None:
    ctx = state.ctx
    health_url = ctx.config.webhook.health_url
    if health_url:
        observed, healthy = await _health_url_answer(ctx, health_url)
    else:
        outcome = await state.sender.send_event(
            "harmless event after the barrage",
            state.sender.event(
                "organization.directory_enabled",
                directory_data(
                    id=ctx.config.scalekit.directory_id or f"dir_{ctx.run_id}",
                    organization_id=state.org,
                ),
                event_id=state.event_id(),
            ),
        )
        observed = f"signed directory_enabled to the webhook: {outcome.summary()}"
        healthy = outcome.accepted
    if healthy:
        ctx.findings.passed(
            "App still healthy after the invalid deliveries",
            expected="2xx",
            observed=observed,
            code="BAD011",
        )
    else:
        ctx.findings.failed(
            "App unhealthy after the invalid deliveries",
            expected="2xx",
            observed=observed,
            why="A few malformed requests took the endpoint down: every later event is "
            "retried and provisioning stops.",
            fix="Bound body size and parsing depth, catch every error per request, and "
            "never let one request poison shared state.",
            code="BAD011",
        )


async def _health_url_answer(ctx: CheckContext, health_url: str) -> tuple[str, bool]:
    """What a GET of the health URL got, and whether it was a 2xx."""

    try:
        async with ctx.http(timeout_s=5.0) as client:
            # Only the status matters; the body is quoted, so it is cut rather than refused.
            response = await request_capped(
                client, "GET", health_url, cap=MAX_ANSWER_BYTES, truncate=True
            )
    except httpx.HTTPError as exc:
        return f"GET {health_url}: {describe_http_error(exc)}", False
    observed = f"GET {health_url}: HTTP {response.status_code}: " + excerpt(response.content)
    return observed, response.is_success


# ---------------------------------------------------------------------------- records


@dataclass(slots=True)
class _Records:
    """What the probe showed of the app's records once a genuine test user appeared."""

    counts: RecordCount | None
    owner: AppUser | None  # the email conflict's first user
    claimant: AppUser | None  # its second user, by directory id
    by_email: AppUser | None  # whoever holds the conflicting email
    traces: dict[str, AppUser | None]  # the invalid deliveries' users, by case key
    absent: list[TestIdentity]  # test users seen not to be in the app


async def _judge_records(state: _Run, view: AppView, sent: _Scenarios) -> None:
    ctx = state.ctx
    budget = Options.of(ctx).propagation_timeout_s
    try:
        delivery, seen = await send_sentinel(
            state.test_users,
            state.sender,
            view,
            ctx.identities.user("bad-sentinel"),
            clock=ctx.clock,
            budget_s=budget,
        )
        if seen is None:
            skipped_essential(
                ctx.findings,
                _RECORDS,
                "Records in the app not checked",
                observed=f"a genuine test user did not appear through the probe within "
                f"{budget:g} s (its delivery: {delivery.summary()})",
                why="Until accepted events are visible, counting records proves nothing. "
                "(Whether accepted events are applied is user-lifecycle's subject.)",
                fix="Check the probe configuration, or raise the option propagation_timeout_s.",
                code="BAD012",
            )
            return
        records = await _read_records(state, view, sent)
    except ProbeError as exc:
        record_probe_failure(ctx.findings, exc, code="BAD012")
        return
    for identity in records.absent:
        state.test_users.absent(identity)
    _judge_duplicates(ctx.findings, sent.twice, records.counts)
    _judge_duplicates(ctx.findings, sent.reissued, records.counts)
    _judge_conflict(ctx.findings, sent.conflict, records)
    _judge_partial_records(ctx.findings, sent.invalid, records.traces)


async def _read_records(state: _Run, view: AppView, sent: _Scenarios) -> _Records:
    """Count every test user's records, look up both sides of the email conflict and the
    invalid deliveries' users. ProbeError propagates."""
    conflict = sent.conflict
    invalid = [(case.key, case.identity) for case in sent.invalid if case.identity is not None]
    # Independent reads, all at once: the list scan's pages and two rounds of look-ups, not
    # one round trip (or two) per user after another.
    async with side_by_side() as group:
        counting = group.create_task(
            view.count(
                directory_user_ids=[i.directory_user_id for i in state.identities],
                emails=[i.email for i in state.identities],
                limit=Options.of(state.ctx).max_scan_users,
            )
        )
        owner_found = group.create_task(view.find(conflict.first))
        claimant_found = group.create_task(view.user_by_id(conflict.second.directory_user_id))
        by_email_found = group.create_task(view.user_by_email(conflict.first.email))
        traces_found = group.create_task(view.find_all([identity for _, identity in invalid]))
    counts, claimant = counting.result(), claimant_found.result()
    traces = dict(zip((key for key, _ in invalid), traces_found.result(), strict=True))
    absent = [identity for key, identity in invalid if traces[key] is None]
    if (
        view.by_id
        and claimant is None
        and counts is not None
        and counts.by_email.get(conflict.first.email, 0) <= 1
    ):
        absent.append(conflict.second)
    return _Records(counts, owner_found.result(), claimant, by_email_found.result(), traces, absent)


def _judge_duplicates(findings: FindingRecorder, pair: Pair, counts: RecordCount | None) -> None:
    if not pair.first.accepted:
        return  # already FAIL: nothing was provisioned to count
    what, code = pair.repeat.what, pair.repeat.count_code
    if counts is None:
        findings.skipped(
            f"{what}: records not counted",
            observed="the probe cannot list users (probe list_users is not set)",
            why="Duplicates only show when every record of the app can be counted.",
            fix="Configure probe list_users.",
            code=code,
        )
        return
    n = counts.by_directory_id.get(pair.identity.directory_user_id, 0)
    observed = (
        f"{n} app record(s) with directory user id {pair.identity.directory_user_id} "
        f"(scanned {counts.scanned} users{'' if counts.complete else ', stopped at the limit'})"
    )
    if n == 1:
        findings.passed(
            f"{what}: one user in the app", expected="1 record", observed=observed, code=code
        )
    elif n > 1:
        findings.failed(
            f"{what}: {n} users in the app",
            expected="exactly 1 record",
            observed=observed,
            why="Duplicate accounts for one person: deprovisioning disables one and leaves "
            "the other active, and roles drift apart.",
            fix=_UPSERT,
            code=code,
        )
    elif counts.complete:
        findings.skipped(
            f"{what}: no record found to count",
            observed=observed,
            why="The user was acknowledged but is not listed by the probe; whether accepted "
            "events are applied is user-lifecycle's subject.",
            code=code,
        )
    else:
        findings.skipped(
            f"{what}: records not counted",
            observed=observed,
            fix="Raise the option max_scan_users.",
            code=code,
        )


def _judge_conflict(findings: FindingRecorder, conflict: Conflict, records: _Records) -> None:
    """Whether the first user of the email conflict kept its identity (BAD015)."""
    owner, claimant, by_email = records.owner, records.claimant, records.by_email
    if not conflict.first_outcome.accepted:
        findings.failed(
            "Email conflict not tested: the first user was refused",
            observed=conflict.first_outcome.summary(),
            why="A genuine new user was not provisioned.",
            fix="Accept well-formed user_created events for the configured organisation.",
            code="BAD003",
        )
        return
    if owner is None and claimant is None and by_email is None:
        findings.skipped(
            "Email conflict: neither user is visible in the app",
            observed=f"first delivery: {conflict.first_outcome.summary()}; second: "
            f"{conflict.second_outcome.summary()}",
            why="The first user was acknowledged but not applied; whether accepted events "
            "are applied is user-lifecycle's subject.",
            code="BAD015",
        )
        return
    first, second = conflict.first, conflict.second
    described = (
        f"record for {first.directory_user_id}: {describe(owner) if owner else 'none'}; "
        f"record for {second.directory_user_id}: {describe(claimant) if claimant else 'none'}; "
        f"by email: {describe(by_email) if by_email else 'none'}; "
        f"second delivery: {conflict.second_outcome.summary()}"
    )
    if _taken_over(conflict, owner, claimant, by_email):
        findings.failed(
            "Second directory user with the same email took over the first user's record",
            expected=f"the record of {first.directory_user_id} unchanged and not shared",
            observed=described,
            why="Account takeover: whoever controls the second directory account now signs "
            "in as (or changes) the first user.",
            fix="Key users on the directory user id; when an email already belongs to "
            "another directory user, refuse with 409 and record nothing.",
            code="BAD015",
        )
        return
    _judge_conflict_kept_apart(findings, conflict, records, described)


def _taken_over(
    conflict: Conflict, owner: AppUser | None, claimant: AppUser | None, by_email: AppUser | None
) -> bool:
    """The first user's record is gone, re-keyed, shared with or renamed by the second."""
    first, second = conflict.first, conflict.second
    return (
        owner is None
        or owner.directory_user_id not in (None, first.directory_user_id)
        or (claimant is not None and claimant.id == (owner.id if owner else None))
        or (by_email is not None and by_email.directory_user_id == second.directory_user_id)
        or (owner.name is not None and second.family_name in owner.name)
    )


def _judge_conflict_kept_apart(
    findings: FindingRecorder, conflict: Conflict, records: _Records, described: str
) -> None:
    """The first record is intact: was the second user stored beside it, sharing the email?"""
    first, second, counts = conflict.first, conflict.second, records.counts
    if records.claimant is not None:
        findings.warned(
            "Second directory user with the same email stored as a separate account",
            expected="4xx, or a conflict the admin can see",
            observed=described,
            why="Two accounts share an email: sign-in or invitations by email may reach the "
            "wrong one.",
            fix="Refuse the second user with 409 naming both directory ids, or flag the "
            "conflict for an admin.",
            code="BAD015",
        )
        return
    if counts is not None and counts.by_email.get(first.email, 0) > 1:
        findings.failed(
            f"{counts.by_email[first.email]} records share the email {first.email}",
            expected="one record",
            observed=described,
            why="Two accounts share an email: sign-in by email may reach the wrong one.",
            fix="Refuse the second user with 409 naming both directory ids.",
            code="BAD015",
        )
        return
    findings.passed(
        "First user kept its identity after the email conflict",
        expected=f"the record of {first.directory_user_id} unchanged, none for "
        f"{second.directory_user_id}",
        observed=described,
        code="BAD015",
    )


def _judge_partial_records(
    findings: FindingRecorder, invalid: list[Invalid], traces: dict[str, AppUser | None]
) -> None:
    left: list[str] = []
    for case in invalid:
        found = traces.get(case.key)
        if found is None or case.outcome is None:
            continue
        # A valid-but-huge or deeply nested event that was accepted may be stored whole;
        # anything else that left a record stored invalid or ignored data.
        if case.rule in ("size", "depth") and case.outcome.accepted:
            continue
        left.append(f"{case.name} (HTTP {case.outcome.status}) → app user {brief(found)}")
    looked = sum(1 for case in invalid if case.identity is not None)
    acknowledged = [
        case.name
        for case in invalid
        if case.rule == "reject" and case.outcome is not None and case.outcome.accepted
    ]
    if left:
        findings.failed(
            f"{len(left)} invalid deliveries left a record in the app",
            expected="no record for the users carried by invalid deliveries",
            observed="; ".join(left),
            why="Partial or invalid records (no email, a string for a boolean, an event type "
            "the app does not know) break sign-in, roles and later updates.",
            fix=_ACTIONABLE,
            code="BAD016",
        )
        return
    note = (
        f"; {len(acknowledged)} acknowledged with 2xx ({', '.join(acknowledged)}), judged "
        "by their effect: nothing stored"
        if acknowledged
        else ""
    )
    findings.passed(
        "No record left by the invalid deliveries",
        observed=f"looked up {looked} test users by directory id and email: none found" + note,
        code="BAD016",
    )


async def cleanup(ctx: CheckContext) -> None:

    parts = CheckParts(ctx)
    await remove_test_users(ctx.ledger, ctx.info.id, parts.event_target(), parts.senders)
