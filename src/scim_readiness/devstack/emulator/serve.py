"""``scim-readiness emulate``: run the emulator in the foreground for a local app.

It prints the settings the app needs, secrets included: they are the emulator's own, open
nothing real, and the developer must paste them into the app's environment. Nothing else in
the tool ever prints a secret.
"""

from __future__ import annotations

import shlex
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlparse

from scim_readiness.errors import UsageError

if TYPE_CHECKING:
    from scim_readiness.clients.http import CaBundles
    from scim_readiness.devstack.emulator.launcher import Emulator


def _check_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(
            f"--webhook-url {url!r} is not an http(s) URL",
            hint="e.g. --webhook-url http://localhost:8000/webhooks/scalekit",
        )


def settings_lines(emu: Emulator, webhook_secret: str | None, bundle: Path) -> list[str]:
    """``export NAME=value`` lines for a shell (values quoted). ``bundle`` holds the system's
    CAs and the emulator's, for variables that replace a client's trust store."""
    values = [
        ("SCALEKIT_ENVIRONMENT_URL", emu.env_url),
        ("SCALEKIT_CLIENT_ID", emu.client_id),
        ("SCALEKIT_CLIENT_SECRET", emu.client_secret),
    ]
    if webhook_secret:
        values.append(("SCALEKIT_WEBHOOK_SECRET", webhook_secret))
    values += [
        ("SCALEKIT_ORGANIZATION_ID", emu.organization_id),
        ("SCALEKIT_DIRECTORY_ID", emu.directory_id),
        ("SCIM_BASE_URL", emu.scim_url()),
        ("SCIM_TOKEN", emu.scim_token()),
        # Trust for the emulator's certificate: OpenSSL-based clients (curl, Ruby, Go on
        # Linux), Python requests, grpc, Node (which adds to its own store: the CA alone).
        ("SSL_CERT_FILE", str(bundle)),
        ("REQUESTS_CA_BUNDLE", str(bundle)),
        ("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", str(bundle)),
        ("NODE_EXTRA_CA_CERTS", str(emu.ca_path)),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ]
    return [f"export {name}={shlex.quote(value)}" for name, value in values]


def serve_forever(
    seed_path: str | Path | None = None,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    webhook_ca: CaBundles = None,
    webhook_concurrency: int = 1,
    retry_scale: float = 1.0,
    state_dir: str | Path | None = None,
    sync: bool = False,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run until Ctrl-C (or until ``stop`` is set), printing settings, then each delivery.

    ``webhook_ca`` names CA bundles (PEM, one path or several) the webhook receiver's
    certificate may chain to, beyond the system store and this process's CA.
    ``webhook_concurrency`` deliveries are in flight per endpoint at most; 1 (the default)
    delivers each endpoint's events in the order they happened. ``retry_scale`` multiplies
    Scalekit's retry schedule (0.01: minutes become seconds, for local work). ``state_dir``
    keeps the CA, the token key and generated webhook secrets across restarts (None:
    throwaway ones, removed at exit). ``sync`` announces the seeded directory to the
    webhook (group_created, user_created) at start.

    Returns the exit code (0). Bad input raises UsageError/ConfigError with a clear message.
    """
    from scim_readiness.devstack.emulator.delivery import (
        ANSWER_DEADLINE_S,
        MAX_CONNECTIONS,
        describe_schedule,
    )
    from scim_readiness.devstack.emulator.grpc_services import KEEPALIVE_MIN_PING_INTERVAL_MS
    from scim_readiness.devstack.emulator.launcher import EmulatorStartError, start_emulator
    from scim_readiness.devstack.emulator.seed import Seed, default_seed
    from scim_readiness.devstack.emulator.state_dir import StateDir, write_trust_bundle

    out = out or sys.stdout
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one)")
    if webhook_url is not None:
        _check_url(webhook_url)
    from scim_readiness.clients.http import check_ca_bundles

    check_ca_bundles(webhook_ca)
    if not 1 <= webhook_concurrency <= MAX_CONNECTIONS:
        raise UsageError(
            f"--webhook-concurrency {webhook_concurrency}: use 1 to {MAX_CONNECTIONS}",
            hint="1 keeps each endpoint's events in order; more delivers faster",
        )
    if not 0 < retry_scale <= 1000:
        raise UsageError(
            f"--retry-scale {retry_scale}: use a factor above 0 (1 is Scalekit's schedule)",
            hint="e.g. --retry-scale 0.01 turns 5 min into 3 s",
        )
    seed = Seed.from_yaml(seed_path) if seed_path else default_seed()
    kept = StateDir(Path(state_dir)) if state_dir is not None else None
    ca = kept.ca() if kept is not None else None
    try:
        with start_emulator(
            seed,
            host=host,
            port=port,
            webhook_ca=webhook_ca,
            max_in_flight=webhook_concurrency,
            delivery_delay_scale=retry_scale,
            ca=ca,
            signing_key=kept.signing_key() if kept is not None else None,
        ) as emu:
            secret = None
            if webhook_url is not None:
                if webhook_secret is None and kept is not None:
                    webhook_secret = kept.webhook_secret(webhook_url)
                try:
                    secret = emu.register_webhook(webhook_url, webhook_secret)
                except ValueError as exc:
                    raise UsageError(
                        f"--webhook-secret: {exc}", hint="a secret looks like whsec_<base64>"
                    ) from None
            elif seed.webhooks:
                secret = seed.webhooks[0].secret
            print(
                f"Scalekit emulator on {emu.env_url} (started in {emu.started_in_s:.2f} s).",
                file=out,
            )
            print(
                "Settings for your local app. These are emulator-only credentials, shown "
                "on purpose so you can configure the app:",
                file=out,
            )
            print("", file=out)
            bundle = write_trust_bundle(emu.ca, kept.path if kept else emu.ca.directory)
            for line in settings_lines(emu, secret, bundle):
                print(line, file=out)
            print("", file=out)
            print(
                f"For `scim-readiness run`: --ca-bundle {shlex.quote(str(emu.ca_path))} "
                "(or export the lines above; add one more --ca-bundle for an app whose HTTPS "
                "certificate comes from a private CA)",
                file=out,
            )
            if kept is not None:
                print(
                    f"State (CA, token key, secrets) kept in {kept.path}: the settings above "
                    "stay valid across restarts (pass --port N to keep the URL too).",
                    file=out,
                )
            else:
                print("Throwaway CA and secrets: removed when the emulator stops.", file=out)
            endpoints = emu.webhook_urls()
            if endpoints:
                in_flight = (
                    "one delivery at a time, in event order"
                    if webhook_concurrency == 1
                    else f"up to {webhook_concurrency} deliveries in flight per endpoint"
                )
                print(f"Webhooks go to: {', '.join(endpoints)} ({in_flight})", file=out)
            else:
                print(
                    "No webhook endpoint registered (pass --webhook-url to receive events).",
                    file=out,
                )
            attempts = emu.delivery_attempts
            print(
                f"Webhook delivery: {attempts} attempts, waiting "
                f"{describe_schedule(retry_scale, attempts)} before each (Scalekit's schedule "
                f"x {retry_scale:g}, --retry-scale); an attempt not answered within "
                f"{ANSWER_DEADLINE_S:g} s fails.",
                file=out,
            )
            print(
                f"gRPC keepalive: client pings every {KEEPALIVE_MIN_PING_INTERVAL_MS // 1000} s "
                "or more are allowed, as by Scalekit's backend.",
                file=out,
            )
            if sync and not endpoints:
                print("Initial sync skipped: no webhook endpoint to deliver to.", file=out)
            elif sync:
                sent = emu.initial_sync()
                print(
                    f"Initial sync: {sent} events (group_created, then user_created) queued "
                    "for the seeded directory.",
                    file=out,
                )
            # Before the prompt: a SIGTERM sent as soon as it shows must stop us cleanly too.
            _stop_on_sigterm()
            print("Press Ctrl-C to stop.", file=out, flush=True)
            _follow(emu, out, stop or threading.Event())
    except EmulatorStartError as exc:
        raise UsageError(str(exc.message), hint=exc.hint) from None
    except KeyboardInterrupt:
        print("\nstopped.", file=out)
    return 0


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager, ``kill``) stops the emulator like Ctrl-C, so its exit paths
    run: the throwaway CA directory and its key are removed, not left in the temp dir."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def _follow(emu: Emulator, out: TextIO, stop: threading.Event) -> None:
    """Print one line per delivery attempt as they happen."""
    shown: dict[int, int] = {}
    while not stop.wait(0.25):
        for index, delivery in enumerate(emu.deliveries.all()):
            for number in range(shown.get(index, 0), len(delivery.attempts)):
                attempt = delivery.attempts[number]
                outcome = str(attempt.status) if attempt.error is None else attempt.error
                stamp = time.strftime("%H:%M:%S", time.localtime(attempt.at))
                print(
                    f"{stamp}  {delivery.event_type}  {delivery.event_id}  attempt {number + 1}: "
                    f"{outcome} ({attempt.latency_s * 1000:.0f} ms)",
                    file=out,
                    flush=True,
                )
            shown[index] = len(delivery.attempts)
