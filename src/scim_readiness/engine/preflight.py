"""The preflight: what most checks cannot be evaluated without, tried once before any of them.

Three prerequisites, tried concurrently and each bounded in time:

* ``webhook``: one correctly signed harmless event reaches the webhook and gets *an* HTTP
  answer (any status: judging it is the checks' work) over TLS this machine trusts. A refused
  connection, a DNS failure, an untrusted certificate or no answer in time fails it.
* ``probe``: the probe answers in its documented shape and, when it can list users, finds
  by its own lookup the first user it lists (a lookup route that says "no such user" for
  everyone fails it). Without a list, a lookup of an address nobody has must answer
  "no such user" rather than an error.
* ``scalekit``: the client-credentials exchange with the environment succeeds.

A check whose prerequisite failed is not run: the runner records it as ERROR "blocked by
<prerequisite>: <root cause>", so one cause is reported once, in the same words, instead
of each check rediscovering it (and its time-outs) as a FAIL with a fix for a defect nobody
observed. ``environment`` evaluates the token exchange itself and is never blocked by it.
A prerequisite that is not configured, or that no selected check needs, is not tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scim_readiness.errors import DeliveryRefused, ReadinessError
from scim_readiness.plugin.contract import CheckInfo, Need

if TYPE_CHECKING:
    from scim_readiness.clients.probe import Probe
    from scim_readiness.config import Config
    from scim_readiness.plugin.context import CheckContext, SharedClients

WEBHOOK = "webhook"
PROBE = "probe"
SCALEKIT = "scalekit"

#: How each prerequisite is named in a blocked check's finding.
TITLES: Mapping[str, str] = {
    WEBHOOK: "the webhook preflight",
    PROBE: "the probe preflight",
    SCALEKIT: "the Scalekit token preflight",
}

# A webhook that has not answered one harmless event in this long will not answer the checks'
# events either; each check would otherwise wait out its own time-outs (minutes in all).
WEBHOOK_PREFLIGHT_S = 8.0
PROBE_PREFLIGHT_S = 10.0

#: What each built-in check cannot be evaluated without. A third-party check's prerequisites
#: follow from its needs (webhook, probe, scalekit).
BUILTIN_PREREQUISITES: Mapping[str, tuple[str, ...]] = {
    # environment's own findings are about the token exchange: it reports that root cause.
    "environment": (),
    "webhook-endpoint": (WEBHOOK,),
    "webhook-signature": (WEBHOOK, PROBE),
    "user-lifecycle": (WEBHOOK, PROBE),
    "group-roles": (SCALEKIT, WEBHOOK, PROBE),
    "bad-data": (WEBHOOK, PROBE),
    "delivery-semantics": (WEBHOOK, PROBE),
    "data-model": (SCALEKIT, PROBE),
    "admin-portal": (SCALEKIT,),
}
_BY_NEED: Mapping[Need, str] = {Need.WEBHOOK: WEBHOOK, Need.PROBE: PROBE, Need.SCALEKIT: SCALEKIT}


def prerequisites_of(info: CheckInfo) -> tuple[str, ...]:
    """The prerequisites a check is blocked by when they fail."""
    known = BUILTIN_PREREQUISITES.get(info.id)
    if known is not None:
        return known
    return tuple(_BY_NEED[need] for need in info.needs if need in _BY_NEED)


@dataclass(frozen=True, slots=True)
class Failure:
    """A prerequisite that failed: its root cause in one line, and what to do about it."""

    prerequisite: str
    cause: str
    fix: str = ""

    @property
    def title(self) -> str:
        return f"blocked by {TITLES.get(self.prerequisite, self.prerequisite)}: {self.cause}"


def configured(config: Config, prerequisite: str) -> bool:
    """Whether the config has what trying ``prerequisite`` needs."""
    if prerequisite == WEBHOOK:
        secret = config.webhook.secret
        return bool(config.webhook.url) and secret is not None and bool(secret.get_secret_value())
    if prerequisite == PROBE:
        return config.probe is not None
    section = config.scalekit
    return bool(section.environment_url and section.client_id and section.client_secret)


async def run_preflight(
    wanted: Iterable[str],
    *,
    ctx: CheckContext,
    shared: SharedClients,
    probe: Probe | None,
    budget_s: float,
) -> dict[str, Failure]:
    """Try each wanted prerequisite at once; the failed ones by name. ``ctx`` is the
    preflight's own context (config, TLS, clock, test identities)."""
    tries = {
        WEBHOOK: lambda: webhook_answers(ctx, min(WEBHOOK_PREFLIGHT_S, budget_s)),
        PROBE: lambda: probe_answers(ctx, probe, min(PROBE_PREFLIGHT_S, budget_s)),
        SCALEKIT: lambda: scalekit_token(shared),
    }
    names = [name for name in dict.fromkeys(wanted) if name in tries]
    results = await asyncio.gather(*(tries[name]() for name in names))
    return {name: failure for name, failure in zip(names, results, strict=True) if failure}


async def webhook_answers(ctx: CheckContext, timeout_s: float) -> Failure | None:
    """One correctly signed harmless event; any HTTP answer passes."""
    from scim_readiness.events import EventType, directory_data
    from scim_readiness.parts import CheckParts

    webhook = ctx.config.webhook
    assert webhook.url and webhook.secret is not None  # noqa: S101 - configured() said so
    options = ctx.config.checks.for_check("webhook-endpoint").options
    event_type = str(options.get("harmless_event_type", EventType.DIRECTORY_ENABLED.value))
    parts = CheckParts(ctx)
    target = parts.event_target()
    try:
        unopened = parts.senders.sender(
            webhook.url,
            webhook.secret.get_secret_value(),
            target,
            timeout_s=min(webhook.timeout_s, timeout_s),
            fresh_connections=True,
        )
    except DeliveryRefused:
        return None  # nothing signed may be sent there; the checks say so themselves
    async with unopened as sender:
        data = directory_data(
            id=ctx.config.scalekit.directory_id or f"dir_{ctx.run_id}",
            organization_id=target.organization_id,
        )
        outcome = await sender.send_event("preflight", sender.event(event_type, data))
    if outcome.status is not None:
        return None
    return Failure(
        WEBHOOK,
        f"the webhook {shown_url(webhook.url)} is unreachable: {outcome.error or 'no HTTP answer'}",
        fix="Make the webhook endpoint reachable from here over HTTPS this machine trusts "
        "(--ca-bundle for a private CA), then run again; webhook-endpoint then reports on it "
        "in detail.",
    )


def shown_url(url: str) -> str:
    """The URL without query or fragment (which may carry a token)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


async def probe_answers(ctx: CheckContext, probe: Probe | None, timeout_s: float) -> Failure | None:
    """The probe finds a user it lists; without a list, it answers "no such user" cleanly."""
    section = ctx.config.probe
    if probe is None or section is None:
        return None
    reads = section.http if section.kind == "http" else section.command
    if reads is None:
        return None
    fix = (
        "Run `scim-readiness probe test` and fix the probe's URLs (or command) and paths "
        "until it shows the app's users."
    )
    try:
        async with asyncio.timeout(timeout_s):
            return await _probe_lookups(ctx, probe, reads.list_users, reads.user_by_email, fix)
    except TimeoutError:
        return Failure(PROBE, f"the probe did not answer within {timeout_s:g} s", fix=fix)
    except ReadinessError as exc:
        return Failure(PROBE, exc.message, fix=exc.hint or fix)


async def _probe_lookups(
    ctx: CheckContext, probe: Probe, lists: object, by_email: object, fix: str
) -> Failure | None:
    if lists:
        users = probe.list_users()
        try:
            first = await anext(users, None)
        finally:
            close = getattr(users, "aclose", None)  # a generator holds its request open
            if close is not None:
                await close()
        if first is not None:
            found = (
                await probe.user_by_email(first.email)
                if by_email
                else await probe.user_by_id(first.directory_user_id)
                if first.directory_user_id
                else first
            )
            if found is None:
                return Failure(
                    PROBE,
                    'the probe answers "no such user" for a user its own list_users shows '
                    f"(looked up by {'email' if by_email else 'directory user id'})",
                    fix=fix,
                )
            return None
    if by_email:
        # Nobody has this address: the answer must be "no such user", not an error.
        await probe.user_by_email(ctx.identities.user("preflight").email)
    return None


async def scalekit_token(shared: SharedClients) -> Failure | None:
    """The run's shared Scalekit connection (its token exchange), made now; checks reuse it,
    failure included. Not cancelled from here: the connection bounds itself with
    ``scalekit.timeout_s``, and a cancelled one would be remembered as the run's answer."""
    try:
        await shared.scalekit()
    except ReadinessError as exc:
        return Failure(SCALEKIT, exc.message, fix=exc.hint)
    return None
