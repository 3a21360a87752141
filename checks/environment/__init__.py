"""`environment`: Production environment configuration (checklist item 1).

Looks at the variables first (present, well-formed, not placeholders), then what the URL is
(development, local, production) against ``scalekit.expect``, then uses them: the
client-credentials exchange, the organisation (by id or external id), its ``dir_sync``
feature, and its SCIM directory (enabled, an ACTIVE secret not about to expire, recently used
by an IdP).

Statuses:

* PASS: everything present, well-formed, of the expected class, and working.
* WARN: the directory's secret was never used (no IdP connected yet) or not for a long time,
  or its last active secret expires within ``secret_expiry_warn_days`` (default 14); a
  trailing slash, a production URL where development was expected, no organisation to look
  at.
* FAIL: a variable is missing or malformed or a placeholder; a development or local URL when
  production is expected; credentials refused (with the server's reason); the organisation
  does not exist or lacks directory sync; the directory is missing, disabled, or its last
  active secret is expired or expires within ``secret_expiry_fail_days`` (default 7).
* ERROR: Scalekit could not be reached (the host and the cause are reported).

Secrets are never shown: at most the client id and the last four characters of a directory
secret's suffix.

Options (``checks.environment.options``): see :class:`Options`.
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
    secret_expiry_warn_days: float = option(
        default=14, description="warn when the SCIM secret expires within this many days", ge=0
    )
    secret_expiry_fail_days: float = option(
        default=7, description="fail when the SCIM secret expires within this many days", ge=0
    )
    secret_unused_warn_days: float = option(
        default=30, description="warn when the SCIM secret was unused this many days", ge=0
    )


_DIRECTORY_DOCS = "https://docs.scalekit.com/directory/guides/user-provisioning-basics/"
_CREDENTIALS_DOCS = "https://docs.scalekit.com/guides/go-live-checklist/"

CODES = (
    FindingCode(
        "ENV001",
        "The environment URL is set and well-formed",
        why="The SDK appends /oauth/token to the environment URL as given; a path, a query or "
        "credentials in it break the token exchange or send credentials to the wrong place.",
        fix="Copy the environment URL (https://<host>[:port], no path) from Dashboard → "
        "Developers → API credentials.",
        docs_url=_CREDENTIALS_DOCS,
    ),
    FindingCode(
        "ENV002",
        "The environment URL is of the class scalekit.expect names (production, development)",
        why="Development environments have their own users, organisations and credentials; a "
        "production app pointed at one provisions nobody real.",
        fix="Use the URL and credentials of the environment you mean, or correct scalekit.expect.",
        docs_url=_CREDENTIALS_DOCS,
    ),
    FindingCode(
        "ENV003",
        "The client id is set and well-formed (skc_<digits>)",
        why="Without a valid client id no API call and no SDK client in the app can authenticate.",
        fix="Copy the client id from Dashboard → Developers → API credentials.",
        docs_url=_CREDENTIALS_DOCS,
    ),
    FindingCode(
        "ENV004",
        "The client secret is set and is not a placeholder",
        why="A missing or placeholder secret makes every API call fail.",
        fix="Generate a client secret (Dashboard → Developers → API credentials) and pass it "
        "through a secret store, never in the config file itself.",
        docs_url=_CREDENTIALS_DOCS,
    ),
    FindingCode(
        "ENV005",
        "The webhook signing secret, when set, is well-formed (whsec_<base64 key>)",
        why="A malformed secret cannot verify any delivery: the app refuses genuine events or "
        "skips verification.",
        fix="Copy the signing secret of the webhook endpoint from the Scalekit dashboard.",
        docs_url=_CREDENTIALS_DOCS,
    ),
    FindingCode(
        "ENV006",
        "The client-credentials exchange issues an access token",
        why="Every API call and the app's own SDK client depend on this exchange.",
        fix="Check that the client id and secret come from the same environment as the URL, "
        "and that the environment is reachable; rotate the secret if it was revoked.",
        docs_url=_CREDENTIALS_DOCS,
    ),
    FindingCode(
        "ENV007",
        "The configured organisation is readable in this environment",
        why="The organisation is whose directory provisions the app; a wrong id points every "
        "check at nothing.",
        fix="Set scalekit.organization_id (or organization_external_id) to the organisation "
        "from this environment's dashboard.",
        docs_url=_DIRECTORY_DOCS,
    ),
    FindingCode(
        "ENV008",
        "The organisation's external id is the configured one",
        why="The external id is how the app finds its tenant for the organisation.",
        fix="Set the organisation's external id to the app's tenant id, or fix the config.",
        docs_url=_DIRECTORY_DOCS,
    ),
    FindingCode(
        "ENV009",
        "Directory sync (dir_sync) is enabled for the organisation",
        why="Without directory sync no SCIM changes reach the app.",
        fix="Enable Directory Sync for the organisation (dashboard → Organizations → Features, "
        "or the admin portal).",
        docs_url=_DIRECTORY_DOCS,
    ),
    FindingCode(
        "ENV010",
        "The organisation has a SCIM directory, and it is enabled",
        why="A missing or disabled directory accepts no SCIM requests and sends no events.",
        fix="Create the directory in the admin portal (or dashboard), enable it and connect "
        "the IdP.",
        docs_url=_DIRECTORY_DOCS,
    ),
    FindingCode(
        "ENV011",
        "The directory has an active SCIM secret that is not about to expire",
        why="When the token expires the IdP's SCIM calls are refused and provisioning and "
        "deprovisioning silently stop.",
        fix="Generate a new SCIM token, update it in the IdP, then revoke the old one.",
        docs_url=_DIRECTORY_DOCS,
    ),
    FindingCode(
        "ENV012",
        "The directory's SCIM secret is in recent use by an IdP",
        why="A secret never or long unused means no IdP is (still) connected: changes in the "
        "IdP do not arrive.",
        fix="Configure SCIM provisioning in the IdP with the directory's endpoint and token, "
        "and check its provisioning log.",
        docs_url=_DIRECTORY_DOCS,
    ),
)

CHECK = CheckInfo(
    id="environment",
    title="Production environment configuration",
    checklist_item=1,
    options=Options,
    needs=(Need.SCALEKIT,),
    mutates=False,
    docs_url="https://docs.scalekit.com/guides/go-live-checklist/",
    description=(
        "variables present and well-formed; URL class vs expect; client credentials work; "
        "organisation readable with dir_sync; directory enabled with a live, used SCIM secret"
    ),
    codes=CODES,
)

run = deferred(f"{__name__}.check", "run")
