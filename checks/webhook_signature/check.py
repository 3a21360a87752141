"""The body of `webhook-signature`: see the package's docstring for what it checks."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from scim_readiness.api import (
    FindingRecorder,
    ProbeError,
    Status,
    mark_essential,
)
from scim_readiness.events import EventType, directory_data, encode_body, sign
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
)

from . import Options

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.clients.probe import AppUser
    from scim_readiness.plugin.identities import TestIdentity
    from scim_readiness.webhooks.sender import Outcome, Sender
    from scim_readiness.webhooks.traces import AppView

_TOLERANCE_OFFSET_S = 6 * 60
_TRACES = "the rejected deliveries looked up in the app"

Expect = Literal["reject", "accept", "either"]
Build = Callable[["Sender", dict[str, Any]], tuple[bytes, dict[str, str]]]


@dataclass(slots=True)
class Case:
    """One delivery: what it is, what the app must do with it, and what it got."""

    key: str
    name: str  # "a timestamp 6 minutes old"
    expect: Expect
    build: Build
    identity: TestIdentity | None = None
    event: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome | None = None
    why: str = ""
    fix: str = ""


# ---------------------------------------------------------------------------- deliveries


def _signed(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    return body, sender.headers(event["id"], body)


def _unsigned(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return encode_body(event), {}


def _other_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _wrong_secret(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    return body, sender.headers(event["id"], body, secret=_other_secret())


def _tampered(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    original = encode_body(event)
    headers = sender.headers(event["id"], original)
    changed = json.loads(original)
    # What an attacker on the path would do: keep the signature, escalate the payload.
    changed["data"]["roles"] = [{"role_name": "admin"}]
    changed["data"]["title"] = "tampered after signing"
    return encode_body(changed), headers


def _stale(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    return body, sender.headers(event["id"], body, timestamp=sender.now() - _TOLERANCE_OFFSET_S)


def _future(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    return body, sender.headers(event["id"], body, timestamp=sender.now() + _TOLERANCE_OFFSET_S)


def _no_prefix(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    now = sender.now()
    valid = sign(sender.secret, event["id"], now, body)
    return body, sender.headers(
        event["id"], body, timestamp=now, signature=valid.removeprefix("v1,")
    )


def _bad_base64(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    return body, sender.headers(event["id"], body, signature="v1,@@not*base64@@")


def _rotation(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = encode_body(event)
    now = sender.now()
    both = (
        f"{sign(_other_secret(), event['id'], now, body)} "
        f"{sign(sender.secret, event['id'], now, body)}"
    )
    return body, sender.headers(event["id"], body, timestamp=now, signature=both)


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def _reformatted(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    # Same JSON value, other bytes: indented, keys in reverse order, trailing newline.
    body = (json.dumps(_reordered(event), indent=2, ensure_ascii=False) + "\n").encode()
    return body, sender.headers(event["id"], body)


def _family(name: str) -> Build:
    def build(sender: Sender, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = encode_body(event)
        return body, sender.headers(event["id"], body, families=(name,))

    return build


_FORGED_FIX = (
    "Verify every request with the SDK (verify_webhook_payload) or a Standard Webhooks "
    "library on the raw body before doing anything else, and answer 401 when it fails."
)
_MALFORMED_WHY = (
    "A malformed signature header must fail verification cleanly, not crash the handler or "
    "be skipped."
)

#: Every delivery after the control, in the order sent; each run works on copies.
_CASES = (
    Case(
        "unsigned",
        "no signature headers",
        "reject",
        _unsigned,
        why="Without verification anyone who finds the URL can create, change or "
        "deprovision users.",
        fix=_FORGED_FIX,
    ),
    Case(
        "wrong-secret",
        "a signature made with the wrong secret",
        "reject",
        _wrong_secret,
        why="A signature is only proof if it is checked against this endpoint's secret.",
        fix=_FORGED_FIX + " Check the secret is the one shown for this endpoint.",
    ),
    Case(
        "tampered",
        "a body changed after signing",
        "reject",
        _tampered,
        why="An attacker who can alter a captured delivery (here: granting admin) "
        "must not get it applied.",
        fix="Compute the signature over the exact raw bytes received and compare it "
        "with a constant-time comparison.",
    ),
    Case(
        "stale",
        "a timestamp 6 minutes old",
        "reject",
        _stale,
        why="Without the 5-minute tolerance, a captured delivery can be replayed later "
        "(e.g. re-activating a user who was just deprovisioned).",
        fix="Reject webhook-timestamp values more than 5 minutes from now (the SDK's "
        "verify_webhook_payload does this).",
    ),
    Case(
        "future",
        "a timestamp 6 minutes in the future",
        "reject",
        _future,
        why="Future timestamps let a captured delivery stay replayable for longer.",
        fix="Reject webhook-timestamp values more than 5 minutes ahead of now.",
    ),
    Case(
        "no-prefix",
        "a signature without the v1, prefix",
        "reject",
        _no_prefix,
        why=_MALFORMED_WHY,
        fix="Treat any header that does not parse as 'v1,<base64>' as a failed "
        "verification (401), and catch parse errors as verification errors.",
    ),
    Case(
        "bad-base64",
        "a signature that is not base64",
        "reject",
        _bad_base64,
        why=_MALFORMED_WHY,
        fix="Catch decoding errors during verification and answer 401.",
    ),
    Case(
        "rotation",
        "the valid signature second of two (key rotation)",
        "accept",
        _rotation,
        why="During secret rotation Scalekit sends several space-separated signatures; "
        "a receiver must accept if any v1 signature matches.",
        fix="Split webhook-signature on spaces and accept when any v1 entry matches "
        "(the SDK does).",
    ),
    Case(
        "reformatted",
        "a valid signature over indented JSON with other key order",
        "accept",
        _reformatted,
        why="Scalekit does not promise compact JSON; verifying a re-serialisation of the "
        "parsed body instead of the raw bytes rejects genuine events.",
        fix="Verify the raw request bytes (request.body() before any JSON parsing), "
        "never json.dumps(json.loads(body)).",
    ),
    Case(
        "webhook-only",
        "only the webhook-* headers",
        "accept",
        _family("webhook"),
        why="Scalekit's SDKs and docs use webhook-id, webhook-timestamp and "
        "webhook-signature; an app that ignores them rejects genuine deliveries.",
        fix="Read webhook-id, webhook-timestamp and webhook-signature (svix-* may be "
        "accepted as well).",
    ),
    Case("svix-only", "only the svix-* headers", "either", _family("svix")),
)

#: The header-family deliveries, judged together (SIG007) rather than one by one.
_FAMILIES = ("webhook-only", "svix-only")


def _cases() -> list[Case]:
    """Fresh copies of the deliveries, to be filled in as they are sent (nothing mutable is
    shared with the table)."""
    return [dataclasses.replace(case, event={}) for case in _CASES]


# ---------------------------------------------------------------------------- the check


async def run(ctx: CheckContext) -> None:

    if _skipped_for_missing_setting(ctx):
        return
    parts = CheckParts(ctx)
    unopened = webhook_sender(
        parts.senders,
        parts.event_target(),
        ctx.findings,
        timeout_s=ctx.config.webhook.timeout_s,
        code="SIG002",
    )
    mutate = not ctx.read_only
    view, no_view = app_view(ctx.probe, ctx.config.probe) if mutate else (None, "read-only mode")
    gate = asyncio.Semaphore(Options.of(ctx).concurrency)
    async with unopened as sender:
        control = Case("valid", "a correct signature", "accept", _signed)
        await _deliver(sender, control, _event_for(ctx, sender, control, mutate=mutate))
        if not control.outcome or not control.outcome.accepted:
            _control_refused(ctx.findings, control)
            return
        ctx.findings.passed(
            "Correctly signed delivery accepted",
            expected="2xx",
            observed=control.outcome.summary(),
            evidence=control.outcome.evidence(),
            code="SIG003",
        )

        cases = _cases()

        async def bounded(case: Case) -> None:
            async with gate:
                await _deliver(sender, case, _event_for(ctx, sender, case, mutate=mutate))

        await asyncio.gather(*(bounded(case) for case in cases))
        _judge_statuses(ctx.findings, cases)
        record_possibly_applied(parts.test_users, cases)
        _judge_families(ctx.findings, {case.key: case for case in cases})

        replay = await _replay(ctx, sender, control, view)
        if view is None:
            _skip_app_state(ctx.findings, no_view, mutate=mutate)
            return
        await _judge_traces(ctx, view, sender, control, cases, replay)


def _skipped_for_missing_setting(ctx: CheckContext) -> bool:
    """SKIP (SIG001) when the webhook URL or secret is missing; True when it was."""
    missing = missing_webhook_setting(ctx.config.webhook)
    if missing == "webhook.url":
        ctx.findings.skipped(
            "Signature validation not tested: no webhook URL configured",
            fix="Set webhook.url in the config.",
            code="SIG001",
        )
        return True
    if missing == "webhook.secret":
        ctx.findings.skipped(
            "Signature validation not tested: no webhook secret configured",
            expected="webhook.secret set to the endpoint's signing secret (whsec_…)",
            observed="webhook.secret is empty",
            why="A valid signature is needed to tell forged deliveries from genuine ones; "
            "without it nothing can be concluded.",
            fix="Set webhook.secret (as ${SCALEKIT_WEBHOOK_SECRET}) in the config.",
            code="SIG001",
        )
        return True
    return False


def _event_for(ctx: CheckContext, sender: Sender, case: Case, *, mutate: bool) -> dict[str, Any]:
    """The event ``case`` carries: a user_created for its own test user (recorded in the
    ledger), or a harmless directory event when the run may not change data."""
    event_id = sender.next_event_id()
    organization_id = sender.target.organization_id
    if not mutate:
        return sender.event(_HARMLESS, _harmless_data(ctx, organization_id), event_id=event_id)
    case.identity = ctx.identities.user(f"sig-{case.key}")
    CheckParts(ctx).test_users.record(case.identity, expect_applied=case.expect != "reject")
    return sender.event(
        EventType.USER_CREATED,
        user_event_data(case.identity, organization_id),
        event_id=event_id,
    )


def _skip_app_state(findings: FindingRecorder, no_view: str, *, mutate: bool) -> None:
    """Without a view of the app, the replay's effect (SIG009) and the traces (SIG010) are
    SKIP; the traces are essential only when user events were sent."""
    findings.skipped(
        "Replay effect not checked",
        observed=no_view,
        why="Whether a replay was applied twice can only be seen in the app's state.",
        code="SIG009",
    )
    findings.skipped(
        "Traces of rejected deliveries not checked",
        observed=no_view
        + ("; harmless events were sent instead of user events" if not mutate else ""),
        why="A 4xx only says the app answered no; without reading the app's state it "
        "cannot be shown that nothing was written before the refusal.",
        fix=CONFIGURE_PROBE,
        code="SIG010",
    )
    if mutate:
        mark_essential(findings, _TRACES)


_HARMLESS = "organization.directory_enabled"


def _harmless_data(ctx: CheckContext, organization_id: str) -> dict[str, Any]:
    return directory_data(
        id=ctx.config.scalekit.directory_id or f"dir_{ctx.run_id}",
        organization_id=organization_id,
    )


async def _deliver(sender: Sender, case: Case, event: dict[str, Any]) -> None:
    case.event = event
    body, headers = case.build(sender, event)
    case.outcome = await sender.post(case.name, body, headers, event_id=str(event["id"]))


def _control_refused(findings: FindingRecorder, control: Case) -> None:
    """SIG003 not met: why the correctly signed delivery was not accepted."""
    outcome = control.outcome
    assert outcome is not None  # noqa: S101 - set by _deliver
    kw: dict[str, Any] = {
        "expected": "2xx for a delivery signed with webhook.secret",
        "observed": outcome.summary(),
        "evidence": outcome.evidence(),
        "code": "SIG003",
    }
    if outcome.status is None:
        findings.errored(
            "Webhook endpoint did not answer a correctly signed delivery",
            why="Nothing about signature handling can be concluded without an answer.",
            fix="Check that webhook.url is reachable from here (see webhook-endpoint).",
            **kw,
        )
        return
    if outcome.redirected:
        # One cause, reported once: webhook-endpoint FAILs on the redirect itself.
        findings.errored(
            redirect_blocker(outcome),
            why=f"{REDIRECT_WHY} Nothing about signature handling can be concluded.",
            fix="Fix the redirect first (see webhook-endpoint).",
            **kw,
        )
        return
    if outcome.server_error:
        # Not a refused signature: the handler failed on a genuine event.
        findings.failed(
            f"Correctly signed delivery answered with HTTP {outcome.status} (the app failed)",
            why="Scalekit retries a 5xx for hours and then drops the event: no user is "
            "provisioned; and the forged deliveries below could not be told apart from it.",
            fix="Find the error for this delivery's webhook-id in the app's logs and fix the "
            "handler; a refused signature would be a 401, not a 5xx.",
            **kw,
        )
        return
    findings.failed(
        "Correctly signed delivery refused",
        why="If the app refuses genuine deliveries, no user is ever provisioned; and the "
        "forged deliveries below could not be told apart from it.",
        fix="Check that webhook.secret is the secret Scalekit shows for this endpoint and "
        "that the app verifies the raw body of the webhook-* headers.",
        **kw,
    )


def _judge_statuses(findings: FindingRecorder, cases: list[Case]) -> None:
    rejected: list[str] = []
    for case in cases:
        outcome = case.outcome
        assert outcome is not None  # noqa: S101 - set by _deliver
        if case.expect == "reject" and outcome.rejected:
            rejected.append(f"{case.name}: HTTP {outcome.status}")
            continue
        verdict = _verdict_on_status(case, outcome)
        if verdict is not None:
            judgement, code = verdict
            judgement.record(findings, outcome, code=code)
    expected_rejections = [case for case in cases if case.expect == "reject"]
    if len(rejected) == len(expected_rejections):
        findings.passed(
            f"All {len(rejected)} forged or malformed deliveries rejected with 4xx",
            expected="4xx for each",
            observed="; ".join(rejected),
            code="SIG004",
        )
    accepted = [c.name for c in cases if c.expect == "accept" and c.outcome and c.outcome.accepted]
    if accepted:
        findings.passed(
            "Valid variants accepted: " + "; ".join(accepted),
            expected="2xx for each",
            code="SIG006",
        )


def _verdict_on_status(case: Case, outcome: Outcome) -> tuple[Judgement, str] | None:
    """What is wrong with the status the app answered ``case`` with, and the code of the
    assertion it breaks; None when nothing is, or when it is judged elsewhere (rejections
    are summed up, ``webhook-only`` is judged with the header families)."""
    if case.key in _FAMILIES:
        code = "SIG007"
    else:
        code = "SIG004" if case.expect == "reject" else "SIG006"
    if outcome.status is None:
        return Judgement(Status.ERROR, f"No answer to a delivery with {case.name}"), code
    if case.expect == "reject":
        return _verdict_on_forged(case, outcome)
    if case.expect == "accept":
        if outcome.accepted or case.key == "webhook-only":
            return None
        return Judgement(
            Status.FAIL,
            "Valid signature over re-formatted JSON rejected (the app verifies "
            "re-serialised JSON, not the raw body)"
            if case.key == "reformatted"
            else f"Refused a valid delivery with {case.name}",
            expected="2xx",
            why=case.why,
            fix=case.fix,
        ), code
    if outcome.server_error:
        return Judgement(
            # Scalekit always sends both header families: one family alone is never real.
            Status.WARN if case.key == "svix-only" else Status.FAIL,
            f"Delivery with {case.name} answered with HTTP {outcome.status}",
            expected="2xx or 4xx",
            why="A 5xx makes Scalekit retry and shows the handler crashing on input it "
            "should either verify or refuse.",
            fix="Refuse with 401 what cannot be verified.",
        ), code
    return None


def _verdict_on_forged(case: Case, outcome: Outcome) -> tuple[Judgement, str]:
    """A delivery that must be refused and was answered other than 4xx."""
    if outcome.server_error:
        # Not accepted, and never sent by Scalekit: hardening, not readiness.
        return Judgement(
            Status.WARN,
            f"Delivery with {case.name} answered with HTTP {outcome.status}, not 4xx (hardening)",
            expected="4xx (401)",
            why="It was not accepted, but the handler is crashing on hostile input, and a "
            "5xx invites the sender to try again. " + case.why,
            fix=case.fix,
        ), "SIG005"
    return Judgement(
        Status.FAIL,
        f"Accepted a delivery with {case.name}"
        if outcome.accepted
        else f"Delivery with {case.name} answered with HTTP {outcome.status}, not 4xx",
        expected="4xx (401), nothing applied",
        why=case.why,
        fix=case.fix,
    ), "SIG004"


def _judge_families(findings: FindingRecorder, cases: dict[str, Case]) -> None:
    webhook_only = cases["webhook-only"].outcome
    svix_only = cases["svix-only"].outcome
    assert webhook_only is not None and svix_only is not None  # noqa: S101 - delivered above
    honoured = [
        family
        for family, outcome in (("webhook-*", webhook_only), ("svix-*", svix_only))
        if outcome.accepted
    ]
    findings.metrics["header_families_honoured"] = honoured
    kw: dict[str, Any] = {
        "expected": "a valid signature in the webhook-* headers alone is accepted",
        "observed": f"webhook-* only: {webhook_only.summary()}; svix-* only: {svix_only.summary()}",
        "evidence": {"webhook_only": webhook_only.evidence(), "svix_only": svix_only.evidence()},
        "code": "SIG007",
    }
    if webhook_only.accepted:
        findings.passed(
            "Honours the webhook-* headers"
            + (" (and svix-*)" if svix_only.accepted else " (svix-* alone is not accepted)"),
            **kw,
        )
        return
    if svix_only.accepted:
        findings.failed(
            "Valid webhook-* signature ignored: the app honours only svix-* headers",
            why="Scalekit's SDKs and documentation use the webhook-* headers; an app that "
            "reads only svix-* depends on a second header family being sent and breaks "
            "when it is not.",
            fix="Read webhook-id, webhook-timestamp and webhook-signature (the SDK's "
            "verify_webhook_payload does); keep svix-* only as a fallback.",
            **kw,
        )
        return
    findings.failed(
        "Accepts neither header family on its own",
        why="Genuine deliveries carrying one header family would be refused.",
        fix="Read the webhook-* headers (svix-* may be accepted as well).",
        **kw,
    )


# ---------------------------------------------------------------------------- the replay


@dataclass(slots=True)
class Replay:
    outcome: Outcome
    before: AppUser | None = None  # the control's record just before the replay


async def _replay(
    ctx: CheckContext, sender: Sender, control: Case, view: AppView | None
) -> Replay | None:
    """Apply an update to the control user, then redeliver that update's webhook-id with a
    fresh timestamp and signature (what a late Scalekit retry looks like).

    Replaying the latest update keeps this about replays: an app that lacks event-id
    deduplication but upserts idempotently shows no second effect here (duplicate
    *creation* is bad-data's subject).
    """
    if control.identity is None:  # --read-only: the control was a harmless directory event
        event = control.event
    else:
        applied = await _applied_update(ctx.findings, sender, control.identity)
        if applied is None:
            return None
        event = applied
    before = None
    if view is not None and control.identity is not None:
        before = await _state_before_replay(ctx, view, control.identity)
    body = encode_body(event)
    outcome = await sender.post(
        "replay of an already-delivered webhook-id",
        body,
        sender.headers(event["id"], body),
        event_id=str(event["id"]),
    )
    _judge_replay_answer(ctx.findings, outcome)
    return Replay(outcome, before)


async def _applied_update(
    findings: FindingRecorder, sender: Sender, identity: TestIdentity
) -> dict[str, Any] | None:
    """Send a user_updated renaming ``identity``: the event, or None when the app refused it
    (SKIP: only an applied update can show whether a replay applies it again)."""
    renamed = f"{identity.family_name}-renamed"
    event = sender.event(
        EventType.USER_UPDATED,
        user_event_data(identity, sender.target.organization_id, family_name=renamed),
    )
    update = await sender.send_event("user_updated before the replay", event)
    if update.accepted:
        return event
    findings.skipped(
        "Replay not tested: the update to replay was refused",
        observed=update.summary(),
        why="Only an update the app applied can show whether a replay applies it "
        "again (a refused update is user-lifecycle's subject).",
        evidence=update.evidence(),
        code="SIG008",
    )
    return None


async def _state_before_replay(
    ctx: CheckContext, view: AppView, identity: TestIdentity
) -> AppUser | None:
    """The control user once the rename shows in the app; None when it never does in time
    or the probe fails (reported when the traces are read)."""
    expected_name = f"{identity.given_name} {identity.family_name}-renamed"
    try:
        return await view.wait_visible(
            identity,
            budget_s=Options.of(ctx).propagation_timeout_s,
            clock=ctx.clock,
            until=lambda user: user.name == expected_name,
        )
    except ProbeError:
        return None


def _judge_replay_answer(findings: FindingRecorder, outcome: Outcome) -> None:
    evidence = outcome.evidence()
    if outcome.server_error or outcome.status is None or outcome.redirected:
        record = findings.errored if outcome.status is None else findings.failed
        record(
            "Replay of an already-delivered event not answered with 2xx or 4xx",
            expected="2xx (already processed) or 4xx",
            observed=outcome.summary(),
            why="Scalekit delivers at least once: retries reuse the webhook-id with a fresh "
            "timestamp and signature. A 5xx on a duplicate starts a retry loop.",
            fix="Record processed webhook-ids and answer duplicates with 2xx without "
            "applying them again.",
            evidence=evidence,
            code="SIG008",
        )
        return
    findings.passed(
        "Replay of an already-delivered webhook-id answered "
        + ("2xx" if outcome.accepted else f"HTTP {outcome.status}"),
        expected="2xx (already processed) or 4xx",
        observed=outcome.summary(),
        evidence=evidence,
        code="SIG008",
    )


# ---------------------------------------------------------------------------- the app's state


async def _judge_traces(
    ctx: CheckContext,
    view: AppView,
    sender: Sender,
    control: Case,
    cases: list[Case],
    replay: Replay | None,
) -> None:
    assert control.identity is not None  # noqa: S101 - only read-only runs lack it
    budget = Options.of(ctx).propagation_timeout_s
    rejected = [(c, c.identity) for c in cases if c.expect == "reject" and c.identity]
    records, sentinel = CheckParts(ctx).test_users, ctx.identities.user("sig-sentinel")
    try:
        sent, seen = await send_sentinel(
            records, sender, view, sentinel, clock=ctx.clock, budget_s=budget
        )
        # The control and every rejected delivery's user in two round trips, not one or two
        # each: the sentinel being visible, all were handled before these look-ups.
        found: list[AppUser | None] = [None]
        if seen is not None:
            found = await view.find_all([control.identity, *(i for _, i in rejected)])
        control_seen = found[0]
        if seen is None or control_seen is None:
            ctx.findings.skipped(
                "Traces of rejected deliveries not checked",
                observed=f"genuine test users did not appear through the probe within "
                f"{budget:g} s (control: {'seen' if control_seen else 'not seen'}; last "
                f"delivery: {sent.summary()})",
                why="Until accepted events are visible, the absence of rejected ones proves "
                "nothing. (Whether accepted events are applied is user-lifecycle's subject.)",
                fix="Check the probe configuration, or raise the option "
                "propagation_timeout_s if the app processes events slowly.",
                code="SIG010",
            )
            mark_essential(ctx.findings, _TRACES)
            return
    except ProbeError as exc:
        record_probe_failure(ctx.findings, exc, code="SIG010")
        return
    traces = _traces_of_rejected(ctx, rejected, found[1:])
    if traces:
        ctx.findings.failed(
            f"{len(traces)} refused or forged deliveries left a trace in the app",
            expected="no record for any user carried by a delivery that must be rejected",
            observed="; ".join(traces),
            why="Whatever the status code said, forged data reached the app's database.",
            fix="Verify the signature before parsing or writing anything, and do the write "
            "in the same transaction that can still be rolled back.",
            code="SIG010",
        )
    else:
        ctx.findings.passed(
            f"No trace of the {len(rejected)} rejected deliveries in the app",
            expected="no record for any of their test users",
            observed=f"looked up {len(rejected)} test users by directory id and email: none found",
            code="SIG010",
        )
    # The control as the app shows it once the sentinel is: after the replay, handled before.
    _judge_replay_effect(ctx.findings, replay, control_seen)


def _traces_of_rejected(
    ctx: CheckContext,
    rejected: list[tuple[Case, TestIdentity]],
    found: list[AppUser | None],
) -> list[str]:
    """One line for each delivery that must be rejected whose test user the app holds
    (``found``, in the order of ``rejected``). Users seen absent leave the ledger."""
    traces: list[str] = []
    for (case, identity), user in zip(rejected, found, strict=True):
        assert case.outcome is not None  # noqa: S101 - delivered above
        if user is None:
            CheckParts(ctx).test_users.absent(identity)
        else:
            traces.append(f"{case.name} (HTTP {case.outcome.status}) → app user {brief(user)}")
    return traces


def _judge_replay_effect(
    findings: FindingRecorder, replay: Replay | None, after: AppUser | None
) -> None:
    if replay is None:
        return  # the update to replay was refused; already reported
    before = replay.before
    if before is None:
        findings.skipped(
            "Replay effect not checked",
            observed="the update before the replay never became visible through the probe",
            why="Without the state before the replay there is nothing to compare with.",
            code="SIG009",
        )
        return

    def state(user: AppUser | None) -> tuple[Any, ...] | None:
        if user is None:
            return None
        return (user.id, user.email, user.name, user.active, tuple(sorted(user.roles)))

    if state(before) == state(after):
        findings.passed(
            "Replay had no visible second effect",
            observed=f"before and after the replay: {describe(before)}",
            code="SIG009",
        )
        return
    findings.failed(
        "Replay of an already-delivered event changed the app's record",
        expected=f"unchanged: {describe(before)}",
        observed=f"after the replay: {describe(after) if after else 'record gone'}",
        why="A late retry applied twice can roll back later changes (re-activating a "
        "deprovisioned user) or duplicate data.",
        fix="Record processed webhook-ids and answer duplicates with 2xx without applying "
        "them again; make every handler an idempotent upsert.",
        code="SIG009",
    )


async def cleanup(ctx: CheckContext) -> None:

    parts = CheckParts(ctx)
    await remove_test_users(ctx.ledger, ctx.info.id, parts.event_target(), parts.senders)
