"""`bad-data`: duplicate and invalid data fail safely, with actionable errors (checklist
item 6).

Every delivery is correctly signed, so what is tested is the app's handling of the data,
not its signature check. Deliveries, in order:

- **the same event twice** (same ``webhook-id``): both answered 2xx (or the second 4xx), one
  user in the app;
- **two ``user_created`` with different event ids for the same directory user**: both 2xx,
  one user (``user_created`` is an upsert: Scalekit re-sends it);
- **two directory users with the same email**: the second is refused (4xx) and the first keeps
  its identity. FAIL when the first record was taken over or merged (an account-takeover
  risk); WARN when the second was stored as a separate account;
- **invalid payloads**: invalid JSON, no ``data``, no ``email``, wrong types
  (``active: "yes"``), non-UTF-8 bytes → 4xx, or a 2xx that stores nothing (judged by the
  effect, not the status: answering at once and processing in the background is Scalekit's
  own advice); a 1 MiB body → 4xx (WARN if accepted); deeply nested JSON → 4xx or a 2xx that
  stores nothing broken; an unknown event type → 2xx and ignored (WARN for 4xx: Scalekit
  would retry it). A record left by any of them is FAIL (a partial record);
- **after the barrage** the health URL (``webhook.health_url``), or the webhook itself with a
  harmless event, still answers 2xx.

Severity (README, "Severity policy"): a 5xx is FAIL for payloads Scalekit could plausibly
send (missing fields, wrong types, unknown types, a body its parser refuses) — the handler
crashed, and Scalekit retries it for hours. For inputs only a holder of the signing secret
could craft (a 1 MiB body, JSON nested 20,000 levels deep) a 5xx or a dropped connection is
WARN: hardening, not readiness.

Essential assertions (PASS needs every one observed; one that could not be is SKIP):
  * each delivery's answer (a status code, or none);
  * the app's records: a genuine test user seen through the probe, then duplicates counted
    and the invalid deliveries' users looked up;
  * the app still healthy after the barrage.

Findings quote the status and body excerpt the app returned, so an engineer sees whether
its errors are actionable. The check is SKIP with ``--read-only`` (it creates test users),
without ``webhook.url``/``webhook.secret``, and when the app's records cannot be observed
(no probe, or a genuine test user never appeared), whatever the status codes were.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from scim_readiness.api import CheckInfo, Need, ReadOnly, option, skipped_essential
from scim_readiness.plugin.options import EventOptions, PropagationOptions

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.webhooks.probing import Judgement
    from scim_readiness.webhooks.sender import Outcome, Sender
    from scim_readiness.webhooks.traces import AppView, RecordCount


class Options(EventOptions, PropagationOptions):
    concurrency: int = option(default=4, description="invalid deliveries sent at once", ge=1)
    max_scan_users: int = option(
        default=50_000, description="most app users read when looking for partial records", ge=1
    )


CHECK = CheckInfo(
    id="bad-data",
    title="Duplicate and invalid data fail safely",
    checklist_item=6,
    options=Options,
    needs=(Need.WEBHOOK,),
    mutates=True,
    sharing="shared",  # judges only its own bad-* test users
    read_only=ReadOnly.NONE,  # every delivery it judges carries a test user
    docs_url="https://docs.scalekit.com/reference/webhooks/overview",
    description="duplicate events and users, conflicting emails, invalid and hostile payloads: "
    "4xx (or 2xx-ignore), never 5xx, never a partial record, app stays healthy",
)

_ONE_MIB = 1024 * 1024
_NESTING = 20_000
_RECORDS = "the app's records after the deliveries"
# Rules for inputs Scalekit never sends: only a holder of the signing secret can craft them.
_CRAFTED_ONLY: frozenset[str] = frozenset({"size", "depth"})
_ACTIONABLE = (
    "Answer invalid payloads with 400 and a body naming the problem (which field, what was "
    "expected), validate the whole event before writing anything, and keep the handler from "
    "raising on any input."
)

Rule = Literal["reject", "ignore", "size", "depth"]


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
        self.identities: list[TestIdentity] = []

    def event_id(self) -> str:
        return self.sender.next_event_id()

    def identity(self, label: str, *, expect_applied: bool = True) -> TestIdentity:
        from scim_readiness.webhooks.sender import record_test_user

        identity = self.ctx.identities.user(f"bad-{label}")
        record_test_user(self.ctx, identity, expect_applied=expect_applied)
        self.identities.append(identity)
        return identity

    def user_event(
        self,
        identity: TestIdentity,
        *,
        event_type: str = "organization.directory.user_created",
        event_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        from scim_readiness.webhooks.sender import user_event_data

        return self.sender.event(
            event_type,
            user_event_data(identity, self.org, **fields),
            event_id=event_id or self.event_id(),
        )

    async def post(self, label: str, body: bytes, msg_id: str) -> Outcome:
        return await self.sender.post(
            label, body, self.sender.headers(msg_id, body), event_id=msg_id
        )


async def run(ctx: CheckContext) -> None:
    import asyncio

    from scim_readiness.webhooks.probing import missing_webhook_setting, webhook_sender

    missing = missing_webhook_setting(ctx)
    if missing is not None:
        ctx.findings.skipped(
            f"Duplicate and invalid data not tested: no {missing} configured",
            why="Every delivery must be correctly signed so the app judges the data, not "
            "the signature.",
            fix=f"Set {missing} in the config.",
        )
        return
    async with webhook_sender(ctx, timeout_s=max(ctx.config.webhook.timeout_s, 1.0)) as sender:
        state = _Run(ctx, sender, sender.target.organization_id)
        # The four scenarios are independent: a slow app costs their longest, not their sum.
        twice, reissued, conflict, variant, invalid = await asyncio.gather(
            _same_event_twice(state),
            _same_user_two_events(state),
            _email_conflict(state),
            _case_variant_conflict(state),
            _invalid_payloads(state),
        )
        genuine = (twice.first, reissued.first, conflict.first_outcome)
        redirected = next((o for o in genuine if o.redirected), None)
        if redirected is not None:
            from scim_readiness.webhooks.sender import REDIRECT_WHY, redirect_blocker

            # One cause, reported once: webhook-endpoint FAILs on the redirect itself; a
            # judgement of each payload's 3xx would only repeat it with the wrong fixes.
            ctx.findings.errored(
                redirect_blocker(redirected),
                expected="2xx for a correctly signed, well-formed user_created",
                why=f"{REDIRECT_WHY} How the app handles bad data cannot be judged.",
                fix="Fix the redirect first (see webhook-endpoint).",
                evidence=redirected.evidence(),
            )
            return
        # Judged in a fixed order, so the report reads the same on every run.
        _judge_pair(
            ctx,
            "The same event delivered twice",
            twice,
            second_may_be_4xx=True,
            fix="Record processed webhook-ids and answer a repeat with 2xx without applying "
            "it again; make user_created an upsert keyed on the directory user id.",
        )
        _judge_pair(
            ctx,
            "Two user_created events for the same directory user",
            reissued,
            second_may_be_4xx=False,
            fix="Treat user_created as an upsert keyed on the directory user id (data.id): "
            "Scalekit re-sends it, e.g. after a resync.",
        )
        _judge_conflict_answer(ctx, conflict)
        _judge_case_variant_answer(ctx, variant)
        for case in invalid:
            _judge_invalid(ctx, case)
        await _still_healthy(state)
        from scim_readiness.webhooks.traces import CONFIGURE_PROBE, app_view

        view, no_view = app_view(ctx)
        if view is None:
            skipped_essential(
                ctx.findings,
                _RECORDS,
                f"Records in the app not checked: {no_view}",
                why="Status codes alone cannot show duplicates, merged accounts or partial "
                "records; only the app's state can.",
                fix=CONFIGURE_PROBE,
            )
            return
        await _judge_records(state, view, twice, reissued, conflict, invalid)
        await _judge_case_variant_records(ctx, view, variant)


# ---------------------------------------------------------------------------- duplicates


@dataclass(slots=True)
class Pair:
    identity: TestIdentity
    first: Outcome
    second: Outcome


async def _same_event_twice(state: _Run) -> Pair:
    identity = state.identity("same-event")
    event = state.user_event(identity)
    first = await state.sender.send_event("user_created", event)
    second = await state.sender.send_event("the same user_created again (same id)", event)
    return Pair(identity, first, second)


async def _same_user_two_events(state: _Run) -> Pair:
    identity = state.identity("same-user")
    first = await state.sender.send_event("user_created", state.user_event(identity))
    second = await state.sender.send_event(
        "user_created again with a new event id", state.user_event(identity)
    )
    return Pair(identity, first, second)


def _judge_pair(
    ctx: CheckContext,
    what: str,
    pair: Pair,
    *,
    second_may_be_4xx: bool,
    fix: str,
) -> None:
    first, second = pair.first, pair.second
    observed = f"first: {first.summary()}; second: {second.summary()}"
    evidence = {"first": first.evidence(), "second": second.evidence()}
    if not first.accepted:
        ctx.findings.failed(
            f"{what}: the first delivery was refused",
            expected="2xx for a well-formed, correctly signed user_created",
            observed=observed,
            why="A genuine new user was not provisioned.",
            fix="Accept well-formed user_created events for the configured organisation.",
            evidence=evidence,
        )
        return
    acceptable = second.accepted or (second_may_be_4xx and second.rejected)
    if acceptable:
        ctx.findings.passed(
            f"{what}: answered without error",
            expected="2xx" + (" (or 4xx) for the repeat" if second_may_be_4xx else " twice"),
            observed=observed,
            evidence=evidence,
        )
        return
    ctx.findings.failed(
        f"{what}: the repeat was answered with "
        + (f"HTTP {second.status}" if second.status else "no answer"),
        expected="2xx" + (" or 4xx" if second_may_be_4xx else ""),
        observed=observed,
        why="Scalekit delivers at least once and re-sends user_created; "
        + (
            "a 5xx makes it retry the duplicate for hours."
            if second.server_error
            else "refusing a repeat leaves the directory and the app disagreeing."
        ),
        fix=fix,
        evidence=evidence,
    )


# ---------------------------------------------------------------------------- conflict


@dataclass(slots=True)
class Conflict:
    first: TestIdentity
    second: TestIdentity
    first_outcome: Outcome
    second_outcome: Outcome


async def _email_conflict(state: _Run) -> Conflict:
    first = state.identity("email-owner")
    # Another directory user (another IdP account) claiming the same email address.
    second = dataclasses.replace(state.ctx.identities.user("bad-email-claimant"), email=first.email)
    from scim_readiness.webhooks.sender import record_test_user

    record_test_user(state.ctx, second, expect_applied=False)
    state.identities.append(second)
    first_outcome = await state.sender.send_event("user_created", state.user_event(first))
    second_outcome = await state.sender.send_event(
        "user_created for another directory user with the same email",
        state.user_event(second, title="claimant"),
    )
    if second_outcome.accepted:
        record_test_user(state.ctx, second, expect_applied=True)
    return Conflict(first, second, first_outcome, second_outcome)


def _judge_conflict_answer(ctx: CheckContext, conflict: Conflict) -> None:
    first_outcome, second_outcome = conflict.first_outcome, conflict.second_outcome
    observed = f"first user: {first_outcome.summary()}; second: {second_outcome.summary()}"
    evidence = {"first": first_outcome.evidence(), "second": second_outcome.evidence()}
    if second_outcome.rejected:
        ctx.findings.passed(
            "Second directory user with an existing email refused",
            expected="4xx naming the conflict, first user unchanged",
            observed=observed,
            evidence=evidence,
        )
    elif second_outcome.server_error or second_outcome.status is None:
        ctx.findings.failed(
            "Email conflict answered with "
            + (f"HTTP {second_outcome.status}" if second_outcome.status else "no answer"),
            expected="4xx naming the conflict",
            observed=observed,
            why="The conflict is a data problem a directory admin must fix; a 5xx hides it "
            "and makes Scalekit retry for hours.",
            fix="Detect the existing email before writing and answer 409 with a body that "
            "names both directory user ids.",
            evidence=evidence,
        )
    # A 2xx is judged with the probe (merged, overwritten or kept apart?).


# ---------------------------------------------------------------- case variant of an email


def _case_variant(email: str) -> str:
    """The same mailbox written with every letter of its local part in the other case."""
    local, _, domain = email.rpartition("@")
    return f"{local.swapcase()}@{domain}"


async def _case_variant_conflict(state: _Run) -> Conflict:
    """A second directory user whose email differs from an existing one only in case: one
    mailbox (mail systems treat local parts case-insensitively in practice), so the app must
    refuse it or link it, never open a second account."""
    from scim_readiness.webhooks.sender import record_test_user

    first = state.identity("case-owner")
    claimant = state.ctx.identities.user("bad-case-claimant")
    second = dataclasses.replace(claimant, email=_case_variant(first.email))
    record_test_user(state.ctx, second, expect_applied=False)
    state.identities.append(second)
    first_outcome = await state.sender.send_event("user_created", state.user_event(first))
    second_outcome = await state.sender.send_event(
        "user_created for another directory user with the email in other letter case",
        state.user_event(second, title="case variant"),
    )
    if second_outcome.accepted:
        record_test_user(state.ctx, second, expect_applied=True)
    return Conflict(first, second, first_outcome, second_outcome)


def _judge_case_variant_answer(ctx: CheckContext, variant: Conflict) -> None:
    second = variant.second_outcome
    observed = f"{variant.first.email}: {variant.first_outcome.summary()}; "
    observed += f"{variant.second.email}: {second.summary()}"
    if second.rejected:
        ctx.findings.passed(
            "Case variant of an existing email refused as the same address",
            expected="4xx, or one account for both spellings",
            observed=observed,
        )
    elif second.server_error or second.status is None:
        ctx.findings.failed(
            "Case variant of an existing email answered with "
            + (f"HTTP {second.status}" if second.status else "no answer"),
            expected="4xx naming the conflict, or one account for both spellings",
            observed=observed,
            why="A 5xx makes Scalekit retry the delivery for hours; the conflict is a data "
            "problem a directory admin must see.",
            fix="Compare emails case-insensitively before writing and answer 409.",
        )
    # A 2xx is judged with the probe: one account, or two?


async def _judge_case_variant_records(ctx: CheckContext, view: AppView, variant: Conflict) -> None:
    from scim_readiness.errors import ProbeError
    from scim_readiness.webhooks.traces import describe

    first, second = variant.first, variant.second
    if not (variant.first_outcome.accepted and variant.second_outcome.accepted):
        return  # refused (judged above), or the first user never arrived (judged elsewhere)
    try:
        owner = await view.find(first)
        claimant = await view.user_by_id(second.directory_user_id)
        counts = await view.count(
            directory_user_ids=[], emails=[first.email, second.email], limit=50_000
        )
    except ProbeError:
        return  # the records judgement above already reported the probe's failure
    # Both spellings count as one address in the scan: their sum is every record of it.
    n = None if counts is None else sum(counts.by_email.values())
    separate = claimant is not None and (owner is None or claimant.id != owner.id)
    observed = (
        f"{n if n is not None else 'uncounted'} record(s) for the address; record for "
        f"{second.directory_user_id}: {describe(claimant) if claimant else 'none'}"
    )
    if separate or (n is not None and n > 1):
        ctx.findings.failed(
            "A case variant of an existing email became a second account",
            expected=f"one account for {first.email} and {second.email}",
            observed=observed,
            why="One mailbox, two accounts: password resets and invitations reach both, and "
            "deprovisioning one leaves the other active. Email uniqueness is case-sensitive.",
            fix="Enforce uniqueness on the lower-cased (casefolded) email, and refuse a "
            "second directory user for an existing address with 409.",
        )
    elif n == 1 or claimant is not None:
        ctx.findings.passed(
            "Case variant of an existing email treated as the same address",
            expected="one account for both spellings",
            observed=observed,
        )
    else:
        ctx.findings.skipped(
            "Case variant of an existing email: records not counted",
            observed=observed,
            fix="Configure probe list_users so every record of the address can be counted.",
        )


# ---------------------------------------------------------------------------- invalid


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def _invalid_payloads(state: _Run) -> list[Invalid]:
    import asyncio

    from scim_readiness.events import encode_body

    cases: list[Invalid] = []

    def add(key: str, name: str, rule: Rule, body: bytes, identity: TestIdentity | None) -> None:
        cases.append(Invalid(key, name, rule, identity, body))

    who = state.identity("invalid-json", expect_applied=False)
    complete = encode_body(state.user_event(who))
    add("invalid-json", "invalid JSON", "reject", complete[: len(complete) // 2], who)

    # Nothing about a user is sent, so nothing is recorded in the ledger for it.
    no_data = state.user_event(state.ctx.identities.user("bad-no-data"))
    no_data.pop("data")
    add("no-data", "an event without data", "reject", encode_body(no_data), None)

    who = state.identity("no-email", expect_applied=False)
    event = state.user_event(who)
    event["data"].pop("email")
    add("no-email", "a user without email", "reject", encode_body(event), who)

    who = state.identity("wrong-types", expect_applied=False)
    add(
        "wrong-types",
        'wrong types (active: "yes")',
        "reject",
        encode_body(state.user_event(who, active="yes")),
        who,
    )

    who = state.identity("not-utf8", expect_applied=False)
    body = encode_body(state.user_event(who))
    # The family name's first byte becomes 0xFF: no UTF-8 text contains it.
    marker = who.family_name.encode()
    add(
        "not-utf8",
        "non-UTF-8 bytes",
        "reject",
        body.replace(marker, b"\xff" + marker[1:], 1),
        who,
    )

    who = state.identity("huge", expect_applied=False)
    add(
        "huge",
        "a 1 MiB body",
        "size",
        encode_body(state.user_event(who, raw_attributes={"padding": "x" * _ONE_MIB})),
        who,
    )

    who = state.identity("deep", expect_applied=False)
    shell = encode_body(state.user_event(who, custom_attributes={"nested": "@@NEST@@"}))
    add(
        "deep",
        f"JSON nested {_NESTING:,} levels deep",
        "depth",
        shell.replace(b'"@@NEST@@"', _nested(_NESTING).encode()),
        who,
    )

    who = state.identity("unknown-type", expect_applied=False)
    add(
        "unknown-type",
        "an unknown event type",
        "ignore",
        encode_body(state.user_event(who, event_type="organization.directory.user_teleported")),
        who,
    )

    concurrency = Options.of(state.ctx).concurrency
    gate = asyncio.Semaphore(concurrency)

    async def send(case: Invalid) -> None:
        async with gate:
            case.outcome = await state.post(case.name, case.body, state.event_id())

    await asyncio.gather(*(send(case) for case in cases))
    from scim_readiness.webhooks.probing import record_possibly_applied

    record_possibly_applied(state.ctx, cases)
    return cases


def _judge_invalid(ctx: CheckContext, case: Invalid) -> None:
    outcome = case.outcome
    assert outcome is not None  # noqa: S101 - sent above
    verdict = _verdict_on_invalid(case, outcome)
    if verdict is not None:
        verdict.record(ctx, outcome)


def _verdict_on_invalid(case: Invalid, outcome: Outcome) -> Judgement | None:
    """What the app's answer to one invalid delivery means under the case's rule; None for a
    2xx to data it should not apply, which is judged by its effect (the records) instead."""
    from scim_readiness.api import Status
    from scim_readiness.webhooks.probing import Judgement

    what = case.name[0].upper() + case.name[1:]
    if outcome.server_error and case.rule in _CRAFTED_ONLY:
        return Judgement(
            Status.WARN,
            f"{what} answered with HTTP {outcome.status} (hardening)",
            expected="4xx",
            why="Scalekit never sends such a body: only a holder of the signing secret can, "
            "so this is hardening, not readiness. Still, the handler crashed where it should "
            "have refused.",
            fix="Enforce a body size and nesting limit that answers 413/400.",
        )
    if outcome.server_error:
        return Judgement(
            Status.FAIL,
            f"{what} answered with HTTP {outcome.status}",
            expected="4xx" + (" or a 2xx that ignores it" if case.rule == "ignore" else ""),
            why="The handler crashed on input it should refuse; Scalekit retries a 5xx with "
            "backoff for hours and the admin never sees an actionable error.",
            fix=_ACTIONABLE
            if case.rule != "ignore"
            else "Answer unknown event types with 2xx and ignore them: Scalekit adds new types.",
        )
    if outcome.status is None:
        return Judgement(
            Status.WARN if case.rule in _CRAFTED_ONLY else Status.ERROR,
            f"No answer to {case.name}",
            expected="4xx",
            why="A dropped connection is retried by Scalekit like a 5xx.",
            fix="Enforce a body size and nesting limit that answers 413/400 instead of "
            "dropping the connection.",
        )
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


# ---------------------------------------------------------------------------- health


async def _still_healthy(state: _Run) -> None:
    from scim_readiness.clients.answers import excerpt
    from scim_readiness.events import directory_data

    ctx = state.ctx
    health_url = ctx.config.webhook.health_url
    if health_url:
        import httpx

        from scim_readiness.clients.answers import MAX_ANSWER_BYTES, request_capped

        try:
            async with ctx.http(timeout_s=5.0) as client:
                # Only the status matters; the body is quoted, so it is cut rather than refused.
                response = await request_capped(
                    client, "GET", health_url, cap=MAX_ANSWER_BYTES, truncate=True
                )
            observed = f"GET {health_url}: HTTP {response.status_code}: " + excerpt(
                response.content
            )
            healthy = response.is_success
        except httpx.HTTPError as exc:
            from scim_readiness.webhooks.sender import describe_http_error

            observed = f"GET {health_url}: {describe_http_error(exc)}"
            healthy = False
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
        )


# ---------------------------------------------------------------------------- records


async def _judge_records(
    state: _Run,
    view: AppView,
    twice: Pair,
    reissued: Pair,
    conflict: Conflict,
    invalid: list[Invalid],
) -> None:
    from scim_readiness.api import ProbeError
    from scim_readiness.webhooks.probing import propagation_budget, record_absent, send_sentinel
    from scim_readiness.webhooks.traces import brief, record_probe_failure

    ctx = state.ctx
    budget = propagation_budget(ctx)
    limit = Options.of(ctx).max_scan_users
    try:
        sent, seen = await send_sentinel(ctx, state.sender, view, "bad-sentinel", budget_s=budget)
        if seen is None:
            skipped_essential(
                ctx.findings,
                _RECORDS,
                "Records in the app not checked",
                observed=f"a genuine test user did not appear through the probe within "
                f"{budget:g} s (its delivery: {sent.summary()})",
                why="Until accepted events are visible, counting records proves nothing. "
                "(Whether accepted events are applied is user-lifecycle's subject.)",
                fix="Check the probe configuration, or raise the option propagation_timeout_s.",
            )
            return
        counts = await view.count(
            directory_user_ids=[i.directory_user_id for i in state.identities],
            emails=[i.email for i in state.identities],
            limit=limit,
        )
        owner = await view.find(conflict.first)
        claimant = await view.user_by_id(conflict.second.directory_user_id)
        by_email = await view.user_by_email(conflict.first.email)
        traces = {
            case.key: await view.find(case.identity)
            for case in invalid
            if case.identity is not None
        }
        absent = [
            case.identity
            for case in invalid
            if case.identity is not None and traces.get(case.key) is None
        ]
        if (
            view.by_id
            and claimant is None
            and counts is not None
            and counts.by_email.get(conflict.first.email, 0) <= 1
        ):
            absent.append(conflict.second)
    except ProbeError as exc:
        record_probe_failure(ctx, exc)
        return
    for identity in absent:
        record_absent(ctx, identity)
    _judge_duplicates(ctx, "The same event delivered twice", twice, counts)
    _judge_duplicates(ctx, "Two user_created events for the same directory user", reissued, counts)
    _judge_conflict(ctx, conflict, owner, claimant, by_email, counts)
    _judge_partial_records(ctx, invalid, traces, brief)


def _judge_duplicates(ctx: CheckContext, what: str, pair: Pair, counts: RecordCount | None) -> None:
    if not pair.first.accepted:
        return  # already FAIL: nothing was provisioned to count
    if counts is None:
        ctx.findings.skipped(
            f"{what}: records not counted",
            observed="the probe cannot list users (probe list_users is not set)",
            why="Duplicates only show when every record of the app can be counted.",
            fix="Configure probe list_users.",
        )
        return
    n = counts.by_directory_id.get(pair.identity.directory_user_id, 0)
    observed = (
        f"{n} app record(s) with directory user id {pair.identity.directory_user_id} "
        f"(scanned {counts.scanned} users{'' if counts.complete else ', stopped at the limit'})"
    )
    if n == 1:
        ctx.findings.passed(f"{what}: one user in the app", expected="1 record", observed=observed)
    elif n > 1:
        ctx.findings.failed(
            f"{what}: {n} users in the app",
            expected="exactly 1 record",
            observed=observed,
            why="Duplicate accounts for one person: deprovisioning disables one and leaves "
            "the other active, and roles drift apart.",
            fix="Make user_created an upsert keyed on the directory user id (a unique index "
            "on it) and skip already-processed webhook-ids.",
        )
    elif counts.complete:
        ctx.findings.skipped(
            f"{what}: no record found to count",
            observed=observed,
            why="The user was acknowledged but is not listed by the probe; whether accepted "
            "events are applied is user-lifecycle's subject.",
        )
    else:
        ctx.findings.skipped(
            f"{what}: records not counted",
            observed=observed,
            fix="Raise the option max_scan_users.",
        )


def _judge_conflict(
    ctx: CheckContext,
    conflict: Conflict,
    owner: AppUser | None,
    claimant: AppUser | None,
    by_email: AppUser | None,
    counts: RecordCount | None,
) -> None:
    from scim_readiness.webhooks.traces import describe

    first, second = conflict.first, conflict.second
    if not conflict.first_outcome.accepted:
        ctx.findings.failed(
            "Email conflict not tested: the first user was refused",
            observed=conflict.first_outcome.summary(),
            why="A genuine new user was not provisioned.",
            fix="Accept well-formed user_created events for the configured organisation.",
        )
        return
    if owner is None and claimant is None and by_email is None:
        ctx.findings.skipped(
            "Email conflict: neither user is visible in the app",
            observed=f"first delivery: {conflict.first_outcome.summary()}; second: "
            f"{conflict.second_outcome.summary()}",
            why="The first user was acknowledged but not applied; whether accepted events "
            "are applied is user-lifecycle's subject.",
        )
        return
    described = (
        f"record for {first.directory_user_id}: {describe(owner) if owner else 'none'}; "
        f"record for {second.directory_user_id}: {describe(claimant) if claimant else 'none'}; "
        f"by email: {describe(by_email) if by_email else 'none'}; "
        f"second delivery: {conflict.second_outcome.summary()}"
    )
    taken_over = (
        owner is None
        or owner.directory_user_id not in (None, first.directory_user_id)
        or (claimant is not None and claimant.id == (owner.id if owner else None))
        or (by_email is not None and by_email.directory_user_id == second.directory_user_id)
        or (owner.name is not None and second.family_name in owner.name)
    )
    if taken_over:
        ctx.findings.failed(
            "Second directory user with the same email took over the first user's record",
            expected=f"the record of {first.directory_user_id} unchanged and not shared",
            observed=described,
            why="Account takeover: whoever controls the second directory account now signs "
            "in as (or changes) the first user.",
            fix="Key users on the directory user id; when an email already belongs to "
            "another directory user, refuse with 409 and record nothing.",
        )
        return
    if claimant is not None:
        ctx.findings.warned(
            "Second directory user with the same email stored as a separate account",
            expected="4xx, or a conflict the admin can see",
            observed=described,
            why="Two accounts share an email: sign-in or invitations by email may reach the "
            "wrong one.",
            fix="Refuse the second user with 409 naming both directory ids, or flag the "
            "conflict for an admin.",
        )
        return
    if counts is not None and counts.by_email.get(first.email, 0) > 1:
        ctx.findings.failed(
            f"{counts.by_email[first.email]} records share the email {first.email}",
            expected="one record",
            observed=described,
            why="Two accounts share an email: sign-in by email may reach the wrong one.",
            fix="Refuse the second user with 409 naming both directory ids.",
        )
        return
    ctx.findings.passed(
        "First user kept its identity after the email conflict",
        expected=f"the record of {first.directory_user_id} unchanged, none for "
        f"{second.directory_user_id}",
        observed=described,
    )


def _judge_partial_records(
    ctx: CheckContext,
    invalid: list[Invalid],
    traces: dict[str, AppUser | None],
    describe: Any,
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
        left.append(f"{case.name} (HTTP {case.outcome.status}) → app user {describe(found)}")
    looked = sum(1 for case in invalid if case.identity is not None)
    acknowledged = [
        case.name
        for case in invalid
        if case.rule == "reject" and case.outcome is not None and case.outcome.accepted
    ]
    if left:
        ctx.findings.failed(
            f"{len(left)} invalid deliveries left a record in the app",
            expected="no record for the users carried by invalid deliveries",
            observed="; ".join(left),
            why="Partial or invalid records (no email, a string for a boolean, an event type "
            "the app does not know) break sign-in, roles and later updates.",
            fix=_ACTIONABLE,
        )
    else:
        note = (
            f"; {len(acknowledged)} acknowledged with 2xx ({', '.join(acknowledged)}), judged "
            "by their effect: nothing stored"
            if acknowledged
            else ""
        )
        ctx.findings.passed(
            "No record left by the invalid deliveries",
            observed=f"looked up {looked} test users by directory id and email: none found" + note,
        )


async def cleanup(ctx: CheckContext) -> None:
    from scim_readiness.webhooks.sender import remove_test_users

    await remove_test_users(ctx)
