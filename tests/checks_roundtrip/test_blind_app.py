"""An app the checker cannot see into never makes a check PASS.

Two blind apps, both the correct reference app behind a probe that shows nothing:

* every probe route 404s (the ``probe-404`` flaw): the preflight sees its list answer 404 and
  every check that needs the probe is ERROR "blocked by the probe preflight", none FAIL;
* the probe has no list and its lookups name a route the app does not have, so it answers
  "no such user" for everyone: the preflight cannot tell this from an empty app, so the
  checks run, and each one that observes the app through the probe ends SKIP (what was not
  observed) or FAIL/ERROR, never PASS.
"""

from __future__ import annotations

import pytest

from checks_roundtrip.stack import FAILING_STEP_S, Stack, StackFactory, result_of
from scim_readiness.config import Config
from scim_readiness.errors import ExitCode
from scim_readiness.model import Status

PROBE_CHECKS = ("webhook-signature", "user-lifecycle", "group-roles", "bad-data", "data-model")
QUICK = {"propagation_timeout_s": 1.0}


def blind_config(stack: Stack, probe: dict[str, object] | None = None) -> Config:
    raw_probe = stack.demo.raw_config(env_refs=False)["probe"]
    if probe is not None:
        raw_probe = {**raw_probe, "http": {**raw_probe["http"], **probe}}
    round_trip = {"options": {"mode": "events", "step_timeout_s": FAILING_STEP_S}}
    return stack.demo.config(
        probe=raw_probe,
        checks={
            "allow_mutation": True,
            "user-lifecycle": round_trip,
            "group-roles": round_trip,
            "bad-data": {"options": QUICK},
            "webhook-signature": {"options": QUICK},
        },
    )


def explain(report: object) -> list[str]:
    return [
        f"{check.id} {check.status}: {f.status} {f.title}"
        for check in report.checks  # type: ignore[attr-defined]
        for f in check.findings
    ]


def test_a_probe_that_404s_blocks_every_check_that_needs_it(stack_factory: StackFactory) -> None:
    with stack_factory(flaws=("probe-404",)) as stack:
        report = stack.run(blind_config(stack), *PROBE_CHECKS, "environment", "admin-portal")
    for check_id in PROBE_CHECKS:
        result = result_of(report, check_id)
        assert result.status is Status.ERROR, explain(report)
        assert [f.title for f in result.findings] == [
            "blocked by the probe preflight: probe list_users answered 404"
        ]
        assert result.findings[0].fix  # says what to do about the one cause
    # Checks that do not read the app are not blocked by it.
    for check_id in ("environment", "admin-portal"):
        titles = [f.title for f in result_of(report, check_id).findings]
        assert not any(t.startswith("blocked by") for t in titles), explain(report)
    assert report.exit_code() == ExitCode.INCOMPLETE


@pytest.mark.parametrize("check_id", PROBE_CHECKS)
def test_a_probe_that_sees_no_one_cannot_make_a_check_pass(
    stack_factory: StackFactory, check_id: str
) -> None:
    with stack_factory() as stack:
        nowhere = stack.app.base_url + "/no-such-route"
        config = blind_config(
            stack,
            {
                "user_by_email": nowhere + "?email={email}",
                "user_by_id": nowhere + "/{directory_user_id}",
                "list_users": None,
            },
        )
        report = stack.run(config, check_id)
    result = result_of(report, check_id)
    assert result.status is not Status.PASS, explain(report)
    if result.status is Status.SKIP:
        # The headline names what was not observed, even beside findings that passed.
        headline = result.findings[0]
        assert headline.status is Status.SKIP
        passed = [f for f in result.findings if f.status is Status.PASS]
        assert not passed or "essential_assertion" in headline.evidence, explain(report)
