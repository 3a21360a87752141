"""`admin-portal`: Admin portal configuration (checklist item 8).

Generates a portal link with directory sync for the organisation, inspects it (HTTPS, host,
lifetime), opens it once to read the portal's framing policy, asks the app's own
portal-link endpoint as an anonymous caller, a caller with a wrong token and the configured
caller, and lists the attestations for what no API can show (branding).

Statuses:

* PASS: every observed item is as it should be and every required attestation is present.
* WARN: the link lives longer than the configured maximum, its host is neither the
  environment's nor a configured custom domain, or a required attestation is missing.
* FAIL: no link can be made, it is not HTTPS, it is on the Scalekit domain although a custom
  domain is expected, the portal forbids framing by the app's origin, or the app's endpoint
  hands a link to a caller it should refuse (or a link for another organisation).
* ERROR: Scalekit or the app could not be reached.
* SKIP: nothing configured that this check could observe.

A portal link is a bearer secret: findings show its host and path shape only.

Options (``checks.admin-portal.options``): see :class:`Options`.
"""

from __future__ import annotations

from scim_readiness.api import (
    CheckInfo,
    CheckOptions,
    FindingCode,
    Need,
    deferred,
    option,
)


class Options(CheckOptions):
    app_timeout_s: float = option(
        default=10.0, description="budget of each request to the app's link endpoint (s)", ge=0.1
    )
    organization_path: str = option(
        default="organization_id",
        description="where the app's portal-link answer names the organisation",
    )


_DOCS = "https://docs.scalekit.com/guides/admin-portal/"
_EMBED_DOCS = "https://docs.scalekit.com/guides/admin-portal/#embed-the-admin-portal"
_WHY_LINKS_MATTER = (
    "Anyone holding a portal link can change the organisation's SSO and SCIM settings, so "
    "only the organisation's signed-in admins may obtain one."
)

LINK_GENERATED = FindingCode(
    "ADM001",
    "A portal link with directory sync can be generated",
    "Customers' IT admins set up SCIM through the admin portal; if no link can be made for "
    "the organisation, nobody can configure its directory.",
    "Use the client credentials of the environment that owns the organisation, and check "
    "that Scalekit is reachable and the organisation id is right.",
    _DOCS,
)
LINK_HTTPS = FindingCode(
    "ADM002",
    "The portal link uses HTTPS",
    "The link is a credential; over plain HTTP anyone on the path can read it.",
    "Serve the portal (custom domain) over HTTPS only.",
    _DOCS,
)
LINK_DOMAIN = FindingCode(
    "ADM003",
    "The portal link is on the expected domain",
    "Admins see a foreign domain in the browser and a page embedded from it may be blocked; "
    "the custom domain is what you announced to customers.",
    "Finish the custom domain setup (CNAME verified) in the Scalekit dashboard, or set "
    "admin_portal.expected_domain to the domain you use.",
    _DOCS,
)
LINK_LIFETIME = FindingCode(
    "ADM004",
    "The portal link is short-lived",
    "Long-lived links are credentials that outlive the page view they were made for.",
    "Generate the link per page view; or raise admin_portal.max_link_lifetime_s if a longer "
    "lifetime is intended.",
    _EMBED_DOCS,
)
FRAMING = FindingCode(
    "ADM005",
    "The portal allows framing by the app's origin",
    "Browsers block an embedded admin portal whose frame-ancestors do not admit the app, so "
    "directory admins cannot configure SCIM from inside the app.",
    "Add the app's origin to the allowed redirect/callback URLs of the Scalekit environment "
    "(Dashboard → Settings), and set admin_portal.embedding_origin to it.",
    _EMBED_DOCS,
)
ENDPOINT_ASKED = FindingCode(
    "ADM006",
    "The app's portal-link endpoint can be asked",
    "An app that embeds the portal hands out links from its own endpoint; if that endpoint "
    "cannot be checked, nobody knows whether it skips authentication.",
    "Set admin_portal.app_link_endpoint (url, headers of a signed-in admin) to the app's own "
    "endpoint that returns the portal link, and make sure the app is running.",
    _EMBED_DOCS,
)
REFUSES_ANONYMOUS = FindingCode(
    "ADM007",
    "The app's portal-link endpoint refuses an unauthenticated caller",
    _WHY_LINKS_MATTER,
    "Put the endpoint behind the app's authentication and check that the caller is an admin "
    "of the organisation before generating a link.",
    _EMBED_DOCS,
)
REFUSES_WRONG_TOKEN = FindingCode(
    "ADM008",
    "The app's portal-link endpoint refuses a caller with a wrong token",
    _WHY_LINKS_MATTER,
    "Verify the caller's credential (not only its presence) before generating a link.",
    _EMBED_DOCS,
)
RIGHT_ORGANIZATION = FindingCode(
    "ADM009",
    "The app gives its signed-in admin an HTTPS link for the right organisation",
    _WHY_LINKS_MATTER + " A link for the wrong organisation lets one customer's admin "
    "reconfigure another customer's SCIM.",
    "Derive the organisation from the signed-in user's tenant, never from a request "
    "parameter alone, and return its id next to the link.",
    _EMBED_DOCS,
)
ATTESTED = FindingCode(
    "ADM010",
    "What no API can show (branding) is attested",
    "No API shows the portal's branding, so someone must look at it and vouch for it; a "
    "readiness report never passes it on nobody's word.",
    "Check the item in the Scalekit dashboard and add {item, who, when, what} to "
    "admin_portal.attestations.",
    _DOCS,
)

CHECK = CheckInfo(
    id="admin-portal",
    title="Admin portal configuration",
    checklist_item=8,
    options=Options,
    needs=(Need.SCALEKIT,),
    mutates=False,
    docs_url=_DOCS,
    description=(
        "portal link with directory sync: HTTPS, expected domain, short-lived, frameable by the "
        "app's origin; the app's own portal-link endpoint refuses anonymous callers; branding "
        "attested"
    ),
    codes=(
        LINK_GENERATED,
        LINK_HTTPS,
        LINK_DOMAIN,
        LINK_LIFETIME,
        FRAMING,
        ENDPOINT_ASKED,
        REFUSES_ANONYMOUS,
        REFUSES_WRONG_TOKEN,
        RIGHT_ORGANIZATION,
        ATTESTED,
    ),
)

run = deferred(f"{__name__}.check", "run")
