"""The body of `admin-portal`: see the package's docstring for what it checks."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from scim_readiness.api import (
    FindingCode,
    ScalekitAuthError,
    ScalekitError,
    Severity,
)
from scim_readiness.clients.answers import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    HostileAnswer,
    decode_json,
    describe_http_error,
    request_capped,
    shown_endpoint,
)
from scim_readiness.config import AdminPortalSection
from scim_readiness.plugin.target import (
    TargetUnavailable,
    epoch_seconds,
    organization_id_for,
    resolved_environment_url,
)

from . import (
    _EMBED_DOCS,
    _WHY_LINKS_MATTER,
    ATTESTED,
    ENDPOINT_ASKED,
    FRAMING,
    LINK_DOMAIN,
    LINK_GENERATED,
    LINK_HTTPS,
    LINK_LIFETIME,
    REFUSES_ANONYMOUS,
    REFUSES_WRONG_TOKEN,
    RIGHT_ORGANIZATION,
    Options,
)
from .frame_ancestors import Origin, framing_allowed
from .portal_link import body_carries_link, find_path, link_shape

if TYPE_CHECKING:
    import httpx

    from scim_readiness.api import CheckContext
    from scim_readiness.config import AdminPortalSection, PortalLinkEndpoint


async def run(ctx: CheckContext) -> None:

    # Options are checked before anything is observed, so a typo is one clear message.
    Options.of(ctx)
    section = ctx.config.admin_portal or AdminPortalSection()
    gateway, org_id = await _session(ctx)
    if gateway is not None and org_id is not None:
        await _inspect_generated_link(ctx, section, gateway, org_id)

    if section.app_link_endpoint is not None:
        await _probe_app_endpoint(ctx, section, section.app_link_endpoint, org_id)
    else:
        ctx.findings.skipped(
            "App's portal-link endpoint not checked",
            observed="admin_portal.app_link_endpoint is not configured",
            why="An app that embeds the portal hands out links from its own endpoint; if that "
            "endpoint skips authentication, anyone can reconfigure the organisation's SCIM.",
            fix="Set admin_portal.app_link_endpoint (url, headers of a signed-in admin).",
            code=ENDPOINT_ASKED.code,
        )

    _report_attestations(ctx, section)


async def _session(ctx: CheckContext) -> tuple[Any, str | None]:
    """The Scalekit gateway and the organisation id; (None, None), recorded, when either
    cannot be had."""
    code = LINK_GENERATED.code
    try:
        gateway = await ctx.scalekit()
        return gateway, await organization_id_for(ctx.config.scalekit, gateway)
    except TargetUnavailable as exc:
        ctx.findings.skipped(
            "Portal link not generated", observed=exc.reason, why=exc.why, code=code
        )
    except ScalekitAuthError as exc:
        ctx.findings.skipped(
            "Portal link not generated",
            observed=f"Scalekit refused the client credentials: {exc.message}",
            why="The environment check reports the credential problem; without a session "
            "no portal link can be made.",
            code=code,
        )
    except ScalekitError as exc:
        ctx.findings.errored(
            "Scalekit could not be reached to generate a portal link",
            observed=exc.message,
            fix="Check the environment URL and network access, then run again.",
            code=code,
        )
    return None, None


# -- the link Scalekit makes ------------------------------------------------------------------


def _env_host_port(ctx: CheckContext) -> tuple[str, int | None]:
    url = resolved_environment_url(ctx.config.scalekit) or ""
    try:
        parts = urlsplit(url)
        return (parts.hostname or "").lower(), parts.port
    except ValueError:
        return "", None


def _expected_host(expected_domain: str) -> tuple[str, int | None]:
    """``portal.acme.com`` or ``portal.acme.com:8443`` (a URL is accepted too)."""
    text = expected_domain.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    return (parts.hostname or "").lower(), parts.port


async def _generated_link(ctx: CheckContext, gateway: Any, org_id: str) -> tuple[str, Any] | None:
    """A fresh portal link with directory sync, as (location, expire_time); None, recorded,
    when Scalekit makes none."""
    code = LINK_GENERATED.code
    expected = "a link with directory sync for the organisation"
    try:
        link = await gateway.generate_portal_link(org_id, features=("dir_sync",))
    except ScalekitAuthError as exc:
        ctx.findings.failed(
            "Scalekit refused to generate a portal link",
            expected=expected,
            observed=exc.message,
            fix="Use client credentials of the environment that owns the organisation.",
            code=code,
        )
        return None
    except ScalekitError as exc:
        ctx.findings.errored(
            "Portal link generation failed",
            expected=expected,
            observed=exc.message,
            fix="Check that Scalekit is reachable and the organisation id is right.",
            code=code,
        )
        return None
    location = str(getattr(link, "location", "") or "")
    if not location:
        ctx.findings.failed(
            "Scalekit returned a portal link without a location",
            expected="an https:// link",
            observed="empty location",
            code=code,
        )
        return None
    return location, getattr(link, "expire_time", None)


async def _inspect_generated_link(
    ctx: CheckContext, section: AdminPortalSection, gateway: Any, org_id: str
) -> None:
    link = await _generated_link(ctx, gateway, org_id)
    if link is None:
        return
    location, expire_time = link
    shape = link_shape(location)
    ctx.findings.passed(
        "Portal link with directory sync can be generated",
        observed=f"link {shape}",
        evidence={"link_shape": shape},
        code=LINK_GENERATED.code,
    )

    parts = urlsplit(location)
    if parts.scheme.lower() == "https":
        ctx.findings.passed("Portal link uses HTTPS", observed=shape, code=LINK_HTTPS.code)
    else:
        ctx.findings.failed(
            "Portal link is not HTTPS",
            expected="https://",
            observed=shape,
            why=LINK_HTTPS.why,
            fix=LINK_HTTPS.fix,
            severity=Severity.CRITICAL,
            code=LINK_HTTPS.code,
        )

    _judge_host(ctx, section, parts, shape)
    _judge_lifetime(ctx, section, expire_time)
    await _judge_framing(ctx, section, location, shape)


def _judge_host(ctx: CheckContext, section: AdminPortalSection, parts: Any, shape: str) -> None:
    code = LINK_DOMAIN.code
    host = (parts.hostname or "").lower()
    port = parts.port
    env_host, env_port = _env_host_port(ctx)
    if section.expected_domain:
        want_host, want_port = _expected_host(section.expected_domain)
        if host == want_host and (want_port is None or want_port == port):
            ctx.findings.passed(
                "Portal link is on the custom domain",
                expected=section.expected_domain,
                observed=shape,
                code=code,
            )
        else:
            on_scalekit = host == env_host or host.endswith(
                (".scalekit.com", ".scalekit.dev", ".scalekit.cloud")
            )
            ctx.findings.failed(
                "Portal link is not on the expected custom domain",
                expected=section.expected_domain,
                observed=f"{shape}"
                + (" (still the Scalekit environment's domain)" if on_scalekit else ""),
                why=LINK_DOMAIN.why,
                fix="Finish the custom domain setup (CNAME verified) in the Scalekit dashboard, "
                "or correct admin_portal.expected_domain.",
                code=code,
            )
        return
    if host == env_host and (env_port is None or port in (None, env_port)):
        ctx.findings.passed(
            "Portal link is on the environment's domain",
            observed=shape,
            why="No custom domain is configured (admin_portal.expected_domain).",
            code=code,
        )
    else:
        ctx.findings.warned(
            "Portal link is on an unexpected host",
            expected=f"the environment's host {env_host} or a configured custom domain",
            observed=shape,
            fix="If this is your custom domain, set admin_portal.expected_domain to it.",
            code=code,
        )


def _judge_lifetime(ctx: CheckContext, section: AdminPortalSection, expire_time: Any) -> None:
    code = LINK_LIFETIME.code
    expires = epoch_seconds(expire_time)
    limit = section.max_link_lifetime_s
    if expires is None:
        ctx.findings.warned(
            "Portal link has no expiry",
            expected=f"expires within {limit:.0f} s",
            observed="no expire_time on the link",
            why="A link that never expires stays a usable credential wherever it leaks.",
            code=code,
        )
        return
    lifetime = expires - ctx.clock.now()
    observed = f"expires in {lifetime:.0f} s"
    if lifetime <= 0:
        ctx.findings.failed(
            "Portal link is already expired when generated",
            expected=f"expires within {limit:.0f} s, in the future",
            observed=observed,
            fix="Check the clock of the machine running the check and Scalekit's.",
            code=code,
        )
    elif lifetime <= limit:
        ctx.findings.passed(
            "Portal link is short-lived", expected=f"≤ {limit:.0f} s", observed=observed, code=code
        )
    else:
        ctx.findings.warned(
            "Portal link lives longer than the embedding guidance",
            expected=f"≤ {limit:.0f} s (embedded links expire a minute after creation)",
            observed=observed,
            why="Long-lived links are credentials that outlive the page view they were made "
            "for; embed a fresh link per page view instead of sharing one.",
            fix=LINK_LIFETIME.fix,
            docs_url=_EMBED_DOCS,
            code=code,
        )


def _framing_origin(
    ctx: CheckContext, section: AdminPortalSection, location: str, shape: str
) -> Origin | None:
    """The origin that must be allowed to frame the portal; None, recorded, when framing
    cannot be judged (not configured, not an origin, a link that cannot be opened)."""
    code = FRAMING.code
    if not section.embedding_origin:
        ctx.findings.skipped(
            "Portal framing not checked",
            observed="admin_portal.embedding_origin is not configured",
            fix="Set admin_portal.embedding_origin to the origin of the page that embeds the "
            "portal (e.g. https://app.example.com).",
            code=code,
        )
        return None
    try:
        origin = Origin.parse(section.embedding_origin)
    except ValueError as exc:
        ctx.findings.failed(
            "admin_portal.embedding_origin is not an origin",
            expected="scheme://host[:port]",
            observed=str(exc),
            code=code,
        )
        return None
    problem = _url_problem(location)
    if problem:
        ctx.findings.failed(
            "Portal link cannot be opened",
            expected="an http(s) URL",
            observed=f"the link ({shape}) {problem.split(' (')[0]}",
            code=code,
        )
        return None
    return origin


async def _judge_framing(
    ctx: CheckContext, section: AdminPortalSection, location: str, shape: str
) -> None:

    origin = _framing_origin(ctx, section, location, shape)
    if origin is None:
        return
    try:
        async with ctx.http(timeout_s=ctx.config.scalekit.timeout_s, follow_redirects=True) as h:
            # Only the headers decide framing: the page itself is cut at the cap.
            response = await request_capped(h, "GET", location, cap=MAX_ANSWER_BYTES, truncate=True)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        host = urlsplit(location).hostname or "?"
        ctx.findings.errored(
            "Portal page could not be loaded",
            observed=f"{host}: {describe_http_error(exc)}",
            fix="Check that the portal host resolves and serves HTTPS with a trusted certificate.",
            code=FRAMING.code,
        )
        return
    _judge_framing_answer(ctx, origin, response, shape)


def _judge_framing_answer(
    ctx: CheckContext, origin: Origin, response: httpx.Response, shape: str
) -> None:
    code = FRAMING.code
    final = response.url
    protected = Origin(final.scheme, (final.host or "").lower(), final.port or 443)
    csp = response.headers.get_list("content-security-policy")
    decision = framing_allowed(
        csp_headers=csp,
        x_frame_options=response.headers.get("x-frame-options"),
        origin=origin,
        protected=protected,
    )
    evidence = {
        "status": response.status_code,
        "content-security-policy": csp,
        "x-frame-options": response.headers.get("x-frame-options"),
    }
    if response.status_code >= 400:
        ctx.findings.failed(
            "Portal page does not open from a fresh link",
            expected="200 with the portal",
            observed=f"HTTP {response.status_code} for {shape}",
            evidence=evidence,
            code=code,
        )
        return
    header_seen = "; ".join(csp) if csp else "(no Content-Security-Policy header)"
    expected = f"frame-ancestors admits {origin}"
    if decision.allowed:
        ctx.findings.passed(
            "Portal allows framing by the app's origin",
            expected=expected,
            observed=decision.policy or decision.reason,
            evidence=evidence,
            code=code,
        )
        return
    ctx.findings.failed(
        "Portal refuses to be framed by the app's origin",
        expected=expected,
        observed=f"Content-Security-Policy: {header_seen} — {decision.reason}",
        why=FRAMING.why,
        fix=f"Add {origin} to the allowed redirect/callback URLs of the Scalekit "
        "environment (Dashboard → Settings), which feeds the portal's frame-ancestors.",
        docs_url=_EMBED_DOCS,
        evidence=evidence,
        code=code,
    )


# -- the app's own endpoint -----------------------------------------------------------------


def _wrong_value(value: str) -> str:
    """Same shape as the real credential, wrong content: ``Bearer <random>``, ``name=<random>``."""

    junk = "scim-readiness-wrong-" + secrets.token_urlsafe(12)
    if " " in value:
        return value.split(" ", 1)[0] + " " + junk
    if "=" in value:
        return value.split("=", 1)[0] + "=" + junk
    return junk


async def _probe_app_endpoint(
    ctx: CheckContext,
    section: AdminPortalSection,
    endpoint: PortalLinkEndpoint,
    org_id: str | None,
) -> None:

    problem = _url_problem(endpoint.url)
    if problem:
        ctx.findings.errored(
            "App's portal-link endpoint could not be reached",
            observed=f"admin_portal.app_link_endpoint.url {problem}",
            fix="Give the full http(s) URL of the app's endpoint.",
            code=ENDPOINT_ASKED.code,
        )
        return
    host = urlsplit(endpoint.url).hostname or "?"
    try:
        await _ask_callers(ctx, endpoint, org_id, _portal_hosts(ctx, section))
    except HostileAnswer as exc:
        _endpoint_unusable(
            ctx,
            "App's portal-link endpoint sent an answer the checker refuses to read",
            expected="a small JSON answer carrying a link",
            observed=str(exc),
            fix="Check that admin_portal.app_link_endpoint.url names the app's own endpoint "
            "that returns the portal link.",
        )
    except AnswerTooLarge as exc:
        _endpoint_unusable(
            ctx,
            "App's portal-link endpoint answered with more than a link",
            expected=f"a small answer carrying a link (at most {MAX_ANSWER_BYTES:,} bytes)",
            observed=f"{host}: {describe_http_error(exc)}",
            fix="Check that admin_portal.app_link_endpoint.url names the endpoint that returns "
            "the portal link, not a page or a download.",
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        _endpoint_unusable(
            ctx,
            "App's portal-link endpoint could not be reached",
            observed=f"{host}: {describe_http_error(exc)}",
            fix="Check admin_portal.app_link_endpoint.url and that the app is running.",
        )


def _endpoint_unusable(
    ctx: CheckContext, title: str, *, observed: str, fix: str, expected: str = ""
) -> None:
    ctx.findings.errored(
        title, expected=expected, observed=observed, fix=fix, code=ENDPOINT_ASKED.code
    )


async def _ask_callers(
    ctx: CheckContext, endpoint: PortalLinkEndpoint, org_id: str | None, portal_hosts: set[str]
) -> None:
    """Ask as an anonymous caller, a caller with a wrong token, then the configured one."""
    url = endpoint.url
    real_headers = {name: value.get_secret_value() for name, value in endpoint.headers.items()}
    wrong_headers = {name: _wrong_value(value) for name, value in real_headers.items()} or {
        "authorization": "Bearer " + _wrong_value("")
    }
    callers: list[tuple[str, dict[str, str], FindingCode]] = [
        ("an unauthenticated caller", {}, REFUSES_ANONYMOUS),
        ("a caller with a wrong token", wrong_headers, REFUSES_WRONG_TOKEN),
    ]
    async with ctx.http(timeout_s=Options.of(ctx).app_timeout_s) as client:
        for who, headers, entry in callers:
            started = time.monotonic()
            response = await request_capped(
                client, endpoint.method, url, cap=MAX_ANSWER_BYTES, headers=headers
            )
            elapsed = time.monotonic() - started
            _judge_refusal(ctx, endpoint, who, response, portal_hosts, elapsed, entry)
        if not real_headers:
            ctx.findings.skipped(
                "Authenticated portal-link request not made",
                observed="admin_portal.app_link_endpoint.headers is empty",
                fix="Add the headers of a signed-in admin (e.g. Authorization) so the check "
                "can confirm the endpoint works for the right organisation.",
                code=RIGHT_ORGANIZATION.code,
            )
            return
        response = await request_capped(
            client, endpoint.method, url, cap=MAX_ANSWER_BYTES, headers=real_headers
        )
        _judge_authenticated(ctx, endpoint, response, org_id)


def _url_problem(url: str) -> str:
    """Why ``url`` cannot be requested (empty when it can)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "is not an http(s) URL"
    if not parts.hostname or " " in parts.netloc:
        return "has no valid host"
    if port == 0:
        return "has port 0"
    return ""


def _portal_hosts(ctx: CheckContext, section: AdminPortalSection) -> set[str]:
    hosts = {_env_host_port(ctx)[0]}
    if section.expected_domain:
        hosts.add(_expected_host(section.expected_domain)[0])
    return {h for h in hosts if h}


def _answer_json(response: httpx.Response) -> Any:
    """The endpoint's JSON answer, None when it is no JSON; HostileAnswer (naming the
    endpoint) when it is built to hurt its reader."""
    try:
        return decode_json(response.content)
    except HostileAnswer as exc:
        raise HostileAnswer(
            f"answer from {shown_endpoint(str(response.request.url))}: {exc}"
        ) from None
    except ValueError:
        return None


def _body_link(response: httpx.Response, endpoint: PortalLinkEndpoint, hosts: set[str]) -> bool:
    text = response.text[:100_000]
    document = _answer_json(response)
    value = find_path(document, endpoint.link_path) if document is not None else None
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return True
    return body_carries_link(text, hosts)


def _judge_refusal(
    ctx: CheckContext,
    endpoint: PortalLinkEndpoint,
    who: str,
    response: httpx.Response,
    hosts: set[str],
    elapsed_s: float,
    entry: FindingCode,
) -> None:
    leaked = _body_link(response, endpoint, hosts)
    status = response.status_code
    evidence = {"status": status, "method": endpoint.method, "latency_s": round(elapsed_s, 3)}
    title_who = who[0].upper() + who[1:]
    if status in (401, 403) and not leaked:
        ctx.findings.passed(
            f"{title_who} is refused a portal link",
            expected="401 or 403, no link",
            observed=f"HTTP {status}, no link in the body",
            evidence=evidence,
            code=entry.code,
        )
        return
    observed = f"HTTP {status}" + (", and the body carries a portal link" if leaked else "")
    ctx.findings.failed(
        f"App's portal-link endpoint does not refuse {who}",
        expected="401 or 403, no link",
        observed=observed,
        why=_WHY_LINKS_MATTER,
        fix="Put the endpoint behind the app's authentication and check that the caller is an "
        "admin of the organisation before generating a link.",
        severity=Severity.CRITICAL if leaked else Severity.HIGH,
        evidence={**evidence, "link_in_body": leaked},
        code=entry.code,
    )


def _judge_authenticated(
    ctx: CheckContext,
    endpoint: PortalLinkEndpoint,
    response: httpx.Response,
    org_id: str | None,
) -> None:
    status = response.status_code
    document = _answer_json(response)
    location = find_path(document, endpoint.link_path) if document is not None else None
    if not (200 <= status < 300) or not isinstance(location, str) or not location:
        ctx.findings.errored(
            "Authenticated caller got no portal link from the app",
            expected=f"2xx with a link at {endpoint.link_path!r}",
            observed=f"HTTP {status}"
            + ("" if isinstance(location, str) else f", nothing at {endpoint.link_path!r}"),
            fix="Check admin_portal.app_link_endpoint (url, headers, link_path) and the app's "
            "Scalekit credentials.",
            evidence={"status": status},
            code=RIGHT_ORGANIZATION.code,
        )
        return
    if not location.lower().startswith("https://"):
        ctx.findings.failed(
            "App hands out a portal link that is not HTTPS",
            expected="https://",
            observed=link_shape(location),
            why=_WHY_LINKS_MATTER,
            code=RIGHT_ORGANIZATION.code,
        )
        return
    reported_org = find_path(document, Options.of(ctx).organization_path)
    _judge_link_organization(ctx, link_shape(location), reported_org, org_id, status)


def _judge_link_organization(
    ctx: CheckContext, shape: str, reported_org: Any, org_id: str | None, status: int
) -> None:
    """The organisation the app's answer names against the configured one."""
    code = RIGHT_ORGANIZATION.code
    if org_id is None or reported_org is None:
        org_path = Options.of(ctx).organization_path
        ctx.findings.warned(
            "Authenticated caller gets a portal link, organisation not confirmed",
            expected=f"the link is for {org_id or 'the configured organisation'}",
            observed=f"{shape}; "
            + (
                f"no organisation id at {org_path!r} in the answer"
                if reported_org is None
                else "the configured organisation is unknown"
            ),
            fix="Return the organisation id next to the link (option organization_path says "
            "where) so the check can confirm it.",
            code=code,
        )
        return
    if str(reported_org) != org_id:
        shown_org = str(reported_org)
        if "://" in shown_org:  # whatever sits there, a URL in a link answer may be a link
            shown_org = link_shape(shown_org)
        shown_org = shown_org[:120]
        ctx.findings.failed(
            "App hands out a portal link for another organisation",
            expected=org_id,
            observed=f"{shown_org} ({shape})",
            why=RIGHT_ORGANIZATION.why,
            fix="Derive the organisation from the signed-in user's tenant, never from a "
            "request parameter alone.",
            severity=Severity.CRITICAL,
            code=code,
        )
        return
    ctx.findings.passed(
        "Authenticated caller gets a portal link for the right organisation",
        expected=org_id,
        observed=f"{shape} for {reported_org}",
        evidence={"status": status},
        code=code,
    )


# -- attestations -------------------------------------------------------------------------------


def _report_attestations(ctx: CheckContext, section: AdminPortalSection) -> None:
    attested = {a.item.strip().lower() for a in section.attestations}
    for attestation in section.attestations:
        ctx.findings.attested(
            f"{attestation.item}: attested, not observed",
            observed=f"attested by {attestation.who} on {attestation.when}: {attestation.what}",
            why="No API shows this; it is recorded in the config as a person's statement.",
            evidence={"who": attestation.who, "when": attestation.when},
            code=ATTESTED.code,
        )
    for item in section.required_attestations:
        if item.strip().lower() not in attested:
            ctx.findings.warned(
                f"{item}: no attestation",
                expected=f"an attestation for {item!r} (who, when, what)",
                observed="none in admin_portal.attestations",
                why=ATTESTED.why,
                fix=f"Check {item} in the Scalekit dashboard and add "
                f"{{item: {item}, who: …, when: …, what: …}} to admin_portal.attestations.",
                code=ATTESTED.code,
            )
