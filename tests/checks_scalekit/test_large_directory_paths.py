"""The per-user paths a 100,000-user reconciliation runs through, held to the slow, plain
behaviour they replace: batched joins, protobuf reads, the probe's user mapping, and
directory pages handed to a consumer that keeps up or falls behind."""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import given, settings
from hypothesis import strategies as st
from scalekit.v1.directories import directories_pb2 as dpb
from scim_readiness.checks.data_model.directory_stream import LeanUser, iter_user_pages, lean_user
from scim_readiness.checks.data_model.drift import Drift
from scim_readiness.checks.data_model.reconcile import (
    AppRecord,
    DirectoryRecord,
    Reconciler,
    ReconcileResult,
)

from checks_scalekit.conftest import StackFactory
from scim_readiness.clients.http import TlsSettings
from scim_readiness.clients.probe import AppUser, build_probe, to_app_user
from scim_readiness.clients.scalekit import connect
from scim_readiness.config import HttpProbeFields, ProbeSection
from scim_readiness.errors import ProbeError

# -- the join: a batch is the same as its records one by one -----------------------------------


def _directory(i: int, rnd: random.Random) -> DirectoryRecord:
    roles = rnd.choice([None, frozenset(), frozenset({"editor"}), frozenset({"admin", "editor"})])
    email = rnd.choice([f"u{i}@acme.example", f" U{i}@Acme.Example ", ""])
    return DirectoryRecord(f"diruser_{i}", email, rnd.choice([True, False, None]), roles)


def _app(i: int, rnd: random.Random) -> AppRecord:
    link = rnd.choice([f"diruser_{i}", f"diruser_{i}", f"diruser_{rnd.randrange(40)}", None, ""])
    return AppRecord(
        f"app_{i}",
        link,
        rnd.choice([f"u{i}@acme.example", f"other{i}@acme.example"]),
        rnd.choice([True, False]),
        rnd.choice([frozenset({"editor"}), frozenset({"admin"}), frozenset({"owner"})]),
        rnd.choice(["tenant-acme", "tenant-other", None]),
    )


def _summary(result: ReconcileResult) -> dict[str, Any]:
    return {
        "directory_users": result.directory_users,
        "directory_active": result.directory_active,
        "app_users": result.app_users,
        "matched": result.matched,
        "unlinked": (result.unlinked_app_users, list(result.unlinked_active_samples)),
        "out_of_scope": result.out_of_scope_app_users,
        "counts": dict(result.counts),
        "samples": {drift: list(samples) for drift, samples in result.samples.items()},
        "tenants": dict(result.tenants_seen),
        "peak": result.peak_waiting,
    }


def _reconciler() -> Reconciler:
    return Reconciler(
        expected_tenant="tenant-acme", known_roles=frozenset({"editor", "admin"}), sample_limit=3
    )


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=17))
def test_batches_and_single_records_give_the_same_result(rnd: random.Random, size: int) -> None:
    events: list[tuple[str, Any]] = [("d", _directory(i, rnd)) for i in range(40)]
    events += [("a", _app(i, rnd)) for i in range(45)]
    rnd.shuffle(events)

    one_by_one = _reconciler()
    for side, record in events:
        if side == "d":
            one_by_one.add_directory_user(record)
        else:
            one_by_one.add_app_user(record)

    batched = _reconciler()
    run: list[Any] = []
    for index, (side, record) in enumerate(events):
        run.append(record)
        last = index + 1 == len(events)
        if last or len(run) == size or events[index + 1][0] != side:
            (batched.add_directory_users if side == "d" else batched.add_app_users)(run)
            run = []

    assert _summary(batched.finish()) == _summary(one_by_one.finish())


def test_a_second_app_user_in_the_same_batch_is_a_duplicate() -> None:
    r = _reconciler()
    r.add_app_users(
        [
            AppRecord("app_1", "diruser_1", "u1@acme.example", True, frozenset(), "tenant-acme"),
            AppRecord("app_2", "diruser_1", "u1@acme.example", True, frozenset(), "tenant-acme"),
        ]
    )
    r.add_directory_users([DirectoryRecord("diruser_1", "u1@acme.example", True, None)])
    result = r.finish()
    assert result.matched == 1 and result.counts[Drift.DUPLICATE_IN_APP] == 1
    assert result.peak_waiting == 1


# -- protobuf reads --------------------------------------------------------------------------


def _user(detail: dict[str, Any] | None, **top: Any) -> Any:
    message = dpb.DirectoryUser(id="diruser_1", **top)
    if detail is not None:
        message.user_detail.CopyFrom(struct_pb2.Struct())
        message.user_detail.update(detail)
    return message


@pytest.mark.parametrize(
    ("detail", "top", "expected"),
    [
        (None, {"email": "a@x.example"}, LeanUser("diruser_1", "a@x.example", None, None, ())),
        (
            {"active": False, "roles": [{"role_name": "admin"}, "editor", 3, {"other": "x"}]},
            {"email": "a@x.example"},
            LeanUser("diruser_1", "a@x.example", False, ("admin", "editor"), ()),
        ),
        # Not a bool, not a list: the directory does not say.
        (
            {"active": "true", "roles": {"role_name": "admin"}},
            {},
            LeanUser("diruser_1", "", None, None, ()),
        ),
        (
            {"roles": [], "email": "b@x.example"},
            {},
            LeanUser("diruser_1", "b@x.example", None, (), ()),
        ),
        ({"email": None}, {}, LeanUser("diruser_1", "", None, None, ())),
    ],
)
def test_lean_user_reads_what_the_detail_says_and_nothing_else(
    detail: dict[str, Any] | None, top: dict[str, Any], expected: LeanUser
) -> None:
    message = _user(detail, **top)
    before = dict(message.user_detail.fields) if detail is not None else {}
    assert lean_user(message) == expected
    # Reading adds nothing to the message (a map's [] would).
    assert (dict(message.user_detail.fields) if detail is not None else {}) == before
    assert message.HasField("user_detail") is (detail is not None)


def test_lean_user_keeps_the_groups_in_order() -> None:
    message = _user(
        {"active": True},
        email="a@x.example",
        groups=[dpb.DirectoryGroup(id="g2", display_name="B"), dpb.DirectoryGroup(id="g1")],
    )
    assert lean_user(message).groups == (("g2", "B"), ("g1", ""))


# -- the probe's user mapping ----------------------------------------------------------------

_DOCUMENT = {
    "id": 7,
    "directory_user_id": "diruser_7",
    "email": "ada@acme.example",
    "name": None,
    "active": "yes",
    "roles": [{"name": "admin"}, "editor"],
    "tenant": "tenant-acme",
    "attributes": {"department": "R&D"},
}
_EXPECTED = AppUser(
    id="7",
    directory_user_id="diruser_7",
    email="ada@acme.example",
    name=None,
    active=True,
    roles=("admin", "editor"),
    tenant="tenant-acme",
    attributes={"department": "R&D"},
)
_NESTED = HttpProbeFields(
    id="user.id",
    directory_user_id="user.directory_user_id",
    email="user.email",
    name="user.name",
    active="user.active",
    roles="user.roles",
    tenant="user.tenant",
    attributes="user.attributes",
)


def test_plain_keys_nested_paths_and_other_mappings_map_alike() -> None:
    assert to_app_user(_DOCUMENT, HttpProbeFields()) == _EXPECTED
    assert to_app_user(MappingProxyType(_DOCUMENT), HttpProbeFields()) == _EXPECTED
    assert to_app_user({"user": _DOCUMENT}, _NESTED) == _EXPECTED
    absent = {key: value for key, value in _DOCUMENT.items() if key not in ("tenant", "name")}
    assert to_app_user(absent, HttpProbeFields()).tenant is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": ""}, "lacks an email at '{p}email'"),
        ({"id": None}, "lacks the app's user id at '{p}id'"),
        ({"active": "maybe"}, "'maybe' at '{p}active', expected true or false"),
        ({"roles": [1]}, "role 1 at '{p}roles', expected a name"),
    ],
)
def test_bad_users_are_refused_with_the_path(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ProbeError, match=message.format(p="")):
        to_app_user({**_DOCUMENT, **change}, HttpProbeFields())
    with pytest.raises(ProbeError, match=message.format(p="user.")):
        to_app_user({"user": {**_DOCUMENT, **change}}, _NESTED)
    with pytest.raises(ProbeError, match="expected an object"):
        to_app_user(["not", "a", "user"], HttpProbeFields())


def test_a_listed_page_maps_each_user_as_a_single_read_does(tmp_path: Path) -> None:
    items = [_DOCUMENT, {**_DOCUMENT, "id": 8, "active": False}]
    page = {"users": items, "next_cursor": None}
    script = tmp_path / "list.py"
    script.write_text(f"print({json.dumps(json.dumps(page))})\n")
    section = ProbeSection.model_validate(
        {"kind": "command", "command": {"list_users": [sys.executable, str(script)]}}
    )

    async def listed() -> list[AppUser]:
        probe = build_probe(section, TlsSettings())
        try:
            return [user async for user in probe.list_users()]
        finally:
            await probe.aclose()

    users = asyncio.run(listed())
    assert users == [to_app_user(item, HttpProbeFields()) for item in items]
    assert users[0] == _EXPECTED and users[1].active is False


# -- directory pages handed to a consumer -------------------------------------------------------


@pytest.mark.parametrize("consumer_pause_s", [0.0, 0.02])
def test_every_page_arrives_once_in_order_however_fast_the_consumer(
    stack_factory: StackFactory, consumer_pause_s: float
) -> None:
    with stack_factory() as stack:
        emu = stack.emulator
        emu.generate_users(n=250)
        expected = list(emu.state.directory(emu.directory_id).users)

        async def read() -> list[str]:
            gateway = await connect(stack.config().scalekit, TlsSettings(ca_bundle=stack.ca_path))
            ids: list[str] = []
            try:
                pages = iter_user_pages(
                    gateway, emu.organization_id, emu.directory_id, read_ahead=3
                )
                async for page in pages:
                    ids.extend(message.id for message in page)
                    # A slow consumer: the reader runs ahead and pages pile up between turns.
                    await asyncio.sleep(consumer_pause_s)
            finally:
                await gateway.aclose()
            return ids

        assert asyncio.run(read()) == expected
