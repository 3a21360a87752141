"""frame-ancestors matching as a browser does it."""

from __future__ import annotations

import pytest
from scim_readiness.checks.admin_portal.frame_ancestors import Origin, framing_allowed
from scim_readiness.checks.admin_portal.portal_link import body_carries_link, find_path, link_shape

PORTAL = Origin.parse("https://acme.scalekit.com")
APP = Origin.parse("https://app.acme-corp.com")


def decide(csp: list[str], xfo: str | None = None, origin: Origin = APP) -> bool:
    return framing_allowed(
        csp_headers=csp, x_frame_options=xfo, origin=origin, protected=PORTAL
    ).allowed


@pytest.mark.parametrize(
    ("csp", "allowed"),
    [
        (["frame-ancestors 'self' https://app.acme-corp.com"], True),
        (["frame-ancestors 'self'"], False),
        (["frame-ancestors 'none'"], False),
        (["frame-ancestors *"], True),
        (["frame-ancestors https:"], True),
        (["frame-ancestors http:"], True),  # http source also matches the https upgrade
        (["frame-ancestors https://*.acme-corp.com"], True),
        (["frame-ancestors https://*.other.com"], False),
        (["frame-ancestors app.acme-corp.com"], True),
        (["frame-ancestors https://app.acme-corp.com:8443"], False),
        (["frame-ancestors https://app.acme-corp.com:*"], True),
        (["default-src 'self'; FRAME-ANCESTORS https://app.acme-corp.com"], True),
        # Two policies: both must allow.
        (["frame-ancestors *", "frame-ancestors 'self'"], False),
        (["frame-ancestors *, frame-ancestors https://app.acme-corp.com"], True),
        # The first occurrence of a directive wins.
        (["frame-ancestors 'none'; frame-ancestors *"], False),
    ],
)
def test_frame_ancestors(csp: list[str], allowed: bool) -> None:
    assert decide(csp) is allowed


def test_self_matches_only_the_portal_origin() -> None:
    assert decide(["frame-ancestors 'self'"], origin=PORTAL)


def test_nondefault_port_needs_an_explicit_port() -> None:
    local = Origin.parse("https://127.0.0.1:9443")
    assert not decide(["frame-ancestors https://127.0.0.1"], origin=local)
    assert decide(["frame-ancestors https://127.0.0.1:9443"], origin=local)


def test_x_frame_options_applies_only_without_frame_ancestors() -> None:
    assert not decide([], "DENY")
    assert not decide([], "SAMEORIGIN")
    assert decide(["frame-ancestors https://app.acme-corp.com"], "DENY")
    assert decide([], None)


def test_the_decision_quotes_the_policy_verbatim() -> None:
    decision = framing_allowed(
        csp_headers=["default-src 'self'; frame-ancestors 'self' https://x.example"],
        x_frame_options=None,
        origin=APP,
        protected=PORTAL,
    )
    assert decision.policy == "frame-ancestors 'self' https://x.example"
    assert "https://app.acme-corp.com" in decision.reason


@pytest.mark.parametrize("bad", ["app.acme-corp.com", "https://app.acme-corp.com/path", "ftp://x"])
def test_origin_parse_rejects_non_origins(bad: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        Origin.parse(bad)


def test_link_shape_hides_tokens() -> None:
    link = "https://acme.scalekit.com/magicLink/5f0c1b7e-6a8e-4e0a-9d6f-0b1c2d3e4f50?otp=abc"
    shape = link_shape(link)
    assert shape == "https://acme.scalekit.com/magicLink/…?…"
    assert "5f0c" not in shape and "abc" not in shape
    assert link_shape("https://127.0.0.1:8443/portal/AbCdEfGhIjKlMnOp") == (
        "https://127.0.0.1:8443/portal/…"
    )


def test_find_path_and_leak_detection() -> None:
    doc = {"data": {"location": "https://p.example/x", "items": [1, 2]}}
    assert find_path(doc, "data.location") == "https://p.example/x"
    assert find_path(doc, "data.items.1") == 2
    assert find_path(doc, "data.missing") is None
    assert body_carries_link('{"location": "https://p.example/x/y"}', {"p.example"})
    assert not body_carries_link('{"error": "unauthorised"}', {"p.example"})
