"""The full clean suite over a slow network: round trips on the critical path, and their causes.

Loopback hides what a checker far from the app and from Scalekit pays: every sequential round
trip. This bench runs what ``scim-readiness demo`` runs (the clean reference app and the
emulator, all eight checks) with the checker's traffic to both sent through a delay proxy
(``bench/delay_proxy.py``) that holds every chunk D seconds in each direction (round trip
2 D). Traffic the checker does not send (the emulator delivering webhooks to the app, the app
asking Scalekit for a portal link) stays on loopback: in a deployment those two are near
each other and the checker is the one far away.

For each D (default 0, 25 and 50 ms), in a fresh process per run:

* the suite's wall time and each check's time (from the report);
* round trips on the critical path, derived: (wall(D) - wall(0)) / (2 D), per check as well;
* what the proxy counted per route: connections, TLS-handshake exchanges and request
  exchanges (a client burst answered by a server burst is one exchange).

Then, with ``--per-check`` (default on), each check alone through the proxy at the largest D,
so connections and exchanges are attributed to one check exactly (alone, a check also opens
the shared connections the suite would have opened once).

``--connect-rtt`` also models the TCP handshake (one more round trip per new connection).

Run: ``python bench/latency_bench.py [--delays-ms 0,25,50] [-n RUNS] [--json]``.
Prints figures; asserts nothing; every child is bounded by a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve()
CHILD_TIMEOUT_S = 300.0

#: Route name -> what travels on it (the checker's side of each).
ROUTES = {
    "app webhook": "signed deliveries the checker sends to the app's webhook URL",
    "app health": "the app's health URL (webhook-endpoint)",
    "app probe": "probe look-ups of the app's users (by email, by id, list)",
    "app portal link": "the app's endpoint that hands out admin-portal links",
    "emulator sdk": "Scalekit API: OAuth token over HTTP/1.1, Directory/Org calls over gRPC",
    "emulator scim": "the SCIM endpoint the checker provisions through (the IdP's side)",
    "emulator portal": "the admin-portal page the link points at (frame-ancestors)",
}


def _via(url: str, port: int) -> str:
    """``url`` with its port replaced: same host (so certificates stay valid), proxy port."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


def proxied_config(stack: Any, proxy: Any) -> dict[str, Any]:
    """The demo's clean config with every URL the checker uses moved onto a proxy route.

    The emulator is also told to advertise proxied addresses (its SCIM base in API answers,
    the portal's custom domain in links), so no URL the checker is handed bypasses the proxy.
    """
    emu, app = stack.emulator, stack.app
    port = {name: proxy.add_route(name, emu.port) for name in ROUTES if name.startswith("emu")}
    port |= {name: proxy.add_route(name, app.port) for name in ROUTES if name.startswith("app")}
    emu.state.base_url = _via(emu.env_url, port["emulator scim"])
    portal_domain = f"127.0.0.1:{port['emulator portal']}"
    emu.state.seed.portal.domain = portal_domain
    raw: dict[str, Any] = stack.raw_config(env_refs=False)
    raw["scalekit"]["environment_url"] = _via(emu.env_url, port["emulator sdk"])
    raw["scim_idp"]["url"] = _via(raw["scim_idp"]["url"], port["emulator scim"])
    raw["webhook"]["url"] = _via(raw["webhook"]["url"], port["app webhook"])
    raw["webhook"]["health_url"] = _via(raw["webhook"]["health_url"], port["app health"])
    http = raw["probe"]["http"]
    for key in ("user_by_email", "user_by_id", "list_users"):
        http[key] = _via(http[key], port["app probe"])
    portal = raw["admin_portal"]
    portal["expected_domain"] = portal_domain
    portal["app_link_endpoint"]["url"] = _via(
        portal["app_link_endpoint"]["url"], port["app portal link"]
    )
    return raw


# -- the child: one stack, one run of the suite (and optionally each check alone) ------------


def child(delay_ms: float, *, connect_rtt: bool, per_check: bool) -> dict[str, Any]:
    import asyncio

    from delay_proxy import DelayProxy, tally

    import scim_readiness.devstack.demo_stack as demo_stack
    from scim_readiness.config import Config
    from scim_readiness.engine.registry import discover
    from scim_readiness.engine.runner import RunOptions, run_suite

    specs = discover()
    delay_s = delay_ms / 1000
    out: dict[str, Any] = {"delay_ms": delay_ms, "connect_rtt": connect_rtt}
    with demo_stack.start_stack(()) as stack:
        proxy = DelayProxy(delay_s, connect_rtt=connect_rtt)
        try:
            config = Config.model_validate(proxied_config(stack, proxy))
            options = RunOptions(ca_bundle=stack.ca_path, yes=True)
            ended: dict[str, float] = {}
            began = time.perf_counter()

            def progress(check_id: str, _result: Any) -> None:
                ended[check_id] = time.perf_counter() - began

            report = asyncio.run(run_suite(config, options, specs=specs, progress=progress))
            out["suite_wall_s"] = time.perf_counter() - began
            sharing = {spec.info.id: spec.info.sharing_mode.value for spec in specs}
            out["checks"] = [
                {
                    "id": r.id,
                    "status": r.status.value,
                    "mutates": r.mutates,
                    "sharing": sharing.get(r.id, "?"),
                    "duration_s": r.duration_s,
                    "end_s": ended.get(r.id),
                }
                for r in report.checks
            ]
            suite_connections = proxy.snapshot()
            out["routes"] = tally(suite_connections)
            if per_check:
                alone: dict[str, Any] = {}
                for spec in specs:
                    before = len(proxy.snapshot())
                    started = time.perf_counter()
                    only = RunOptions(ca_bundle=stack.ca_path, yes=True, only=(spec.info.id,))
                    result = asyncio.run(run_suite(config, only, specs=specs))
                    alone[spec.info.id] = {
                        "wall_s": time.perf_counter() - started,
                        "status": result.checks[0].status.value if result.checks else "?",
                        "routes": tally(proxy.snapshot()[before:]),
                    }
                out["alone"] = alone
        finally:
            proxy.stop()
    return out


# -- the driver -----------------------------------------------------------------------------


def run_child(delay_ms: float, *, connect_rtt: bool, per_check: bool) -> dict[str, Any] | None:
    argv = [sys.executable, str(HERE), "--child", "--delays-ms", f"{delay_ms:g}"]
    argv += ["--connect-rtt"] * connect_rtt + ["--alone"] * per_check
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and script
            argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        print(f"  D = {delay_ms:g} ms: no figures, the run took over {CHILD_TIMEOUT_S:g} s")
        return None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"  D = {delay_ms:g} ms: no figures (exit {done.returncode}):")
        print("    " + "\n    ".join(done.stderr.strip().splitlines()[-8:]))
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median suite wall (its per-check figures belong to that run)."""
    ordered = sorted(runs, key=lambda r: r["suite_wall_s"])
    return ordered[(len(ordered) - 1) // 2]


def _round_trips(seconds: float, base: float, delay_ms: float) -> float:
    return (seconds - base) / (2 * delay_ms / 1000) if delay_ms else 0.0


def _totals(routes: dict[str, dict[str, int]]) -> tuple[int, int, int]:
    rows = routes.values()
    return (
        sum(r["connections"] for r in rows),
        sum(r["handshake_exchanges"] for r in rows),
        sum(r["request_exchanges"] for r in rows),
    )


def show(
    by_delay: dict[float, dict[str, Any]], all_walls: dict[float, list[float]]
) -> dict[str, Any]:  # noqa: PLR0912, PLR0915 - one report
    delays = sorted(by_delay)
    base = by_delay[delays[0]] if delays[0] == 0 else None
    summary: dict[str, Any] = {"delays_ms": delays, "suite_wall_s": {}, "critical_round_trips": {}}
    print("\nsuite wall time (the checks, start to end; stack start-up is not affected by D):")
    for delay in delays:
        walls = all_walls[delay]
        median = statistics.median(walls)
        summary["suite_wall_s"][f"{delay:g}"] = round(median, 3)
        line = f"  D = {delay:>4g} ms (round trip {2 * delay:g} ms): {median:6.2f} s"
        if len(walls) > 1:
            line += f"  (runs: {', '.join(f'{w:.2f}' for w in walls)})"
        if base is not None and delay:
            trips = _round_trips(median, statistics.median(all_walls[0]), delay)
            summary["critical_round_trips"][f"{delay:g}"] = round(trips, 1)
            line += f"  -> {trips:5.1f} sequential round trips on the critical path"
        print(line)

    ids = [c["id"] for c in by_delay[delays[0]]["checks"]]
    print("\nper check: time (s) at each D, and round trips = (t(D) - t(0)) / 2D")
    header = f"  {'check':<18} {'mut':<3} " + " ".join(f"{f'{d:g} ms':>7}" for d in delays)
    header += "".join(f" {f'RT@{d:g}':>7}" for d in delays if d)
    print(header)
    summary["checks"] = {}
    for check_id in ids:
        row = {d: next(c for c in by_delay[d]["checks"] if c["id"] == check_id) for d in delays}
        first = row[delays[0]]
        line = f"  {check_id:<18} {'yes' if first['mutates'] else 'no':<3} "
        line += " ".join(f"{row[d]['duration_s']:7.2f}" for d in delays)
        check_trips: dict[str, float] = {}
        for d in delays:
            if d and base is not None:
                check_trips[f"{d:g}"] = round(
                    _round_trips(row[d]["duration_s"], row[0]["duration_s"], d), 1
                )
                line += f" {check_trips[f'{d:g}']:7.1f}"
        statuses = {row[d]["status"] for d in delays}
        if statuses != {"PASS"}:
            line += f"  (status: {', '.join(sorted(statuses))})"
        print(line)
        summary["checks"][check_id] = {
            "mutates": first["mutates"],
            "duration_s": {f"{d:g}": row[d]["duration_s"] for d in delays},
            "round_trips": check_trips,
        }
    top = delays[-1]
    checks_at_top = by_delay[top]["checks"]
    longest = max(checks_at_top, key=lambda c: c["duration_s"])
    modes = ", ".join(f"{c['id']} {c.get('sharing', '?')}" for c in checks_at_top)
    print(
        f"  the checks run side by side as each declares (sharing: {modes}); the longest at "
        f"D = {top:g} ms: {longest['id']}, {longest['duration_s']:.2f} s of the suite's "
        f"{by_delay[top]['suite_wall_s']:.2f} s"
    )
    summary["longest_check"] = longest["id"]

    print(f"\nwhat the proxy counted in the suite run at D = {top:g} ms (all routes, all checks):")
    _print_routes(by_delay[top]["routes"])
    summary["routes"] = by_delay[top]["routes"]
    alone = by_delay[top].get("alone")
    if alone:
        print(f"\neach check alone at D = {top:g} ms (exact attribution; alone, a check also opens")
        print("the Scalekit connection and token the suite shares between checks):")
        print(
            f"  {'check':<18} {'wall':>6} {'RT':>6} {'conns':>6} {'TLS hs':>7} {'requests':>9}  "
            "by route: connections/handshake/request exchanges"
        )
        summary["alone"] = {}
        for check_id, figures in alone.items():
            conns, handshakes, requests = _totals(figures["routes"])
            trips = figures["wall_s"] / (2 * top / 1000) if top else 0.0
            routes = "; ".join(
                f"{name.replace(' [HTTP/1.1]', '').replace(' [gRPC (h2)]', ' gRPC')} "
                f"{r['connections']}/{r['handshake_exchanges']}/{r['request_exchanges']}"
                for name, r in figures["routes"].items()
            )
            print(
                f"  {check_id:<18} {figures['wall_s']:6.2f} {trips:6.1f} {conns:6d} "
                f"{handshakes:7d} {requests:9d}  {routes}"
            )
            summary["alone"][check_id] = {
                "wall_s": round(figures["wall_s"], 3),
                "connections": conns,
                "handshake_exchanges": handshakes,
                "request_exchanges": requests,
                "routes": figures["routes"],
            }
        print(
            "  (RT here is the check's whole wall alone / 2D: an upper bound, it includes the "
            "checker's own\n   processing; compare with the per-check RT above)"
        )
    return summary


def _print_routes(routes: dict[str, dict[str, int]]) -> None:
    print(
        f"  {'route':<32} {'conns':>6} {'TLS hs':>7} {'requests':>9} {'kB':>8}   what travels there"
    )
    for name, r in routes.items():
        route = name.split(" [")[0]
        print(
            f"  {name:<32} {r['connections']:6d} {r['handshake_exchanges']:7d} "
            f"{r['request_exchanges']:9d} {r['bytes'] / 1000:8.1f}   {ROUTES.get(route, '')}"
        )
    conns, handshakes, requests = _totals(routes)
    print(f"  {'total':<32} {conns:6d} {handshakes:7d} {requests:9d}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays-ms", default="0,25,50", help="one-way delays, comma-separated")
    parser.add_argument("-n", "--runs", type=int, default=2, help="runs per delay (median)")
    parser.add_argument("--connect-rtt", action="store_true", help="model TCP handshakes too")
    parser.add_argument(
        "--no-per-check", dest="per_check", action="store_false", help="skip each-check-alone"
    )
    parser.add_argument("--alone", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        delays = sorted({float(d) for d in args.delays_ms.split(",") if d.strip()})
    except ValueError:
        print(f"--delays-ms wants numbers, e.g. 0,25,50 (got {args.delays_ms!r})")
        return 0
    delays = [d for d in delays if 0 <= d <= 500][:6]
    if args.child:
        figures = child(delays[0], connect_rtt=args.connect_rtt, per_check=args.alone)
        print(json.dumps(figures))
        return 0
    runs = max(1, min(args.runs, 10))
    print(
        f"latency bench: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; delays "
        f"{', '.join(f'{d:g}' for d in delays)} ms each way; {runs} run(s) each"
        f"{'; TCP handshakes modelled' if args.connect_rtt else ''}"
    )
    by_delay: dict[float, dict[str, Any]] = {}
    all_walls: dict[float, list[float]] = {}
    began = time.perf_counter()
    for delay in delays:
        results = []
        for index in range(runs):
            # Each check alone is measured once, at the largest delay, in its last run.
            alone = args.per_check and delay == delays[-1] and index == runs - 1
            result = run_child(delay, connect_rtt=args.connect_rtt, per_check=alone)
            if result is not None:
                results.append(result)
        if results:
            by_delay[delay] = _median_run(results)
            if "alone" not in by_delay[delay]:
                by_delay[delay]["alone"] = next((r["alone"] for r in results if "alone" in r), None)
            all_walls[delay] = [r["suite_wall_s"] for r in results]
            print(
                f"  D = {delay:g} ms: suite {statistics.median(all_walls[delay]):.2f} s "
                f"({time.perf_counter() - began:.0f} s so far)",
                flush=True,
            )
    if not by_delay:
        print("no figures: every run failed (see above)")
        return 0
    summary = show(by_delay, all_walls)
    print(f"\n(load now {os.getloadavg()[0]:.1f})")
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
