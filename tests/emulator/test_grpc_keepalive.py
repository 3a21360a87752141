"""A gRPC channel kept open with keepalive pings stays up, as against Scalekit's backend.

The official Python SDK pings every 60 s with ``keepalive_permit_without_calls`` and no
calls in flight. gRPC's server default allows no pings without calls, counts each one as a
strike and, at the third, sends GOAWAY ``too_many_pings``: the channel drops to IDLE and the
client doubles its ping interval. The emulator allows pings every 30 s, like the backend.

To keep the test near 100 s rather than 3 minutes, the client pings every 30 s (the fastest
the policy allows, so still a legal client), idle for three pings. The same client against a
server with gRPC's default policy shows the GOAWAY, so the test can tell the two apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from scim_readiness.devstack.emulator import Emulator, start_emulator

PING_EVERY_MS = 30_000  # the emulator's (and the backend's) minimum
IDLE_S = 100  # three pings: the third is the one the default policy answers with GOAWAY


def _bearer(emu: Emulator) -> str:
    token, _ = emu.state.issue_token()
    return token


@contextmanager
def _pinging_channel(emu: Emulator) -> Iterator[tuple[grpc.Channel, list[str]]]:
    """A TLS channel to the emulator that pings every 30 s with or without calls, and the
    connectivity states it passed through (in order)."""
    credentials = grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=emu.ca.cert_pem),
        grpc.access_token_call_credentials(_bearer(emu)),
    )
    channel = grpc.secure_channel(
        f"localhost:{emu.port}",
        credentials,
        options=[
            ("grpc.keepalive_time_ms", PING_EVERY_MS),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    states: list[str] = []
    lock = threading.Lock()

    def seen(state: grpc.ChannelConnectivity) -> None:
        with lock:
            if not states or states[-1] != state.name:
                states.append(state.name)

    channel.subscribe(seen, try_to_connect=True)
    try:
        yield channel, states
    finally:
        channel.unsubscribe(seen)
        channel.close()


def _get_organization(channel: grpc.Channel, organization_id: str) -> str:
    from scalekit.v1.organizations import organizations_pb2 as opb
    from scalekit.v1.organizations import organizations_pb2_grpc as ogrpc

    stub = ogrpc.OrganizationServiceStub(channel)
    answer = stub.GetOrganization(opb.GetOrganizationRequest(id=organization_id), timeout=10)
    return str(answer.organization.id)


def _hold(emu: Emulator, result: dict[str, object]) -> None:
    """One call, three pings' worth of idle, then a second call; records the states seen."""
    with _pinging_channel(emu) as (channel, states):
        first = _get_organization(channel, emu.organization_id)
        time.sleep(IDLE_S)
        state_after_idle = list(states)
        second = _get_organization(channel, emu.organization_id)
        result.update(first=first, second=second, states=state_after_idle)


@pytest.mark.slow
def test_keepalive_pings_every_30_s_keep_the_channel_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scim_readiness.devstack.emulator import grpc_services

    with start_emulator() as emulator:
        # The control: the same client against gRPC's default server policy.
        monkeypatch.setattr(grpc_services, "KEEPALIVE_OPTIONS", ())
        with start_emulator() as strict:
            ours: dict[str, object] = {}
            default: dict[str, object] = {}
            threads = [
                threading.Thread(target=_hold, args=(emulator, ours)),
                threading.Thread(target=_hold, args=(strict, default)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(IDLE_S + 60)

    assert ours["first"] == ours["second"] == emulator.organization_id
    # Connected once and never left READY: no GOAWAY, no reconnect.
    assert _after_ready(ours["states"]) == [], ours["states"]
    # The default policy dropped the same client's connection (GOAWAY too_many_pings),
    # so READY throughout above is the policy's doing, not the test's blindness.
    assert _after_ready(default["states"]) != [], default["states"]
    assert default["second"] == strict.organization_id  # the client recovers, later


def _after_ready(states: object) -> list[str]:
    """The states a channel passed through after it was first READY."""
    assert isinstance(states, list) and "READY" in states, states
    return states[states.index("READY") + 1 :]
