"""A local Scalekit: OAuth, the gRPC API the SDK calls, SCIM 2.0 per directory, and signed
webhook delivery, all on one TLS port on loopback.

Typical use::

    from scim_readiness.devstack.emulator import start_emulator, trust_env, process_ca

    trust_env(process_ca().ca_path)          # once, before any TLS handshake
    with start_emulator() as emu:
        client = ScalekitClient(emu.env_url, emu.client_id, emu.client_secret)

Importing this package is cheap; grpc, uvicorn and the SDK load when an emulator starts.
"""

from __future__ import annotations

from scim_readiness.devstack.emulator.launcher import (
    Emulator,
    EmulatorStartError,
    process_ca,
    start_emulator,
    trust_env,
)
from scim_readiness.devstack.emulator.seed import Seed, default_seed

__all__ = [
    "Emulator",
    "EmulatorStartError",
    "Seed",
    "default_seed",
    "process_ca",
    "start_emulator",
    "trust_env",
]
