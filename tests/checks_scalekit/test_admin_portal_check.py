"""`admin-portal` against the emulator's portal and the reference app's link endpoint."""

from __future__ import annotations

import pytest

from checks_scalekit.conftest import StackFactory
from checks_scalekit.stack import (
    EMBEDDING_ORIGIN,
    Stack,
    check,
    finding,
    raw_text,
    result_of,
    run,
    titles,
)
from scim_readiness.config import Config
from scim_readiness.devstack.emulator import default_seed
from scim_readiness.model import CheckResult, Severity, Status


def portal(stack: Stack, config: Config | None = None) -> CheckResult:
    return check(stack, "admin-portal", config)


def links_issued(stack: Stack) -> list[str]:
    return [f"/portal/{token}" for token in stack.emulator.state.portal_links]


def test_clean_setup_passes_without_showing_a_link(stack: Stack) -> None:
    report = run(stack, None, "admin-portal")
    result = result_of(report, "admin-portal")
    assert result.status is Status.PASS, [(f.status, f.title, f.observed) for f in result.findings]
    assert finding(result, "custom domain").observed.startswith(
        f"https://{stack.custom_domain}/portal/"
    )
    assert "frame-ancestors 'self' " + EMBEDDING_ORIGIN in finding(result, "framing").observed
    assert finding(result, "branding").status is Status.ATTESTED
    # Two links were made (the check's own and the app's); neither appears anywhere.
    issued = links_issued(stack)
    assert len(issued) == 2
    text = raw_text(report)
    for path in issued:
        assert path not in text
    assert stack.app.settings.portal_token not in text


def test_app_endpoint_without_authentication_fails(stack_factory: StackFactory) -> None:
    with stack_factory(("portal-link-unauthenticated",)) as stack:
        result = portal(stack)
        issued = links_issued(stack)
    assert result.status is Status.FAIL
    anonymous = finding(result, "does not refuse an unauthenticated caller")
    wrong = finding(result, "does not refuse a caller with a wrong token")
    for failed in (anonymous, wrong):
        assert failed.status is Status.FAIL
        assert failed.severity is Severity.CRITICAL
        assert failed.observed == "HTTP 200, and the body carries a portal link"
    # The leaked links are never repeated in the report.
    assert all(path not in raw_text_of(result) for path in issued)


def raw_text_of(result: CheckResult) -> str:
    return "\n".join(f"{f.title} {f.observed} {f.evidence!r}" for f in result.findings)


def test_csp_without_the_embedding_origin_fails_with_the_header(
    stack_factory: StackFactory,
) -> None:
    with stack_factory(("csp-missing-origin",)) as stack:
        result = portal(stack)
    assert result.status is Status.FAIL
    failed = finding(result, "refuses to be framed")
    assert "Content-Security-Policy: frame-ancestors 'self'" in failed.observed
    assert EMBEDDING_ORIGIN in failed.expected
    assert failed.evidence["content-security-policy"] == ["frame-ancestors 'self'"]


def test_link_on_the_scalekit_domain_when_a_custom_domain_is_expected(
    stack_factory: StackFactory,
) -> None:
    with stack_factory(("portal-on-scalekit-domain",)) as stack:
        result = portal(stack)
        env_host = stack.emulator.env_url.removeprefix("https://")
    assert result.status is Status.FAIL
    failed = finding(result, "not on the expected custom domain")
    assert failed.observed.startswith(f"https://{env_host}/portal/")
    assert "still the Scalekit environment's domain" in failed.observed


def test_without_a_custom_domain_the_environments_domain_is_right(
    stack_factory: StackFactory,
) -> None:
    with stack_factory(("portal-on-scalekit-domain",)) as stack:
        result = portal(stack, stack.config(admin_portal={"expected_domain": None}))
    assert result.status is Status.PASS, titles(result)
    assert finding(result, "environment's domain").status is Status.PASS


def test_long_lived_links_warn(stack_factory: StackFactory) -> None:
    seed = default_seed()
    seed = seed.model_copy(
        update={"portal": seed.portal.model_copy(update={"link_lifetime_s": 7 * 86400.0})}
    )
    with stack_factory(seed=seed) as stack:
        result = portal(stack)
    assert result.status is Status.WARN
    assert "604800 s" in finding(result, "longer than the embedding guidance").observed


def test_missing_attestation_warns_and_never_passes(stack: Stack) -> None:
    config = stack.config(admin_portal={"attestations": []})
    result = portal(stack, config)
    assert result.status is Status.WARN
    missing = finding(result, "branding: no attestation")
    assert missing.status is Status.WARN
    assert not [f for f in result.findings if "branding" in f.title and f.status is Status.PASS]


def test_link_for_another_organisation_fails(stack_factory: StackFactory) -> None:
    # The app lets the caller pick the organisation by a query parameter.
    seed = default_seed()
    other = seed.organizations[0].model_copy(
        update={"id": "org_60219377000000002", "display_name": "Other", "external_id": "t-2"}
    )
    seed = seed.model_copy(update={"organizations": [*seed.organizations, other]})
    with stack_factory(seed=seed) as stack:
        stack.app.settings.tenant_by_org[other.id] = other.external_id
        url = f"{stack.app.portal_link_url}?organization_id={other.id}"
        endpoint = {"url": url, "headers": dict(stack.app.portal_headers)}
        result = portal(stack, stack.config(admin_portal={"app_link_endpoint": endpoint}))
    assert result.status is Status.FAIL
    failed = finding(result, "for another organisation")
    assert failed.severity is Severity.CRITICAL
    assert failed.observed.startswith("org_60219377000000002 (https://")
    assert failed.expected == "org_60219377000000001"


def test_an_organisation_field_holding_a_link_is_not_echoed(stack: Stack) -> None:
    config = stack.config(checks={"admin-portal": {"options": {"organization_path": "location"}}})
    result = portal(stack, config)
    failed = finding(result, "for another organisation")
    for path in links_issued(stack):
        assert path not in failed.observed


def test_unreachable_app_endpoint_is_an_error(stack: Stack) -> None:
    config = stack.config(
        admin_portal={"app_link_endpoint": {"url": "https://127.0.0.1:9/api/admin-portal-link"}}
    )
    result = portal(stack, config)
    assert result.status is Status.ERROR
    assert "127.0.0.1" in finding(result, "could not be reached").observed


def test_without_embedding_origin_and_endpoint_those_parts_skip(stack: Stack) -> None:
    config = stack.config(
        admin_portal={"embedding_origin": None, "app_link_endpoint": None},
    )
    result = portal(stack, config)
    assert finding(result, "framing not checked").status is Status.SKIP
    assert finding(result, "endpoint not checked").status is Status.SKIP
    assert result.status is Status.PASS


@pytest.mark.parametrize(
    "url", ["https://[::1/api", "https://127.0.0.1:99999/api", "ftp://127.0.0.1/api"]
)
def test_a_malformed_endpoint_url_is_an_error_not_a_crash(stack: Stack, url: str) -> None:
    config = stack.config(admin_portal={"app_link_endpoint": {"url": url}})
    result = portal(stack, config)
    error = finding(result, "could not be reached")
    assert error.status is Status.ERROR
    assert "app_link_endpoint.url" in error.observed
    assert "internal error" not in " ".join(titles(result))


def test_a_hung_portal_link_call_is_an_error(stack: Stack) -> None:
    stack.emulator.delays["GeneratePortalLink"] = 30.0
    try:
        config = stack.config(
            scalekit={"timeout_s": 0.5},
            checks={"admin-portal": {"options": {"app_timeout_s": 0.5}}},
        )
        result = portal(stack, config)
    finally:
        stack.emulator.delays.clear()
    assert finding(result, "generation failed").status is Status.ERROR
    # The app's endpoint and the attestations are still judged.
    assert finding(result, "unauthenticated caller").status is Status.PASS
    assert finding(result, "branding").status is Status.ATTESTED
