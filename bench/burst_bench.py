"""How fast the burst sender is, and what the reference app sustains under a burst.

* ``sender``: ``scim_readiness.checks.webhook_endpoint.burst.send_burst`` against a minimal
  receiver (a raw asyncio
  HTTP/1.1 server answering 204, in its own process so it does not share the sender's CPU
  time slice), over plain HTTP and over TLS, at several concurrencies. The target is at least
  1,000 signed deliveries per second: the checker must never be the bottleneck it measures.
* ``httpx``: the same signed deliveries through an httpx client (the library the other webhook
  checks send with), to show why the burst has its own lean sender.
* ``sign``: building and signing events alone, the CPU floor per delivery.
* ``app``: the reference app (Starlette + the SDK's verification + SQLite) under a burst,
  through the real ``webhook-endpoint`` burst step: throughput and p50/p95/p99.

Run: ``python bench/burst_bench.py [--events 10000] [--json]``. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_PER_S = 1000.0
SECRET = "whsec_" + base64.b64encode(b"burst-bench-secret-burst-bench!!").decode()

RECEIVER = Path(__file__).with_name("minimal_receiver.py")


def _event_factory(prefix: str) -> Any:
    from scim_readiness.events import build_event, directory_data

    data = directory_data(id="dir_burstbench", organization_id="org_burstbench")

    def make(n: int) -> dict[str, Any]:
        return build_event(
            "organization.directory_enabled",
            data,
            organization_id="org_burstbench",
            environment_id="env_burstbench",
            event_id=f"evt_{prefix}{n:07d}",
        )

    return make


class MinimalReceiver:
    """The receiver script in a child process; ``url`` once started."""

    def __init__(self, cert: Any | None = None) -> None:
        argv = [sys.executable, str(RECEIVER), "open"]
        if cert is not None:
            argv += [str(cert.cert_path), str(cert.key_path)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603
        assert self.proc.stdout is not None  # noqa: S101
        port = int(self.proc.stdout.readline())
        scheme = "https" if cert is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{port}/webhooks/scalekit"

    def __enter__(self) -> MinimalReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def bench_sign(n: int) -> float:
    from scim_readiness.events import encode_body, signed_headers

    make = _event_factory("sign")
    started = time.perf_counter()
    for i in range(n):
        event = make(i)
        body = encode_body(event)
        signed_headers(SECRET, event["id"], int(time.time()), body)
    return n / (time.perf_counter() - started)


def bench_sender(url: str, events: int, concurrency: int, ca: Any | None) -> dict[str, Any]:
    from scim_readiness.checks.webhook_endpoint.burst import BurstPlan, send_burst

    context = ca.client_context() if ca is not None else None
    result = asyncio.run(
        send_burst(
            url,
            SECRET,
            BurstPlan(events, concurrency),
            _event_factory(f"c{concurrency}"),
            ssl_context=context,
        )
    )
    if result.accepted != events:
        raise SystemExit(f"the receiver did not acknowledge every delivery: {result.answers()}")
    return _figures(result)


def _figures(result: Any) -> dict[str, Any]:
    return {
        "events": result.sent,
        "concurrency": result.plan.concurrency,
        "seconds": round(result.elapsed_s, 3),
        "per_s": round(result.throughput_per_s, 1),
        "p50_ms": round((result.percentile_s(50) or 0) * 1000, 2),
        "p95_ms": round((result.percentile_s(95) or 0) * 1000, 2),
        "p99_ms": round((result.percentile_s(99) or 0) * 1000, 2),
        "answers": result.answers(),
    }


def bench_httpx(url: str, events: int, concurrency: int, ca: Any | None) -> dict[str, Any]:
    import httpx

    from scim_readiness.events import encode_body, signed_headers

    make = _event_factory("httpx")

    async def run() -> float:
        verify: Any = ca.client_context() if ca is not None else True
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        numbers = iter(range(events))
        async with httpx.AsyncClient(verify=verify, limits=limits, trust_env=False) as client:

            async def worker() -> None:
                for n in numbers:
                    event = make(n)
                    body = encode_body(event)
                    headers = signed_headers(SECRET, event["id"], int(time.time()), body)
                    headers["content-type"] = "application/json"
                    response = await client.post(url, content=body, headers=headers)
                    await response.aread()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - started

    seconds = asyncio.run(run())
    return {"events": events, "concurrency": concurrency, "per_s": round(events / seconds, 1)}


def bench_app(events: int, concurrency: int) -> dict[str, Any]:
    """The reference app under a burst, through the webhook-endpoint burst step."""
    from scim_readiness.checks import webhook_endpoint
    from scim_readiness.checks.webhook_endpoint.burst import burst_step

    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.config import CheckSettings, Config
    from scim_readiness.devstack.sampleapp import AppSettings, serve_app
    from scim_readiness.devstack.tls_ca import LocalCA
    from scim_readiness.plugin.context import SharedClients, build_context
    from scim_readiness.plugin.identities import new_run_id
    from scim_readiness.plugin.ledger import Ledger

    with tempfile.TemporaryDirectory(prefix="burst-bench-") as scratch:
        root = Path(scratch)
        ca = LocalCA(root / "ca")
        org = "org_burstbench"
        settings = AppSettings(
            webhook_secret=SECRET, tenant_by_org={org: "tenant"}, db_path=root / "app.sqlite3"
        )
        with serve_app(settings, ca.issue("127.0.0.1", "localhost")) as app:
            config = Config.model_validate(
                {
                    "scalekit": {"expect": "development", "organization_id": org},
                    "webhook": {"url": app.webhook_url, "secret": SECRET},
                }
            )
            run_id = new_run_id()
            ctx = build_context(
                webhook_endpoint.CHECK,
                config,
                settings=CheckSettings(
                    options={"burst": {"events": events, "concurrency": concurrency}},
                    timeout_s=600,
                ),
                run_id=run_id,
                ledger=Ledger(root / "ledger.jsonl", run_id),
                shared=SharedClients(config, TlsSettings(ca_bundle=str(ca.ca_path))),
            )

            class Endpoint:
                url = app.webhook_url
                reachable = True
                deliverable = True

            asyncio.run(burst_step(ctx, Endpoint()))
    (finding,) = ctx.findings.items
    metrics = ctx.findings.metrics
    return {
        "events": events,
        "concurrency": concurrency,
        "status": finding.status.value,
        "per_s": metrics.get("burst_deliveries_per_s"),
        "p50_ms": metrics.get("burst_p50_ms"),
        "p95_ms": metrics.get("burst_p95_ms"),
        "p99_ms": metrics.get("burst_p99_ms"),
        "title": finding.title,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="deliveries per sender run")
    parser.add_argument("--app-events", type=int, default=1_000)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

    from scim_readiness.devstack.tls_ca import LocalCA

    results: dict[str, Any] = {"target_per_s": TARGET_PER_S}
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    results["sign_per_s"] = round(bench_sign(min(args.events, 20_000)), 1)
    print(f"build + sign only:                      {results['sign_per_s']:>9,.0f} events/s")
    with tempfile.TemporaryDirectory(prefix="burst-bench-") as scratch:
        ca = LocalCA(Path(scratch))
        cert = ca.issue("127.0.0.1", "localhost")
        sender: list[dict[str, Any]] = []
        for tls in (False, True):
            with MinimalReceiver(cert if tls else None) as receiver:
                for concurrency in (1, 8, 32):
                    row = bench_sender(receiver.url, args.events, concurrency, ca if tls else None)
                    row["tls"] = tls
                    sender.append(row)
                    scheme = "https" if tls else "http "
                    print(
                        f"burst sender, {scheme}, concurrency {concurrency:>2}: "
                        f"{row['per_s']:>9,.0f} deliveries/s  (x{row['per_s'] / TARGET_PER_S:.1f} "
                        f"the 1,000/s target; p50 {row['p50_ms']:.2f} ms, p95 {row['p95_ms']:.2f} "
                        f"ms, p99 {row['p99_ms']:.2f} ms)"
                    )
                httpx_row = bench_httpx(
                    receiver.url, min(args.events, 3000), 8, ca if tls else None
                )
                httpx_row["tls"] = tls
                results.setdefault("httpx", []).append(httpx_row)
                print(
                    f"httpx client,  {'https' if tls else 'http '}, concurrency  8: "
                    f"{httpx_row['per_s']:>9,.0f} deliveries/s  (for comparison)"
                )
        results["sender"] = sender
    worst = min(sender, key=lambda r: r["per_s"])
    results["sender_worst_per_s"] = worst["per_s"]
    app = bench_app(args.app_events, 8)
    results["app"] = app
    print(
        f"reference app, {app['events']:,} events at concurrency 8: {app['per_s']:,.0f} "
        f"deliveries/s, p50 {app['p50_ms']} ms, p95 {app['p95_ms']} ms, p99 {app['p99_ms']} ms "
        f"({app['status']})"
    )
    verdict = "met" if worst["per_s"] >= TARGET_PER_S else "NOT met"
    print(
        f"\nburst sender, slowest case ({'https' if worst['tls'] else 'http'}, concurrency "
        f"{worst['concurrency']}): {worst['per_s']:,.0f} signed deliveries/s = "
        f"x{worst['per_s'] / TARGET_PER_S:.1f} of the 1,000/s target ({verdict})"
    )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
