"""How the `data-model` reconciliation scales: 1k, 10k and 100k directory users.

For each size the emulator (Scalekit) runs in this process and the reference app (with the
same users, mirrored into its database) in a process of its own, as the two would on
different machines; the measured work runs in fresh child processes so their peak RSS is
their own:

* ``raw``: the Scalekit SDK alone paging the whole directory (30 users per call, with the
  user detail), the floor any reconciliation pays;
* ``reconcile``: the whole `data-model` check through the runner (connecting, the
  organisation, directory, roles and groups, SDK paging, the app's users through the HTTP
  probe, the streaming join, the findings);
* ``gateway`` / ``probe``: the project's Scalekit gateway paging users, and the HTTP probe
  listing the app's users, each alone (where the time goes);
* ``both``: ``raw`` and ``probe`` in two children set up apart and started at the same
  moment: the two reads no reconciliation can skip, at the same time, as the check makes
  them;
* ``idle``: a child that only imports the SDK and the project, the RSS floor.

``raw``, ``both`` and ``reconcile`` face the same emulator and app processes and run in
rounds (``--repeat``, the order rotated every round, so none always meets warm caches or
follows a neighbour's burst of work); the table shows medians and the spread of the ratio.
Every clock starts after the imports (child_raw imports the SDK first; child_reconcile what
the check imports). Besides wall time each measurement records the CPU seconds spent
meanwhile by the measuring child(ren), by the emulator (this process, otherwise idle) and by
the app, and the child's time in the garbage collector (``--json``): on a 2-core machine the
check's three processes share two cores while raw paging has a client and a server, and the
CPU columns show it.

Run: ``python bench/reconcile_bench.py`` (``--sizes 1000,10000 --repeat 1`` for a quicker
run). Prints one table and the ratios; ``--json`` prints the raw figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve()
T = TypeVar("T")


# -- children ----------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    # VmHWM belongs to this process's own address space; ru_maxrss would also count the
    # parent's pages at fork time (it survives exec on Linux).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _GcTime:
    """Time spent in the cyclic garbage collector, per generation, while installed."""

    def __init__(self) -> None:
        import gc

        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds[info["generation"]] += time.perf_counter() - self._started
            self.counts[info["generation"]] += 1

    def figures(self) -> dict[str, Any]:
        return {
            "gc_s": sum(self.seconds),
            "gc_by_generation": list(zip(self.counts, self.seconds, strict=True)),
        }


def _run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``; with RECONCILE_BENCH_PROFILE set, under cProfile (the event
    loop's thread only), its top functions printed on stderr, sorted by
    RECONCILE_BENCH_PROFILE_SORT (``cumulative`` unless set; ``tottime`` shows hot spots)."""
    import asyncio

    if not os.environ.get("RECONCILE_BENCH_PROFILE"):
        return asyncio.run(main)
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    result: T = profiler.runcall(asyncio.run, main)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats(os.environ.get("RECONCILE_BENCH_PROFILE_SORT", "cumulative")).print_stats(50)
    return result


def _await_go(target: dict[str, Any]) -> None:
    """With ``barrier`` set, say "ready" once set up and start only on "go": two children
    measured together start their clocks at the same moment."""
    if target.get("barrier"):
        print("ready", flush=True)
        sys.stdin.readline()


def child_idle(_: dict[str, Any]) -> dict[str, Any]:
    import scalekit  # noqa: F401
    import scim_readiness.checks.data_model.check  # noqa: F401

    import scim_readiness.clients.probe  # noqa: F401
    import scim_readiness.clients.scalekit  # noqa: F401
    import scim_readiness.engine.runner  # noqa: F401

    return {"wall_s": 0.0, "peak_rss_mb": _peak_rss_mb()}


def child_raw(target: dict[str, Any]) -> dict[str, Any]:
    from scalekit import ScalekitClient
    from scalekit.v1.directories import directories_pb2 as dpb

    client = ScalekitClient(target["env_url"], target["client_id"], target["client_secret"])
    stub = client.directory.directory_service.ListDirectoryUsers
    _await_go(target)
    gc_time = _GcTime()
    started, cpu = time.perf_counter(), time.process_time()
    token, users, calls = "", 0, 0
    while True:
        request = dpb.ListDirectoryUsersRequest(
            organization_id=target["organization_id"],
            directory_id=target["directory_id"],
            page_size=30,
            page_token=token,
            include_detail=True,
        )
        response, _ = client.core_client.grpc_exec(stub.with_call, request)
        users += len(response.users)
        calls += 1
        token = response.next_page_token
        if not token:
            break
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "users": users,
        "calls": calls,
        **gc_time.figures(),
    }


def child_gateway(target: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from pydantic import SecretStr

    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.clients.scalekit import connect
    from scim_readiness.config import ScalekitSection

    section = ScalekitSection(
        environment_url=target["env_url"],
        client_id=target["client_id"],
        client_secret=SecretStr(target["client_secret"]),
        timeout_s=30,
    )

    async def page_all() -> tuple[float, float, int]:
        gateway = await connect(section, TlsSettings(ca_bundle=target["ca_path"]))
        started, cpu = time.perf_counter(), time.process_time()
        users = 0
        pages = gateway.iter_directory_users(target["organization_id"], target["directory_id"])
        async for page in pages:
            users += len(page)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        await gateway.aclose()
        return wall, cpu, users

    wall, cpu, users = asyncio.run(page_all())
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": _peak_rss_mb(), "users": users}


def child_probe(target: dict[str, Any]) -> dict[str, Any]:

    from scim_readiness.clients.http import TlsSettings
    from scim_readiness.clients.probe import build_probe
    from scim_readiness.config import ProbeSection

    section = ProbeSection.model_validate(
        {
            "kind": "http",
            "http": {
                "list_users": target["list_users"],
                "headers": {"Authorization": target["probe_auth"]},
            },
        }
    )

    async def list_all() -> tuple[float, float, int]:
        probe = build_probe(section, TlsSettings(ca_bundle=target["ca_path"]))
        _await_go(target)
        started, cpu = time.perf_counter(), time.process_time()
        users = 0
        async for _ in probe.list_users():
            users += 1
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        await probe.aclose()
        return wall, cpu, users

    wall, cpu, users = _run(list_all())
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": _peak_rss_mb(), "users": users}


def child_reconcile(target: dict[str, Any]) -> dict[str, Any]:

    # What the check imports is imported before the clock starts, as child_raw imports the
    # SDK before its own: both clocks measure the work, not the imports.
    import scalekit  # noqa: F401
    import scim_readiness.checks.data_model.check  # noqa: F401
    import scim_readiness.checks.data_model.directory_stream  # noqa: F401
    import scim_readiness.checks.data_model.reconcile  # noqa: F401

    import scim_readiness.clients.http  # noqa: F401 - httpx, for the token exchange and probe
    import scim_readiness.clients.probe  # noqa: F401
    import scim_readiness.clients.scalekit  # noqa: F401
    from scim_readiness.config import Config
    from scim_readiness.engine.runner import RunOptions, run_suite

    config = Config.model_validate(
        {
            "scalekit": {
                "environment_url": target["env_url"],
                "client_id": target["client_id"],
                "client_secret": target["client_secret"],
                "organization_id": target["organization_id"],
                "directory_id": target["directory_id"],
                "expect": "development",
                "timeout_s": 30,
            },
            "probe": {
                "kind": "http",
                "http": {
                    "list_users": target["list_users"],
                    "headers": {"Authorization": target["probe_auth"]},
                },
            },
            "roles": {"map": {"Engineering": "editor", "Admins": "admin"}},
            "checks": {"timeout_s": 1800, "data-model": {"timeout_s": 1800}},
            "ledger_path": str(Path(tempfile.gettempdir()) / "reconcile-bench-ledger.jsonl"),
        }
    )
    options = RunOptions(only=("data-model",), ca_bundle=target["ca_path"])
    gc_time = _GcTime()
    started, cpu = time.perf_counter(), time.process_time()
    report = _run(run_suite(config, options))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    (check,) = report.checks
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": _peak_rss_mb(),
        "status": check.status.value,
        "findings": [f"{f.status.value} {f.title}" for f in check.findings],
        "metrics": dict(check.metrics),
        **gc_time.figures(),
    }


def serve_app_process(spec: dict[str, Any]) -> None:
    """The reference app in a process of its own (as it would run beside a real Scalekit):
    prints its list URL, serves until stdin closes."""
    from scim_readiness.devstack.sampleapp import AppSettings, serve_app
    from scim_readiness.devstack.tls_ca import ServerCert

    cert = ServerCert(
        Path(spec["cert_path"]).read_bytes(),
        Path(spec["key_path"]).read_bytes(),
        Path(spec["cert_path"]),
        Path(spec["key_path"]),
    )
    settings = AppSettings(
        webhook_secret=spec["webhook_secret"],
        probe_token=spec["probe_token"],
        tenant_by_org=spec["tenant_by_org"],
        db_path=Path(spec["db_path"]),
    )
    with serve_app(settings, cert) as app:
        print(json.dumps({"list_users": app.probe["list_users"]}), flush=True)
        sys.stdin.read()


#: The two reads a reconciliation cannot avoid, run side by side by bare clients: the SDK
#: paging the directory and the HTTP probe listing the app's users.
BOTH_READS = ("raw", "probe")

CHILDREN = {
    "idle": child_idle,
    "raw": child_raw,
    "gateway": child_gateway,
    "probe": child_probe,
    "reconcile": child_reconcile,
}


# -- the driver -------------------------------------------------------------------------------


def _child_env(target: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env["REQUESTS_CA_BUNDLE"] = target["ca_path"]
    env["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"] = target["ca_path"]
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def _result(mode: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    if os.environ.get("RECONCILE_BENCH_PROFILE"):
        print(stderr, file=sys.stderr)
    if returncode != 0:
        raise SystemExit(f"{mode} child failed:\n{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def run_child(mode: str, target: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE), "--child", mode],
        input=json.dumps(target) + "\n",
        capture_output=True,
        text=True,
        env=_child_env(target),
        timeout=1800,
        check=False,
    )
    return _result(mode, done.returncode, done.stdout, done.stderr)


def run_together(modes: tuple[str, ...], target: dict[str, Any]) -> dict[str, Any]:
    """Several children set up apart and then started at the same moment; the wall time is
    the longest of theirs, the CPU time their sum."""
    children = [
        subprocess.Popen(
            [sys.executable, str(HERE), "--child", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(target),
        )
        for mode in modes
    ]
    try:
        for child in children:
            assert child.stdin is not None
            child.stdin.write(json.dumps({**target, "barrier": True}) + "\n")
            child.stdin.flush()
        for mode, child in zip(modes, children, strict=True):
            assert child.stdout is not None and child.stderr is not None
            if child.stdout.readline().strip() != "ready":
                child.wait(timeout=60)
                raise SystemExit(f"{mode} child failed:\n{child.stderr.read()[-3000:]}")
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for mode, child in zip(modes, children, strict=True):
            out, err = child.communicate(timeout=1800)
            results.append(_result(mode, child.returncode, out, err))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return {
        "wall_s": max(r["wall_s"] for r in results),
        "cpu_s": sum(r["cpu_s"] for r in results),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "parts": dict(zip(modes, results, strict=True)),
    }


def _process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far; 0 when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(mode: str, target: dict[str, Any], app_pid: int) -> dict[str, Any]:
    """One child's figures plus the CPU the emulator (this process) and the app used
    meanwhile, and the machine's load when it started."""
    load = os.getloadavg()[0]
    emulator_cpu, app_cpu = time.process_time(), _process_cpu_s(app_pid)
    result = run_together(BOTH_READS, target) if mode == "both" else run_child(mode, target)
    result["emulator_cpu_s"] = time.process_time() - emulator_cpu
    result["app_cpu_s"] = _process_cpu_s(app_pid) - app_cpu
    result["load_1m"] = load
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time (the lower middle one for an even count), with
    every run's wall time beside it."""
    ordered = sorted(runs, key=lambda r: float(r["wall_s"]))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs_wall_s"] = [r["wall_s"] for r in runs]
    return chosen


def measure(size: int, repeat: int = 1, parts: bool = True) -> dict[str, Any]:
    import base64
    import gc
    import secrets

    from scim_readiness.devstack.emulator import default_seed, process_ca, start_emulator, trust_env
    from scim_readiness.devstack.sampleapp.store import NewUser, Store

    ca = process_ca()
    trust_env(ca.ca_path)
    workdir = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    with start_emulator(default_seed(), delivery_delay_scale=0.001) as emu:
        directory = emu.state.directory(emu.directory_id)
        emu.generate_users(n=size - len(directory.users))
        # The app's database, filled as if every user had been provisioned.
        db_path = workdir / "app.sqlite3"
        store = Store(db_path)
        store.bulk_insert_users(
            NewUser(
                u.id,
                emu.organization_id,
                u.email,
                u.name,
                u.active,
                tuple(directory.roles_of(u)),
                emu.organization_external_id,
                {},
            )
            for u in list(directory.users.values())
        )
        store.close()
        # The seeded directory is long-lived: keep the collector from walking it again
        # whenever the emulator's pages allocate (the same for every child measured).
        gc.collect()
        gc.freeze()
        cert = ca.issue("127.0.0.1", "localhost")
        probe_token = secrets.token_urlsafe(16)
        spec = {
            "cert_path": str(cert.cert_path),
            "key_path": str(cert.key_path),
            "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            "probe_token": probe_token,
            "tenant_by_org": {emu.organization_id: emu.organization_external_id},
            "db_path": str(db_path),
        }
        app = subprocess.Popen(
            [sys.executable, str(HERE), "--serve-app"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert app.stdin is not None and app.stdout is not None
            app.stdin.write(json.dumps(spec) + "\n")
            app.stdin.flush()
            started = json.loads(app.stdout.readline())
            target = {
                "env_url": emu.env_url,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "organization_id": emu.organization_id,
                "directory_id": emu.directory_id,
                "ca_path": str(ca.ca_path),
                "list_users": started["list_users"],
                "probe_auth": f"Bearer {probe_token}",
            }
            row: dict[str, Any] = {"users": size, "idle": _timed("idle", target, app.pid)}
            runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in ROUND}
            for round_ in range(repeat):
                # Rotated every round: no measurement always runs first (cold caches) or
                # right after another (a neighbour's burst of work).
                shift = round_ % len(ROUND)
                for mode in ROUND[shift:] + ROUND[:shift]:
                    runs[mode].append(_timed(mode, target, app.pid))
            for mode, measured in runs.items():
                row[mode] = _median_run(measured)
            row["ratios"] = [
                rec["wall_s"] / raw["wall_s"]
                for raw, rec in zip(runs["raw"], runs["reconcile"], strict=True)
            ]
            if parts:
                row["gateway"] = _timed("gateway", target, app.pid)
                row["probe"] = _timed("probe", target, app.pid)
            return row
        finally:
            if app.stdin is not None:
                app.stdin.close()
            app.wait(timeout=30)
            gc.unfreeze()


#: Measured in every round: the floor, both reads side by side, the check.
ROUND = ("raw", "both", "reconcile")


def _cpu(run: dict[str, Any]) -> str:
    return (
        f"{run.get('cpu_s', 0):.1f}/{run.get('emulator_cpu_s', 0):.1f}/"
        f"{run.get('app_cpu_s', 0):.1f}"
    )


def print_table(rows: list[dict[str, Any]]) -> None:
    columns: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("users", lambda r: f"{r['users']:,}"),
        ("SDK paging", lambda r: f"{r['raw']['wall_s']:.2f}s"),
        ("both reads", lambda r: f"{r['both']['wall_s']:.2f}s"),
        ("reconcile", lambda r: f"{r['reconcile']['wall_s']:.2f}s"),
        ("ratio", lambda r: f"{r['reconcile']['wall_s'] / r['raw']['wall_s']:.2f}x"),
        ("rounds", lambda r: f"{min(r['ratios']):.2f}-{max(r['ratios']):.2f}x"),
        ("/both", lambda r: f"{r['reconcile']['wall_s'] / r['both']['wall_s']:.2f}x"),
        (
            "us/user",
            lambda r: (
                f"{r['raw']['wall_s'] / r['users'] * 1e6:.0f}/"
                f"{r['reconcile']['wall_s'] / r['users'] * 1e6:.0f}"
            ),
        ),
        ("CPU s SDK", lambda r: _cpu(r["raw"])),
        ("CPU s both", lambda r: _cpu(r["both"])),
        ("CPU s reconcile", lambda r: _cpu(r["reconcile"])),
        ("RSS MB", lambda r: f"{r['idle']['peak_rss_mb']:.0f}/{r['reconcile']['peak_rss_mb']:.0f}"),
        ("waiting", lambda r: str(r["reconcile"]["metrics"].get("peak_waiting_records", "?"))),
        ("load", lambda r: f"{r['reconcile']['load_1m']:.1f}"),
        ("status", lambda r: str(r["reconcile"]["status"])),
    ]
    cells = [[render(row) for _, render in columns] for row in rows]
    widths = [
        max(len(name), *(len(line[i]) for line in cells)) for i, (name, _) in enumerate(columns)
    ]
    header = "  ".join(name.rjust(width) for (name, _), width in zip(columns, widths, strict=True))
    print(header)
    print("-" * len(header))
    for line in cells:
        print("  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
    parts = [row for row in rows if "gateway" in row]
    if parts:
        print()
        for row in parts:
            gw, probe = row["gateway"], row["probe"]
            print(
                f"{row['users']:>8,} users alone: gateway paging {gw['wall_s']:.2f}s "
                f"(CPU {_cpu(gw)}), app probe listing {probe['wall_s']:.2f}s "
                f"(CPU {_cpu(probe)})"
            )
    print(
        "\nSDK paging = the SDK alone paging the whole directory (30 users per call, with user "
        "detail): the floor. both reads = the same SDK paging and the HTTP probe listing the "
        "app's users, in two processes started together: the two reads no reconciliation can "
        "skip, facing the same servers at the same time as the check does. reconcile = the "
        "whole data-model check (connect, organisation, directory, roles, groups, both "
        "streams, the join, findings). Each is the median of the rounds; ratio = reconcile / "
        "SDK paging (rounds: lowest-highest of single rounds); /both = reconcile / both reads; "
        "us/user = wall per directory user, SDK paging/reconcile; CPU s = CPU seconds of the "
        "measuring process(es) / the emulator / the app while it ran "
        f"({os.cpu_count()} CPUs here, shared by all three); RSS MB = peak resident set, idle "
        "child (imports only) / reconcile; waiting = peak records held by the join; load = "
        "1-minute load average as the check started. gateway = the project's Scalekit gateway "
        "paging alone; app probe = the HTTP probe listing the app's users alone."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of SDK paging and reconcile (default 3)"
    )
    parser.add_argument(
        "--no-parts", action="store_true", help="skip the gateway-alone and probe-alone runs"
    )
    parser.add_argument("--json", action="store_true", help="print the raw figures as JSON")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--serve-app", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_app:
        serve_app_process(json.loads(sys.stdin.readline()))
        return 0
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(sys.stdin.readline()))))
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(
            f"measuring {size:,} users ({args.repeat} rounds; load {os.getloadavg()[0]:.2f}) …",
            file=sys.stderr,
            flush=True,
        )
        rows.append(measure(size, args.repeat, not args.no_parts))
    print_table(rows)
    if args.json:  # after the table, so run_all.py shows the table and reads the figures
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
