"""`webhook-endpoint`: the app's webhook endpoint is HTTPS on the right domain, reachable by
Scalekit, and acknowledges a signed event quickly (checklist item 2).

Steps, each recorded as its own finding:

- the URL is ``https://`` (plain HTTP: FAIL when ``expect: production``, WARN otherwise);
- the host is in ``webhook.allowed_hosts`` (FAIL if not; SKIP when no list is configured);
- the host resolves, and with ``expect: production`` every address is public (a loopback,
  private or link-local address is FAIL: Scalekit cannot reach it). Loopback targets are
  accepted only when ``expect`` is not production, and the finding says so;
- the TLS certificate verifies, matches the host and expires in more than ``cert_warn_days``
  (WARN below that, FAIL below ``cert_fail_days``);
- a handshake capped at TLS 1.1 is refused (FAIL if accepted; SKIP if this machine's OpenSSL
  cannot offer TLS 1.0/1.1);
- the ``http://`` twin (port ``http_port``) is refused or redirects to HTTPS
  (FAIL if it acknowledges an event over plain HTTP, WARN if it answers anything else);
- ``deliveries`` correctly signed harmless events (``organization.directory_enabled``
  for the configured organisation and directory: it repeats a state the directory already
  has; an app that acts on it can be given an unknown future type instead, option
  ``harmless_event_type``) each get a 2xx within
  ``webhook.latency_budget_s``; p50/p95 are reported. Redirects are not followed (webhook
  senders do not follow them): a 3xx is FAIL with the redirect target shown, as is any other
  non-2xx or a slow answer. Without ``webhook.secret`` this step is ERROR: nothing signed can
  be sent; against a production target over plain ``http://`` it is SKIP (nothing signed
  crosses the wire in clear text);
- optionally (``burst: {events: N, concurrency: C}``) a burst of N signed harmless events at
  concurrency C, with throughput and p50/p95/p99: FAIL on any non-2xx or a p95 over the
  budget (see ``scim_readiness.checks.webhook_endpoint.burst``). The burst floods the app,
  so it holds the app alone (``holds_app``): it waits, up to a quarter of the check's timeout,
  until no other check is at work on the app (else it is SKIP, not sent), and none starts
  while it runs.

PASS means every step passed; this check changes nothing in the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim_readiness.api import (
    CheckInfo,
    FindingCode,
    Need,
    deferred,
    option,
)
from scim_readiness.plugin.options import EventOptions

if TYPE_CHECKING:
    from .burst import BurstPlan


def _burst_plan(raw: object) -> BurstPlan | None:
    # The burst module brings asyncio and the HTTP stack: loaded only when a burst is asked for.
    from .burst import parse_plan

    return parse_plan(raw, where="burst")


class Options(EventOptions):
    dns_timeout_s: float = option(default=5.0, description="DNS lookup budget (s)", ge=0.1)
    tls_timeout_s: float = option(default=5.0, description="TLS handshake budget (s)", ge=0.1)
    cert_warn_days: float = option(
        default=21, description="warn when the certificate expires within this many days", ge=0
    )
    cert_fail_days: float = option(
        default=7, description="fail when the certificate expires within this many days", ge=0
    )
    http_port: int = option(default=80, description="port of the plain-HTTP twin", ge=1)
    deliveries: int = option(default=3, description="signed harmless events sent", ge=1)
    harmless_event_type: str = option(
        default="organization.directory_enabled",
        description="type of the harmless events (an unknown future type for an app that acts "
        "on the default)",
    )
    burst: BurstPlan | None = option(
        default=None,
        description="a load burst judged against webhook.latency_budget_s, e.g. "
        "{events: 500, concurrency: 10}",
        parse=_burst_plan,
        shown_type="{events: N, concurrency: C}, N ≤ 100,000, C ≤ 256",
        shown_default="none (no burst)",
    )


_DOCS = "https://docs.scalekit.com/authenticate/implement-workflows/implement-webhooks"
_WEBHOOK_DOCS = "https://docs.scalekit.com/reference/webhooks/overview"

CODES = (
    FindingCode(
        "WHE001",
        "The webhook URL is configured as an absolute http(s) URL with a valid port",
        why="Scalekit can only deliver to an absolute HTTPS URL; without one nothing about the "
        "endpoint can be observed.",
        fix="Set webhook.url to the full HTTPS URL registered in the Scalekit dashboard.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE002",
        "The webhook URL uses HTTPS",
        why="Webhook bodies carry names, emails and roles; over plain HTTP anyone on the path "
        "can read them, and Scalekit requires HTTPS endpoints in production.",
        fix="Serve the webhook endpoint over HTTPS and register the https:// URL in Scalekit.",
        docs_url=_WEBHOOK_DOCS,
    ),
    FindingCode(
        "WHE003",
        "The webhook host is on the allow-list (webhook.allowed_hosts)",
        why="Events sent to a domain nobody approved (a staging host, a tunnel, a typo) carry "
        "user data there and leave production unprovisioned.",
        fix="Register the approved domain's URL in Scalekit, or list the host in "
        "webhook.allowed_hosts.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE004",
        "The webhook host resolves, to public addresses in production",
        why="Scalekit delivers from the internet: a name it cannot resolve, or a loopback, "
        "private or link-local address, cannot be reached.",
        fix="Publish DNS records for the public hostname of the webhook endpoint.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE005",
        "The endpoint's TLS certificate verifies, matches the host and is not about to expire",
        why="Scalekit verifies certificates: a wrong, untrusted or expired certificate fails "
        "every delivery's handshake, and users stop being provisioned and deprovisioned.",
        fix="Serve a certificate for the host from a public CA with the full chain, and "
        "automate its renewal (e.g. ACME).",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE006",
        "A handshake capped at TLS 1.1 is refused",
        why="TLS 1.0 and 1.1 are deprecated (RFC 8996) and have known weaknesses; compliance "
        "reviews flag them.",
        fix="Set the server's or load balancer's minimum TLS version to 1.2.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE007",
        "The plain-HTTP twin of the webhook URL is refused or redirects to HTTPS",
        why="A URL registered with http:// by mistake would deliver user data in clear text.",
        fix="Close plain HTTP for the webhook path (port 80) or redirect it to HTTPS.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE008",
        "Correctly signed harmless events are acknowledged with 2xx within the latency budget",
        why="Scalekit treats anything but a prompt 2xx (a redirect included: it is not "
        "followed) as a failed delivery and retries it; after the last attempt the event is "
        "lost.",
        fix="Register the final URL, verify the signature on the raw body, and return 2xx as "
        "soon as the event is stored; do the provisioning work in a background job.",
        docs_url=_WEBHOOK_DOCS,
    ),
    FindingCode(
        "WHE009",
        "Test events are addressed to the configured organisation",
        why="An app that (rightly) refuses events for organisations it does not know rejects "
        "them for that reason alone, which can hide or fake results.",
        fix="Set scalekit.organization_id (org_…) in the config.",
        docs_url=_DOCS,
    ),
    FindingCode(
        "WHE010",
        "A burst of signed events (option burst) is acknowledged with 2xx, p95 within the "
        "latency budget",
        why="An IdP's bulk change arrives as a burst; an endpoint that sheds load or slows "
        "down falls further behind as Scalekit retries, and may lose events.",
        fix="Acknowledge as soon as the event is verified and stored, process in a background "
        "queue, and size the endpoint (workers, connection and rate limits) for bursts.",
        docs_url=_WEBHOOK_DOCS,
    ),
)

CHECK = CheckInfo(
    id="webhook-endpoint",
    title="Webhook endpoint: HTTPS, domain, reachability",
    checklist_item=2,
    options=Options,
    needs=(Need.WEBHOOK,),
    mutates=False,
    # Takes no turn, but the optional burst floods the app: that part holds it alone.
    holds_app=True,
    docs_url=_DOCS,
    description="HTTPS on an allowed, public domain; valid certificate; TLS >= 1.2; "
    "plain HTTP refused; a signed event acknowledged within the latency budget",
    codes=CODES,
)

run = deferred(f"{__name__}.check", "run")
