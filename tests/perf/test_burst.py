"""The burst part of webhook-endpoint, against real receivers on loopback (no timed asserts:
slowness is made by the receiver, far beyond the budget, and only statuses are asserted)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scim_readiness.checks.webhook_endpoint.burst import (
    CODE,
    BurstPlan,
    BurstResult,
    burst_step,
    parse_plan,
    send_burst,
)

from scim_readiness.config import Config
from scim_readiness.devstack.sampleapp import AppSettings, serve_app
from scim_readiness.devstack.tls_ca import LocalCA, ServerCert
from scim_readiness.model import Finding, Status, fold_status
from scim_readiness.plugin.context import CheckContext
from scim_readiness.plugin.contract import CheckInfo

from .conftest import ORG_ID, MakeContext
from .receiver import Receiver, serve


@dataclass
class Endpoint:
    url: str
    reachable: bool = True
    deliverable: bool = True


def run_step(ctx: CheckContext, url: str, **endpoint: Any) -> Status:
    asyncio.run(burst_step(ctx, Endpoint(url, **endpoint)))
    assert {f.code for f in ctx.findings.items} <= {CODE}
    return fold_status(f.status for f in ctx.findings.items)


def only(ctx: CheckContext) -> Finding:
    (item,) = ctx.findings.items
    assert isinstance(item, Finding)
    return item


def event(n: int) -> dict[str, Any]:
    return {"id": f"evt_test{n:06d}", "type": "organization.directory_enabled", "data": {}}


# ---------------------------------------------------------------------------- the option


def test_plan_defaults_and_limits() -> None:
    assert parse_plan(None) is None
    assert parse_plan({"events": 50, "concurrency": 4}) == BurstPlan(50, 4)
    assert parse_plan({"events": 3}) == BurstPlan(3, 3)  # default concurrency, capped at N
    assert parse_plan({"events": 500}) == BurstPlan(500, 10)
    assert parse_plan({"events": 2, "concurrency": 8}) == BurstPlan(2, 2)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (100, "must be a mapping"),
        ({"concurrency": 3}, "needs events"),
        ({"events": 0}, "events must be from 1 to 100,000"),
        ({"events": 100_001}, "events must be from 1"),
        ({"events": True}, "must be a whole number"),
        ({"events": "10"}, "must be a whole number"),
        ({"events": 10, "concurrency": 0}, "concurrency must be from 1 to 256"),
        ({"events": 10, "rate": 5}, "unknown key(s) rate"),
    ],
)
def test_plan_rejects_bad_options_with_the_option_named(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match="checks.webhook-endpoint.options.burst") as caught:
        parse_plan(raw)
    assert message in str(caught.value)


# ---------------------------------------------------------------------------- the sender


def test_every_event_arrives_signed_once_over_at_most_c_connections(
    secret: str, loopback_cert: ServerCert, ca: LocalCA
) -> None:
    with serve(secret, tls=loopback_cert.server_context(), delay_s=0.002) as rec:
        result = asyncio.run(
            send_burst(rec.url, secret, BurstPlan(200, 8), event, ssl_context=ca.client_context())
        )
    assert (result.sent, result.accepted, result.no_answer) == (200, 200, 0)
    assert result.statuses == {204: 200}
    assert sorted(rec.ids) == [f"evt_test{n:06d}" for n in range(200)]
    assert rec.bad_signatures == 0 and rec.svix_mismatch == 0  # both header families, valid
    assert result.connections == rec.connections <= 8
    assert rec.peak_in_flight > 1  # really concurrent
    p50, p95, p99 = (result.percentile_s(p) for p in (50, 95, 99))
    assert p50 is not None and p95 is not None and p99 is not None
    assert 0 < p50 <= p95 <= p99
    assert result.throughput_per_s > 0
    assert set(result.metrics()) == {
        "burst_events",
        "burst_concurrency",
        "burst_deliveries_per_s",
        "burst_p50_ms",
        "burst_p95_ms",
        "burst_p99_ms",
    }


@pytest.mark.parametrize(("chunked", "close_each"), [(True, False), (False, True)])
def test_chunked_and_closing_answers_are_read(secret: str, chunked: bool, close_each: bool) -> None:
    with serve(secret, status_for=lambda n: 200, chunked=chunked, close_each=close_each) as rec:
        result = asyncio.run(send_burst(rec.url, secret, BurstPlan(30, 3), event))
    assert result.statuses == {200: 30} and result.no_answer == 0
    assert sorted(rec.ids) == [f"evt_test{n:06d}" for n in range(30)]
    if close_each:
        assert result.connections == 30  # a new connection after each close


def test_a_dead_endpoint_stops_the_burst_early(secret: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        result = asyncio.run(
            send_burst(f"http://127.0.0.1:{port}/hook", secret, BurstPlan(10_000, 4), event)
        )
    assert result.accepted == 0 and result.stopped and "in a row" in result.stopped
    assert result.sent < 100  # stopped, not 10,000 refused connections
    assert any("Connection" in e or "refused" in e.lower() for e in result.errors)


def test_an_untrusted_certificate_gets_no_answer(secret: str, loopback_cert: ServerCert) -> None:
    with serve(secret, tls=loopback_cert.server_context()) as rec:
        # the system store only: the test CA is not trusted
        result = asyncio.run(send_burst(rec.url, secret, BurstPlan(5, 1), event))
    assert result.accepted == 0 and rec.ids == []
    assert any("certificate" in e for e in result.errors)


def test_a_bad_secret_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="webhook secret is empty"):
        asyncio.run(send_burst("http://127.0.0.1:9/x", "whsec_", BurstPlan(1, 1), event))


# ---------------------------------------------------------------------------- the check step


def test_no_option_records_nothing(make_context: MakeContext, secret: str) -> None:
    ctx = make_context(url="https://127.0.0.1:9/x")
    asyncio.run(burst_step(ctx, Endpoint("https://127.0.0.1:9/x")))
    assert ctx.findings.items == [] and ctx.findings.metrics == {}


def test_fast_receiver_passes_with_percentiles(
    make_context: MakeContext, secret: str, loopback_cert: ServerCert
) -> None:
    with serve(secret, tls=loopback_cert.server_context()) as rec:
        ctx = make_context(
            url=rec.url,
            options={"burst": {"events": 60, "concurrency": 6}},
            latency_budget_s=30,  # a pass must not depend on this machine's speed
        )
        assert run_step(ctx, rec.url) is Status.PASS
    item = only(ctx)
    assert item.title == (
        "Burst of 60 signed events at concurrency 6: acknowledged within the latency budget"
    )
    assert "HTTP 204 x60" in item.observed and "p95" in item.observed and "p99" in item.observed
    assert ctx.findings.metrics["burst_events"] == 60
    assert ctx.findings.metrics["burst_concurrency"] == 6
    assert {"burst_p50_ms", "burst_p95_ms", "burst_p99_ms"} <= set(ctx.findings.metrics)
    assert rec.bad_signatures == 0
    assert all(i.startswith(f"evt_{ctx.run_id}burst") for i in rec.ids)  # recognisable
    assert len(set(rec.ids)) == 60


def test_slow_receiver_fails_on_p95_over_budget(
    make_context: MakeContext, secret: str, loopback_cert: ServerCert
) -> None:
    with serve(secret, tls=loopback_cert.server_context(), delay_s=0.25) as rec:
        ctx = make_context(
            url=rec.url,
            options={"burst": {"events": 8, "concurrency": 4}},
            latency_budget_s=0.05,
        )
        assert run_step(ctx, rec.url) is Status.FAIL
    item = only(ctx)
    assert "over the latency budget" in item.title
    assert item.expected == "p95 within 0.05 s"
    assert {"burst_p50_ms", "burst_p95_ms", "burst_p99_ms"} <= set(item.evidence)


def test_shedding_load_fails_with_the_answers_quoted(
    make_context: MakeContext, secret: str
) -> None:
    # every fifth delivery is refused, and the answer echoes the signature: it must be redacted
    with serve(secret, status_for=lambda n: 503 if n % 5 == 0 else 200, echo_headers=True) as rec:
        ctx = make_context(url=rec.url, options={"burst": {"events": 25, "concurrency": 5}})
        assert run_step(ctx, rec.url) is Status.FAIL
    item = only(ctx)
    assert item.title.endswith(": 5 not acknowledged with 2xx")
    assert "HTTP 200 x20, HTTP 503 x5" in item.observed
    assert "HTTP 503:" in item.observed and "<redacted>" in item.observed
    assert "v1," not in repr(item) and secret not in repr(item)


def test_dead_endpoint_fails_quickly(make_context: MakeContext) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        ctx = make_context(url=url, options={"burst": {"events": 5000, "concurrency": 2}})
        assert run_step(ctx, url) is Status.FAIL
    assert "in a row got no HTTP answer" in only(ctx).observed or "no answer" in only(ctx).observed


@pytest.mark.parametrize(
    ("endpoint", "use_secret", "status", "words"),
    [
        ({"deliverable": False}, True, Status.SKIP, "cannot be delivered"),
        ({"reachable": False}, True, Status.SKIP, "cannot be delivered"),
        ({}, False, Status.SKIP, "no webhook secret"),
    ],
)
def test_nothing_is_sent_when_it_cannot_be(
    make_context: MakeContext,
    secret: str,
    endpoint: dict[str, bool],
    use_secret: bool,
    status: Status,
    words: str,
) -> None:
    with serve(secret) as rec:
        ctx = make_context(url=rec.url, options={"burst": {"events": 5}}, use_secret=use_secret)
        assert run_step(ctx, rec.url, **endpoint) is status
    assert words in only(ctx).observed and rec.ids == []


def test_malformed_option_is_an_error_naming_the_fix(make_context: MakeContext) -> None:
    ctx = make_context(url="https://127.0.0.1:9/x", options={"burst": {"events": "lots"}})
    assert run_step(ctx, "https://127.0.0.1:9/x") is Status.ERROR
    item = only(ctx)
    assert "burst.events must be a whole number" in item.observed
    assert "{events: 500, concurrency: 10}" in item.fix


def test_result_without_answers_reports_none() -> None:
    empty = BurstResult(BurstPlan(3, 1), 0.1, (), {}, 3, 0)
    assert empty.percentile_s(95) is None
    assert empty.stats() == "no delivery got an HTTP answer"
    assert empty.answers() == "no answer x3" and empty.not_accepted == 3


# ---------------------------------------------------------------------------- the reference app


@pytest.mark.parametrize(
    ("flaws", "budget", "status"), [((), 30.0, Status.PASS), (("slow-ack",), 0.2, Status.FAIL)]
)
def test_reference_app_under_a_burst(
    make_context: MakeContext,
    secret: str,
    loopback_cert: ServerCert,
    tmp_path: Path,
    flaws: tuple[str, ...],
    budget: float,
    status: Status,
) -> None:
    settings = AppSettings(
        webhook_secret=secret,
        flaws=frozenset(flaws),
        tenant_by_org={ORG_ID: "tenant-acme"},
        db_path=tmp_path / "app.sqlite3",
        slow_ack_s=0.5,
    )
    with serve_app(settings, loopback_cert) as app:
        ctx = make_context(
            url=app.webhook_url,
            options={"burst": {"events": 12, "concurrency": 4}},
            latency_budget_s=budget,
        )
        assert run_step(ctx, app.webhook_url) is status
    item = only(ctx)
    assert "HTTP 2" in item.observed  # the app verified and acknowledged the signed events
    assert "not acknowledged" not in item.title


def test_webhook_endpoint_check_runs_the_burst_only_when_configured(
    make_context: MakeContext, secret: str, loopback_cert: ServerCert, tmp_path: Path
) -> None:
    from scim_readiness.checks import webhook_endpoint

    settings = AppSettings(
        webhook_secret=secret,
        tenant_by_org={ORG_ID: "tenant-acme"},
        db_path=tmp_path / "app.sqlite3",
    )
    with serve_app(settings, loopback_cert) as app:
        plain = make_context(url=app.webhook_url, latency_budget_s=30)
        asyncio.run(webhook_endpoint.run(plain))
        burst = make_context(
            url=app.webhook_url,
            options={"burst": {"events": 10, "concurrency": 2}},
            latency_budget_s=30,
        )
        asyncio.run(webhook_endpoint.run(burst))
    assert not [f for f in plain.findings.items if "Burst" in f.title]
    (found,) = [f for f in burst.findings.items if "Burst" in f.title]
    assert found.status is Status.PASS
    assert found.title.startswith("Burst of 10 signed events at concurrency 2")
    assert burst.findings.metrics["burst_events"] == 10


def test_redirects_fail_like_the_single_delivery_step(
    make_context: MakeContext, secret: str
) -> None:
    """Redirects are not followed: a redirected delivery is one that was not accepted."""
    with serve(secret, status_for=lambda n: 308 if n % 2 else 204) as rec:
        ctx = make_context(url=rec.url, options={"burst": {"events": 6, "concurrency": 2}})
        assert run_step(ctx, rec.url) is Status.FAIL
    assert only(ctx).title.endswith(": 3 answered with a redirect")


# ---------------------------------------------------------------------------- in a run


def _beside_shared_work(
    secret: str, loopback_cert: ServerCert, ca: LocalCA, *, endpoint_timeout_s: float | None
) -> tuple[dict[str, tuple[Status, list[str]]], dict[str, int], int]:
    """webhook-endpoint's burst in a run beside a shared check that works until a burst
    delivery lands (for a bounded while): the statuses, the burst deliveries the shared check
    saw land at its start and at the end of its cleanup, and the burst deliveries received."""
    from scim_readiness.checks import webhook_endpoint

    from scim_readiness.engine.registry import CheckSpec
    from scim_readiness.engine.runner import RunOptions, run_suite

    seen: dict[str, int] = {}

    def bursts(rec: Receiver) -> int:
        return sum("burst" in event_id for event_id in list(rec.ids))

    with serve(secret, tls=loopback_cert.server_context()) as rec:

        async def burst_only(ctx: CheckContext) -> None:
            await burst_step(ctx, Endpoint(rec.url))

        async def shared_work(ctx: CheckContext) -> None:
            seen["start"] = bursts(rec)
            for _ in range(60):
                if bursts(rec) > seen["start"]:
                    break
                await asyncio.sleep(0.05)
            ctx.findings.passed("worked")

        async def shared_cleanup(ctx: CheckContext) -> None:
            await asyncio.sleep(0.05)
            seen["end"] = bursts(rec)

        shared = CheckSpec(
            info=CheckInfo(
                id="shared-work",
                title="Fake shared check",
                checklist_item=0,
                mutates=True,
                sharing="shared",
                docs_url="https://docs.example.com/shared-work",
            ),
            run=shared_work,
            cleanup=shared_cleanup,
            origin="tests.shared-work",
        )
        endpoint = CheckSpec(info=webhook_endpoint.CHECK, run=burst_only, origin="tests.burst")
        settings: dict[str, Any] = {"options": {"burst": {"events": 20, "concurrency": 4}}}
        if endpoint_timeout_s is not None:
            settings["timeout_s"] = endpoint_timeout_s
        config = Config.model_validate(
            {
                "scalekit": {"expect": "development", "organization_id": ORG_ID},
                "webhook": {"url": rec.url, "secret": secret},
                "checks": {"allow_mutation": True, "webhook-endpoint": settings},
            }
        )
        options = RunOptions(ca_bundle=str(ca.ca_path))
        report = asyncio.run(run_suite(config, options, specs=[endpoint, shared]))
        received = bursts(rec)
    statuses = {c.id: (c.status, [f.title for f in c.findings]) for c in report.checks}
    return statuses, seen, received


def test_the_burst_waits_until_no_shared_check_is_at_work(
    secret: str, loopback_cert: ServerCert, ca: LocalCA
) -> None:
    """webhook-endpoint takes no turn, but its burst floods the app: it must hold the app
    alone, so no burst delivery lands while a shared check (its cleanup included) works."""
    statuses, seen, received = _beside_shared_work(
        secret, loopback_cert, ca, endpoint_timeout_s=None
    )
    assert statuses["webhook-endpoint"][0] is Status.PASS, statuses
    assert statuses["shared-work"][0] is Status.PASS, statuses
    assert seen["end"] == seen["start"], seen  # no burst delivery during the shared work
    assert received == 20


def test_a_burst_that_cannot_have_the_app_in_time_is_skip_not_sent(
    secret: str, loopback_cert: ServerCert, ca: LocalCA
) -> None:
    # A quarter of 0.8 s is far shorter than the shared check's work (it waits for a burst
    # delivery that never comes, up to 3 s).
    statuses, seen, received = _beside_shared_work(
        secret, loopback_cert, ca, endpoint_timeout_s=0.8
    )
    status, titles = statuses["webhook-endpoint"]
    assert status is Status.SKIP, statuses
    assert titles == ["Burst of 20 signed events at concurrency 4: not sent"]
    assert received == 0 and seen["end"] == seen["start"] == 0
