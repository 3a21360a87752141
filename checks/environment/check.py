"""The body of `environment`: see the package's docstring for what it checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scim_readiness.api import (
    FindingRecorder,
    ScalekitAuthError,
    ScalekitError,
    Severity,
    Status,
)
from scim_readiness.config import Expect
from scim_readiness.environment_url import (
    Problem,
    UrlClass,
    classify_environment_url,
    client_id_problems,
    environment_url_problems,
    secret_problems,
    webhook_secret_problems,
)
from scim_readiness.plugin.target import (
    Setting,
    TargetUnavailable,
    environment_settings,
    epoch_seconds,
    find_directory,
    find_organization,
)

from . import _DIRECTORY_DOCS, Options

if TYPE_CHECKING:
    from scim_readiness.api import CheckContext
    from scim_readiness.config import Expect, ScalekitSection

_DAY = 86_400.0


async def run(ctx: CheckContext) -> None:
    # Options are checked before anything is observed, so a typo is one clear message.
    options = Options.of(ctx)
    settings = environment_settings(ctx.config)
    client_id, client_secret, webhook_secret = _CREDENTIAL_RULES
    usable = _check_url(ctx.findings, settings["url"], ctx.config.scalekit.expect)
    usable = _check_credential(ctx.findings, settings["client_id"], client_id) and usable
    usable = _check_credential(ctx.findings, settings["client_secret"], client_secret) and usable
    _check_credential(ctx.findings, settings["webhook_secret"], webhook_secret)
    if not usable:
        ctx.findings.skipped(
            "Client-credentials exchange not attempted",
            observed="the variables above are missing or malformed",
            why="Using malformed credentials would only repeat the problem less clearly.",
            code="ENV006",
        )
        return
    gateway = await _connect(ctx, settings)
    if gateway is None:
        return
    org = await _check_organization(ctx, gateway)
    if org is not None:
        await _check_directory(ctx, gateway, str(org.id), options)


# -- variables --------------------------------------------------------------------------------


def _missing(findings: FindingRecorder, setting: Setting, what: str, code: str) -> None:
    findings.failed(
        f"{setting.variable} is not set",
        expected=what,
        observed=f"{setting.where} is set",
        fix=f"Set {setting.config_key} in the config (as a ${{ENV}} reference) or export "
        f"{setting.variable}.",
        code=code,
    )


def _problems_text(problems: list[Problem]) -> str:
    return "; ".join(p.message for p in problems)


def _check_url(findings: FindingRecorder, setting: Setting, expect: Expect) -> bool:
    """Judge the environment URL's form, then its class against ``expect``; True when it is
    present and well-formed enough to use."""
    if setting.value is None:
        _missing(findings, setting, "https://<your-environment>.scalekit.com", "ENV001")
        return False
    if not _judge_url_form(findings, setting, setting.value):
        return False
    _judge_url_class(findings, setting.value, expect)
    return True


def _judge_url_form(findings: FindingRecorder, setting: Setting, url: str) -> bool:
    """ENV001: FAIL on a blocking problem (then False), WARN on a trailing slash, else PASS."""
    problems = environment_url_problems(url)
    blocking = [p for p in problems if p.blocking]
    if blocking:
        findings.failed(
            f"{setting.variable} is malformed",
            expected="https://<host>[:port] with no path",
            observed=f"{_without_credentials(url.strip())!r} {_problems_text(blocking)}",
            why="The SDK appends /oauth/token to the value as given; anything else breaks "
            "the token exchange or sends credentials to the wrong place.",
            fix="Copy the environment URL from Dashboard → Developers → API credentials.",
            code="ENV001",
        )
        return False
    if problems:
        findings.warned(
            f"{setting.variable} has a trailing slash",
            expected="https://<host>[:port]",
            observed=f"{url!r} {_problems_text(problems)}",
            fix="Remove the trailing slash.",
            code="ENV001",
        )
    else:
        findings.passed(
            f"{setting.variable} is set and well-formed",
            observed=f"{url} (from {setting.where})",
            code="ENV001",
        )
    return True


def _judge_url_class(findings: FindingRecorder, url: str, expect: Expect) -> None:
    """ENV002: the URL's class (production, development, local) against ``expect``."""

    verdict = classify_environment_url(url)
    observed = f"{verdict.url_class} environment: {verdict.reason}"
    title_ok = f"Environment URL is a {verdict.url_class} environment, as expected"
    if expect is Expect.PRODUCTION:
        if verdict.url_class is UrlClass.PRODUCTION:
            findings.passed(title_ok, expected="production", observed=observed, code="ENV002")
            return
        findings.failed(
            "Environment URL is not a production environment",
            expected="production (https://<name>.scalekit.com or your custom domain)",
            observed=observed,
            why="Development environments have their own users, organisations and "
            "credentials; a production app pointed at one provisions nobody real.",
            fix="Use the production environment's URL and credentials (Dashboard → switch "
            "to Production → Developers → API credentials).",
            severity=Severity.CRITICAL,
            code="ENV002",
        )
    elif expect is Expect.DEVELOPMENT:
        if verdict.url_class in (UrlClass.DEVELOPMENT, UrlClass.LOCAL, UrlClass.PRIVATE):
            findings.passed(title_ok, expected="development", observed=observed, code="ENV002")
            return
        findings.warned(
            "Environment URL is a production environment, development was expected",
            expected="development",
            observed=observed,
            why="Tests against production touch real customers' directories, so this run "
            "is guarded as production whatever expect says: the checks that change data "
            "need --yes (or checks.allow_mutation), and nothing signed goes over http://.",
            fix="Point at the development environment, or set scalekit.expect: production.",
            code="ENV002",
        )
    elif verdict.url_class in (UrlClass.LOCAL, UrlClass.PRIVATE):
        findings.warned(
            "Environment URL is a local or private address, staging was expected",
            expected="a hosted Scalekit environment",
            observed=observed,
            code="ENV002",
        )
    else:
        findings.passed(
            f"Environment URL is a hosted {verdict.url_class} environment",
            expected="staging",
            observed=observed,
            code="ENV002",
        )


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

    code: str
    problems: Callable[[str], list[Problem]]
    expected: str
    fix: str
    when_missing: str | None  # what is expected in its place; None: optional, no finding
    secret: bool = True
    malformed: str = "is malformed"  # the title's ending when the value has problems
    good: str = "is set and well-formed"  # the title's ending when it has none


#: The rules for the client id, the client secret and the webhook secret.
_CREDENTIAL_RULES = (
    _CredentialRule(
        "ENV003",
        client_id_problems,
        expected="skc_<digits>",
        fix="Copy the client id from Dashboard → Developers → API credentials.",
        when_missing="skc_<digits>",
        secret=False,
    ),
    _CredentialRule(
        "ENV004",
        secret_problems,
        expected="the client secret generated in the dashboard",
        fix="Generate a client secret (Dashboard → Developers → API credentials) and pass "
        "it through a secret store, never in the config file itself.",
        when_missing="the environment's client secret",
        malformed="is not a real secret",
        good="is set",
    ),
    _CredentialRule(
        "ENV005",
        webhook_secret_problems,
        expected="whsec_<base64 key>",
        fix="Copy the signing secret of the webhook endpoint from the Scalekit dashboard.",
        when_missing=None,  # the webhook checks say what a missing secret means
        good="is well-formed",
    ),
)


def _check_credential(findings: FindingRecorder, setting: Setting, rule: _CredentialRule) -> bool:
    """Judge one credential by ``rule``; True when it is present and well-formed."""
    if setting.value is None:
        if rule.when_missing is not None:
            _missing(findings, setting, rule.when_missing, rule.code)
        return False
    problems = rule.problems(setting.value)
    if problems:
        shown = f"the value from {setting.where}" if rule.secret else repr(setting.value.strip())
        findings.failed(
            f"{setting.variable} {rule.malformed}",
            expected=rule.expected,
            observed=f"{shown} {_problems_text(problems)}",
            fix=rule.fix,
            code=rule.code,
        )
        return False
    findings.passed(
        f"{setting.variable} {rule.good}",
        observed=f"from {setting.where} (value not shown)"
        if rule.secret
        else f"{setting.value} (from {setting.where})",
        code=rule.code,
    )
    return True


# -- using the credentials --------------------------------------------------------------------


async def _connect(ctx: CheckContext, settings: dict[str, Setting]) -> Any:
    """The run's gateway (its credentials are the config's, wherever the loader found them),
    or None when the exchange failed (recorded)."""
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
            code="ENV006",
        )
        return None
    except ScalekitError as exc:
        ctx.findings.errored(
            "Scalekit environment could not be reached",
            expected="the token endpoint answers",
            observed=exc.message if host in exc.message else f"{host}: {exc.message}",
            fix="Check the URL, DNS, firewall and proxy settings, then run again.",
            code="ENV006",
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
        code="ENV006",
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
    """The configured organisation, judged (readable, its external id, dir_sync); None when
    it could not be read (recorded)."""
    section = ctx.config.scalekit
    try:
        org = await find_organization(ctx.config.scalekit, gateway)
    except TargetUnavailable as exc:
        if section.organization_id or section.organization_external_id:
            ctx.findings.failed(
                "Configured organisation is not readable",
                expected="the organisation exists in this environment",
                observed=exc.reason,
                why=exc.why,
                fix="Use the organisation id (or external id) from this environment's dashboard.",
                code="ENV007",
            )
        else:
            ctx.findings.skipped(
                "Organisation not checked",
                observed=exc.reason,
                why=exc.why,
                fix="Set scalekit.organization_id or scalekit.organization_external_id.",
                code="ENV007",
            )
        return None
    except ScalekitError as exc:
        ctx.findings.errored("Organisation could not be read", observed=exc.message, code="ENV007")
        return None
    _judge_organization(ctx.findings, section, org)
    _judge_dir_sync(ctx.findings, org)
    return org


def _judge_organization(findings: FindingRecorder, section: ScalekitSection, org: Any) -> None:
    """ENV007 PASS (read, and how), then ENV008 when both an id and an external id are
    configured and the organisation's external id is another."""
    name = getattr(org, "display_name", "") or ""
    external = getattr(org, "external_id", "") or ""
    how = (
        f"by id {section.organization_id}"
        if section.organization_id
        else f"by external id {section.organization_external_id!r}"
    )
    findings.passed(
        "Configured organisation is readable",
        observed=f"{org.id} {name!r} (external id {external or 'none'}) read {how}",
        code="ENV007",
    )
    if (
        section.organization_id
        and section.organization_external_id
        and external != section.organization_external_id
    ):
        findings.failed(
            "Organisation's external id differs from the configured one",
            expected=section.organization_external_id,
            observed=external or "(none)",
            why="The external id is how the app finds its tenant for the organisation.",
            fix="Set the organisation's external id to the app's tenant id, or fix the config.",
            code="ENV008",
        )


def _judge_dir_sync(findings: FindingRecorder, org: Any) -> None:
    enabled = _feature_enabled(org, "dir_sync")
    if enabled:
        findings.passed(
            "Directory sync is enabled for the organisation", observed="dir_sync on", code="ENV009"
        )
        return
    findings.failed(
        "Directory sync is not enabled for the organisation",
        expected="feature dir_sync enabled",
        observed="dir_sync " + ("disabled" if enabled is False else "not listed"),
        why="Without directory sync no SCIM changes reach the app.",
        fix="Enable Directory Sync for the organisation (dashboard → Organizations → "
        "Features, or the admin portal).",
        docs_url=_DIRECTORY_DOCS,
        code="ENV009",
    )


def _secret_field(secret: Any, name: str) -> Any:
    return secret.get(name) if isinstance(secret, dict) else getattr(secret, name, None)


def _status_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return str(name if isinstance(name, str) else value).upper().rsplit(".", 1)[-1]


def _suffix(secret: Any) -> str:
    raw = str(_secret_field(secret, "secret_suffix") or _secret_field(secret, "suffix") or "")
    return f"…{raw[-4:]}" if raw else "(no suffix)"


async def _check_directory(ctx: CheckContext, gateway: Any, org_id: str, options: Options) -> None:
    """The organisation's directory (ENV010), its active secrets' expiry (ENV011) and their
    last use (ENV012)."""
    try:
        directory = await find_directory(ctx.config.scalekit, gateway, org_id)
    except TargetUnavailable as exc:
        ctx.findings.failed(
            "No SCIM directory to provision from",
            expected="a directory for the organisation",
            observed=exc.reason,
            why=exc.why,
            fix="Create the directory in the admin portal (or dashboard) and connect the IdP.",
            docs_url=_DIRECTORY_DOCS,
            code="ENV010",
        )
        return
    except ScalekitError as exc:
        ctx.findings.errored("Directory could not be read", observed=exc.message, code="ENV010")
        return
    _judge_directory_enabled(ctx.findings, directory)
    secrets = list(getattr(directory, "secrets", None) or ())
    active = [s for s in secrets if _status_name(_secret_field(s, "status")) == "ACTIVE"]
    if not active:
        ctx.findings.failed(
            "Directory has no active SCIM secret",
            expected="an ACTIVE bearer token for the IdP",
            observed=f"{len(secrets)} secret(s), none active",
            why="The IdP cannot authenticate its SCIM requests; nothing is provisioned.",
            fix="Generate a SCIM token in the admin portal and paste it into the IdP.",
            docs_url=_DIRECTORY_DOCS,
            code="ENV011",
        )
        return
    now = ctx.clock.now()
    _judge_secret_expiry(ctx.findings, active, now, options)
    _judge_secret_use(ctx.findings, active, now, options.secret_unused_warn_days)


def _judge_directory_enabled(findings: FindingRecorder, directory: Any) -> None:
    label = f"{directory.id} {getattr(directory, 'name', '')!r}".strip()
    if getattr(directory, "enabled", False):
        findings.passed("Directory exists and is enabled", observed=label, code="ENV010")
        return
    findings.failed(
        "Directory is disabled",
        expected="enabled",
        observed=f"{label} is disabled",
        why="A disabled directory accepts no SCIM requests and sends no events.",
        fix="Enable the directory in the admin portal or dashboard.",
        docs_url=_DIRECTORY_DOCS,
        code="ENV010",
    )


def _judge_secret_expiry(
    findings: FindingRecorder, active: list[Any], now: float, options: Options
) -> None:
    """ENV011: the latest expiry among the active secrets (one that never expires is
    enough) against the warn and fail thresholds."""
    warn_days = options.secret_expiry_warn_days
    fail_days = options.secret_expiry_fail_days
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
        findings.passed(
            "Directory has an active SCIM secret that is not about to expire",
            expected=f"valid for more than {warn_days:g} days",
            observed=observed,
            code="ENV011",
        )
        return
    days_left = (latest_expiry - now) / _DAY
    # Like webhook-endpoint's certificate: time to plan first (WARN), then an emergency.
    findings.record(
        Status.FAIL if days_left <= fail_days else Status.WARN,
        "Directory's SCIM secret has expired"
        if days_left <= 0
        else f"Directory's SCIM secret expires in {days_left:.1f} days",
        expected=f"valid for more than {warn_days:g} days (FAIL within {fail_days:g})",
        observed=observed,
        why="When the token expires the IdP's SCIM calls are refused and provisioning and "
        "deprovisioning silently stop.",
        fix="Generate a new SCIM token, update it in the IdP, then revoke the old one.",
        docs_url=_DIRECTORY_DOCS,
        code="ENV011",
    )


def _judge_secret_use(
    findings: FindingRecorder, active: list[Any], now: float, unused_days: float
) -> None:
    """ENV012: the most recent use of any active secret: never (WARN), too long ago (WARN),
    recently (PASS)."""
    used = [
        (t, s)
        for s in active
        if (t := epoch_seconds(_secret_field(s, "last_used_time"))) is not None
    ]
    if not used:
        findings.warned(
            "Directory's SCIM secret has never been used",
            expected="an IdP has called the SCIM endpoint",
            observed=f"no last-used time on {', '.join(_suffix(s) for s in active)}",
            why="No IdP is connected yet, so no user will be provisioned or deprovisioned.",
            fix="Configure SCIM provisioning in the IdP with the directory's endpoint and token, "
            "and push a test user.",
            docs_url=_DIRECTORY_DOCS,
            code="ENV012",
        )
        return
    last, secret = max(used, key=lambda pair: pair[0])
    ago_days = (now - last) / _DAY
    if ago_days <= unused_days:
        findings.passed(
            "Directory's SCIM secret is in use by an IdP",
            observed=f"{_suffix(secret)} last used {_ago(now - last)} ago",
            code="ENV012",
        )
        return
    findings.warned(
        "Directory's SCIM secret has not been used recently",
        expected=f"used within {unused_days:g} days",
        observed=f"{_suffix(secret)} last used {ago_days:.0f} days ago",
        why="The IdP may have lost its connection; changes in the IdP no longer arrive.",
        fix="Check the IdP's provisioning log for errors.",
        code="ENV012",
    )


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * _DAY:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / _DAY:.0f} days"
