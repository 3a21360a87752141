"""The streaming reconciler on its own: every kind of drift, any arrival order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scim_readiness.checks.data_model.drift import Drift
from scim_readiness.checks.data_model.reconcile import (
    AppRecord,
    AttributeCoverage,
    DirectoryRecord,
    Reconciler,
    RoleMapper,
)
from scim_readiness.checks.data_model.streams import reconcile_streams

EDITOR = frozenset({"editor"})


def d(
    i: int,
    *,
    active: bool | None = True,
    email: str | None = None,
    roles: frozenset[str] | None = EDITOR,
) -> DirectoryRecord:
    return DirectoryRecord(f"diruser_{i}", email or f"u{i}@acme.example", active, roles)


def a(
    i: int,
    *,
    active: bool = True,
    email: str | None = None,
    roles: frozenset[str] = EDITOR,
    tenant: str | None = "tenant-acme",
    link: str | None = "",
) -> AppRecord:
    directory_user_id = f"diruser_{i}" if link == "" else link
    return AppRecord(
        f"app_{i}", directory_user_id, email or f"u{i}@acme.example", active, roles, tenant
    )


def reconciler() -> Reconciler:
    return Reconciler(expected_tenant="tenant-acme", known_roles=frozenset({"editor", "admin"}))


def test_clean_match_has_no_drift() -> None:
    r = reconciler()
    r.add_directory_users([d(1), d(2)])
    r.add_app_users([a(2), a(1)])
    result = r.finish()
    assert result.matched == 2 and result.drift_total == 0
    assert result.tenants_seen == {"tenant-acme": 2}


def test_every_kind_of_drift_is_counted_with_samples() -> None:
    r = reconciler()
    r.add_directory_users(
        [
            d(1),  # missing in app
            d(2, active=False),  # deactivated, still active in app
            d(3),  # email differs
            d(4, roles=frozenset({"admin"})),  # role differs
            d(5),  # wrong tenant
            d(6),  # inactive in app
            d(7, active=False),  # gone from app too: fine
        ]
    )
    r.add_app_users(
        [
            a(2),
            a(3, email="old3@acme.example"),
            a(4),
            a(5, tenant="org_123"),
            a(6, active=False),
            a(8),  # extra: its directory user no longer exists
            a(9, active=False),  # extra but inactive: no hole
            a(10, tenant="tenant-other"),  # another tenant's user: out of scope
            a(11, link=None),  # local account
            a(12, link="diruser_3"),  # second app user for the same directory user
        ]
    )
    result = r.finish()
    expect = {
        Drift.MISSING_IN_APP: 1,
        Drift.STILL_ACTIVE_IN_APP: 1,
        Drift.EMAIL_MISMATCH: 1,
        Drift.ROLE_MISMATCH: 1,
        Drift.TENANT_MISMATCH: 1,
        Drift.INACTIVE_IN_APP: 1,
        Drift.EXTRA_IN_APP: 1,
        Drift.DUPLICATE_IN_APP: 1,
    }
    assert {k: v for k, v in result.counts.items() if v} == expect
    assert result.samples[Drift.MISSING_IN_APP][0].directory_user_id == "diruser_1"
    assert result.samples[Drift.EXTRA_IN_APP][0].directory_user_id == "diruser_8"
    assert "old3@acme.example" in result.samples[Drift.EMAIL_MISMATCH][0].detail
    assert "{admin}" in result.samples[Drift.ROLE_MISMATCH][0].detail
    assert result.out_of_scope_app_users == 1
    assert result.unlinked_app_users == 1


def test_roles_outside_the_mapping_are_ignored() -> None:
    r = reconciler()
    r.add_directory_user(d(1))
    r.add_app_user(a(1, roles=frozenset({"editor", "billing-owner"})))
    assert r.finish().counts[Drift.ROLE_MISMATCH] == 0


def test_email_comparison_ignores_case() -> None:
    r = reconciler()
    r.add_directory_user(d(1, email="Ada@Acme.Example"))
    r.add_app_user(a(1, email="ada@acme.example"))
    assert r.finish().drift_total == 0


def test_samples_are_bounded_but_counts_are_not() -> None:
    r = Reconciler(sample_limit=3)
    r.add_directory_users(d(i) for i in range(100))
    result = r.finish()
    assert result.counts[Drift.MISSING_IN_APP] == 100
    assert len(result.samples[Drift.MISSING_IN_APP]) == 3


@settings(max_examples=50, deadline=None)
@given(st.randoms(use_true_random=False))
def test_outcome_does_not_depend_on_arrival_order(rnd: random.Random) -> None:
    directory = [d(i, active=i % 7 != 0) for i in range(60)]
    app = [a(i, email=f"x{i}@acme.example" if i % 11 == 0 else None) for i in range(5, 70)]
    baseline = reconciler()
    baseline.add_directory_users(directory)
    baseline.add_app_users(app)
    expected = baseline.finish().counts

    events: list[tuple[str, object]] = [("d", x) for x in directory] + [("a", x) for x in app]
    rnd.shuffle(events)
    r = reconciler()
    for side, record in events:
        if side == "d":
            r.add_directory_user(record)  # type: ignore[arg-type]
        else:
            r.add_app_user(record)  # type: ignore[arg-type]
    assert r.finish().counts == expected


def test_role_mapper_combines_ids_names_and_default() -> None:
    mapper = RoleMapper(
        by_group_id={"dirgroup_1": "admin"},
        by_group_name={"Engineering": "editor"},
        default_role="viewer",
    )
    assert mapper.roles_for([("dirgroup_1", "Admins"), ("dirgroup_2", "engineering")]) == {
        "admin",
        "editor",
    }
    assert mapper.roles_for([]) == {"viewer"}
    assert mapper.known_roles == {"admin", "editor", "viewer"}
    highest = RoleMapper(
        by_group_id={"g1": "admin", "g2": "editor"},
        by_group_name={},
        combine="highest",
        precedence=("admin", "editor"),
    )
    assert highest.roles_for([("g1", "A"), ("g2", "E")]) == {"admin"}
    assert not RoleMapper(by_group_id={}, by_group_name={}).active


def test_attribute_coverage() -> None:
    coverage = AttributeCoverage(["department", "title"])
    coverage.add(lambda name: name == "title")
    coverage.add(lambda name: True)
    assert coverage.lacking == {"department": 1, "title": 0}
    assert coverage.share_lacking("department") == 0.5


async def pages(
    items: Sequence[object], size: int, fail_at: int | None = None
) -> AsyncIterator[Sequence[object]]:
    for start in range(0, len(items), size):
        if fail_at is not None and start >= fail_at:
            raise RuntimeError("stream broke")
        await asyncio.sleep(0)
        yield items[start : start + size]


def test_streams_are_drained_concurrently_and_progress_is_reported() -> None:
    seen: list[int] = []
    result = asyncio.run(
        reconcile_streams(
            reconciler(),
            directory_pages=pages([d(i) for i in range(95)], 30),  # type: ignore[arg-type]
            app_pages=pages([a(i) for i in range(95)], 40),  # type: ignore[arg-type]
            progress=lambda done, total: seen.append(done),
            expected_total=95,
        )
    )
    assert result.matched == 95 and result.drift_total == 0
    assert seen == [30, 60, 90, 95]
    # Interleaved streams never hold everything at once.
    assert result.peak_waiting < 95


def test_a_broken_stream_raises_its_own_error() -> None:
    async def run() -> None:
        await reconcile_streams(
            reconciler(),
            directory_pages=pages([d(i) for i in range(95)], 30),  # type: ignore[arg-type]
            app_pages=pages([a(i) for i in range(95)], 30, fail_at=30),  # type: ignore[arg-type]
        )

    with pytest.raises(RuntimeError, match="stream broke"):
        asyncio.run(run())


def test_a_stream_far_ahead_waits_for_the_other() -> None:
    # The app pages 500 at a time, the directory 30: without pacing the app side would hold
    # every record before the directory caught up.
    n = 3_000
    result = asyncio.run(
        reconcile_streams(
            reconciler(),
            directory_pages=pages([d(i) for i in range(n)], 30),  # type: ignore[arg-type]
            app_pages=pages([a(i) for i in range(n)], 500),  # type: ignore[arg-type]
            window=200,
        )
    )
    assert result.matched == n and result.drift_total == 0
    assert result.peak_waiting <= 200 + 500 + 30


def test_pacing_never_deadlocks_when_orders_differ() -> None:
    n = 2_000
    result = asyncio.run(
        reconcile_streams(
            reconciler(),
            directory_pages=pages([d(i) for i in range(n)], 30),  # type: ignore[arg-type]
            app_pages=pages([a(i) for i in reversed(range(n))], 100),  # type: ignore[arg-type]
            window=50,
        )
    )
    assert result.matched == n and result.drift_total == 0


def test_prefetched_keeps_order_and_surfaces_errors() -> None:
    from scim_readiness.checks.data_model.streams import prefetched

    async def collect(fail_at: int | None) -> list[object]:
        source = prefetched(pages(list(range(10)), 3, fail_at=fail_at), depth=2)
        return [list(page) async for page in source]

    assert asyncio.run(collect(None)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    with pytest.raises(RuntimeError, match="stream broke"):
        asyncio.run(collect(6))


def test_role_mapper_finalise_applies_default_and_precedence() -> None:
    mapper = RoleMapper(
        by_group_id={},
        by_group_name={},
        default_role="viewer",
        combine="highest",
        precedence=("admin", "editor"),
    )
    assert mapper.finalise([]) == {"viewer"}
    assert mapper.finalise(["editor", "admin"]) == {"admin"}
