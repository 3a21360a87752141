"""`environment`: Production environment configuration (checklist item 1).

Looks at the variables first (present, well-formed, not placeholders), then what the URL is
(development, local, production) against ``scalekit.expect``, then uses them: the
client-credentials exchange, the organisation (by id or external id), its ``dir_sync``
feature, and its SCIM directory (enabled, an ACTIVE secret not about to expire, recently used
by an IdP).

Statuses:

* PASS: everything present, well-formed, of the expected class, and working.
* WARN: the directory's secret was never used (no IdP connected yet) or not for a long time,
  a trailing slash, a production URL where development was expected, no organisation to look
  at.
* FAIL: a variable is missing or malformed or a placeholder; a development or local URL when
  production is expected; credentials refused (with the server's reason); the organisation
  does not exist or lacks directory sync; the directory is missing, disabled, or its only
  active secret is expired or expires within option ``secret_expiry_warn_days``.
* ERROR: Scalekit could not be reached (the host and the cause are reported).

Secrets are never shown: at most the client id and the last four characters of a directory
secret's suffix.

Options (``checks.environment.options``): see :class:`Options`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scim_readiness.api import (
    CheckInfo,
    CheckOptions,
    Need,
    ScalekitAuthError,
    ScalekitError,
    Severity,
    option,
)

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.environment_url import Problem
    from scim_readiness.plugin.target import Setting


class Options(CheckOptions):
    secret_expiry_warn_days: float = option(
        default=14, description="fail when the SCIM secret expires within this many days", ge=0
    )
    secret_unused_warn_days: float = option(
        default=30, description="warn when the SCIM secret was unused this many days", ge=0
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
)

_DAY = 86_400.0
_DIRECTORY_DOCS = "https://docs.scalekit.com/directory/guides/user-provisioning-basics/"


async def run(ctx: CheckContext) -> None:
    from scim_readiness.plugin.target import environment_settings

    # Options are checked before anything is observed, so a typo is one clear message.
    Options.of(ctx)
    settings = environment_settings(ctx)
    client_id, client_secret, webhook_secret = _credential_rules()
    usable = _check_url(ctx, settings["url"])
    usable = _check_credential(ctx, settings["client_id"], client_id) and usable
    usable = _check_credential(ctx, settings["client_secret"], client_secret) and usable
    _check_credential(ctx, settings["webhook_secret"], webhook_secret)
    if not usable:
        ctx.findings.skipped(
            "Client-credentials exchange not attempted",
            observed="the variables above are missing or malformed",
            why="Using malformed credentials would only repeat the problem less clearly.",
        )
        return
    gateway = await _connect(ctx, settings)
    if gateway is None:
        return
    org = await _check_organization(ctx, gateway)
    if org is not None:
        await _check_directory(ctx, gateway, str(org.id))


# -- variables --------------------------------------------------------------------------------


def _missing(ctx: CheckContext, setting: Setting, what: str) -> None:
    ctx.findings.failed(
        f"{setting.variable} is not set",
        expected=what,
        observed=f"{setting.where} is set",
        fix=f"Set {setting.config_key} in the config (as a ${{ENV}} reference) or export "
        f"{setting.variable}.",
    )


def _problems_text(problems: list[Problem]) -> str:
    return "; ".join(p.message for p in problems)


def _check_url(ctx: CheckContext, setting: Setting) -> bool:
    from scim_readiness.environment_url import (
        UrlClass,
        classify_environment_url,
        environment_url_problems,
    )

    if setting.value is None:
        _missing(ctx, setting, "https://<your-environment>.scalekit.com")
        return False
    url = setting.value
    problems = environment_url_problems(url)
    blocking = [p for p in problems if p.blocking]
    if blocking:
        ctx.findings.failed(
            f"{setting.variable} is malformed",
            expected="https://<host>[:port] with no path",
            observed=f"{_without_credentials(url.strip())!r} {_problems_text(blocking)}",
            why="The SDK appends /oauth/token to the value as given; anything else breaks "
            "the token exchange or sends credentials to the wrong place.",
            fix="Copy the environment URL from Dashboard → Developers → API credentials.",
        )
        return False
    if problems:
        ctx.findings.warned(
            f"{setting.variable} has a trailing slash",
            expected="https://<host>[:port]",
            observed=f"{url!r} {_problems_text(problems)}",
            fix="Remove the trailing slash.",
        )
    else:
        ctx.findings.passed(
            f"{setting.variable} is set and well-formed", observed=f"{url} (from {setting.where})"
        )

    from scim_readiness.config import Expect

    verdict = classify_environment_url(url)
    expect = ctx.config.scalekit.expect
    observed = f"{verdict.url_class} environment: {verdict.reason}"
    title_ok = f"Environment URL is a {verdict.url_class} environment, as expected"
    if expect is Expect.PRODUCTION:
        if verdict.url_class is UrlClass.PRODUCTION:
            ctx.findings.passed(title_ok, expected="production", observed=observed)
        else:
            ctx.findings.failed(
                "Environment URL is not a production environment",
                expected="production (https://<name>.scalekit.com or your custom domain)",
                observed=observed,
                why="Development environments have their own users, organisations and "
                "credentials; a production app pointed at one provisions nobody real.",
                fix="Use the production environment's URL and credentials (Dashboard → switch "
                "to Production → Developers → API credentials).",
                severity=Severity.CRITICAL,
            )
    elif expect is Expect.DEVELOPMENT:
        if verdict.url_class in (UrlClass.DEVELOPMENT, UrlClass.LOCAL, UrlClass.PRIVATE):
            ctx.findings.passed(title_ok, expected="development", observed=observed)
        else:
            ctx.findings.warned(
                "Environment URL is a production environment, development was expected",
                expected="development",
                observed=observed,
                why="Tests against production touch real customers' directories, so this run "
                "is guarded as production whatever expect says: the checks that change data "
                "need --yes (or checks.allow_mutation), and nothing signed goes over http://.",
                fix="Point at the development environment, or set scalekit.expect: production.",
            )
    elif verdict.url_class in (UrlClass.LOCAL, UrlClass.PRIVATE):
        ctx.findings.warned(
            "Environment URL is a local or private address, staging was expected",
            expected="a hosted Scalekit environment",
            observed=observed,
        )
    else:
        ctx.findings.passed(
            f"Environment URL is a hosted {verdict.url_class} environment",
            expected="staging",
            observed=observed,
        )
    return True


def _without_credentials(url: str) -> str:
    """The URL with any ``user:password@`` replaced, so a finding never carries it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{tail}"


@dataclass(frozen=True, slots=True)
class _CredentialRule:
    """How one credential is judged: FAIL when it is missing (unless optional) or its value
    has problems, else PASS. A secret's value is never shown, only where it came from."""

    problems: Callable[[str], list[Problem]]
    expected: str
    fix: str
    when_missing: str | None  # what is expected in its place; None: optional, no finding
    secret: bool = True
    malformed: str = "is malformed"  # the title's ending when the value has problems
    good: str = "is set and well-formed"  # the title's ending when it has none


def _credential_rules() -> tuple[_CredentialRule, _CredentialRule, _CredentialRule]:
    """The rules for the client id, the client secret and the webhook secret."""
    from scim_readiness.environment_url import (
        client_id_problems,
        secret_problems,
        webhook_secret_problems,
    )

    client_id = _CredentialRule(
        client_id_problems,
        expected="skc_<digits>",
        fix="Copy the client id from Dashboard → Developers → API credentials.",
        when_missing="skc_<digits>",
        secret=False,
    )
    client_secret = _CredentialRule(
        secret_problems,
        expected="the client secret generated in the dashboard",
        fix="Generate a client secret (Dashboard → Developers → API credentials) and pass "
        "it through a secret store, never in the config file itself.",
        when_missing="the environment's client secret",
        malformed="is not a real secret",
        good="is set",
    )
    webhook_secret = _CredentialRule(
        webhook_secret_problems,
        expected="whsec_<base64 key>",
        fix="Copy the signing secret of the webhook endpoint from the Scalekit dashboard.",
        when_missing=None,  # the webhook checks say what a missing secret means
        good="is well-formed",
    )
    return client_id, client_secret, webhook_secret


def _check_credential(ctx: CheckContext, setting: Setting, rule: _CredentialRule) -> bool:
    """Judge one credential by ``rule``; True when it is present and well-formed."""
    if setting.value is None:
        if rule.when_missing is not None:
            _missing(ctx, setting, rule.when_missing)
        return False
    problems = rule.problems(setting.value)
    if problems:
        shown = f"the value from {setting.where}" if rule.secret else repr(setting.value.strip())
        ctx.findings.failed(
            f"{setting.variable} {rule.malformed}",
            expected=rule.expected,
            observed=f"{shown} {_problems_text(problems)}",
            fix=rule.fix,
        )
        return False
    ctx.findings.passed(
        f"{setting.variable} {rule.good}",
        observed=f"from {setting.where} (value not shown)"
        if rule.secret
        else f"{setting.value} (from {setting.where})",
    )
    return True


# -- using the credentials --------------------------------------------------------------------


async def _connect(ctx: CheckContext, settings: dict[str, Setting]) -> Any:
    """The run's gateway (its credentials are the config's, wherever the loader found them),
    or None when the exchange failed (recorded)."""
    from urllib.parse import urlsplit

    url = settings["url"].value or ""
    host = urlsplit(url).netloc or url
    client_id = settings["client_id"].value
    try:
        gateway = await ctx.scalekit()
    except ScalekitAuthError as exc:
        ctx.findings.failed(
            "Client credentials are refused",
            expected="an access token from the client-credentials exchange",
            observed=exc.message if host in exc.message else f"{host}: {exc.message}",
            why="Every API call and the app's own SDK client fail with these credentials.",
            fix=f"Check that client id {client_id} and its secret come from the same "
            "environment as the URL; rotate the secret if it was revoked.",
            severity=Severity.CRITICAL,
        )
        return None
    except ScalekitError as exc:
        ctx.findings.errored(
            "Scalekit environment could not be reached",
            expected="the token endpoint answers",
            observed=exc.message if host in exc.message else f"{host}: {exc.message}",
            fix="Check the URL, DNS, firewall and proxy settings, then run again.",
        )
        return None
    latency = getattr(gateway, "token_latency_s", None)
    observed = f"token issued by {host} for {client_id}"
    if isinstance(latency, int | float):
        observed += f" in {latency * 1000:.0f} ms"
    ctx.findings.passed(
        "Client-credentials exchange succeeds",
        observed=observed,
        evidence={"token_latency_s": round(latency, 3)} if isinstance(latency, float) else {},
    )
    return gateway


def _feature_enabled(org: Any, name: str) -> bool | None:
    """Whether the organisation has ``name`` enabled; None when it does not list it."""
    features = getattr(org, "features", None)
    if isinstance(features, dict):
        value = features.get(name)
        return None if value is None else bool(value)
    settings = getattr(org, "settings", None)
    listed = getattr(settings, "features", None) if settings is not None else features
    for feature in listed or ():
        if getattr(feature, "name", None) == name:
            return bool(getattr(feature, "enabled", False))
    return None


async def _check_organization(ctx: CheckContext, gateway: Any) -> Any:
    from scim_readiness.plugin.target import TargetUnavailable, find_organization

    section = ctx.config.scalekit
    try:
        org = await find_organization(ctx, gateway)
    except TargetUnavailable as exc:
        if section.organization_id or section.organization_external_id:
            ctx.findings.failed(
                "Configured organisation is not readable",
                expected="the organisation exists in this environment",
                observed=exc.reason,
                why=exc.why,
                fix="Use the organisation id (or external id) from this environment's dashboard.",
            )
        else:
            ctx.findings.skipped(
                "Organisation not checked",
                observed=exc.reason,
                why=exc.why,
                fix="Set scalekit.organization_id or scalekit.organization_external_id.",
            )
        return None
    except ScalekitError as exc:
        ctx.findings.errored("Organisation could not be read", observed=exc.message)
        return None

    name = getattr(org, "display_name", "") or ""
    external = getattr(org, "external_id", "") or ""
    how = (
        f"by id {section.organization_id}"
        if section.organization_id
        else f"by external id {section.organization_external_id!r}"
    )
    ctx.findings.passed(
        "Configured organisation is readable",
        observed=f"{org.id} {name!r} (external id {external or 'none'}) read {how}",
    )
    if (
        section.organization_id
        and section.organization_external_id
        and external != section.organization_external_id
    ):
        ctx.findings.failed(
            "Organisation's external id differs from the configured one",
            expected=section.organization_external_id,
            observed=external or "(none)",
            why="The external id is how the app finds its tenant for the organisation.",
            fix="Set the organisation's external id to the app's tenant id, or fix the config.",
        )

    enabled = _feature_enabled(org, "dir_sync")
    if enabled:
        ctx.findings.passed(
            "Directory sync is enabled for the organisation", observed="dir_sync on"
        )
    else:
        ctx.findings.failed(
            "Directory sync is not enabled for the organisation",
            expected="feature dir_sync enabled",
            observed="dir_sync " + ("disabled" if enabled is False else "not listed"),
            why="Without directory sync no SCIM changes reach the app.",
            fix="Enable Directory Sync for the organisation (dashboard → Organizations → "
            "Features, or the admin portal).",
            docs_url=_DIRECTORY_DOCS,
        )
    return org


def _secret_field(secret: Any, name: str) -> Any:
    return secret.get(name) if isinstance(secret, dict) else getattr(secret, name, None)


def _status_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name if isinstance(name, str) else value).upper().rsplit(".", 1)[-1]


def _suffix(secret: Any) -> str:
    raw = str(_secret_field(secret, "secret_suffix") or _secret_field(secret, "suffix") or "")
    return f"…{raw[-4:]}" if raw else "(no suffix)"


async def _check_directory(ctx: CheckContext, gateway: Any, org_id: str) -> None:
    from scim_readiness.plugin.target import TargetUnavailable, epoch_seconds, find_directory

    try:
        directory = await find_directory(ctx, gateway, org_id)
    except TargetUnavailable as exc:
        ctx.findings.failed(
            "No SCIM directory to provision from",
            expected="a directory for the organisation",
            observed=exc.reason,
            why=exc.why,
            fix="Create the directory in the admin portal (or dashboard) and connect the IdP.",
            docs_url=_DIRECTORY_DOCS,
        )
        return
    except ScalekitError as exc:
        ctx.findings.errored("Directory could not be read", observed=exc.message)
        return

    label = f"{directory.id} {getattr(directory, 'name', '')!r}".strip()
    if getattr(directory, "enabled", False):
        ctx.findings.passed("Directory exists and is enabled", observed=label)
    else:
        ctx.findings.failed(
            "Directory is disabled",
            expected="enabled",
            observed=f"{label} is disabled",
            why="A disabled directory accepts no SCIM requests and sends no events.",
            fix="Enable the directory in the admin portal or dashboard.",
            docs_url=_DIRECTORY_DOCS,
        )

    secrets = list(getattr(directory, "secrets", None) or ())
    active = [s for s in secrets if _status_name(_secret_field(s, "status")) == "ACTIVE"]
    now = ctx.clock.now()
    if not active:
        ctx.findings.failed(
            "Directory has no active SCIM secret",
            expected="an ACTIVE bearer token for the IdP",
            observed=f"{len(secrets)} secret(s), none active",
            why="The IdP cannot authenticate its SCIM requests; nothing is provisioned.",
            fix="Generate a SCIM token in the admin portal and paste it into the IdP.",
            docs_url=_DIRECTORY_DOCS,
        )
        return

    warn_days = Options.of(ctx).secret_expiry_warn_days
    described: list[str] = []
    latest_expiry: float | None = 0.0  # None: at least one never expires
    for secret in active:
        expires = epoch_seconds(_secret_field(secret, "expire_time"))
        if expires is None:
            latest_expiry = None
            described.append(f"{_suffix(secret)} never expires")
        else:
            days = (expires - now) / _DAY
            described.append(f"{_suffix(secret)} expires in {days:.1f} days")
            if latest_expiry is not None:
                latest_expiry = max(latest_expiry, expires)
    observed = "; ".join(described)
    if latest_expiry is None or (latest_expiry - now) / _DAY > warn_days:
        ctx.findings.passed(
            "Directory has an active SCIM secret that is not about to expire",
            expected=f"valid for more than {warn_days:g} days",
            observed=observed,
        )
    else:
        days_left = (latest_expiry - now) / _DAY
        ctx.findings.failed(
            "Directory's SCIM secret has expired"
            if days_left <= 0
            else f"Directory's SCIM secret expires in {days_left:.1f} days",
            expected=f"valid for more than {warn_days:g} days",
            observed=observed,
            why="When the token expires the IdP's SCIM calls are refused and provisioning and "
            "deprovisioning silently stop.",
            fix="Generate a new SCIM token, update it in the IdP, then revoke the old one.",
            docs_url=_DIRECTORY_DOCS,
        )

    unused_days = Options.of(ctx).secret_unused_warn_days
    used = [
        (t, s)
        for s in active
        if (t := epoch_seconds(_secret_field(s, "last_used_time"))) is not None
    ]
    if not used:
        ctx.findings.warned(
            "Directory's SCIM secret has never been used",
            expected="an IdP has called the SCIM endpoint",
            observed=f"no last-used time on {', '.join(_suffix(s) for s in active)}",
            why="No IdP is connected yet, so no user will be provisioned or deprovisioned.",
            fix="Configure SCIM provisioning in the IdP with the directory's endpoint and token, "
            "and push a test user.",
            docs_url=_DIRECTORY_DOCS,
        )
        return
    last, secret = max(used, key=lambda pair: pair[0])
    ago_days = (now - last) / _DAY
    if ago_days <= unused_days:
        ctx.findings.passed(
            "Directory's SCIM secret is in use by an IdP",
            observed=f"{_suffix(secret)} last used {_ago(now - last)} ago",
        )
    else:
        ctx.findings.warned(
            "Directory's SCIM secret has not been used recently",
            expected=f"used within {unused_days:g} days",
            observed=f"{_suffix(secret)} last used {ago_days:.0f} days ago",
            why="The IdP may have lost its connection; changes in the IdP no longer arrive.",
            fix="Check the IdP's provisioning log for errors.",
        )


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * _DAY:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / _DAY:.0f} days"
