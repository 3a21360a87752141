"""The body of `webhook-endpoint`: see the package's docstring for what it checks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from scim_readiness.api import (
    DeliveryRefused,
    FindingRecorder,
    TargetError,
)
from scim_readiness.events import directory_data
from scim_readiness.guards import production_target
from scim_readiness.model import percentile
from scim_readiness.parts import CheckParts
from scim_readiness.webhooks.sender import (
    REDIRECT_WHY,
    warn_if_fake_organization,
)

from . import _WEBHOOK_DOCS, Options
from .burst import burst_step
from .tls_inspect import (
    host_allowed,
    inspect_tls,
    is_loopback_host,
    non_public_reason,
    probe_legacy_tls,
    resolve,
)

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.webhooks.sender import Outcome

    from .tls_inspect import TlsHandshake


@dataclass(slots=True)
class Endpoint:
    """The webhook URL, taken apart once, plus what earlier steps learned."""

    url: str
    scheme: str
    host: str
    port: int
    production: bool
    addresses: tuple[str, ...] = ()
    loopback: bool = False
    reachable: bool = True
    # False once the TLS certificate fails verification: Scalekit could not deliver either.
    deliverable: bool = True
    notes: list[str] = field(default_factory=list)


Step = Callable[["CheckContext", Endpoint], Awaitable[None]]


async def run(ctx: CheckContext) -> None:

    url = ctx.config.webhook.url
    if not url:
        ctx.findings.skipped(
            "No webhook URL configured",
            expected="webhook.url set to the endpoint registered in Scalekit",
            observed="webhook.url is empty",
            why="Without the URL nothing about the endpoint can be observed.",
            fix="Set webhook.url in the config.",
            code="WHE001",
        )
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        ctx.findings.failed(
            "Webhook URL is not an http(s) URL",
            expected="https://<public host>/<path>",
            observed=f"webhook.url = {url!r}",
            why="Scalekit can only deliver to an absolute HTTPS URL.",
            fix="Set webhook.url to the full HTTPS URL registered in the Scalekit dashboard.",
            code="WHE001",
        )
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        ctx.findings.failed(
            "Webhook URL has an invalid port",
            observed=f"webhook.url = {url!r}",
            fix="Fix the port in webhook.url.",
            code="WHE001",
        )
        return
    endpoint = Endpoint(
        url=url,
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        production=production_target(ctx.config) is not None,
    )
    for step in STEPS:
        await step(ctx, endpoint)


# ---------------------------------------------------------------------------- steps


async def _scheme(ctx: CheckContext, ep: Endpoint) -> None:
    if ep.scheme == "https":
        ctx.findings.passed(
            "Webhook URL uses HTTPS",
            expected="https://",
            observed=ep.url,
            docs_url=_WEBHOOK_DOCS,
            code="WHE002",
        )
        return
    kw: dict[str, Any] = {
        "expected": "https://",
        "observed": f"{ep.url} (plain HTTP)",
        "why": "Webhook bodies carry names, emails and roles; over plain HTTP anyone on the "
        "path can read them, and Scalekit requires HTTPS endpoints in production.",
        "fix": "Serve the webhook endpoint over HTTPS and register the https:// URL in Scalekit.",
        "docs_url": _WEBHOOK_DOCS,
        "code": "WHE002",
    }
    if ep.production:
        ctx.findings.failed("Webhook URL is plain HTTP in production", **kw)
    else:
        ctx.findings.warned(
            f"Webhook URL is plain HTTP (accepted only because expect is "
            f"{ctx.config.scalekit.expect.value})",
            **kw,
        )


async def _allowed_host(ctx: CheckContext, ep: Endpoint) -> None:

    allowed = ctx.config.webhook.allowed_hosts
    if not allowed:
        ctx.findings.skipped(
            "Webhook host not compared with an allow-list",
            observed=f"host {ep.host}; webhook.allowed_hosts is empty",
            why="Without a list, a URL pointing at the wrong domain (a staging host, a "
            "personal tunnel) cannot be told apart from the right one.",
            fix="List the production webhook host(s) in webhook.allowed_hosts.",
            code="WHE003",
        )
        return
    if host_allowed(ep.host, allowed):
        ctx.findings.passed(
            "Webhook host is on the allow-list",
            expected=f"one of {', '.join(allowed)}",
            observed=ep.host,
            code="WHE003",
        )
    else:
        ctx.findings.failed(
            "Webhook host is not on the allow-list",
            expected=f"one of {', '.join(allowed)}",
            observed=ep.host,
            why="Events would go to a domain nobody approved (a staging host, a tunnel, a "
            "typo), carrying user data there and leaving production unprovisioned.",
            fix="Register the approved domain's URL in Scalekit, or add the host to "
            "webhook.allowed_hosts if it is in fact approved.",
            code="WHE003",
        )


async def _addresses(ctx: CheckContext, ep: Endpoint) -> None:

    timeout = Options.of(ctx).dns_timeout_s
    try:
        ep.addresses = await resolve(ep.host, ep.port, timeout_s=timeout)
    except TargetError as exc:
        ep.reachable = False
        ctx.findings.failed(
            "Webhook host does not resolve",
            expected=f"{ep.host} resolves to public addresses",
            observed=exc.message,
            why="Scalekit cannot deliver to a name it cannot resolve; every event would be "
            "retried and then dropped.",
            fix="Publish DNS records for the webhook host (or fix the host in webhook.url).",
            code="WHE004",
        )
        return
    reasons = {address: non_public_reason(address) for address in ep.addresses}
    private = {address: why for address, why in reasons.items() if why}
    ep.loopback = is_loopback_host(ep.host) or any(w == "loopback" for w in private.values())
    listing = ", ".join(
        f"{address} ({why})" if why else address for address, why in reasons.items()
    )
    evidence = {"addresses": list(ep.addresses)}
    if not private:
        ctx.findings.passed(
            "Webhook host resolves to public addresses",
            observed=f"{ep.host} → {listing}",
            evidence=evidence,
            code="WHE004",
        )
    elif ep.production:
        ctx.findings.failed(
            "Webhook host resolves to non-public addresses in production",
            expected="only public addresses",
            observed=f"{ep.host} → {listing}",
            why="Scalekit delivers from the internet; a loopback, private or link-local "
            "address is unreachable from there (or points at the wrong machine).",
            fix="Register the public hostname of the webhook endpoint, or, if this run "
            "targets a non-production setup, set scalekit.expect accordingly.",
            evidence=evidence,
            code="WHE004",
        )
    else:
        kind = "local (loopback)" if ep.loopback else "non-public"
        ctx.findings.passed(
            f"Webhook host is a {kind} target, accepted because expect is "
            f"{ctx.config.scalekit.expect.value}",
            observed=f"{ep.host} → {listing}",
            why="Real Scalekit cannot reach this address; the results describe a local or "
            "internal setup, not the production endpoint.",
            evidence=evidence,
            code="WHE004",
        )


async def _certificate(ctx: CheckContext, ep: Endpoint) -> None:

    if ep.scheme != "https":
        ctx.findings.skipped(
            "TLS certificate not checked", observed="the webhook URL is not HTTPS", code="WHE005"
        )
        return
    if not ep.reachable:
        return
    opts = Options.of(ctx)
    shake = await inspect_tls(ep.host, ep.port, ctx.tls, timeout_s=opts.tls_timeout_s)
    cert = shake.certificate
    described = (
        f"certificate for {', '.join(cert.names) or cert.subject} issued by {cert.issuer}, "
        f"valid until {cert.not_after:%Y-%m-%d %H:%M} UTC"
        if cert
        else "no certificate could be read"
    )
    if _handshake_failed(ctx.findings, ep, shake, described):
        return
    assert cert is not None  # noqa: S101 - a verified handshake always has a peer certificate
    days = cert.days_left(dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC))
    evidence = {
        "tls_version": shake.version,
        "not_after": cert.not_after.isoformat(),
        "days_left": round(days, 1),
        "names": list(cert.names),
    }
    ctx.findings.metrics["certificate_days_left"] = round(days, 1)
    kw: dict[str, Any] = {
        "expected": f"more than {opts.cert_warn_days:g} days of validity left",
        "observed": f"{days:.1f} days left; {described} ({shake.version})",
        "why": "When the certificate expires, every delivery fails the TLS handshake: "
        "users stop being provisioned and, worse, deprovisioned.",
        "fix": "Renew the certificate (automate renewal, e.g. ACME) well before it expires.",
        "evidence": evidence,
        "code": "WHE005",
    }
    if days < opts.cert_fail_days:
        ctx.findings.failed(f"TLS certificate expires in {days:.1f} days", **kw)
    elif days < opts.cert_warn_days:
        ctx.findings.warned(f"TLS certificate expires in {days:.0f} days", **kw)
    else:
        ctx.findings.passed(
            "TLS certificate is valid and matches the host",
            observed=f"{described}; {days:.0f} days left; negotiated {shake.version}",
            evidence=evidence,
            code="WHE005",
        )


def _handshake_failed(
    findings: FindingRecorder, ep: Endpoint, shake: TlsHandshake, described: str
) -> bool:
    """FAIL when the endpoint did not answer TLS (then unreachable) or its certificate did
    not verify (then undeliverable); True when either happened."""
    if shake.connect_error:
        ep.reachable = False
        findings.failed(
            "Webhook endpoint does not answer TLS",
            expected=f"a TLS handshake on {ep.host}:{ep.port}",
            observed=shake.connect_error,
            why="Scalekit cannot deliver to an endpoint it cannot connect to.",
            fix="Check that the service is up and listening for HTTPS on that port.",
            code="WHE005",
        )
        return True
    if shake.verified:
        return False
    ep.deliverable = False
    findings.failed(
        "TLS certificate does not match the webhook host"
        if shake.hostname_mismatch
        else "TLS certificate does not verify",
        expected=f"a certificate for {ep.host} chaining to a trusted CA",
        observed=f"{shake.verify_error}; {described}",
        why="Scalekit verifies certificates; every delivery would fail the handshake "
        "and be retried until it is dropped.",
        fix=f"Serve a certificate whose subjectAltName covers {ep.host}, issued by a "
        "public CA (with the full chain). For a private CA in a test setup, pass "
        "--ca-bundle.",
        code="WHE005",
    )
    return True


async def _legacy_tls(ctx: CheckContext, ep: Endpoint) -> None:

    if ep.scheme != "https" or not ep.reachable:
        return
    timeout = Options.of(ctx).tls_timeout_s
    legacy = await probe_legacy_tls(ep.host, ep.port, timeout_s=timeout)
    if legacy.outcome == "refused":
        ctx.findings.passed(
            "TLS 1.0/1.1 refused",
            expected="a handshake capped at TLS 1.1 is refused",
            observed=f"refused ({legacy.detail})",
            code="WHE006",
        )
    elif legacy.outcome == "accepted":
        ctx.findings.failed(
            f"Endpoint accepts {legacy.version}",
            expected="TLS 1.2 or newer only",
            observed=f"a handshake capped at TLS 1.1 succeeded with {legacy.version}",
            why="TLS 1.0 and 1.1 are deprecated (RFC 8996) and have known weaknesses; "
            "compliance reviews flag them.",
            fix="Set the server's or load balancer's minimum TLS version to 1.2.",
            code="WHE006",
        )
    elif legacy.outcome == "unavailable":
        ctx.findings.skipped(
            "TLS 1.0/1.1 refusal not tested",
            observed=legacy.detail,
            why="The local TLS library cannot offer the old protocols, so whether the "
            "server would accept them is unknown.",
            code="WHE006",
        )
    else:
        ctx.findings.skipped(
            "TLS 1.0/1.1 refusal not tested", observed=legacy.detail, code="WHE006"
        )


async def _plain_http_twin(ctx: CheckContext, ep: Endpoint) -> None:
    if ep.scheme != "https" or not ep.reachable:
        return
    http_port = Options.of(ctx).http_port
    parts = urlsplit(ep.url)
    netloc = f"[{ep.host}]" if ":" in ep.host else ep.host
    if http_port != 80:
        netloc += f":{http_port}"
    twin = urlunsplit(("http", netloc, parts.path, parts.query, ""))
    outcome = await _post_unsigned(ctx, twin)
    title_ok = "Plain-HTTP twin of the webhook URL is refused"
    if outcome.status is None:
        ctx.findings.passed(title_ok, observed=f"{twin}: {outcome.summary()}", code="WHE007")
    elif outcome.redirected and (outcome.location or "").startswith("https://"):
        ctx.findings.passed(
            "Plain-HTTP twin of the webhook URL redirects to HTTPS",
            observed=f"{twin}: {outcome.summary()}",
            code="WHE007",
        )
    elif outcome.accepted:
        ctx.findings.failed(
            "Plain-HTTP twin acknowledges events",
            expected="connection refused, or a redirect to https://",
            observed=f"{twin}: {outcome.summary()} (an unsigned POST got a 2xx)",
            why="A URL registered with http:// by mistake would deliver user data in clear "
            "text, and this endpoint acknowledges it.",
            fix="Stop serving the webhook over plain HTTP: close port 80 or redirect it to HTTPS.",
            evidence=outcome.evidence(),
            code="WHE007",
        )
    else:
        ctx.findings.warned(
            "Plain-HTTP twin of the webhook URL answers without redirecting",
            expected="connection refused, or a redirect to https://",
            observed=f"{twin}: {outcome.summary()}",
            why="The app is reachable in clear text; an http:// registration would expose "
            "event bodies on the wire.",
            fix="Close plain HTTP for the webhook path or redirect it to HTTPS.",
            evidence=outcome.evidence(),
            code="WHE007",
        )


async def _post_unsigned(ctx: CheckContext, url: str) -> Outcome:

    # Nothing signed goes over plain HTTP: a signature seen in clear text could be replayed.
    parts = CheckParts(ctx)
    async with parts.senders.sender(
        url, secret="", target=parts.event_target(), timeout_s=3.0, fresh_connections=True
    ) as sender:
        return await sender.post("plain-http twin", b"{}", {})


async def _acknowledgement(ctx: CheckContext, ep: Endpoint) -> None:
    secret = ctx.config.webhook.secret
    if secret is None or not secret.get_secret_value():
        ctx.findings.errored(
            "Could not send a signed event: no webhook secret configured",
            expected="webhook.secret set to the endpoint's signing secret (whsec_…)",
            observed="webhook.secret is empty",
            why="Whether the endpoint acknowledges Scalekit's deliveries in time is the core "
            "of this check and needs a correctly signed event.",
            fix="Set webhook.secret (as ${SCALEKIT_WEBHOOK_SECRET}) in the config.",
            code="WHE008",
        )
        return
    if not ep.reachable:
        return
    if not ep.deliverable:
        ctx.findings.skipped(
            "Signed event not sent",
            observed="the TLS certificate failed verification (see above)",
            why="A sender that verifies certificates, as Scalekit does, cannot deliver.",
            code="WHE008",
        )
        return
    event_type = Options.of(ctx).harmless_event_type
    outcomes = await _send_harmless(ctx, ep, secret.get_secret_value(), event_type)
    if outcomes is not None:
        _judge_acknowledgements(
            ctx.findings, outcomes, ctx.config.webhook.latency_budget_s, event_type
        )


async def _send_harmless(
    ctx: CheckContext, ep: Endpoint, secret: str, event_type: str
) -> list[Outcome] | None:
    """Send option ``deliveries`` signed harmless events, one after the other, each on a new
    connection; what each got, or None when nothing signed may go to this URL (SKIP)."""

    parts = CheckParts(ctx)
    target = parts.event_target()
    warn_if_fake_organization(ctx.findings, target, code="WHE009")
    data = directory_data(
        id=ctx.config.scalekit.directory_id or f"dir_{ctx.run_id}",
        organization_id=target.organization_id,
    )
    budget = ctx.config.webhook.latency_budget_s
    try:
        unopened = parts.senders.sender(
            ep.url,
            secret,
            target,
            timeout_s=max(ctx.config.webhook.timeout_s, budget),
            fresh_connections=True,
        )
    except DeliveryRefused as refused:
        ep.deliverable = False  # the burst must not try either
        ctx.findings.skipped(
            "Signed event not sent over plain HTTP",
            observed=refused.message,
            why="A valid signature seen in clear text could be replayed for five minutes; "
            "fix the URL first (see above).",
            fix=refused.hint,
            code="WHE008",
        )
        return None
    outcomes: list[Outcome] = []
    async with unopened as sender:
        for n in range(Options.of(ctx).deliveries):
            event = sender.event(event_type, data)
            outcome = await sender.send_event(f"harmless {event_type} #{n + 1}", event)
            outcomes.append(outcome)
            if outcome.status is None:
                break  # the endpoint is down or hanging: one bounded wait is enough
    return outcomes


def _judge_acknowledgements(
    findings: FindingRecorder, outcomes: list[Outcome], budget: float, event_type: str
) -> None:
    """WHE008: every delivery a 2xx from the URL itself (no redirect), within ``budget``;
    the p50/p95 of the acknowledgements go to the metrics."""
    latencies = [o.latency_s for o in outcomes]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    findings.metrics.update(
        {"ack_p50_ms": round(p50 * 1000, 1), "ack_p95_ms": round(p95 * 1000, 1)}
    )
    stats = (
        f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms over {len(outcomes)} deliveries "
        "(each on a new connection, TLS handshake included)"
    )
    evidence = {"deliveries": [o.evidence() for o in outcomes], "latency_budget_s": budget}
    answers = "; ".join(f"#{i + 1} {o.summary()}" for i, o in enumerate(outcomes))
    redirected = _judge_redirects(findings, outcomes, answers, evidence)
    if any(not o.accepted and not o.redirected for o in outcomes):
        findings.failed(
            "Signed harmless event not acknowledged with 2xx",
            expected=f"2xx within {budget:g} s for a correctly signed {event_type}",
            observed=answers,
            why="Scalekit treats anything but a 2xx as a failed delivery and retries it; "
            "after the last attempt the event is lost and the user never provisioned.",
            fix="Make the endpoint verify the signature on the raw body, accept this event "
            "type (or ignore it with a 2xx), and check the secret matches the dashboard's.",
            evidence=evidence,
            code="WHE008",
        )
        return
    if any(o.accepted and o.latency_s > budget for o in outcomes):
        findings.failed(
            "Webhook acknowledged slower than the latency budget",
            expected=f"every 2xx within {budget:g} s",
            observed=f"{stats}; {answers}",
            why="A slow acknowledgement counts as a failed delivery: Scalekit retries it, "
            "so the app processes duplicates and falls further behind under load.",
            fix="Return 2xx as soon as the signature is verified and the event is stored; "
            "do the provisioning work in a background job.",
            evidence=evidence,
            code="WHE008",
        )
    elif not redirected:
        findings.passed(
            "Signed harmless event acknowledged within the latency budget",
            expected=f"2xx within {budget:g} s",
            observed=f"{stats}; first answer: {outcomes[0].summary()}",
            evidence=evidence,
            code="WHE008",
        )


def _judge_redirects(
    findings: FindingRecorder, outcomes: list[Outcome], answers: str, evidence: dict[str, Any]
) -> bool:
    """FAIL when any delivery was answered with a redirect (not followed); True then."""

    redirects = [o for o in outcomes if o.redirected]
    if not redirects:
        return False
    targets = sorted({o.location or "(no Location header)" for o in redirects})
    findings.failed(
        "Webhook URL answers deliveries with a redirect",
        expected="a 2xx from the registered URL itself (redirects are not followed)",
        observed=f"redirected to {', '.join(targets)}; {answers}",
        why=REDIRECT_WHY,
        fix=f"Register the final URL ({targets[0]}) in Scalekit instead, and make it "
        "answer 2xx itself; a redirect loop or a redirect to http:// means the endpoint "
        "is misconfigured.",
        evidence=evidence,
        code="WHE008",
    )
    return True


async def _burst(ctx: CheckContext, ep: Endpoint) -> None:

    await burst_step(ctx, ep)


STEPS: tuple[Step, ...] = (
    _scheme,
    _allowed_host,
    _addresses,
    _certificate,
    _legacy_tls,
    _plain_http_twin,
    _acknowledgement,
    _burst,  # records nothing unless options.burst is set
)
